"""An executor killed in the middle of a Spark fit: the answer is the undisturbed one, bit for bit.

The session runs Spark's ``local-cluster[2,1,1024]`` master: a master and a worker inside
the driver's JVM and two executors in JVM processes of their own, which is what a real
cluster's executors are. One of them is killed (SIGKILL) while the fit's stage has
finished some partitions and is running others; Spark re-runs the lost partitions on the
other executor, and since each partition's result depends only on its rows and the merge
tree is fixed by partition index, the model (exact solver) is bit-identical to the local fit.
Skipped without pyspark, Java or psutil.
"""

from __future__ import annotations

import os
import shutil
import signal
import threading
import time

import numpy as np
import pytest
from conftest import write_parquet

pytest.importorskip("pyspark")
psutil = pytest.importorskip("psutil")
if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
    pytest.skip("Spark needs Java (no java on PATH, no JAVA_HOME)", allow_module_level=True)

from test_spark import start_session  # noqa: E402

import streamreg  # noqa: E402
import streamreg.spark  # noqa: E402

pytestmark = pytest.mark.filterwarnings(
    "ignore:PySpark does not yet fully support pandas:FutureWarning"
)
PARTITIONS, ROWS = 12, 8000  # small: the first fit on new executors is mostly warm-up


@pytest.fixture(scope="module")
def spark():
    config = {
        "spark.executor.memory": "512m",
        "spark.sql.files.maxPartitionBytes": "2m",  # one file per partition
    }
    session = start_session("local-cluster[2,1,1024]", "streamreg-executor-kill", config, "OFF")
    yield session
    session.stop()


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    rng = np.random.default_rng(2026)
    root = tmp_path_factory.mktemp("spark-kill")
    for i in range(PARTITIONS):
        x = rng.normal(size=(ROWS, 3)) * [1.0, 10.0, 0.1] + [0.0, 100.0, 5.0]
        y = 1 + x @ [1.5, -0.2, 4.0] + rng.normal(size=ROWS)
        write_parquet(
            root / f"part-{i:02d}.parquet", {"a": x[:, 0], "b": x[:, 1], "c": x[:, 2], "y": y}
        )
    return str(root)


def _executors(spark) -> list:
    """The executor JVM processes (children of the driver's JVM)."""
    jvm = psutil.Process(spark.sparkContext._gateway.proc.pid)
    found = []
    for process in jvm.children(recursive=True):
        try:
            if any("CoarseGrainedExecutorBackend" in part for part in process.cmdline()):
                found.append(process)
        except psutil.Error:  # exited meanwhile (Python workers come and go)
            continue
    return found


def test_an_executor_killed_mid_fit_does_not_change_the_result(spark, files):
    frame = spark.read.parquet(files)
    assert frame.rdd.getNumPartitions() == PARTITIONS
    # Small batches make each partition's task last long enough to be caught mid-stage; the
    # exact solver's result does not depend on the partitioning, so the local fit is the
    # undisturbed answer, bit for bit (and the first fit on new executors is a slow one).
    options = dict(target="y", solver="exact", batch_size=100)
    local = streamreg.fit(files, **options)
    tracker = spark.sparkContext.statusTracker()
    killed = None
    for _attempt in range(4):
        assert len(_executors(spark)) == 2
        result = {}
        runner = threading.Thread(
            target=lambda out=result: out.setdefault("model", streamreg.spark.fit(frame, **options))
        )
        runner.start()
        while killed is None and runner.is_alive():
            stages = [tracker.getStageInfo(s) for s in tracker.getActiveStageIds()]
            if any(s and s.numCompletedTasks > 0 and s.numActiveTasks > 0 for s in stages):
                killed = _executors(spark)[0]
                os.kill(killed.pid, signal.SIGKILL)
            else:
                time.sleep(0.01)
        runner.join(timeout=600)
        if killed is not None:
            break
        time.sleep(1)
    assert killed is not None, "no stage was seen with finished and running tasks, in 4 fits"
    assert "model" in result
    assert result["model"].state_ == local.state_
    assert np.array_equal(result["model"].params, local.params)
    assert result["model"].rows_read_ == PARTITIONS * ROWS
    assert not killed.is_running() or killed.status() == psutil.STATUS_ZOMBIE
