"""Batch jobs: incremental, resumable, exactly once; locks, bad input, object storage, watch mode.

Oracles: ``streamreg.fit`` over all the files a job has seen (the ``exact``
solver's state does not depend on how the rows were split, so the job's model
must equal it bit for bit; ``cholesky`` to 1e-12), an uninterrupted run of the
same job (bit for bit for every solver), and byte-for-byte snapshots of the
state store and outputs where a failure must leave them untouched. The real
console script runs in a subprocess wherever an exit code or message is checked;
object storage is a real S3-compatible server (moto) on 127.0.0.1.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import free_port, moto_s3_server

import streamreg
from streamreg.errors import InputError, LockError, ModelFormatError
from streamreg.io.sources import Source
from streamreg.jobs import JobLog, run_job, watch_job
from streamreg.jobs.spec import EXAMPLE, load_job, parse_job
from streamreg.jobs.store import Store

BATCH = 50


# ---------------------------------------------------------------------- helpers
def write_part(
    folder: Path,
    i: int,
    *,
    rows: int = 400,
    row_group: int = 100,
    seed: int = 0,
    name: str | None = None,
) -> Path:
    """Part ``i``: y = 1 + 1.5·x1 − 0.2·x2 + 4·x3 + noise, offset columns, ~1% nulls in x1."""
    rng = np.random.default_rng([seed, i])
    x = rng.normal(size=(rows, 3)) * [1.0, 10.0, 0.1] + [0.0, 100.0, 5.0]
    y = 1 + x @ np.array([1.5, -0.2, 4.0]) + rng.normal(size=rows)
    path = folder / (name or f"part-{i:03d}.parquet")
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.table(
        {
            "x1": pa.array(x[:, 0], mask=rng.random(rows) < 0.01),
            "x2": x[:, 1],
            "x3": x[:, 2],
            "y": y,
        }
    )
    pq.write_table(table, path, row_group_size=row_group)
    return path


def toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return json.dumps(value)


def write_job(folder: Path, *, inputs=("data/",), name: str = "job.toml", **sections) -> Path:
    """A job file; ``sections`` override keys of model, state, outputs, run, storage."""
    base = {
        "model": {"target": "y", "solver": "exact"},
        "state": {"location": "state/", "checkpoint_row_groups": 1, "batch_size": BATCH},
        "outputs": {"model": "out/model.json"},
        "run": {},
        "storage": {},
    }
    for key, values in sections.items():
        base[key] = {**base[key], **values}
    lines = [f"inputs = {toml_value(list(inputs))}"]
    for section, values in base.items():
        if values:
            lines.append(f"\n[{section}]")
            lines += [f"{k} = {toml_value(v)}" for k, v in values.items() if v is not None]
    path = folder / name
    path.write_text("\n".join(lines) + "\n")
    return path


def run_cli(*args, cwd=None, timeout=120):
    return subprocess.run(
        ["streamreg", *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=timeout
    )


def reference(files, solver: str = "exact"):
    return streamreg.fit(sorted(str(f) for f in files), target="y", solver=solver, batch_size=BATCH)


def assert_model_equals_fit(model_path, files, solver: str = "exact"):
    got = streamreg.load(model_path)
    ref = reference(files, solver)
    assert got.rows_read_ == ref.rows_read_
    assert got.rows_dropped_by_column_ == ref.rows_dropped_by_column_
    assert got.n_samples_ == ref.n_samples_
    if solver == "exact":
        assert got.state_ == ref.state_
        np.testing.assert_array_equal(got.coef_, ref.coef_)
        assert got.intercept_ == ref.intercept_
        np.testing.assert_array_equal(got.bse, ref.bse)
    else:
        np.testing.assert_allclose(got.coef_, ref.coef_, rtol=1e-12)
        np.testing.assert_allclose(got.intercept_, ref.intercept_, rtol=1e-12)
        np.testing.assert_allclose(got.bse, ref.bse, rtol=1e-10)
    return got


def snapshot(*folders: Path) -> dict:
    """Every file under ``folders`` with its bytes (what must stay untouched)."""
    out = {}
    for folder in folders:
        for path in sorted(Path(folder).rglob("*")):
            if path.is_file():
                out[str(path)] = path.read_bytes()
    return out


def manifest(state: Path) -> dict:
    return json.loads((state / "manifest.json").read_text())


def one_sentence(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    assert lines[0].startswith("streamreg: error: ")
    return lines[0]


# ---------------------------------------------------------------------- the spec
def test_job_init_writes_a_spec_that_parses_and_validates(tmp_path):
    result = run_cli("job", "init", tmp_path / "job.toml")
    assert result.returncode == 0, result.stderr
    job = load_job(tmp_path / "job.toml")
    assert job.inputs == (str(tmp_path / "data") + os.sep,)
    assert job.state == str(tmp_path / "state") + os.sep
    assert job.model == str(tmp_path / "out" / "model.json")
    assert (job.target, job.solver, job.on_change, job.interval) == ("y", "cholesky", "error", 60.0)
    assert (tmp_path / "job.toml").read_text() == EXAMPLE
    again = run_cli("job", "init", tmp_path / "job.toml")
    assert again.returncode == 2
    assert "exists; pass --force" in one_sentence(again.stderr)


@pytest.mark.parametrize(
    "edit, message",
    [
        (
            {"state": {"batch_size": "big"}},
            "'state.batch_size' must be an integer, got a string ('big')",
        ),
        (
            {"state": {"checkpoint_row_groups": -1}},
            "'state.checkpoint_row_groups' must be at least 0, got -1",
        ),
        (
            {"model": {"solver": "sgd"}},
            "'model.solver' must be one of auto, cholesky, qr, exact; got 'sgd'",
        ),
        (
            {"model": {"fit_intercept": "yes"}},
            "'model.fit_intercept' must be true or false, got a string",
        ),
        (
            {"model": {"features": "x1"}, "outputs": {"keep": [1, 2]}},
            "'outputs.keep' must be a list of strings, got a list",
        ),
        ({"model": {"featurs": ["x1"]}}, "unknown key 'model.featurs'"),
        ({"run": {"window": "thirty days"}}, "'run.window' must be a duration such as 90s"),
        (
            {"run": {"interval": True}},
            "'run.interval' must be a duration such as \"60s\", got a boolean",
        ),
    ],
)
def test_spec_errors_name_the_key_and_the_expected_type(tmp_path, edit, message):
    path = write_job(tmp_path, **edit)
    with pytest.raises(InputError) as err:
        load_job(path)
    assert message in str(err.value)
    assert str(path) in str(err.value)


def test_spec_missing_keys_and_bad_toml(tmp_path):
    with pytest.raises(InputError, match="the key 'model.target' is required"):
        parse_job('inputs = ["d"]\n[model]\n[state]\nlocation = "s"\n[outputs]\nmodel = "m.json"\n')
    with pytest.raises(InputError, match="is not valid TOML"):
        parse_job("inputs = [\n")
    with pytest.raises(InputError, match="'inputs' must be a list of strings, got an integer"):
        parse_job(
            'inputs = 3\n[model]\ntarget = "y"\n[state]\nlocation = "s"\n[outputs]\nmodel = '
            '"m.json"\n'
        )


# ---------------------------------------------------------------------- incremental runs
@pytest.mark.parametrize("solver", ["exact", "cholesky"])
def test_day_two_equals_one_fit_over_all_files(tmp_path, solver):
    data = tmp_path / "data"
    day1 = [write_part(data, i) for i in range(5)]
    job = load_job(write_job(tmp_path, model={"solver": solver}))
    first = run_job(job)
    assert first.status == "published" and len(first.files_ingested) == 5
    assert_model_equals_fit(tmp_path / "out" / "model.json", day1, solver)

    again = run_job(job)
    assert again.status == "nothing new" and again.files_ingested == []

    day2 = [write_part(data, i) for i in range(5, 9)]
    second = run_job(job)
    assert second.status == "published" and second.files_ingested == sorted(str(p) for p in day2)
    model = assert_model_equals_fit(tmp_path / "out" / "model.json", day1 + day2, solver)
    facts = manifest(tmp_path / "state")
    assert facts["rows"] == 9 * 400 == model.rows_read_
    assert [r["files_ingested"] for r in facts["runs"]] == [5, 4]
    assert facts["published"]["version"] == 2
    v1 = streamreg.load(tmp_path / "out" / "model.v000001.json")
    assert v1.rows_read_ == 5 * 400
    assert (tmp_path / "out" / "model.v000002.json").read_bytes() == (
        tmp_path / "out" / "model.json"
    ).read_bytes()


def test_changed_file_is_an_error_naming_it_then_replace_subtracts_it(tmp_path):
    data = tmp_path / "data"
    files = [write_part(data, i) for i in range(4)]
    job_path = write_job(tmp_path)
    assert run_job(load_job(job_path)).status == "published"
    before = snapshot(tmp_path / "state", tmp_path / "out")

    write_part(data, 99, name="part-002.parquet", rows=300)  # new content under an ingested name
    result = run_cli("run", job_path)
    assert result.returncode == 2
    line = one_sentence(result.stderr)
    assert str(data / "part-002.parquet") in line and "changed since it was ingested" in line
    assert "--on-change replace" in line
    assert snapshot(tmp_path / "state", tmp_path / "out") == before

    result = run_cli("run", job_path, "--on-change", "replace", "--quiet")
    assert result.returncode == 0, result.stderr
    assert_model_equals_fit(
        tmp_path / "out" / "model.json", files
    )  # part-002 is now the new content
    facts = manifest(tmp_path / "state")
    assert facts["rows"] == 3 * 400 + 300
    assert facts["runs"][-1]["files_replaced"] == 1
    assert len(list((tmp_path / "state" / "states").iterdir())) == 4  # the old state was removed


def test_window_expiry_subtracts_old_files(tmp_path):
    data = tmp_path / "data"
    files = [write_part(data, i) for i in range(6)]
    old = time.time() - 40 * 86400
    for path in files[:2]:
        os.utime(path, (old, old))
    job = load_job(write_job(tmp_path))
    assert run_job(job).status == "published"
    assert_model_equals_fit(tmp_path / "out" / "model.json", files)

    windowed = job.with_options(window="30d")
    plan = run_job(windowed, dry_run=True).plan
    assert sorted(e["url"] for e in plan.expired) == [str(p) for p in files[:2]]
    result = run_job(windowed)
    assert result.status == "published"
    assert_model_equals_fit(tmp_path / "out" / "model.json", files[2:])
    assert manifest(tmp_path / "state")["rows"] == 4 * 400
    assert len(list((tmp_path / "state" / "states").iterdir())) == 4
    assert run_job(windowed).status == "nothing new"  # old files stay out, and are not re-ingested


def test_window_by_hive_partition_date(tmp_path):
    today = dt.datetime.now(dt.timezone.utc).date()
    recent, old = [], []
    for days, bucket in ((1, recent), (3, recent), (45, old), (60, old)):
        folder = tmp_path / "data" / f"date={today - dt.timedelta(days=days)}"
        bucket.append(write_part(folder, days))
    job = load_job(write_job(tmp_path, run={"window": "30d", "window_key": "date"}))
    result = run_job(job)
    assert result.status == "published"
    assert sorted(f.path for f in result.plan.outside_window) == sorted(str(p) for p in old)
    assert_model_equals_fit(tmp_path / "out" / "model.json", recent)


def test_moved_files_are_recognized_not_counted_twice(tmp_path):
    files = [write_part(tmp_path / "data", i) for i in range(3)]
    job = load_job(write_job(tmp_path))
    run_job(job)
    (tmp_path / "data" / "2026").mkdir()
    moved = tmp_path / "data" / "2026" / files[1].name
    os.rename(files[1], moved)
    log = JobLog(stream=open(os.devnull, "w"))
    result = run_job(job, log=log)
    assert result.status == "published" and result.files_ingested == []
    assert any(r["event"] == "moved" for r in log.records)
    assert_model_equals_fit(tmp_path / "out" / "model.json", [files[0], moved, files[2]])
    assert manifest(tmp_path / "state")["rows"] == 3 * 400


def test_changed_model_spec_is_refused(tmp_path):
    write_part(tmp_path / "data", 0)
    run_job(load_job(write_job(tmp_path)))
    write_part(tmp_path / "data", 1)
    before = snapshot(tmp_path / "state", tmp_path / "out")
    for edit, what in (
        ({"target": "x3"}, "target"),
        ({"features": ["x1", "x2"]}, "features"),
        ({"solver": "qr"}, "solver"),
    ):
        with pytest.raises(ModelFormatError, match=f"was built for {what}"):
            run_job(load_job(write_job(tmp_path, model=edit)))
    assert snapshot(tmp_path / "state", tmp_path / "out") == before


# ---------------------------------------------------------------------- resuming
class _StopAfter(JobLog):
    """A log that asks the run to stop after ``n`` checkpoints (a deterministic SIGTERM)."""

    def __init__(self, stop: threading.Event, n: int):
        super().__init__(stream=open(os.devnull, "w"))
        self.stop, self.n = stop, n

    def _emit(self, level, event, message, fields):
        super()._emit(level, event, message, fields)
        if event == "checkpoint":
            self.n -= 1
            if self.n == 0:
                self.stop.set()


@pytest.mark.parametrize("solver", ["cholesky", "qr", "exact"])
def test_stopped_and_resumed_run_is_bit_identical(tmp_path, solver):
    for i in range(3):
        write_part(tmp_path / "data", i, rows=1000)
    whole = load_job(
        write_job(
            tmp_path,
            name="whole.toml",
            model={"solver": solver},
            state={"location": "whole-state/", "checkpoint_row_groups": 3},
            outputs={"model": "whole/model.json"},
        )
    )
    assert run_job(whole).status == "published"

    job = load_job(
        write_job(tmp_path, model={"solver": solver}, state={"checkpoint_row_groups": 3})
    )
    for n in (2, 2):  # stop mid-file 0 (after its 2nd checkpoint), then mid-file 1
        stop = threading.Event()
        result = run_job(job, stop=stop, log=_StopAfter(stop, n))
        assert result.status == "stopped"
        assert list((tmp_path / "state" / "partial").iterdir())
    log = JobLog(stream=open(os.devnull, "w"))
    assert run_job(job, log=log).status == "published"
    assert any(r["event"] == "resumed" for r in log.records)
    assert (tmp_path / "out" / "model.json").read_bytes() == (
        tmp_path / "whole" / "model.json"
    ).read_bytes()
    assert manifest(tmp_path / "state")["rows"] == 3000
    assert not list((tmp_path / "state" / "partial").iterdir())


def test_crash_between_file_states_and_manifest_adopts_them(tmp_path, monkeypatch):
    files = [write_part(tmp_path / "data", i) for i in range(4)]
    job = load_job(write_job(tmp_path))
    from streamreg.jobs import run as jobs

    def crash(*args, **kwargs):
        raise RuntimeError("power cut")

    with monkeypatch.context() as patch:
        patch.setattr(jobs._Run, "_publish", crash)
        with pytest.raises(RuntimeError):
            run_job(job)
    assert not (tmp_path / "state" / "manifest.json").exists()
    assert len(list((tmp_path / "state" / "states").iterdir())) == 4
    log = JobLog(stream=open(os.devnull, "w"))
    assert run_job(job, log=log).status == "published"
    assert [r["event"] for r in log.records].count("adopted") == 4
    assert_model_equals_fit(tmp_path / "out" / "model.json", files)
    assert manifest(tmp_path / "state")["rows"] == 4 * 400


def test_source_from_row_group_yields_the_tail_of_a_full_scan(tmp_path):
    path = write_part(tmp_path, 0, rows=1000, row_group=150)
    src = Source.resolve(path)
    full = [(c.offset, c.batch) for c in src.batches(["x1", "y"], 64)]
    tail = [(c.offset, c.batch) for c in src.from_row_group(str(path), 3).batches(["x1", "y"], 64)]
    start = src.files[0].row_group_starts[3]
    expected = [(o, b) for o, b in full if o >= start]
    assert [o for o, _ in tail] == [o for o, _ in expected]
    assert all(a.equals(b) for (_, a), (_, b) in zip(tail, expected))
    ends = {o + b.num_rows for o, b in full}
    assert set(src.files[0].row_group_starts[1:]) <= ends  # batches never span row groups


# ---------------------------------------------------------------------- locks
def test_two_runs_started_together_one_gets_the_lock(tmp_path):
    files = [write_part(tmp_path / "data", i, rows=2000) for i in range(6)]
    job_path = write_job(tmp_path, state={"batch_size": 20})
    procs = [
        subprocess.Popen(
            ["streamreg", "run", str(job_path), "--quiet"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outcomes = sorted((p.wait(timeout=120), p.stderr.read()) for p in procs)
    assert [code for code, _ in outcomes] == [0, 3], outcomes
    line = one_sentence(outcomes[1][1])
    assert (
        "another run of this job holds the lock" in line and "pid " in line and "try again" in line
    )
    assert_model_equals_fit(tmp_path / "out" / "model.json", files)
    assert manifest(tmp_path / "state")["rows"] == 6 * 2000
    assert not (tmp_path / "state" / "lock").exists()


def test_lock_held_gives_exit_3_and_touches_nothing(tmp_path):
    write_part(tmp_path / "data", 0)
    job_path = write_job(tmp_path)
    assert run_job(load_job(job_path)).status == "published"
    write_part(tmp_path / "data", 1)
    lock = Store(tmp_path / "state").lock()
    try:
        before = snapshot(tmp_path / "state", tmp_path / "out")
        result = run_cli("run", job_path)
        assert result.returncode == 3
        assert f"holds the lock {tmp_path / 'state' / 'lock'} (pid {os.getpid()}" in one_sentence(
            result.stderr
        )
        assert snapshot(tmp_path / "state", tmp_path / "out") == before
        with pytest.raises(LockError):
            run_job(load_job(job_path))
    finally:
        lock.release()
    assert run_job(load_job(job_path)).status == "published"


def test_stale_lock_of_a_dead_process_is_taken_over(tmp_path):
    files = [write_part(tmp_path / "data", 0)]
    job_path = write_job(tmp_path)
    dead = subprocess.Popen(["true"])
    dead.wait()
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "lock").write_text(
        json.dumps(
            {"pid": dead.pid, "host": socket.gethostname(), "started": "2026-01-01T00:00:00+00:00"}
        )
    )
    result = run_cli("run", job_path)
    assert result.returncode == 0, result.stderr
    assert (
        f"took over the stale lock {tmp_path / 'state' / 'lock'} of pid {dead.pid}" in result.stderr
    )
    assert_model_equals_fit(tmp_path / "out" / "model.json", files)


# ----------------------------------------------------------- bad input leaves everything untouched
@pytest.fixture
def day_one(tmp_path):
    """A job that ran once over 3 files, and a 4th good file waiting."""
    for i in range(3):
        write_part(tmp_path / "data", i)
    job_path = write_job(tmp_path, outputs={"summary": "out/summary.txt"})
    assert run_job(load_job(job_path)).status == "published"
    write_part(tmp_path / "data", 3)
    return tmp_path, job_path


def _assert_refused_untouched(tmp_path, job_path, *phrases, code=2):
    before = snapshot(tmp_path / "state", tmp_path / "out")
    result = run_cli("run", job_path)
    assert result.returncode == code, result.stderr
    line = one_sentence(result.stderr)
    for phrase in phrases:
        assert phrase in line
    assert snapshot(tmp_path / "state", tmp_path / "out") == before
    return line


def test_truncated_state_file_is_refused(day_one):
    tmp_path, job_path = day_one
    state_file = sorted((tmp_path / "state" / "states").iterdir())[1]
    state_file.write_bytes(state_file.read_bytes()[:200])
    _assert_refused_untouched(
        tmp_path, job_path, str(state_file), "is not a readable state file", "left as it is"
    )


def test_truncated_manifest_is_refused(day_one):
    tmp_path, job_path = day_one
    path = tmp_path / "state" / "manifest.json"
    path.write_bytes(path.read_bytes()[:300])
    _assert_refused_untouched(tmp_path, job_path, str(path), "is not a readable job manifest")


def test_manifest_of_another_version_is_refused(day_one):
    tmp_path, job_path = day_one
    path = tmp_path / "state" / "manifest.json"
    data = json.loads(path.read_text())
    data["format_version"] = 99
    path.write_text(json.dumps(data))
    _assert_refused_untouched(tmp_path, job_path, "manifest format version 99")


def test_truncated_parquet_file_is_refused(day_one):
    tmp_path, job_path = day_one
    bad = write_part(tmp_path / "data", 4)
    bad.write_bytes(bad.read_bytes()[:1000])
    _assert_refused_untouched(tmp_path, job_path, str(bad), "is not a readable Parquet file")


def test_job_spec_with_a_wrong_type_is_refused(day_one):
    tmp_path, job_path = day_one
    job_path.write_text(job_path.read_text().replace("batch_size = 50", 'batch_size = "fifty"'))
    _assert_refused_untouched(
        tmp_path, job_path, "'state.batch_size' must be an integer, got a string"
    )


def test_unreachable_bucket_is_refused(day_one):
    pytest.importorskip("s3fs")
    tmp_path, job_path = day_one
    port = free_port()  # nothing listens there
    write_job(
        tmp_path,
        inputs=["s3://lake/events/"],
        outputs={"summary": "out/summary.txt"},
        storage={
            "endpoint_url": f"http://127.0.0.1:{port}",
            "key": "testing",
            "secret": "testing",
            "config_kwargs": {"connect_timeout": 1, "retries": {"max_attempts": 1}},
        },
    )
    _assert_refused_untouched(
        tmp_path, job_path, "cannot list s3://lake/events/", "Could not connect"
    )


def test_dry_run_lists_and_writes_nothing(tmp_path):
    files = [write_part(tmp_path / "data", i) for i in range(3)]
    job_path = write_job(tmp_path)
    result = run_cli("run", job_path, "--dry-run")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == "Would ingest 3 new files (1,200 rows):"
    assert [line.split()[0] for line in result.stdout.splitlines()[1:]] == [str(p) for p in files]
    assert not (tmp_path / "state").exists() and not (tmp_path / "out").exists()

    assert run_job(load_job(job_path)).status == "published"
    write_part(tmp_path / "data", 7)
    write_part(tmp_path / "data", 9, name="part-001.parquet", rows=100)
    before = snapshot(tmp_path)
    result = run_cli("run", job_path, "--dry-run")
    assert result.returncode == 0, result.stderr
    assert "Would ingest 1 new files (400 rows):" in result.stdout
    assert (
        f"Changed since ingested (1; an error unless --on-change replace):\n  {files[1]}"
        in result.stdout
    )
    assert snapshot(tmp_path) == before


def test_json_logs_and_result(tmp_path):
    write_part(tmp_path / "data", 0)
    result = run_cli("run", write_job(tmp_path), "--log-format", "json")
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in result.stderr.splitlines()]
    assert {"time", "level", "event", "message"} <= set(events[0])
    assert [e["event"] for e in events][-2:] == ["ingested", "published"]
    assert json.loads(result.stdout)["status"] == "published"
    again = run_cli("run", tmp_path / "job.toml", "--log-format", "json")
    assert json.loads(again.stdout)["status"] == "nothing new"
    bad = run_cli("run", tmp_path / "missing.toml", "--log-format", "json")
    assert bad.returncode == 2
    assert json.loads(bad.stderr)["event"] == "failed" and json.loads(bad.stderr)["exit_code"] == 2


def test_numbered_versions_are_kept_and_pruned(tmp_path):
    job = load_job(write_job(tmp_path, outputs={"keep_versions": 2}))
    for i in range(3):
        write_part(tmp_path / "data", i)
        assert run_job(job).model_version == i + 1
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == ["model.json", "model.v000002.json", "model.v000003.json"]


def test_predictions_and_summary_outputs(tmp_path):
    write_part(tmp_path / "data", 0)
    job = load_job(
        write_job(
            tmp_path,
            outputs={
                "summary": "out/summary.txt",
                "predictions": "out/pred.parquet",
                "keep": ["x2"],
            },
        )
    )
    run_job(job)
    write_part(tmp_path / "data", 1, rows=250)
    run_job(job)
    model = streamreg.load(tmp_path / "out" / "model.json")
    table = pq.read_table(tmp_path / "out" / "pred.parquet")
    assert table.column_names == ["x2", "prediction"] and table.num_rows == 250
    assert "OLS Regression Results" in (tmp_path / "out" / "summary.txt").read_text()
    new = pq.read_table(tmp_path / "data" / "part-001.parquet").to_pandas()
    np.testing.assert_allclose(
        table.column("prediction").to_numpy(zero_copy_only=False), model.predict(new), rtol=1e-12
    )


# ---------------------------------------------------------------------- object storage
@pytest.fixture(scope="module")
def s3_server():
    with moto_s3_server() as endpoint:
        yield endpoint


def test_s3_job_end_to_end(tmp_path, s3_server):
    import boto3

    client = boto3.client("s3", endpoint_url=s3_server)
    client.create_bucket(Bucket="lake")
    local = [write_part(tmp_path / "data", i) for i in range(6)]
    for path in local[:4]:
        client.upload_file(str(path), "lake", f"events/day=1/{path.name}")
    job_path = write_job(
        tmp_path,
        inputs=["s3://lake/events/"],
        model={"exclude": ["day"]},
        state={"location": "s3://lake/jobs/demo/"},
        outputs={"model": "s3://lake/out/model.json", "summary": "s3://lake/out/summary.txt"},
        storage={"endpoint_url": s3_server},
    )
    result = run_cli("run", job_path)
    assert result.returncode == 0, result.stderr
    assert "published model version 1" in result.stdout

    def fetch(key, to):
        client.download_file("lake", key, str(to))
        return to

    assert_model_equals_fit(fetch("out/model.json", tmp_path / "m1.json"), local[:4])
    # Sources read s3:// URLs through fsspec: one fit over the bucket equals one over local copies.
    remote = Source.resolve("s3://lake/events/", storage_options={"endpoint_url": s3_server})
    assert [f.path for f in remote.files] == [f"s3://lake/events/day=1/{p.name}" for p in local[:4]]
    assert (
        streamreg.fit(remote, target="y", exclude="day", solver="exact", batch_size=BATCH).state_
        == reference(local[:4]).state_
    )
    assert run_job(load_job(job_path)).status == "nothing new"
    assert (
        json.loads(client.get_object(Bucket="lake", Key="jobs/demo/manifest.json")["Body"].read())[
            "rows"
        ]
        == 1600
    )

    for path in local[4:]:  # day 2
        client.upload_file(str(path), "lake", f"events/day=2/{path.name}")
    result = run_job(load_job(job_path))
    assert result.status == "published" and len(result.files_ingested) == 2
    assert_model_equals_fit(fetch("out/model.json", tmp_path / "m2.json"), local)
    keys = {o["Key"] for o in client.list_objects_v2(Bucket="lake")["Contents"]}
    assert {"out/model.v000001.json", "out/model.v000002.json", "out/summary.txt"} <= keys
    assert len([k for k in keys if k.startswith("jobs/demo/states/")]) == 6
    assert "jobs/demo/lock" not in keys

    # The lock works there too: a held lock stops a second run with exit code 3.
    lock = Store("s3://lake/jobs/demo/", {"endpoint_url": s3_server}).lock()
    try:
        result = run_cli("run", job_path)
        assert result.returncode == 3
        assert "holds the lock s3://lake/jobs/demo/lock" in one_sentence(result.stderr)
    finally:
        lock.release()

    # A bucket that does not exist on a server that does.
    missing = write_job(
        tmp_path,
        name="missing.toml",
        inputs=["s3://nowhere/events/"],
        state={"location": "state-missing/"},
        storage={"endpoint_url": s3_server},
    )
    with pytest.raises(InputError, match="s3://nowhere/events/"):
        run_job(load_job(missing))


# ---------------------------------------------------------------------- watch mode
def _read_events(proc, events: list, done: threading.Event):
    for line in proc.stderr:
        try:
            events.append(json.loads(line))
        except ValueError:
            events.append({"event": "text", "message": line})
    done.set()


def _wait_for(predicate, timeout: float = 60.0):
    """Poll until ``predicate()`` holds (a guard against hanging, not a timing assertion)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("timed out waiting")


