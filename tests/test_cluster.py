"""The docker-compose deployment for real, on 127.0.0.1: `dask scheduler` and two `dask worker`
processes started from the compose file's commands, moto's S3 server in place of MinIO, and the
`streamreg run deploy/job.toml --watch` service publishing model versions into the bucket while
files land there; a worker killed mid-fit (file tasks and row-group tasks); an unreachable
scheduler. (Docker has no engine here; the compose file is parsed and its commands run.)

Oracles: ``streamreg.fit`` in this process over local copies of the same files — the exact
solver's result does not depend on how rows are split among workers, so the published models
must equal it bit for bit — and an undisturbed fit on the same cluster.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import free_port, moto_s3_server, write_parquet
from test_jobs import write_part
from test_jobs_cv import write_job as write_cv_job

import streamreg
from streamreg.engine import tasks
from streamreg.errors import InputError
from streamreg.io.sources import Source
from streamreg.jobs import run_job
from streamreg.jobs.cluster import ClusterReads
from streamreg.jobs.ingest import Stopped
from streamreg.jobs.spec import load_job, parse_job

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def compose():
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def _environment(compose, service: str) -> dict:
    """This process's environment plus the service's (as compose would set it)."""
    return {
        **os.environ,
        **{k: str(v) for k, v in compose["services"][service].get("environment", {}).items()},
    }


@pytest.fixture(scope="module")
def s3_server(compose):
    """moto's S3 server on loopback, with the bucket the compose file's `buckets` service makes."""
    with moto_s3_server(compose["x-s3-credentials"]) as endpoint:
        import boto3  # after the skip for a missing moto (which brings boto3)

        # moto keeps its buckets in this process across servers: start from none, leave none.
        reset = urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST")
        urllib.request.urlopen(reset)
        boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket="lake")
        yield endpoint
        urllib.request.urlopen(reset)


@pytest.fixture(scope="module")
def cluster(compose, tmp_path_factory):
    """Start the compose file's scheduler and workers as local processes."""
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    logs = tmp_path_factory.mktemp("cluster")
    processes = []
    for name in ("scheduler", "worker-1", "worker-2"):
        cmd = _local(compose["services"][name]["command"], port)
        processes.append(
            subprocess.Popen(
                cmd,
                stdout=open(logs / f"{name}.log", "w"),
                stderr=subprocess.STDOUT,
                env=_environment(compose, name),
            )
        )
    from distributed import Client

    try:
        client = Client(address, timeout=60, set_as_default=False)
        client.wait_for_workers(2, timeout=120)
        yield address, client
        client.close()
    finally:
        for proc in processes:
            proc.terminate()
        for proc in processes:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()


def _local(command: list[str], port: int) -> list[str]:
    """The compose command with the container's addresses replaced by loopback ones."""
    out = []
    for arg in command:
        arg = arg.replace("tcp://scheduler:8786", f"tcp://127.0.0.1:{port}")
        out.append(arg)
    if out[:2] == ["dask", "scheduler"]:
        out = [a if a != "0.0.0.0" else "127.0.0.1" for a in out]
        out[out.index("--port") + 1] = str(port)
        out[out.index("--dashboard-address") + 1] = ":0"
    if out[:2] == ["dask", "worker"]:
        out += ["--host", "127.0.0.1"]
    return [sys.executable, "-m", "dask", *out[1:]]


def _app_path(path: str) -> Path:
    """A path inside the image (/app/...) as the file of this checkout it was copied from."""
    assert path.startswith("/app/")
    return ROOT / path[len("/app/") :]


def test_compose_file_describes_store_cluster_and_job_service(compose):
    services = compose["services"]
    assert set(services) == {"minio", "buckets", "scheduler", "worker-1", "worker-2", "job"}
    assert services["minio"]["command"][:2] == ["server", "/data"]
    assert "9000:9000" in services["minio"]["ports"]
    assert "mc mb --ignore-existing lake/lake" in services["buckets"]["command"][0]
    assert services["scheduler"]["command"][:2] == ["dask", "scheduler"]
    assert {"8786:8786", "8787:8787"} <= set(services["scheduler"]["ports"])
    credentials = compose["x-s3-credentials"]
    assert services["minio"]["environment"] == {
        "MINIO_ROOT_USER": credentials["AWS_ACCESS_KEY_ID"],
        "MINIO_ROOT_PASSWORD": credentials["AWS_SECRET_ACCESS_KEY"],
    }
    for name in ("worker-1", "worker-2", "job"):
        assert services[name]["environment"] == credentials  # the workers read the bucket too
    for name in ("worker-1", "worker-2"):
        assert services[name]["command"][:3] == ["dask", "worker", "tcp://scheduler:8786"]
    job = services["job"]
    assert job["command"][:2] == ["streamreg", "run"] and "--watch" in job["command"]
    assert job["restart"] == "unless-stopped" and job["stop_signal"] == "SIGTERM"
    assert {services[s].get("image") for s in ("scheduler", "worker-1", "worker-2", "job")} == {
        "streamreg:latest"
    }
    spec = load_job(_app_path(job["command"][2]))
    assert spec.inputs == ("s3://lake/events/",)
    assert spec.state.startswith("s3://lake/") and spec.model.startswith("s3://lake/")
    assert spec.storage == {"endpoint_url": "http://minio:9000"}
    assert spec.scheduler == "tcp://scheduler:8786"
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert 'pip install --no-cache-dir ".[s3]"' in dockerfile
    assert "COPY deploy ./deploy" in dockerfile and "EXPOSE 8786 8787" in dockerfile


