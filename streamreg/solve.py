r"""From a moment state to coefficients: the normal equations, solved with care.

With an intercept the slopes solve the centered system ``M_xx β = M_xy`` and
the intercept is ``μ_y − μ_xᵀβ``; without one, the uncentered moments
``M + n μμᵀ`` are used. The system is solved on its scaled form
``C = D⁻¹ A D⁻¹`` (``D = √diag A``, a correlation-like matrix with unit
diagonal) by a Cholesky factorization built one column at a time, in the
order the features were given. Column ``j`` is *aliased* (collinear) when

    1 − R²ⱼ = C_jj − ℓⱼᵀℓⱼ  ≤  COLLINEAR_TOL

where ``R²ⱼ`` is the fit of column ``j`` on the earlier, kept columns. That is
the pivot of the Cholesky step; like R's ``lm``, later columns are the ones
aliased. ``COLLINEAR_TOL = 1e-12`` sits a few orders above the rounding noise
of the accumulated moments (about 1e-15 relative), so an exact linear
combination is always caught and a genuine column is dropped only when the
normal equations cannot resolve it anyway.

>>> import numpy as np
>>> from streamreg.state import MomentState
>>> x = np.arange(6.0)
>>> z = np.column_stack([x, 3 * x + 2])
>>> sol = solve_normal_equations(MomentState.from_arrays(z, names=["x", "y"]))
>>> round(float(sol.coef[0]), 12), round(sol.intercept, 12)
(3.0, 2.0)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import linalg

from .errors import CollinearityError, IllConditionedError, InputError
from .state import MomentState

COLLINEAR_TOL = 1e-12
# Beyond this condition number of C the Cholesky route keeps fewer than about
# 6 significant digits (error ≈ cond · 2.2e-16): warn.
WARN_CONDITION = 1e10
# Beyond this it keeps none worth reporting: refuse.
REFUSE_CONDITION = 1e14


@dataclass
class Solution:
    """Coefficients and the facts about the solve that the model keeps."""

    coef: np.ndarray                 # p entries; NaN where aliased
    intercept: float
    aliased: list[str]
    rank: int                        # kept features (+1 with an intercept)
    condition_number: float          # of the scaled system over kept columns
    ssr: float                       # weighted sum of squared residuals
    tss: float                       # total sum of squares (centered with intercept)
    solver: str
    warnings: list[str] = field(default_factory=list)
    # Inverse of the kept-feature block of the moment matrix the slopes were solved
    # from (centered with an intercept, raw without), in the original units; the
    # inference in model.py scales it by σ² and adds the intercept's row.
    xtx_inv: np.ndarray | None = None


def solve_normal_equations(state: MomentState, *, fit_intercept: bool = True,
                           drop_collinear: bool = False,
                           collinear_tol: float = COLLINEAR_TOL) -> Solution:
    """Solve the state's normal equations by scaled, column-by-column Cholesky."""
    names = state.names[:-1]
    p = len(names)
    check_enough_rows(state, p, fit_intercept)
    moments = state.comoment if fit_intercept else state.raw_moments()
    a = moments[:p, :p]
    b = moments[:p, p]
    syy = float(moments[p, p])
    scale = np.sqrt(np.diagonal(a).clip(min=0.0))
    usable = scale > 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        c = a / np.outer(scale, scale)
        r = b / scale

    kept: list[int] = []
    aliased: list[int] = []
    pivots: list[float] = []
    earlier: list[list[int]] = []
    chol = np.zeros((p, p))
    for j in range(p):
        if not usable[j]:
            aliased.append(j)
            continue
        m = len(kept)
        ell = linalg.solve_triangular(chol[:m, :m], c[kept, j], lower=True) if m else np.empty(0)
        pivot = c[j, j] - ell @ ell
        if pivot <= collinear_tol:
            aliased.append(j)
            pivots.append(pivot)
            earlier.append(list(kept))
            continue
        chol[m, :m] = ell
        chol[m, m] = np.sqrt(pivot)
        kept.append(j)

    if aliased and not drop_collinear:
        raise CollinearityError(collinear_message(names, aliased, earlier, pivots, fit_intercept, usable))

    m = len(kept)
    coef = np.full(p, np.nan)
    warnings: list[str] = []
    cond = 1.0
    if m:
        factor = chol[:m, :m]
        beta_scaled = linalg.cho_solve((factor, True), r[kept])
        coef[kept] = beta_scaled / scale[kept]
        scaled_inv = linalg.cho_solve((factor, True), np.eye(m))
        xtx_inv = scaled_inv / np.outer(scale[kept], scale[kept])
        eig = np.linalg.eigvalsh(c[np.ix_(kept, kept)])
        cond = float(eig[-1] / eig[0]) if eig[0] > 0 else float("inf")
        warnings += condition_warnings(cond, solver="cholesky", what="the scaled normal equations",
                                       warn=WARN_CONDITION, refuse=REFUSE_CONDITION)
        explained = float(r[kept] @ beta_scaled)
    else:
        explained = 0.0
        xtx_inv = np.zeros((0, 0))
    intercept = intercept_from_means(state, coef) if fit_intercept else 0.0
    ssr = max(syy - explained, 0.0)
    if aliased:
        warnings.append(
            "dropped as collinear (no coefficient): " + ", ".join(names[j] for j in aliased) + "."
        )
    return Solution(
        coef=coef,
        intercept=intercept,
        aliased=[names[j] for j in aliased],
        rank=m + (1 if fit_intercept else 0),
        condition_number=cond,
        ssr=ssr,
        tss=syy,
        solver="cholesky",
        warnings=warnings,
        xtx_inv=xtx_inv,
    )


