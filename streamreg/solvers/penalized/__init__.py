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
engine is :mod:`streamreg.solvers.penalized.cd`). Ridge (``ρ = 0``) is solved in closed
form by Cholesky of ``Q + αI``.

The modules: :mod:`.problem` (working coordinates, checks, the alpha grid), :mod:`.cd`
(coordinate descent on arrays), :mod:`.path` (paths and single fits), :mod:`.ridge`
(closed form and generalized cross-validation), :mod:`.cv_path` (cross-validated paths
over fold states). :func:`solve_penalized` is this family's entry in
:data:`streamreg.solvers.FAMILIES`: it solves any state (moments, QR or exact) at one
:class:`Penalty` into a :class:`~streamreg.solvers.solution.Solution`.

>>> import numpy as np
>>> from streamreg.solvers.moments import MomentState
>>> rng = np.random.default_rng(0)
>>> x = rng.normal(size=(200, 3))
>>> y = x @ [1.0, 0.0, -2.0] + 0.1 * rng.normal(size=200)
>>> state = MomentState.from_arrays(np.column_stack([x, y]), names=["a", "b", "c", "y"])
>>> solution = solve_penalized(state, penalty=Penalty(alpha=0.1, l1_ratio=1.0))
>>> [round(float(v), 3) for v in solution.coef], solution.rank
([0.903, 0.0, -1.898], 3)
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from ...errors import ConvergenceWarning, InputError
from ..solution import Solution, intercept_from_means
from .cv_path import CVPath, cross_validate_path, validation_mse
from .path import PenalizedFit, PenalizedPath, elastic_net, elastic_net_path
from .problem import (
    RIDGE_GRID_L1_RATIO,
    GramProblem,
    alpha_grid,
    check_alpha,
    check_l1_ratio,
    checked_alphas,
)
from .ridge import RidgeGCV, ridge_gcv, ridge_solve

__all__ = [
    "CVPath",
    "GramProblem",
    "Penalty",
    "PenalizedFit",
    "PenalizedPath",
    "RIDGE_GRID_L1_RATIO",
    "RidgeGCV",
    "alpha_grid",
    "check_alpha",
    "check_l1_ratio",
    "checked_alphas",
    "cross_validate_path",
    "elastic_net",
    "elastic_net_path",
    "penalized_solution",
    "ridge_gcv",
    "ridge_solve",
    "solve_penalized",
    "validation_mse",
]

SOLVER_NAME = "elastic_net"


@dataclass(frozen=True)
class Penalty:
    """The penalty of one fit: ``alpha``, ``l1_ratio`` (0 ridge … 1 lasso), whether the
    standardized coefficients are penalized, and the coordinate-descent tolerance and sweep
    limit (scikit-learn's ``tol`` on the duality gap relative to ``q``, and ``max_iter``)."""

    alpha: float
    l1_ratio: float = 1.0
    standardize: bool = False
    tol: float = 1e-10
    max_iter: int = 100_000

    def checked(self) -> Penalty:
        """The same penalty with every field validated (one sentence per mistake)."""
        if not isinstance(self.standardize, (bool, np.bool_)):
            raise InputError(f"standardize must be True or False; got {self.standardize!r}.")
        tol = self.tol
        if isinstance(tol, bool) or not isinstance(tol, (int, float)) or not tol >= 0:
            raise InputError(f"tol must be a number zero or greater; got {tol!r}.")
        limit = self.max_iter
        if isinstance(limit, bool) or not isinstance(limit, (int, np.integer)) or limit < 1:
            raise InputError(f"max_iter must be a positive integer; got {limit!r}.")
        return Penalty(
            check_alpha(self.alpha),
            check_l1_ratio(self.l1_ratio),
            bool(self.standardize),
            float(tol),
            int(limit),
        )

    @property
    def kind(self) -> str:
        """ridge, lasso or elastic net — in words, for reports."""
        return {0.0: "ridge", 1.0: "lasso"}.get(self.l1_ratio, "elastic net")


def solve_penalized(
    state, *, fit_intercept: bool = True, drop_collinear: bool = False, penalty: Penalty
) -> Solution:
    """Solve ``state`` at ``penalty`` (the family's entry in :data:`streamreg.solvers.FAMILIES`).

    ``drop_collinear`` has no effect: a positive penalty makes every solution unique, and
    collinear columns share the weight (ridge) or one of them is chosen (lasso).
    """
    penalty = penalty.checked()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        fit = elastic_net(
            state,
            alpha=penalty.alpha,
            l1_ratio=penalty.l1_ratio,
            fit_intercept=fit_intercept,
            standardize=penalty.standardize,
            tol=penalty.tol,
            max_iter=penalty.max_iter,
        )
    notes = [str(w.message) for w in caught if issubclass(w.category, ConvergenceWarning)]
    for note in notes:
        warnings.warn(note, ConvergenceWarning, stacklevel=2)
    return penalized_solution(state, fit, penalty, warnings=notes)


def penalized_solution(state, fit: PenalizedFit, penalty: Penalty, *, warnings=()) -> Solution:
    """The :class:`Solution` of a penalized fit: sums of squares exact from the state.

    With ``u = [β; −1]``, ``SSR = uᵀMu`` (centered moments, the intercept from the means) or
    ``uᵀ(Σwzzᵀ)u`` without an intercept; ``rank`` counts the non-zero coefficients (and the
    intercept), the degrees of freedom of the lasso (Zou, Hastie & Tibshirani 2007). There
    is no ``(XᵀWX)⁻¹``: a penalized estimate is biased, so no standard error or p value is
    reported for it.
    """
    coef = np.asarray(fit.coef, dtype=np.float64)
    p = len(coef)
    moments = np.asarray(state.comoment if fit.fit_intercept else state.raw_moments(), float)
    u = np.append(coef, -1.0)
    ssr = max(float(u @ moments @ u), 0.0)
    tss = float(moments[p, p])
    intercept = intercept_from_means(state, coef) if fit.fit_intercept else 0.0
    support = np.flatnonzero(coef)
    record = {
        "alpha": fit.alpha,
        "l1_ratio": fit.l1_ratio,
        "standardize": fit.standardize,
        "tol": penalty.tol,
        "max_iter": penalty.max_iter,
        "n_iter": fit.n_iter,
        "dual_gap": fit.dual_gap,
        "n_nonzero": int(support.size),
    }
    return Solution(
        coef=coef,
        intercept=float(intercept),
        aliased=[],
        rank=int(support.size) + int(fit.fit_intercept),
        condition_number=_support_condition(state, fit, support),
        ssr=ssr,
        tss=tss,
        solver=SOLVER_NAME,
        warnings=list(warnings),
        xtx_inv=None,
        penalty=record,
    )


def _support_condition(state, fit: PenalizedFit, support: np.ndarray) -> float:
    """Condition number of the scaled system the support solves, ``Q_SS + α(1 − ρ)I``."""
    if support.size == 0:
        return 1.0
    problem = GramProblem.from_state(
        state, fit_intercept=fit.fit_intercept, standardize=fit.standardize
    )
    working = np.flatnonzero(problem.usable)
    rows = np.searchsorted(working, support)
    system = problem.gram[np.ix_(rows, rows)] + fit.alpha * (1.0 - fit.l1_ratio) * np.eye(
        support.size
    )
    d = np.sqrt(np.diagonal(system))
    eig = np.linalg.eigvalsh(system / np.outer(d, d))
    return float(eig[-1] / eig[0]) if eig[0] > 0 else float("inf")
