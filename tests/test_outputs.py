"""What an operator relies on in the files streamreg writes: modes, no orphaned temporaries,
a lock whose content appears with it.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from faults import STREAMREG
from test_bad_input import sample, write

import streamreg
from streamreg.errors import LockError
from streamreg.io.atomic import (
    STALE_SECONDS,
    TMP_SUFFIX,
    atomic_path,
    current_umask,
    sweep_stale_temporaries,
    write_text_atomic,
)
from streamreg.jobs.store import Store


def mode_of(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def run_cli(*args, umask: int | None = None, **kwargs):
    def prepare():
        if umask is not None:
            os.umask(umask)

    return subprocess.run(
        [*STREAMREG, *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=prepare,
        **kwargs,
    )


# ---------------------------------------------------------------------- modes
@pytest.mark.parametrize("umask", [0o022, 0o027, 0o077, 0o002])
def test_new_outputs_honour_the_umask(tmp_path, umask):
    data = write(tmp_path / "d.parquet", **sample())
    model = tmp_path / f"m{umask:o}.json"
    preds = tmp_path / f"p{umask:o}.parquet"
    assert run_cli("fit", data, "-y", "y", "-o", model, "-q", umask=umask).returncode == 0
    assert run_cli("predict", model, data, "-o", preds, "-q", umask=umask).returncode == 0
    assert mode_of(model) == 0o666 & ~umask
    assert mode_of(preds) == 0o666 & ~umask


def test_a_replaced_output_keeps_its_mode(tmp_path):
    data = write(tmp_path / "d.parquet", **sample())
    model = tmp_path / "m.json"
    model.write_text("old")
    model.chmod(0o644)
    assert run_cli("fit", data, "-y", "y", "-o", model, "-q", umask=0o077).returncode == 0
    assert mode_of(model) == 0o644
    assert streamreg.load(model).n_samples_ == 30
    model.chmod(0o600)
    assert run_cli("fit", data, "-y", "y", "-o", model, "-q", umask=0o000).returncode == 0
    assert mode_of(model) == 0o600


def test_job_outputs_and_state_honour_the_umask(tmp_path):
    write(tmp_path / "data" / "a.parquet", **sample())
    job = tmp_path / "job.toml"
    job.write_text(
        f'inputs = ["{tmp_path / "data"}"]\n[model]\ntarget = "y"\n'
        f'[state]\nlocation = "{tmp_path / "state"}"\n'
        f'[outputs]\nmodel = "{tmp_path / "out" / "model.json"}"\n'
        f'summary = "{tmp_path / "out" / "summary.txt"}"\n'
    )
    assert run_cli("run", job, "-q", umask=0o022).returncode == 0
    for path in [
        tmp_path / "out" / "model.json",
        tmp_path / "out" / "model.v000001.json",
        tmp_path / "out" / "summary.txt",
        tmp_path / "state" / "manifest.json",
        *(tmp_path / "state" / "states").iterdir(),
    ]:
        assert mode_of(path) == 0o644, path


def test_current_umask_reads_without_changing_it():
    before = os.umask(0o027)
    try:
        assert current_umask() == 0o027
        assert current_umask() == 0o027
    finally:
        os.umask(before)


# ---------------------------------------------------------------------- temporaries
def _age(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


def test_sigkill_during_predict_leaves_a_temporary_the_next_write_sweeps(tmp_path):
    rng = np.random.default_rng(0)
    n = 400_000
    x = rng.normal(size=(n, 4))
    data = tmp_path / "big.parquet"
    table = {f"x{j}": x[:, j] for j in range(4)}
    pq.write_table(pa.table({**table, "y": x.sum(axis=1)}), data, row_group_size=20_000)
    model = tmp_path / "m.json"
    streamreg.fit(data, target="y").save(model)
    out = tmp_path / "out"
    out.mkdir()
    target = out / "p.parquet"
    proc = subprocess.Popen(
        [*STREAMREG, "predict", str(model), str(data), "-o", str(target), "--batch-size", "1000"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(6000):  # wait until the temporary file has content, then kill
            temporaries = [p for p in out.iterdir() if p.name.endswith(TMP_SUFFIX)]
            if temporaries and temporaries[0].stat().st_size > 0:
                break
            if proc.poll() is not None:
                pytest.fail("predict finished before it could be killed")
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
    orphans = [p for p in out.iterdir() if p.name.endswith(TMP_SUFFIX)]
    assert len(orphans) == 1 and orphans[0].name.startswith(".p.parquet.")
    assert not target.exists()
    # A fresh orphan is left alone (its writer may have just created it); an old one goes.
    small = write(tmp_path / "small.parquet", **{k: v[:10] for k, v in table.items()}, y=x[:10, 0])
    assert run_cli("predict", model, small, "-o", target, "-q").returncode == 0
    assert orphans[0].exists()
    _age(orphans[0], STALE_SECONDS + 5)
    assert run_cli("predict", model, small, "-o", target, "-q").returncode == 0
    assert not orphans[0].exists()
    assert sorted(p.name for p in out.iterdir()) == ["p.parquet"]


def test_only_our_own_stale_temporaries_are_swept(tmp_path):
    target = tmp_path / "model.json"
    ours_dead = tmp_path / f".model.json.dead{TMP_SUFFIX}"
    ours_live = tmp_path / f".model.json.live{TMP_SUFFIX}"
    ours_fresh = tmp_path / f".model.json.fresh{TMP_SUFFIX}"
    others = [
        tmp_path / ".model.json.abc123.tmp",  # an older naming: not provably ours
        tmp_path / f".other.json.x{TMP_SUFFIX}",  # another target's
        tmp_path / "model.json.bak",
    ]
    for path in [ours_dead, ours_live, ours_fresh, *others]:
        path.write_text("partial")
    for path in [ours_dead, ours_live, *others]:
        _age(path, STALE_SECONDS * 10)
    holder = os.open(ours_live, os.O_RDONLY)
    fcntl.flock(holder, fcntl.LOCK_EX)  # a live writer, as atomic_path holds it
    try:
        removed = sweep_stale_temporaries(tmp_path, "model.json")
        assert removed == [str(ours_dead)]
        write_text_atomic(target, "{}")
        assert target.read_text() == "{}"
        assert ours_live.exists() and ours_fresh.exists() and all(p.exists() for p in others)
    finally:
        os.close(holder)


def test_a_writer_holds_its_temporary_against_the_sweep(tmp_path):
    target = tmp_path / "model.json"
    with atomic_path(target) as tmp:
        tmp.write_text("{}")
        _age(tmp, STALE_SECONDS * 10)
        assert sweep_stale_temporaries(tmp_path, "model.json") == []
        assert tmp.exists()
    assert target.read_text() == "{}"


# ---------------------------------------------------------------------- the job lock
_TAKER = """
import os, sys
from streamreg.jobs.store import Store
store = Store(sys.argv[1])
for _ in range(int(sys.argv[2])):
    store.lock().release()
