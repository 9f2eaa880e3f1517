"""Solving an exact state in exact arithmetic (Bareiss) or by exact iterative refinement."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

from ...errors import CollinearityError, IllConditionedError, InputError, parameter
from ..solution import Solution, check_enough_rows
from .dyadic import add, approximate_floats, fraction, rational_to_float, to_float, zeros
from .extras import exact_extras
from .lattice import IntegerMatrix
from .slicing import two_sum
from .state import ExactState

# Up to this many features the solve is exact elimination end to end.
BAREISS_MAX_FEATURES = 20
# Beyond this many kept features exact elimination is too slow to be a fallback.
_BAREISS_FALLBACK_MAX = 48
_PRIMES = (2147483647, 2147483629, 2147483587)
REFINE_TOLERANCE = 2.0**-70
_MAX_REFINEMENTS = 40
# Beyond this condition number of the scaled normal equations, about half the digits of
# the coefficients are at the mercy of the rounding of the data to float64 (error ≈ √cond · 2^-53).
WARN_CONDITION = 1e16


def solve_exact(
    state: ExactState, *, fit_intercept: bool = True, drop_collinear: bool = False
) -> Solution:
    """The least-squares fit of the state's float64 data as if in exact arithmetic.

    Results are exact rationals rounded once to float64 (to within 2⁻⁷⁰ before
    rounding when more than :data:`BAREISS_MAX_FEATURES` features go through
    iterative refinement).
    """
    if not isinstance(state, ExactState):
        raise InputError(f"solve_exact needs an ExactState, not a {type(state).__name__}.")
    if not state.is_finite():
        raise InputError("the state saw NaN or ±inf values; screen the data before solving.")
    names = state.names[:-1]
    p = len(names)
    check_enough_rows(state, p, fit_intercept, aliasing=drop_collinear)
    c, inv_kappa = state.moment_matrix(fit_intercept)
    usable = np.array([c[j, j] > 0 for j in range(p)], dtype=bool)

    fit = None
    if p > BAREISS_MAX_FEATURES:
        kept, aliased, earlier = _modular_rank(c[:p, :p])
        if kept is not None:
            if aliased and not drop_collinear:
                details = [(before, fit_intercept) for before in earlier]
                raise CollinearityError(
                    _collinear_message(
                        names, aliased, details, fit_intercept, usable, exact_support=False
                    )
                )
            fit = _refined_fit(c, kept, inv_kappa)
            if fit is None and len(kept) > _BAREISS_FALLBACK_MAX:
                raise IllConditionedError(
                    "the normal equations are too ill-conditioned for iterative refinement, and "
                    "exact "
                    f"elimination of {len(kept)} columns would take too long; remove nearly "
                    "collinear columns."
                )
    if fit is None:
        kept, aliased, det, rows = _gauss_jordan(c.tolist(), p)
        if aliased and not drop_collinear:
            details = [_involvement(state, rows, det, kept, j, fit_intercept) for j in aliased]
            raise CollinearityError(
                _collinear_message(
                    names, aliased, details, fit_intercept, usable, exact_support=True
                )
            )
        fit = _eliminated_fit(c, kept, det, rows, p, inv_kappa)
        fit["extras"] = exact_extras(
            state, kept, rows, det, c, inv_kappa, fit["ssr_scaled"], p, fit_intercept
        )

    beta = fit["beta"]  # exact Fractions over kept columns
    coef = np.full(p, np.nan)
    coef[kept] = [rational_to_float(b) for b in beta]
    if fit_intercept:
        wi, we = state.exact_sums()[0]
        si, se = state.exact_sums()[1]
        mean_part = fraction(si[p], se) - sum(
            (fraction(si[j], se) * b for j, b in zip(kept, beta)), Fraction(0)
        )
        intercept = rational_to_float(mean_part / fraction(wi, we))
    else:
        intercept = 0.0
    q, shift = inv_kappa
    tss = to_float(c[p, p], -shift, q)
    ssr = rational_to_float(max(fit["ssr_scaled"], Fraction(0)) * fraction(1, -shift) / q)
    cond = fit["condition"]
    warnings: list[str] = []
    if cond > WARN_CONDITION:
        digits = max(0.0, -math.log10(math.sqrt(cond) * np.finfo(float).eps))
        warnings.append(
            f"the scaled normal equations have condition number {cond:.1e}: the exact solver's "
            "coefficients "
            "are exact for the data as stored in float64, but the rounding of the data itself "
            "leaves "
            f"only about {digits:.0f} significant digits that the data determine."
        )
    if aliased:
        warnings.append(
            "dropped as collinear (no coefficient): " + ", ".join(names[j] for j in aliased) + "."
        )
    return Solution(
        coef=coef,
        intercept=intercept,
        aliased=[names[j] for j in aliased],
        rank=len(kept) + (1 if fit_intercept else 0),
        condition_number=cond,
        ssr=ssr,
        tss=tss,
        solver="exact",
        warnings=warnings,
        xtx_inv=fit["xtx_inv"],
        exact=fit.get("extras"),
    )


def exact_statistics(state: ExactState, coef: np.ndarray, *, fit_intercept: bool) -> dict | None:
    """The exact R² and intercept row of a fit over ``coef``'s kept columns (see
    :mod:`.extras`), by exact elimination again — for a model loaded from its file; None when
    the state is too wide for exact elimination or its kept columns differ."""
    p = len(state.names) - 1
    if p > BAREISS_MAX_FEATURES or not state.is_finite() or state.n_rows == 0:
        return None
    c, inv_kappa = state.moment_matrix(fit_intercept)
    kept, _, det, rows = _gauss_jordan(c.tolist(), p)
    if kept != list(np.flatnonzero(~np.isnan(np.asarray(coef, dtype=float)))):
        return None
    fit = _eliminated_fit(c, kept, det, rows, p, inv_kappa)
    return exact_extras(state, kept, rows, det, c, inv_kappa, fit["ssr_scaled"], p, fit_intercept)


# 1 − R² below this is a dependence up to float64 rounding (see the module docstring).
NEAR_DEPENDENCE = Fraction(1, 10**24)


def _gauss_jordan(c, p):
    """Fraction-free Gauss–Jordan elimination (Bareiss 1968) of ``[C_xx | C_xy | I]``.

    Pivots are taken in column order; the pivot of column j is
    ``det(C[K+j, K+j]) = det(C_KK) · C_jj · (1 − R²ⱼ)``, so a pivot within
    ``NEAR_DEPENDENCE`` of zero marks a column that is a linear combination of the
    kept columns before it, exactly or up to float64 rounding; its row is
    dropped. Every division is exact. At the end
    each kept row holds ``det·e_i | det·β_i | det·(C_KK⁻¹)_i`` with ``det = det C_KK``.
    """
    rows = {}
    for j in range(p):
        row = list(c[j][: p + 1]) + [0] * p
        row[p + 1 + j] = 1
        rows[j] = row
    previous = 1
    kept: list[int] = []
    aliased: list[int] = []
    for j in range(p):
        pivot_row = rows[j]
        pivot = pivot_row[j]
        if pivot * NEAR_DEPENDENCE.denominator <= previous * c[j][j] * NEAR_DEPENDENCE.numerator:
            aliased.append(j)
            del rows[j]
            continue
        for i, row in rows.items():
            if i == j:
                continue
            factor = row[j]
            if factor == 0:
                rows[i] = [pivot * a // previous for a in row]
            else:
                rows[i] = [(pivot * a - factor * b) // previous for a, b in zip(row, pivot_row)]
        previous = pivot
        kept.append(j)
    return kept, aliased, previous, rows


def _involvement(state, rows, det, kept, j, fit_intercept):
    """Which kept columns (and whether the intercept) enter column j's exact dependence.

    After the elimination ``rows[i][j] / det`` is column j's coefficient on kept
    column i; the kept columns are independent, so this is the dependence found
    when j was aliased (later columns get zero coefficients).
    """
    support = [i for i in kept if rows[i][j] != 0]
    intercept = False
    if fit_intercept:
        si, _ = state.exact_sums()[1]
        constant = det * si[j] - sum(rows[i][j] * si[i] for i in kept)
        intercept = constant != 0
    return support, intercept


def _eliminated_fit(c, kept, det, rows, p, inv_kappa):
    beta = [Fraction(rows[i][p], det) for i in kept]
    c_yy = c[p, p]
    explained = sum((Fraction(c[i, p]) * b for i, b in zip(kept, beta)), Fraction(0))
    q, shift = inv_kappa
    m = len(kept)
    inverse = np.empty((m, m))
    for a, i in enumerate(kept):
        for b, j in enumerate(kept):
            inverse[a, b] = to_float(rows[i][p + 1 + j] * q, shift, det)
    scaled_inverse = _scaled_inverse(
        c, kept, [[rows[i][p + 1 + j] for j in kept] for i in kept], det
    )
    return {
        "beta": beta,
        "ssr_scaled": Fraction(c_yy) - explained,
        "xtx_inv": inverse,
        "condition": _condition_number(c, kept, scaled_inverse),
    }


def _scaled_inverse(c, kept, adjugate, det):
    """``D C_KK⁻¹ D`` (D = √diag) in float, from an exact ``det · C_KK⁻¹``."""
    d = [(int(c[i, i]).bit_length() - 1) // 2 for i in kept]
    m = len(kept)
    out = np.empty((m, m))
    for a in range(m):
        for b in range(m):
            out[a, b] = to_float(adjugate[a][b], d[a] + d[b], det)
    root = _diagonal_roots(c, kept, d)
    return out * np.outer(root, root)


def _diagonal_roots(c, kept, d):
    """√(C_ii) / 2**d_i in float."""
    return np.array([math.sqrt(to_float(c[i, i], -2 * di)) for i, di in zip(kept, d)])


def _condition_number(c, kept, scaled_inverse) -> float:
    """cond₂ of ``D⁻¹ C_KK D⁻¹``: λmax of it times λmax of its inverse (both well determined)."""
    if not kept:
        return 1.0
    d = [(int(c[i, i]).bit_length() - 1) // 2 for i in kept]
    sub = c[np.ix_(kept, kept)]
    exps = -(np.array(d)[:, None] + np.array(d)[None, :])
    scaled = approximate_floats(sub, exps)
    root = _diagonal_roots(c, kept, d)
    scaled = scaled / np.outer(root, root)
    top = float(np.linalg.eigvalsh(scaled)[-1])
    top_inverse = float(np.linalg.eigvalsh((scaled_inverse + scaled_inverse.T) / 2)[-1])
    return top * top_inverse


def _modular_rank(a):
    """Kept and aliased columns by elimination modulo three primes, in column order.

    A pivot that is nonzero modulo any prime is nonzero; a column is declared
    dependent when its pivot vanishes modulo every prime still in use. A prime
    that loses a kept pivot is dropped. Returns ``(None, …)`` if all are dropped.
    Residues stay below 2**31, so products fit in int64.
    """
    p = a.shape[0]
    primes = np.array(_PRIMES, dtype=np.int64)
    mats = np.stack(
        [np.array((a % int(q)).tolist(), dtype=np.int64).reshape(p, p) for q in _PRIMES]
    )
    valid = np.ones(len(_PRIMES), dtype=bool)
    kept: list[int] = []
    aliased: list[int] = []
    earlier: list[list[int]] = []
    q = primes[:, None]
    for j in range(p):
        pivots = mats[:, j, j]
        if not (valid & (pivots != 0)).any():
            aliased.append(j)
            earlier.append(list(kept))
            continue
        valid &= pivots != 0
        kept.append(j)
        inverse = np.array(
            [
                pow(int(v), int(m) - 2, int(m)) if ok else 0
                for v, m, ok in zip(pivots, primes, valid)
            ],
            dtype=np.int64,
        )
        row = mats[:, j, j + 1 :]
        scaled = row * inverse[:, None] % q
        block = mats[:, j + 1 :, j + 1 :]
        block -= scaled[:, :, None] * row[:, None, :] % q[:, :, None]
        np.add(block, q[:, :, None], out=block, where=block < 0)
    if not valid.any():
        return None, None, None
    return kept, aliased, earlier


def _refined_fit(c, kept, inv_kappa):
    """β and C_KK⁻¹/κ by iterative refinement with exact residuals; None if it stalls."""
    from scipy import linalg

    p = c.shape[0] - 1
    m = len(kept)
    if m == 0:
        return None
    a = c[np.ix_(kept, kept)]
    b = c[kept, p]
    d = np.array([(int(a[i, i]).bit_length() - 1) // 2 for i in range(m)], dtype=np.int64)
    top = int(d.max())
    # Ĉ = 2**(2·top) · D⁻¹ C_KK D⁻¹ is an integer matrix with diagonal in [2**2top, 4·2**2top).
    c_hat = a << (2 * top - d[:, None] - d[None, :])
    c_yy = int(c[p, p])
    d_y = (c_yy.bit_length() - 1) // 2 if c_yy > 0 else 0
    q, shift = inv_kappa
    q_bits = int(q).bit_length()
    # Right-hand sides: y = 2**(d − d_y)·β solves Ĉ y = b·2**(2top − d − d_y), and
    # Z = q·2**(−q_bits)·Ĉ⁻¹·2**2top solves Ĉ Z = q·2**(2top − q_bits)·I; both O(1).
    rhs_ints = zeros((m, m + 1))
    rhs_ints[:, 0] = b
    for i in range(m):
        rhs_ints[i, i + 1] = q
    shifts = np.empty((m, m + 1), dtype=np.int64)
    shifts[:, 0] = 2 * top - d - d_y
    shifts[:, 1:] = 2 * top - q_bits
    low = int(shifts.min())
    residual = (rhs_ints << (shifts - low), low)

    scaled = approximate_floats(c_hat, -2 * top)
    try:
        factor = linalg.cho_factor(scaled, lower=True)
    except linalg.LinAlgError:
        return None
    exact = IntegerMatrix(c_hat)
    parts: list[np.ndarray] = []
    total = np.zeros((m, m + 1))
    previous_size = math.inf
    for _ in range(_MAX_REFINEMENTS):
        ints, e = residual
        if not (ints != 0).any():
            break
        delta = linalg.cho_solve(factor, approximate_floats(ints, e - 2 * top))
        if not np.isfinite(delta).all():
            return None
        parts.append(delta)
        total += delta
        product = exact.times(delta)
        residual = add(residual, (-product[0], product[1]))
        size = np.abs(delta).max(axis=0)
        if (size <= REFINE_TOLERANCE * np.abs(total).max(axis=0)).all():
            break
        worst = float((size / np.maximum(np.abs(total).max(axis=0), np.finfo(float).tiny)).max())
        if worst > 0.5 * previous_size:
            return None
        previous_size = worst
    else:
        return None

    # β exactly from the corrections, and the exact residual of that β.
    y = [sum((Fraction(float(part[i, 0])) for part in parts), Fraction(0)) for i in range(m)]
    beta = [yi * fraction(1, int(d_y - d[i])) for i, yi in enumerate(y)]
    ints, e = residual
    # residual_i = 2**(2top − d_i − d_y)·(b − C_KK β)_i
    gap = [fraction(int(ints[i, 0]), e - (2 * top - int(d[i]) - d_y)) for i in range(m)]
    ssr_scaled = (
        Fraction(c_yy)
        - sum((Fraction(int(bi)) * bt for bi, bt in zip(b, beta)), Fraction(0))
        - sum((bt * g for bt, g in zip(beta, gap)), Fraction(0))
    )
    # Z = q·2**-q_bits · D C_KK⁻¹ D with D = diag(2**d), so C_KK⁻¹/κ = C_KK⁻¹·q·2**s has
    # entries Z_ij · 2**(q_bits + s − d_i − d_j): one rounding (fsum), then exact scaling.
    z_sum = _sum_of_corrections([part[:, 1:] for part in parts])
    inverse = np.ldexp(z_sum, (q_bits + shift - d[:, None] - d[None, :]).astype(np.int64))
    # √diag-scaled inverse for the condition number: R·Z·(2**q_bits / q)·R, R = √diag / 2**d.
    root = _diagonal_roots(c, kept, [int(v) for v in d])
    scaled_inverse = z_sum * to_float(1, q_bits, q) * np.outer(root, root)
    cond = _condition_number(c, kept, scaled_inverse)
    return {"beta": beta, "ssr_scaled": ssr_scaled, "xtx_inv": inverse, "condition": cond}


def _sum_of_corrections(parts):
    """``Σ parts`` rounded once, up to ~2⁻¹⁰⁶ relative: the corrections shrink geometrically,
    so a running TwoSum with the errors gathered separately is as good as ``math.fsum``."""
    high = parts[0].copy()
    low = np.zeros_like(high)
    for part in parts[1:]:
        high, error = two_sum(high, part)
        low += error
    return high + low


def _collinear_message(names, aliased, details, fit_intercept, usable, *, exact_support) -> str:
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
        support, intercept = details[0]
        basis = (["the intercept"] if intercept else []) + [f"'{names[i]}'" for i in support]
        if exact_support:
            first = (
                f"column '{names[j]}' is a linear combination of {_join(basis)} "
                "(exactly, or up to the rounding of float64 data: 1 − R² ≤ "
                f"{float(NEAR_DEPENDENCE):g})"
            )
        else:
            first = (
                f"column '{names[j]}' is a linear combination of the columns before it "
                f"({', '.join(basis)})"
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


def _join(items: list[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]
