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
centered Gram update of :class:`~streamreg.state.MomentState` — ``w·z`` has 106
significant bits, so weights cost about 3.5× more again — plus O(p²)
Python-integer work per batch. Measured with ``bench/bench_exact.py`` (one BLAS
thread, CPU time) against ``MomentState.from_arrays``: 131072 × 21 random doubles
5× (weighted 14×), 16384 × 201 9–10× (weighted 25×). ``solve_exact`` takes
~80 ms for p = 20 (exact elimination) and ~0.5 s for p = 200 (refinement).

>>> import numpy as np
>>> z = np.array([[1.0, 2.0], [2.0, 4.1], [3.0, 5.9], [4.0, 8.2]])
>>> whole = ExactState.from_arrays(z, names=["x", "y"])
>>> parts = ExactState.from_arrays(z[2:], names=["x", "y"]) + ExactState.from_arrays(z[:2], names=["x", "y"])
>>> whole == parts
True
>>> sol = solve_exact(whole)
>>> float(sol.coef[0]), sol.intercept
(2.04, -0.04999999999999982)
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from fractions import Fraction
from functools import reduce
from operator import or_

import numpy as np
from scipy import linalg

from .errors import CollinearityError, IllConditionedError, InputError, ModelFormatError
from .solve import Solution, check_enough_rows
from .state import checked_names

STATE_FORMAT = "streamreg.exact_state"
STATE_FORMAT_VERSION = 1

# Rows per error-free product: few enough that β (the bits per slice) stays large and the
# digit matrix stays in cache, enough that BLAS and numpy calls are not dominated by overhead.
_MIN_ROWS, _MAX_ROWS = 1 << 11, 1 << 13
_DIGITS_PER_PRODUCT = 1 << 19
# Once at most this fraction of values has bits left, the rest is cut value by value.
_SPARSE_TAIL = 0.05
# ... and only when a dense slice would cost at least this many multiply-adds (~1 ms of BLAS).
_TAIL_MIN_WORK = 1 << 25
# Lattice levels above the top slice, so that carries out of level 0 have room.
_GUARD = 2
# Products of at least 2^-950 leave a low part that cannot underflow.
_TINY_PRODUCT = 2.0**-950

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


