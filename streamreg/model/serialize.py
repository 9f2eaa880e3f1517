"""The model's file format: plain JSON, written and read with full validation.

``model_to_dict`` writes every field; ``model_fields`` checks a loaded dict — the
format and its version, every field's type, the feature names, the embedded state,
the optional robust covariance and optimizer record — and returns what
:class:`~streamreg.model.LinearModel` is built from. Floats are written with
``repr`` by the JSON encoder, so they round-trip exactly; NaN and ±inf are null.

**Versions.** Each file is written as the lowest version that holds what the model has, so
a plain least-squares fit is version 1, byte for byte as before. Version 2: a least-squares
fit with large matrices packed (:mod:`streamreg.io.packed`) or with optional fields
(:mod:`streamreg.model.optional_fields`: the residual pass's ``diagnostics``, ``use_t``, HAC
and two-way cluster records). Version 3: a penalized fit (``penalty``, ``cv``, no
``xtx_inv``), which may hold the optional fields too. The loader reads all three.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import ModelFormatError
from ..io.packed import is_packed, pack_matrix, should_pack, unpack_matrix
from ..solvers import GRADIENT_SOLVERS, state_from_dict
from ..solvers.base import check_format
from ..solvers.solution import Solution
from .inference import COV_TYPES
from .optional_fields import (
    check_robust_extras,
    model_language_fields,
    optional_fields,
    robust_needs_version_2,
    validated_diagnostics,
    validated_model_language,
    validated_use_t,
)
from .penalty import validate_cv, validate_penalty
from .validate import check_model_numbers

MODEL_FORMAT = "streamreg.model"
MODEL_FORMAT_VERSION = 1
# Version 2: the same fields, and, when a model needs them, large matrices packed
# (streamreg.io.packed) or the optional fields (streamreg.model.optional_fields: the model
# language's "design", "columns", "absorbed"; the residual pass's "diagnostics", "use_t", HAC
# and two-way cluster records) and, for several targets, "targets" with one entry per target
# (streamreg.model.multi). Only files that use one of them are written as version 2: ordinary
# fits keep writing version 1, byte for byte.
PACKED_MODEL_VERSION = 2
MODEL_FORMAT_VERSION_2 = PACKED_MODEL_VERSION
# Version 3: a penalized fit — the optional fields 'penalty' and 'cv', and no 'xtx_inv'
# (null): written only for penalized models, so other fits keep writing version 1 or 2.
PENALIZED_MODEL_VERSION = 3
MODEL_FORMAT_VERSIONS = (MODEL_FORMAT_VERSION, PACKED_MODEL_VERSION, PENALIZED_MODEL_VERSION)


def model_to_dict(model) -> dict:
    """The model as a JSON-ready dict (NaN and ±inf become null). A penalized fit (version 3)
    has no (XᵀWX)⁻¹ and no robust covariance, and adds its penalty and CV record."""
    penalized = model.penalty_ is not None
    coef = [None if np.isnan(c) else float(c) for c in model.coef_]
    xtx_inv = None if penalized else np.asarray(model.solution_.xtx_inv, dtype=float)
    robust_cov = None if model.robust_ is None else np.asarray(model.robust_["cov"], dtype=float)
    packed = not penalized and (
        should_pack(xtx_inv) or (robust_cov is not None and should_pack(robust_cov))
    )
    language = model_language_fields(model)
    extra = optional_fields(model.diagnostics, getattr(model, "_use_t", None))
    if penalized:
        version = PENALIZED_MODEL_VERSION  # which may carry the optional fields too
    elif packed or language or extra or robust_needs_version_2(model.robust_):
        version = PACKED_MODEL_VERSION
    else:
        version = MODEL_FORMAT_VERSION
    data = {
        "format": MODEL_FORMAT,
        "format_version": version,
        "streamreg_version": model.streamreg_version,
        "target": model.target,
        "features": [str(n) for n in model.feature_names_in_],
        "weight": model.weight,
        "fit_intercept": model.fit_intercept,
        "intercept": model.intercept_,
        "coef": coef,
        "aliased": model.aliased_,
        "n_rows": model.n_samples_,
        "weight_sum": model.weight_sum_,
        "rows_read": model.rows_read_,
        "rows_dropped": model.rows_dropped_,
        "rows_dropped_by_column": model.rows_dropped_by_column_,
        "r2": finite_or_none(model.r2_),
        "rmse": model.rmse_,
        "ssr": model.ssr_,
        "tss": model.solution_.tss,
        "rank": model.solution_.rank,
        "condition_number": finite_or_none(model.scaled_condition_number_),
        "solver": model.solver_,
        "warnings": model.warnings_,
        "inputs": model.inputs_,
        "log_weight_sum": finite_or_none(model.log_weight_sum_),
        "xtx_inv": None if penalized else _matrix(xtx_inv, packed),
        "robust": None
        if penalized or model.robust_ is None
        else {**model.robust_, "cov": _matrix(robust_cov, packed)},
        "inference": model.inference_dict(),
        "state": model.state_.to_dict(),
        "optimizer": None if penalized else model.optimizer_,
    }
    if penalized:
        data.update(penalty=model.penalty_, cv=model.cv_)
    return {**data, **language, **extra}


def _matrix(matrix: np.ndarray, packed: bool):
    """A matrix as the file holds it: packed in a version-2 file, else a list (NaN → null)."""
    if packed:
        return pack_matrix(matrix)
    return [[finite_or_none(v) for v in row] for row in matrix]


def model_fields(data, where: str = "model") -> dict:
    """Validate a saved model's dict and return the keyword arguments of ``LinearModel``.

    Everything is checked, not only the types: shapes, finiteness, the rank, the counts
    against the embedded state, and that the coefficients cannot overflow a prediction at
    the training data's own scale (:mod:`streamreg.model.validate`)."""
    _validate_model_dict(data, where)
    state = state_from_dict(data["state"], where=f"{where} (state)")
    names = list(data["features"])
    if list(state.names) != [*names, data["target"]]:
        raise ModelFormatError(
            f"{where}: the saved state's columns do not match the features and target."
        )
    coef = np.array([np.nan if c is None else c for c in data["coef"]], dtype=np.float64)
    check_model_numbers(data, state, coef, where)
    penalized = data["format_version"] == PENALIZED_MODEL_VERSION
    if penalized and not isinstance(data.get("penalty"), dict):
        raise ModelFormatError(
            f"{where}: a model of format version 3 (a penalized fit) needs its 'penalty' record."
        )
    if (data["xtx_inv"] is None) != penalized:
        raise ModelFormatError(
            f"{where}: 'xtx_inv' must be null exactly in a penalized fit (format version 3)."
        )
    solution = Solution(
        coef=coef,
        intercept=float(data["intercept"]),
        aliased=list(data["aliased"]),
        rank=int(data["rank"]),
        condition_number=float("inf")
        if data["condition_number"] is None
        else float(data["condition_number"]),
        ssr=float(data["ssr"]),
        tss=float(data["tss"]),
        solver=data["solver"],
        warnings=list(data["warnings"]),
        xtx_inv=None
        if penalized
        else _validated_inverse(
            data["xtx_inv"], int((~np.isnan(coef)).sum()), data["format_version"], where
        ),
        penalty=validate_penalty(data["penalty"], where) if penalized else None,
    )
    return dict(
        target=data["target"],
        feature_names=names,
        coef=coef,
        intercept=data["intercept"],
        fit_intercept=data["fit_intercept"],
        weight=data["weight"],
        state=state,
        solution=solution,
        rows_read=data["rows_read"],
        rows_dropped_by_column=data["rows_dropped_by_column"],
        inputs=data["inputs"],
        streamreg_version=data["streamreg_version"],
        log_weight_sum=float("-inf") if data["log_weight_sum"] is None else data["log_weight_sum"],
        robust=_validated_robust(
            data["robust"], len(names) + bool(data["fit_intercept"]), data["format_version"], where
        ),
        optimizer=_validated_optimizer(data.get("optimizer"), where),
        **validated_model_language(data, names, where),
        cv=validate_cv(data.get("cv"), len(names), where) if penalized else None,
        diagnostics=validated_diagnostics(data.get("diagnostics"), where),
        use_t=validated_use_t(data.get("use_t"), where),
    )


