r"""The records a penalized model keeps: its penalty and the cross-validated path that chose it.

A penalized :class:`~streamreg.model.LinearModel` holds ``penalty_`` (written by
:func:`streamreg.solvers.penalized.penalized_solution`) and, when cross-validation chose
it, ``cv_`` — plain JSON, validated here when a model file is loaded:

* ``l1_ratios`` (``R``), ``alphas`` (``R × A``, decreasing), ``mse_path`` (``R × A × K``:
  each fold's weighted validation MSE), ``coef_path`` (``R × A × p``) and
  ``intercept_path`` (``R × A``) of the refit on all rows, ``gcv`` (``R × A`` or null
  per l1 ratio: ridge's generalized cross-validation score), ``fold_labels``,
  ``fold_rows``, the ``assignment``, the ``selection`` rule (``min`` or ``1se``) and the
  chosen ``best`` indices.

:class:`CVResult` reads a model's ``cv_`` with scikit-learn's names (``alpha_``,
``alphas_``, ``mse_path_``, ``coef_path_``, ``best_model_``) and glmnet's summaries
(``mse_mean_``, ``mse_se_`` = sd over folds / √K, ``alpha_1se_``).
"""

from __future__ import annotations

import math
import os

import numpy as np

from ..choices import SELECTIONS
from ..errors import InputError, ModelFormatError

_PENALTY_FIELDS = {
    "alpha": (int, float),
    "l1_ratio": (int, float),
    "standardize": bool,
    "tol": (int, float),
    "max_iter": int,
    "n_iter": int,
    "dual_gap": (int, float),
    "n_nonzero": int,
}


def validate_penalty(record, where: str) -> dict:
    """A saved penalty record: every field present, of its type, in its range."""
    if not isinstance(record, dict):
        raise ModelFormatError(f"{where}: 'penalty' must be an object.")
    for key, kind in _PENALTY_FIELDS.items():
        value = record.get(key)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise ModelFormatError(f"{where}: the penalty field '{key}' is missing or mistyped.")
    if not (math.isfinite(record["alpha"]) and record["alpha"] >= 0):
        raise ModelFormatError(f"{where}: the penalty's alpha must be a number zero or greater.")
    if not 0.0 <= record["l1_ratio"] <= 1.0:
        raise ModelFormatError(f"{where}: the penalty's l1_ratio must be between 0 and 1.")
    return dict(record)


def _array(data, key: str, shape: tuple, where: str, *, nullable: bool = False) -> np.ndarray:
    try:
        values = np.array(data[key] if not nullable else _nulls_to_nan(data[key]), dtype=np.float64)
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelFormatError(f"{where}: the CV field '{key}' is missing or not numbers.") from exc
    if values.shape != shape or not (nullable or np.isfinite(values).all()):
        raise ModelFormatError(
            f"{where}: the CV field '{key}' must be {' × '.join(map(str, shape))} finite numbers."
        )
    return values


def _nulls_to_nan(rows):
    if isinstance(rows, list):
        return [_nulls_to_nan(r) for r in rows]
    return np.nan if rows is None else rows


