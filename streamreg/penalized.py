r"""Elastic net, lasso and ridge solved on a mergeable Gram state.

The objective is scikit-learn's ``ElasticNet``, with weights ``w``, ``n = Σw`` and
``ρ = l1_ratio``::

    1/(2n) · Σ wᵢ (yᵢ − xᵢᵀβ − b)²  +  α·ρ·‖β‖₁  +  ½·α·(1 − ρ)·‖β‖²

The intercept ``b`` is never penalized. With an intercept, ``b = μ_y − μ_xᵀβ`` and
``β`` minimizes, over the centered co-moments ``M`` of the state,

    ½ βᵀQβ − cᵀβ + ½ q  +  α·ρ·‖β‖₁ + ½·α·(1 − ρ)·‖β‖²,
    Q = M_xx/n,  c = M_xy/n,  q = M_yy/n;

without one, the raw moments ``Σ w z zᵀ / n`` take ``M/n``'s place (``b = 0``).
With ``standardize=True`` the penalty applies to ``γ = s ⊙ β`` with
``s_j = √Q_jj`` (the weighted population SD of column j, or its root mean square
without an intercept — glmnet's convention), solved on ``S⁻¹QS⁻¹`` and ``S⁻¹c``
and reported as ``β = γ / s``. Constant columns (``s_j`` at rounding level) get 0.

Solver: coordinate descent with covariance updates (Friedman, Hastie & Tibshirani
2010, *J. Stat. Softw.* 33(1), §2.2): the gradient ``g = c − Qβ`` is kept up to
date, and a coordinate step costs one column of ``Q``. Along a decreasing path
each solve starts from the previous one, works on the *sequential strong set*
(Tibshirani et al. 2012, *JRSS B* 74(2): keep j if ``|g_j(α_prev)| ≥ ρ(2α − α_prev)``)
plus the previous support, and is checked against the KKT conditions on every
feature, adding violators until none remain. Between sweeps a Newton step on the
current support ``S`` with signs ``σ`` solves ``(Q_SS + α(1−ρ)I) β_S = c_S − αρσ``;
if a sign would flip it stops at the first zero (feature-sign search, Lee et al.
2007), and if the signs hold and every other feature has ``|g_j| ≤ αρ`` it *is* the
optimum to rounding — so the answer rarely rests on the sweep tolerance, and a warm
start whose support is still right costs one Cholesky and no sweep. Convergence is
judged by the duality gap (scikit-learn's ``enet_coordinate_descent_gram`` gap, on
the scale of the objective above): ``gap ≤ tol · q``, after the largest coordinate
change of a sweep fell below ``tol`` times the largest coefficient (the array-level
engine is :mod:`streamreg.enet_cd`). Ridge (``ρ = 0``) is solved in closed
form by Cholesky of ``Q + αI``.

>>> import numpy as np
>>> from streamreg.state import MomentState
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
from scipy.linalg import LinAlgError, cho_factor, cho_solve

from .enet_cd import ConvergenceWarning, cd_path
from .errors import CollinearityError, InputError

__all__ = [
    "ConvergenceWarning", "GramProblem", "PenalizedFit", "PenalizedPath", "RidgeGCV", "alpha_grid",
    "checked_alphas", "check_alpha", "check_l1_ratio", "elastic_net", "elastic_net_path",
    "ridge_gcv", "ridge_solve",
]

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
    def from_state(cls, state, *, fit_intercept: bool = True,
                   standardize: bool = False) -> GramProblem:
        """``Q``, ``c`` and ``q`` of any state with ``comoment``, ``mean``, ``mean_lo``, ``weight_sum``."""
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
        return cls(tuple(state.names[:p]), n, np.ascontiguousarray(gram), cov,
                   float(moments[p, p]), usable, scale,
                   mean[:p] if fit_intercept else np.zeros(p),
                   float(mean[p]) if fit_intercept else 0.0, fit_intercept, standardize)

    @property
    def n_features(self) -> int:
        return len(self.feature_names)

    def to_original(self, working: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Coefficients ``β = γ/s`` (rows of ``working``, usable features) and intercepts."""
        working = np.atleast_2d(working)
        coefs = np.zeros((working.shape[0], self.n_features))
        coefs[:, self.usable] = working / self.scale[self.usable]
        intercepts = self.y_mean - coefs @ self.x_mean if self.fit_intercept else np.zeros(len(coefs))
        return coefs, intercepts


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
        return PenalizedFit(self.feature_names, float(self.alphas[index]), self.l1_ratio,
                            self.coefs[index].copy(), float(self.intercepts[index]),
                            int(self.n_iter[index]), float(self.dual_gaps[index]),
                            self.fit_intercept, self.standardize)


