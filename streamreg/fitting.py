"""The fit: source → design → per-batch states → merged state → solved model.

This is the one engine behind ``streamreg fit`` and :func:`streamreg.fit`.
It reads each used column once, in batches, so memory is bounded by the batch
size times the number of columns, never by the number of rows.

>>> import tempfile, pathlib, numpy as np, pyarrow as pa, pyarrow.parquet as pq
>>> path = pathlib.Path(tempfile.mkdtemp()) / "study.parquet"
>>> hours = np.arange(1.0, 11.0)
>>> pq.write_table(pa.table({"hours": hours, "score": 0.5 * hours + 8}), path)
>>> model = fit(path, target="score")
>>> round(float(model.coef_[0]), 10), round(model.intercept_, 10)
(0.5, 8.0)
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from .design import DesignSpec, batch_arrays, screen_values
from .errors import DataError, InputError
from .model import LinearModel
from .sources import Source
from .state import MomentState

SOLVERS = ("auto", "cholesky")
# Default batch: about 16 MiB of float64 per batch, at most 128 Ki rows.
_BATCH_BYTES = 1 << 24
_MAX_BATCH_ROWS = 1 << 17


@dataclass
class Accumulation:
    """A merged state and what was read to build it."""

    state: MomentState
    spec: DesignSpec
    rows_read: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    rows_by_file: dict[str, int] = field(default_factory=dict)

    @property
    def inputs(self) -> list[dict]:
        return [{"path": path, "rows": rows} for path, rows in self.rows_by_file.items()]


def default_batch_size(n_columns: int) -> int:
    return int(max(1024, min(_MAX_BATCH_ROWS, _BATCH_BYTES // (8 * max(n_columns, 1)))))


def resolve_spec(source: Source, *, target, features=None, exclude=None, weight=None,
                 fit_intercept=True, nulls="drop") -> DesignSpec:
    spec = DesignSpec.resolve(source.schema, target=target, features=features, exclude=exclude,
                              weight=weight, fit_intercept=fit_intercept, nulls=nulls)
    source.check_columns(spec.columns)
    return spec


def accumulate(source: Source, spec: DesignSpec, *, batch_size: int | None = None,
               on_rows: Callable[[int], None] | None = None) -> Accumulation:
    """One streaming pass: fold every batch of ``source`` into a moment state."""
    if batch_size is None:
        batch_size = default_batch_size(len(spec.columns))
    if batch_size < 1:
        raise InputError(f"batch size must be a positive number of rows; got {batch_size}.")
    acc = Accumulation(MomentState.empty(spec.state_names), spec,
                       rows_by_file={f.path: 0 for f in source.files})
    names = spec.state_names
    for chunk in source.batches(spec.columns, batch_size):
        arrays = batch_arrays(chunk, spec)
        part = MomentState.from_arrays(arrays.z, arrays.weights, names=names, overwrite=True)
        if not part.is_finite():
            arrays = screen_values(arrays, chunk, spec)
            part = MomentState.from_arrays(arrays.z, arrays.weights, names=names, overwrite=True)
            if not part.is_finite():
                raise DataError(f"the sums over {chunk.file.path} overflow float64; rescale the columns.")
        acc.state._absorb(part)
        acc.rows_read += arrays.rows_read
        acc.rows_by_file[chunk.file.path] += arrays.rows_read
        for name, count in arrays.dropped.items():
            acc.dropped[name] = acc.dropped.get(name, 0) + count
        if on_rows is not None:
            on_rows(arrays.rows_read)
    return acc


def fit(source: str | os.PathLike | Sequence[str | os.PathLike], *, target: str,
        features: Sequence[str] | str | None = None, exclude: Sequence[str] | str | None = None,
        weight: str | None = None, fit_intercept: bool = True, nulls: str = "drop",
        batch_size: int | None = None, solver: str = "auto", drop_collinear: bool = False,
        progress: bool | None = False) -> LinearModel:
    """Fit ordinary (or weighted) least squares over Parquet data in one streaming pass.

    ``source`` is a file, a directory (read recursively; ``key=value`` folders
    become columns), a glob, or a list of them. ``features`` defaults to every
    numeric column except the target, the weight and ``exclude``. Rows with a
    null or NaN in a used column are dropped and counted (``nulls="error"``
    refuses them). ``progress=None`` shows progress only on a terminal.
    """
    if solver not in SOLVERS:
        raise InputError(f"solver must be one of {', '.join(SOLVERS)}; got {solver!r}.")
    src = Source.resolve(source)
    spec = resolve_spec(src, target=target, features=features, exclude=exclude, weight=weight,
                        fit_intercept=fit_intercept, nulls=nulls)
    from .progress import Progress

    bar = Progress(src.total_rows, src.total_bytes, label="fit", enabled=progress)
    try:
        acc = accumulate(src, spec, batch_size=batch_size, on_rows=bar.advance)
    finally:
        bar.close()
    return LinearModel.from_state(acc.state, fit_intercept=spec.fit_intercept, weight=spec.weight,
                                  drop_collinear=drop_collinear, rows_read=acc.rows_read,
                                  rows_dropped_by_column=acc.dropped, inputs=acc.inputs)
