"""The exact state: W = Σw, s = Σwz and G = Σwzzᵀ as exact dyadic integers (see the package)."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from fractions import Fraction

import numpy as np

from ...errors import InputError, ModelFormatError
from ...io.atomic import read_json, write_json_atomic
from ..base import State, checked_names
from .dyadic import (
    add,
    add_scalar,
    canonical,
    canonical_scalar,
    fraction,
    is_int,
    matrix_to_floats,
    object_array,
    parse_int,
    rational_to_float,
    to_float,
    zeros,
)
from .products import batch_sums

STATE_FORMAT = "streamreg.exact_state"
STATE_FORMAT_VERSION = 1


class ExactState(State):
    """Exact ``Σw``, ``Σwz`` and ``Σwzzᵀ`` of ``[x, y]`` columns; see the module docstring."""

    __slots__ = ("names", "n_rows", "_weight", "_sums", "_products", "_finite", "_cache")
    FORMAT, FORMAT_VERSION = STATE_FORMAT, STATE_FORMAT_VERSION

    def __init__(
        self,
        names: Sequence[str],
        n_rows: int,
        weight: tuple,
        sums: tuple,
        products: tuple,
        *,
        finite: bool = True,
    ):
        self.names = tuple(names)
        self.n_rows = int(n_rows)
        self._finite = bool(finite)
        if self._finite:
            self._weight = canonical_scalar(*weight)
            self._sums = canonical(*sums)
            self._products = canonical(*products)
        else:
            self._weight = self._sums = self._products = None
        self._cache = {}

    # ---------------------------------------------------------------- building
    @classmethod
    def empty(cls, names: Sequence[str]) -> ExactState:
        """The identity of :meth:`merge`: no rows."""
        k = len(names)
        return cls(names, 0, (0, 0), (zeros(k), 0), (zeros((k, k)), 0))

    @classmethod
    def from_arrays(
        cls,
        z: np.ndarray,
        weights: np.ndarray | None = None,
        *,
        names: Sequence[str],
        overwrite: bool = False,
    ) -> ExactState:
        """Exact state of one batch ``z`` (rows × columns, target last), optionally weighted.

        A batch holding NaN or ±inf gives a state whose :meth:`is_finite` is False.
        ``z`` is never modified; ``overwrite`` is accepted for the engine's sake
        (:class:`~streamreg.solvers.moments.MomentState` shifts ``z`` in place with it).
        """
        z = np.asarray(z, dtype=np.float64)
        if z.ndim != 2 or z.shape[1] != len(names):
            raise InputError(
                f"batch has shape {z.shape}; expected (rows, {len(names)}) for columns "
                f"{list(names)}."
            )
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
        weight, sums, products = batch_sums(z, w, column_max)
        return cls(names, n_rows, weight, sums, products)

    # ---------------------------------------------------------------- merging
    def __iadd__(self, other: ExactState) -> ExactState:
        """Add ``other``'s exact sums to this state's (exact, so any order gives the same bits)."""
        self.check_mergeable(other)
        self.n_rows += other.n_rows
        self._cache = {}
        if not (self._finite and other._finite):
            self._finite = False
            self._weight = self._sums = self._products = None
            return self
        self._weight = add_scalar(self._weight, other._weight)
        self._sums = add(self._sums, other._sums)
        self._products = add(self._products, other._products)
        return self

    def copy(self) -> ExactState:
        out = type(self).__new__(type(self))
        out.names, out.n_rows, out._finite = self.names, self.n_rows, self._finite
        out._weight = self._weight
        out._sums = None if self._sums is None else (self._sums[0].copy(), self._sums[1])
        out._products = (
            None if self._products is None else (self._products[0].copy(), self._products[1])
        )
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
        return to_float(*self._weight)

    @property
    def mean(self) -> np.ndarray:
        """``Σ w z / Σ w``, each entry the exact mean rounded once to float64."""
        return self._means()[0]

    @property
    def mean_lo(self) -> np.ndarray:
        """The exact mean minus :attr:`mean`, rounded: ``mean + mean_lo`` is a double-double
        mean."""
        return self._means()[1]

    @property
    def comoment(self) -> np.ndarray:
        """``Σ w (z − μ)(z − μ)ᵀ``, each entry exact and rounded once."""
        if "comoment" not in self._cache:
            if not self._finite:
                k = len(self.names)
                self._cache["comoment"] = np.full((k, k), math.nan)
            else:
                scaled, (q, shift) = self.moment_matrix(fit_intercept=True)
                self._cache["comoment"] = matrix_to_floats(scaled, -shift, q)
        return self._cache["comoment"]

    def raw_moments(self) -> np.ndarray:
        """Uncentered ``Σ w z zᵀ``, each entry exact and rounded once."""
        if "raw" not in self._cache:
            if not self._finite:
                k = len(self.names)
                self._cache["raw"] = np.full((k, k), math.nan)
            else:
                ints, exponent = self._products
                self._cache["raw"] = matrix_to_floats(ints, exponent)
        return self._cache["raw"]

    def exact_moments(self) -> tuple[Fraction, list[Fraction], list[list[Fraction]]]:
        """``(Σw, Σwz, Σwzzᵀ)`` as exact fractions (for checks; slow for wide states)."""
        if not self._finite:
            raise InputError("the state saw NaN or ±inf, so its sums are not finite numbers.")
        (wi, we), (si, se), (gi, ge) = self._weight, self._sums, self._products
        return (
            fraction(wi, we),
            [fraction(v, se) for v in si],
            [[fraction(v, ge) for v in row] for row in gi],
        )

    def moment_matrix(self, fit_intercept: bool):
        """``(C, (q, s))``: the moment matrix is ``C / (q · 2**s)`` with ``C`` an integer matrix.

        With an intercept ``C = W·G − s sᵀ`` up to a power of two and the centered
        moments are ``C / W``, so ``q`` is ``W`` without its power of two; without an
        intercept ``C = G`` and ``q = 1``. Then ``1/κ = q · 2**s``.
        """
        (wi, we), (si, se), (gi, ge) = self._weight, self._sums, self._products
        if not fit_intercept:
            ints, e = canonical(gi, ge)
            return ints, (1, -e)
        low = min(we + ge, 2 * se)
        c = ((gi * wi) << (we + ge - low)) - (np.multiply.outer(si, si) << (2 * se - low))
        ints, e = canonical(c, low)
        # centered moments = C·2**e / W = C·2**e / (wi·2**we)
        return ints, (wi, we - e)

    def exact_sums(self) -> tuple:
        """``((W, e_W), (s, e_s), (G, e_G))``: the exact sums as integers and power-of-two exponents
        (``W = W_int · 2**e_W``); for the exact solve in this package."""
        return self._weight, self._sums, self._products

    def _means(self):
        if "means" not in self._cache:
            k = len(self.names)
            if not self._finite:
                self._cache["means"] = (np.full(k, math.nan), np.full(k, math.nan))
            elif self._weight[0] == 0:
                self._cache["means"] = (np.zeros(k), np.zeros(k))
            else:
                (wi, we), (si, se) = self._weight, self._sums
                exact = [fraction(v, se - we) / wi for v in si]
                high = np.array([rational_to_float(m) for m in exact])
                low = np.array(
                    [
                        rational_to_float(m - Fraction(h)) if math.isfinite(h) else 0.0
                        for m, h in zip(exact, high)
                    ]
                )
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
            "encoding": (
                "value = int(string, 16) * 2**exponent; 'products' holds the upper triangle by rows"
            ),
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
            weight = parse_int(data["weight_sum"])
            sums = data["sums"]
            rows = data["products"]
        except KeyError as exc:
            raise ModelFormatError(f"{where}: the field {exc.args[0]!r} is missing.") from exc
        except (TypeError, ValueError) as exc:
            raise ModelFormatError(
                f"{where}: 'weight_sum' must be an integer written as a string ({exc})."
            ) from exc
        if not is_int(n_rows) or n_rows < 0:
            raise ModelFormatError(
                f"{where}: 'n_rows' must be a non-negative integer, got {n_rows!r}."
            )
        if not all(is_int(e) for e in exponents):
            raise ModelFormatError(f"{where}: the '*_exponent' fields must be integers.")
        if (
            not isinstance(sums, list)
            or len(sums) != k
            or not isinstance(rows, list)
            or len(rows) != k
            or not all(isinstance(row, list) and len(row) == k - i for i, row in enumerate(rows))
        ):
            raise ModelFormatError(
                f"{where}: 'sums' must have {k} entries and 'products' {k} rows of {k}, {k - 1}, "
                "…, 1 entries."
            )
        try:
            sum_ints = object_array([parse_int(v) for v in sums])
            products = zeros((k, k))
            for i, row in enumerate(rows):
                for j, text in enumerate(row, start=i):
                    products[i, j] = products[j, i] = parse_int(text)
        except (TypeError, ValueError) as exc:
            raise ModelFormatError(
                f"{where}: 'sums' and 'products' must hold integers written as strings ({exc})."
            ) from exc
        if weight < 0 or any(products[i, i] < 0 for i in range(k)):
            raise ModelFormatError(f"{where}: a sum of weights or of squares is negative.")
        return cls(
            names,
            n_rows,
            (weight, exponents[0]),
            (sum_ints, exponents[1]),
            (products, exponents[2]),
        )

    def save(self, path: str | os.PathLike) -> None:
        """Write the state as JSON, atomically."""
        write_json_atomic(path, self.to_dict())

    @classmethod
    def load(cls, path: str | os.PathLike) -> ExactState:
        return cls.from_dict(read_json(path, "state"), where=str(path))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ExactState):
            return NotImplemented
        if (self.names, self.n_rows, self._finite) != (other.names, other.n_rows, other._finite):
            return False
        if not self._finite:
            return True
        return (
            self._weight == other._weight
            and self._sums[1] == other._sums[1]
            and np.array_equal(self._sums[0], other._sums[0])
            and self._products[1] == other._products[1]
            and np.array_equal(self._products[0], other._products[0])
        )

    __hash__ = None

    def __repr__(self) -> str:
        return (
            f"ExactState(columns={len(self.names)}, n_rows={self.n_rows}, "
            f"weight_sum={self.weight_sum:g})"
        )
