"""What a statsmodels user reaches for on a result: labelled statistics, the summary object,
predictions with intervals (in Python and streamed by ``streamreg predict --interval``), exact
fits (n = p + 1) and the minimum-norm answer on rank-deficient data — each against its oracle."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import statsmodels.api as sm
from sklearn.linear_model import LinearRegression
from typer.testing import CliRunner

import streamreg
from streamreg.cli import app
from streamreg.model.summary import Summary

runner = CliRunner()


@pytest.fixture(scope="module")
def longley():
    data = sm.datasets.longley.load_pandas()
    return data.data.astype(float), data.endog_name


def statsmodels_fit(frame, target, weights=None, **fit_kw):
    exog = sm.add_constant(frame.drop(columns=[target])).rename(columns={"const": "Intercept"})
    if weights is None:
        return sm.OLS(frame[target], exog).fit(**fit_kw)
    return sm.WLS(frame[target], exog, weights=weights).fit(**fit_kw)


# ---------------------------------------------------------------- labels
def test_statistics_are_labelled_as_statsmodels_labels_them(longley):
    frame, target = longley
    model = streamreg.fit(frame, target=target)
    ref = statsmodels_fit(frame, target)
    for name in ("params", "bse", "tvalues", "pvalues"):
        ours, theirs = getattr(model, name), getattr(ref, name)
        assert isinstance(ours, pd.Series)
        assert list(ours.index) == list(theirs.index)
        np.testing.assert_allclose(ours.to_numpy(), theirs.to_numpy(), rtol=1e-7)
    ci = model.conf_int(0.1)
    assert isinstance(ci, pd.DataFrame) and list(ci.columns) == [0, 1]
    pd.testing.assert_index_equal(ci.index, ref.conf_int(0.1).index)
    np.testing.assert_allclose(ci.to_numpy(), ref.conf_int(0.1).to_numpy(), rtol=1e-7)
    assert model.params["GNP"] == model.coef_[list(model.feature_names_in_).index("GNP")]


def test_predict_of_a_frame_is_a_series_on_its_index(longley):
    frame, target = longley
    model = streamreg.fit(frame, target=target)
    rows = frame.iloc[3:7].set_axis(["a", "b", "c", "d"])
    predicted = model.predict(rows)
    assert isinstance(predicted, pd.Series) and list(predicted.index) == ["a", "b", "c", "d"]
    ref = statsmodels_fit(frame, target).predict(
        sm.add_constant(rows.drop(columns=[target]), has_constant="add")
    )
    np.testing.assert_allclose(predicted.to_numpy(), ref.to_numpy(), rtol=1e-10)
    assert isinstance(model.predict(rows.drop(columns=[target]).to_numpy()), np.ndarray)


# ---------------------------------------------------------------- the summary object
def test_summary_is_the_text_and_renders_as_html_and_latex(longley):
    frame, target = longley
    model = streamreg.fit(frame, target=target)
    summary = model.summary()
    assert isinstance(summary, Summary) and isinstance(summary, str)
    text = summary.as_text()
    assert str(summary) == text == repr(summary)
    assert text.splitlines()[0].strip() == "OLS Regression Results"
    html = summary._repr_html_()
    assert html == summary.as_html() and html.count("<table") == 3  # three tables
    assert "<th>Durbin-Watson:</th>" in html and "<th>GNPDEFL</th>" in html
    latex = summary.as_latex()
    assert latex.startswith("\\begin{table}") and latex.endswith("\\end{table}")
    assert latex.count("\\begin{tabular}") == 3 and "Jarque-Bera (JB):" in latex
    # One value, three renderings: the GNP coefficient as statsmodels prints it.
    gnp = f"{model.params['GNP']:.4f}"
    assert gnp in text and gnp in html and gnp in latex
    # The other formats keep working.
    assert "| GNP |" in model.summary("markdown")
    assert model.summary("json")["param_names"][0] == "Intercept"


# ---------------------------------------------------------------- predictions with intervals
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("cov", [None, "HC1"])
def test_get_prediction_matches_statsmodels(longley, weighted, cov):
    frame, target = longley
    rng = np.random.default_rng(3)
    weights = rng.uniform(0.5, 2.0, size=len(frame)) if weighted else None
    data = frame.assign(w=weights) if weighted else frame
    model = streamreg.fit(
        data, target=target, weight="w" if weighted else None, cov_type=cov, batch_size=5
    )
    ref = statsmodels_fit(frame, target, weights, **({} if cov is None else {"cov_type": cov}))
    new = frame.drop(columns=[target]).iloc[::3] * 1.01
    ours = model.get_prediction(new).summary_frame(alpha=0.1)
    theirs = ref.get_prediction(sm.add_constant(new, has_constant="add")).summary_frame(alpha=0.1)
    assert list(ours.columns) == list(theirs.columns)
    pd.testing.assert_index_equal(ours.index, new.index)
    np.testing.assert_allclose(ours.to_numpy(), theirs.to_numpy(), rtol=1e-7)


def test_predict_interval_streams_statsmodels_columns(longley, tmp_path):
    frame, target = longley
    path = tmp_path / "longley.parquet"
    frame.assign(id=np.arange(len(frame))).to_parquet(path, index=False)
    model_path = tmp_path / "m.json"
    streamreg.fit(path, target=target, features=list(frame.columns.drop(target))).save(model_path)
    out = tmp_path / "pred.parquet"
    args = ["predict", str(model_path), str(path), "-o", str(out), "--keep", "id"]
    result = runner.invoke(app, [*args, "--interval", "0.9", "--batch-size", "5", "-q"])
    assert result.exit_code == 0, result.output
    table = pq.read_table(out).to_pandas()
    assert list(table.columns) == [
        "id", "prediction", "mean_se", "mean_ci_lower", "mean_ci_upper", "obs_ci_lower",
        "obs_ci_upper",
    ]  # fmt: skip
    ref = statsmodels_fit(frame, target).get_prediction().summary_frame(alpha=0.1)
    np.testing.assert_allclose(table["prediction"], ref["mean"], rtol=1e-9)
    for column in ("mean_se", "mean_ci_lower", "mean_ci_upper", "obs_ci_lower", "obs_ci_upper"):
        np.testing.assert_allclose(table[column], ref[column], rtol=1e-7, err_msg=column)
    result = runner.invoke(app, [*args, "--interval", "95"])
    assert result.exit_code == 2 and "--interval is a confidence level" in result.output


# ---------------------------------------------------------------- n = p + 1, a perfect fit
def test_zero_residual_degrees_of_freedom_fit_with_undefined_inference(tmp_path):
    frame = pd.DataFrame({"a": [1.0, 2.0, 4.0], "b": [0.5, -1.0, 3.0], "y": [1.0, 3.0, 2.0]})
    model = streamreg.fit(frame, target="y")
    ref = statsmodels_fit(frame, "y")
    np.testing.assert_allclose(model.params.to_numpy(), ref.params.to_numpy(), rtol=1e-10)
    assert model.df_resid == 0
    assert all(math.isnan(v) for v in (model.scale, model.rsquared_adj, model.fvalue))
    assert model.bse.isna().all() and model.pvalues.isna().all()
    assert model.conf_int().isna().all().all()
    assert "nan" in str(model.summary())
    model.save(tmp_path / "exact.json")
    assert streamreg.load(tmp_path / "exact.json").df_resid == 0
    robust = streamreg.fit(frame, target="y", cov_type="HC1")
    assert robust.bse.isna().all() and "undefined" in " ".join(robust.warnings_)


# ---------------------------------------------------------------- minimum norm
def rank_deficient_data(rng, n=40):
    x = rng.normal(size=(n, 4))
    x = np.column_stack([x, x[:, 0] + 2 * x[:, 1], 3.0 * x[:, 2]])
    y = x @ [1.0, -1.0, 0.5, 2.0, 0.3, 0.1] + rng.normal(size=n)
    return x, y


@pytest.mark.parametrize("solver", ["auto", "cholesky", "qr", "exact"])
@pytest.mark.parametrize("rows", [40, 5])  # rank-deficient, and under-determined
def test_minimum_norm_is_linear_regressions_answer(rng, solver, rows):
    x, y = rank_deficient_data(rng)
    x, y = x[:rows], y[:rows]
    model = streamreg.fit(x, y, solver=solver, rank_deficient="minimum_norm", batch_size=4)
    ref = LinearRegression().fit(x, y)
    np.testing.assert_allclose(model.coef_, ref.coef_, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(model.intercept_, ref.intercept_, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(model.predict(x), ref.predict(x), rtol=1e-9, atol=1e-10)
    assert model.aliased_ == [] and model.solver_ == "minimum_norm"
    assert model.condition_number == math.inf


def test_minimum_norm_from_the_command_line_and_its_conflicts(rng, tmp_path):
    x, y = rank_deficient_data(rng)
    path = tmp_path / "d.parquet"
    pd.DataFrame({**{f"x{j}": x[:, j] for j in range(6)}, "y": y}).to_parquet(path)
    out = tmp_path / "m.json"
    result = runner.invoke(
        app, ["fit", str(path), "-y", "y", "--rank-deficient", "minimum_norm", "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    np.testing.assert_allclose(
        streamreg.load(out).coef_, LinearRegression().fit(x, y).coef_, rtol=1e-8
    )
    result = runner.invoke(app, ["fit", str(path), "-y", "y"])  # R-style: an error by default
    assert result.exit_code == 2 and "linear combination" in result.output
    with pytest.raises(streamreg.InputError, match="drop_collinear=True asks for aliased"):
        streamreg.fit(x, y, drop_collinear=True, rank_deficient="minimum_norm")
    with pytest.raises(streamreg.InputError, match="rank_deficient must be one of"):
        streamreg.fit(x, y, rank_deficient="pinv")
    with pytest.raises(streamreg.InputError, match="closed-form solve"):
        streamreg.fit(x, y, rank_deficient="minimum_norm", solver="sgd")


def test_json_of_a_fit_with_diagnostics_is_valid(longley):
    frame, target = longley
    model = streamreg.fit(frame, target=target)
    text = json.dumps(model.summary("json"), allow_nan=False)
    assert json.loads(text)["rsquared"] == pytest.approx(model.rsquared)
    assert json.loads(text)["diagnostics"] == pytest.approx(model.diagnostics)
