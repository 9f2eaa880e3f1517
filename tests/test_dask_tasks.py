"""Cluster tasks and inputs without copies: every path gives the local fit's answer.

Oracles: ``streamreg.fit`` of the same rows in this process (bit-identical with the exact
solver, whose sums do not depend on how rows are split or ordered; ≤ 1e-12 relative
otherwise), the footers (every row group read exactly once, in order) and properties of
the cut (deterministic, bounded by the task size).
"""

from __future__ import annotations

import os
import urllib.request

import dask
import dask.array as da
import dask.dataframe as dd
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from conftest import write_parquet

import streamreg
from streamreg.design import DesignSpec
from streamreg.engine import dask_runner, tasks
from streamreg.io.footers import ParquetFileInfo
from streamreg.io.frames import ArraySource, FrameSource, copy_columns_major
from streamreg.io.sources import Source

RELATIVE = 1e-12


@pytest.fixture(scope="module")
def table():
    """6,000 rows: features with offsets, one NaN and one null, integer labels for clusters."""
    rng = np.random.default_rng(20261130)
    n = 6000
    x = rng.normal(size=(n, 3)) * [1.0, 2.0, 0.1] + [0.0, 1e4, -3.0]
    y = 1.0 + (x - [0.0, 1e4, -3.0]) @ [2.0, -0.5, 10.0] + rng.normal(size=n) * (1 + abs(x[:, 0]))
    c = x[:, 2].copy()
    c[4321] = np.nan
    return {
        "a": x[:, 0],
        "b": x[:, 1],
        "c": c,
        "y": y,
        "g": rng.integers(0, 30, n),
        "w": rng.uniform(0.5, 2.0, n),
    }


@pytest.fixture(scope="module")
def big_file(table, tmp_path_factory):
    """One file of 12 row groups of 500 rows."""
    path = tmp_path_factory.mktemp("big") / "one.parquet"
    return write_parquet(path, table, row_group_size=500)


def _relative(a, b) -> float:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-300)))


def assert_same_fit(got, want, solver: str) -> None:
    """Bit-identical with the exact solver (its robust covariance sums floats: ≤ 1e-12)."""
    assert got.cov_type == want.cov_type
    if solver == "exact":
        assert got.state_ == want.state_
        assert np.array_equal(got.params, want.params)
        if got.cov_type == "nonrobust":
            assert np.array_equal(got.bse, want.bse)
    else:
        assert _relative(got.params, want.params) <= RELATIVE
    assert _relative(got.bse, want.bse) <= RELATIVE
    assert got.n_samples_ == want.n_samples_
    assert got.rows_read_ == want.rows_read_
    assert got.rows_dropped_by_column_ == want.rows_dropped_by_column_


# ---------------------------------------------------------------------- the cut
def _info(rows_per_group: list[int]) -> ParquetFileInfo:
    starts = tuple(int(s) for s in np.cumsum([0, *rows_per_group[:-1]]))
    return ParquetFileInfo(
        path="f.parquet",
        num_rows=sum(rows_per_group),
        size_bytes=0,
        schema=pa.schema([("x", pa.float64())]),
        row_group_starts=starts,
    )


@pytest.mark.parametrize("groups", [[100] * 20, [7] * 3 + [100] * 9, [1000], [50] * 5, [300, 5, 5]])
@pytest.mark.parametrize("task_bytes", [0, 1, 8 * 2 * 100, 8 * 2 * 350, 1 << 30])
def test_row_group_pieces_read_every_row_group_once_in_order(groups, task_bytes):
    info = _info(groups)
    pieces = tasks.row_group_pieces(info, 2, task_bytes)
    assert [g for piece in pieces for g in piece.row_groups] == list(range(len(groups)))
    assert sum(p.rows_in_scan for p in pieces) == info.num_rows
    assert sum(Source([p], {}).total_rows for p in pieces) == info.num_rows
    for piece in pieces if task_bytes > 0 else ():  # task_bytes 0: whole files, no cut
        if len(piece.row_groups) > 1:  # a run of several row groups stays within the size
            assert tasks.decoded_bytes(piece.rows_in_scan, 2) <= task_bytes
    if task_bytes <= 0 or tasks.decoded_bytes(info.num_rows, 2) <= task_bytes:
        assert pieces == [info]
    assert tasks.row_group_pieces(info, 2, task_bytes) == pieces  # from the footer alone