# --------------------------------------------------------------------------- checks
def check_alpha(alpha, name: str = "alpha") -> float:
    try:
        value = float(alpha)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a number zero or greater; got {alpha!r}.") from None
    if not np.isfinite(value) or value < 0:
        raise InputError(f"{name} must be a finite number zero or greater; got {alpha!r}.")
    return value


def check_l1_ratio(l1_ratio) -> float:
    try:
        value = float(l1_ratio)
    except (TypeError, ValueError):
        raise InputError(f"l1_ratio must be a number between 0 and 1; got {l1_ratio!r}.") from None
    if not 0.0 <= value <= 1.0:
        raise InputError(f"l1_ratio must be between 0 and 1 (0 ridge, 1 lasso); got {l1_ratio!r}.")
    return value


def _problem(source, fit_intercept: bool, standardize: bool) -> GramProblem:
    if isinstance(source, GramProblem):
        if source.fit_intercept != fit_intercept or source.standardize != standardize:
            raise InputError("the GramProblem was built with other fit_intercept/standardize settings.")
        return source
    return GramProblem.from_state(source, fit_intercept=fit_intercept, standardize=standardize)


# --------------------------------------------------------------------------- grid
def alpha_grid(source, *, l1_ratio: float = 1.0, n_alphas: int = 100, eps: float = 1e-3,
               fit_intercept: bool = True, standardize: bool = False) -> np.ndarray:
    """scikit-learn's ``_alpha_grid`` from a state: ``n_alphas`` log-spaced values from
    ``α_max = max_j |c_j| / ρ`` down to ``eps·α_max``.

    ``c = M_xy/Σw`` is the weighted covariance of each feature with the target
    (the raw cross moment without an intercept), so weights enter as in
    scikit-learn (``Xᵀ(w·(y − ȳ_w)) / Σw``). With ``standardize`` the standardized
    ``c_j/s_j`` is used: ``α_max`` is then the smallest alpha with every
    coefficient zero in both modes. For ridge (``ρ = 0``, where scikit-learn
    refuses) the grid is glmnet's: ``ρ = 0.001`` in ``α_max``.

    >>> from streamreg.state import MomentState
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
    problem = _problem(source, fit_intercept, standardize)
    ratio = ratio if ratio > 0 else RIDGE_GRID_L1_RATIO
    alpha_max = float(np.max(np.abs(problem.cov), initial=0.0)) / ratio
    if alpha_max <= _GRID_FLOOR:
        return np.full(int(n_alphas), _GRID_FLOOR)
    return np.geomspace(alpha_max, alpha_max * eps, num=int(n_alphas))


def checked_alphas(alphas) -> np.ndarray:
    """An explicit grid, validated and sorted decreasing (as scikit-learn does)."""
    values = np.atleast_1d(np.asarray(alphas, dtype=np.float64)) if not isinstance(alphas, str) else None
    if values is None or values.ndim != 1 or values.size == 0:
        raise InputError(f"alphas must be a count or a non-empty list of numbers; got {alphas!r}.")
    for value in values:
        check_alpha(value, "every alpha")
    return np.sort(values)[::-1]


# --------------------------------------------------------------------------- solving
def elastic_net(source, *, alpha: float, l1_ratio: float = 1.0, fit_intercept: bool = True,
                standardize: bool = False, tol: float = 1e-10,
                max_iter: int = 100_000) -> PenalizedFit:
    """Minimize the module docstring's objective at one ``alpha``; see there for the formula."""
    path = elastic_net_path(source, l1_ratio=l1_ratio, alphas=[check_alpha(alpha)],
                            fit_intercept=fit_intercept, standardize=standardize, tol=tol,
                            max_iter=max_iter)
    return path.fit_at(0)


def elastic_net_path(source, *, l1_ratio: float = 1.0, alphas=100, eps: float = 1e-3,
                     fit_intercept: bool = True, standardize: bool = False, tol: float = 1e-10,
                     max_iter: int = 100_000, screening: bool = True) -> PenalizedPath:
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
    problem = _problem(source, fit_intercept, standardize)
    if isinstance(alphas, (int, np.integer)) and not isinstance(alphas, bool):
        grid = alpha_grid(problem, l1_ratio=ratio, n_alphas=alphas, eps=eps,
                          fit_intercept=fit_intercept, standardize=standardize)
    else:
        grid = checked_alphas(alphas)
    if ratio == 0.0:
        working, n_iter, gaps = _ridge_path(problem, grid)
    else:
        working, n_iter, gaps = cd_path(problem.gram, problem.cov, problem.target_square, grid,
                                        ratio, tol, int(max_iter), screening)
    coefs, intercepts = problem.to_original(working)
    return PenalizedPath(problem.feature_names, ratio, grid, coefs, intercepts, n_iter, gaps,
                         fit_intercept, standardize)