def condition_warnings(cond: float, *, solver: str, what: str, warn: float, refuse: float) -> list[str]:
    """Refuse (IllConditionedError) or warn in words when ``cond · ε`` leaves too few digits.

    ``cond`` is the factor by which the solver's rounding errors grow: cond(C) of the
    normal equations for cholesky, cond(R) of the design for qr.
    """
    if cond > refuse:
        raise IllConditionedError(
            f"{what} has condition number {cond:.1e}: the {solver} solver cannot return a single "
            "trustworthy digit; the columns are nearly collinear."
        )
    if cond > warn:
        digits = max(0.0, -np.log10(cond * np.finfo(float).eps))
        return [f"{what} has condition number {cond:.1e}, so the {solver} solver keeps only about "
                f"{digits:.0f} significant digits of the coefficients."]
    return []


def intercept_from_means(state, coef: np.ndarray) -> float:
    """``b = μ_y − μ_xᵀβ`` over the kept columns, with the double-double means.

    The high and low parts are combined separately so that large column means
    (timestamps) do not cost the intercept its digits.
    """
    kept = ~np.isnan(coef)
    p = len(coef)
    beta = coef[kept]
    high = state.mean[p] - state.mean[:p][kept] @ beta
    low = state.mean_lo[p] - state.mean_lo[:p][kept] @ beta
    return float(high + low)


def check_enough_rows(state: MomentState, p: int, fit_intercept: bool) -> None:
    needed = p + (1 if fit_intercept else 0)
    if state.n_rows == 0 or state.weight_sum <= 0.0:
        raise InputError("no usable rows: every row was dropped or had zero weight.")
    if state.n_rows < needed:
        raise InputError(
            f"only {state.n_rows} usable rows for {needed} coefficients; "
            "a least-squares fit needs at least as many rows as coefficients."
        )


def collinear_message(names, aliased, earlier, pivots, fit_intercept, usable,
                      tol: float = COLLINEAR_TOL) -> str:
    """One sentence naming the first aliased column, what it depends on, and the way out."""
    j = aliased[0]
    if not usable[j]:
        what = "is constant, so it is collinear with the intercept" if fit_intercept else "is all zeros"
        first = f"column '{names[j]}' {what}"
    else:
        basis = [names[i] for i in earlier[[a for a in aliased if usable[a]].index(j)]]
        if fit_intercept:
            basis = ["the intercept", *basis]
        pivot = pivots[[a for a in aliased if usable[a]].index(j)]
        first = (
            f"column '{names[j]}' is a linear combination of {', '.join(basis)}, or too close to one "
            f"to separate (1 − R² = {max(pivot, 0.0):.1e}, tolerance {tol:g})"
        )
    others = [names[a] for a in aliased[1:]]
    also = f"; so {'is' if len(others) == 1 else 'are'} {', '.join(repr(o) for o in others)}" if others else ""
    return (
        f"{first}{also}. Remove the column, or pass --drop-collinear (drop_collinear=True) "
        "to give aliased columns no coefficient."
    )
