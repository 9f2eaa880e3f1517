"""The bundled examples are what the README says they are, and the demo replays them."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

import streamreg
from streamreg.cli import app

ROOT = Path(__file__).resolve().parents[1]


def readme_generate_commands():
    lines = (ROOT / "README.md").read_text().splitlines()
    return [line for line in lines if line.startswith("streamreg generate data/")]


@pytest.mark.parametrize("command", readme_generate_commands())
def test_bundled_data_is_reproduced_by_the_readme_command(tmp_path, command):
    args = shlex.split(command)[1:]
    folder = args[1]
    args[1] = str(tmp_path / "again")
    result = CliRunner().invoke(app, [*args, "--quiet"])
    assert result.exit_code == 0, result.output
    bundled = pq.read_table(ROOT / folder)
    again = pq.read_table(tmp_path / "again")
    assert bundled.equals(again)
    assert json.loads((ROOT / folder / "_truth.json").read_text()) == json.loads(
        (tmp_path / "again" / "_truth.json").read_text()
    )


def test_two_readme_examples_exist():
    assert len(readme_generate_commands()) == 2


@pytest.mark.parametrize(
    "folder, coef, intercept, slack",
    [
        ("study_hours", {"hours": 0.5}, 8.0, 4.0),
        ("hours_food", {"hours": 5.0, "food": 2.0}, 10.0, 4.0),
    ],
)
def test_examples_recover_the_article_coefficients(folder, coef, intercept, slack):
    model = streamreg.fit(ROOT / "data" / folder, target="score")
    # Within `slack` standard errors of the truth (standard errors from the moments).
    state = model.state_
    p = len(coef)
    sigma2 = model.ssr_ / (model.n_samples_ - p - 1)
    se = np.sqrt(sigma2 * np.diag(np.linalg.inv(state.comoment[:p, :p])))
    for j, name in enumerate(model.feature_names_in_):
        assert abs(model.coef_[j] - coef[name]) <= slack * se[j]
    assert model.n_samples_ == 50


def test_demo_prints_both_fits_and_the_answer_to_the_article_question():
    result = CliRunner().invoke(app, ["demo"])
    assert result.exit_code == 0, result.output
    assert "score ~ hours\n" in result.output and "score ~ hours + food" in result.output
    assert "11 hours" in result.output
    data = json.loads(CliRunner().invoke(app, ["demo", "--json"]).output)
    model = streamreg.fit(ROOT / "data" / "study_hours", target="score")
    assert data[0]["score_at_11_hours"] == pytest.approx(
        model.intercept_ + 11 * model.coef_[0], rel=1e-12
    )
