"""Scheduled jobs with a penalty or a [cv] table: every file keeps its fold states beside its
plain state, every run re-cross-validates the merged fold states and publishes the chosen
model — the same as streamreg.cv over all files, bit for bit with the exact state, through
new files, stops and resumes."""

from __future__ import annotations

import json
import os
import threading

import numpy as np
import pytest
from test_jobs import _StopAfter, manifest, snapshot, toml_value, write_part
from test_jobs import write_job as write_plain_job

import streamreg
from streamreg import InputError, ModelFormatError
from streamreg.jobs import JobLog, load_job, run_job

CV = {"folds": 4, "l1_ratio": [0.5, 1.0], "alphas": 20}


def write_job(folder, *, cv=None, **sections):
    """A job file (tests/test_jobs.py's) with a [cv] table when ``cv`` is given."""
    path = write_plain_job(folder, **sections)
    if cv is not None:
        lines = [f"{k} = {toml_value(v)}" for k, v in cv.items()]
        path.write_text(path.read_text() + "\n[cv]\n" + "\n".join(lines) + "\n")
    return path


def files_of(tmp_path):
    return sorted(str(p) for p in (tmp_path / "data").glob("*.parquet"))


def reference_cv(tmp_path, **options):
    return streamreg.cv(
        files_of(tmp_path),
        target="y",
        l1_ratio=[0.5, 1.0],
        folds=4,
        alphas=20,
        solver="exact",
        batch_size=50,
        **options,
    )


def test_cv_job_equals_cv_over_all_files_and_refits_after_each_run(tmp_path):
    for i in range(2):
        write_part(tmp_path / "data", i)
    job = load_job(write_job(tmp_path, cv=CV))
    assert run_job(job).status == "published"
    model = streamreg.load(tmp_path / "out" / "model.json")
    expected = reference_cv(tmp_path)
    assert model.state_ == expected.best_model_.state_  # exact: the same rows, same bits
    np.testing.assert_array_equal(streamreg.CVResult(model).mse_path_, expected.mse_path_)
    np.testing.assert_array_equal(model.coef_, expected.coef_)
    doc = json.loads(next((tmp_path / "state" / "states").iterdir()).read_text())
    assert doc["folds"]["n_folds"] == 4 and doc["state"]["format"] == "streamreg.exact_state"
    old_states = snapshot(tmp_path / "state" / "states")

    write_part(tmp_path / "data", 2)  # day two: one new file, the path is cross-validated again
    result = run_job(job)
    assert result.status == "published" and len(result.files_ingested) == 1
    again = streamreg.load(tmp_path / "out" / "model.json")
    expected = reference_cv(tmp_path)
    np.testing.assert_array_equal(streamreg.CVResult(again).mse_path_, expected.mse_path_)
    assert (
        again.cv_["alpha"] == expected.alpha_
        and again.n_samples_ == expected.best_model_.n_samples_
    )
    now = snapshot(tmp_path / "state" / "states")
    assert all(now[path] == data for path, data in old_states.items())  # old folds untouched
    summary = again.summary()
    assert "Cross-validation: 4 folds" in summary and "p values" in summary


def test_keyed_cv_job_with_one_standard_error_rule(tmp_path, rng):
    for i in range(3):
        write_part(tmp_path / "data", i, rows=300)
    job = load_job(
        write_job(tmp_path, model={"solver": "cholesky"}, cv={**CV, "select": "1se", "seed": 3})
    )
    assert run_job(job).status == "published"
    model = streamreg.load(tmp_path / "out" / "model.json")
    expected = streamreg.cv(
        files_of(tmp_path), target="y", l1_ratio=[0.5, 1.0], folds=4, alphas=20, seed=3,
        select="1se", batch_size=50,
    )  # fmt: skip
    result = streamreg.CVResult(model)
    np.testing.assert_allclose(result.mse_path_, expected.mse_path_, rtol=1e-10)
    assert result.alpha_ == pytest.approx(expected.alpha_, rel=1e-12)
    assert model.cv_["selection"] == "1se"


