"""Fault injection: no ``internal error`` from a full disk, a read-only folder, a dead object
store or a cluster that never answers — one sentence naming the path, exit code 2, nothing lost.

The faults are real where the machine allows (a small tmpfs that fills up, one remounted
read-only: ``tests/faults.py``), else a file-size limit; every service listens on 127.0.0.1
and is stopped by the test, and every wait is bounded (``--timeout``, ``--stall-timeout``,
subprocess timeouts).
"""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import free_port, moto_s3_server
from faults import (
    bad_port,
    fill,
    read_only_folder,
    remount,
    run_with_file_size_limit,
    small_tmpfs,
)
from test_bad_input import SENTINEL, assert_one_sentence, sample, write
from typer.testing import CliRunner

import streamreg
from streamreg.cli import app
from streamreg.errors import InputError
from streamreg.jobs import load_job, run_job
from streamreg.jobs.store import Store

runner = CliRunner()


def invoke(*args):
    result = runner.invoke(app, [str(a) for a in args])
    assert isinstance(result.exception, SystemExit) or result.exception is None, result.exception
    return result


def assert_refused(result, *words) -> str:
    assert result.exit_code == 2, (result.exit_code, result.stderr)
    assert "internal error" not in result.stderr
    return assert_one_sentence(result.stderr, words)


