r"""Mergeable accumulators for diagnostic plots of big fits, with memory flat in the rows.

* :class:`Histogram2D` — counts on a fixed grid (residuals against fitted values,
  or √|standardized residual| against fitted values for scale–location). The grid
  is fixed before the pass, from the model: fitted values within
  ``μ_y ± span·sd(ŷ)`` and residuals within ``± span·√scale``
  (:meth:`Histogram2D.for_residuals`). Points outside the grid are counted in
  ``outside`` (never silently clipped into the edge cells) and the extremes of
  both coordinates are kept, so a plot can say how many points lie beyond its
  frame and how far. Merging adds counts (grids must be identical): exact,
  associative and commutative. Memory: one integer per cell.
* :class:`TopPoints` — the ``k`` rows with the largest key (ties broken by the
  smaller row number, so the result does not depend on batching or merge
  order), each with its row identity and a few named values.
* :class:`InfluentialRows` — the leverage-vs-studentized-residual plot's labelled
  points: top ``k`` by ``|studentized residual|``, by leverage, and by Cook's
  distance ``D = r²/k_params · h/(1 − h)`` (``r`` internally studentized).

Row identity is the row's ordinal in the data's order (files in sorted order,
rows in file order), which the pass maps back to (file, row) if it wishes.

>>> import numpy as np
>>> h = Histogram2D.regular(0.0, 1.0, 4, -1.0, 1.0, 2)
>>> _ = h.update(np.array([0.1, 0.6, 2.0]), np.array([-0.5, 0.5, 0.0]))
>>> h.counts.tolist(), h.outside
([[1, 0], [0, 0], [0, 1], [0, 0]], 1)
"""

from __future__ import annotations

import numpy as np

from ...errors import InputError, ModelFormatError
from ...solvers.base import check_format

HISTOGRAM_FORMAT = "streamreg.histogram_2d"
TOP_FORMAT = "streamreg.top_points"
FORMAT_VERSION = 1


