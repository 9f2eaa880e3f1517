r"""The penalized problem in working coordinates, its parameter checks and the alpha grid.

:class:`GramProblem` turns any state (``comoment``, ``mean``, ``mean_lo``, ``weight_sum``)
into ``Q``, ``c`` and ``q`` of :mod:`streamreg.solvers.penalized` (standardized if asked);
:func:`alpha_grid` is scikit-learn's ``_alpha_grid`` computed from a state.

>>> import numpy as np
>>> from streamreg.solvers.moments import MomentState
>>> z = np.array([[0.0, 1.0], [1.0, 3.0], [2.0, 2.0]])
>>> problem = GramProblem.from_state(MomentState.from_arrays(z, names=["x", "y"]))
>>> problem.gram.round(6).tolist(), problem.cov.round(6).tolist()
([[0.666667]], [0.333333])
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...errors import InputError, parameter

# scikit-learn's floor for a degenerate grid (np.finfo(float64).resolution).
_GRID_FLOOR = float(np.finfo(np.float64).resolution)
# glmnet's convention: a ridge grid starts where l1_ratio = 0.001 would zero every coefficient.
RIDGE_GRID_L1_RATIO = 1e-3
# A column whose SD is below this many ulps of its mean is constant up to rounding.
_CONSTANT_ULPS = 64


@dataclass(frozen=True)
class GramProblem:
    """The penalized problem in working coordinates, built once per state.

    ``gram`` and ``cov`` are ``Q`` and ``c`` (standardized if asked) restricted to
    the usable (non-constant) features; ``scale`` maps working to original units.
    """

    feature_names: tuple[str, ...]
    weight_sum: float
    gram: np.ndarray
    cov: np.ndarray
    target_square: float
    usable: np.ndarray
    scale: np.ndarray
    x_mean: np.ndarray
    y_mean: float
    fit_intercept: bool
    standardize: bool

    @classmethod
    def from_state(
        cls, state, *, fit_intercept: bool = True, standardize: bool = False
    ) -> GramProblem:
        """``Q``, ``c`` and ``q`` of any state (``comoment``, ``mean``, ``mean_lo``,
        ``weight_sum``)."""
        n = float(state.weight_sum)
        if not np.isfinite(n) or not state.is_finite():
            raise InputError("the state holds NaN or ±inf, so no penalized model can be solved.")
        if n <= 0.0:
            raise InputError("the state holds no rows with positive weight.")
        mean = np.asarray(state.mean + state.mean_lo, dtype=np.float64)
        moments = state.comoment if fit_intercept else state.raw_moments()
        moments = np.asarray(moments, dtype=np.float64) / n
        p = moments.shape[0] - 1
        diag = np.diagonal(moments)[:p].copy()
        if fit_intercept:
            usable = diag > (_CONSTANT_ULPS * np.finfo(np.float64).eps * np.abs(mean[:p])) ** 2
            usable &= diag > 0.0
        else:
            usable = diag > 0.0
        scale = np.sqrt(np.where(usable, diag, 1.0)) if standardize else np.ones(p)
        idx = np.flatnonzero(usable)
        s = scale[idx]
        gram = moments[np.ix_(idx, idx)] / np.outer(s, s)
        cov = moments[idx, p] / s
        return cls(
            tuple(state.names[:p]),
            n,
            np.ascontiguousarray(gram),
            cov,
            float(moments[p, p]),
            usable,
            scale,
            mean[:p] if fit_intercept else np.zeros(p),
            float(mean[p]) if fit_intercept else 0.0,
            fit_intercept,
            standardize,
        )

    @property
    def n_features(self) -> int:
        return len(self.feature_names)

    def to_original(self, working: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Coefficients ``β = γ/s`` (rows of ``working``, usable features) and intercepts."""
        working = np.atleast_2d(working)
        coefs = np.zeros((working.shape[0], self.n_features))
        coefs[:, self.usable] = working / self.scale[self.usable]
        intercepts = (
            self.y_mean - coefs @ self.x_mean if self.fit_intercept else np.zeros(len(coefs))
        )
        return coefs, intercepts


