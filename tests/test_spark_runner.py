"""The Spark runner's driver side without Spark: regrouped batches, the merge by partition index,
and partitions Spark skipped. Oracles: the same rows accumulated in one pass (exact sums: equal
states), and the fixed merge tree itself."""

from __future__ import annotations

import pickle

import numpy as np
import pyarrow as pa
import pytest

from streamreg.design import DesignSpec
from streamreg.engine.merge import tree_reduce
from streamreg.engine.scan import accumulate, accumulate_part
from streamreg.engine.spark_runner import BatchStream, SparkPartitions, SparkRunner
from streamreg.errors import InputError
from streamreg.io.sources import InMemorySource
from streamreg.solvers.exact.state import ExactState

SCHEMA = pa.schema([("x", pa.float64()), ("y", pa.float64())])
SPEC = DesignSpec.resolve(SCHEMA, target="y")


def spark_batches(rows: np.ndarray, size: int) -> list[pa.RecordBatch]:
    """What Spark hands a partition: batches of ``size`` rows under positional names."""
    return [
        pa.record_batch(
            [pa.array(rows[s : s + size, 0]), pa.array(rows[s : s + size, 1])], names=["_c0", "_c1"]
        )
        for s in range(0, len(rows), size)
    ]


@pytest.mark.parametrize("spark_size, batch_size", [(7, 20), (10, 10), (50, 3), (1, 1)])
def test_batch_stream_regroups_and_renames(spark_size, batch_size):
    rows = np.random.default_rng(1).normal(size=(103, 2))
    stream = BatchStream(
        iter(spark_batches(rows, spark_size)), SCHEMA, "spark partition 4", batch_size
    )
    chunks = list(stream.batches(["x", "y"], batch_size))
    assert all(c.batch.num_rows >= batch_size for c in chunks[:-1])
    assert all(c.batch.num_rows < batch_size + spark_size for c in chunks)
    assert [c.offset for c in chunks] == list(np.cumsum([0] + [c.batch.num_rows for c in chunks]))[
        :-1
    ]
    joined = pa.Table.from_batches([c.batch for c in chunks])
    assert joined.column_names == ["x", "y"]
    assert np.array_equal(np.column_stack([joined["x"], joined["y"]]), rows)
    one_pass = accumulate(
        InMemorySource(pa.table({"x": rows[:, 0], "y": rows[:, 1]})),
        SPEC,
        ExactState,
        batch_size=1000,
    )
    again = BatchStream(iter(spark_batches(rows, spark_size)), SCHEMA, "p", batch_size)
    assert accumulate(again, SPEC, ExactState, batch_size=batch_size).state == one_pass.state


class FakeFrame:
    """Stands for a Spark DataFrame whose ``mapInArrow`` ran on some partitions only."""

    def __init__(self, results: dict, partitions: int):
        self.results, self.partitions = results, partitions
        self.rdd = self

    def getNumPartitions(self) -> int:  # noqa: N802 - Spark's name
        return self.partitions

    def mapInArrow(self, function, schema):  # noqa: N802 - Spark's name
        return self

    def collect(self):
        return [
            {"partition": i, "result": bytearray(pickle.dumps(r))} for i, r in self.results.items()
        ]


def test_results_are_merged_by_partition_index_and_skipped_partitions_are_empty():
    rng = np.random.default_rng(2)
    parts = {i: rng.normal(size=(10 + i, 2)) for i in (3, 1, 4)}  # arrives in any order
    opener = SparkPartitions(SCHEMA, batch_size=8)
    results = {
        i: accumulate_part(opener(iter(spark_batches(r, 4)), i), i, SPEC, 8, ExactState)
        for i, r in parts.items()
    }
    runner = SparkRunner(FakeFrame(results, partitions=6), SCHEMA)
    blocks = runner.blocks(SPEC, 8)
    assert blocks.parts == [0, 1, 2, 3, 4, 5]
    seen = []

    def combine(a, b):
        seen.append((sorted(a.rows_by_file), sorted(b.rows_by_file)))
        return a + b

    merged = runner.map_reduce(blocks, accumulate_part, ExactState, combine=combine)
    names = [f"spark partition {i}" for i in range(6)]
    assert list(merged.rows_by_file) == names
    assert merged.rows_by_file == {n: len(parts.get(i, ())) for i, n in enumerate(names)}
    # The fixed tree over partitions 0..5: ((0 1)(2 3))(4 5).
    expected = []
    tree_reduce([[n] for n in names], lambda a, b: expected.append((a, b)) or a + b)
    assert seen == expected
    everything = np.vstack([parts[i] for i in (1, 3, 4)])
    one_pass = accumulate(
        InMemorySource(pa.table({"x": everything[:, 0], "y": everything[:, 1]})),
        SPEC,
        ExactState,
        batch_size=100,
    )
    assert merged.state == one_pass.state and merged.rows_read == len(everything)


def test_gradient_solvers_are_refused_with_one_sentence():
    runner = SparkRunner(FakeFrame({}, partitions=1), SCHEMA)
    with pytest.raises(InputError, match="gradient solvers"):
        runner.fold(runner.blocks(SPEC, 8), [0], None, None)
