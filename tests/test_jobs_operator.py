"""Jobs as an operator relies on them: an emptied window withdraws the model (and says so),
``touch`` is not a change, ``solver = "auto"`` is accepted, outputs keep counting versions.

Oracles as in ``test_jobs``: ``streamreg.fit`` over the files a model should hold (bit for bit
with the exact solver, 1e-12 with cholesky).
"""

from __future__ import annotations

import json
import os
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from test_jobs import (
    assert_model_equals_fit,
    manifest,
    one_sentence,
    run_cli,
    write_job,
    write_part,
)

import streamreg
from streamreg.jobs import JobLog, load_job, run_job


def quiet_log() -> JobLog:
    return JobLog(stream=open(os.devnull, "w"))


def _age(paths, days: float) -> None:
    then = time.time() - days * 86400
    for path in paths:
        os.utime(path, (then, then))


# ---------------------------------------------------------------------- an emptied window
def test_a_window_that_empties_withdraws_the_model_and_says_so(tmp_path):
    data = tmp_path / "data"
    files = [write_part(data, i) for i in range(2)]
    _age(files, 40)  # ingested while the job had no window; a window is given later
    job_path = write_job(tmp_path, outputs={"summary": "out/summary.txt"})
    assert run_job(load_job(job_path)).status == "published"
    model = tmp_path / "out" / "model.json"
    assert model.exists() and (tmp_path / "out" / "summary.txt").exists()

    result = run_cli("run", job_path, "--window", "30d")
    assert result.returncode == 0, result.stderr
    said = result.stdout.strip()
    assert "no files are left in the window (30d)" in said.lower()
    assert f"the model at {model} was withdrawn" in said
    assert "model.v000001.json" in said
    assert not model.exists() and not (tmp_path / "out" / "summary.txt").exists()
    assert (tmp_path / "out" / "model.v000001.json").exists()  # the history stays
    facts = manifest(tmp_path / "state")
    assert facts["published"] is None and facts["withdrawn"]["version"] == 1
    assert facts["files"] == [] and facts["runs"][-1]["withdrawn_version"] == 1

    # Nothing is served silently afterwards, and nothing comes back by itself.
    windowed = load_job(job_path).with_options(window="30d")
    again = run_job(windowed, log=quiet_log())
    assert again.status == "nothing new" and not model.exists()

    # New data publish version 2: numbered files are never overwritten.
    fresh = write_part(data, 7)
    result = run_job(windowed, log=quiet_log())
    assert result.status == "published" and result.model_version == 2
    assert_model_equals_fit(model, [fresh])
    assert (tmp_path / "out" / "model.v000001.json").exists()


def test_an_empty_window_before_any_model_says_nothing_is_published(tmp_path):
    files = [write_part(tmp_path / "data", i) for i in range(2)]
    _age(files, 40)
    job_path = write_job(tmp_path)
    assert run_job(load_job(job_path)).status == "published"
    (tmp_path / "out" / "model.json").unlink()
    os.unlink(tmp_path / "out" / "model.v000001.json")
    facts = manifest(tmp_path / "state")
    facts["published"] = None
    (tmp_path / "state" / "manifest.json").write_text(json.dumps(facts))
    result = run_job(load_job(job_path).with_options(window="30d"), log=quiet_log())
    assert result.status == "no data"
    assert "no model is published at" in result.message


# ---------------------------------------------------------------------- touch
def test_touch_is_not_a_change(tmp_path):
    files = [write_part(tmp_path / "data", i) for i in range(3)]
    job_path = write_job(tmp_path)
    assert run_job(load_job(job_path)).status == "published"
    later = time.time() + 3600
    os.utime(files[1], (later, later))  # touch: same bytes, new mtime
    result = run_cli("run", job_path)
    assert result.returncode == 0, result.stderr
    assert "Nothing new" in result.stdout
    assert_model_equals_fit(tmp_path / "out" / "model.json", files)


def _plain(path, values):
    """A file whose size does not depend on its values (no compression, no dictionary)."""
    pq.write_table(
        pa.table({"x1": values, "x2": values * 2, "x3": values * 3, "y": values + 1}),
        path,
        compression="none",
        use_dictionary=False,
    )


def test_same_size_new_content_is_still_a_change(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    rng = np.random.default_rng(1)
    first = rng.normal(size=200)
    _plain(data / "a.parquet", first)
    write_part(data, 5)
    job_path = write_job(tmp_path)
    assert run_job(load_job(job_path)).status == "published"
    size = (data / "a.parquet").stat().st_size
    _plain(data / "a.parquet", rng.normal(size=200))  # other values, same size
    assert (data / "a.parquet").stat().st_size == size
    later = time.time() + 3600
    os.utime(data / "a.parquet", (later, later))
    result = run_cli("run", job_path)
    assert result.returncode == 2
    assert "changed since it was ingested" in one_sentence(result.stderr)


# ---------------------------------------------------------------------- solver auto
def test_job_accepts_solver_auto(tmp_path):
    files = [write_part(tmp_path / "data", i) for i in range(3)]
    job_path = write_job(tmp_path, model={"solver": "auto"})
    result = run_job(load_job(job_path), log=quiet_log())
    assert result.status == "published"
    model = streamreg.load(tmp_path / "out" / "model.json")
    expected = streamreg.fit(sorted(map(str, files)), target="y", solver="cholesky")
    np.testing.assert_allclose(model.coef_, expected.coef_, rtol=1e-12)
    assert not model.warnings_


def test_job_with_auto_warns_past_the_auto_threshold(tmp_path):
    rng = np.random.default_rng(11)
    for i in range(2):
        x1 = rng.normal(size=500)
        x2 = x1 + 1e-3 * rng.normal(size=500)  # nearly collinear: cond ~ 1e6
        y = 1 + x1 + x2 + rng.normal(size=500)
        path = tmp_path / "data" / f"p{i}.parquet"
        path.parent.mkdir(exist_ok=True)
        pq.write_table(pa.table({"x1": x1, "x2": x2, "y": y}), path)
    job_path = write_job(tmp_path, model={"solver": "auto"})
    log = quiet_log()
    assert run_job(load_job(job_path), log=log).status == "published"
    model = streamreg.load(tmp_path / "out" / "model.json")
    assert model.scaled_condition_number_ > 1e5
    warning = next(w for w in model.warnings_ if w.startswith("auto:"))
    assert 'model.solver = "exact"' in warning
    assert any(r["event"] == "model_warning" and r["message"] == warning for r in log.records)
