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
change of a sweep fell below ``tol`` times the largest coefficient. Ridge (``ρ = 0``) is solved in closed
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

import warnings
from dataclasses import dataclass

import numpy as np
from scipy.linalg import LinAlgError, cho_factor, cho_solve

from .errors import CollinearityError, InputError

# scikit-learn's floor for a degenerate grid (np.finfo(float64).resolution).
_GRID_FLOOR = float(np.finfo(np.float64).resolution)
# glmnet's convention: a ridge grid starts where l1_ratio = 0.001 would zero every coefficient.
RIDGE_GRID_L1_RATIO = 1e-3
# A feature outside the support may exceed the L1 threshold by this much (relative) and
# still count as satisfying the KKT conditions: the gradient itself is only that accurate.
_KKT_SLACK = 1e-10
# A column whose SD is below this many ulps of its mean is constant up to rounding.
_CONSTANT_ULPS = 64


class ConvergenceWarning(UserWarning):
    """Coordinate descent stopped at ``max_iter`` sweeps before the duality gap met ``tol``."""


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
        working, n_iter, gaps = _enet_path(problem, grid, ratio, tol, int(max_iter), screening)
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


def _enet_path(problem: GramProblem, grid: np.ndarray, ratio: float, tol: float,
               max_iter: int, screening: bool):
    gram, cov, q = problem.gram, problem.cov, problem.target_square
    m = len(cov)
    working = np.zeros((len(grid), m))
    n_iter = np.zeros(len(grid), dtype=np.int64)
    gaps = np.zeros(len(grid))
    beta = np.zeros(m)
    gradient = cov.copy()  # c − Qβ at the previous solution (β = 0 at α_max)
    previous_l1 = float(np.max(np.abs(cov), initial=0.0))
    for i, alpha in enumerate(grid):
        l1, l2 = float(alpha) * ratio, float(alpha) * (1.0 - ratio)
        if screening:
            strong = (np.abs(gradient) >= 2.0 * l1 - previous_l1) | (beta != 0.0)
        else:
            strong = np.ones(m, dtype=bool)
        beta, gradient, sweeps, gap, converged = _solve_alpha(gram, cov, q, l1, l2, beta, strong,
                                                              tol, max_iter)
        if not converged:
            warnings.warn(
                f"coordinate descent stopped after {max_iter} sweeps at alpha={alpha:g} with duality "
                f"gap {gap:.3g} > tol·q = {tol * q:.3g}; raise max_iter or tol.",
                ConvergenceWarning, stacklevel=3)
        working[i], n_iter[i], gaps[i] = beta, sweeps, gap
        previous_l1 = l1
    return working, n_iter, gaps


def _solve_alpha(gram, cov, q, l1, l2, beta, work, tol, max_iter):
    """Solve one alpha from a warm start on a working set grown by KKT checks."""
    beta = beta.copy()
    sweeps = 0
    inner_tol = tol
    while True:
        idx = np.flatnonzero(work)
        sub = np.ascontiguousarray(gram[np.ix_(idx, idx)])
        beta[idx], used, exact = _solve_working_set(sub, cov[idx], l1, l2, beta[idx], inner_tol,
                                                    max_iter - sweeps)
        sweeps += used
        gradient = cov - gram @ beta
        violators = ~work & (np.abs(gradient) > l1 * (1.0 + _KKT_SLACK))
        if violators.any() and sweeps < max_iter:
            work = work | violators
            continue
        gap = duality_gap(beta, gradient, cov, q, l1, l2)
        # An exact solve on the working set with no violator outside is the optimum: its
        # gap is rounding, and sweeping on could not lower it.
        if exact or gap <= tol * q or sweeps >= max_iter:
            return beta, gradient, sweeps, gap, exact or gap <= tol * q
        # The sweep criterion was met but the gap was not: sweep on, more strictly.
        inner_tol = inner_tol / 16.0


def _solve_working_set(gram, cov, l1, l2, beta, tol, budget):
    """Coordinate descent on a small problem, each sweep followed by a Newton step on the
    support (:func:`_support_step`).

    Returns the coefficients, the sweeps used and whether the KKT conditions hold exactly.
    """
    sweeps = 0
    failed_support = None
    while True:
        support = tuple(np.flatnonzero(beta))
        if support != failed_support:
            beta, exact = _support_step(gram, cov, l1, l2, beta)
            if exact:
                return beta, sweeps, True
            failed_support = support
        if sweeps >= budget:
            return beta, sweeps, False
        beta, max_change, max_coef = _sweep(gram, cov, l1, l2, beta)
        sweeps += 1
        if max_coef == 0.0 or max_change <= tol * max_coef:
            return beta, sweeps, False


