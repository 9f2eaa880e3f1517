"""Parquet files cut into cluster tasks of about the same size, from their footers alone.

One task per file leaves workers idle when a data set is a few big files (one
5 GB file was one task, read by one worker) and spends more on scheduling than
on reading when it is thousands of small ones. Here each task holds about
:data:`TASK_BYTES` of decoded float64 (rows × used columns × 8 bytes):

* a file larger than that is split into runs of consecutive row groups — a
  Parquet reader can start at any row group, and record batches never span row
  groups, so each run is read exactly as the same rows of a whole-file scan;
* consecutive small files are grouped into one task, read one after the other.

The cut depends only on the footers and the number of used columns, never on
the cluster (its size, which worker is free), so the list of tasks — and the
fixed merge tree over it (:mod:`streamreg.engine.merge`) — is the same on every
run: the result has the same bits on 1 worker or 16, and after a worker died.

>>> import pyarrow as pa
>>> from streamreg.io.footers import ParquetFileInfo
>>> big = ParquetFileInfo("big.parquet", 1000, 0, pa.schema([("x", pa.float64())]),
...                       row_group_starts=tuple(range(0, 1000, 100)))
>>> [list(p.row_groups) for p in row_group_pieces(big, n_columns=2, task_bytes=8 * 2 * 300)]
[[0, 1, 2], [3, 4, 5], [6, 7, 8], [9]]
"""

from __future__ import annotations

from dataclasses import replace

from ..design import DesignSpec
from ..io.footers import ParquetFileInfo
from ..io.sources import InMemorySource, Source
from .blocks import Blocks, open_source

# Decoded float64 bytes per task. At 21 columns that is ~800k rows, a few tenths of a second
# of one core: long enough that scheduling (~2-5 ms a task) is noise, short enough that a
# 1.7 GB data set makes a dozen tasks or more to spread over the workers.
TASK_BYTES = 128 << 20


def decoded_bytes(rows: int, n_columns: int) -> int:
    return int(rows) * 8 * max(int(n_columns), 1)


def row_group_pieces(
    info: ParquetFileInfo, n_columns: int, task_bytes: int | None = None
) -> list[ParquetFileInfo]:
    """``info`` cut into runs of consecutive row groups of at most ``task_bytes`` decoded
    (default :data:`TASK_BYTES`; a single row group larger than that is a run of its own);
    a file within ``task_bytes``, or of one row group, stays whole."""
    task_bytes = TASK_BYTES if task_bytes is None else task_bytes
    groups = info.row_groups
    if len(groups) <= 1 or task_bytes <= 0:
        return [info]
    if decoded_bytes(info.rows_in_scan, n_columns) <= task_bytes:
        return [info]
    ends = (*info.row_group_starts[1:], info.num_rows)
    pieces, first, size = [], groups.start, 0
    for g in groups:
        rows = ends[g] - info.row_group_starts[g]
        if g > first and size + decoded_bytes(rows, n_columns) > task_bytes:
            pieces.append(replace(info, first_row_group=first, stop_row_group=g))
            first, size = g, 0
        size += decoded_bytes(rows, n_columns)
    pieces.append(replace(info, first_row_group=first, stop_row_group=groups.stop))
    return pieces


def parquet_tasks(src: Source, n_columns: int, task_bytes: int | None = None) -> list[Source]:
    """The tasks of a pass over ``src``: pieces of big files and groups of small ones, in the
    order of the files (each a :class:`~streamreg.io.sources.Source`); ``task_bytes``
    defaults to :data:`TASK_BYTES`."""
    task_bytes = TASK_BYTES if task_bytes is None else task_bytes
    tasks: list[list[ParquetFileInfo]] = []
    group: list[ParquetFileInfo] = []
    group_bytes = 0
    for info in src.files:
        pieces = row_group_pieces(info, n_columns, task_bytes)
        size = decoded_bytes(info.rows_in_scan, n_columns)
        if len(pieces) == 1 and task_bytes > 0 and group_bytes + size <= task_bytes:
            group.append(info)  # a small file joins the files before it
            group_bytes += size
            continue
        if group:
            tasks.append(group)
        if len(pieces) == 1 and task_bytes > 0 and size < task_bytes:
            group, group_bytes = [info], size  # starts the next group
            continue
        tasks.extend([piece] for piece in pieces)
        group, group_bytes = [], 0
    if group:
        tasks.append(group)
    return [Source(infos, src.partition_types) for infos in tasks]


def task_blocks(
    src: Source, spec: DesignSpec, batch_size: int, task_bytes: int | None = None
) -> Blocks:
    """Blocks for a cluster: the tasks of :func:`parquet_tasks` (in-memory data: slices)."""
    if isinstance(src, InMemorySource):
        return Blocks.slices(src, spec, batch_size)
    parts = parquet_tasks(src, len(spec.columns), task_bytes)
    return Blocks(parts, open_source, spec, batch_size, src.total_rows, src.total_bytes)