class Histogram2D:
    """Counts of ``(x, y)`` pairs on fixed edges; see the module docstring."""

    __slots__ = ("x_edges", "y_edges", "counts", "outside", "count", "x_range", "y_range")

    def __init__(self, x_edges, y_edges):
        self.x_edges = np.asarray(x_edges, dtype=np.float64)
        self.y_edges = np.asarray(y_edges, dtype=np.float64)
        for name, edges in (("x_edges", self.x_edges), ("y_edges", self.y_edges)):
            if (
                edges.ndim != 1
                or edges.size < 2
                or not np.all(np.isfinite(edges))
                or np.any(np.diff(edges) <= 0)
            ):
                raise InputError(
                    f"{name} must be at least two finite, strictly increasing numbers."
                )
        self.counts = np.zeros((self.x_edges.size - 1, self.y_edges.size - 1), dtype=np.int64)
        self.outside = 0
        self.count = 0
        self.x_range = [np.inf, -np.inf]
        self.y_range = [np.inf, -np.inf]

    @classmethod
    def regular(cls, x_low, x_high, x_bins, y_low, y_high, y_bins) -> Histogram2D:
        return cls(
            np.linspace(x_low, x_high, int(x_bins) + 1), np.linspace(y_low, y_high, int(y_bins) + 1)
        )

    @classmethod
    def for_residuals(
        cls,
        fitted_center: float,
        fitted_spread: float,
        resid_spread: float,
        *,
        bins: tuple[int, int] = (200, 200),
        span: float = 4.0,
    ) -> Histogram2D:
        """Fitted values within ``center ± span·fitted_spread``, residuals within
        ``± span·resid_spread`` (from the model: ``μ_y``, ``√(ESS/Σw)``, ``√scale``)."""
        fitted_spread = fitted_spread if fitted_spread > 0 else max(abs(fitted_center), 1.0)
        resid_spread = resid_spread if resid_spread > 0 else 1.0
        return cls.regular(
            fitted_center - span * fitted_spread,
            fitted_center + span * fitted_spread,
            bins[0],
            -span * resid_spread,
            span * resid_spread,
            bins[1],
        )

    def update(self, x, y) -> Histogram2D:
        """Count a batch of pairs (in place); NaN pairs are refused."""
        x = np.asarray(x, dtype=np.float64).reshape(-1)
        y = np.asarray(y, dtype=np.float64).reshape(-1)
        if x.shape != y.shape:
            raise InputError(f"x and y must have one value per point; got {x.size} and {y.size}.")
        if x.size == 0:
            return self
        if np.isnan(x).any() or np.isnan(y).any():
            raise InputError("the histogram takes numbers; the batch holds NaN.")
        i = _cell_index(self.x_edges, x)
        j = _cell_index(self.y_edges, y)
        # The last edge closes the last cell, as in numpy.histogram2d.
        i[x == self.x_edges[-1]] = self.counts.shape[0] - 1
        j[y == self.y_edges[-1]] = self.counts.shape[1] - 1
        inside = (i >= 0) & (i < self.counts.shape[0]) & (j >= 0) & (j < self.counts.shape[1])
        flat = np.bincount(i[inside] * self.counts.shape[1] + j[inside], minlength=self.counts.size)
        self.counts += flat.reshape(self.counts.shape)
        self.outside += int(x.size - inside.sum())
        self.count += int(x.size)
        self.x_range = [min(self.x_range[0], float(x.min())), max(self.x_range[1], float(x.max()))]
        self.y_range = [min(self.y_range[0], float(y.min())), max(self.y_range[1], float(y.max()))]
        return self

    def merge(self, other: Histogram2D) -> Histogram2D:
        if not (
            np.array_equal(self.x_edges, other.x_edges)
            and np.array_equal(self.y_edges, other.y_edges)
        ):
            raise InputError("cannot merge histograms on different grids.")
        out = Histogram2D(self.x_edges, self.y_edges)
        out.counts = self.counts + other.counts
        out.outside, out.count = self.outside + other.outside, self.count + other.count
        out.x_range = [
            min(self.x_range[0], other.x_range[0]),
            max(self.x_range[1], other.x_range[1]),
        ]
        out.y_range = [
            min(self.y_range[0], other.y_range[0]),
            max(self.y_range[1], other.y_range[1]),
        ]
        return out

    __add__ = merge

    def to_dict(self) -> dict:
        finite = self.count > 0
        return {
            "format": HISTOGRAM_FORMAT,
            "format_version": FORMAT_VERSION,
            "x_edges": self.x_edges.tolist(),
            "y_edges": self.y_edges.tolist(),
            "counts": self.counts.tolist(),
            "outside": self.outside,
            "count": self.count,
            "x_range": self.x_range if finite else None,
            "y_range": self.y_range if finite else None,
        }

    @classmethod
    def from_dict(cls, data: dict, *, where: str = "histogram") -> Histogram2D:
        check_format(data, HISTOGRAM_FORMAT, FORMAT_VERSION, "2-D histogram", where)
        try:
            out = cls(data["x_edges"], data["y_edges"])
            counts = np.array(data["counts"], dtype=np.int64)
            outside, count = int(data["outside"]), int(data["count"])
        except (KeyError, TypeError, ValueError, InputError) as exc:
            raise ModelFormatError(f"{where}: a field is missing or malformed ({exc}).") from exc
        if (
            counts.shape != out.counts.shape
            or counts.min(initial=0) < 0
            or counts.sum() + outside != count
        ):
            raise ModelFormatError(f"{where}: the counts do not fit the grid and the totals.")
        out.counts, out.outside, out.count = counts, outside, count
        if count:
            out.x_range, out.y_range = (
                [float(v) for v in data["x_range"]],
                [float(v) for v in data["y_range"]],
            )
        return out

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Histogram2D):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    __hash__ = None


