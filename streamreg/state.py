r"""Mergeable sufficient statistics for least squares: the centered co-moment state.

For rows ``z = [x₁ … x_p, y]`` with weights ``w`` the state keeps

* ``n_rows`` — the number of rows seen,
* ``weight_sum`` — ``n = Σ w`` (the row count when unweighted),
* ``mean`` — ``μ = Σ w z / n``, held as the unevaluated sum ``mean + mean_lo``
  of two float64 vectors (double-double), because ``δ = μ_b − μₐ`` below must
  keep its digits when columns sit at 1e9 and vary by 1,
* ``comoment`` — ``M = Σ w (z − μ)(z − μ)ᵀ``.

Two states merge exactly (Chan, Golub & LeVeque 1979; Pébay 2008)::

    n = nₐ + n_b ;  δ = μ_b − μₐ ;  μ = μₐ + δ·n_b/n ;  M = Mₐ + M_b + δδᵀ·nₐn_b/n

so the state of a data set does not depend on how it was split into chunks,
up to rounding. Centering keeps the digits that raw ``ZᵀZ`` sums lose when
columns carry large offsets (timestamps, prices).

>>> import numpy as np
>>> z = np.array([[1.0, 2.0], [2.0, 4.1], [3.0, 5.9]])
>>> whole = MomentState.from_arrays(z, names=["x", "y"])
>>> parts = MomentState.from_arrays(z[:1], names=["x", "y"]) + MomentState.from_arrays(z[1:], names=["x", "y"])
>>> bool(np.allclose(whole.comoment, parts.comoment))
True
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from .errors import InputError, ModelFormatError

STATE_FORMAT = "streamreg.moment_state"
STATE_FORMAT_VERSION = 1
# If the shifted sums cancel by more than this factor, recentre on the batch mean.
_CANCELLATION_LIMIT = 1e-3


class CenteredState:
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
        self.mean, self.mean_lo = _two_sum(hi, lo)

    @classmethod
    def empty(cls, names: Sequence[str]):
        """The identity of :meth:`merge`: no rows."""
        k = len(names)
        return cls(names, 0, 0.0, np.zeros(k), np.zeros((k, k)))

    def update(self, z: np.ndarray, weights: np.ndarray | None = None):
        """Fold a batch into this state in place and return ``self``."""
        self._absorb(type(self).from_arrays(z, weights, names=self.names))
        return self

    def merge(self, other):
        """A new state for the union of the rows of ``self`` and ``other``."""
        out = self.copy()
        out._absorb(other)
        return out

    def __add__(self, other):
        return self.merge(other)

    def _absorb(self, other) -> None:
        if other.names != self.names:
            raise InputError(f"cannot merge states over different columns: {list(self.names)} and {list(other.names)}.")
        self.n_rows += other.n_rows
        if other.weight_sum == 0.0:
            return
        if self.weight_sum == 0.0:
            self.weight_sum = other.weight_sum
            self.mean, self.mean_lo = other.mean.copy(), other.mean_lo.copy()
            self._take_spread(other)
            return
        n_a, n_b = self.weight_sum, other.weight_sum
        n = n_a + n_b
        high, low = _two_sum(other.mean, -self.mean)  # exact
        delta = high + (low + (other.mean_lo - self.mean_lo))
        self._add_spread(other, delta, n_a * n_b / n)
        self.mean, self.mean_lo = _two_sum(self.mean, self.mean_lo + delta * (n_b / n))
        self.weight_sum = n

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
        """A JSON-ready dict; floats are written with ``repr`` and so round-trip exactly."""
        return {
            "format": self.FORMAT,
            "format_version": self.FORMAT_VERSION,
            "names": list(self.names),
            "n_rows": self.n_rows,
            "weight_sum": self.weight_sum,
            "mean": self.mean.tolist(),
            "mean_lo": self.mean_lo.tolist(),
            self.SPREAD: getattr(self, self.SPREAD).tolist(),
        }

    @classmethod
    def from_dict(cls, data: dict, *, where: str = "state"):
        """Validate and rebuild a state written by :meth:`to_dict`."""
        names = checked_names(data, cls.FORMAT, cls.FORMAT_VERSION, cls.LABEL, where)
        k = len(names)
        try:
            mean = np.array(data["mean"], dtype=np.float64)
            mean_lo = np.array(data["mean_lo"], dtype=np.float64)
            spread = np.array(data[cls.SPREAD], dtype=np.float64)
            n_rows = data["n_rows"]
            weight_sum = float(data["weight_sum"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelFormatError(f"{where}: a field is missing or not a number ({exc}).") from exc
        if not isinstance(n_rows, int) or isinstance(n_rows, bool) or n_rows < 0:
            raise ModelFormatError(f"{where}: 'n_rows' must be a non-negative integer, got {n_rows!r}.")
        if mean.shape != (k,) or mean_lo.shape != (k,) or spread.shape != (k, k):
            raise ModelFormatError(
                f"{where}: 'mean' and 'mean_lo' must have {k} entries and '{cls.SPREAD}' must be {k}×{k}."
            )
        if not all(np.isfinite(v).all() for v in (mean, mean_lo, spread, weight_sum)):
            raise ModelFormatError(f"{where}: the statistics contain non-finite numbers.")
        return cls(names, n_rows, weight_sum, mean, spread, mean_lo=mean_lo)

    def save(self, path: str | os.PathLike) -> None:
        """Write the state as JSON, atomically."""
        from .atomic import write_json_atomic

        write_json_atomic(path, self.to_dict())

    @classmethod
    def load(cls, path: str | os.PathLike):
        from .atomic import read_json

        return cls.from_dict(read_json(path, "state"), where=str(path))

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return (self.names == other.names and self.n_rows == other.n_rows
                and self.weight_sum == other.weight_sum
                and np.array_equal(self.mean, other.mean)
                and np.array_equal(self.mean_lo, other.mean_lo)
                and np.array_equal(getattr(self, self.SPREAD), getattr(other, other.SPREAD)))

    __hash__ = None


class MomentState(CenteredState):
    """Centered co-moments of ``[x, y]`` columns; see the module docstring."""

    __slots__ = ("comoment",)
    FORMAT, FORMAT_VERSION, LABEL, SPREAD = STATE_FORMAT, STATE_FORMAT_VERSION, "moment state", "comoment"

    def __init__(self, names: Sequence[str], n_rows: int, weight_sum: float,
                 mean: np.ndarray, comoment: np.ndarray, mean_lo: np.ndarray | None = None):
        self._set_counts(names, n_rows, weight_sum, mean, mean_lo)
        self.comoment = np.asarray(comoment, dtype=np.float64)

    # ---------------------------------------------------------------- building
    @classmethod
    def from_arrays(cls, z: np.ndarray, weights: np.ndarray | None = None, *,
                    names: Sequence[str], overwrite: bool = False,
                    shift: np.ndarray | None = None, preshifted: bool = False) -> MomentState:
        """State of one batch ``z`` (rows × columns, target last) with optional weights.

        With ``overwrite=True`` the batch array is shifted in place (saves a copy
        on the hot path); NaN and ±inf stay where they were, so a caller can
        still locate them in ``z`` afterwards.
        """
        z = np.asarray(z, dtype=np.float64)
        if z.ndim != 2 or z.shape[1] != len(names):
            raise InputError(f"batch has shape {z.shape}; expected (rows, {len(names)}) for columns {list(names)}.")
        if not overwrite or not z.flags.writeable:
            z = np.array(z, dtype=np.float64, order="F")
        n_rows = z.shape[0]
        if n_rows == 0:
            return cls.empty(names)
        sqrt_w = None
        if weights is not None:
            weights = np.asarray(weights, dtype=np.float64)
            sqrt_w = np.sqrt(weights)
        n, shift, mean_offset, comoment = _batch_moments(z, weights, sqrt_w, shift, preshifted)
        return cls(names, n_rows, n, shift, comoment, mean_lo=mean_offset)

    # ---------------------------------------------------------------- merging
    def _add_spread(self, other: MomentState, delta: np.ndarray, weight: float) -> None:
        self.comoment = self.comoment + other.comoment + np.outer(delta, delta) * weight

    def _take_spread(self, other: MomentState) -> None:
        self.comoment = other.comoment.copy()

    def copy(self) -> MomentState:
        return MomentState(self.names, self.n_rows, self.weight_sum, self.mean.copy(), self.comoment.copy(),
                           mean_lo=self.mean_lo.copy())

    # ---------------------------------------------------------------- views
    def is_finite(self) -> bool:
        return bool(np.isfinite(self.mean).all() and np.isfinite(np.diagonal(self.comoment)).all())

    def __repr__(self) -> str:
        return f"MomentState(columns={len(self.names)}, n_rows={self.n_rows}, weight_sum={self.weight_sum:g})"


def check_format(data, fmt: str, version: int, label: str, where: str) -> None:
    """A saved file's ``format`` and ``format_version`` are the ones this streamreg reads."""
    if not isinstance(data, dict) or data.get("format") != fmt:
        raise ModelFormatError(f"{where} is not a streamreg {label}.")
    if data.get("format_version") != version:
        raise ModelFormatError(
            f"{where} has {label} format version {data.get('format_version')!r}; "
            f"this streamreg reads version {version}."
        )


