r"""Solutions along an alpha path: coordinate descent for the elastic net, Cholesky for ridge.

See :mod:`streamreg.solvers.penalized` for the objective and the algorithm.

>>> import numpy as np
>>> from streamreg.solvers.moments import MomentState
>>> rng = np.random.default_rng(0)
>>> x = rng.normal(size=(200, 3))
>>> y = x @ [1.0, 0.0, -2.0] + 0.1 * rng.normal(size=200)
>>> state = MomentState.from_arrays(np.column_stack([x, y]), names=["a", "b", "c", "y"])
>>> fit = elastic_net(state, alpha=0.1, l1_ratio=1.0)
>>> [round(float(v), 3) for v in fit.coef]
[0.903, 0.0, -1.898]
>>> path = elastic_net_path(state, l1_ratio=0.5, alphas=5)
>>> path.coefs.shape, path.n_nonzero.tolist()
((5, 3), [0, 2, 2, 2, 3])
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...errors import InputError
from .cd import cd_path
from .problem import (
    GramProblem,
    alpha_grid,
    as_problem,
    check_alpha,
    check_l1_ratio,
    checked_alphas,
)
from .ridge import ridge_solve


@dataclass(frozen=True)
class PenalizedFit:
    """One solved alpha: coefficients in original units and how the solve ended."""

    feature_names: tuple[str, ...]
    alpha: float
    l1_ratio: float
    coef: np.ndarray
    intercept: float
    n_iter: int
    dual_gap: float
    fit_intercept: bool
    standardize: bool

    def predict(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(x, dtype=np.float64) @ self.coef + self.intercept


@dataclass(frozen=True)
class PenalizedPath:
    """Solutions along a decreasing alpha grid; ``coefs`` has one row per alpha.

    ``n_iter`` counts coordinate-descent sweeps (0 when the warm start's support
    solved exactly; 0 for closed-form ridge); ``dual_gaps`` are on the scale of the
    objective in the module docstring (0 for closed-form ridge).
    """

    feature_names: tuple[str, ...]
    l1_ratio: float
    alphas: np.ndarray
    coefs: np.ndarray
    intercepts: np.ndarray
    n_iter: np.ndarray
    dual_gaps: np.ndarray
    fit_intercept: bool
    standardize: bool

    @property
    def n_nonzero(self) -> np.ndarray:
        """Non-zero coefficients per alpha (glmnet's ``df`` column)."""
        return np.count_nonzero(self.coefs, axis=1)

    def fit_at(self, index: int) -> PenalizedFit:
        return PenalizedFit(
            self.feature_names,
            float(self.alphas[index]),
            self.l1_ratio,
            self.coefs[index].copy(),
            float(self.intercepts[index]),
            int(self.n_iter[index]),
            float(self.dual_gaps[index]),
            self.fit_intercept,
            self.standardize,
        )


# --------------------------------------------------------------------------- solving
def elastic_net(
    source,
    *,
    alpha: float,
    l1_ratio: float = 1.0,
    fit_intercept: bool = True,
    standardize: bool = False,
    tol: float = 1e-10,
    max_iter: int = 100_000,
) -> PenalizedFit:
    """Minimize the module docstring's objective at one ``alpha``; see there for the formula."""
    path = elastic_net_path(
        source,
        l1_ratio=l1_ratio,
        alphas=[check_alpha(alpha)],
        fit_intercept=fit_intercept,
        standardize=standardize,
        tol=tol,
        max_iter=max_iter,
    )
    return path.fit_at(0)


def elastic_net_path(
    source,
    *,
    l1_ratio: float = 1.0,
    alphas=100,
    eps: float = 1e-3,
    fit_intercept: bool = True,
    standardize: bool = False,
    tol: float = 1e-10,
    max_iter: int = 100_000,
    screening: bool = True,
) -> PenalizedPath:
    """Warm-started solutions along ``alphas`` (a count for :func:`alpha_grid`, or a grid).

    ``source`` is a state or a :class:`GramProblem`. ``tol`` bounds the duality gap
    relative to ``q`` (``gap ≤ tol·q``) and the largest coordinate change relative to
    the largest coefficient per sweep, as scikit-learn's ``tol``; ``max_iter`` bounds
    the sweeps per alpha. ``screening=False`` sweeps every feature (for checking).
    """
    ratio = check_l1_ratio(l1_ratio)
    if not (isinstance(tol, (int, float)) and np.isfinite(tol) and tol >= 0):
        raise InputError(f"tol must be a number zero or greater; got {tol!r}.")
    if isinstance(max_iter, bool) or not isinstance(max_iter, (int, np.integer)) or max_iter < 1:
        raise InputError(f"max_iter must be a positive integer; got {max_iter!r}.")
    problem = as_problem(source, fit_intercept, standardize)
    if isinstance(alphas, (int, np.integer)) and not isinstance(alphas, bool):
        grid = alpha_grid(
            problem,
            l1_ratio=ratio,
            n_alphas=alphas,
            eps=eps,
            fit_intercept=fit_intercept,
            standardize=standardize,
        )
    else:
        grid = checked_alphas(alphas)
    if ratio == 0.0:
        working, n_iter, gaps = _ridge_path(problem, grid)
    else:
        working, n_iter, gaps = cd_path(
            problem.gram,
            problem.cov,
            problem.target_square,
            grid,
            ratio,
            tol,
            int(max_iter),
            screening,
        )
    coefs, intercepts = problem.to_original(working)
    return PenalizedPath(
        problem.feature_names,
        ratio,
        grid,
        coefs,
        intercepts,
        n_iter,
        gaps,
        fit_intercept,
        standardize,
    )


def _ridge_path(problem: GramProblem, grid: np.ndarray):
    m = problem.gram.shape[0]
    working = np.zeros((len(grid), m))
    for i, alpha in enumerate(grid):
        working[i] = ridge_solve(problem, float(alpha))
    return working, np.zeros(len(grid), dtype=np.int64), np.zeros(len(grid))