class ExactState:
    """Exact ``Σw``, ``Σwz`` and ``Σwzzᵀ`` of ``[x, y]`` columns; see the module docstring."""

    __slots__ = ("names", "n_rows", "_weight", "_sums", "_products", "_finite", "_cache")

    def __init__(self, names: Sequence[str], n_rows: int, weight: tuple, sums: tuple,
                 products: tuple, *, finite: bool = True):
        self.names = tuple(names)
        self.n_rows = int(n_rows)
        self._finite = bool(finite)
        if self._finite:
            self._weight = _canonical_scalar(*weight)
            self._sums = _canonical(*sums)
            self._products = _canonical(*products)
        else:
            self._weight = self._sums = self._products = None
        self._cache = {}

    # ---------------------------------------------------------------- building
    @classmethod
    def empty(cls, names: Sequence[str]) -> ExactState:
        """The identity of :meth:`merge`: no rows."""
        k = len(names)
        return cls(names, 0, (0, 0), (_zeros(k), 0), (_zeros((k, k)), 0))

    @classmethod
    def from_arrays(cls, z: np.ndarray, weights: np.ndarray | None = None, *,
                    names: Sequence[str], overwrite: bool = False) -> ExactState:
        """Exact state of one batch ``z`` (rows × columns, target last), optionally weighted.

        A batch holding NaN or ±inf gives a state whose :meth:`is_finite` is False.
        ``z`` is never modified; ``overwrite`` is accepted for the engine's sake
        (:class:`~streamreg.state.MomentState` shifts ``z`` in place with it).
        """
        z = np.asarray(z, dtype=np.float64)
        if z.ndim != 2 or z.shape[1] != len(names):
            raise InputError(f"batch has shape {z.shape}; expected (rows, {len(names)}) for columns {list(names)}.")
        n_rows = z.shape[0]
        w = None
        if weights is not None:
            w = np.asarray(weights, dtype=np.float64).reshape(-1)
            if w.shape[0] != n_rows:
                raise InputError(f"got {w.shape[0]} weights for a batch of {n_rows} rows.")
        if n_rows == 0:
            return cls.empty(names)
        with np.errstate(invalid="ignore"):
            high, low = z.max(axis=0), z.min(axis=0)
            finite = bool(np.isfinite(high).all() and np.isfinite(low).all())
            if w is not None:
                finite = finite and bool(np.isfinite(w.max()) and np.isfinite(w.min()))
        if not finite:
            return cls(names, n_rows, None, None, None, finite=False)
        if w is not None and w.min() < 0:
            raise InputError(f"weights must be zero or positive; got {w.min():g}.")
        column_max = np.maximum(high, -low)
        weight, sums, products = _batch_sums(z, w, column_max)
        return cls(names, n_rows, weight, sums, products)

    def update(self, z: np.ndarray, weights: np.ndarray | None = None) -> ExactState:
        """Fold a batch into this state in place and return ``self``."""
        self._absorb(ExactState.from_arrays(z, weights, names=self.names))
        return self

    # ---------------------------------------------------------------- merging
    def merge(self, other: ExactState) -> ExactState:
        """A new state for the union of the rows of ``self`` and ``other``."""
        out = self.copy()
        out._absorb(other)
        return out

    __add__ = merge

    def _absorb(self, other: ExactState) -> None:
        if not isinstance(other, ExactState):
            raise InputError(f"cannot merge an exact state with a {type(other).__name__}.")
        if other.names != self.names:
            raise InputError(f"cannot merge states over different columns: {list(self.names)} and {list(other.names)}.")
        self.n_rows += other.n_rows
        self._cache = {}
        if not (self._finite and other._finite):
            self._finite = False
            self._weight = self._sums = self._products = None
            return
        self._weight = _add_scalar(self._weight, other._weight)
        self._sums = _add(self._sums, other._sums)
        self._products = _add(self._products, other._products)

    def copy(self) -> ExactState:
        out = ExactState.__new__(ExactState)
        out.names, out.n_rows, out._finite = self.names, self.n_rows, self._finite
        out._weight = self._weight
        out._sums = None if self._sums is None else (self._sums[0].copy(), self._sums[1])
        out._products = None if self._products is None else (self._products[0].copy(), self._products[1])
        out._cache = {}
        return out

    # ---------------------------------------------------------------- views
    @property
    def n_columns(self) -> int:
        return len(self.names)

    def is_finite(self) -> bool:
        """False when a batch held NaN or ±inf (the exact sums are then unknown)."""
        return self._finite

    @property
    def weight_sum(self) -> float:
        """``Σ w``, rounded once to float64."""
        if not self._finite:
            return math.nan
        return _to_float(*self._weight)

    @property
    def mean(self) -> np.ndarray:
        """``Σ w z / Σ w``, each entry the exact mean rounded once to float64."""
        return self._means()[0]

    @property
    def mean_lo(self) -> np.ndarray:
        """The exact mean minus :attr:`mean`, rounded: ``mean + mean_lo`` is a double-double mean."""
        return self._means()[1]

    @property
    def comoment(self) -> np.ndarray:
        """``Σ w (z − μ)(z − μ)ᵀ``, each entry exact and rounded once."""
        if "comoment" not in self._cache:
            if not self._finite:
                k = len(self.names)
                self._cache["comoment"] = np.full((k, k), math.nan)
            else:
                scaled, (q, shift) = _moment_matrix(self, fit_intercept=True)
                self._cache["comoment"] = _matrix_to_floats(scaled, -shift, q)
        return self._cache["comoment"]

    def raw_moments(self) -> np.ndarray:
        """Uncentered ``Σ w z zᵀ``, each entry exact and rounded once."""
        if "raw" not in self._cache:
            if not self._finite:
                k = len(self.names)
                self._cache["raw"] = np.full((k, k), math.nan)
            else:
                ints, exponent = self._products
                self._cache["raw"] = _matrix_to_floats(ints, exponent)
        return self._cache["raw"]

    def exact_moments(self) -> tuple[Fraction, list[Fraction], list[list[Fraction]]]:
        """``(Σw, Σwz, Σwzzᵀ)`` as exact fractions (for checks; slow for wide states)."""
        if not self._finite:
            raise InputError("the state saw NaN or ±inf, so its sums are not finite numbers.")
        (wi, we), (si, se), (gi, ge) = self._weight, self._sums, self._products
        return (_fraction(wi, we), [_fraction(v, se) for v in si],
                [[_fraction(v, ge) for v in row] for row in gi])

    def _means(self):
        if "means" not in self._cache:
            k = len(self.names)
            if not self._finite:
                self._cache["means"] = (np.full(k, math.nan), np.full(k, math.nan))
            elif self._weight[0] == 0:
                self._cache["means"] = (np.zeros(k), np.zeros(k))
            else:
                (wi, we), (si, se) = self._weight, self._sums
                exact = [_fraction(v, se - we) / wi for v in si]
                high = np.array([_rational_to_float(m) for m in exact])
                low = np.array([_rational_to_float(m - Fraction(h)) if math.isfinite(h) else 0.0
                                for m, h in zip(exact, high)])
                self._cache["means"] = (high, low)
        return self._cache["means"]

    # ---------------------------------------------------------------- plain form
    def to_dict(self) -> dict:
        """A JSON-ready dict; each statistic is an integer (hex string) times 2**exponent."""
        if not self._finite:
            raise InputError("cannot save an exact state that saw NaN or ±inf.")
        (wi, we), (si, se), (gi, ge) = self._weight, self._sums, self._products
        k = len(self.names)
        return {
            "format": STATE_FORMAT,
            "format_version": STATE_FORMAT_VERSION,
            "names": list(self.names),
            "n_rows": self.n_rows,
            "encoding": "value = int(string, 16) * 2**exponent; 'products' holds the upper triangle by rows",
            "weight_sum": hex(wi),
            "weight_sum_exponent": we,
            "sums": [hex(v) for v in si],
            "sums_exponent": se,
            "products": [[hex(gi[i, j]) for j in range(i, k)] for i in range(k)],
            "products_exponent": ge,
        }

    @classmethod
    def from_dict(cls, data: dict, *, where: str = "state") -> ExactState:
        """Validate and rebuild a state written by :meth:`to_dict`."""
        names = checked_names(data, STATE_FORMAT, STATE_FORMAT_VERSION, "exact state", where)
        k = len(names)
        try:
            n_rows = data["n_rows"]
            exponents = [data[f"{key}_exponent"] for key in ("weight_sum", "sums", "products")]
            weight = _parse_int(data["weight_sum"])
            sums = data["sums"]
            rows = data["products"]
        except KeyError as exc:
            raise ModelFormatError(f"{where}: the field {exc.args[0]!r} is missing.") from exc
        except (TypeError, ValueError) as exc:
            raise ModelFormatError(f"{where}: 'weight_sum' must be an integer written as a string ({exc}).") from exc
        if not _is_int(n_rows) or n_rows < 0:
            raise ModelFormatError(f"{where}: 'n_rows' must be a non-negative integer, got {n_rows!r}.")
        if not all(_is_int(e) for e in exponents):
            raise ModelFormatError(f"{where}: the '*_exponent' fields must be integers.")
        if not isinstance(sums, list) or len(sums) != k or not isinstance(rows, list) or len(rows) != k \
                or not all(isinstance(row, list) and len(row) == k - i for i, row in enumerate(rows)):
            raise ModelFormatError(
                f"{where}: 'sums' must have {k} entries and 'products' {k} rows of {k}, {k - 1}, …, 1 entries."
            )
        try:
            sum_ints = _object_array([_parse_int(v) for v in sums])
            products = _zeros((k, k))
            for i, row in enumerate(rows):
                for j, text in enumerate(row, start=i):
                    products[i, j] = products[j, i] = _parse_int(text)
        except (TypeError, ValueError) as exc:
            raise ModelFormatError(f"{where}: 'sums' and 'products' must hold integers written as strings ({exc}).") from exc
        if weight < 0 or any(products[i, i] < 0 for i in range(k)):
            raise ModelFormatError(f"{where}: a sum of weights or of squares is negative.")
        return cls(names, n_rows, (weight, exponents[0]), (sum_ints, exponents[1]), (products, exponents[2]))

    def save(self, path: str | os.PathLike) -> None:
        """Write the state as JSON, atomically."""
        from .atomic import write_json_atomic

        write_json_atomic(path, self.to_dict())

    @classmethod
    def load(cls, path: str | os.PathLike) -> ExactState:
        from .atomic import read_json

        return cls.from_dict(read_json(path, "state"), where=str(path))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ExactState):
            return NotImplemented
        if (self.names, self.n_rows, self._finite) != (other.names, other.n_rows, other._finite):
            return False
        if not self._finite:
            return True
        return (self._weight == other._weight
                and self._sums[1] == other._sums[1] and np.array_equal(self._sums[0], other._sums[0])
                and self._products[1] == other._products[1]
                and np.array_equal(self._products[0], other._products[0]))

    __hash__ = None

    def __repr__(self) -> str:
        return f"ExactState(columns={len(self.names)}, n_rows={self.n_rows}, weight_sum={self.weight_sum:g})"


