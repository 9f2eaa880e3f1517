r"""One pass over the data for the diagnostic plots of a fit, with memory flat in the rows.

For each row of ``data`` at the model's coefficients: the fitted value ``ŷ``, the (whitened)
residual ``r = √w·e``, the leverage ``h = w(1/Σw + x̃ᵀM⁻¹x̃)`` and the internally studentized
residual ``t = r/√(scale·(1 − h))`` (:mod:`.residuals`). They are folded into

* a 2-D histogram of ``(ŷ, r)`` — residuals vs fitted — and one of ``(ŷ, √|t|)`` —
  scale–location — on grids fixed from the model before the pass
  (:class:`~.accumulators.Histogram2D`);
* a quantile sketch of ``t`` for the normal Q–Q plot, with its proven rank-error bound
  (:class:`~.sketch.QuantileSketch`);
* a 2-D histogram of ``(h, t)`` and the top-k rows by |t|, by leverage and by Cook's distance
  with their row numbers (:class:`~.accumulators.InfluentialRows`).

Memory: three histograms (``bins²`` counts each), the sketch (``capacity`` values per level,
``log₂(n/capacity)`` levels) and ``3k`` rows — whatever the number of rows. Row numbers count
every row in the data's order (files as listed, rows in file order; rows dropped for missing
values keep their number); for a Dask collection, ``partition · 10¹² + row``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...design import DesignSpec, batch_arrays, screen_values
from ...engine.blocks import Blocks
from ...engine.dask_runner import DaskRunner, collection_blocks, is_dask_collection
from ...engine.local import LocalRunner
from ...engine.merge import Mergeable
from ...engine.scan import resolve_batch_size
from ...io.inputs import to_source
from ..robust import centered_residuals
from .accumulators import Histogram2D, InfluentialRows
from .residuals import leverage, studentized, whiten
from .sketch import QuantileSketch

# Rows of different Dask partitions are numbered partition · this + row.
PARTITION_STRIDE = 10**12


@dataclass(frozen=True)
class PlotGrid:
    """The fixed frames of the histograms and the sizes of the accumulators."""

    fitted: tuple[float, float]
    residual: tuple[float, float]
    leverage: tuple[float, float]
    studentized: tuple[float, float]
    bins: int = 200
    top: int = 10
    capacity: int = 4096
    tail: int = 500

    @classmethod
    def for_model(cls, model, *, bins: int = 200, top: int = 10, span: float = 4.0) -> PlotGrid:
        """Fitted values within ``μ_y ± span·sd(ŷ)``, residuals within ``± span·√scale``,
        studentized residuals within ``± span``, leverage up to ``6·k/n`` (all from the model:
        no pass is needed to choose them)."""
        state = model.state_
        p = len(model.coef_)
        center = float(state.mean[p]) if model.fit_intercept else 0.0
        spread = max(model.ess, 0.0) / state.weight_sum
        spread = np.sqrt(spread) if spread > 0 else max(abs(center), 1.0)
        if not model.fit_intercept:
            spread = np.sqrt(max(model.ess, 0.0) / state.weight_sum) or 1.0
            center = 0.0
        scale = model.scale if model.scale > 0 else 1.0
        k = model.solution_.rank
        top_leverage = min(1.0, 6.0 * k / max(model.nobs, 1.0))
        return cls(
            fitted=(center - span * spread, center + span * spread),
            residual=(-span * np.sqrt(scale), span * np.sqrt(scale)),
            leverage=(0.0, top_leverage),
            studentized=(-span, span),
            bins=bins,
            top=top,
        )

    def histogram(self, x: tuple[float, float], y: tuple[float, float]) -> Histogram2D:
        return Histogram2D.regular(x[0], x[1], self.bins, y[0], y[1], self.bins)


class PlotData(Mergeable):
    """The merged accumulators of a plot pass; ``a + b`` is a's rows, then b's."""

    def __init__(self, grid: PlotGrid, n_params: int):
        self.grid = grid
        self.residuals = grid.histogram(grid.fitted, grid.residual)
        self.scale_location = grid.histogram(
            grid.fitted, (0.0, float(np.sqrt(grid.studentized[1])))
        )
        self.leverage = grid.histogram(grid.leverage, grid.studentized)
        self.sketch = QuantileSketch(grid.capacity, grid.tail)
        self.influential = InfluentialRows(grid.top, n_params)
        self.n_rows = 0

    def copy(self) -> PlotData:
        out = object.__new__(PlotData)
        out.__dict__.update(self.__dict__)
        out.sketch = self.sketch.copy()
        for name in ("residuals", "scale_location", "leverage", "influential"):
            setattr(out, name, getattr(self, name) + _empty_like(getattr(self, name)))
        return out

    def __iadd__(self, later: PlotData) -> PlotData:
        self.residuals = self.residuals + later.residuals
        self.scale_location = self.scale_location + later.scale_location
        self.leverage = self.leverage + later.leverage
        self.sketch = self.sketch + later.sketch
        self.influential = self.influential + later.influential
        self.n_rows += later.n_rows
        return self


def _empty_like(accumulator):
    if isinstance(accumulator, Histogram2D):
        return Histogram2D(accumulator.x_edges, accumulator.y_edges)
    return InfluentialRows(accumulator.k, accumulator.n_params)


def plot_part(
    source, index, spec, batch_size, model_facts, grid, offsets, *, on_rows=None
) -> PlotData:
    """A runner's task: the plot accumulators of one block's rows, in order."""
    state, coef, xtx_inv, scale, n_params = model_facts
    p = len(spec.features)
    kept = ~np.isnan(coef)
    beta = coef[kept]
    intercept = spec.fit_intercept
    inverse_n = 1.0 / state.weight_sum if intercept else None
    out = PlotData(grid, n_params)
    first = offsets[index] if offsets is not None else index * PARTITION_STRIDE
    seen = 0
    for chunk in source.batches(spec.columns, batch_size):
        arrays = batch_arrays(chunk, spec)
        x, resid = centered_residuals(arrays.z, state, kept, beta, p, intercept)
        if not np.isfinite(resid).all():
            arrays = screen_values(arrays, chunk, spec)
            x, resid = centered_residuals(arrays.z, state, kept, beta, p, intercept)
        y = arrays.z[:, p]
        fitted = y - resid
        r = whiten(resid, arrays.weights)
        h = leverage(x, xtx_inv, inverse_n, arrays.weights)
        t = studentized(r, h, scale)
        finite = np.isfinite(t)
        rows = (
            first + seen + (np.arange(len(resid)) if arrays.positions is None else arrays.positions)
        )
        out.residuals.update(fitted, r)
        out.scale_location.update(fitted[finite], np.sqrt(np.abs(t[finite])))
        out.leverage.update(h[finite], t[finite])
        out.sketch.update(t[finite])
        out.influential.update(rows[finite], h[finite], t[finite], fitted[finite])
        out.n_rows += len(resid)
        seen += arrays.rows_read
        if on_rows is not None:
            on_rows(arrays.rows_read)
    return out


plot_part.task_name = "plot accumulators"


def plot_pass(
    model,
    data,
    y=None,
    *,
    weight=None,
    batch_size: int | None = None,
    client=None,
    progress: bool | None = False,
    bins: int = 200,
    top: int = 10,
) -> PlotData:
    """The accumulators of :class:`PlotData` over ``data`` (Parquet paths, a DataFrame, a
    Table, arrays ``X, y``, or a Dask collection) at the model's coefficients."""
    features = [str(n) for n in model.feature_names_in_]
    weight = model.weight if weight is None and model.weight else weight
    names = dict(features=features, fit_intercept=model.fit_intercept, nulls="drop")
    if is_dask_collection(data) or is_dask_collection(y):
        blocks = collection_blocks(
            data,
            y,
            target=model.target,
            weight=weight,
            batch_size=lambda spec: resolve_batch_size(len(spec.columns), batch_size),
            **names,
        )
        runner, offsets = DaskRunner(client), None
    else:
        src, target, weight_name = to_source(data, y, target=model.target, weight=weight)
        spec = DesignSpec.resolve(src.schema, target=target, weight=weight_name, **names)
        size = resolve_batch_size(len(spec.columns), batch_size)
        if client is not None:
            blocks = Blocks.per_file(src, spec, size)
            runner = DaskRunner(client)
        else:
            blocks = Blocks.whole(src, spec, size)
            runner = LocalRunner(progress=progress)
        counts = [getattr(part, "total_rows", None) for part in blocks.parts]
        offsets = None if None in counts else [int(v) for v in np.cumsum([0, *counts[:-1]])]
    grid = PlotGrid.for_model(model, bins=bins, top=top)
    facts = (
        model.state_,
        np.asarray(model.coef_, dtype=float),
        np.asarray(model.solution_.xtx_inv, dtype=float),
        float(model.scale),
        int(model.solution_.rank),
    )
    return runner.map_reduce(blocks, plot_part, facts, grid, offsets, label="plot pass")