def test_parquet_tasks_group_small_files_and_split_big_ones(tmp_path):
    rng = np.random.default_rng(1)
    sizes = [(50, 50), (50, 50), (2000, 100), (50, 50), (30, 30), (400, 400)]  # (rows, group)
    for i, (rows, group) in enumerate(sizes):
        x = rng.normal(size=rows)
        write_parquet(tmp_path / f"f{i}.parquet", {"x": x, "y": x + 1}, row_group_size=group)
    src = Source.resolve(tmp_path)
    cut = tasks.parquet_tasks(src, 2, task_bytes=8 * 2 * 400)
    layout = [[(os.path.basename(f.path), list(f.row_groups)) for f in t.files] for t in cut]
    assert layout == [
        [("f0.parquet", [0]), ("f1.parquet", [0])],  # small files together
        *[[("f2.parquet", [4 * k, 4 * k + 1, 4 * k + 2, 4 * k + 3])] for k in range(5)],
        [("f3.parquet", [0]), ("f4.parquet", [0])],
        [("f5.parquet", [0])],  # exactly the task size: alone
    ]
    assert [t.files for t in tasks.parquet_tasks(src, 2, task_bytes=0)] == [[f] for f in src.files]


# ---------------------------------------------------------------------- on a cluster
@pytest.mark.parametrize("solver", ["exact", "cholesky", "qr"])
def test_row_group_tasks_on_a_cluster_equal_the_local_fit(client, big_file, monkeypatch, solver):
    src = Source.resolve(big_file)
    spec = DesignSpec.resolve(src.schema, target="y", features=["a", "b", "c"])
    monkeypatch.setattr(tasks, "TASK_BYTES", 3 * 500 * 8 * len(spec.columns))
    assert len(tasks.task_blocks(src, spec, 256)) == 4  # 12 row groups, 3 per task
    options = dict(target="y", features=["a", "b", "c"], solver=solver, cov_type="HC1")
    local = streamreg.fit(big_file, **options)
    split = streamreg.fit(big_file, client=client, **options)
    assert_same_fit(split, local, solver)
    assert split.rows_dropped_by_column_ == {"c": 1}
    assert split.inputs_ == local.inputs_ == [{"path": str(big_file), "rows": 6000}]