def test_watch_mode_publishes_new_files_and_stops_cleanly_on_sigterm(tmp_path):
    data = tmp_path / "data"
    files = [write_part(data, i) for i in range(2)]
    job_path = write_job(
        tmp_path, state={"checkpoint_row_groups": 10_000, "batch_size": 20}, run={"interval": "1s"}
    )
    proc = subprocess.Popen(
        ["streamreg", "run", str(job_path), "--watch", "--log-format", "json"],
        stderr=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    events: list = []
    done = threading.Event()
    threading.Thread(target=_read_events, args=(proc, events, done), daemon=True).start()
    try:
        _wait_for(lambda: any(e["event"] == "published" for e in events))
        assert_model_equals_fit(tmp_path / "out" / "model.json", files)

        # Files dropped in while it runs are in the model published by the first or
        # second cycle that starts after the drop (within two intervals).
        seen = len(events)
        for i in (2, 3):
            path = write_part(tmp_path / "incoming", i)
            os.rename(path, data / path.name)  # land whole, as a writer would
            files.append(data / path.name)
        published = _wait_for(lambda: [e for e in events[seen:] if e["event"] == "published"])
        cycles_before = [
            e for e in events[seen : events.index(published[0])] if e["event"] == "cycle"
        ]
        assert 1 <= len(cycles_before) <= 2
        assert published[0]["files_total"] == 4
        assert_model_equals_fit(tmp_path / "out" / "model.json", files)
        versions = sorted(p.name for p in (tmp_path / "out").iterdir())
        assert versions == ["model.json", "model.v000001.json", "model.v000002.json"]

        # SIGTERM while a big file is being read: it is checkpointed, and the service ends (exit 0).
        seen = len(events)
        big = write_part(tmp_path / "incoming", 4, rows=40_000, row_group=500)
        os.rename(big, data / big.name)
        files.append(data / big.name)
        _wait_for(
            lambda: any(
                e["event"] == "reading" and e["file"] == str(data / big.name) for e in events[seen:]
            )
        )
        time.sleep(0.3)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    done.wait(10)
    names = [e["event"] for e in events[seen:]]
    assert "checkpoint" in names and names[-1] == "stopped", names
    checkpoint = [e for e in events[seen:] if e["event"] == "checkpoint"][-1]
    assert 0 < checkpoint["row_group"] < 80
    assert len(list((tmp_path / "state" / "partial").iterdir())) == 1

    # The next start continues at that row group and ends where an uninterrupted run would.
    result = run_cli("run", job_path, "--log-format", "json")
    assert result.returncode == 0, result.stderr
    resumed = [json.loads(line) for line in result.stderr.splitlines() if '"resumed"' in line]
    assert resumed and resumed[0]["row_group"] == checkpoint["row_group"]
    assert_model_equals_fit(tmp_path / "out" / "model.json", files)
    assert manifest(tmp_path / "state")["rows"] == 4 * 400 + 40_000


def test_watch_job_in_process_loops_and_logs_failures(tmp_path):
    write_part(tmp_path / "data", 0)
    job = load_job(write_job(tmp_path, run={"interval": "0.05s"}))
    log = JobLog(stream=open(os.devnull, "w"))
    (tmp_path / "data" / "zz-broken.parquet").write_bytes(b"not parquet")
    watch_job(job, log=log, stop=threading.Event(), max_cycles=2)
    failures = [r for r in log.records if r["event"] == "run_failed"]
    assert (
        len(failures) == 2
        and "zz-broken.parquet is not a readable Parquet file" in failures[0]["message"]
    )
    os.unlink(tmp_path / "data" / "zz-broken.parquet")
    shutil.rmtree(tmp_path / "state", ignore_errors=True)
    watch_job(job, log=log, stop=threading.Event(), max_cycles=1)
    assert (tmp_path / "out" / "model.json").exists()