def leftovers(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


@pytest.fixture
def data(tmp_path):
    return write(tmp_path / "data" / "d.parquet", **sample(400))


@pytest.fixture
def model_file(tmp_path, data):
    path = tmp_path / "model.json"
    streamreg.fit(data, target="y").save(path)
    return path


# ---------------------------------------------------------------------- a full disk
def test_fit_out_on_a_full_disk(data):
    with small_tmpfs("256k") as disk:
        (disk / "model.json").write_bytes(SENTINEL)
        fill(disk)
        result = invoke("fit", data, "-y", "y", "-o", disk / "model.json")
        assert_refused(result, f"cannot write {disk / 'model.json'}", "no space left", "unchanged")
        assert (disk / "model.json").read_bytes() == SENTINEL
        assert leftovers(disk) == []


def test_predict_out_on_a_full_disk(data, model_file):
    with small_tmpfs("256k") as disk:
        fill(disk)
        result = invoke("predict", model_file, data, "-o", disk / "p.parquet")
        assert_refused(result, f"cannot write {disk / 'p.parquet'}", "no space left")
        assert not (disk / "p.parquet").exists() and leftovers(disk) == []


def test_fit_out_past_a_file_size_limit(tmp_path, data):
    """Any user: the write fails with EFBIG (a quota), in a subprocess."""
    out = tmp_path / "model.json"
    proc = run_with_file_size_limit(["fit", data, "-y", "y", "-o", out], limit=1024)
    assert proc.returncode == 2, proc.stderr
    line = assert_one_sentence(proc.stderr, [f"cannot write {out}", "too large"])
    assert "internal error" not in line
    assert not out.exists() and leftovers(tmp_path) == []


def _job(tmp_path, state, model, inputs=None, **extra):
    lines = [
        f"inputs = [{json.dumps(str(inputs or tmp_path / 'data'))}]",
        "[model]",
        'target = "y"',
        "[state]",
        f"location = {json.dumps(str(state))}",
        "checkpoint_row_groups = 0",
        "[outputs]",
        f"model = {json.dumps(str(model))}",
    ]
    for section, values in extra.items():
        lines.append(f"[{section}]")
        lines += [f"{k} = {json.dumps(v)}" for k, v in values.items()]
    path = tmp_path / "job.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_job_state_on_a_full_disk(tmp_path, data):
    with small_tmpfs("256k") as disk:
        fill(disk)
        job = _job(tmp_path, disk / "state", tmp_path / "out" / "model.json")
        result = invoke("run", job, "-q")
        assert_refused(result, str(disk / "state"), "no space left")
        assert not (tmp_path / "out" / "model.json").exists()


def test_job_model_on_a_full_disk_keeps_the_published_one(tmp_path, data):
    with small_tmpfs("1m") as disk:
        job = _job(tmp_path, tmp_path / "state", disk / "model.json")
        assert invoke("run", job, "-q").exit_code == 0
        published = (disk / "model.json").read_bytes()
        manifest = (tmp_path / "state" / "manifest.json").read_bytes()
        write(tmp_path / "data" / "e.parquet", **sample(50, seed=3))
        fill(disk)
        result = invoke("run", job, "-q")
        assert_refused(result, str(disk), "no space left")
        assert (disk / "model.json").read_bytes() == published
        assert (tmp_path / "state" / "manifest.json").read_bytes() == manifest
        (disk / "ballast").unlink()
        assert invoke("run", job, "-q").exit_code == 0  # the next run finishes the work
        assert json.loads((disk / "model.json").read_text())["n_rows"] == 450


# ---------------------------------------------------------------------- read-only folders
def test_fit_out_in_a_read_only_folder_is_refused_before_the_pass(tmp_path, data, monkeypatch):
    with read_only_folder(tmp_path) as folder:

        def never(*args, **kwargs):
            raise AssertionError("the data were read before the destination was checked")

        monkeypatch.setattr("streamreg.fitting.fit", never)
        result = invoke("fit", data, "-y", "y", "-o", folder / "model.json")
        line = assert_refused(result, f"cannot write {folder / 'model.json'}", str(folder))
        assert ".tmp" not in line  # the target is named, not a temporary file


def test_predict_out_in_a_read_only_folder(tmp_path, data, model_file):
    with read_only_folder(tmp_path) as folder:
        result = invoke("predict", model_file, data, "-o", folder / "p.parquet")
        assert_refused(result, f"cannot write {folder / 'p.parquet'}")


def test_library_save_into_a_read_only_folder(tmp_path, data):
    model = streamreg.fit(data, target="y")
    with read_only_folder(tmp_path) as folder, pytest.raises(InputError) as err:
        model.save(folder / "m.json")
    assert f"cannot write {folder / 'm.json'}" in str(err.value)


def test_job_state_folder_read_only_from_the_start(tmp_path, data):
    with read_only_folder(tmp_path) as folder:
        result = invoke("run", _job(tmp_path, folder / "state", tmp_path / "m.json"), "-q")
        assert_refused(result, str(folder / "state"))


@pytest.mark.parametrize("which", ["state", "outputs"])
def test_folder_made_read_only_mid_run(tmp_path, data, monkeypatch, which):
    """The folder turns read-only after the new file is ingested, before the model and the
    manifest are written: the run stops in words and the next run (writable again) completes
    it, with every row counted once."""
    with small_tmpfs("4m") as disk:
        state = disk / "state" if which == "state" else tmp_path / "state"
        model = tmp_path / "out" / "model.json" if which == "state" else disk / "model.json"
        job_path = _job(tmp_path, state, model)
        assert run_job(load_job(job_path)).status == "published"
        write(tmp_path / "data" / "e.parquet", **sample(50, seed=4))
        original = Store.write
        flipped = []

        def write_then_break(self, name, content):
            if name == "manifest.json" or (which == "outputs" and not flipped):
                if not flipped:
                    remount(disk, read_only=True)
                    flipped.append(name)
            return original(self, name, content)

        monkeypatch.setattr(Store, "write", write_then_break)
        with pytest.raises(InputError) as err:
            run_job(load_job(job_path))
        assert str(disk) in str(err.value) and "read-only" in str(err.value)
        monkeypatch.setattr(Store, "write", original)
        remount(disk, read_only=False)
        result = run_job(load_job(job_path))
        assert result.status == "published"
        assert json.loads(model.read_text())["n_rows"] == 450


# ---------------------------------------------------------------------- object stores
@pytest.fixture(scope="module")
def s3_server():
    with moto_s3_server() as endpoint:
        yield endpoint


def test_a_bucket_that_does_not_exist(tmp_path, data, s3_server):
    from streamreg.io.sources import Source

    with pytest.raises(InputError, match="s3://nobucket/events/ does not exist"):
        Source.resolve("s3://nobucket/events/", storage_options={"endpoint_url": s3_server})
    storage = {"endpoint_url": s3_server}
    for state, model, where in [
        ("s3://nobucket/jobs/a/", tmp_path / "m.json", "s3://nobucket/jobs/a/lock"),
        (
            tmp_path / "state",
            "s3://nobucket/out/model.json",
            "s3://nobucket/out/model.v000001.json",
        ),
    ]:
        job = _job(tmp_path, state, model, storage=storage)
        assert_refused(invoke("run", job, "-q"), f"cannot write {where}", "bucket does not exist")


def test_a_dead_object_store(tmp_path, data):
    """Nothing listens at the endpoint: the listing and the job fail in words (boto retries a
    few times first; its connect timeout bounds each try)."""
    dead = {"endpoint_url": f"http://127.0.0.1:{free_port()}", "config_kwargs": {}}
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    job = _job(tmp_path, "s3://lake/jobs/a/", tmp_path / "m.json", storage=dead)
    assert_refused(invoke("run", job, "-q"), "s3://lake/jobs/a/", "Could not connect")
    job = _job(tmp_path, tmp_path / "state", tmp_path / "m.json", "s3://lake/events/", storage=dead)
    assert_refused(invoke("run", job, "-q"), "cannot list s3://lake/events/", "Could not connect")


# ---------------------------------------------------------------------- clusters
@pytest.mark.parametrize(
    "mode, words",
    [
        ("silent", ["did not answer within 1 s", "--timeout"]),
        ("http", ["not as a Dask scheduler does"]),
        ("garbage", ["not as a Dask scheduler does"]),
    ],
)
def test_a_port_that_is_not_a_scheduler(data, mode, words):
    with bad_port(mode) as address:
        result = invoke("fit", data, "-y", "y", "--scheduler", address, "--timeout", "1")
    assert_refused(result, address, *words)
    assert "MemoryError" not in result.stderr or "protocol" in result.stderr


@pytest.fixture
def lonely_scheduler():
    """A scheduler on 127.0.0.1 whose one worker is closed: a cluster whose workers died."""
    from distributed import LocalCluster

    with LocalCluster(
        n_workers=1,
        processes=False,
        threads_per_worker=1,
        protocol="tcp://",
        host="127.0.0.1",
        dashboard_address=None,
    ) as cluster:
        for worker in list(cluster.workers.values()):
            cluster.sync(worker.close)
        yield cluster.scheduler_address


@pytest.mark.parametrize("solver", ["auto", "sgd"])
def test_a_cluster_without_workers_ends_in_words(data, lonely_scheduler, solver):
    result = invoke(
        "fit",
        data,
        "-y",
        "y",
        "--solver",
        solver,
        "--scheduler",
        lonely_scheduler,
        "--stall-timeout",
        "2",
    )
    assert_refused(result, "made no progress for 2 s", "has no workers", "--stall-timeout")


def test_stall_timeout_in_the_library(data, lonely_scheduler):
    from distributed import Client

    with Client(lonely_scheduler, set_as_default=False) as client:
        with pytest.raises(InputError, match=r"made no progress for 1\.5 s.*stall_timeout="):
            streamreg.fit(data, target="y", client=client, stall_timeout=1.5)
        with pytest.raises(InputError, match="stall_timeout= must be a positive number"):
            streamreg.fit(data, target="y", client=client, stall_timeout=0)


# ---------------------------------------------------------------------- sanity of the helpers
def test_the_tmpfs_really_fills(tmp_path):
    with small_tmpfs("64k") as disk:
        fill(disk)
        with pytest.raises(OSError):
            pq.write_table(pa.table({"x": np.arange(10_000.0)}), disk / "x.parquet")
        assert shutil.disk_usage(disk).free < 4096
