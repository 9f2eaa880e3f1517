"""Dask collections and distributed clusters give the single-process answer."""

from __future__ import annotations

import dask
import dask.array as da
import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest
from conftest import write_parquet

import streamreg


@pytest.fixture
def frame(rng):
    n = 3000
    df = pd.DataFrame(
        {
            "a": rng.normal(size=n),
            "b": rng.uniform(0, 1e3, size=n) + 1e6,
            "w": rng.uniform(0.5, 2.0, size=n),
            "g": rng.integers(0, 40, size=n),
        }
    )
    df["y"] = 2 + 3 * df["a"] - 0.01 * df["b"] + rng.normal(size=n)
    return df


def test_dask_dataframe_equals_pandas(frame):
    local = streamreg.fit(frame, target="y", features=["a", "b"], weight="w")
    for npartitions in (1, 4, 7):
        ddf = dd.from_pandas(frame, npartitions=npartitions)
        model = streamreg.fit(ddf, target="y", features=["a", "b"], weight="w")
        np.testing.assert_allclose(model.params, local.params, rtol=1e-12)
        assert model.n_samples_ == len(frame)


def test_dask_dataframe_on_a_cluster_equals_pandas(client, frame):
    local = streamreg.fit(frame, target="y", features=["a", "b"], cov_type="cluster:g")
    ddf = dd.from_pandas(frame, npartitions=6)
    with dask.config.set(scheduler=client.get):
        model = streamreg.fit(ddf, target="y", features=["a", "b"], cov_type="cluster:g")
    np.testing.assert_allclose(model.params, local.params, rtol=1e-12)
    np.testing.assert_allclose(model.bse, local.bse, rtol=1e-10)


def test_dask_arrays_with_unknown_chunk_sizes(frame):
    ddf = dd.from_pandas(frame, npartitions=5)
    x = ddf[["a", "b"]].to_dask_array()  # lengths unknown: chunks are NaN
    y = ddf["y"].to_dask_array()
    assert np.isnan(x.chunks[0][0])
    model = streamreg.fit(x, y)
    ref = np.linalg.lstsq(
        np.column_stack([np.ones(len(frame)), frame[["a", "b"]]]), frame["y"], rcond=None
    )[0]
    np.testing.assert_allclose(model.params, ref, rtol=1e-9)
    assert list(model.feature_names_in_) == ["x0", "x1"]


def test_dask_arrays_with_numpy_y_and_weights(frame):
    x = da.from_array(frame[["a", "b"]].to_numpy(), chunks=(500, 1))
    model = streamreg.fit(x, frame["y"].to_numpy(), weight=frame["w"].to_numpy())
    local = streamreg.fit(
        frame[["a", "b"]].to_numpy(), frame["y"].to_numpy(), weight=frame["w"].to_numpy()
    )
    np.testing.assert_allclose(model.params, local.params, rtol=1e-12)


def test_parquet_read_by_cluster_workers_equals_local(client, tmp_path, frame, monkeypatch):
    from streamreg.engine import tasks

    # Tasks of two small files each (600 rows × 3 used columns × 8 bytes a file).
    monkeypatch.setattr(tasks, "TASK_BYTES", 2 * 600 * 3 * 8)
    for i in range(5):
        part = frame.iloc[i * 600 : (i + 1) * 600]
        write_parquet(
            tmp_path / "d" / f"part{i}.parquet", {c: part[c].to_numpy() for c in frame.columns}
        )
    local = streamreg.fit(tmp_path / "d", target="y", features=["a", "b"])
    from distributed import get_task_stream

    with get_task_stream(client) as stream:
        remote = streamreg.fit(tmp_path / "d", target="y", features=["a", "b"], client=client)
    reads = [t for t in stream.data if t["key"].startswith("_partition_accumulation")]
    assert len(reads) == 3  # files 0+1, 2+3 and 4, read by the workers
    assert {t["worker"] for t in stream.data} <= set(client.scheduler_info()["workers"])
    np.testing.assert_allclose(remote.params, local.params, rtol=1e-12)
    assert [f["rows"] for f in remote.inputs_] == [f["rows"] for f in local.inputs_]


def test_lazy_prediction_computes_nothing_until_asked(frame):
    model = streamreg.fit(frame, target="y", features=["a", "b"])
    calls = []

    @dask.delayed
    def load(part):
        calls.append(part)
        return part

    pieces = [frame.iloc[i : i + 1000] for i in range(0, len(frame), 1000)]
    ddf = dd.from_delayed([load(p) for p in pieces], meta=frame.iloc[:0])
    pred = model.predict(ddf)
    assert calls == []
    assert dask.is_dask_collection(pred) and pred.dtype == np.float64 and pred.name == "prediction"
    np.testing.assert_allclose(pred.compute().to_numpy(), model.predict(frame), rtol=1e-14)
    arr = model.predict(da.from_array(frame[["a", "b"]].to_numpy(), chunks=(700, 2)))
    assert dask.is_dask_collection(arr)
    np.testing.assert_allclose(arr.compute(), model.predict(frame), rtol=1e-14)


def test_dask_input_errors_are_clear(frame):
    ddf = dd.from_pandas(frame, npartitions=2)
    with pytest.raises(streamreg.InputError, match="target column is required"):
        streamreg.fit(ddf)
    with pytest.raises(streamreg.SchemaError, match="'nope' is not in the data"):
        streamreg.fit(ddf, target="nope")
    with pytest.raises(streamreg.InputError, match="needs y"):
        streamreg.fit(da.ones((10, 2), chunks=5))


def test_encoded_design_on_a_cluster_reading_parquet(client, frame, tmp_path):
    """Level discovery, the grouped pass and a robust pass run on the workers, which read the
    files; the encoding travels with the tasks (categories first seen in the last file)."""
    frame = frame.assign(city=np.where(frame.index < 2500, "oslo", "lima"))
    frame.loc[frame.index >= 2900, "city"] = "pune"
    for i, rows in enumerate(np.array_split(np.arange(len(frame)), 3)):
        write_parquet(tmp_path / f"part-{i}.parquet", frame.iloc[rows].to_dict("list"))
    formula = "y ~ a + C(city) + a:C(city) + C(g)"
    local = streamreg.fit(frame, formula=formula, cov_type="HC1")
    remote = streamreg.fit(tmp_path, formula=formula, cov_type="HC1", client=client)
    assert remote.param_names == local.param_names
    np.testing.assert_allclose(remote.params, local.params, rtol=1e-10)
    np.testing.assert_allclose(remote.bse, local.bse, rtol=1e-8)
    both = streamreg.fit(tmp_path, target=["y", "b"], features=["a", "city"], client=client)
    np.testing.assert_allclose(
        both["b"].params, streamreg.fit(frame, target="b", features=["a", "city"]).params
    )
