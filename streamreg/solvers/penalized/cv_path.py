r"""K-fold cross-validated elastic-net paths from fold states (one pass over the data).

For each ``l1_ratio`` the alpha grid comes from the *total* state (all folds), as
scikit-learn's ``ElasticNetCV`` computes it from all the data; each fold's path is
solved, warm-started, on its training state (the merge of the other folds), and its
validation error at every alpha comes from the fold's own moments
(:func:`validation_mse`). With ``standardize`` each training state
is standardized by its own scales (as ``cv.glmnet`` does).

Summaries, as scikit-learn and glmnet define them:

* ``mse_path[r, a, k]``: fold ``k``'s weighted MSE (``Σw r²/Σw``) at ``alphas[r, a]``;
* ``mean_mse = mse_path.mean(axis=-1)`` — the unweighted mean over folds, as
  ``ElasticNetCV``; ``mse_se = std(ddof=1)/√K`` over folds;
* best ``(l1_ratio, alpha)``: the first minimum of ``mean_mse`` (l1 ratios in the given
  order, alphas decreasing), exactly ``ElasticNetCV``'s choice;
* ``alpha_1se``: the largest alpha of the best l1 ratio whose mean error is at most
  the best mean error plus its standard error (glmnet's ``lambda.1se``);
* the refit: the path on the total state, whose row at the best alpha is the model.

>>> import numpy as np
>>> from streamreg.solvers.moments import MomentState
>>> from streamreg.engine.fold_states import FoldStates
>>> from streamreg.engine.fold_ids import position_folds
>>> rng = np.random.default_rng(0)
>>> x = rng.normal(size=(300, 4)); y = x @ [2.0, 0.0, -1.0, 0.0] + rng.normal(size=300)
>>> folds = FoldStates.empty(MomentState, ["a", "b", "c", "d", "y"], n_folds=5)
>>> _ = folds.update(np.column_stack([x, y]), None, position_folds("f", 0, 300, 5))
>>> result = cross_validate_path(folds, l1_ratio=0.5, alphas=20)
>>> result.mse_path_.shape, result.best_fit.n_iter >= 0
((20, 5), True)
>>> bool(result.alpha_1se >= result.alpha_)
True
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...engine.fold_states import FoldStates
from ...errors import InputError
from .path import PenalizedFit, PenalizedPath, elastic_net_path
from .problem import GramProblem, alpha_grid, check_l1_ratio, checked_alphas


@dataclass(frozen=True)
class CVPath:
    """Cross-validated paths; arrays are indexed ``[l1 ratio, alpha(, fold)]``."""

    l1_ratios: np.ndarray
    alphas: np.ndarray
    mse_path: np.ndarray
    fold_labels: tuple
    paths: tuple[PenalizedPath, ...]
    grid_given: bool

    @property
    def n_folds(self) -> int:
        return self.mse_path.shape[-1]

    @property
    def mean_mse(self) -> np.ndarray:
        return self.mse_path.mean(axis=-1)

    @property
    def mse_se(self) -> np.ndarray:
        return self.mse_path.std(axis=-1, ddof=1) / np.sqrt(self.n_folds)

    @property
    def n_nonzero(self) -> np.ndarray:
        """Non-zero coefficients of the total-state refit at each alpha."""
        return np.stack([path.n_nonzero for path in self.paths])

    @property
    def best_index(self) -> tuple[int, int]:
        """``(l1 ratio index, alpha index)`` of the smallest mean error (first on ties)."""
        means = self.mean_mse
        best, where = np.inf, (0, 0)
        for r in range(len(self.l1_ratios)):
            a = int(np.argmin(means[r]))
            if means[r, a] < best:
                best, where = means[r, a], (r, a)
        return where

    @property
    def alpha_(self) -> float:
        r, a = self.best_index
        return float(self.alphas[r, a])

    @property
    def l1_ratio_(self) -> float:
        return float(self.l1_ratios[self.best_index[0]])

    @property
    def index_1se(self) -> tuple[int, int]:
        """``(l1 ratio, alpha)`` indices of the largest alpha of the best l1 ratio whose mean
        error is at most the best mean error plus its standard error (``lambda.1se``)."""
        r, a = self.best_index
        limit = self.mean_mse[r, a] + self.mse_se[r, a]
        within = np.flatnonzero(self.mean_mse[r] <= limit)
        return r, int(within[np.argmax(self.alphas[r][within])])

    @property
    def alpha_1se(self) -> float:
        """The largest alpha whose mean error ≤ the best mean error + its standard error."""
        return float(self.alphas[self.index_1se])

    def chosen_index(self, selection: str) -> tuple[int, int]:
        """The indices ``selection`` picks: ``min`` (the smallest mean error) or ``1se``."""
        if selection not in ("min", "1se"):
            raise InputError(f"select must be 'min' or '1se'; got {selection!r}.")
        return self.best_index if selection == "min" else self.index_1se

    def record(self, *, selection: str, assignment: dict, fold_rows, gcv=None) -> dict:
        """The plain-JSON record a model chosen from this path keeps (its ``cv_``; see
        :mod:`streamreg.model.penalty`). ``gcv`` holds ``(scores, df)`` or None per l1 ratio."""
        chosen = self.chosen_index(selection)
        gcv = gcv if gcv is not None else [None] * len(self.l1_ratios)
        return {
            "assignment": assignment,
            "fold_labels": list(self.fold_labels),
            "fold_rows": [int(v) for v in fold_rows],
            "l1_ratios": self.l1_ratios.tolist(),
            "alphas": self.alphas.tolist(),
            "grid_given": bool(self.grid_given),
            "mse_path": self.mse_path.tolist(),
            "mse_mean": self.mean_mse.tolist(),
            "mse_se": self.mse_se.tolist(),
            "n_nonzero": self.n_nonzero.tolist(),
            "coef_path": [path.coefs.tolist() for path in self.paths],
            "intercept_path": [path.intercepts.tolist() for path in self.paths],
            "gcv": [None if g is None else _finite_or_none(g[0]) for g in gcv],
            "gcv_df": [None if g is None else g[1].tolist() for g in gcv],
            "selection": selection,
            "best": [int(chosen[0]), int(chosen[1])],
            "l1_ratio": float(self.l1_ratios[chosen[0]]),
            "alpha": float(self.alphas[chosen]),
            "alpha_min": self.alpha_,
            "alpha_1se": self.alpha_1se,
        }

    @property
    def best_fit(self) -> PenalizedFit:
        """The refit on all the data at the best alpha and l1 ratio."""
        r, a = self.best_index
        return self.paths[r].fit_at(a)

    # scikit-learn's shapes: ElasticNetCV squeezes mse_path_ (one l1 ratio: alphas × folds).
    @property
    def mse_path_(self) -> np.ndarray:
        return np.squeeze(self.mse_path)

    @property
    def alphas_(self) -> np.ndarray:
        if self.grid_given or len(self.l1_ratios) == 1:
            return self.alphas[0]
        return self.alphas


def cross_validate_path(
    folds: FoldStates,
    *,
    l1_ratio=1.0,
    alphas=100,
    eps: float = 1e-3,
    fit_intercept: bool = True,
    standardize: bool = False,
    n_folds: int | None = None,
    tol: float = 1e-10,
    max_iter: int = 100_000,
) -> CVPath:
    """Cross-validate elastic-net paths over ``folds``; see the module docstring.

    ``l1_ratio`` is one value or a sequence; ``alphas`` a count (grid from the total
    state per l1 ratio) or an explicit grid (sorted decreasing, shared). ``n_folds``,
    when given, must match the number of folds found.
    """
    ratios = np.array([check_l1_ratio(v) for v in np.atleast_1d(l1_ratio)], dtype=np.float64)
    if ratios.size == 0:
        raise InputError("l1_ratio must be a number or a non-empty list of numbers in [0, 1].")
    folds.check_complete(n_folds)
    training = folds.training_states()
    total = folds.total()
    options = {"fit_intercept": fit_intercept, "standardize": standardize}
    total_problem = GramProblem.from_state(total, **options)
    fold_problems = [GramProblem.from_state(state, **options) for state in training]
    grid_given = not (isinstance(alphas, (int, np.integer)) and not isinstance(alphas, bool))
    if grid_given:
        grid = checked_alphas(alphas)
        grids = np.tile(grid, (len(ratios), 1))
    else:
        grids = np.stack(
            [
                alpha_grid(total_problem, l1_ratio=r, n_alphas=alphas, eps=eps, **options)
                for r in ratios
            ]
        )
    solve = {"tol": tol, "max_iter": max_iter, **options}
    mse = np.empty((len(ratios), grids.shape[1], len(training)))
    paths = []
    for r, ratio in enumerate(ratios):
        for k, (problem, train_state) in enumerate(zip(fold_problems, training)):
            path = elastic_net_path(problem, l1_ratio=ratio, alphas=grids[r], **solve)
            mse[r, :, k] = _fold_errors(folds.states[k], train_state, path, fit_intercept)
        paths.append(elastic_net_path(total_problem, l1_ratio=ratio, alphas=grids[r], **solve))
    return CVPath(ratios, grids, mse, folds.labels, tuple(paths), grid_given)


def _finite_or_none(values) -> list:
    return [float(v) if np.isfinite(v) else None for v in np.asarray(values, dtype=float)]


def _fold_errors(fold_state, train_state, path: PenalizedPath, fit_intercept: bool) -> np.ndarray:
    if fit_intercept:
        return validation_mse(
            fold_state, path.coefs, train_mean=(train_state.mean, train_state.mean_lo)
        )
    return validation_mse(fold_state, path.coefs, np.zeros(len(path.coefs)))


def validation_mse(state, coefs: np.ndarray, intercepts=None, *, train_mean=None) -> np.ndarray:
    r"""Weighted mean squared error ``Σw(y − xᵀβ − b)² / Σw`` of each ``(β, b)`` on the rows
    of ``state``.

    With ``u = [β; −1]`` over ``z = [x; y]`` and ``δ = μ_y − μ_xᵀβ − b`` the mean residual,
    ``Σw r² = uᵀMu + n·δ²`` (``M`` the centered co-moments, ``n = Σw``), so the error is
    exact from the fold's moments alone. ``coefs`` is ``(models, p)``. Give either the
    ``intercepts`` or ``train_mean`` (``(hi, lo)`` double-double means of the training
    columns): then ``b = μ̄_y − μ̄_xᵀβ`` is implied and ``δ`` is taken from mean
    differences, which keeps its digits when columns carry large offsets. Unweighted,
    ``n`` is the row count: scikit-learn's ``mse_path_`` entries (weighted: ``np.average``
    of squared residuals with the test weights).

    >>> from streamreg.solvers.moments import MomentState
    >>> z = np.array([[0.0, 1.0], [1.0, 2.0], [2.0, 4.0]])
    >>> mse = validation_mse(MomentState.from_arrays(z, names=["x", "y"]), [[1.5]], [1.0])
    >>> round(float(mse[0]), 12)  # residuals 0, −0.5, 0
    0.083333333333
    """
    coefs = np.atleast_2d(np.asarray(coefs, dtype=np.float64))
    n = float(state.weight_sum)
    if not n > 0:
        raise InputError("a validation fold has no rows with positive weight.")
    moments = np.asarray(state.comoment, dtype=np.float64)
    p = moments.shape[0] - 1
    if coefs.shape[1] != p:
        raise InputError(f"got {coefs.shape[1]} coefficients for a fold with {p} features.")
    u = np.column_stack([coefs, -np.ones(len(coefs))])
    spread = np.einsum("ij,jk,ik->i", u, moments, u)
    hi, lo = np.asarray(state.mean), np.asarray(state.mean_lo)
    if train_mean is not None:
        diff = (hi - np.asarray(train_mean[0])) + (lo - np.asarray(train_mean[1]))
        delta = diff[p] - coefs @ diff[:p]
    else:
        if intercepts is None:
            raise InputError("give the intercepts or the training means.")
        intercepts = np.broadcast_to(np.asarray(intercepts, dtype=np.float64), (len(coefs),))
        mean = hi + lo
        delta = mean[p] - coefs @ mean[:p] - intercepts
    return np.maximum(spread, 0.0) / n + delta**2