def _cell_index(edges: np.ndarray, values: np.ndarray) -> np.ndarray:
    """``searchsorted(edges, values, "right") − 1``; on an evenly spaced grid by arithmetic,
    corrected by one comparison with the edges either side (as numpy.histogram does)."""
    width = (edges[-1] - edges[0]) / (edges.size - 1)
    if not np.allclose(np.diff(edges), width, rtol=1e-12, atol=0):
        return np.searchsorted(edges, values, side="right") - 1
    with np.errstate(invalid="ignore", over="ignore"):
        index = np.floor((values - edges[0]) / width)
    index = np.clip(np.nan_to_num(index, nan=-1.0), -1, edges.size - 1).astype(np.int64)
    inner = (index >= 0) & (index < edges.size - 1)
    lower = np.where(inner, edges[np.clip(index, 0, edges.size - 1)], -np.inf)
    upper = np.where(inner, edges[np.clip(index + 1, 0, edges.size - 1)], np.inf)
    index = index - (inner & (values < lower)) + (inner & (values >= upper))
    # Values at or beyond the ends: exact by comparison.
    index[values < edges[0]] = -1
    index[values >= edges[-1]] = edges.size - 1
    return index


class TopPoints:
    """The ``k`` rows with the largest key, with their row numbers and named values."""

    __slots__ = ("k", "fields", "keys", "rows", "values")

    def __init__(self, k: int, fields: tuple[str, ...] = ()):
        if isinstance(k, bool) or not isinstance(k, int) or k < 0:
            raise InputError(f"k must be a non-negative whole number; got {k!r}.")
        self.k, self.fields = k, tuple(fields)
        self.keys = np.empty(0)
        self.rows = np.empty(0, dtype=np.int64)
        self.values = np.empty((0, len(self.fields)))

    def update(self, keys, rows, **values) -> TopPoints:
        """Offer a batch: one key and one row number per point, and each named field."""
        keys = np.asarray(keys, dtype=np.float64).reshape(-1)
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        if set(values) != set(self.fields):
            raise InputError(
                f"expected the fields {', '.join(self.fields) or '(none)'}; got "
                f"{', '.join(sorted(values)) or '(none)'}."
            )
        table = (
            np.column_stack(
                [np.asarray(values[f], dtype=np.float64).reshape(-1) for f in self.fields]
            )
            if self.fields
            else np.empty((keys.size, 0))
        )
        if rows.shape != keys.shape or table.shape[0] != keys.size:
            raise InputError("keys, rows and every field need one entry per point.")
        if np.isnan(keys).any():
            raise InputError("the keys hold NaN; a top-k needs ordered keys.")
        self._keep(np.r_[self.keys, keys], np.r_[self.rows, rows], np.vstack([self.values, table]))
        return self

    def _keep(self, keys, rows, table) -> None:
        if keys.size > self.k > 0:
            # Only keys at least the k-th largest can stay (ties included): sort just those.
            threshold = np.partition(keys, keys.size - self.k)[keys.size - self.k]
            candidates = np.flatnonzero(keys >= threshold)
            keys, rows, table = keys[candidates], rows[candidates], table[candidates]
        order = np.lexsort((rows, -keys))[: self.k]  # largest key first, then smaller row
        self.keys, self.rows, self.values = keys[order], rows[order], table[order]

    def merge(self, other: TopPoints) -> TopPoints:
        if (other.k, other.fields) != (self.k, self.fields):
            raise InputError(
                f"cannot merge a top-{other.k} of {other.fields} into a top-{self.k} "
                f"of {self.fields}."
            )
        out = TopPoints(self.k, self.fields)
        out._keep(
            np.r_[self.keys, other.keys],
            np.r_[self.rows, other.rows],
            np.vstack([self.values, other.values]),
        )
        return out

    __add__ = merge

    def records(self) -> list[dict]:
        """One dict per kept row, largest key first."""
        return [
            {"row": int(r), "key": float(key), **{f: float(v) for f, v in zip(self.fields, vals)}}
            for key, r, vals in zip(self.keys, self.rows, self.values)
        ]

    def to_dict(self) -> dict:
        return {
            "format": TOP_FORMAT,
            "format_version": FORMAT_VERSION,
            "k": self.k,
            "fields": list(self.fields),
            "keys": self.keys.tolist(),
            "rows": self.rows.tolist(),
            "values": self.values.tolist(),
        }

    @classmethod
    def from_dict(cls, data: dict, *, where: str = "top points") -> TopPoints:
        check_format(data, TOP_FORMAT, FORMAT_VERSION, "top-k summary", where)
        try:
            out = cls(data["k"], tuple(data["fields"]))
            keys = np.array(data["keys"], dtype=np.float64).reshape(-1)
            rows = np.array(data["rows"], dtype=np.int64).reshape(-1)
            values = np.array(data["values"], dtype=np.float64).reshape(len(keys), len(out.fields))
        except (KeyError, TypeError, ValueError, InputError) as exc:
            raise ModelFormatError(f"{where}: a field is missing or malformed ({exc}).") from exc
        if rows.shape != keys.shape or keys.size > out.k:
            raise ModelFormatError(f"{where}: holds {keys.size} points for k = {out.k}.")
        out.keys, out.rows, out.values = keys, rows, values
        return out

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TopPoints):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    __hash__ = None


