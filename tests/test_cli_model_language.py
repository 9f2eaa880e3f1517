"""The model language through the real command line (a subprocess) and through a scheduled job.

Every bad input is one sentence on stderr, exit code 2, and nothing written; a formula fit,
its saved design and streaming predict/evaluate agree with statsmodels; a job fixes its levels
at its first run and refuses, in words, a file that brings a new level.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import statsmodels.formula.api as smf
from modellang import assert_close

import streamreg
from streamreg.errors import SchemaError
from streamreg.jobs import run_job
from streamreg.jobs.spec import parse_job


def streamreg_cli(*args, cwd=None):
    env = dict(os.environ)
    return subprocess.run(
        [sys.executable, "-c", "from streamreg.cli import main; main()", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=300,
    )


@pytest.fixture
def data(tmp_path, rng):
    n = 400
    frame = pd.DataFrame(
        {
            "x1": rng.normal(size=n),
            "x2": rng.uniform(1, 4, n),
            "region": rng.choice(["n", "s", "e"], n),
            "code": rng.integers(0, 1500, n),
        }
    )
    frame["y"] = 1 + frame.x1 + np.log(frame.x2) + (frame.region == "s") + rng.normal(size=n)
    folder = tmp_path / "data"
    folder.mkdir()
    ordered = frame.sort_values("region", kind="stable")
    for i, rows in enumerate(np.array_split(np.arange(n), 2)):
        table = pa.Table.from_pandas(ordered.iloc[rows], preserve_index=False)
        pq.write_table(table, folder / f"part-{i}.parquet", row_group_size=50)
    return frame, folder


FORMULA = "y ~ x1 + np.log(x2) + C(region) + x1:C(region)"


def test_formula_fit_predict_evaluate_through_the_command_line(data, tmp_path):
    frame, folder = data
    model_path = tmp_path / "model.json"
    result = streamreg_cli("fit", folder, "--formula", FORMULA, "-o", model_path, "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    ref = smf.ols(FORMULA, frame).fit()
    assert list(report["coefficients"]) == list(ref.params.index)[1:]
    assert_close(list(report["coefficients"].values()), ref.params.values[1:], 1e-8)
    assert report["columns"]["region"]["role"] == "category"
    assert report["columns"]["code"] == {"role": "skipped", "why": "not in the formula"}
    out = tmp_path / "p.parquet"
    result = streamreg_cli("predict", model_path, folder, "-o", out, "--batch-size", "33")
    assert result.returncode == 0, result.stderr
    ordered = pd.concat([pq.read_table(p).to_pandas() for p in sorted(folder.iterdir())])
    assert_close(pq.read_table(out).column("prediction"), ref.predict(ordered), 1e-10)
    result = streamreg_cli("evaluate", model_path, folder, "--json")
    assert result.returncode == 0, result.stderr
    assert_close(json.loads(result.stdout)["rmse"], np.sqrt(ref.ssr / ref.nobs), 1e-10)
    summary = streamreg_cli("summary", model_path)
    assert "C(region)[T.s]" in summary.stdout and "x1:C(region)[T.n]" in summary.stdout


def test_several_targets_through_the_command_line(data, tmp_path):
    frame, folder = data
    model_path = tmp_path / "two.json"
    result = streamreg_cli(
        "fit",
        folder,
        "-y",
        "y,x1",
        "-x",
        "x2",
        "-x",
        "region",
        "--solver",
        "exact",
        "-o",
        model_path,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.count(" ~ ") == 2
    out = tmp_path / "p.parquet"
    assert streamreg_cli("predict", model_path, folder, "-o", out).returncode == 0
    assert pq.read_table(out).column_names == ["prediction_y", "prediction_x1"]


BAD = [
    (["--formula", "y ~ x1 + nothere"], "column 'nothere', which is not in the data"),
    (["--formula", "y ~ x1 + frobnicate(x2)"], "calls 'frobnicate'"),
    (["--formula", "y ~ 1"], "has only an intercept"),
    (["--formula", "y ~ 0"], "has no terms"),
    (["-y", "y", "-x", "x1,code", "--categorical", "code", "--max-levels", "50"], "--absorb code"),
    (["-y", "y", "-x", "region", "--max-levels", "2"], "--absorb region"),
    (["-y", "y", "-x", "region", "--reference", "region"], "--reference expects COLUMN=LEVEL"),
    (["--formula", "y ~ x1 | region + code"], "alternating projections"),
]


@pytest.mark.parametrize("args, words", BAD)
def test_bad_input_is_one_sentence_exit_2_nothing_written(data, tmp_path, args, words):
    _, folder = data
    out = tmp_path / "model.json"
    result = streamreg_cli("fit", folder, *args, "-o", out)
    assert result.returncode == 2, result.stderr
    assert words in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("streamreg: error: ")
    assert not out.exists()


def test_changed_level_set_between_model_and_data(data, tmp_path):
    frame, folder = data
    model_path = tmp_path / "model.json"
    assert streamreg_cli("fit", folder, "--formula", FORMULA, "-o", model_path).returncode == 0
    new = tmp_path / "new.parquet"
    changed = frame.iloc[:60].assign(region=["w"] + list(frame.region.iloc[1:60]))
    pq.write_table(pa.Table.from_pandas(changed, preserve_index=False), new, row_group_size=20)
    out = tmp_path / "p.parquet"
    result = streamreg_cli("predict", model_path, new, "-o", out)
    assert result.returncode == 2
    assert "'region' holds the level 'w'" in result.stderr and "row group 0" in result.stderr
    assert "--unseen reference" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and not out.exists()
    result = streamreg_cli("predict", model_path, new, "-o", out, "--unseen", "reference")
    assert result.returncode == 0 and out.exists()
    assert "1 rows in 'region'" in result.stderr
    result = streamreg_cli("evaluate", model_path, new)
    assert result.returncode == 2 and "'w'" in result.stderr


# ---------------------------------------------------------------------- jobs
def _job(folder, tmp_path, extra=""):
    text = (
        f'inputs = ["{folder}"]\n[model]\nformula = "{FORMULA}"\nsolver = "exact"\n{extra}'
        '[state]\nlocation = "state/"\n[outputs]\nmodel = "out/model.json"\n'
    )
    path = tmp_path / "job.toml"
    path.write_text(text)
    return parse_job(text, path=str(path))


def test_a_job_fixes_its_levels_and_refuses_a_new_one(data, tmp_path):
    frame, folder = data
    job = _job(folder, tmp_path)
    assert run_job(job).status == "published"
    published = streamreg.load(tmp_path / "out" / "model.json")
    fitted = streamreg.fit(folder, formula=FORMULA, solver="exact")
    np.testing.assert_array_equal(published.coef_, fitted.coef_)
    assert published.design_.levels == fitted.design_.levels
    more = frame.iloc[:30].assign(region="s")
    pq.write_table(pa.Table.from_pandas(more, preserve_index=False), folder / "part-2.parquet")
    assert run_job(job).status == "published"  # known levels only: folded in
    again = streamreg.fit(folder, formula=FORMULA, solver="exact")
    np.testing.assert_array_equal(
        streamreg.load(tmp_path / "out" / "model.json").coef_, again.coef_
    )
    novel = frame.iloc[:30].assign(region="w")
    pq.write_table(pa.Table.from_pandas(novel, preserve_index=False), folder / "part-3.parquet")
    with pytest.raises(SchemaError) as error:
        run_job(job)
    message = str(error.value)
    assert "part-3.parquet" in message and "'w'" in message and "'region'" in message
    assert "new state location" in message


def test_unseen_choices_are_the_library_s():
    from streamreg.cli.app import UNSEEN_CHOICES
    from streamreg.design.levels import UNSEEN_POLICIES

    assert UNSEEN_CHOICES == UNSEEN_POLICIES