def validate_cv(record, n_features: int, where: str) -> dict | None:
    """A saved cross-validation record (None is fine: the penalty was given, not chosen)."""
    if record is None:
        return None
    if not isinstance(record, dict):
        raise ModelFormatError(f"{where}: 'cv' must be an object or null.")
    ratios = record.get("l1_ratios")
    labels = record.get("fold_labels")
    if not isinstance(ratios, list) or not ratios or not isinstance(labels, list):
        raise ModelFormatError(f"{where}: the CV record needs 'l1_ratios' and 'fold_labels'.")
    r, k = len(ratios), len(labels)
    alphas = record.get("alphas")
    a = len(alphas[0]) if isinstance(alphas, list) and alphas and isinstance(alphas[0], list) else 0
    if k < 2 or a < 1:
        raise ModelFormatError(f"{where}: the CV record needs at least 2 folds and 1 alpha.")
    _array(record, "alphas", (r, a), where)
    _array(record, "mse_path", (r, a, k), where)
    _array(record, "coef_path", (r, a, n_features), where)
    _array(record, "intercept_path", (r, a), where)
    _array(record, "fold_rows", (k,), where)
    for key in ("mse_mean", "mse_se", "n_nonzero"):
        _array(record, key, (r, a), where)
    for key in ("alpha", "alpha_min", "alpha_1se", "l1_ratio"):
        value = record.get(key)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ModelFormatError(f"{where}: the CV field '{key}' must be a number.")
    for key in ("gcv", "gcv_df"):
        rows = record.get(key)
        if not isinstance(rows, list) or len(rows) != r:
            raise ModelFormatError(f"{where}: the CV field '{key}' must hold one entry per ratio.")
        for row in rows:
            if row is not None and (not isinstance(row, list) or len(row) != a):
                raise ModelFormatError(f"{where}: each '{key}' entry must be null or {a} numbers.")
    if record.get("selection") not in SELECTIONS:
        raise ModelFormatError(f"{where}: the CV 'selection' must be one of {SELECTIONS}.")
    best = record.get("best")
    if (
        not isinstance(best, list)
        or len(best) != 2
        or not all(isinstance(i, int) and not isinstance(i, bool) for i in best)
        or not (0 <= best[0] < r and 0 <= best[1] < a)
    ):
        raise ModelFormatError(f"{where}: the CV 'best' must be [l1 ratio index, alpha index].")
    if not isinstance(record.get("assignment"), dict):
        raise ModelFormatError(f"{where}: the CV record needs its fold 'assignment'.")
    return dict(record)