class InfluentialRows:
    """Top-k rows by |studentized residual|, by leverage and by Cook's distance."""

    FIELDS = ("leverage", "studentized", "fitted", "cooks_distance")
    __slots__ = ("k", "n_params", "by_residual", "by_leverage", "by_cooks_distance")

    def __init__(self, k: int = 10, n_params: int = 1):
        self.k, self.n_params = k, int(n_params)
        self.by_residual = TopPoints(k, self.FIELDS)
        self.by_leverage = TopPoints(k, self.FIELDS)
        self.by_cooks_distance = TopPoints(k, self.FIELDS)

    def update(self, rows, leverage, studentized, fitted) -> InfluentialRows:
        """A batch: row numbers, leverages ``h``, studentized residuals, fitted values."""
        h = np.asarray(leverage, dtype=np.float64)
        r = np.asarray(studentized, dtype=np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            cooks = r * r / self.n_params * h / (1.0 - h)
        fields = {"leverage": h, "studentized": r, "fitted": fitted, "cooks_distance": cooks}
        self.by_residual.update(np.nan_to_num(np.abs(r), nan=-np.inf), rows, **fields)
        self.by_leverage.update(h, rows, **fields)
        self.by_cooks_distance.update(np.nan_to_num(cooks, nan=-np.inf), rows, **fields)
        return self

    def merge(self, other: InfluentialRows) -> InfluentialRows:
        out = InfluentialRows(self.k, self.n_params)
        out.by_residual = self.by_residual + other.by_residual
        out.by_leverage = self.by_leverage + other.by_leverage
        out.by_cooks_distance = self.by_cooks_distance + other.by_cooks_distance
        return out

    __add__ = merge

    def to_dict(self) -> dict:
        return {
            "k": self.k,
            "n_params": self.n_params,
            "by_residual": self.by_residual.to_dict(),
            "by_leverage": self.by_leverage.to_dict(),
            "by_cooks_distance": self.by_cooks_distance.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: dict, *, where: str = "influential rows") -> InfluentialRows:
        if not isinstance(data, dict) or not isinstance(data.get("n_params"), int):
            raise ModelFormatError(
                f"{where}: expected a dict with k, n_params and three top-k lists."
            )
        out = cls(data.get("k"), data["n_params"])
        for name in ("by_residual", "by_leverage", "by_cooks_distance"):
            top = TopPoints.from_dict(data.get(name), where=f"{where}: {name}")
            if (top.k, top.fields) != (out.k, cls.FIELDS):
                raise ModelFormatError(f"{where}: {name} is not a top-{out.k} of {cls.FIELDS}.")
            setattr(out, name, top)
        return out

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, InfluentialRows):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    __hash__ = None
