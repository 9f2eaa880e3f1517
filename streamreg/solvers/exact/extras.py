r"""Statistics of an exact fit that a rounded inverse cannot give at full precision.

The model's inference builds the intercept's variance factor as ``1/n + μᵀM⁻¹μ`` and R² as
``1 − SSR/TSS``. From a rounded ``M⁻¹`` the first sum cancels digits when ``μ`` is large
against the spread (NIST Wampler3–5: 12.2 digits of the intercept's SD), and the second
loses a digit when R² is small (Wampler5). Where the exact solve eliminated exactly
(Bareiss, up to ``BAREISS_MAX_FEATURES`` features), the adjugate ``det·C_KK⁻¹`` and the
exact SSR are at hand, so these are exact rationals rounded once:

* ``intercept_variance = 1/W + μᵀ M⁻¹ μ`` and ``intercept_cross = −M⁻¹μ`` — the first row
  of ``(X̃ᵀWX̃)⁻¹`` over ``[1, x]`` — with ``M⁻¹ = q·2^s·adj/det`` and ``μ = s/W`` exact;
* ``rsquared = 1 − SSR_scaled/C_yy`` (SSR and TSS share their scaling).
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from .dyadic import fraction, rational_to_float


def exact_extras(state, kept, rows, det, c, inv_kappa, ssr_scaled, p, fit_intercept) -> dict:
    """``{"rsquared", "intercept_variance", "intercept_cross"}`` (the last two None without an
    intercept) from an exact elimination's rows ``det·e_i | det·β_i | det·(C_KK⁻¹)_i``."""
    c_yy = int(c[p, p])
    rsquared = rational_to_float(1 - max(ssr_scaled, Fraction(0)) / c_yy) if c_yy else float("nan")
    out = {"rsquared": rsquared, "intercept_variance": None, "intercept_cross": None}
    if not fit_intercept:
        return out
    (wi, we), (si, se), _ = state.exact_sums()
    weight = fraction(wi, we)
    mean = [fraction(si[j], se) / weight for j in kept]
    q, shift = inv_kappa
    factor = Fraction(q) * fraction(1, shift) / det  # M⁻¹ = factor · adjugate
    cross = []
    for i in kept:
        adjugate_row = rows[i]
        total = sum(
            (adjugate_row[p + 1 + j] * m for j, m in zip(kept, mean)),
            Fraction(0),
        )
        cross.append(factor * total)
    variance = 1 / weight + sum((m * a for m, a in zip(mean, cross)), Fraction(0))
    out["intercept_variance"] = rational_to_float(variance)
    out["intercept_cross"] = np.array([rational_to_float(-a) for a in cross])
    return out
