r"""The Durbin–Watson statistic over ordered blocks of residuals, mergeable in order.

``DW = Σₜ₌₂ (rₜ − rₜ₋₁)² / Σₜ rₜ²`` over the whitened residuals ``r = √w·e`` in
the data's order (``statsmodels.stats.stattools.durbin_watson(results.wresid)``).
A block keeps its first and last residual besides the two sums, so two
*adjacent* blocks ``a`` (earlier) and ``b`` (later) merge with the one
difference that straddles the seam::

    Σ(Δr)² = Σₐ(Δr)² + Σ_b(Δr)² + (first_b − last_a)²

The merge is associative (any tree over blocks in order gives the same sums,
up to rounding) but not commutative: ``a + b`` means "a, then b". The empty
block is the identity on both sides.

>>> import numpy as np
>>> r = np.array([1.0, -0.5, 0.25, 2.0, -1.0])
>>> parts = DurbinWatson.from_array(r[:2]) + DurbinWatson.from_array(r[2:])
>>> float(parts.statistic) == float(np.sum(np.diff(r) ** 2) / np.sum(r ** 2))
True
"""

from __future__ import annotations

import math

import numpy as np

from ...errors import InputError, ModelFormatError
from ...solvers.base import check_format

FORMAT = "streamreg.durbin_watson"
FORMAT_VERSION = 1


class DurbinWatson:
    """Ordered sums for the Durbin–Watson statistic; see the module docstring."""

    __slots__ = ("count", "first", "last", "sum_squared_differences", "sum_squares")

    def __init__(
        self,
        count: int = 0,
        first: float = 0.0,
        last: float = 0.0,
        sum_squared_differences: float = 0.0,
        sum_squares: float = 0.0,
    ):
        self.count = int(count)
        self.first, self.last = float(first), float(last)
        self.sum_squared_differences = float(sum_squared_differences)
        self.sum_squares = float(sum_squares)

    @classmethod
    def empty(cls) -> DurbinWatson:
        return cls()

    @classmethod
    def from_array(cls, wresid) -> DurbinWatson:
        """The sums of one block of residuals, in their order."""
        r = np.asarray(wresid, dtype=np.float64).reshape(-1)
        if r.shape[0] == 0:
            return cls()
        if not np.isfinite(r).all():
            raise InputError(
                "wresid holds NaN or ±inf; the Durbin-Watson statistic needs finite residuals."
            )
        diff = np.diff(r)
        return cls(r.shape[0], r[0], r[-1], float(diff @ diff), float(r @ r))

    def update(self, wresid) -> DurbinWatson:
        """Append a block that follows the rows seen so far (in place); returns ``self``."""
        self._append(DurbinWatson.from_array(wresid))
        return self

    def merge(self, later: DurbinWatson) -> DurbinWatson:
        """The sums of ``self``'s rows followed by ``later``'s rows."""
        out = self.copy()
        out._append(later)
        return out

    __add__ = merge

    def copy(self) -> DurbinWatson:
        return DurbinWatson(
            self.count, self.first, self.last, self.sum_squared_differences, self.sum_squares
        )

    def _append(self, later: DurbinWatson) -> None:
        if later.count == 0:
            return
        if self.count == 0:
            self.count, self.first, self.last = later.count, later.first, later.last
            self.sum_squared_differences = later.sum_squared_differences
            self.sum_squares = later.sum_squares
            return
        seam = later.first - self.last
        self.sum_squared_differences += later.sum_squared_differences + seam * seam
        self.sum_squares += later.sum_squares
        self.last = later.last
        self.count += later.count

    @property
    def statistic(self) -> float:
        """``Σ(Δr)²/Σr²`` (NaN without rows; ±inf/NaN when every residual is zero, as numpy)."""
        if self.count == 0:
            return math.nan
        if self.sum_squares == 0.0:
            return math.nan if self.sum_squared_differences == 0.0 else math.inf
        return self.sum_squared_differences / self.sum_squares

    def to_dict(self) -> dict:
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "count": self.count,
            "first": self.first,
            "last": self.last,
            "sum_squared_differences": self.sum_squared_differences,
            "sum_squares": self.sum_squares,
        }

    @classmethod
    def from_dict(cls, data: dict, *, where: str = "Durbin-Watson sums") -> DurbinWatson:
        check_format(data, FORMAT, FORMAT_VERSION, "Durbin-Watson summary", where)
        count = data.get("count")
        if not isinstance(count, int) or isinstance(count, bool) or count < 0:
            raise ModelFormatError(
                f"{where}: 'count' must be a non-negative integer, got {count!r}."
            )
        keys = ("first", "last", "sum_squared_differences", "sum_squares")
        values = [data.get(key) for key in keys]
        if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in values):
            raise ModelFormatError(f"{where}: {', '.join(keys)} must be finite numbers.")
        return cls(count, *values)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, DurbinWatson):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    __hash__ = None

    def __repr__(self) -> str:
        return f"DurbinWatson(count={self.count}, statistic={self.statistic:g})"