def test_stopped_and_resumed_cv_job_is_bit_identical(tmp_path):
    for i in range(2):
        write_part(tmp_path / "data", i, rows=1000)
    whole = load_job(
        write_job(
            tmp_path,
            name="whole.toml",
            cv=CV,
            state={"location": "whole-state/", "checkpoint_row_groups": 3},
            outputs={"model": "whole/model.json"},
        )
    )
    assert run_job(whole).status == "published"
    job = load_job(write_job(tmp_path, cv=CV, state={"checkpoint_row_groups": 3}))
    stop = threading.Event()
    assert run_job(job, stop=stop, log=_StopAfter(stop, 2)).status == "stopped"
    log = JobLog(stream=open(os.devnull, "w"))
    assert run_job(job, log=log).status == "published"
    assert any(r["event"] == "resumed" for r in log.records)
    assert (tmp_path / "out" / "model.json").read_bytes() == (
        tmp_path / "whole" / "model.json"
    ).read_bytes()


def test_penalized_job_publishes_the_penalized_fit(tmp_path):
    for i in range(2):
        write_part(tmp_path / "data", i)
    job = load_job(write_job(tmp_path, model={"alpha": 0.05, "l1_ratio": 0.5}))
    assert run_job(job).status == "published"
    model = streamreg.load(tmp_path / "out" / "model.json")
    expected = streamreg.fit(
        files_of(tmp_path), target="y", solver="exact", batch_size=50, alpha=0.05, l1_ratio=0.5
    )
    assert model.state_ == expected.state_
    np.testing.assert_array_equal(model.coef_, expected.coef_)
    assert model.penalty_ == expected.penalty_ and manifest(tmp_path / "state")["rows"] == 800


def test_other_folds_on_an_existing_store_are_refused(tmp_path):
    write_part(tmp_path / "data", 0)
    assert run_job(load_job(write_job(tmp_path, cv=CV))).status == "published"
    before = snapshot(tmp_path / "state", tmp_path / "out")
    for cv in ({**CV, "folds": 5}, {**CV, "fold_key": "x2"}):
        with pytest.raises(ModelFormatError, match=r"built with the folds .* \[cv\] asks for"):
            run_job(load_job(write_job(tmp_path, cv=cv)))
    with pytest.raises(ModelFormatError, match="built with the folds"):
        run_job(load_job(write_job(tmp_path, name="plain.toml")))
    assert snapshot(tmp_path / "state", tmp_path / "out") == before


@pytest.mark.parametrize(
    "sections, words",
    [
        ({"model": {"alpha": -1.0}}, "'model.alpha': alpha must be a finite number"),
        ({"model": {"alpha": 0.1, "l1_ratio": 2.0}}, "'model.l1_ratio': l1_ratio must be"),
        ({"model": {"l1_ratio": 0.5}}, "'model.l1_ratio' needs 'model.alpha'"),
        ({"model": {"alpha": 0.1}, "cv": CV}, "[cv] chooses the penalty"),
        ({"cv": {"folds": 1}}, "'cv.folds' must be at least 2"),
        ({"cv": {"l1_ratio": [0.5, 1.5]}}, "'cv.l1_ratio': l1_ratio must be"),
        ({"cv": {"alphas": [0.1, -1.0]}}, "'cv.alphas': every alpha"),
        ({"cv": {"fold_key": "a", "fold_column": "b"}}, "not both"),
        ({"cv": {"select": "best"}}, "'cv.select' must be one of min, 1se"),
        ({"cv": {"nfolds": 3}}, "unknown key 'cv.nfolds'"),
    ],
)
def test_spec_errors_name_the_key(tmp_path, sections, words):
    with pytest.raises(InputError) as error:
        load_job(write_job(tmp_path, **sections))
    assert words in str(error.value)
