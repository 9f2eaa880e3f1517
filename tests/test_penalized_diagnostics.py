"""Where diagnostics and penalized fits meet, and prediction intervals on the fast path.

A penalized fit's residual diagnostics (Omnibus, skew, kurtosis, Durbin–Watson, Jarque–Bera)
are statsmodels' functions of its residuals, computed here with numpy from the saved
coefficients; everything that needs the sampling covariance of least squares is refused in
one sentence. ``predict --interval`` predicts through the same fused column loop as
``predict`` (the prediction column is bit-identical) and its bounds equal
``get_prediction`` on the same rows.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from statsmodels.stats.stattools import durbin_watson, jarque_bera, omni_normtest
from typer.testing import CliRunner

import streamreg
from streamreg.cli import app
from streamreg.errors import InputError
from streamreg.prediction import predict_parquet

runner = CliRunner()
FEATURES = ["a", "b", "c"]


@pytest.fixture
def frame(rng):
    n = 600
    x = rng.normal(size=(n, 3)) * [1.0, 2.0, 0.5] + [0.0, 5.0, -1.0]
    noise = rng.standard_t(5, size=n)  # heavy tails: the tests of normality have work to do
    y = 1.5 + x @ [2.0, -0.5, 0.0] + noise
    return pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "c": x[:, 2], "y": y})


def statsmodels_diagnostics(resid: np.ndarray) -> dict:
    omnibus, omnibus_p = omni_normtest(resid)
    jb, jb_p, skew, kurtosis = jarque_bera(resid)
    return dict(
        omnibus=omnibus,
        omnibus_pvalue=omnibus_p,
        skew=skew,
        kurtosis=kurtosis,
        durbin_watson=durbin_watson(resid),
        jarque_bera=jb,
        jarque_bera_pvalue=jb_p,
    )


@pytest.mark.parametrize("l1_ratio", [0.0, 0.5, 1.0])
def test_penalized_residual_diagnostics_match_statsmodels_on_its_residuals(frame, l1_ratio):
    model = streamreg.fit(frame, target="y", alpha=0.05, l1_ratio=l1_ratio)
    assert model.penalty_ is not None and model.diagnostics is not None  # in memory: default
    resid = frame["y"].to_numpy() - (frame[FEATURES].to_numpy() @ model.coef_ + model.intercept_)
    expected = statsmodels_diagnostics(resid)
    for name, value in expected.items():
        assert model.diagnostics[name] == pytest.approx(value, rel=1e-9, abs=1e-12), name
    # The penalized fit keeps its solver's SSR (no least-squares SSR policy).
    assert model.ssr_ == pytest.approx(float(resid @ resid), rel=1e-9)


def test_penalized_model_file_carries_diagnostics_in_version_3(frame, tmp_path):
    model = streamreg.fit(frame, target="y", alpha=0.1, l1_ratio=0.5)
    path = tmp_path / "m.json"
    model.save(path)
    data = json.loads(path.read_text())
    assert data["format_version"] == 3 and set(data["diagnostics"]) == set(model.diagnostics)
    loaded = streamreg.load(path)
    assert loaded.diagnostics == model.diagnostics and loaded.penalty_ == model.penalty_
    assert "Durbin-Watson:" in str(loaded.summary())
    assert loaded.summary("json")["diagnostics"]["durbin_watson"] == pytest.approx(
        model.diagnostics["durbin_watson"], rel=0, abs=0
    )
    without = streamreg.fit(frame, target="y", alpha=0.1, diagnostics=False)
    assert without.diagnostics is None and "diagnostics" not in without.to_dict()
    assert "Durbin-Watson:" not in str(without.summary())


def test_penalized_files_get_diagnostics_only_when_asked(frame, tmp_path):
    path = tmp_path / "d.parquet"
    frame.to_parquet(path, index=False)
    assert streamreg.fit(path, target="y", alpha=0.1).diagnostics is None  # a second read costs
    asked = streamreg.fit(path, target="y", alpha=0.1, diagnostics=True)
    in_memory = streamreg.fit(frame, target="y", alpha=0.1)
    for name, value in in_memory.diagnostics.items():
        assert asked.diagnostics[name] == pytest.approx(value, rel=1e-12), name


def test_what_needs_the_least_squares_covariance_is_refused_for_a_penalized_fit(frame, tmp_path):
    model = streamreg.fit(frame, target="y", alpha=0.1)
    for call, what in (
        (lambda: model.t_test("a = 0"), "t_test"),
        (lambda: model.f_test("a = 0, b = 0"), "f_test"),
        (lambda: model.wald_test("a = 0"), "wald_test"),
        (lambda: model.get_prediction(frame.head()), "get_prediction"),
        (lambda: model.plot_coefficients(), "coefficient intervals"),
        (lambda: model.plot_diagnostics(frame), "the diagnostic panels"),
    ):
        with pytest.raises(InputError, match=f"cannot compute {what}.* penalized fit") as info:
            call()
        assert "biased" in str(info.value) and str(info.value).count(". ") == 0
    out = tmp_path / "p.parquet"
    source = tmp_path / "d.parquet"
    frame.to_parquet(source, index=False)
    with pytest.raises(InputError, match=r"prediction intervals \(interval\).* penalized fit"):
        predict_parquet(model, source, out, interval=0.95)
    assert not out.exists()
    predict_parquet(model, source, out)  # plain predictions are fine
    np.testing.assert_allclose(
        pq.read_table(out).column("prediction").to_numpy(), model.predict(frame), rtol=1e-13
    )


def test_cli_refuses_intervals_of_a_penalized_model(frame, tmp_path):
    source = tmp_path / "d.parquet"
    frame.to_parquet(source, index=False)
    model_path = tmp_path / "m.json"
    streamreg.fit(frame, target="y", alpha=0.1).save(model_path)
    out = tmp_path / "p.parquet"
    args = ["predict", str(model_path), str(source), "-o", str(out), "--interval", "0.9"]
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert "--interval" in result.output and "penalized fit" in result.output
    assert len(result.output.strip().splitlines()) == 1 and not out.exists()


def test_least_squares_options_are_refused_with_a_penalty(frame):
    with pytest.raises(InputError, match="use_t=True chooses the distribution"):
        streamreg.fit(frame, target="y", alpha=0.1, use_t=True)
    with pytest.raises(InputError, match="rank_deficient='minimum_norm' picks one of many"):
        streamreg.fit(frame, target="y", alpha=0.1, rank_deficient="minimum_norm")
    with pytest.raises(InputError, match="not available for a penalized fit"):
        streamreg.fit(frame, target="y", alpha=0.1, cov_type="HAC:2")


def test_interval_predictions_take_the_fast_path(frame, tmp_path):
    model = streamreg.fit(frame, target="y", cov_type="HC1")
    new = frame.copy()
    new.loc[3, "b"] = np.nan  # a missing feature: a null prediction and null bounds
    source = tmp_path / "new.parquet"
    pq.write_table(pa.Table.from_pandas(new, preserve_index=False), source, row_group_size=128)
    plain, with_bounds = tmp_path / "plain.parquet", tmp_path / "bounds.parquet"
    predict_parquet(model, source, plain, batch_size=100)
    predict_parquet(model, source, with_bounds, batch_size=100, interval=0.9)
    a = pq.read_table(plain).column("prediction")
    b = pq.read_table(with_bounds)
    assert a.equals(b.column("prediction"))  # bit for bit: the same column loop
    assert b.column("prediction").null_count == 1
    ours = b.to_pandas()
    ref = model.get_prediction(new).summary_frame(alpha=0.1)
    kept = ~new["b"].isna().to_numpy()
    for column in ("mean_se", "mean_ci_lower", "mean_ci_upper", "obs_ci_lower", "obs_ci_upper"):
        assert b.column(column).null_count == 1, column
        np.testing.assert_allclose(
            ours[column].to_numpy()[kept], ref[column].to_numpy()[kept], rtol=1e-12, err_msg=column
        )


def test_a_model_without_kept_features_predicts_its_intercept_with_intervals(tmp_path, rng):
    """Every feature aliased (a constant column): the fast loop still has one row per input
    row, and the intervals are statsmodels' of the intercept-only fit."""
    import statsmodels.api as sm

    y = rng.normal(size=30) + 2.0
    frame = pd.DataFrame({"a": np.ones(30), "y": y})
    model = streamreg.fit(frame, target="y", drop_collinear=True)
    ref = sm.OLS(y, np.ones((30, 1))).fit().get_prediction().summary_frame(alpha=0.1)
    np.testing.assert_allclose(model.predict(frame), ref["mean"], rtol=1e-13)
    ours = model.get_prediction(frame).summary_frame(alpha=0.1)
    np.testing.assert_allclose(ours.to_numpy(), ref.to_numpy(), rtol=1e-12)
    source, out = tmp_path / "d.parquet", tmp_path / "p.parquet"
    frame.to_parquet(source, index=False)
    assert predict_parquet(model, source, out, batch_size=7, interval=0.9) == 30
    table = pq.read_table(out).to_pandas()
    np.testing.assert_allclose(table["prediction"], ref["mean"], rtol=1e-13)
    np.testing.assert_allclose(table["obs_ci_upper"], ref["obs_ci_upper"], rtol=1e-12)