open(sys.argv[3], "w").close()
"""
_READER = """
import os, sys
path = os.path.join(sys.argv[1], "lock")
partial = seen = 0
while not os.path.exists(sys.argv[2]):
    try:
        with open(path, "rb") as handle:
            content = handle.read()
    except FileNotFoundError:
        continue
    seen += 1
    partial += not content.endswith(b"}\\n")
print(partial, seen)
"""


def test_a_lock_is_never_seen_without_its_content(tmp_path):
    """One process takes and releases the lock as fast as it can while another reads it: every
    lock read is complete (the content appears with the file). The old lock — create, then
    write — was caught empty or partial ~1,700 times in such a run, which is what made the
    job-lock test flaky ("an unknown process")."""
    state = tmp_path / "state"
    state.mkdir()
    done = tmp_path / "taker-done"
    (tmp_path / "taker.py").write_text(_TAKER)
    (tmp_path / "reader.py").write_text(_READER)
    reader = subprocess.Popen(
        [sys.executable, str(tmp_path / "reader.py"), str(state), str(done)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        taker = subprocess.run(
            [sys.executable, str(tmp_path / "taker.py"), str(state), "1000", str(done)],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert taker.returncode == 0, taker.stderr
    finally:
        done.touch()
        out, err = reader.communicate(timeout=60)
    partial, seen = (int(v) for v in out.split())
    assert seen > 0, err
    assert partial == 0
    assert [p.name for p in state.iterdir()] == []  # no temporary left behind


def test_a_stale_lock_is_replaced_whole(tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    (state / "lock").write_text(json.dumps({"pid": 999_999_999, "host": "gone", "started": "x"}))
    lock = Store(state).lock()
    try:
        assert lock.stale == {"pid": 999_999_999, "host": "gone", "started": "x"}
        assert json.loads((state / "lock").read_text())["pid"] == os.getpid()
        with pytest.raises(LockError, match=f"pid {os.getpid()}"):
            Store(state).lock()
    finally:
        lock.release()
    assert sorted(p.name for p in state.iterdir()) == []