def _read_events(proc, events: list):
    for line in proc.stderr:
        try:
            events.append(json.loads(line))
        except ValueError:
            events.append({"event": "text", "message": line})


def _wait_for(predicate, events: list, timeout: float = 180.0):
    """Poll until ``predicate()`` holds (a guard against hanging, not a timing assertion)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting; the service's last events: {events[-6:]}")


def _part(folder: Path, i: int, rows: int = 3000) -> Path:
    rng = np.random.default_rng([7, i])
    x = rng.normal(size=(rows, 3)) * [1.0, 10.0, 0.1] + [0.0, 100.0, 5.0]
    y = 1 + x @ [1.5, -0.2, 4.0] + rng.normal(size=rows)
    return write_parquet(
        folder / f"part-{i:03d}.parquet",
        {"x1": x[:, 0], "x2": x[:, 1], "x3": x[:, 2], "y": y},
        row_group_size=500,
    )


def test_the_deployment_publishes_new_files_from_the_bucket(cluster, compose, s3_server, tmp_path):
    import boto3
    from distributed import get_task_stream

    address, client = cluster
    bucket = boto3.client("s3", endpoint_url=s3_server)
    command = list(compose["services"]["job"]["command"])
    # The deployed job file, pointed at this loopback topology.
    text = _app_path(command[2]).read_text()
    text = text.replace("http://minio:9000", s3_server).replace("tcp://scheduler:8786", address)
    job_path = tmp_path / "job.toml"
    job_path.write_text(text)
    job = parse_job(text, path=str(job_path))
    command[2] = str(job_path)
    local = [_part(tmp_path / "data", i) for i in range(4)]
    for path in local[:3]:
        bucket.upload_file(str(path), "lake", f"events/{path.name}")

    def fetch(key: str) -> Path:
        out = tmp_path / key.replace("/", "_")
        bucket.download_file("lake", key, str(out))
        return out

    def assert_model_is_the_fit_of(key: str, files):
        want = streamreg.fit([str(f) for f in files], target="y", solver="exact")
        got = streamreg.load(fetch(key))
        assert got.state_ == want.state_
        assert np.array_equal(got.params, want.params) and np.array_equal(got.bse, want.bse)
        assert got.rows_read_ == want.rows_read_ == 3000 * len(files)

    proc = subprocess.Popen(
        [*command, "--interval", "1s"],  # an operator's override of the 30 s interval
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_environment(compose, "job"),
    )
    events: list = []
    threading.Thread(target=_read_events, args=(proc, events), daemon=True).start()
    try:
        with get_task_stream(client) as stream:
            _wait_for(lambda: any(e["event"] == "published" for e in events), events)
            assert_model_is_the_fit_of("models/events/model.json", local[:3])

            seen = len(events)
            bucket.upload_file(str(local[3]), "lake", f"events/{local[3].name}")  # a new file
            published = _wait_for(
                lambda: [e for e in events[seen:] if e["event"] == "published"], events
            )
        assert published[0]["model_version"] == 2 and published[0]["files_total"] == 4
        assert published[0]["files_ingested"] == 1
        assert_model_is_the_fit_of("models/events/model.json", local)
        assert_model_is_the_fit_of("models/events/model.v000001.json", local[:3])
        assert_model_is_the_fit_of("models/events/model.v000002.json", local)
        # The workers read the files, one task per new file.
        reads = [t for t in stream.data if t["key"].startswith("read_file")]
        assert len(reads) == 4
        assert {t["worker"] for t in reads} <= set(client.scheduler_info()["workers"])
        keys = {o["Key"] for o in bucket.list_objects_v2(Bucket="lake")["Contents"]}
        assert "jobs/events/manifest.json" in keys and "models/events/summary.txt" in keys
        assert len([k for k in keys if k.startswith("jobs/events/states/")]) == 4
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert events[-1]["event"] == "stopped"

    # The same bucket fitted on the cluster in one call: the workers read it with their
    # credentials (from the environment, as in the compose file).
    remote = Source.resolve("s3://lake/events/", storage_options={"endpoint_url": s3_server})
    model = streamreg.fit(remote, target="y", solver="exact", client=client)
    assert model.state_ == streamreg.load(fetch("models/events/model.json")).state_
    assert job.scheduler == address


def test_a_cv_job_on_the_cluster_keeps_the_fold_states_a_local_run_keeps(cluster, tmp_path):
    """A [cv] job's workers fold each file into its fold states; the run publishes the model a
    local run of the same job publishes (exact solver: the same bits)."""
    from distributed import get_task_stream

    address, client = cluster
    for i in range(3):
        write_part(tmp_path / "data", i)
    cv = {"folds": 3, "l1_ratio": [0.5, 1.0], "alphas": 8}
    jobs = {}
    for where, run in (("local", {}), ("cluster", {"scheduler": address})):
        path = write_cv_job(
            tmp_path,
            cv=cv,
            name=f"{where}.toml",
            state={"location": f"{where}-state/"},
            outputs={"model": f"out/{where}.json"},
            run=run,
        )
        jobs[where] = load_job(path)
    assert run_job(jobs["local"]).status == "published"
    with get_task_stream(client) as stream:
        assert run_job(jobs["cluster"]).status == "published"
    assert len([t for t in stream.data if t["key"].startswith("read_file")]) == 3
    for name in os.listdir(tmp_path / "local-state" / "states"):
        local, remote = (
            json.loads((tmp_path / f"{w}-state" / "states" / name).read_text())
            for w in ("local", "cluster")
        )
        assert remote["folds"] == local["folds"] and remote["state"] == local["state"]
    on_cluster, local = (streamreg.load(tmp_path / "out" / f"{w}.json") for w in jobs)
    assert on_cluster.state_ == local.state_ and on_cluster.cv_ == local.cv_
    np.testing.assert_array_equal(on_cluster.coef_, local.coef_)


def test_a_job_whose_scheduler_is_unreachable_fails_with_one_sentence(tmp_path):
    _part(tmp_path / "data", 0)
    port = free_port()  # nothing listens here
    job = parse_job(
        'inputs = ["data/"]\n[model]\ntarget = "y"\n[state]\nlocation = "state/"\n'
        '[outputs]\nmodel = "out/model.json"\n'
        f'[run]\nscheduler = "tcp://127.0.0.1:{port}"\n',
        path=str(tmp_path / "job.toml"),
    )
    with pytest.raises(
        InputError, match=f"could not reach the Dask scheduler at tcp://127.0.0.1:{port}"
    ):
        run_job(job)
    assert not (tmp_path / "out").exists()


def test_a_stop_while_a_worker_reads_stops_the_run_as_a_local_stop_does():
    """Waiting for a worker's file gives way to a stop request with the local run's Stopped."""

    class Pending:  # a task that never finishes
        def result(self, timeout):
            time.sleep(timeout)
            raise TimeoutError

    reads = ClusterReads(None)
    reads.futures["f.parquet"] = Pending()
    assert reads.reader("elsewhere.parquet", None) is None  # not read on the cluster
    stop = threading.Event()
    threading.Timer(0.3, stop.set).start()
    with pytest.raises(Stopped, match="f.parquet"):
        reads.reader("f.parquet", stop)()
    assert "f.parquet" in reads.futures  # still pending: the run's exit cancels it


@pytest.fixture(params=["file tasks", "row-group tasks"])
def many_tasks(request, tmp_path, rng, monkeypatch):
    """24 tasks of 20,000 rows: 24 files, or one file of 48 row groups cut 2 per task."""
    x = rng.normal(size=(24 * 20000, 3))
    columns = {"a": x[:, 0], "b": x[:, 1], "c": x[:, 2]}
    columns["y"] = x @ [1.0, -2.0, 0.5] + rng.normal(size=len(x))
    monkeypatch.setattr(tasks, "TASK_BYTES", 20000 * 4 * 8)  # 20,000 rows × 4 columns
    if request.param == "row-group tasks":
        return write_parquet(tmp_path / "one" / "big.parquet", columns, row_group_size=10000)
    for i in range(24):
        part = {k: v[i * 20000 : (i + 1) * 20000] for k, v in columns.items()}
        write_parquet(tmp_path / "many" / f"part{i:02d}.parquet", part)
    return tmp_path / "many"


def fit_with_a_worker_killed(client, fit):
    """``(victim pid, model)``: ``fit()`` run while a worker holding a finished partition state
    and working on more is SIGKILLed (None, None if no worker was caught so in 4 fits)."""
    pids = client.run(os.getpid)  # worker address -> process id
    # A fit lasts a few seconds; if it finishes before a worker is caught mid-work
    # (a loaded machine), try again — the kill must land in one of the attempts.
    for _attempt in range(4):
        result = {}
        runner = threading.Thread(target=lambda out=result: out.setdefault("model", fit()))
        runner.start()
        victim = None
        while victim is None and runner.is_alive():
            holding = {
                w
                for w, keys in client.has_what().items()
                if any("partition" in str(k) for k in keys)
            }
            busy = {w for w, keys in client.processing().items() if keys}
            both = sorted(holding & busy)
            if both:
                victim = pids[both[0]]
            else:
                time.sleep(0.01)
        if victim is not None:
            os.kill(victim, signal.SIGKILL)
        runner.join(timeout=300)
        if victim is not None:
            client.wait_for_workers(2, timeout=120)  # the nanny restarts the killed worker
            return victim, result.get("model")
    return None, None


def test_a_worker_killed_mid_fit_does_not_change_the_result(cluster, many_tasks):
    _, client = cluster
    src = Source.resolve(many_tasks)
    assert len(tasks.parquet_tasks(src, 4)) == 24
    # Small batches make each task of noticeable length, so the kill lands mid-fit.
    options = dict(target="y", solver="qr", batch_size=200)
    undisturbed = streamreg.fit(many_tasks, client=client, **options)
    local = streamreg.fit(many_tasks, **options)
    np.testing.assert_allclose(undisturbed.params, local.params, rtol=1e-12)
    victim, model = fit_with_a_worker_killed(
        client, lambda: streamreg.fit(many_tasks, client=client, **options)
    )
    assert victim is not None, "no worker was seen holding a state while working, in 4 fits"
    assert model is not None
    np.testing.assert_array_equal(model.params, undisturbed.params)


@pytest.mark.parametrize("kind", ["DataFrame partitions", "array blocks"])
def test_a_worker_killed_mid_fit_of_a_dask_collection_gives_the_local_exact_fit(cluster, rng, kind):
    """Dask DataFrame partitions (behind a map_partitions: fitted partition by partition) and
    Dask array blocks: the exact solver's answer is the local one, bit for bit, also when a
    worker dies mid-fit (its partitions are made again from the graph)."""
    import dask.array as da
    import dask.dataframe as dd
    import pandas as pd

    _, client = cluster
    x = rng.normal(size=(24 * 5000, 3))
    y = x @ [1.0, -2.0, 0.5] + rng.normal(size=len(x))
    options = dict(solver="exact", batch_size=100)
    if kind == "DataFrame partitions":
        frame = pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "c": x[:, 2], "y": y})
        local = streamreg.fit(frame, target="y", **options)
        parts = dd.from_pandas(frame, npartitions=24).map_partitions(lambda part: part)

        def fit():
            return streamreg.fit(parts, target="y", client=client, **options)
    else:
        local = streamreg.fit(x, y, **options)

        def fit():
            return streamreg.fit(
                da.from_array(x, chunks=(5000, 3)),
                da.from_array(y, chunks=5000),
                client=client,
                **options,
            )

    undisturbed = fit()
    np.testing.assert_array_equal(undisturbed.params, local.params)
    victim, model = fit_with_a_worker_killed(client, fit)
    assert victim is not None, "no worker was seen holding a state while working, in 4 fits"
    assert model is not None
    np.testing.assert_array_equal(model.params, local.params)
    np.testing.assert_array_equal(model.bse, local.bse)


def test_unreachable_scheduler_is_one_sentence_not_a_hang(tmp_path):
    port = free_port()  # nothing listens here
    started = time.monotonic()
    result = subprocess.run(
        [
            "streamreg",
            "fit",
            str(ROOT / "data" / "hours_food"),
            "--target",
            "score",
            "--scheduler",
            f"tcp://127.0.0.1:{port}",
            "--timeout",
            "2",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert (
        f"could not reach the Dask scheduler at tcp://127.0.0.1:{port} within 2 s" in result.stderr
    )
    assert "Traceback" not in result.stderr
    assert (
        time.monotonic() - started < 110
    )  # it returned: not a hang (the bound is the subprocess timeout)
