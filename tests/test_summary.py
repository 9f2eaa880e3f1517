"""summary() in three formats, and evaluate() on held-out data."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import statsmodels.api as sm

import streamreg
from streamreg.evaluation import evaluate


@pytest.fixture
def fitted(tmp_path, rng):
    n = 400
    frame = pd.DataFrame(
        {
            "hours": rng.uniform(0, 20, n),
            "food": rng.normal(2, 1, n),
            "stamp": 1.6e9 + rng.uniform(0, 10, n),
        }
    )
    frame["score"] = 10 + 5 * frame["hours"] + 2 * frame["food"] + rng.normal(size=n)
    path = tmp_path / "train.parquet"
    pq.write_table(pa.Table.from_pandas(frame), path)
    return streamreg.fit(path, target="score", cov_type="HC3"), frame


def test_text_summary_shows_the_statsmodels_table(fitted):
    model, frame = fitted
    text = model.summary()
    # statsmodels loses digits on the raw timestamps; the slopes of the centered problem are the
    # same.
    centered = frame.assign(stamp=frame["stamp"] - 1.6e9)
    ref = sm.OLS(centered["score"], sm.add_constant(centered[["hours", "food", "stamp"]])).fit(
        cov_type="HC3"
    )
    assert "OLS Regression Results" in text and "Covariance Type:" in text and "HC3" in text
    assert f"{ref.rsquared:#.3g}" in text
    rows = {
        line.split()[0]: line.split()
        for line in text.splitlines()
        if line.split() and line.split()[0] in ("Intercept", "hours", "food", "stamp")
    }
    assert float(rows["hours"][1]) == pytest.approx(ref.params["hours"], abs=1e-4)
    assert float(rows["hours"][2]) == pytest.approx(ref.bse["hours"], abs=1e-4)
    assert "P>|z|" in text  # robust covariance: normal reference distribution, as statsmodels


def test_summary_warns_about_a_huge_offset(fitted):
    model, _ = fitted
    notes = model.summary("json")["notes"]
    assert any("'stamp'" in n and "offset" in n for n in notes)
    assert not any("'hours'" in n for n in notes)


def test_json_and_markdown_summaries_carry_the_same_numbers(fitted):
    model, _ = fitted
    data = model.summary("json")
    json.dumps(data, allow_nan=False)
    np.testing.assert_array_equal(data["params"], model.params)
    assert data["param_names"] == ["Intercept", "hours", "food", "stamp"]
    md = model.summary("markdown")
    assert md.count("\n| ") == 5  # header + 4 terms
    assert f"{model.params.iloc[1]:.6g}" in md
    with pytest.raises(streamreg.InputError, match="format must be one of"):
        model.summary("html")


def test_evaluate_equals_numpy_on_holdout(tmp_path, fitted, rng):
    model, _ = fitted
    n = 300
    hold = pd.DataFrame(
        {
            "hours": rng.uniform(0, 20, n),
            "food": rng.normal(2, 1, n),
            "stamp": 1.6e9 + rng.uniform(0, 10, n),
        }
    )
    hold["score"] = 10 + 5 * hold["hours"] + 2 * hold["food"] + rng.normal(size=n)
    hold.loc[[3, 7], "food"] = np.nan
    path = tmp_path / "hold.parquet"
    pq.write_table(pa.Table.from_pandas(hold), path)
    report = evaluate(model, path, batch_size=32)
    kept = hold.dropna()
    # Reference residuals in extended precision from the centered form of the fit.
    state, p = model.state_, 3
    x = kept[["hours", "food", "stamp"]].to_numpy().astype(np.longdouble)
    mean = state.mean.astype(np.longdouble) + state.mean_lo.astype(np.longdouble)
    pred = mean[p] + (x - mean[:p]) @ model.coef_.astype(np.longdouble)
    resid = (kept["score"].to_numpy().astype(np.longdouble) - pred).astype(float)
    assert report["n"] == n - 2 and report["rows_dropped"] == 2
    assert report["rmse"] == pytest.approx(np.sqrt(np.mean(resid**2)), rel=1e-12)
    assert report["mae"] == pytest.approx(np.mean(np.abs(resid)), rel=1e-12)
    ss_tot = np.sum((kept["score"] - kept["score"].mean()) ** 2)
    assert report["r2"] == pytest.approx(1 - np.sum(resid**2) / ss_tot, rel=1e-12)


def test_evaluate_needs_the_target(tmp_path, fitted):
    model, frame = fitted
    path = tmp_path / "no_target.parquet"
    pq.write_table(pa.Table.from_pandas(frame.drop(columns="score")), path)
    with pytest.raises(streamreg.SchemaError, match="'score' is not in the data"):
        evaluate(model, path)