class CVResult:
    """A cross-validated penalized fit, named as scikit-learn's ``ElasticNetCV`` names it.

    ``best_model_`` is the refit on all rows at the chosen ``(l1_ratio_, alpha_)``; every
    other figure comes from its ``cv_`` record, so ``CVResult(streamreg.load(path))``
    gives back the same result from a saved model.

    Shapes follow ``ElasticNetCV``: with one l1 ratio ``alphas_`` is ``(A,)``,
    ``mse_path_`` ``(A, K)`` and ``coef_path_`` ``(p, A)`` (as ``enet_path``); with
    ``R`` ratios they gain a leading axis of length ``R``.
    """

    def __init__(self, best_model_):
        record = getattr(best_model_, "cv_", None)
        if record is None:
            raise InputError("the model was not chosen by cross-validation (it has no CV path).")
        self.best_model_ = best_model_
        self.record_ = record
        self.l1_ratios = np.asarray(record["l1_ratios"], dtype=np.float64)
        self.alphas = np.asarray(record["alphas"], dtype=np.float64)
        self.mse_path = np.asarray(record["mse_path"], dtype=np.float64)
        self.coef_path = np.asarray(record["coef_path"], dtype=np.float64)
        self.intercept_path = np.asarray(record["intercept_path"], dtype=np.float64)
        self.gcv = [
            None if g is None else np.asarray(_nulls_to_nan(g), float) for g in record["gcv"]
        ]
        self.best_index = tuple(record["best"])

    # ------------------------------------------------------------ scikit-learn's names
    @property
    def alpha_(self) -> float:
        """The chosen alpha (the smallest mean CV error, or the 1-SE rule if asked)."""
        return float(self.alphas[self.best_index])

    @property
    def l1_ratio_(self) -> float:
        return float(self.l1_ratios[self.best_index[0]])

    @property
    def alphas_(self) -> np.ndarray:
        """``(A,)`` with one l1 ratio or a given grid (shared), else ``(R, A)``."""
        if len(self.l1_ratios) == 1 or self.record_.get("grid_given"):
            return self.alphas[0]
        return self.alphas

    @property
    def mse_path_(self) -> np.ndarray:
        return self.mse_path[0] if len(self.l1_ratios) == 1 else self.mse_path

    @property
    def coef_path_(self) -> np.ndarray:
        paths = np.swapaxes(self.coef_path, 1, 2)
        return paths[0] if len(self.l1_ratios) == 1 else paths

    @property
    def coef_(self) -> np.ndarray:
        return self.best_model_.coef_

    @property
    def intercept_(self) -> float:
        return self.best_model_.intercept_

    @property
    def n_folds_(self) -> int:
        return self.mse_path.shape[-1]

    @property
    def fold_labels_(self) -> list:
        return list(self.record_["fold_labels"])

    @property
    def fold_rows_(self) -> list[int]:
        return [int(v) for v in self.record_["fold_rows"]]

    @property
    def selection_(self) -> str:
        return self.record_["selection"]

    # ------------------------------------------------------------ glmnet's summaries
    @property
    def mse_mean_(self) -> np.ndarray:
        """Mean over folds of the validation MSE, ``(R, A)`` (unweighted, as ElasticNetCV)."""
        return self.mse_path.mean(axis=-1)

    @property
    def mse_se_(self) -> np.ndarray:
        """Its standard error: the SD over folds (ddof 1) / √K, ``(R, A)`` (cv.glmnet's cvsd)."""
        return self.mse_path.std(axis=-1, ddof=1) / math.sqrt(self.n_folds_)

    @property
    def n_nonzero_(self) -> np.ndarray:
        """Non-zero coefficients of the refit at each alpha, ``(R, A)``."""
        return np.count_nonzero(self.coef_path, axis=-1)

    @property
    def min_index_(self) -> tuple[int, int]:
        """``(l1 ratio, alpha)`` indices of the smallest mean CV error (first on ties)."""
        means = self.mse_mean_
        best, where = np.inf, (0, 0)
        for r in range(len(self.l1_ratios)):
            a = int(np.argmin(means[r]))
            if means[r, a] < best:
                best, where = means[r, a], (r, a)
        return where

    @property
    def alpha_min_(self) -> float:
        return float(self.alphas[self.min_index_])

    @property
    def alpha_1se_(self) -> float:
        """The largest alpha (of the best l1 ratio) whose mean error is within one standard
        error of the smallest (glmnet's ``lambda.1se``)."""
        r, a = self.min_index_
        limit = self.mse_mean_[r, a] + self.mse_se_[r, a]
        return float(np.max(self.alphas[r][self.mse_mean_[r] <= limit]))

    @property
    def gcv_(self):
        """Ridge's GCV score along the path (``l1_ratio`` 0 only; None for the others)."""
        return self.gcv[0] if len(self.l1_ratios) == 1 else self.gcv

    def path_table(self) -> list[dict]:
        """One row per (l1 ratio, alpha): alpha, mean CV error, its SE, non-zero count, GCV."""
        rows = []
        for r, ratio in enumerate(self.l1_ratios):
            for a, alpha in enumerate(self.alphas[r]):
                gcv = self.gcv[r]
                rows.append(
                    {
                        "l1_ratio": float(ratio),
                        "alpha": float(alpha),
                        "mse_mean": float(self.mse_mean_[r, a]),
                        "mse_se": float(self.mse_se_[r, a]),
                        "n_nonzero": int(self.n_nonzero_[r, a]),
                        "gcv": None if gcv is None else float(gcv[a]),
                        "chosen": (r, a) == self.best_index,
                    }
                )
        return rows

    # ------------------------------------------------------------ the model
    def predict(self, data):
        return self.best_model_.predict(data)

    def save(self, path: str | os.PathLike) -> None:
        """Save the refit model with its CV record (``streamreg.load`` reads it back)."""
        self.best_model_.save(path)

    def summary(self, format: str = "text"):
        return self.best_model_.summary(format)

    def __repr__(self) -> str:
        return (
            f"CVResult(l1_ratio={self.l1_ratio_:g}, alpha={self.alpha_:.6g} "
            f"({self.selection_}), folds={self.n_folds_}, alphas={self.alphas.shape[1]})"
        )
