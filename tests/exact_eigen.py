"""Exact extreme eigenvalues of the Gram matrix of float64 data: the condition-number oracle.

Every float64 is a dyadic rational, so ``G = XᵀWX`` is known exactly (scaled to integers
by a power of two, which leaves eigenvalue ratios alone). The number of eigenvalues of
``G`` below a rational ``s`` is the number of sign changes in the leading principal minors
of ``G − sI`` (Sylvester's law of inertia), computed exactly by fraction-free (Bareiss)
elimination; bisection on ``s`` then pins ``λmin`` and ``λmax`` to any relative width.
"""

from __future__ import annotations

import math
from fractions import Fraction


def integer_gram(x, weights=None) -> list[list[int]]:
    """``XᵀWX`` times the power of two that makes every entry an integer."""
    rows = [[Fraction(float(v)) for v in row] for row in x]
    ws = [Fraction(1)] * len(rows) if weights is None else [Fraction(float(v)) for v in weights]
    k = len(rows[0])
    gram = [[sum(w * r[i] * r[j] for r, w in zip(rows, ws)) for j in range(k)] for i in range(k)]
    denominator = 1
    for row in gram:
        for value in row:
            denominator = math.lcm(denominator, value.denominator)
    return [[int(value * denominator) for value in row] for row in gram]


def count_below(gram: list[list[int]], shift: Fraction) -> int | None:
    """Eigenvalues of ``gram`` below ``shift`` (None when a leading minor is exactly zero)."""
    a, b = shift.numerator, shift.denominator
    k = len(gram)
    m = [[b * gram[i][j] - (a if i == j else 0) for j in range(k)] for i in range(k)]
    previous, signs = 1, [1]
    for c in range(k):
        pivot = m[c][c]
        if pivot == 0:
            return None
        signs.append(1 if pivot > 0 else -1)
        for i in range(c + 1, k):
            for j in range(c + 1, k):
                m[i][j] = (m[i][j] * pivot - m[i][c] * m[c][j]) // previous
        previous = pivot
    return sum(1 for u, v in zip(signs, signs[1:]) if u != v)


def extreme_eigenvalue(gram, which: str, rel: float = 1e-13) -> Fraction:
    """``λmin`` or ``λmax`` of a positive definite integer matrix, to relative width ``rel``."""
    target = 1 if which == "min" else len(gram)

    def above(s):  # is s above the wanted eigenvalue?
        count = count_below(gram, s)
        while count is None:
            s = s * Fraction(1_000_001, 1_000_000)
            count = count_below(gram, s)
        return count >= target

    lo, hi = Fraction(0), Fraction(1)
    while not above(hi):
        lo, hi = hi, hi * 2
    if lo == 0:
        lo = hi / 2
        while above(lo):
            hi, lo = lo, lo / 2
    while (hi - lo) / hi > rel:
        mid = (lo + hi) / 2
        if above(mid):
            hi = mid
        else:
            lo = mid
    return (lo + hi) / 2


def exact_condition_number(x, weights=None) -> float:
    """``√(λmax/λmin)`` of ``XᵀWX`` for float64 ``x`` (with its constant column, if any)."""
    gram = integer_gram(x, weights)
    return math.sqrt(float(extreme_eigenvalue(gram, "max") / extreme_eigenvalue(gram, "min")))
