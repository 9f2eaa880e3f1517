"""Residual diagnostics, intervals, restriction tests, HAC and two-way clusters with the
model language (formulas, categories, several targets, an absorbed fixed effect), against
statsmodels' smf.ols on the same formula; what does not combine is refused in one sentence."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

import streamreg
from streamreg.errors import InputError
from streamreg.model.diagnostics import DIAGNOSTIC_NAMES
from streamreg.prediction import predict_parquet

smf = pytest.importorskip("statsmodels.formula.api")

FORMULA = "y ~ x1 + np.log(x2) + C(region)"
INTERVALS = ["mean", "mean_se", "mean_ci_lower", "mean_ci_upper", "obs_ci_lower", "obs_ci_upper"]


@pytest.fixture(scope="module")
def frame():
    rng = np.random.default_rng(7)
    n = 400
    df = pd.DataFrame(
        {
            "x1": rng.normal(size=n),
            "x2": rng.uniform(1, 5, size=n),
            "region": rng.choice(["north", "south", "west"], size=n),
            "g1": rng.integers(0, 15, n),
            "g2": rng.integers(0, 11, n),
        }
    )
    noise = rng.standard_t(5, size=n)
    df["y"] = 1 + 2 * df.x1 + np.log(df.x2) + 0.5 * (df.region == "south") + noise
    df["y2"] = -1 + 0.5 * df.x1 + rng.normal(size=n) ** 3
    return df


@pytest.fixture(scope="module")
def formula_fits(frame):
    return streamreg.fit(frame, formula=FORMULA), smf.ols(FORMULA, frame).fit()


def test_formula_fit_diagnostics_and_bottom_block_equal_statsmodels(formula_fits):
    model, oracle = formula_fits
    assert model.param_names == list(oracle.params.index)
    expected = {
        "durbin_watson": float(np.sum(np.diff(oracle.resid) ** 2) / np.sum(oracle.resid**2)),
    }
    from statsmodels.stats.stattools import jarque_bera, omni_normtest

    expected["omnibus"], expected["omnibus_pvalue"] = omni_normtest(oracle.resid)
    jb, jb_p, skew, kurtosis = jarque_bera(oracle.resid)
    expected.update(jarque_bera=jb, jarque_bera_pvalue=jb_p, skew=skew, kurtosis=kurtosis)
    assert set(model.diagnostics) == set(DIAGNOSTIC_NAMES)
    for name, value in expected.items():
        assert model.diagnostics[name] == pytest.approx(float(value), rel=1e-8, abs=1e-300)
    # The bottom block as statsmodels prints it.
    ours = str(model.summary()).split("\n")
    theirs = str(oracle.summary()).split("\n")
    bottom = [line for line in theirs if line.startswith(("Omnibus:", "Prob(Omnibus)", "Skew:"))]
    assert bottom and all(line in ours for line in bottom)
    np.testing.assert_allclose(model.params, oracle.params, rtol=1e-8)


def test_formula_get_prediction_encodes_new_data_as_statsmodels(formula_fits, frame):
    model, oracle = formula_fits
    new = frame.iloc[[3, 1, 4, 1, 5, 9]].reset_index(drop=True)
    new.loc[0, "region"] = "west"
    ours = model.get_prediction(new).summary_frame(alpha=0.1)
    theirs = oracle.get_prediction(new).summary_frame(alpha=0.1)
    assert list(ours.columns) == INTERVALS
    np.testing.assert_allclose(ours.to_numpy(), theirs.to_numpy(), rtol=1e-8, atol=1e-10)


def test_t_test_on_a_categorical_coefficient_name_equals_statsmodels(formula_fits):
    model, oracle = formula_fits
    for restriction in ("C(region)[T.south] = 0", "C(region)[T.south] = C(region)[T.west]"):
        ours, theirs = model.t_test(restriction), oracle.t_test(restriction)
        for field in ("effect", "sd", "tvalue", "pvalue"):
            np.testing.assert_allclose(
                np.ravel(getattr(ours, field)), np.ravel(getattr(theirs, field)), rtol=1e-8
            )
    ours, theirs = (
        model.f_test("C(region)[T.south] = 0, x1 = 2"),
        oracle.f_test("C(region)[T.south] = 0, x1 = 2"),
    )
    assert float(np.squeeze(ours.fvalue)) == pytest.approx(float(np.squeeze(theirs.fvalue)))


def test_formula_fit_hac_and_two_way_clusters_equal_statsmodels(frame):
    model = streamreg.fit(frame, formula=FORMULA, cov_type="HAC:3")
    oracle = smf.ols(FORMULA, frame).fit(cov_type="HAC", cov_kwds={"maxlags": 3})
    np.testing.assert_allclose(model.bse, oracle.bse, rtol=1e-8)
    model = streamreg.fit(frame, formula=FORMULA, cov_type="cluster:g1,g2")
    groups = frame[["g1", "g2"]].to_numpy()
    oracle = smf.ols(FORMULA, frame).fit(cov_type="cluster", cov_kwds={"groups": groups})
    np.testing.assert_allclose(model.bse, oracle.bse, rtol=1e-8)
    assert model.columns_["g1"]["role"] == model.columns_["g2"]["role"] == "cluster"


def test_formula_model_with_diagnostics_round_trips_as_version_2(formula_fits, tmp_path):
    model, _ = formula_fits
    model.save(tmp_path / "m.json")
    loaded = streamreg.load(tmp_path / "m.json")
    assert loaded.to_dict()["format_version"] == 2
    assert loaded.diagnostics == model.diagnostics
    assert (
        loaded.t_test("C(region)[T.south] = 0").tvalue
        == model.t_test("C(region)[T.south] = 0").tvalue
    )


def test_predict_interval_of_a_formula_model_equals_get_prediction(formula_fits, frame, tmp_path):
    model, oracle = formula_fits
    pq.write_table(pa_table(frame), tmp_path / "d.parquet")
    predict_parquet(model, tmp_path / "d.parquet", tmp_path / "p.parquet", interval=0.9)
    written = pq.read_table(tmp_path / "p.parquet").to_pandas()
    theirs = oracle.get_prediction(frame).summary_frame(alpha=0.1)
    np.testing.assert_allclose(written["prediction"], theirs["mean"], rtol=1e-8)
    for column in INTERVALS[1:]:
        np.testing.assert_allclose(written[column], theirs[column], rtol=1e-8, atol=1e-10)


def pa_table(frame):
    import pyarrow as pa

    return pa.Table.from_pandas(frame, preserve_index=False)


def test_several_targets_each_carry_diagnostics_equal_to_statsmodels(frame):
    model = streamreg.fit(frame, target=["y", "y2"], features=["x1", "region"], diagnostics=True)
    for target, fitted in zip(["y", "y2"], model.models_):
        oracle = smf.ols(f"{target} ~ C(region) + x1", frame).fit()
        assert fitted.diagnostics["durbin_watson"] == pytest.approx(
            float(np.sum(np.diff(oracle.resid) ** 2) / np.sum(oracle.resid**2)), rel=1e-8
        )
        # Categories named in features are labelled region[T.south] (statsmodels: C(region)[...]).
        np.testing.assert_allclose(np.sort(fitted.bse), np.sort(oracle.bse), rtol=1e-8)


def test_several_targets_refuse_one_interval_file(frame, tmp_path):
    model = streamreg.fit(frame, target=["y", "y2"], features=["x1", "region"])
    pq.write_table(pa_table(frame), tmp_path / "d.parquet")
    with pytest.raises(InputError, match="needs a model of one target"):
        predict_parquet(model, tmp_path / "d.parquet", tmp_path / "p.parquet", interval=0.9)


def test_several_targets_point_to_one_targets_results(frame):
    model = streamreg.fit(frame, target=["y", "y2"], features=["x1", "region"])
    for name in ("get_prediction", "t_test", "bse"):
        with pytest.raises(AttributeError, match=rf"model\['y'\]\.{name} \(targets: y, y2\)"):
            getattr(model, name)
    with pytest.raises(AttributeError, match="no attribute 'nonsense'"):
        model.nonsense  # noqa: B018 - a name no model has keeps Python's own message
    frame_y2 = model["y2"].get_prediction(frame[["x1", "region"]]).summary_frame()
    np.testing.assert_allclose(frame_y2["mean"], model["y2"].predict(frame), rtol=1e-12)


def test_absorbed_fixed_effect_refuses_diagnostics(frame):
    with pytest.raises(InputError, match="no residuals to describe"):
        streamreg.fit(frame, formula="y ~ x1 | region", diagnostics=True)


def test_absorbed_fixed_effect_refuses_two_way_clusters(frame):
    with pytest.raises(InputError, match="two-way clusters are not available"):
        streamreg.fit(frame, formula="y ~ x1 | region", cov_type="cluster:g1,g2")


def test_absorbed_fixed_effect_refuses_hac(frame):
    with pytest.raises(InputError, match="HAC is not available"):
        streamreg.fit(frame, formula="y ~ x1 | region", cov_type="HAC:2")


def test_absorbed_fixed_effect_refuses_get_prediction_but_tests_its_slopes(frame):
    model = streamreg.fit(frame, formula="y ~ x1 + np.log(x2) | region")
    with pytest.raises(InputError, match="absorbed the fixed effect 'region'"):
        model.get_prediction(frame)
    test = model.t_test("x1 = 0")
    assert float(np.squeeze(test.tvalue)) == pytest.approx(model.tvalues["x1"], rel=1e-12)
    assert model.use_t and model.diagnostics is None