_NUMBER = (int, float)
_FIELDS = {
    "streamreg_version": str,
    "target": str,
    "features": list,
    "weight": (str, type(None)),
    "fit_intercept": bool,
    "intercept": _NUMBER,
    "coef": list,
    "aliased": list,
    "n_rows": int,
    "weight_sum": _NUMBER,
    "rows_read": int,
    "rows_dropped": int,
    "rows_dropped_by_column": dict,
    "r2": (*_NUMBER, type(None)),
    "rmse": _NUMBER,
    "ssr": _NUMBER,
    "tss": _NUMBER,
    "rank": int,
    "condition_number": (*_NUMBER, type(None)),
    "solver": str,
    "warnings": list,
    "inputs": list,
    "log_weight_sum": (*_NUMBER, type(None)),
    "xtx_inv": (list, dict, type(None)),
    "robust": (dict, type(None)),
    "state": dict,
}


def _validated_square(rows, size: int, key: str, where: str, version: int = 1) -> np.ndarray:
    """A size × size matrix of numbers or nulls (NaN): a list of lists, or packed (version 2)."""
    if is_packed(rows) and version >= PACKED_MODEL_VERSION:
        return unpack_matrix(rows, (size, size), where, key)
    try:
        if not isinstance(rows, list) or len(rows) != size:
            raise ValueError("wrong number of rows")
        matrix = np.array(
            [[np.nan if v is None else _number(v) for v in _row(row, size)] for row in rows],
            dtype=np.float64,
        ).reshape(size, size)
    except (TypeError, ValueError) as exc:
        raise ModelFormatError(
            f"{where}: '{key}' must be a {size}×{size} matrix of numbers."
        ) from exc
    return matrix


