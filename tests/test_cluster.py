"""The docker-compose topology for real: `dask scheduler` and two `dask worker` processes on
127.0.0.1, `streamreg fit --scheduler` against them, a worker killed mid-fit, an unreachable
scheduler. (Docker has no engine here; the compose file is parsed and its job replayed.)"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import write_parquet

import streamreg

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def compose():
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


@pytest.fixture(scope="module")
def cluster(compose, tmp_path_factory):
    """Start the compose file's scheduler and workers as local processes."""
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    logs = tmp_path_factory.mktemp("cluster")
    scheduler_cmd = _local(compose["services"]["scheduler"]["command"], port)
    processes = [
        subprocess.Popen(
            scheduler_cmd, stdout=open(logs / "scheduler.log", "w"), stderr=subprocess.STDOUT
        )
    ]
    for name in ("worker-1", "worker-2"):
        cmd = _local(compose["services"][name]["command"], port)
        processes.append(
            subprocess.Popen(cmd, stdout=open(logs / f"{name}.log", "w"), stderr=subprocess.STDOUT)
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


def test_compose_file_describes_scheduler_two_workers_and_a_job(compose):
    services = compose["services"]
    assert set(services) == {"scheduler", "worker-1", "worker-2", "job"}
    assert services["scheduler"]["command"][:2] == ["dask", "scheduler"]
    assert (
        "8786:8786" in services["scheduler"]["ports"]
        and "8787:8787" in services["scheduler"]["ports"]
    )
    for name in ("worker-1", "worker-2"):
        assert services[name]["command"][:3] == ["dask", "worker", "tcp://scheduler:8786"]
        assert "./data:/app/data:ro" in services[name]["volumes"]
    job = services["job"]["command"]
    assert (
        job[:2] == ["streamreg", "fit"]
        and job[job.index("--scheduler") + 1] == "tcp://scheduler:8786"
    )
    assert {services[s].get("image") for s in services} == {"streamreg:latest"}
    assert services["scheduler"]["build"] == "."
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "pip install" in dockerfile and "EXPOSE 8786 8787" in dockerfile
    # The job fits data the image ships.
    target_dir = job[2].replace("/app/", "")
    assert (ROOT / target_dir).is_dir()


def test_the_compose_job_runs_against_real_scheduler_and_workers(cluster, compose, tmp_path):
    address, _ = cluster
    job = list(compose["services"]["job"]["command"])
    job[2] = str(ROOT / job[2].replace("/app/", ""))
    job[job.index("--scheduler") + 1] = address
    out = tmp_path / "model.json"
    job[job.index("--out") + 1] = str(out)
    result = subprocess.run([*job, "--json"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    remote = streamreg.load(out)
    local = streamreg.fit(ROOT / "data" / "hours_food", target="score")
    np.testing.assert_allclose(remote.params, local.params, rtol=1e-12)
    assert json.loads(result.stdout)["n_rows"] == 50


@pytest.fixture
def many_files(tmp_path, rng):
    for i in range(24):
        x = rng.normal(size=(20000, 3))
        write_parquet(
            tmp_path / "many" / f"part{i:02d}.parquet",
            {
                "a": x[:, 0],
                "b": x[:, 1],
                "c": x[:, 2],
                "y": x @ [1.0, -2.0, 0.5] + rng.normal(size=20000),
            },
        )
    return tmp_path / "many"


def test_a_worker_killed_mid_fit_does_not_change_the_result(cluster, many_files):
    _, client = cluster
    # Small batches make each file a task of noticeable length, so the kill lands mid-fit.
    options = dict(target="y", solver="qr", batch_size=200)
    undisturbed = streamreg.fit(many_files, client=client, **options)
    pids = client.run(os.getpid)  # worker address -> process id
    # A fit lasts a few seconds; if it finishes before a worker is caught mid-work
    # (a loaded machine), try again — the kill must land in one of the attempts.
    for _attempt in range(4):
        result = {}
        runner = threading.Thread(
            target=lambda out=result: out.setdefault(
                "model", streamreg.fit(many_files, client=client, **options)
            )
        )
        runner.start()
        victim = None
        while victim is None and runner.is_alive():
            # A worker that already holds a finished partition state and is working on more.
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
            break
    assert victim is not None, "no worker was seen holding a state while working, in 4 fits"
    assert "model" in result
    np.testing.assert_array_equal(result["model"].params, undisturbed.params)
    client.wait_for_workers(2, timeout=120)  # the nanny restarts the killed worker


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
