"""In-memory blocks read without copying them into an Arrow table first.

A Dask DataFrame partition is a pandas frame and a block of Dask arrays is a
numpy array. Converting either into an Arrow table (``Table.from_pandas``,
``pa.table`` of column slices) copies every value once more before
:func:`~streamreg.design.batch_arrays` copies it into the float64 block ``z``;
for column slices of a row-major array that extra copy is also strided, one
pass over the whole block per column. Here the Arrow arrays handed to the
engine are *views* of float64 memory, so ``batch_arrays`` makes the one copy
(fused with the shift) that every fit makes:

* :class:`FrameSource`: NumPy-typed numeric columns of a pandas frame are viewed
  in place; other columns (nullable extension types, strings as cluster labels,
  the ``convert`` columns) are converted batch by batch.
* :class:`ArraySource`: the columns of ``X`` (rows × features), the target and
  the weights are viewed where they are contiguous (a column-major ``X``, as a
  pandas frame's ``.values`` gives); a row-major ``X`` is laid out column-major a
  batch at a time, in tiles of rows that fit in cache, so that copy reads ``X`` once.

NaN stays NaN in a view (Arrow would call it null after ``from_pandas``); the
engine drops and counts such rows all the same (``screen_values``), so every
path reports the same rows dropped.

>>> import numpy as np, pandas as pd
>>> frame = pd.DataFrame({"x": [1.0, 2.0, 3.0], "y": [2.0, 4.0, 6.5]})
>>> chunk = next(FrameSource(frame).batches(["x", "y"], 10))
>>> chunk.batch.column("x").buffers()[1].address == frame["x"].to_numpy().ctypes.data
True
>>> block = ArraySource(np.arange(6.0).reshape(3, 2), [np.array([1.0, 2.0, 3.0])], ["a", "b", "y"])
>>> next(block.batches(["a", "y"], 2)).batch.to_pydict()
{'a': [0.0, 2.0], 'y': [1.0, 2.0]}
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import pyarrow as pa

from ..errors import InputError
from .footers import ParquetFileInfo
from .sources import Chunk, InMemorySource, Source

# Bytes per tile of the column-major copy of X (in L2 cache): on 500k × 20 the tiled copy took
# 0.03 s, a plain assignment 0.11 s and the former Arrow table of column slices 0.17 s.
TILE_BYTES = 1 << 16


def _info(name: str, rows: int, size: int, schema: pa.Schema) -> ParquetFileInfo:
    return ParquetFileInfo(
        path=name, num_rows=rows, size_bytes=size, schema=schema, row_group_starts=()
    )


class FrameSource(InMemorySource):
    """A pandas frame read in batches, numeric NumPy columns viewed without a copy.

    ``convert`` names columns always converted through ``pa.Array.from_pandas``
    (NaN → null), e.g. cluster labels, which are never screened as numbers.
    """

    def __init__(self, frame, name: str = "the data", convert: Sequence[str] = ()):
        self.frame = frame
        self.convert = set(convert)
        schema = pa.Schema.from_pandas(frame.head(0), preserve_index=False)
        Source.__init__(self, [_info(name, len(frame), 0, schema)], {})

    @property
    def table(self) -> pa.Table:  # what InMemorySource users read; a copy, made only if asked
        return pa.Table.from_pandas(self.frame, preserve_index=False)

    def batches(self, columns: Sequence[str], batch_size: int) -> Iterator[Chunk]:
        self.check_columns(columns)
        labels = {str(label): label for label in self.frame.columns}  # the schema's names are str
        values = [self._values(c, self.frame[labels[c]]) for c in columns]
        n = len(self.frame)
        for start in range(0, n, batch_size):
            stop = min(n, start + batch_size)
            arrays = [
                v[start:stop]
                if isinstance(v, pa.Array)
                else pa.Array.from_pandas(v.iloc[start:stop])
                for v in values
            ]
            yield Chunk(
                pa.RecordBatch.from_arrays(arrays, names=list(columns)), self.files[0], start
            )

    def _values(self, name: str, series):
        dtype = series.dtype
        if name not in self.convert and isinstance(dtype, np.dtype) and dtype.kind in "fiu":
            return pa.array(series.to_numpy())  # zero-copy for float64 and integer blocks
        return series


class ArraySource(InMemorySource):
    """A row block of ``X`` and vectors (target, weights) as contiguous float64 columns.

    A column-major ``X`` is viewed as it is. A row-major one is laid out column-major batch
    by batch, into one tile buffer reused for every batch: a copy of the whole block (1.6 GB
    for 10M × 20 over a pass) was fresh memory, page faults and all, in Dask workers (which
    hand freed memory back to the OS). So a batch's columns are valid only until the next
    batch is asked for — every consumer copies them out first (``batch_arrays``).
    """

    def __init__(self, x, vectors: Sequence, names: Sequence[str], name: str = "the data"):
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2:
            raise InputError(f"X must be 2-D (rows, features); got {x.ndim} dimensions.")
        vectors = [np.asarray(v, dtype=np.float64).reshape(-1) for v in vectors]
        n, p = x.shape
        if any(len(v) != n for v in vectors):
            raise InputError(f"{name}: X, y (and weight) have different numbers of rows.")
        if len(names) != p + len(vectors):
            raise InputError(f"{name}: {len(names)} names for {p + len(vectors)} columns.")
        self.x = x
        self.vectors = [np.ascontiguousarray(v) for v in vectors]
        self.names = list(names)
        schema = pa.schema([(c, pa.float64()) for c in self.names])
        Source.__init__(self, [_info(name, n, 8 * n * len(self.names), schema)], {})

    @property
    def columns(self) -> list[np.ndarray]:
        """Every column, ``X``'s first (views of ``X``: strided for a row-major one)."""
        return [self.x[:, j] for j in range(self.x.shape[1])] + self.vectors

    @property
    def table(self) -> pa.Table:
        return pa.table({c: np.ascontiguousarray(v) for c, v in zip(self.names, self.columns)})

    def batches(self, columns: Sequence[str], batch_size: int) -> Iterator[Chunk]:
        self.check_columns(columns)
        n, p = self.x.shape
        index = {c: j for j, c in enumerate(self.names)}
        wanted = [index[c] for c in columns]
        from_x = [j for j in wanted if j < p]
        every_x = from_x == list(range(p))  # X's columns in order: no gather before the copy
        viewed = self.x.flags.f_contiguous or len(from_x) == 0
        tile = None if viewed else np.empty((min(batch_size, n), len(from_x)), order="F")
        for start in range(0, n, batch_size):
            stop = min(n, start + batch_size)
            if tile is not None:  # this batch's rows of the used columns of X, column-major
                rows = tile[: stop - start]
                block = self.x[start:stop]
                copy_columns_major(block if every_x else block[:, from_x], rows)
                in_tile = {j: rows[:, k] for k, j in enumerate(from_x)}
            arrays = []
            for j in wanted:
                if j >= p:
                    arrays.append(pa.array(self.vectors[j - p][start:stop]))
                elif tile is None:
                    arrays.append(pa.array(self.x[start:stop, j]))
                else:
                    arrays.append(pa.array(in_tile[j]))  # contiguous: viewed, no copy
            yield Chunk(
                pa.RecordBatch.from_arrays(arrays, names=list(columns)), self.files[0], start
            )


def copy_columns_major(x: np.ndarray, out: np.ndarray) -> None:
    """``out[:] = x`` for a column-major ``out``, in tiles of rows that stay in cache.

    A row-major ``x`` copied column by column reads all of ``x`` once per column;
    tile by tile, each tile is read once and written while it is in cache.
    """
    if x.flags.f_contiguous or x.shape[1] <= 1:
        out[...] = x
        return
    rows = max(64, TILE_BYTES // (8 * max(x.shape[1], 1)))
    for start in range(0, x.shape[0], rows):
        out[start : start + rows] = x[start : start + rows]
