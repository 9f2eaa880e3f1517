r"""What every streamreg state shares, and the contract a new state must meet.

A *state* is a small, mergeable summary of some rows. Every state class provides

* ``empty(names)`` — the identity of the merge (no rows);
* ``from_arrays(z, weights, *, names, overwrite=False)`` — the state of one batch
  ``z`` (rows × columns, target last);
* ``state += other`` (in place) and ``state + other`` / ``merge`` (a new state) —
  the state of the union of two disjoint sets of rows, whatever the order
  (exactly for :class:`~streamreg.solvers.exact.ExactState`, up to rounding otherwise);
* ``names``, ``n_rows``, ``weight_sum``, ``mean``, ``mean_lo``, ``comoment``,
  ``raw_moments()``, ``is_finite()``;
* ``to_dict()`` / ``from_dict()`` (plain JSON, validated), ``save`` / ``load``;
* ``shift_hint()`` — a vector the engine may subtract from the next batch while
  copying it out of Arrow (``None`` when the state wants raw values).

``tests/state_checks.py`` checks every state class against this contract.
:class:`CenteredState` implements the counts, the double-double mean and its merge
for the states that keep their spread about the mean.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from ..engine.merge import Mergeable
from ..errors import InputError, ModelFormatError
from ..io.atomic import read_json, write_json_atomic
from ..io.packed import is_packed, pack_matrix, should_pack, unpack_matrix

# A state whose spread is large is written packed (streamreg.io.packed) under this version;
# smaller ones keep their own FORMAT_VERSION and are written exactly as before.
PACKED_STATE_VERSION = 2


class State(Mergeable):
    """Base of every state: ``update`` a batch in place; ``merge``/``+`` come from ``__iadd__``."""

    __slots__ = ()

    def update(self, z: np.ndarray, weights: np.ndarray | None = None):
        """Fold a batch into this state in place and return ``self``."""
        self += type(self).from_arrays(z, weights, names=self.names)
        return self

    def shift_hint(self) -> np.ndarray | None:
        """A vector the engine may subtract from the next batch as it copies it out of Arrow
        (passed on as ``from_arrays(..., shift=, preshifted=True)``); None: send raw values."""
        return None

    def check_mergeable(self, other) -> None:
        """Only states of the same kind over the same columns merge."""
        if type(other) is not type(self):
            raise InputError(
                f"cannot merge a {type(self).__name__} with a {type(other).__name__}; "
                "states of different solvers do not mix."
            )
        if other.names != self.names:
            raise InputError(
                f"cannot merge states over different columns: {list(self.names)} and "
                f"{list(other.names)}."
            )


class CenteredState(State):
    """What every centered state shares: counts, the double-double mean, and the merge of means.

    Subclasses hold the spread of the rows about the mean (``comoment`` or a
    triangular factor) and say how two spreads combine, given
    ``δ = μ_b − μₐ`` and ``nₐn_b/n`` (``_add_spread``), and how to take
    another state's spread over (``_take_spread``).
    """

    __slots__ = ("names", "n_rows", "weight_sum", "mean", "mean_lo")

    def _set_counts(self, names, n_rows, weight_sum, mean, mean_lo) -> None:
        self.names = tuple(names)
        self.n_rows = int(n_rows)
        self.weight_sum = float(weight_sum)
        hi = np.asarray(mean, dtype=np.float64)
        lo = np.zeros_like(hi) if mean_lo is None else np.asarray(mean_lo, dtype=np.float64)
        self.mean, self.mean_lo = two_sum(hi, lo)

    @classmethod
    def empty(cls, names: Sequence[str]):
        """The identity of :meth:`merge`: no rows."""
        k = len(names)
        return cls(names, 0, 0.0, np.zeros(k), np.zeros((k, k)))

    def __iadd__(self, other):
        """Fold ``other``'s rows into this state (Chan, Golub & LeVeque's merge of the means)."""
        self.check_mergeable(other)
        self.n_rows += other.n_rows
        if other.weight_sum == 0.0:
            return self
        if self.weight_sum == 0.0:
            self.weight_sum = other.weight_sum
            self.mean, self.mean_lo = other.mean.copy(), other.mean_lo.copy()
            self._take_spread(other)
            return self
        n_a, n_b = self.weight_sum, other.weight_sum
        n = n_a + n_b
        high, low = two_sum(other.mean, -self.mean)  # exact
        delta = high + (low + (other.mean_lo - self.mean_lo))
        self._add_spread(other, delta, n_a * n_b / n)
        self.mean, self.mean_lo = two_sum(self.mean, self.mean_lo + delta * (n_b / n))
        self.weight_sum = n
        return self

    @property
    def n_columns(self) -> int:
        return len(self.names)

    def raw_moments(self) -> np.ndarray:
        """Uncentered ``Σ w z zᵀ = M + n μμᵀ`` (for models without an intercept)."""
        mean = self.mean + self.mean_lo
        return self.comoment + self.weight_sum * np.outer(mean, mean)

    # ---------------------------------------------------------------- plain form
    # Subclasses name their format and the attribute holding their k × k spread.
    FORMAT: str
    FORMAT_VERSION: int
    LABEL: str
    SPREAD: str

    def to_dict(self) -> dict:
        """A JSON-ready dict; floats are written with ``repr`` and so round-trip exactly (a large
        spread is packed, exactly too: :mod:`streamreg.io.packed`)."""
        spread = getattr(self, self.SPREAD)
        packed = should_pack(spread)
        return {
            "format": self.FORMAT,
            "format_version": PACKED_STATE_VERSION if packed else self.FORMAT_VERSION,
            "names": list(self.names),
            "n_rows": self.n_rows,
            "weight_sum": self.weight_sum,
            "mean": self.mean.tolist(),
            "mean_lo": self.mean_lo.tolist(),
            self.SPREAD: pack_matrix(spread) if packed else spread.tolist(),
        }

    @classmethod
    def from_dict(cls, data: dict, *, where: str = "state"):
        """Validate and rebuild a state written by :meth:`to_dict`."""
        versions = (cls.FORMAT_VERSION, PACKED_STATE_VERSION)
        names = checked_names(data, cls.FORMAT, versions, cls.LABEL, where)
        k = len(names)
        try:
            mean = _numbers(data["mean"])
            mean_lo = _numbers(data["mean_lo"])
            spread = data[cls.SPREAD]
            if is_packed(spread) and data["format_version"] == PACKED_STATE_VERSION:
                spread = unpack_matrix(spread, (k, k), where, cls.SPREAD)
            else:
                spread = _numbers(spread)
            n_rows = data["n_rows"]
            weight_sum = data["weight_sum"]
            if isinstance(weight_sum, bool) or not isinstance(weight_sum, (int, float)):
                raise TypeError(f"'weight_sum' is {type(weight_sum).__name__}")
            weight_sum = float(weight_sum)
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelFormatError(f"{where}: a field is missing or not a number ({exc}).") from exc
        if not isinstance(n_rows, int) or isinstance(n_rows, bool) or n_rows < 0:
            raise ModelFormatError(
                f"{where}: 'n_rows' must be a non-negative integer, got {n_rows!r}."
            )
        if weight_sum < 0 or (n_rows == 0 and weight_sum != 0):
            raise ModelFormatError(
                f"{where}: 'weight_sum' {weight_sum!r} does not fit 'n_rows' {n_rows}."
            )
        if mean.shape != (k,) or mean_lo.shape != (k,) or spread.shape != (k, k):
            raise ModelFormatError(
                f"{where}: 'mean' and 'mean_lo' must have {k} entries and '{cls.SPREAD}' must be "
                f"{k}×{k}."
            )
        if not all(np.isfinite(v).all() for v in (mean, mean_lo, spread, weight_sum)):
            raise ModelFormatError(f"{where}: the statistics contain non-finite numbers.")
        return cls(names, n_rows, weight_sum, mean, spread, mean_lo=mean_lo)

    def save(self, path: str | os.PathLike) -> None:
        """Write the state as JSON, atomically."""
        write_json_atomic(path, self.to_dict())

    @classmethod
    def load(cls, path: str | os.PathLike):
        return cls.from_dict(read_json(path, "state"), where=str(path))

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return (
            self.names == other.names
            and self.n_rows == other.n_rows
            and self.weight_sum == other.weight_sum
            and np.array_equal(self.mean, other.mean)
            and np.array_equal(self.mean_lo, other.mean_lo)
            and np.array_equal(getattr(self, self.SPREAD), getattr(other, other.SPREAD))
        )

    __hash__ = None


def check_format(data, fmt: str, version: int | tuple[int, ...], label: str, where: str) -> None:
    """A saved file's ``format`` and ``format_version`` are ones this streamreg reads
    (``version``: one version, or a tuple of the versions read)."""
    if not isinstance(data, dict) or data.get("format") != fmt:
        raise ModelFormatError(f"{where} is not a streamreg {label}.")
    versions = tuple(sorted(set(version))) if isinstance(version, tuple) else (version,)
    given = data.get("format_version")
    if isinstance(given, bool) or given not in versions:
        read = " or ".join(str(v) for v in versions)
        raise ModelFormatError(
            f"{where} has {label} format version {given!r}; this streamreg reads version {read}."
        )


def _numbers(value) -> np.ndarray:
    """A list (of lists) of JSON numbers as float64; strings, booleans, nulls and ragged rows are
    refused (numpy alone would take "1.5", true and null)."""
    array = np.array(value, dtype=object)
    if array.dtype != object or array.size == 0:
        return np.asarray(array, dtype=np.float64)
    flat = array.ravel()
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in flat):
        raise ValueError("the entries must be numbers")
    return array.astype(np.float64)


def checked_names(
    data, fmt: str, version: int | tuple[int, ...], label: str, where: str
) -> list[str]:
    """The column names of a saved state, once its format and version are checked."""
    check_format(data, fmt, version, label, where)
    names = data.get("names")
    if not isinstance(names, list) or not names or not all(isinstance(x, str) for x in names):
        raise ModelFormatError(f"{where}: 'names' must be a non-empty list of column names.")
    return names


def two_sum(a, b):
    """``(s, e)`` with ``s = fl(a + b)`` and ``a + b = s + e`` exactly (Knuth's TwoSum)."""
    with np.errstate(invalid="ignore", over="ignore"):
        s = a + b
        b_virtual = s - a
        e = (a - (s - b_virtual)) + (b - b_virtual)
    return s, np.where(np.isfinite(e), e, 0.0)