def _ridge_path(problem: GramProblem, grid: np.ndarray):
    m = problem.gram.shape[0]
    working = np.zeros((len(grid), m))
    for i, alpha in enumerate(grid):
        working[i] = ridge_solve(problem, float(alpha))
    return working, np.zeros(len(grid), dtype=np.int64), np.zeros(len(grid))


def ridge_solve(problem: GramProblem, alpha: float) -> np.ndarray:
    """Working coefficients ``(Q + αI)⁻¹ c`` by Cholesky (``α = 0`` is least squares)."""
    m = problem.gram.shape[0]
    if m == 0:
        return np.zeros(0)
    try:
        factor = cho_factor(problem.gram + alpha * np.eye(m), lower=True, check_finite=False)
    except LinAlgError:
        raise CollinearityError(
            "the features are collinear, so alpha = 0 with l1_ratio = 0 has no unique solution; "
            "use a positive alpha.") from None
    return cho_solve(factor, problem.cov, check_finite=False)


# --------------------------------------------------------------------------- ridge GCV
@dataclass(frozen=True)
class RidgeGCV:
    """Generalized cross-validation along a ridge path; ``best_alpha`` minimizes ``gcv``."""

    alphas: np.ndarray
    gcv: np.ndarray
    df: np.ndarray
    rss: np.ndarray

    @property
    def best_alpha(self) -> float:
        return float(self.alphas[int(np.argmin(self.gcv))])


def ridge_gcv(source, alphas, *, fit_intercept: bool = True, standardize: bool = False) -> RidgeGCV:
    r"""Exact GCV of ridge (``l1_ratio = 0``) at every alpha from one eigendecomposition.

    For ElasticNet's ``α`` the ridge fit minimizes ``Σwr² + nα‖γ‖²`` (``n = Σw``,
    ``γ = s⊙β``, scikit-learn's ``Ridge(alpha=n·α)``). Its hat matrix
    ``H = X(XᵀWX + nαS²)⁻¹XᵀW`` (plus the intercept's projection) has trace::

        df(α) = [1 if intercept] + Σ_j d_j / (d_j + α),

    ``d_j`` the eigenvalues of the working Gram ``Q`` (``M_xx/n``, standardized if
    asked; ``d_j/(d_j + α) = D_j/(D_j + nα)`` for the eigenvalues ``D = n·d`` of
    ``M_xx``). With ``RSS(α) = Σ wᵢ rᵢ²`` (Golub, Heath & Wahba 1979, weighted)::

        GCV(α) = n · RSS(α) / (n − df(α))²

    ``RSS/n = q − Σ z_j² (d_j + 2α)/(d_j + α)²`` with ``z = Vᵀc`` for ``Q = V diag(d) Vᵀ``.

    >>> from streamreg.state import MomentState
    >>> rng = np.random.default_rng(1)
    >>> x = rng.normal(size=(50, 2)); y = x @ [1.0, 2.0] + rng.normal(size=50)
    >>> result = ridge_gcv(MomentState.from_arrays(np.column_stack([x, y]), names=["a", "b", "y"]),
    ...                    [10.0, 0.1, 0.0])
    >>> [round(float(v), 3) for v in result.df]
    [1.134, 2.751, 3.0]
    """
    grid = checked_alphas(alphas)
    problem = _problem(source, fit_intercept, standardize)
    n = problem.weight_sum
    d, vectors = np.linalg.eigh(problem.gram)
    d = np.maximum(d, 0.0)
    z2 = (vectors.T @ problem.cov) ** 2
    with np.errstate(divide="ignore", invalid="ignore"):
        shrink = d[None, :] / (d[None, :] + grid[:, None])
        fitted = z2[None, :] * (d[None, :] + 2.0 * grid[:, None]) / (d[None, :] + grid[:, None]) ** 2
    shrink = np.where(np.isfinite(shrink), shrink, 0.0)  # d = α = 0: a direction with no data
    fitted = np.where(np.isfinite(fitted), fitted, 0.0)
    df = shrink.sum(axis=1) + (1.0 if fit_intercept else 0.0)
    rss = n * np.maximum(problem.target_square - fitted.sum(axis=1), 0.0)
    with np.errstate(divide="ignore"):
        gcv = np.where(n - df > 0, n * rss / (n - df) ** 2, np.inf)
    return RidgeGCV(grid, gcv, df, rss)
