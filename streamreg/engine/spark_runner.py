r"""Spark as a runner: one task per Spark partition on the executors, merged on the driver.

:class:`SparkRunner` has the runner's ``map_reduce``: ``DataFrame.mapInArrow``
hands each partition's rows to Python, on an executor, as Arrow record batches;
they are regrouped into batches of the pass's batch size (:class:`BatchStream`)
and the task — the same module-level function a local or Dask pass runs, e.g.
:func:`~streamreg.engine.scan.accumulate_part` — folds them. Each Spark task returns
one row: its partition index and its result, pickled (exact for every float and
big integer; the driver unpickles only what its own executors computed, as Spark
itself does with Python functions). The driver sorts the results by partition
index and merges them in the fixed pairwise tree of :mod:`streamreg.engine.merge`,
so the same data in the same partitions gives the same bits, and a task Spark
re-ran after losing an executor gives what the lost one would have. The exact
solver's sums do not depend on order or partitioning at all: its fit is
bit-identical to a local fit of the same rows however Spark splits them.

Only the per-partition results (a state is ``(p+1)²`` numbers) reach the driver.
pyspark is imported only by the Spark front (:mod:`streamreg.spark`) and inside the
executors' function; this module needs nothing but what Spark hands it.

>>> import numpy as np, pyarrow as pa
>>> schema = pa.schema([("x", pa.float64()), ("y", pa.float64())])
>>> parts = [pa.record_batch([pa.array([float(i)] * 3), pa.array([2.0 * i] * 3)], ["_c0", "_c1"])
...          for i in range(4)]
>>> stream = BatchStream(iter(parts), schema, "spark partition 0", batch_size=5)
>>> [c.batch.num_rows for c in stream.batches(["x", "y"], 5)], stream.files[0].path
([6, 6], 'spark partition 0')
"""

from __future__ import annotations

import operator
import pickle
from collections.abc import Callable, Iterator, Sequence

import pyarrow as pa

from ..errors import InputError
from ..io.footers import ParquetFileInfo
from ..io.sources import Chunk, Source
from .blocks import Blocks
from .merge import tree_reduce

# The one row each Spark task returns.
RESULT_SCHEMA = pa.schema([("partition", pa.int64()), ("result", pa.binary())])
RESULT_DDL = "partition long, result binary"


def positional_name(i: int) -> str:
    """The name column ``i`` travels under to the executors (see :meth:`SparkRunner.select`)."""
    return f"_c{i}"


class BatchStream(Source):
    """A Spark partition's Arrow batches, read once, regrouped into batches of about
    ``batch_size`` rows and renamed from their positional names to ``schema``'s names.

    Spark sends ``spark.sql.execution.arrow.maxRecordsPerBatch`` rows at a time
    (10,000 by default); gathering them keeps the per-batch costs of a pass (a
    state, a merge) per ``batch_size`` rows, for one copy of the gathered columns.
    At most one gathered batch (plus one of Spark's) is held.
    """

    def __init__(
        self, batches: Iterator[pa.RecordBatch], schema: pa.Schema, name: str, batch_size: int
    ):
        self._stream = batches
        self._names = schema.names
        self._batch_size = batch_size
        info = ParquetFileInfo(
            path=name, num_rows=0, size_bytes=0, schema=schema, row_group_starts=()
        )
        super().__init__([info], {})

    def batches(self, columns: Sequence[str], batch_size: int) -> Iterator[Chunk]:
        self.check_columns(columns)
        pending: list[pa.RecordBatch] = []
        rows = offset = 0
        for batch in self._stream:
            if batch.num_rows == 0:
                continue
            pending.append(batch.rename_columns(self._names))
            rows += batch.num_rows
            if rows >= batch_size:
                yield Chunk(_gathered(pending, columns), self.files[0], offset)
                offset += rows
                pending, rows = [], 0
        if pending:
            yield Chunk(_gathered(pending, columns), self.files[0], offset)


