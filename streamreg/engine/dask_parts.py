"""What a Dask worker opens, and how it is set up to read: the parts of the Dask runner's passes.

* :func:`plain_parquet_read`: a Dask DataFrame that is nothing but ``dd.read_parquet(path)``
  is fitted from its files (the workers read them, in row-group tasks), not through Dask's
  own decode of whole partitions and its conversion to pandas;
* :class:`FramePartitions` and :class:`ArrayBlockSource`: ``open_part`` for partitions of
  a Dask DataFrame and row blocks of Dask arrays, viewed in place
  (:mod:`streamreg.io.frames`) rather than copied into Arrow tables;
* :func:`tune_worker`: Arrow's decoding pool sized for the worker's share of its host.

>>> FramePartitions(convert=("firm",))  # doctest: +ELLIPSIS
<...FramePartitions object at ...>
"""

from __future__ import annotations

import os

import pyarrow as pa

from ..design import DesignSpec
from ..errors import InputError
from ..io.frames import ArraySource, FrameSource
from ..io.sources import InMemorySource, Source


def plain_parquet_read(frame, spec: DesignSpec) -> Source | None:
    """The files behind a Dask DataFrame that is nothing but ``dd.read_parquet(...)``, else None.

    Such a frame is fitted by the workers reading its files directly (the Parquet
    path, row-group tasks included), skipping Dask's decode of whole partitions and
    its Arrow → pandas conversion: that took 2.2-3.3× the Parquet path's time on
    10M × 20. Anything else — filters, a selection of partitions, an index,
    categories, Hive partition columns, files not on the local file system, any
    computation on top, files whose types read differently — keeps the general path.
    """
    try:
        from dask.dataframe.dask_expr.io.parquet import ReadParquet
        from pyarrow.fs import LocalFileSystem

        expr = frame.expr.optimize()
        if not isinstance(expr, ReadParquet):
            return None
        if (
            expr.operand("filters")
            or expr.operand("_partitions") is not None
            or expr.operand("index")
            or expr.operand("categories")
            or expr.operand("storage_options")
            or any(v for v in expr.operand("kwargs").values())
        ):
            return None
        dataset = expr._dataset_info["ds"]
        in_files = set(expr._dataset_info["physical_schema"].names)
        if not set(spec.columns) <= in_files or not isinstance(dataset.filesystem, LocalFileSystem):
            return None
        files = list(dataset.files)
    except Exception:  # noqa: BLE001 - any surprise in Dask's internals: take the general path
        return None
    try:
        src = Source.resolve(files)
        resolved = DesignSpec.resolve(
            src.schema,
            target=spec.target,
            features=list(spec.features),
            weight=spec.weight,
            fit_intercept=spec.fit_intercept,
            nulls=spec.nulls,
            groups=spec.groups,
        )
        src.check_columns(spec.columns)
    except InputError:
        return None  # the files read differently from the frame: keep the frame's view
    return src if resolved == spec else None


class FramePartitions:
    """``open_part`` for Dask DataFrame partitions: the pandas frame, viewed (no Arrow copy)."""

    def __init__(self, convert: tuple[str, ...] = ()):
        self.convert = convert

    def __call__(self, frame, index: int) -> FrameSource:
        return FrameSource(frame, name=f"dask partition {index}", convert=self.convert)


def frame_source(frame, index: int) -> InMemorySource:
    """``open_part`` for Dask DataFrame partitions of an encoded design (categories, formulas):
    the pandas frame converted to Arrow, so text and categorical columns keep their types."""
    return InMemorySource(
        pa.Table.from_pandas(frame, preserve_index=False), name=f"dask partition {index}"
    )


class ArrayBlockSource:
    """``open_part`` for row blocks of X, y (and weights): contiguous float64 columns."""

    def __init__(self, names: list[str]):
        self.names = names

    def __call__(self, blocks, index: int) -> ArraySource:
        if len({len(b) for b in blocks}) != 1:
            raise InputError(
                f"row block {index} of X, y (and weight) has blocks of different lengths."
            )
        return ArraySource(blocks[0], blocks[1:], self.names, name=f"dask block {index}")


def worker_threads_by_host(client) -> dict[str, int] | None:
    """Worker threads per host of ``client``'s cluster (None without a distributed client)."""
    if client is None:
        try:
            from distributed import default_client

            client = default_client()
        except (ImportError, ValueError):
            return None
    threads: dict[str, int] = {}
    for worker in client.scheduler_info(n_workers=-1)["workers"].values():
        threads[worker["host"]] = threads.get(worker["host"], 0) + int(worker["nthreads"])
    return threads


def tune_worker(hosts: dict[str, int] | None) -> None:
    """In a Dask worker: give Arrow's decoding pool this worker's share of the host's cores.

    Dask starts workers with ``OMP_NUM_THREADS=1`` (so that BLAS stays single-threaded
    beside the worker's own threads), and Arrow sizes its CPU pool from that variable
    too: every worker decoded with one thread, even a lone worker on an idle host (a
    one-worker fit took 2.35 s where it takes 2.07 s with the pool sized here). The
    share is the host's cores over the worker threads on that host, at least one.
    """
    if not hosts:
        return
    try:
        from distributed import get_worker

        worker = get_worker()
    except (ImportError, ValueError):
        return  # not in a distributed worker: this process's pool is its own business
    host = worker.address.rsplit("://", 1)[-1].rsplit(":", 1)[0]
    threads_here = hosts.get(host) or worker.state.nthreads
    if hasattr(os, "sched_getaffinity"):
        cores = len(os.sched_getaffinity(0))
    else:  # pragma: no cover - macOS, Windows
        cores = os.cpu_count() or 1
    wanted = max(1, cores // max(1, threads_here))
    if pa.cpu_count() != wanted:
        pa.set_cpu_count(wanted)