# ====================================================================== dyadic numbers
# An exact array is a pair (object array of Python ints, exponent): value = ints · 2**exponent.
# The canonical form has the common power of two divided out, so equal values have equal pairs.

def _zeros(shape) -> np.ndarray:
    return np.zeros(shape, dtype=object)


def _object_array(values) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


def _canonical(ints: np.ndarray, exponent: int):
    ints = np.asarray(ints, dtype=object)
    bits = reduce(or_, ints.flat, 0)
    if bits == 0:
        return _zeros(ints.shape), 0
    shift = (bits & -bits).bit_length() - 1
    return (ints >> shift if shift else ints), int(exponent) + shift


def _canonical_scalar(value: int, exponent: int):
    value = int(value)
    if value == 0:
        return 0, 0
    shift = (value & -value).bit_length() - 1
    return value >> shift, int(exponent) + shift


def _add(a, b):
    (ia, ea), (ib, eb) = a, b
    e = min(ea, eb)
    return _canonical((ia << (ea - e)) + (ib << (eb - e)), e)


def _add_scalar(a, b):
    (ia, ea), (ib, eb) = a, b
    e = min(ea, eb)
    return _canonical_scalar((ia << (ea - e)) + (ib << (eb - e)), e)


def _fraction(value: int, exponent: int) -> Fraction:
    return Fraction(value << exponent) if exponent >= 0 else Fraction(value, 1 << -exponent)


def _to_float(value: int, exponent: int = 0, denominator: int = 1) -> float:
    """``value · 2**exponent / denominator`` rounded once (Python's int division rounds correctly)."""
    if value == 0:
        return 0.0
    if exponent >= 0:
        value <<= exponent
    else:
        denominator <<= -exponent
    try:
        return value / denominator
    except OverflowError:
        return math.inf if (value > 0) == (denominator > 0) else -math.inf


def _rational_to_float(value: Fraction) -> float:
    """A fraction rounded once to float64, ±inf beyond its range."""
    return _to_float(value.numerator, 0, value.denominator)


def _matrix_to_floats(ints: np.ndarray, exponents, denominator: int = 1) -> np.ndarray:
    exponents = np.broadcast_to(np.asarray(exponents, dtype=np.int64), ints.shape)
    out = np.empty(ints.shape)
    for index, value in np.ndenumerate(ints):
        out[index] = _to_float(value, int(exponents[index]), denominator)
    return out


_bit_length = np.frompyfunc(int.bit_length, 1, 1)


def _approximate_floats(ints: np.ndarray, exponents) -> np.ndarray:
    """``ints · 2**exponents`` to within an ulp (not always correctly rounded), vectorized.

    For working values (scaled systems, residuals); results are rounded once with
    :func:`_to_float` instead.
    """
    ints = np.asarray(ints, dtype=object)
    if ints.size == 0:
        return np.zeros(ints.shape)
    lengths = _bit_length(np.abs(ints)).astype(np.int64)
    shift = np.maximum(lengths - 62, 0)
    mantissas = (ints >> shift).astype(np.float64)
    with np.errstate(over="ignore", under="ignore"):
        return np.ldexp(mantissas, np.asarray(exponents, dtype=np.int64) + shift)


def _parse_int(text) -> int:
    if not isinstance(text, str):
        raise TypeError(f"expected a string, got {text!r}")
    return int(text, 0)


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# ====================================================================== error-free batch sums

def _digit_bits(rows: int) -> int:
    """β: digits of β+1 bits keep any sum of ``rows`` digit products below 2^53."""
    return (53 - max(rows - 1, 0).bit_length()) // 2


