"""What every closed-form solve returns, and the checks and messages the solvers share.

A :class:`Solution` holds the coefficients (NaN for aliased columns), the
intercept, the rank, the condition number, the sums of squares and
``(XᵀWX)⁻¹`` over the kept features; :class:`~streamreg.model.LinearModel`
is built from it and never changes afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import DataError, IllConditionedError, InputError, parameter

# Columns whose 1 − R² on the earlier columns is at most this are aliased (cholesky's default).
COLLINEAR_TOL = 1e-12


@dataclass
class Solution:
    """Coefficients and the facts about the solve that the model keeps."""

    coef: np.ndarray  # p entries; NaN where aliased
    intercept: float
    aliased: list[str]
    rank: int  # kept features (+1 with an intercept)
    condition_number: float  # of the scaled system over kept columns
    ssr: float  # weighted sum of squared residuals
    tss: float  # total sum of squares (centered with intercept)
    solver: str
    warnings: list[str] = field(default_factory=list)
    # Inverse of the kept-feature block of the moment matrix the slopes were solved
    # from (centered with an intercept, raw without), in the original units; the
    # inference in model.py scales it by σ² and adds the intercept's row.
    xtx_inv: np.ndarray | None = None
    # A penalized solve's record (alpha, l1_ratio, standardize, sweeps, duality gap); None for
    # least squares. Penalized estimates are biased: they carry no (XᵀWX)⁻¹ and no p values.
    penalty: dict | None = None


def condition_warnings(
    cond: float, *, solver: str, what: str, warn: float, refuse: float
) -> list[str]:
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
        return [
            f"{what} has condition number {cond:.1e}, so the {solver} solver keeps only about "
            f"{digits:.0f} significant digits of the coefficients."
        ]
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


def check_enough_rows(state, p: int, fit_intercept: bool) -> None:
    needed = p + (1 if fit_intercept else 0)
    if state.n_rows == 0 or state.weight_sum <= 0.0:
        raise InputError("no usable rows: every row was dropped or had zero weight.")
    if state.n_rows < needed:
        raise InputError(
            f"only {state.n_rows} usable rows for {needed} coefficients; "
            "a least-squares fit needs at least as many rows as coefficients."
        )


def collinear_message(
    names, aliased, earlier, pivots, fit_intercept, usable, tol: float = COLLINEAR_TOL
) -> str:
    """One sentence naming the first aliased column, what it depends on, and the way out."""
    j = aliased[0]
    if not usable[j]:
        what = (
            "is constant, so it is collinear with the intercept"
            if fit_intercept
            else "is all zeros"
        )
        first = f"column '{names[j]}' {what}"
    else:
        basis = [names[i] for i in earlier[[a for a in aliased if usable[a]].index(j)]]
        if fit_intercept:
            basis = ["the intercept", *basis]
        pivot = pivots[[a for a in aliased if usable[a]].index(j)]
        first = (
            f"column '{names[j]}' is a linear combination of {', '.join(basis)}, or too close to "
            "one "
            f"to separate (1 − R² = {max(pivot, 0.0):.1e}, tolerance {tol:g})"
        )
    others = [names[a] for a in aliased[1:]]
    also = (
        f"; so {'is' if len(others) == 1 else 'are'} {', '.join(repr(o) for o in others)}"
        if others
        else ""
    )
    return (
        f"{first}{also}. Remove the column, or pass {parameter('drop_collinear', True)} "
        "to give aliased columns no coefficient."
    )


def check_finite_solution(solution: Solution, state) -> None:
    """Refuse coefficients that overflow float64 (±inf), naming the column and its scale.

    A column of tiny values (1e-310) has a slope beyond 1.8e308; printing ``inf`` with exit 0,
    or failing later while writing the model, would hide that the column needs rescaling."""
    names = state.names[:-1]
    aliased = set(solution.aliased)
    bad = [
        j
        for j, c in enumerate(solution.coef)
        if np.isinf(c) or (np.isnan(c) and names[j] not in aliased)
    ]
    if bad:
        j = bad[0]
        with np.errstate(all="ignore"):
            size = abs(float(state.mean[j])) + float(
                np.sqrt(max(state.comoment[j, j], 0.0) / max(state.weight_sum, 1e-300))
            )
        scale = f" (its values are of the order of {size:.0e})" if 0 < size < 1e-100 else ""
        more = f" (and of {', '.join(repr(names[k]) for k in bad[1:])})" if bad[1:] else ""
        raise DataError(
            f"the coefficient of column '{names[j]}'{more} overflows float64{scale}; rescale "
            "the column (multiply it by a power of ten) and fit again."
        )
    if not np.isfinite(solution.intercept):
        raise DataError(
            f"the intercept overflows float64 (target '{state.names[-1]}'); rescale the "
            "columns and fit again."
        )
