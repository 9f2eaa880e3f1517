r"""Exact sufficient statistics of float64 data, and the least-squares fit they determine.

For rows ``z = [x₁ … x_p, y]`` with weights ``w`` (1 when unweighted) an
:class:`ExactState` holds, without any rounding,

    W = Σ w ,    s = Σ w z ,    G = Σ w z zᵀ

as Python integers times powers of two (every float64 is a dyadic rational, and so
are their products and sums). Merging adds integers, so the state of a data set is
bit-identical however its rows were chunked, ordered or partitioned, and ``==``
compares exact values.

**Accumulating** (error-free matrix products; Ozaki, Ogita, Oishi & Rump 2012).
A batch is processed ``r`` rows at a time. With ``β = ⌊(53 − ⌈log₂ r⌉)/2⌋`` each
column is cut on a lattice of units ``u_s = 2^(t − β − s(β+1))``, s = 0, 1, …,
where ``2^t`` bounds the column over the batch::

    z_j = Σ_s d_s · u_s ,    d_s = rint(remainder / u_s) ∈ [−2^β, 2^β]

until the remainder is exactly zero. A dot product of two digit columns over ``r``
rows is an integer of magnitude ≤ r·2^(2β) ≤ 2^53, so one BLAS product ``SᵀS`` of
the digit matrix ``S`` (plus a column of ones, which yields ``s`` and ``W``) has
no rounding error in any order of summation. The block sums are gathered as int64
digits per lattice level, with carries, and become Python integers once per
batch. A column needs as many slices as it has significant bits from its largest
entry down to its lowest set bit, in steps of β+1: 3–4 for random data, one for
small integers, more for columns whose entries span many binades. Once only a few
values still have bits left (a column's smallest entries), they are finished one
by one as a sparse tail instead of as mostly-zero dense slices.

Each column is scaled once by a power of two so that slicing is ``rint``, subtract,
multiply; the IEEE underflow/overflow flags prove that scaling exact, and a batch
for which they do not (values spanning ~1000 binades in one column) is sliced on
``frexp`` mantissas and exponents instead, which is exact for every finite double.

Weights enter exactly: ``w·z = h + e`` without error (Dekker's TwoProduct, no FMA),
the pair is sliced as one double-double (TwoSum renormalizes each remainder), and
``Σ w zᵢ zⱼ`` is the product of the digit matrices of ``w·z`` and of ``z``.

**Solving** (:func:`solve_exact`). With an intercept the centered moments, scaled
by ``W`` and a power of two, form an integer matrix (without one, ``C = G``)::

    C = W·G − s sᵀ ;   C_xx β = C_xy ;   SSR = κ (C_yy − C_xyᵀ β) ;   (X̃ᵀX̃)⁻¹ = C_xx⁻¹ / κ

where ``κ = 1/W`` up to the power of two (``κ`` = that power without an intercept).
A column is *aliased* when it is a linear combination of the earlier kept
columns (and the intercept) — exactly, or up to the rounding of float64 data:
its pivot in the elimination, which is ``1 − R²ⱼ`` on the earlier columns times
``C_jj``, is at most ``NEAR_DEPENDENCE · C_jj`` (``1e-24``; a column built as
``2a − b`` in float64 leaves about 1e-32, while a genuinely ill-conditioned column
such as NIST Filip's x¹⁰ leaves about 1e-15). Up to
``BAREISS_MAX_FEATURES`` features the whole solve is fraction-free Gauss–Jordan
elimination on integers (Bareiss 1968): β, the inverse, SSR and the intercept are
exact rationals, each rounded to float64 once. For more features, exact
elimination costs O(p⁴)-bit arithmetic, so the rank is found by elimination
modulo three 31-bit primes (a dependence is declared only when the pivot vanishes
modulo all of them: wrong with probability below 2⁻⁹⁰) and β and the inverse by
iterative refinement — a float Cholesky solve of the scaled system, the residual
computed exactly with the same error-free products, repeated until a correction
is below 2⁻⁷⁰ of the solution — falling back to exact elimination if that does
not converge.

**Cost.** Per batch about ``(slices per column)²`` times the flops of the
centered Gram update of :class:`~streamreg.solvers.moments.MomentState` — ``w·z`` has 106
significant bits, so weights cost about 3.5× more again — plus O(p²)
Python-integer work per batch. Measured with ``bench/bench_exact.py`` (one BLAS
thread, CPU time) against ``MomentState.from_arrays``: 131072 × 21 random doubles
5× (weighted 14×), 16384 × 201 9–10× (weighted 25×). ``solve_exact`` takes
~80 ms for p = 20 (exact elimination) and ~0.5 s for p = 200 (refinement).

>>> import numpy as np
>>> z = np.array([[1.0, 2.0], [2.0, 4.1], [3.0, 5.9], [4.0, 8.2]])
>>> whole = ExactState.from_arrays(z, names=["x", "y"])
>>> parts = ExactState.from_arrays(z[2:], names=["x", "y"]) + ExactState.from_arrays(
...     z[:2], names=["x", "y"]
... )
>>> whole == parts
True
>>> sol = solve_exact(whole)
>>> float(sol.coef[0]), sol.intercept
(2.04, -0.04999999999999982)
"""

from __future__ import annotations

from .solve import BAREISS_MAX_FEATURES, NEAR_DEPENDENCE, exact_statistics, solve_exact
from .state import ExactState

__all__ = [
    "ExactState",
    "solve_exact",
    "exact_statistics",
    "BAREISS_MAX_FEATURES",
    "NEAR_DEPENDENCE",
]