def _rows_per_product(digit_columns: int) -> int:
    rows = max(1, _DIGITS_PER_PRODUCT // max(digit_columns, 1))
    return int(min(_MAX_ROWS, max(_MIN_ROWS, 1 << (rows.bit_length() - 1))))


def _top_exponents(bound) -> np.ndarray:
    """``t`` with ``|value| ≤ bound < 2**t`` (0 for a zero bound)."""
    return np.frexp(np.asarray(bound, dtype=np.float64))[1].astype(np.int64)


def _batch_sums(z, w, column_max):
    """Exact (Σw, Σwz, Σwzzᵀ) of a finite batch, each as a dyadic (ints, exponent)."""
    n, k = z.shape
    rows = _rows_per_product(k)
    beta = _digit_bits(min(n, rows))
    top_z = _top_exponents(column_max)
    live_z = np.flatnonzero(column_max > 0)
    base = np.append(top_z - beta, 0)             # the last column is ones: unit 1 at level 0
    ones_block = (0, np.array([k]), slice(0, 1))
    chunk = min(n, rows)
    right = _new_digit_buffer(chunk, 4 * k + 1)
    scratch = np.empty((chunk, k), order="F")
    if w is None:
        sums = _Products(base, base, beta + 1, symmetric=True)
        for start in range(0, n, rows):
            zs = z[start:start + rows]
            right, stop, blocks, tail = _split(zs, live_z, top_z, beta, right, 1, scratch)
            blocks = [ones_block, *blocks]
            sums.add(*_digit_products(right, stop, blocks, tail, right, stop, blocks, tail, zs.shape[0], True))
        r, e = sums.result()
        return (r[k, k], e), (r[:k, k], e), (r[:k, :k], e)

    # Left factor: w·z and w; right factor: z and 1. Owners of the left factor are
    # w·z (0…k−1, one lattice per column), w (k), and — on the general path only,
    # where the low parts of w·z are split on their own lattice — those low parts (k+1…2k).
    w_max = float(w.max())
    top_w = int(_top_exponents(w_max))
    top_wz = top_z + top_w                        # |w·z| < 2**(top_w + top_z)
    top_u = np.concatenate([top_wz, [top_w], top_wz - 53])
    live_w = np.array([k] if w_max > 0 else [], dtype=np.int64)
    sums = _Products(top_u - beta, base, beta + 1)
    left = _new_digit_buffer(chunk, 6 * k + 2)
    w_buffer = np.empty((chunk, 1), order="F")
    for start in range(0, n, rows):
        zs, ws = z[start:start + rows], w[start:start + rows]
        m = zs.shape[0]
        scaled = _scaled(zs, top_z, beta, scratch)
        w_scaled = None if scaled is None else _scaled(ws[:, None], np.array([top_w]), 0, w_buffer)
        product = None if w_scaled is None else _weighted_scaled(w_scaled[:, 0], scaled)
        if product is not None:
            high, low_part = product
            w_scaled *= math.ldexp(1.0, beta)
            left, stop_u, blocks_u, tail_w = _split_scaled(w_scaled[:, :live_w.size], live_w, beta, left, 0)
            left, stop_u, blocks_wz, tail_u = _split_scaled_pair(_take(high, live_z), _take(low_part, live_z),
                                                                 live_z, beta, left, stop_u)
            blocks_u += blocks_wz
            tail_u = _join_tails(tail_w, tail_u)
            right, stop_v, blocks_v, tail_v = _split_scaled(_take(scaled, live_z), live_z, beta, right, 1)
        else:
            u, expo = _weighted_columns(ws, zs)
            columns = np.concatenate([live_z, live_w, live_z + k + 1])
            left, stop_u, blocks_u, tail_u = _split_general(u, columns, top_u, beta, left, 0, expo)
            right, stop_v, blocks_v, tail_v = _split_general(np.array(zs, order="F"), live_z, top_z, beta, right, 1)
        sums.add(*_digit_products(left, stop_u, blocks_u, tail_u, right, stop_v, [ones_block, *blocks_v], tail_v,
                                  m, False))
    r, e = sums.result()
    products = r[:k, :k] + r[k + 1:, :k]
    column_sums = r[:k, k] + r[k + 1:, k]
    return (r[k, k], e), (column_sums, e), (products, e)


def _take(a, columns):
    """``a[:, columns]``, without a copy when that is every column."""
    return a if columns.size == a.shape[1] else a[:, columns]


def _join_tails(a, b):
    if a is None or b is None:
        return a if b is None else b
    return tuple(np.concatenate(pair) for pair in zip(a, b))


def _new_digit_buffer(rows, columns):
    buf = np.empty((rows, columns), order="F")
    buf[:, 0] = 1.0
    return buf


def _reserve(buf, used, needed):
    if needed <= buf.shape[1]:
        return buf
    bigger = np.empty((buf.shape[0], max(needed, 2 * buf.shape[1])), order="F")
    bigger[:, :used] = buf[:, :used]
    return bigger


def _scaled(x, top, beta, out):
    """``x · 2**(β − top)`` per column if every product is exact (IEEE flags no underflow), else None.

    Scaled so, column values lie in [−2**β, 2**β]; a nonzero value too small to
    scale exactly would raise the underflow flag, which sends the batch to the
    general path.
    """
    with np.errstate(over="ignore", under="ignore"):
        scale = np.ldexp(1.0, beta - top)
    if not np.isfinite(scale).all() or not scale.all():
        return None
    target = out[:x.shape[0], :x.shape[1]]
    try:
        with np.errstate(under="raise", over="raise"):
            np.multiply(x, scale, out=target)
    except FloatingPointError:
        return None
    return target


def _split(x, columns, top, beta, buf, start, scratch):
    """Error-free split of ``x[:, columns]`` into digit columns (see :func:`_split_scaled`)."""
    scaled = _scaled(x, top, beta, scratch)
    if scaled is not None:
        return _split_scaled(_take(scaled, columns), columns, beta, buf, start)
    return _split_general(np.array(x, order="F"), columns, top, beta, buf, start)


def _split_scaled(scaled, columns, beta, buf, start, first_step=0):
    """Cut columns already scaled to [−2**β, 2**β] into integer digits of at most β+1 bits.

    Digit s of a column is ``rint`` of what remains, scaled by 2**(s(β+1)); the
    remainder is then at most 1/2 and is scaled up by 2**(β+1), exactly. Columns
    leave as soon as their remainder is zero. Once few values have bits left
    (the smallest entries of a column), the rest is cut value by value into a
    sparse tail. ``scaled`` is overwritten. Returns ``(buf, stop, blocks, tail)``;
    a block ``(s, columns, positions)`` says which digit columns of ``buf`` hold
    digit s of which columns.
    """
    n = scaled.shape[0]
    lift = math.ldexp(1.0, beta + 1)
    blocks = []
    stop = start
    step = first_step
    alive = np.any(scaled, axis=0)
    while True:
        if not alive.all():
            scaled, columns = scaled[:, alive], columns[alive]
        if not columns.size:
            return buf, stop, blocks, None
        buf = _reserve(buf, stop, stop + columns.size)
        digits = buf[:n, stop:stop + columns.size]
        np.rint(scaled, out=digits)
        scaled -= digits
        scaled *= lift
        blocks.append((step, columns, slice(stop, stop + columns.size)))
        stop += columns.size
        step += 1
        left = np.count_nonzero(scaled.T)          # .T: a C-ordered view, counted without a copy
        if left <= _SPARSE_TAIL * scaled.size and _tail_pays(n, columns.size, stop):
            return buf, stop, blocks, _sparse_tail(scaled, None, columns, step, lift) if left else None
        alive = np.any(scaled, axis=0)


def _split_scaled_pair(high, low, columns, beta, buf, start):
    """:func:`_split_scaled` for columns held exactly as ``high + low`` (a double-double).

    The digit is ``rint(high)``; ``high − digit`` is exact and at most 1/2, and
    Knuth's TwoSum renormalizes it with ``low`` without error. ``low`` is below
    half an ulp of ``high``, so even a tie broken the wrong way leaves every later
    digit within 2**β. Once every remainder fits in one double the plain split
    takes over. Both arrays are overwritten.
    """
    n = high.shape[0]
    lift = math.ldexp(1.0, beta + 1)
    blocks = []
    stop = start
    step = 0
    alive = np.any(high, axis=0)                 # high = fl(high + low) is 0 only if both are
    total, back = np.empty_like(high), np.empty_like(high)
    while True:
        if not alive.all():
            high, low, columns = high[:, alive], low[:, alive], columns[alive]
            total, back = total[:, alive], back[:, alive]
        if not columns.size:
            return buf, stop, blocks, None
        buf = _reserve(buf, stop, stop + columns.size)
        digits = buf[:n, stop:stop + columns.size]
        np.rint(high, out=digits)
        high -= digits
        # TwoSum in place: total + (high − (total − back)) + (low − back) = high + low.
        np.add(high, low, out=total)
        np.subtract(total, high, out=back)
        low -= back
        np.subtract(total, back, out=back)
        high -= back
        low += high
        high, total = total, high
        high *= lift
        low *= lift
        blocks.append((step, columns, slice(stop, stop + columns.size)))
        stop += columns.size
        step += 1
        if not np.count_nonzero(low.T):
            buf, stop, more, tail = _split_scaled(high, columns, beta, buf, stop, first_step=step)
            return buf, stop, blocks + more, tail
        left = np.count_nonzero(high.T)
        if left <= _SPARSE_TAIL * high.size and _tail_pays(n, columns.size, stop):
            return buf, stop, blocks, _sparse_tail(high, low, columns, step, lift)
        alive = np.any(high, axis=0)


def _tail_pays(rows, columns, digit_columns):
    """Whether another dense slice would cost more BLAS time than a sparse tail's fixed overhead."""
    return rows * columns * digit_columns >= _TAIL_MIN_WORK


def _two_sum(a, b):
    """``(s, e)`` with ``s = fl(a + b)`` and ``a + b = s + e`` exactly (Knuth)."""
    s = a + b
    back = s - a
    return s, (a - (s - back)) + (b - back)


def _sparse_tail(high, low, columns, step, lift):
    """Cut the few values still nonzero, one by one: ``(steps, owners, rows, digits)``."""
    cols, rows = np.divmod(np.flatnonzero(high.T), high.shape[0])   # high is column-major
    values = high[rows, cols]
    lows = None if low is None else low[rows, cols]
    owners = columns[cols]
    parts = []
    while values.size:
        digits = np.rint(values)
        values = values - digits
        if lows is not None:
            values, lows = _two_sum(values, lows)
            lows = lows * lift
        values = values * lift
        used = digits != 0
        parts.append((np.full(int(used.sum()), step), owners[used], rows[used], digits[used]))
        alive = values != 0
        if not alive.all():
            values, owners, rows = values[alive], owners[alive], rows[alive]
            lows = None if lows is None else lows[alive]
        step += 1
    return tuple(np.concatenate(p) for p in zip(*parts))


def _digit_products(left, stop_u, blocks_u, tail_u, right, stop_v, blocks_v, tail_v, rows, symmetric):
    """``[Sᵤ Lᵤ]ᵀ[Sᵥ Lᵥ]`` for dense digit columns S and sparse tails L, and its blocks.

    A tail touches few rows, so its products are dense BLAS products over those
    rows only; like every digit product they are exact.
    """
    su = left[:rows, :stop_u]
    sv = su if symmetric else right[:rows, :stop_v]
    g = su.T @ sv
    if tail_u is None and tail_v is None:
        return g, blocks_u, blocks_v
    lu, at_u, more_u = _tail_matrix(tail_u, stop_u)
    lv, at_v, more_v = (lu, at_u, more_u) if symmetric else _tail_matrix(tail_v, stop_v)
    bottom_left = lu.T @ sv[at_u]
    top_right = bottom_left.T if symmetric else (lv.T @ su[at_v]).T
    corner = lu.T @ (lu if symmetric else _tail_rows(tail_v, lv.shape[1], at_u))
    full = np.block([[g, top_right], [bottom_left, corner]])
    return full, [*blocks_u, *more_u], [*blocks_v, *more_v]


def _tail_keys(tail):
    steps, owners, _, _ = tail
    width = int(owners.max()) + 1
    keys, column = np.unique(steps * width + owners, return_inverse=True)
    return keys, column.reshape(-1), width


def _tail_matrix(tail, offset):
    """A tail as a dense matrix over the rows it touches: ``(matrix, rows, blocks)``.

    One column per (slice, owner), ordered by slice, so each slice is a block of
    positions starting at ``offset``.
    """
    if tail is None:
        return np.zeros((0, 0)), np.zeros(0, dtype=np.int64), []
    steps, owners, where, digits = tail
    keys, column, width = _tail_keys(tail)
    rows, row = np.unique(where, return_inverse=True)
    matrix = np.zeros((rows.size, keys.size))
    matrix[row.reshape(-1), column] = digits
    key_steps, key_owners = np.divmod(keys, width)
    blocks = []
    for s in np.unique(key_steps):
        at = np.flatnonzero(key_steps == s)
        blocks.append((int(s), key_owners[at], slice(offset + int(at[0]), offset + int(at[-1]) + 1)))
    return matrix, rows, blocks


def _tail_rows(tail, columns, rows):
    """The tail's matrix restricted to (and ordered by) the given rows."""
    out = np.zeros((rows.size, columns))
    if tail is None or not rows.size:
        return out
    _, _, where, digits = tail
    _, column, _ = _tail_keys(tail)
    place = np.searchsorted(rows, where)
    hit = (place < rows.size) & (rows[np.minimum(place, rows.size - 1)] == where)
    out[place[hit], column[hit]] = digits[hit]
    return out


def _split_general(x, columns, top, beta, buf, start, expo=None):
    """The split of :func:`_split_scaled` for values ``x · 2**expo`` of any magnitude.

    Column j is cut on units 2**(top[j] − β − s(β+1)) by scaling each value with
    ``ldexp`` on its own mantissa and exponent, which is exact for every finite
    double; slower, and used only when a single scaling per column would not be
    exact. ``x`` (and ``expo``) are overwritten.
    """
    n = x.shape[0]
    if columns.size < x.shape[1]:
        x = x[:, columns]
        expo = None if expo is None else expo[:, columns]
    if expo is None:
        x, expo = np.frexp(x)
    expo = expo.astype(np.int64)
    blocks = []
    stop = start
    step = 0
    while columns.size:
        unit = top[columns] - beta - step * (beta + 1)
        buf = _reserve(buf, stop, stop + columns.size)
        digits = buf[:n, stop:stop + columns.size]
        shift = expo - unit
        np.ldexp(x, shift, out=digits)
        np.rint(digits, out=digits)
        x -= np.ldexp(digits, -shift)
        blocks.append((step, columns, slice(stop, stop + columns.size)))
        stop += columns.size
        alive = np.any(x, axis=0)
        if not alive.all():
            x, columns, expo = x[:, alive], columns[alive], expo[:, alive]
        step += 1
    return buf, stop, blocks, None


def _veltkamp(a):
    c = 134217729.0 * a       # 2^27 + 1
    high = c - (c - a)
    return high, a - high


def _two_product(a, b):
    """``(p, e)`` with ``p = fl(a·b)`` and ``a·b = p + e`` exactly (Dekker 1971; no FMA)."""
    p = a * b
    a_high, a_low = _veltkamp(a)
    b_high, b_low = _veltkamp(b)
    e = ((a_high * b_high - p) + a_high * b_low + a_low * b_high) + a_low * b_low
    return p, e


def _weighted_scaled(w_scaled, z_scaled):
    """``(high, low)`` with ``high + low = w'·z'`` exactly, or None if a low part could underflow.

    ``w' = w·2**-top_w ≤ 1`` and ``z'`` are the scaled columns (≤ 2**β), so the
    product is ``w·z`` on the lattice of ``top_w + top_z`` and cannot overflow;
    Dekker's product is exact unless a nonzero product is below about 2**-950.
    """
    n, k = z_scaled.shape
    high, low = _two_product(w_scaled[:, None], z_scaled)
    tiny = np.abs(high) < _TINY_PRODUCT
    if tiny.any() and (tiny & (w_scaled[:, None] != 0) & (z_scaled != 0)).any():
        return None
    return high, low


def _weighted_columns(w, z):
    """``[h | w | e]`` with ``h + e = w·z``, as mantissas with per-value exponents (exact for any input)."""
    n, k = z.shape
    u = np.empty((n, 2 * k + 1), order="F")
    mw, ew = np.frexp(w)
    mz, ez = np.frexp(z)
    high, low = _two_product(mw[:, None], mz)
    expo = np.empty((n, 2 * k + 1), dtype=np.int64)
    expo[:, :k] = ew[:, None] + ez
    expo[:, k] = ew
    expo[:, k + 1:] = expo[:, :k]
    u[:, :k], u[:, k], u[:, k + 1:] = high, mw, low
    return u, expo


class _Levels:
    """Exact sums of integer-valued float blocks placed on a lattice of binary exponents.

    A block at level λ adds ``G · 2**(base_u[a] + base_v[b] − λ·D)`` to entry (a, b).
    Each level is an int64 plane; carries keep every plane below the top one in
    [0, 2**D), so Python integers are built only once, in :meth:`result`.
    """

    def __init__(self, base_u, base_v, digit_bits):
        self.base_u = np.asarray(base_u, dtype=np.int64)
        self.base_v = np.asarray(base_v, dtype=np.int64)
        self.bits = int(digit_bits)
        self.planes = np.zeros((_GUARD + 8, len(self.base_u), len(self.base_v)), dtype=np.int64)

    def add(self, g, blocks_u, blocks_v):
        """Add the int64 blocks ``g[positions_u, positions_v]`` (each entry below 2**59 in magnitude)."""
        if not blocks_u or not blocks_v:
            return
        deepest = _GUARD + max(b[0] for b in blocks_u) + max(b[0] for b in blocks_v)
        if deepest >= self.planes.shape[0]:
            extra = np.zeros((deepest + 1 - self.planes.shape[0], *self.planes.shape[1:]), dtype=np.int64)
            self.planes = np.concatenate([self.planes, extra])
        # All of g's right-hand digit columns at once: their owners and lattice levels.
        columns = np.concatenate([_positions(where) for _, _, where in blocks_v])
        owners_v = np.concatenate([owners for _, owners, _ in blocks_v])
        levels_v = np.concatenate([np.full(len(owners), level) for level, owners, _ in blocks_v])
        size_u, size_v = self.planes.shape[1:]
        flat = self.planes.reshape(-1)
        for count, (level_u, owners_u, where_u) in enumerate(blocks_u, start=1):
            # One left slice: each target (level, a, b) is hit at most once, so += is exact.
            target = ((_GUARD + level_u + levels_v)[None, :] * size_u + owners_u[:, None]) * size_v + owners_v[None, :]
            flat[target] += g[where_u][:, columns]
            if count % 8 == 0:            # 8 additions of < 2**59 each stay below 2**63
                self._carry()
        self._carry()

    def _carry(self):
        planes, bits = self.planes, self.bits
        for level in range(len(planes) - 1, 0, -1):
            carry = planes[level] >> bits
            planes[level] -= carry << bits
            planes[level - 1] += carry

    def result(self):
        """The sums as one dyadic matrix (object ints, common exponent)."""
        self._carry()
        planes, bits = self.planes, self.bits
        shape = planes.shape[1:]
        occupied = np.flatnonzero(planes.reshape(len(planes), -1).any(axis=1))
        if occupied.size == 0:
            return _zeros(shape), 0
        first, last = int(occupied[0]), int(occupied[-1])
        acc = planes[first].astype(object)
        # Planes below the first are in [0, 2**bits): pack several per int64 word.
        per_word = max(1, 62 // bits)
        level = first + 1
        while level <= last:
            count = min(per_word, last + 1 - level)
            word = planes[level].copy()
            for i in range(1, count):
                word = (word << bits) | planes[level + i]
            acc = (acc << (count * bits)) + word.astype(object)
            level += count
        exponents = self.base_u[:, None] + self.base_v[None, :] - (last - _GUARD) * bits
        nonzero = acc != 0
        if not nonzero.any():
            return _zeros(shape), 0
        low = int(exponents[nonzero].min())
        return acc << np.where(nonzero, exponents - low, 0), low


def _prefix(where):
    """Length of the leading run 0, 1, 2, … in ``where``."""
    run = np.flatnonzero(where != np.arange(where.size))
    return int(run[0]) if run.size else int(where.size)


def _positions(where):
    return np.arange(where.start, where.stop) if isinstance(where, slice) else where


class _Layout:
    """Positions of (slice, column) digit columns in a running accumulator, in order of first use."""

    def __init__(self, columns):
        self.columns = columns
        self.table: list[np.ndarray] = []
        self.steps: list[int] = []
        self.owners: list[int] = []

    def __len__(self):
        return len(self.steps)

    def positions(self, blocks):
        """Accumulator positions of the digit columns of ``blocks``; a slice when they are 0…m−1."""
        found = []
        for step, owners, _ in blocks:
            while len(self.table) <= step:
                self.table.append(np.full(self.columns, -1, dtype=np.int64))
            row = self.table[step]
            where = row[owners]
            new = where < 0
            if new.any():
                fresh = np.arange(len(self.steps), len(self.steps) + int(new.sum()))
                row[owners[new]] = fresh
                where[new] = fresh
                self.steps.extend([step] * fresh.size)
                self.owners.extend(owners[new].tolist())
            found.append(where)
        where = np.concatenate(found) if found else np.empty(0, dtype=np.int64)
        if where.size and where[0] == 0 and where[-1] == where.size - 1 and (np.diff(where) == 1).all():
            return slice(0, where.size)
        return where

    def blocks(self):
        """The accumulator's columns grouped by slice, as blocks for :class:`_Levels`."""
        steps = np.array(self.steps, dtype=np.int64)
        owners = np.array(self.owners, dtype=np.int64)
        out = []
        for step in np.unique(steps):
            where = np.flatnonzero(steps == step)
            out.append((int(step), owners[where], where))
        return out


class _Products:
    """Running exact sums of digit products ``SᵤᵀSᵥ`` over the sub-batches of one batch.

    Each product is added, as int64, at the positions of its (slice, column)
    digit columns — one vectorized addition per sub-batch; every 64 products the
    sums are moved to the lattice levels of a :class:`_Levels`.
    """

    _FLUSH_EVERY = 64           # 64 sums of entries ≤ 2**53 stay below 2**59

    def __init__(self, base_u, base_v, digit_bits, *, symmetric=False):
        self.levels = _Levels(base_u, base_v, digit_bits)
        self.layout_u = _Layout(len(base_u))
        self.layout_v = self.layout_u if symmetric else _Layout(len(base_v))
        self.acc = np.zeros((0, 0), dtype=np.int64)
        self.count = 0

    def add(self, g, blocks_u, blocks_v):
        where_u = self.layout_u.positions(blocks_u)
        where_v = self.layout_v.positions(blocks_v)
        shape = (len(self.layout_u), len(self.layout_v))
        if self.acc.shape != shape:
            grown = np.zeros(shape, dtype=np.int64)
            grown[:self.acc.shape[0], :self.acc.shape[1]] = self.acc
            self.acc = grown
        g = g.astype(np.int64)              # exact: every entry is an integer ≤ 2**53
        # Sub-batches usually repeat the same dense digit columns (a prefix 0…p−1 of the
        # accumulator): add that block by slicing and only the sparse-tail part by index.
        pu, pv = _positions(where_u), _positions(where_v)
        a, b = _prefix(pu), _prefix(pv)
        self.acc[:a, :b] += g[:a, :b]
        if a < pu.size:
            self.acc[np.ix_(pu[a:], pv)] += g[a:]
        if b < pv.size:
            self.acc[np.ix_(pu[:a], pv[b:])] += g[:a, b:]
        self.count += 1
        if self.count >= self._FLUSH_EVERY:
            self._flush()

    def _flush(self):
        if self.count:
            self.levels.add(self.acc, self.layout_u.blocks(), self.layout_v.blocks())
            self.acc[:] = 0
            self.count = 0

    def result(self):
        self._flush()
        return self.levels.result()


class _IntegerMatrix:
    """An integer matrix cut into float limbs, for exact products with float matrices."""

    def __init__(self, ints: np.ndarray):
        m = ints.shape[1]
        self.shape = ints.shape
        self.beta = (52 - max(m - 1, 0).bit_length()) // 2
        bits = self.beta + 1
        magnitude = np.abs(ints)
        negative = np.asarray(ints < 0, dtype=bool)
        width = max((int(v).bit_length() for v in magnitude.flat), default=0)
        count = max(1, -(-width // bits))
        mask = (1 << bits) - 1
        limbs = np.empty((m, count * ints.shape[0]), order="F")
        for t in range(count):
            limb = ((magnitude >> (t * bits)) & mask).astype(np.float64)
            limb[negative] *= -1.0
            limbs[:, t * ints.shape[0]:(t + 1) * ints.shape[0]] = limb.T
        self.limbs = limbs
        rows = np.arange(ints.shape[0])
        self.blocks = [(count - 1 - t, rows, slice(t * ints.shape[0], (t + 1) * ints.shape[0]))
                       for t in range(count)]
        self.base = np.full(ints.shape[0], (count - 1) * bits, dtype=np.int64)

    def times(self, y: np.ndarray):
        """The exact product with the float matrix ``y``, as a dyadic matrix."""
        y = np.array(y, dtype=np.float64, order="F")
        bound = np.abs(y).max(axis=0)
        top = _top_exponents(bound)
        levels = _Levels(self.base, top - self.beta, self.beta + 1)
        digits, stop, blocks, tail = _split(y, np.flatnonzero(bound > 0), top, self.beta,
                                            np.empty((y.shape[0], 4 * y.shape[1] + 1), order="F"), 0,
                                            np.empty(y.shape, order="F"))
        if blocks:
            g, blocks_u, blocks_v = _digit_products(self.limbs, self.limbs.shape[1], self.blocks, None,
                                                    digits, stop, blocks, tail, y.shape[0], False)
            levels.add(g.astype(np.int64), blocks_u, blocks_v)
        return levels.result()


# ====================================================================== solving

def solve_exact(state: ExactState, *, fit_intercept: bool = True, drop_collinear: bool = False) -> Solution:
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
    check_enough_rows(state, p, fit_intercept)
    c, inv_kappa = _moment_matrix(state, fit_intercept)
    usable = np.array([c[j, j] > 0 for j in range(p)], dtype=bool)

    fit = None
    if p > BAREISS_MAX_FEATURES:
        kept, aliased, earlier = _modular_rank(c[:p, :p])
        if kept is not None:
            if aliased and not drop_collinear:
                details = [(before, fit_intercept) for before in earlier]
                raise CollinearityError(_collinear_message(names, aliased, details, fit_intercept, usable,
                                                           exact_support=False))
            fit = _refined_fit(c, kept, inv_kappa)
            if fit is None and len(kept) > _BAREISS_FALLBACK_MAX:
                raise IllConditionedError(
                    "the normal equations are too ill-conditioned for iterative refinement, and exact "
                    f"elimination of {len(kept)} columns would take too long; remove nearly collinear columns."
                )
    if fit is None:
        kept, aliased, det, rows = _gauss_jordan(c.tolist(), p)
        if aliased and not drop_collinear:
            details = [_involvement(state, rows, det, kept, j, fit_intercept) for j in aliased]
            raise CollinearityError(_collinear_message(names, aliased, details, fit_intercept, usable,
                                                       exact_support=True))
        fit = _eliminated_fit(c, kept, det, rows, p, inv_kappa)

    beta = fit["beta"]                 # exact Fractions over kept columns
    coef = np.full(p, np.nan)
    coef[kept] = [_rational_to_float(b) for b in beta]
    if fit_intercept:
        wi, we = state._weight
        si, se = state._sums
        mean_part = _fraction(si[p], se) - sum((_fraction(si[j], se) * b for j, b in zip(kept, beta)), Fraction(0))
        intercept = _rational_to_float(mean_part / _fraction(wi, we))
    else:
        intercept = 0.0
    q, shift = inv_kappa
    tss = _to_float(c[p, p], -shift, q)
    ssr = _rational_to_float(max(fit["ssr_scaled"], Fraction(0)) * _fraction(1, -shift) / q)
    cond = fit["condition"]
    warnings: list[str] = []
    if cond > WARN_CONDITION:
        digits = max(0.0, -math.log10(math.sqrt(cond) * np.finfo(float).eps))
        warnings.append(
            f"the scaled normal equations have condition number {cond:.1e}: the exact solver's coefficients "
            "are exact for the data as stored in float64, but the rounding of the data itself leaves "
            f"only about {digits:.0f} significant digits that the data determine."
        )
    if aliased:
        warnings.append("dropped as collinear (no coefficient): " + ", ".join(names[j] for j in aliased) + ".")
    return Solution(
        coef=coef, intercept=intercept, aliased=[names[j] for j in aliased],
        rank=len(kept) + (1 if fit_intercept else 0), condition_number=cond, ssr=ssr, tss=tss,
        solver="exact", warnings=warnings, xtx_inv=fit["xtx_inv"],
    )


def _moment_matrix(state: ExactState, fit_intercept: bool):
    """``(C, (q, s))``: the moment matrix is ``C / (q · 2**s)`` with ``C`` an integer matrix.

    With an intercept ``C = W·G − s sᵀ`` up to a power of two and the centered
    moments are ``C / W``, so ``q`` is ``W`` without its power of two; without an
    intercept ``C = G`` and ``q = 1``. Then ``1/κ = q · 2**s``.
    """
    (wi, we), (si, se), (gi, ge) = state._weight, state._sums, state._products
    if not fit_intercept:
        ints, e = _canonical(gi, ge)
        return ints, (1, -e)
    low = min(we + ge, 2 * se)
    c = ((gi * wi) << (we + ge - low)) - (np.multiply.outer(si, si) << (2 * se - low))
    ints, e = _canonical(c, low)
    # centered moments = C·2**e / W = C·2**e / (wi·2**we)
    return ints, (wi, we - e)


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
        row = list(c[j][:p + 1]) + [0] * p
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
        si, _ = state._sums
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
            inverse[a, b] = _to_float(rows[i][p + 1 + j] * q, shift, det)
    scaled_inverse = _scaled_inverse(c, kept, [[rows[i][p + 1 + j] for j in kept] for i in kept], det)
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
            out[a, b] = _to_float(adjugate[a][b], d[a] + d[b], det)
    root = _diagonal_roots(c, kept, d)
    return out * np.outer(root, root)


def _diagonal_roots(c, kept, d):
    """√(C_ii) / 2**d_i in float."""
    return np.array([math.sqrt(_to_float(c[i, i], -2 * di)) for i, di in zip(kept, d)])


def _condition_number(c, kept, scaled_inverse) -> float:
    """cond₂ of ``D⁻¹ C_KK D⁻¹``: λmax of it times λmax of its inverse (both well determined)."""
    if not kept:
        return 1.0
    d = [(int(c[i, i]).bit_length() - 1) // 2 for i in kept]
    sub = c[np.ix_(kept, kept)]
    exps = -(np.array(d)[:, None] + np.array(d)[None, :])
    scaled = _approximate_floats(sub, exps)
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
    mats = np.stack([np.array((a % int(q)).tolist(), dtype=np.int64).reshape(p, p) for q in _PRIMES])
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
        inverse = np.array([pow(int(v), int(m) - 2, int(m)) if ok else 0
                            for v, m, ok in zip(pivots, primes, valid)], dtype=np.int64)
        row = mats[:, j, j + 1:]
        scaled = row * inverse[:, None] % q
        block = mats[:, j + 1:, j + 1:]
        block -= scaled[:, :, None] * row[:, None, :] % q[:, :, None]
        np.add(block, q[:, :, None], out=block, where=block < 0)
    if not valid.any():
        return None, None, None
    return kept, aliased, earlier


def _refined_fit(c, kept, inv_kappa):
    """β and C_KK⁻¹/κ by iterative refinement with exact residuals; None if it stalls."""
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
    rhs_ints = _zeros((m, m + 1))
    rhs_ints[:, 0] = b
    for i in range(m):
        rhs_ints[i, i + 1] = q
    shifts = np.empty((m, m + 1), dtype=np.int64)
    shifts[:, 0] = 2 * top - d - d_y
    shifts[:, 1:] = 2 * top - q_bits
    low = int(shifts.min())
    residual = (rhs_ints << (shifts - low), low)

    scaled = _approximate_floats(c_hat, -2 * top)
    try:
        factor = linalg.cho_factor(scaled, lower=True)
    except linalg.LinAlgError:
        return None
    exact = _IntegerMatrix(c_hat)
    parts: list[np.ndarray] = []
    total = np.zeros((m, m + 1))
    previous_size = math.inf
    for _ in range(_MAX_REFINEMENTS):
        ints, e = residual
        if not (ints != 0).any():
            break
        delta = linalg.cho_solve(factor, _approximate_floats(ints, e - 2 * top))
        if not np.isfinite(delta).all():
            return None
        parts.append(delta)
        total += delta
        product = exact.times(delta)
        residual = _add(residual, (-product[0], product[1]))
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
    beta = [yi * _fraction(1, int(d_y - d[i])) for i, yi in enumerate(y)]
    ints, e = residual
    # residual_i = 2**(2top − d_i − d_y)·(b − C_KK β)_i
    gap = [_fraction(int(ints[i, 0]), e - (2 * top - int(d[i]) - d_y)) for i in range(m)]
    ssr_scaled = Fraction(c_yy) - sum((Fraction(int(bi)) * bt for bi, bt in zip(b, beta)), Fraction(0)) \
        - sum((bt * g for bt, g in zip(beta, gap)), Fraction(0))
    # Z = q·2**-q_bits · D C_KK⁻¹ D with D = diag(2**d), so C_KK⁻¹/κ = C_KK⁻¹·q·2**s has
    # entries Z_ij · 2**(q_bits + s − d_i − d_j): one rounding (fsum), then exact scaling.
    z_sum = _sum_of_corrections([part[:, 1:] for part in parts])
    inverse = np.ldexp(z_sum, (q_bits + shift - d[:, None] - d[None, :]).astype(np.int64))
    # √diag-scaled inverse for the condition number: R·Z·(2**q_bits / q)·R, R = √diag / 2**d.
    root = _diagonal_roots(c, kept, [int(v) for v in d])
    scaled_inverse = z_sum * _to_float(1, q_bits, q) * np.outer(root, root)
    cond = _condition_number(c, kept, scaled_inverse)
    return {"beta": beta, "ssr_scaled": ssr_scaled, "xtx_inv": inverse, "condition": cond}


def _sum_of_corrections(parts):
    """``Σ parts`` rounded once, up to ~2⁻¹⁰⁶ relative: the corrections shrink geometrically,
    so a running TwoSum with the errors gathered separately is as good as ``math.fsum``."""
    high = parts[0].copy()
    low = np.zeros_like(high)
    for part in parts[1:]:
        high, error = _two_sum(high, part)
        low += error
    return high + low


def _collinear_message(names, aliased, details, fit_intercept, usable, *, exact_support) -> str:
    """One sentence naming the first aliased column, what it depends on, and the way out."""
    j = aliased[0]
    if not usable[j]:
        what = "is constant, so it is collinear with the intercept" if fit_intercept else "is all zeros"
        first = f"column '{names[j]}' {what}"
    else:
        support, intercept = details[0]
        basis = (["the intercept"] if intercept else []) + [f"'{names[i]}'" for i in support]
        if exact_support:
            first = (f"column '{names[j]}' is a linear combination of {_join(basis)} "
                     f"(exactly, or up to the rounding of float64 data: 1 − R² ≤ {float(NEAR_DEPENDENCE):g})")
        else:
            first = f"column '{names[j]}' is a linear combination of the columns before it ({', '.join(basis)})"
    others = [names[a] for a in aliased[1:]]
    also = f"; so {'is' if len(others) == 1 else 'are'} {', '.join(repr(o) for o in others)}" if others else ""
    return (
        f"{first}{also}. Remove the column, or pass --drop-collinear (drop_collinear=True) "
        "to give aliased columns no coefficient."
    )


def _join(items: list[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]