def checked_names(data, fmt: str, version: int, label: str, where: str) -> list[str]:
    """The column names of a saved state, once its format and version are checked."""
    check_format(data, fmt, version, label, where)
    names = data.get("names")
    if not isinstance(names, list) or not names or not all(isinstance(x, str) for x in names):
        raise ModelFormatError(f"{where}: 'names' must be a non-empty list of column names.")
    return names


def _two_sum(a, b):
    """``(s, e)`` with ``s = fl(a + b)`` and ``a + b = s + e`` exactly (Knuth's TwoSum)."""
    with np.errstate(invalid="ignore", over="ignore"):
        s = a + b
        b_virtual = s - a
        e = (a - (s - b_virtual)) + (b - b_virtual)
    return s, np.where(np.isfinite(e), e, 0.0)


def _batch_moments(z: np.ndarray, weights, sqrt_w, shift=None, preshifted=False):
    """(n, shift, mean − shift, M) of one batch; shifts ``z`` in place.

    Sums are taken about a shift ``c`` — the caller's (the running mean of the
    rows so far, free) or else the batch mean from one plain pass — with one
    BLAS ``syrk`` on ``z − c``, and converted to central moments with
    ``M = S − s sᵀ/n``; ``s/n`` keeps the digits the shift rounded away. If
    that subtraction would cancel badly (the batch mean drifted far from the
    shift, as in sorted timestamps), the batch is recentred on ``c + s/n`` and
    summed again.
    """
    # A shift from a few leading rows would be free but lands ~σ/8 off, which trips
    # the cancellation check on almost every batch and doubles the syrk work; the
    # running mean lands ~σ/√n off for shuffled data.
    if shift is None:
        with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
            shift = z.mean(axis=0) if weights is None else (z.T @ weights) / weights.sum()
    # A column holding NaN or ±inf gets no shift; its sums are screened by the caller.
    if not preshifted:
        shift = np.where(np.isfinite(shift), shift, 0.0)
        z -= shift
    n, s, sums = _shifted_sums(z, weights, sqrt_w)
    if n == 0.0:
        k = z.shape[1]
        return 0.0, np.zeros(k), np.zeros(k), np.zeros((k, k))
    with np.errstate(invalid="ignore", divide="ignore"):
        correction = np.outer(s, s) / n
        cancels = np.diagonal(correction) > _CANCELLATION_LIMIT * np.diagonal(sums)
    if np.isfinite(sums).all() and cancels.any():
        recentre = s / n
        z -= recentre
        n, s, sums = _shifted_sums(z, weights, sqrt_w)
        correction = np.outer(s, s) / n
        return n, shift, recentre + s / n, sums - correction
    return n, shift, s / n, sums - correction


def _shifted_sums(z, weights, sqrt_w):
    if weights is None:
        with np.errstate(invalid="ignore", over="ignore"):
            return float(z.shape[0]), z.sum(axis=0), z.T @ z
    n = float(weights.sum())
    with np.errstate(invalid="ignore", over="ignore"):
        scaled = z * sqrt_w[:, None]
        return n, scaled.T @ sqrt_w, scaled.T @ scaled