def _sweep(gram, cov, l1, l2, beta):
    """One cyclic pass of covariance-update coordinate descent.

    Only coordinates that are non-zero or whose gradient exceeds the L1 threshold at
    the start of the pass are visited (the others would stay at zero); the KKT check
    after the solve catches any that cross the threshold during the pass.
    """
    g = cov - gram @ beta
    visit = np.flatnonzero((beta != 0.0) | (np.abs(g) > l1)).tolist()
    diag = np.diagonal(gram)
    b = beta.copy()
    max_change = 0.0
    for j in visit:
        old = b[j]
        d = diag[j]
        t = g[j] + d * old
        if t > l1:
            new = (t - l1) / (d + l2)
        elif t < -l1:
            new = (t + l1) / (d + l2)
        else:
            new = 0.0
        if new != old:
            change = new - old
            g -= change * gram[j]
            b[j] = new
            max_change = max(max_change, abs(change))
    return b, float(max_change), float(np.max(np.abs(b), initial=0.0))


def _support_step(gram, cov, l1, l2, beta):
    """A Newton step on the support of ``beta``; ``(new beta, is it the optimum)``.

    On the support ``S`` with signs ``σ`` the objective is the quadratic minimized by
    ``x``: ``(Q_SS + l2·I) x = c_S − l1·σ``. If ``x`` keeps the signs ``σ`` and every
    feature off the support has ``|c_j − Q_jS x| ≤ l1``, the KKT conditions hold and
    ``x`` is the minimizer (to rounding). If some sign flips, the step stops where the
    first coefficient reaches zero (feature-sign search, Lee et al. 2007): the objective
    falls along the way, as it is that same quadratic on the segment.
    """
    support = np.flatnonzero(beta)
    x = np.zeros_like(beta)
    if support.size:
        signs = np.sign(beta[support])
        system = gram[np.ix_(support, support)] + l2 * np.eye(support.size)
        try:
            factor = cho_factor(system, lower=True, check_finite=False)
        except LinAlgError:
            return beta, False
        solution = cho_solve(factor, cov[support] - l1 * signs, check_finite=False)
        crossing = signs * solution <= 0.0
        if crossing.any():
            old = beta[support]
            fractions = old[crossing] / (old[crossing] - solution[crossing])
            first = int(np.argmin(fractions))
            step = old + fractions[first] * (solution - old)
            step[np.flatnonzero(crossing)[first]] = 0.0
            step[signs * step < 0.0] = 0.0  # rounding at the boundary
            x[support] = step
            if _objective(gram, cov, l1, l2, x) > _objective(gram, cov, l1, l2, beta):
                return beta, False
            return x, False
        x[support] = solution
    off = np.ones(len(beta), dtype=bool)
    off[support] = False
    if off.any():
        gradient = cov[off] - gram[np.ix_(off, support)] @ x[support]
        if np.any(np.abs(gradient) > l1 * (1.0 + _KKT_SLACK)):
            better = _objective(gram, cov, l1, l2, x) <= _objective(gram, cov, l1, l2, beta)
            return (x if better else beta), False
    return x, True


def _objective(gram, cov, l1, l2, beta) -> float:
    """``½βᵀQβ − cᵀβ + l1‖β‖₁ + ½l2‖β‖²`` (the objective less its constant ``½q``)."""
    return float(0.5 * beta @ (gram @ beta) - cov @ beta + l1 * np.abs(beta).sum()
                 + 0.5 * l2 * beta @ beta)


def duality_gap(beta, gradient, cov, q, l1, l2) -> float:
    """Primal minus dual objective at ``beta`` (``gradient = c − Qβ``).

    With ``R = ‖r‖²/n = q − 2cᵀβ + βᵀQβ``, ``G = c − Qβ − l2·β`` and
    ``κ = min(1, l1/‖G‖∞)`` (the residual scaled into the dual feasible set)::

        gap = ½(1 + κ²)(R + l2‖β‖²) − κ(q − cᵀβ) + l1‖β‖₁

    (the elastic net as a lasso on augmented data; scikit-learn's gram gap over n).
    """
    q_beta = cov - gradient
    residual = max(q - 2.0 * cov @ beta + beta @ q_beta, 0.0)
    dual_norm = float(np.max(np.abs(gradient - l2 * beta), initial=0.0))
    kappa = min(1.0, l1 / dual_norm) if dual_norm > 0 else 1.0
    norm2 = float(beta @ beta)
    gap = (0.5 * (1.0 + kappa**2) * (residual + l2 * norm2) - kappa * (q - cov @ beta)
           + l1 * float(np.abs(beta).sum()))
    return float(gap)


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
