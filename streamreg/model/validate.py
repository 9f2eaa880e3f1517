"""What a loaded model's numbers must satisfy beyond their types: a tampered file is refused.

:func:`check_model_numbers` is called by :func:`streamreg.model.serialize.model_fields` once
the fields have their types and the embedded state is rebuilt. It checks the facts that tie
the fields together — the rank fits the features, the counts are the state's, the aliased
columns are those without a coefficient, the sums of squares are finite and non-negative —
and that the coefficients cannot overflow a prediction at the scale of the training data
(``Σ |βⱼ| (|μⱼ| + σⱼ) + |b|`` must stay far below float64's 1.8e308): a model that predicts
``inf`` for ordinary rows is not a model.

>>> import numpy as np
>>> from streamreg.solvers.moments import MomentState
>>> rows = np.array([[1.0, 2.0], [2.0, 4.5], [3.0, 6.0]])
>>> state = MomentState.from_arrays(rows, names=["x", "y"])
>>> bound_of_predictions(state, np.array([1e308]), 0.0) > PREDICTION_LIMIT
True
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import ModelFormatError

# Predictions at the training data's scale must stay below this (float64 ends at 1.8e308).
PREDICTION_LIMIT = 1e300


def bound_of_predictions(state, coef: np.ndarray, intercept: float) -> float:
    """``Σ |βⱼ| (|μⱼ| + σⱼ) + |b|`` over the kept features: the size of a prediction for a
    row a few standard deviations from the training means (inf if it overflows)."""
    p = len(coef)
    kept = ~np.isnan(coef)
    with np.errstate(all="ignore"):
        mean = np.abs(state.mean[:p] + state.mean_lo[:p])
        spread = np.sqrt(np.clip(np.diagonal(state.comoment)[:p], 0.0, None) / state.weight_sum)
        scale = np.where(np.isfinite(spread), spread, 0.0) + mean
        total = float(np.abs(coef[kept]) @ scale[kept]) + abs(float(intercept))
    return total if math.isfinite(total) else float("inf")


def check_model_numbers(data: dict, state, coef: np.ndarray, where: str) -> None:
    """Refuse a model whose fields contradict each other or its state (see the module doc)."""
    names = list(data["features"])
    kept = int((~np.isnan(coef)).sum())
    intercept = bool(data["fit_intercept"])
    rank = data["rank"]
    if not 0 <= rank <= kept + intercept:
        raise ModelFormatError(
            f"{where}: 'rank' is {rank}, but the model has {kept} coefficients"
            + (" and an intercept" if intercept else "")
            + "."
        )
    without = {n for n, c in zip(names, coef) if np.isnan(c)}
    if set(data["aliased"]) != without:
        raise ModelFormatError(
            f"{where}: 'aliased' must name exactly the features without a coefficient."
        )
    if data["n_rows"] != state.n_rows or data["rows_read"] < data["n_rows"]:
        raise ModelFormatError(
            f"{where}: the row counts ('n_rows', 'rows_read') do not match the saved state."
        )
    dropped = data["rows_dropped_by_column"]
    if not all(
        isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool) and v >= 0
        for k, v in dropped.items()
    ) or data["rows_dropped"] != sum(dropped.values()):
        raise ModelFormatError(
            f"{where}: 'rows_dropped_by_column' must count rows per column, summing to "
            "'rows_dropped'."
        )
    for key in ("ssr", "tss", "rmse", "weight_sum"):
        value = data[key]
        if isinstance(value, bool) or not math.isfinite(value) or value < 0:
            raise ModelFormatError(f"{where}: '{key}' must be a finite, non-negative number.")
    for key in ("condition_number", "log_weight_sum", "r2"):
        value = data[key]
        if value is not None and (isinstance(value, bool) or not math.isfinite(value)):
            raise ModelFormatError(f"{where}: '{key}' must be a finite number or null.")
    if not all(isinstance(w, str) for w in data["warnings"]):
        raise ModelFormatError(f"{where}: 'warnings' must be a list of sentences.")
    if not all(
        isinstance(e, dict) and isinstance(e.get("path"), str) and isinstance(e.get("rows"), int)
        for e in data["inputs"]
    ):
        raise ModelFormatError(f"{where}: 'inputs' must list a path and a row count per file.")
    if not isinstance(data["solver"], str) or not data["solver"]:
        raise ModelFormatError(f"{where}: 'solver' must name a solver.")
    if bound_of_predictions(state, coef, data["intercept"]) > PREDICTION_LIMIT:
        raise ModelFormatError(
            f"{where}: the coefficients are too large: a prediction for the training data's "
            "own values would overflow float64; the file was altered or is not a fitted model."
        )