def _gathered(batches: list[pa.RecordBatch], columns: Sequence[str]) -> pa.RecordBatch:
    batch = batches[0] if len(batches) == 1 else pa.concat_batches(batches)
    return batch.select(list(columns))


class SparkPartitions:
    """``open_part`` for Spark partitions: (the partition's Arrow batches, index) → a source."""

    def __init__(self, schema: pa.Schema, batch_size: int):
        self.schema, self.batch_size = schema, batch_size

    def __call__(self, batches: Iterator[pa.RecordBatch], index: int) -> Source:
        return BatchStream(batches, self.schema, f"spark partition {index}", self.batch_size)


class SparkRunner:
    """Runs a pass's tasks on the executors of ``frame``'s Spark session.

    ``frame`` holds the used columns under positional names (:meth:`select`), in the
    order of ``schema`` (their Arrow types under their real names)."""

    def __init__(self, frame, schema: pa.Schema):
        self.frame = frame
        self.schema = schema

    @staticmethod
    def select(spark_df, columns: Sequence[str]):
        """``spark_df``'s ``columns`` renamed ``_c0, _c1, …``: Spark reads a name such as
        ``a.b`` as a field of a struct column ``a`` (in ``mapInArrow`` even behind
        backticks), so the executors get plain names and rename them back."""
        from pyspark.sql import functions as F

        return spark_df.select(
            *[
                F.col("`" + c.replace("`", "``") + "`").alias(positional_name(i))
                for i, c in enumerate(columns)
            ]
        )

    def blocks(self, spec, batch_size: int) -> Blocks:
        """One block per Spark partition (its index); the executors open them."""
        count = self.frame.rdd.getNumPartitions()
        opener = SparkPartitions(self.schema, batch_size)
        return Blocks(list(range(max(count, 1))), opener, spec, batch_size)

    def map_reduce(
        self,
        blocks: Blocks,
        task: Callable,
        *args,
        label: str = "reading",
        combine: Callable = operator.add,
    ):
        """``task(source, i, spec, batch_size, *args)`` per Spark partition on the executors,
        merged on the driver in the fixed tree ordered by partition index."""
        spec, batch_size, opener = blocks.spec, blocks.batch_size, blocks.open_part

        def per_partition(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
            from pyspark import TaskContext

            index = TaskContext.get().partitionId()
            result = task(opener(batches, index), index, spec, batch_size, *args)
            yield pa.RecordBatch.from_pydict(
                {"partition": [index], "result": [pickle.dumps(result)]}, schema=RESULT_SCHEMA
            )

        rows = self.frame.mapInArrow(per_partition, RESULT_DDL).collect()
        found = {int(row["partition"]): bytes(row["result"]) for row in rows}
        results = []
        for index in blocks.parts:
            if index in found:
                results.append(pickle.loads(found[index]))
            else:  # Spark skipped an empty partition: its result is the task's on no rows
                results.append(task(opener(iter(()), index), index, spec, batch_size, *args))
        return tree_reduce(results, combine)

    def fold(self, blocks: Blocks, order, step: Callable, carry, *args, label: str = "steps"):
        raise InputError(
            "the Spark engine runs the closed-form solvers (auto, cholesky, qr, exact); "
            "the gradient solvers' ordered steps are not run on Spark."
        )


def arrow_schema(spark_df) -> pa.Schema:
    """The Arrow schema of ``spark_df``; a column Arrow cannot hold becomes a null column
    (which no model can use, so naming it gives the usual clear schema error)."""
    from pyspark.sql.pandas.types import to_arrow_schema
    from pyspark.sql.types import StructType

    fields = []
    for field in spark_df.schema.fields:
        try:
            fields.append(to_arrow_schema(StructType([field])).field(0))
        except Exception:  # noqa: BLE001 - pyspark raises several kinds for unsupported types
            fields.append(pa.field(field.name, pa.null()))
    return pa.schema(fields)
