"""Exact least squares in rational arithmetic: the oracle for small data sets."""

from __future__ import annotations

from fractions import Fraction

import numpy as np


def exact_lstsq(x, y, weights=None, fit_intercept=True):
    """Exact solution of the weighted normal equations of the float64 data, as Fractions.

    Returns (intercept, coef) with intercept 0 when ``fit_intercept`` is false.
    """
    x = np.asarray(x, dtype=float)
    n, p = x.shape
    rows = [[Fraction(float(v)) for v in row] for row in x]
    if fit_intercept:
        rows = [[Fraction(1), *row] for row in rows]
    ys = [Fraction(float(v)) for v in y]
    ws = [Fraction(1)] * n if weights is None else [Fraction(float(v)) for v in weights]
    k = len(rows[0])
    a = [[sum(w * r[i] * r[j] for r, w in zip(rows, ws)) for j in range(k)] for i in range(k)]
    b = [sum(w * r[i] * t for r, w, t in zip(rows, ws, ys)) for i in range(k)]
    beta = exact_solve(a, b)
    if fit_intercept:
        return beta[0], beta[1:]
    return Fraction(0), beta


def exact_solve(a, b):
    """``a⁻¹b`` in exact arithmetic (Gauss–Jordan with row pivoting; ``a`` nonsingular)."""
    k = len(b)
    m = [row[:] + [rhs] for row, rhs in zip(a, b)]
    for col in range(k):
        pivot = next(r for r in range(col, k) if m[r][col] != 0)
        m[col], m[pivot] = m[pivot], m[col]
        for r in range(k):
            if r != col and m[r][col] != 0:
                factor = m[r][col] / m[col][col]
                m[r] = [u - factor * v for u, v in zip(m[r], m[col])]
    return [m[i][k] / m[i][i] for i in range(k)]


def max_rel_error(estimate, exact) -> float:
    """Largest |est − exact| / |exact| over entries (exact values as Fractions)."""
    worst = 0.0
    for e, t in zip(np.atleast_1d(estimate), exact):
        err = abs(Fraction(float(e)) - t)
        worst = max(worst, float(err / abs(t)) if t != 0 else float(err))
    return worst


def exact_statistics(x, y, fit_intercept=True) -> dict:
    """Every statistic NIST certifies, computed exactly from the float64 data and rounded once:
    ``params`` (intercept first), ``param_sd``, ``residual_sd`` and ``r_squared`` (uncentered
    without an intercept). Their LREs against the certified values are the float64 ceiling."""
    from decimal import Decimal, localcontext

    x = np.asarray(x, dtype=float)
    n, p = x.shape
    rows = [[Fraction(float(v)) for v in row] for row in x]
    if fit_intercept:
        rows = [[Fraction(1), *row] for row in rows]
    ys = [Fraction(float(v)) for v in y]
    k = len(rows[0])
    a = [[sum(r[i] * r[j] for r in rows) for j in range(k)] for i in range(k)]
    b = [sum(r[i] * t for r, t in zip(rows, ys)) for i in range(k)]
    beta = exact_solve(a, b)
    ssr = sum((t - sum(c * v for c, v in zip(beta, r))) ** 2 for r, t in zip(rows, ys))
    mean = sum(ys) / n
    tss = sum((t - mean) ** 2 for t in ys) if fit_intercept else sum(t * t for t in ys)
    inverse_diagonal = [
        exact_solve(a, [Fraction(int(i == j)) for i in range(k)])[j] for j in range(k)
    ]
    scale = ssr / (n - k)

    def root(value: Fraction) -> float:
        with localcontext() as context:
            context.prec = 60
            return float((Decimal(value.numerator) / Decimal(value.denominator)).sqrt())

    return {
        "params": np.array([float(v) for v in beta]),
        "param_sd": np.array([root(scale * d) for d in inverse_diagonal]),
        "residual_sd": root(scale),
        "r_squared": float(1 - ssr / tss),
    }