def test_workers_decode_with_their_share_of_the_cores(client, big_file):
    streamreg.fit(big_file, target="y", client=client)
    cores = client.run(lambda: len(os.sched_getaffinity(0)))
    threads = client.run(pa.cpu_count)
    hosts = dask_runner.worker_threads_by_host(client)
    assert sum(hosts.values()) == 2
    for worker, count in threads.items():
        assert count == max(1, cores[worker] // 2)


def test_plain_read_parquet_frame_is_read_as_files(client, big_file, monkeypatch):
    monkeypatch.setattr(tasks, "TASK_BYTES", 4 * 500 * 8 * 4)
    frame = dd.read_parquet(str(big_file.parent))
    spec = DesignSpec.resolve(
        pa.Schema.from_pandas(frame._meta, preserve_index=False), target="y", features="a,b,c"
    )
    assert isinstance(dask_runner.plain_parquet_read(frame, spec), Source)
    assert dask_runner.plain_parquet_read(frame[frame.a > 0], spec) is None
    assert dask_runner.plain_parquet_read(frame.assign(a=frame.a * 2), spec) is None
    filtered = dd.read_parquet(str(big_file.parent), filters=[("a", ">", 0)])
    assert dask_runner.plain_parquet_read(filtered, spec) is None
    local = streamreg.fit(big_file, target="y", features="a,b,c", solver="exact")
    with dask.config.set(scheduler=client.get):
        model = streamreg.fit(frame, target="y", features="a,b,c", solver="exact", client=client)
    assert_same_fit(model, local, "exact")


@pytest.mark.parametrize("solver", ["exact", "cholesky"])
def test_frame_partitions_with_nan_and_cluster_labels_equal_pandas(client, table, solver):
    frame = pd.DataFrame(table)
    frame.loc[17, "g"] = np.nan  # a float label column with a missing label
    options = dict(target="y", features=["a", "b", "c"], solver=solver, cov_type="cluster:g")
    local = streamreg.fit(frame, **options)
    assert local.rows_dropped_by_column_ == {"c": 1, "g": 1}
    parts = dd.from_pandas(frame, npartitions=5).map_partitions(lambda part: part)
    with dask.config.set(scheduler=client.get):
        model = streamreg.fit(parts, **options)
    assert_same_fit(model, local, solver)
    assert model.robust_["n_groups"] == local.robust_["n_groups"] == 30


@pytest.mark.parametrize("solver", ["exact", "qr"])
def test_dask_arrays_equal_numpy(table, solver):
    x = np.column_stack([table["a"], table["b"], table["c"]])
    local = streamreg.fit(x, table["y"], weight=table["w"], solver=solver)
    assert local.rows_dropped_by_column_ == {"x2": 1}
    for chunks in ((1000, 3), (2500, 3), (6000, 3)):
        model = streamreg.fit(
            da.from_array(x, chunks=chunks),
            da.from_array(table["y"], chunks=chunks[0]),
            weight=da.from_array(table["w"], chunks=chunks[0]),
            solver=solver,
        )
        assert_same_fit(model, local, solver)


def test_cluster_client_serves_no_dashboard_on_8787():
    # A cluster started earlier in this process with a dashboard but without bokeh leaves a
    # placeholder page in distributed's route list (it appends to the config's own list).
    routes = dask.config.get("distributed.scheduler.http.routes")
    clean = [r for r in routes if not r.endswith("missing_bokeh")]
    with (
        dask.config.set({"distributed.scheduler.http.routes": clean}),
        dask_runner.cluster_client(workers=1) as c,
    ):
        server = c.cluster.scheduler.http_server
        bound = {sock.getsockname()[:2] for sock in server._sockets.values()}
        assert {address for address, _ in bound} == {"127.0.0.1"}
        (port,) = {port for _, port in bound}
        assert port != 8787  # a free port (the OS picks them from the ephemeral range)
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/status", timeout=10)
        assert missing.value.code == 404  # the Bokeh dashboard is not there
        # Without a dashboard, no statistical profiler sampling the task threads either.
        assert set(c.run(dask.config.get, "distributed.worker.profile.enabled").values()) == {False}
        x = np.arange(12.0).reshape(6, 2) ** [1, 2]
        assert streamreg.fit(x, x @ [1.0, 2.0], client=c).n_samples_ == 6


# ---------------------------------------------------------------------- sources without copies
def test_frame_source_views_the_frame_without_copying():
    frame = pd.DataFrame(np.arange(12.0).reshape(6, 2), columns=["x", "y"])
    frame["i"] = np.arange(6)
    (chunk,) = list(FrameSource(frame, name="dask partition 0").batches(["x", "i", "y"], 100))
    assert chunk.batch.column("x").buffers()[1].address == frame["x"].to_numpy().ctypes.data
    assert chunk.batch.column("i").buffers()[1].address == frame["i"].to_numpy().ctypes.data
    assert chunk.batch.to_pydict() == {c: frame[c].tolist() for c in ("x", "i", "y")}


def test_frame_source_with_integer_column_labels_and_nullable_columns():
    frame = pd.DataFrame(
        {
            0: [1.0, 2.0, 3.0, 4.0, 5.0],
            1: pd.array([2.0, None, 6.1, 8.0, 9.5], "Float64"),
            "y": [1.0, 2.0, 2.9, 4.2, 5.1],
        }
    )
    local = streamreg.fit(frame, target="y", solver="exact")
    parts = dd.from_pandas(frame, npartitions=2)
    model = streamreg.fit(parts.map_partitions(lambda part: part), target="y", solver="exact")
    assert_same_fit(model, local, "exact")
    assert model.rows_dropped_by_column_ == {"1": 1}


@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("wanted", [["x3", "y"], [f"x{j}" for j in range(7)] + ["y"]])
def test_array_source_views_or_copies_one_batch_at_a_time(order, wanted):
    """A column-major X is viewed; a row-major one is copied column-major a batch at a time
    into one reused tile (no fresh block-sized memory), each batch right when it is read."""
    rng = np.random.default_rng(3)
    x = np.asarray(rng.normal(size=(5003, 7)), order=order)
    out = np.empty((5003, 7), order="F")
    copy_columns_major(x, out)
    assert np.array_equal(out, x)
    y = x[:, 0] * 2
    src = ArraySource(x, [y], [f"x{j}" for j in range(7)] + ["y"])
    assert np.array_equal(np.column_stack(src.columns), np.column_stack([x, y]))
    index = {f"x{j}": j for j in range(7)}
    addresses, starts = [], []
    for chunk in src.batches(wanted, 2000):  # each batch checked before the next is read
        start, stop = chunk.offset, chunk.offset + chunk.batch.num_rows
        starts.append(start)
        for name in wanted:
            values = chunk.batch.column(name).to_numpy()
            want = y[start:stop] if name == "y" else x[start:stop, index[name]]
            assert np.array_equal(values, want)
        column = chunk.batch.column("x3")
        addresses.append(column.buffers()[1].address + 8 * column.offset)
    assert starts == [0, 2000, 4000]
    if order == "F":  # nothing copied: the batches view X
        assert addresses == [x[s:, 3].ctypes.data for s in starts]
    else:  # one tile for every batch
        assert len(set(addresses)) == 1
        assert all(a != x[s:, 3].ctypes.data for a, s in zip(addresses, starts))