# --------------------------------------------------------------------------- checks
def check_alpha(alpha, name: str = "alpha") -> float:
    """A penalty: a finite number zero or greater (0 is no penalty)."""
    alpha = alpha.item() if isinstance(alpha, np.generic) else alpha
    try:
        value = float(alpha)
    except (TypeError, ValueError):
        value = float("nan")
    if isinstance(alpha, bool) or not np.isfinite(value) or value < 0:
        raise InputError(
            f"{name} must be a finite number zero or greater (0: no penalty); "
            f"got {parameter(name, alpha)}."
        )
    return value


def check_l1_ratio(l1_ratio) -> float:
    """The mix of the two penalties: a number from 0 (ridge) to 1 (lasso)."""
    l1_ratio = l1_ratio.item() if isinstance(l1_ratio, np.generic) else l1_ratio
    try:
        value = float(l1_ratio)
    except (TypeError, ValueError):
        value = float("nan")
    if isinstance(l1_ratio, bool) or not 0.0 <= value <= 1.0:
        raise InputError(
            "l1_ratio must be a number from 0 (ridge) to 1 (lasso); "
            f"got {parameter('l1_ratio', l1_ratio)}."
        )
    return value


def as_problem(source, fit_intercept: bool, standardize: bool) -> GramProblem:
    if isinstance(source, GramProblem):
        if source.fit_intercept != fit_intercept or source.standardize != standardize:
            raise InputError(
                "the GramProblem was built with other fit_intercept/standardize settings."
            )
        return source
    return GramProblem.from_state(source, fit_intercept=fit_intercept, standardize=standardize)


# --------------------------------------------------------------------------- grid
def alpha_grid(
    source,
    *,
    l1_ratio: float = 1.0,
    n_alphas: int = 100,
    eps: float = 1e-3,
    fit_intercept: bool = True,
    standardize: bool = False,
) -> np.ndarray:
    """scikit-learn's ``_alpha_grid`` from a state: ``n_alphas`` log-spaced values from
    ``α_max = max_j |c_j| / ρ`` down to ``eps·α_max``.

    ``c = M_xy/Σw`` is the weighted covariance of each feature with the target
    (the raw cross moment without an intercept), so weights enter as in
    scikit-learn (``Xᵀ(w·(y − ȳ_w)) / Σw``). With ``standardize`` the standardized
    ``c_j/s_j`` is used: ``α_max`` is then the smallest alpha with every
    coefficient zero in both modes. For ridge (``ρ = 0``, where scikit-learn
    refuses) the grid is glmnet's: ``ρ = 0.001`` in ``α_max``.

    >>> from streamreg.solvers.moments import MomentState
    >>> z = np.array([[0.0, 1.0], [1.0, 3.0], [2.0, 2.0]])
    >>> grid = alpha_grid(MomentState.from_arrays(z, names=["x", "y"]), n_alphas=3, eps=0.01)
    >>> [round(float(a), 12) for a in grid]
    [0.333333333333, 0.033333333333, 0.003333333333]
    """
    ratio = check_l1_ratio(l1_ratio)
    if isinstance(n_alphas, bool) or not isinstance(n_alphas, (int, np.integer)) or n_alphas < 1:
        raise InputError(f"the number of alphas must be a positive integer; got {n_alphas!r}.")
    if not (isinstance(eps, (int, float)) and np.isfinite(eps) and eps > 0):
        raise InputError(f"eps must be a positive number; got {eps!r}.")
    problem = as_problem(source, fit_intercept, standardize)
    ratio = ratio if ratio > 0 else RIDGE_GRID_L1_RATIO
    alpha_max = float(np.max(np.abs(problem.cov), initial=0.0)) / ratio
    if alpha_max <= _GRID_FLOOR:
        return np.full(int(n_alphas), _GRID_FLOOR)
    return np.geomspace(alpha_max, alpha_max * eps, num=int(n_alphas))


def checked_alphas(alphas) -> np.ndarray:
    """An explicit grid, validated and sorted decreasing (as scikit-learn does)."""
    try:
        values = None if isinstance(alphas, str) else np.atleast_1d(np.asarray(alphas, float))
    except (TypeError, ValueError):
        values = None
    if values is None or values.ndim != 1 or values.size == 0:
        raise InputError(f"alphas must be a count or a non-empty list of numbers; got {alphas!r}.")
    for value in values:
        if not (np.isfinite(value) and value >= 0):
            raise InputError(
                "every alpha must be a finite number zero or greater; the grid holds "
                f"{float(value)!r}."
            )
    return np.sort(values)[::-1]