def _row(row, size: int) -> list:
    if not isinstance(row, list) or len(row) != size:
        raise ValueError("a row of the wrong length")
    return row


def _number(value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{value!r} is not a number")
    return float(value)


def _validated_inverse(rows, size: int, version: int, where: str) -> np.ndarray:
    """``xtx_inv``: finite with a non-negative diagonal, or all null (no inference, lbfgs)."""
    matrix = _validated_square(rows, size, "xtx_inv", where, version)
    nan = np.isnan(matrix)
    if nan.all():
        return matrix
    if nan.any() or not np.isfinite(matrix).all() or (np.diagonal(matrix) < 0).any():
        raise ModelFormatError(
            f"{where}: 'xtx_inv' must hold finite numbers with a non-negative diagonal "
            "(or only nulls)."
        )
    return matrix


def _validated_optimizer(record, where: str):
    """The optional record of a gradient solver (absent in files of closed-form fits)."""
    if record is None:
        return None
    return validate_record(record, where)


def _validated_robust(robust, n_params: int, version: int, where: str):
    if robust is None:
        return None
    cov = robust.get("cov")
    if robust.get("cov_type") not in COV_TYPES[1:] or not isinstance(cov, (list, dict)):
        raise ModelFormatError(
            f"{where}: 'robust' must name a covariance type and hold its matrix."
        )
    try:
        matrix = _validated_square(cov, n_params, "robust.cov", where, version)
    except ModelFormatError:
        raise ModelFormatError(
            f"{where}: the robust covariance must be a {n_params}×{n_params} matrix of numbers."
        ) from None
    if np.isinf(matrix).any():
        raise ModelFormatError(f"{where}: the robust covariance holds an infinite number.")
    n_groups = robust.get("n_groups")
    if n_groups is not None and (not isinstance(n_groups, int) or isinstance(n_groups, bool)):
        raise ModelFormatError(f"{where}: 'robust.n_groups' must be an integer or null.")
    check_robust_extras(robust, where)
    return {**robust, "cov": matrix.tolist()}


def _validate_model_dict(data, where: str) -> None:
    check_format(data, MODEL_FORMAT, MODEL_FORMAT_VERSIONS, "model", where)
    for key, kind in _FIELDS.items():
        if key not in data:
            raise ModelFormatError(f"{where}: the field '{key}' is missing.")
        value = data[key]
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            expected = (
                kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
            )
            raise ModelFormatError(
                f"{where}: the field '{key}' should be {expected}, got {type(value).__name__}."
            )
    features = data["features"]
    if (
        not features
        or not all(isinstance(f, str) and f for f in features)
        or len(set(features)) != len(features)
    ):
        raise ModelFormatError(
            f"{where}: 'features' must be a non-empty list of distinct column names."
        )
    if len(data["coef"]) != len(features):
        raise ModelFormatError(
            f"{where}: 'coef' has {len(data['coef'])} entries for {len(features)} features."
        )
    if not all(c is None or (isinstance(c, _NUMBER) and math.isfinite(c)) for c in data["coef"]):
        raise ModelFormatError(f"{where}: every entry of 'coef' must be a finite number or null.")
    if not math.isfinite(data["intercept"]):
        raise ModelFormatError(f"{where}: 'intercept' must be a finite number.")
    if any(a not in features for a in data["aliased"]):
        raise ModelFormatError(f"{where}: 'aliased' names a column that is not a feature.")


def finite_or_none(value: float):
    return float(value) if math.isfinite(value) else None


# ---------------------------------------------------------------------- the optimizer record
_RECORD_FIELDS = {
    "solver": str,
    "options": dict,
    "converged": bool,
    "stop_reason": str,
    "iterations": int,
    "steps": int,
    "passes": int,
    "gradient_norm": (int, float),
    "loss": (int, float),
    "standardized": bool,
    "free_intercept": bool,
    "holdout_rows": int,
    "history": dict,
    "inference": str,
}


def validate_record(record, where: str = "model"):
    """Check a saved ``optimizer`` record (None is fine: a closed-form solver)."""
    if record is None:
        return None
    if not isinstance(record, dict):
        raise ModelFormatError(f"{where}: 'optimizer' must be an object or null.")
    for key, kind in _RECORD_FIELDS.items():
        value = record.get(key)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise ModelFormatError(
                f"{where}: the optimizer field '{key}' is missing or of the wrong type."
            )
    if record["solver"] not in GRADIENT_SOLVERS:
        raise ModelFormatError(
            f"{where}: the optimizer's solver {record['solver']!r} is not a gradient solver."
        )
    history = record["history"]
    base = history.get("iteration")
    if not isinstance(base, list) or not base:
        raise ModelFormatError(
            f"{where}: the optimizer history needs a non-empty 'iteration' list."
        )
    for key in ("iteration", "loss", "gradient_norm", "validation_loss", "learning_rate"):
        values = history.get(key)
        if values is None and key in ("validation_loss", "learning_rate"):
            continue
        if (
            not isinstance(values, list)
            or len(values) != len(base)
            or not all(
                v is None
                or (isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v))
                for v in values
            )
        ):
            raise ModelFormatError(
                f"{where}: the optimizer history '{key}' must be a list of "
                f"{len(base)} finite numbers."
            )
    steps = record.get("step_loss")
    if steps is not None and not (
        isinstance(steps, list)
        and all(isinstance(v, (int, float)) and math.isfinite(v) for v in steps)
    ):
        raise ModelFormatError(
            f"{where}: the optimizer's 'step_loss' must be a list of finite numbers or null."
        )
    return record
