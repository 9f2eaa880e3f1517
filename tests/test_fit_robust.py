"""Robust covariances through ``streamreg.fit``: HAC over ordered data, two-way clusters,
``use_t``, few clusters, and the tests of linear restrictions — each against statsmodels, to
1e-8, whatever the chunking (in-memory batches, Parquet files in sorted order, Dask)."""

from __future__ import annotations

import json
import warnings

import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from typer.testing import CliRunner

import streamreg
from streamreg.cli import app

RTOL = 1e-8
runner = CliRunner()


@pytest.fixture(scope="module")
def ordered() -> pd.DataFrame:
    """Synthetic ordered data: an AR(1) regressor and AR(1) errors (HAC's reason to be)."""
    rng = np.random.default_rng(20261129)
    n = 600
    x = np.zeros(n)
    e = np.zeros(n)
    for t in range(1, n):
        x[t] = 0.7 * x[t - 1] + rng.normal()
        e[t] = 0.6 * e[t - 1] + rng.normal()
    z = rng.normal(size=n) + 5.0
    return pd.DataFrame({"x": x, "z": z, "y": 1.0 + 0.5 * x - 0.25 * z + e})


def statsmodels_fit(frame, target, features, **fit_kw):
    exog = sm.add_constant(frame[features]).rename(columns={"const": "Intercept"})
    return sm.OLS(frame[target], exog).fit(**fit_kw)


def fits(frame, tmp_path, **kwargs):
    """The same ordered rows four ways."""
    yield "memory", streamreg.fit(frame, **kwargs)
    yield "memory, 7-row batches", streamreg.fit(frame, batch_size=7, **kwargs)
    folder = tmp_path / "files"
    folder.mkdir(exist_ok=True)
    for i, rows in enumerate(np.array_split(np.arange(len(frame)), 4)):
        frame.iloc[rows].to_parquet(folder / f"part-{i}.parquet", index=False)
    yield "4 files, 11-row batches", streamreg.fit(folder, batch_size=11, **kwargs)
    partitions = dd.from_pandas(frame.reset_index(drop=True), npartitions=5, sort=False)
    yield "dask", streamreg.fit(partitions, **kwargs)


def assert_inference(model, ref, label):
    np.testing.assert_allclose(model.params.to_numpy(), ref.params, rtol=1e-10, err_msg=label)
    np.testing.assert_allclose(model.cov_params(), ref.cov_params(), rtol=RTOL, err_msg=label)
    np.testing.assert_allclose(model.bse.to_numpy(), ref.bse, rtol=RTOL, err_msg=label)
    np.testing.assert_allclose(model.pvalues.to_numpy(), ref.pvalues, rtol=1e-7, err_msg=label)
    np.testing.assert_allclose(
        model.conf_int().to_numpy(), np.asarray(ref.conf_int()), rtol=RTOL, err_msg=label
    )
    np.testing.assert_allclose(model.fvalue, ref.fvalue, rtol=RTOL, err_msg=label)
    np.testing.assert_allclose(model.f_pvalue, ref.f_pvalue, rtol=1e-7, err_msg=label)


@pytest.mark.parametrize("spelling", [dict(cov_type="HAC:2"), dict(cov_type="HAC", maxlags=2)])
def test_hac_matches_statsmodels_across_chunkings(ordered, tmp_path, spelling):
    ref = statsmodels_fit(ordered, "y", ["x", "z"], cov_type="HAC", cov_kwds={"maxlags": 2})
    for label, model in fits(ordered, tmp_path, target="y", **spelling):
        assert model.cov_type == "HAC" and model.robust_["maxlags"] == 2
        assert_inference(model, ref, label)


@pytest.mark.parametrize("lags", [0, 1, 5, 30])
def test_hac_lags_including_more_than_a_batch(ordered, lags):
    ref = statsmodels_fit(ordered, "y", ["x", "z"], cov_type="HAC", cov_kwds={"maxlags": lags})
    model = streamreg.fit(ordered, target="y", cov_type=f"HAC:{lags}", batch_size=4)
    assert_inference(model, ref, f"{lags} lags")


def test_hac_with_use_t_and_its_file_form(ordered, tmp_path):
    ref = statsmodels_fit(
        ordered, "y", ["x", "z"], cov_type="HAC", cov_kwds={"maxlags": 3}, use_t=True
    )
    model = streamreg.fit(ordered, target="y", cov_type="HAC:3", use_t=True, diagnostics=False)
    assert model.use_t
    assert_inference(model, ref, "use_t")
    model.save(tmp_path / "m.json")
    saved = json.loads((tmp_path / "m.json").read_text())
    assert saved["format_version"] == 2 and saved["use_t"] is True
    assert saved["robust"]["cov_type"] == "HAC" and saved["robust"]["maxlags"] == 3
    again = streamreg.load(tmp_path / "m.json")
    assert_inference(again, ref, "loaded")


@pytest.fixture(scope="module")
def grunfeld() -> pd.DataFrame:
    frame = sm.datasets.grunfeld.load_pandas().data
    frame["firm"] = frame["firm"].astype(str)
    frame["year"] = frame["year"].astype(int)
    return frame


def test_two_way_clusters_match_statsmodels_across_chunkings(grunfeld, tmp_path):
    groups = np.column_stack([pd.factorize(grunfeld["firm"])[0], pd.factorize(grunfeld["year"])[0]])
    ref = statsmodels_fit(
        grunfeld, "invest", ["value", "capital"], cov_type="cluster", cov_kwds={"groups": groups}
    )
    kwargs = dict(target="invest", features=["value", "capital"], cov_type="cluster:firm,year")
    for label, model in fits(grunfeld, tmp_path, **kwargs):
        assert model.robust_["groups"] == ["firm", "year"]
        assert model.robust_["n_groups_each"][:2] == [11, 20]  # 11 firms, 20 years
        assert model.df_resid_inference == 10  # min(11, 20) − 1, as statsmodels
        assert_inference(model, ref, label)
    same = streamreg.fit(
        grunfeld, target="invest", features=["value", "capital"], cov_type="cluster",
        groups=["firm", "year"],
    )  # fmt: skip
    np.testing.assert_allclose(same.cov_params(), ref.cov_params(), rtol=RTOL)


@pytest.mark.parametrize("cov", ["HC0", "HC1", "HC2", "HC3"])
def test_use_t_for_heteroskedasticity_robust_fits(ordered, cov):
    ref = statsmodels_fit(ordered, "y", ["x", "z"], cov_type=cov, use_t=True)
    model = streamreg.fit(ordered, target="y", cov_type=cov, use_t=True, batch_size=50)
    assert_inference(model, ref, cov)
    tests = model.t_test("x = 0"), ref.t_test("x = 0")
    assert tests[0].distribution == "t"
    np.testing.assert_allclose(tests[0].pvalue, tests[1].pvalue, rtol=1e-7)


def test_use_t_for_clusters_takes_g_minus_one_degrees_of_freedom(grunfeld):
    codes = pd.factorize(grunfeld["firm"])[0]
    ref = statsmodels_fit(
        grunfeld, "invest", ["value", "capital"], cov_type="cluster",
        cov_kwds={"groups": codes}, use_t=True,
    )  # fmt: skip
    model = streamreg.fit(
        grunfeld, target="invest", features=["value", "capital"], cov_type="cluster:firm",
        use_t=True,
    )  # fmt: skip
    assert model.df_resid_inference == 10
    assert_inference(model, ref, "cluster, use_t")
    # And the normal distribution on request for a non-robust fit.
    z = streamreg.fit(grunfeld, target="invest", features=["value", "capital"], use_t=False)
    zref = statsmodels_fit(grunfeld, "invest", ["value", "capital"], use_t=False)
    np.testing.assert_allclose(z.pvalues.to_numpy(), zref.pvalues, rtol=1e-7)
    assert "P>|z|" in str(z.summary())


def test_fewer_clusters_than_parameters_warn_and_report_as_statsmodels(rng):
    n = 120
    frame = pd.DataFrame(rng.normal(size=(n, 4)), columns=["a", "b", "c", "d"])
    frame["y"] = frame @ [1.0, 2.0, -1.0, 0.5] + rng.normal(size=n)
    frame["g"] = np.repeat(["p", "q", "r"], n // 3)  # 3 clusters, 5 parameters
    features = ["a", "b", "c", "d"]
    codes = pd.factorize(frame["g"])[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = statsmodels_fit(frame, "y", features, cov_type="cluster", cov_kwds={"groups": codes})
        ref_f = ref.fvalue
    model = streamreg.fit(frame, target="y", features=features, cov_type="cluster:g")
    assert any("only 3 clusters for 5 parameters" in w for w in model.warnings_)
    np.testing.assert_allclose(model.bse.to_numpy(), ref.bse, rtol=RTOL)
    with pytest.warns(UserWarning, match="does not have full rank"):
        fvalue = model.fvalue
    np.testing.assert_allclose(fvalue, ref_f, rtol=1e-7)
    assert "only 3 clusters" in str(model.summary())


RESTRICTIONS = ["x = 0", "x = -2 * z", "x + z = 0.3", "(x = 0.5), (z = -0.25)", "Intercept = 1"]


@pytest.mark.parametrize("cov", [None, "HC1", "HAC:2"])
@pytest.mark.parametrize("restriction", RESTRICTIONS)
def test_t_f_and_wald_tests_match_statsmodels(ordered, cov, restriction):
    kw = {} if cov is None else {"cov_type": "HAC", "cov_kwds": {"maxlags": 2}}
    if cov == "HC1":
        kw = {"cov_type": "HC1"}
    ref = statsmodels_fit(ordered, "y", ["x", "z"], **kw)
    model = streamreg.fit(ordered, target="y", cov_type=cov, batch_size=64, diagnostics=False)
    ours, theirs = model.t_test(restriction), ref.t_test(restriction)
    np.testing.assert_allclose(np.ravel(ours.effect), np.ravel(theirs.effect), rtol=1e-10)
    np.testing.assert_allclose(np.ravel(ours.sd), np.ravel(theirs.sd), rtol=RTOL)
    np.testing.assert_allclose(np.ravel(ours.pvalue), np.ravel(theirs.pvalue), rtol=1e-7)
    assert ours.distribution == ("t" if cov is None else "norm")
    f_ours, f_theirs = model.f_test(restriction), ref.f_test(restriction)
    np.testing.assert_allclose(np.squeeze(f_ours.fvalue), np.squeeze(f_theirs.fvalue), rtol=RTOL)
    np.testing.assert_allclose(f_ours.pvalue, f_theirs.pvalue, rtol=1e-7)
    w_ours, w_theirs = model.wald_test(restriction), ref.wald_test(restriction, scalar=True)
    np.testing.assert_allclose(w_ours.statistic, w_theirs.statistic, rtol=RTOL)
    np.testing.assert_allclose(w_ours.pvalue, w_theirs.pvalue, rtol=1e-7)


def test_a_restriction_naming_no_parameter_is_one_sentence(ordered):
    model = streamreg.fit(ordered, target="y")
    with pytest.raises(streamreg.InputError, match="names 'w', which is not a parameter"):
        model.t_test("w = 0")


@pytest.mark.parametrize(
    "kwargs, words",
    [
        (dict(cov_type="HAC"), "needs the number of lags"),
        (dict(cov_type="HAC:x"), "whole number of rows"),
        (dict(cov_type="HAC:2", maxlags=3), "give the HAC lags once"),
        (dict(cov_type="cluster:a,b,c"), "two different columns"),
        (dict(cov_type="HC3", maxlags=2), "takes no column and no lags"),
        (dict(maxlags=2), "maxlags was given but the covariance is not robust"),
        (dict(use_t="yes"), "use_t must be True, False or None"),
    ],
)
def test_bad_covariance_requests_are_one_sentence(ordered, kwargs, words):
    with pytest.raises(streamreg.InputError, match=words):
        streamreg.fit(ordered, target="y", **kwargs)


def test_cli_hac_and_two_way_clusters(grunfeld, ordered, tmp_path):
    ordered.to_parquet(tmp_path / "ordered.parquet", index=False)
    out = tmp_path / "hac.json"
    args = ["fit", str(tmp_path / "ordered.parquet"), "-y", "y", "--cov", "HAC:2", "-o", str(out)]
    result = runner.invoke(app, [*args, "--use-t", "--diagnostics", "-q"])
    assert result.exit_code == 0, result.output
    model = streamreg.load(out)
    ref = statsmodels_fit(
        ordered, "y", ["x", "z"], cov_type="HAC", cov_kwds={"maxlags": 2}, use_t=True
    )
    assert_inference(model, ref, "cli")
    assert model.diagnostics is not None
    grunfeld.to_parquet(tmp_path / "g.parquet", index=False)
    result = runner.invoke(
        app,
        ["fit", str(tmp_path / "g.parquet"), "-y", "invest", "-x", "value,capital", "--cov",
         "cluster:firm,year", "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["robust"]["groups"] == ["firm", "year"]
    bare = ["fit", str(tmp_path / "g.parquet"), "-y", "invest", "--cov", "HAC"]
    result = runner.invoke(app, bare)
    assert result.exit_code == 2 and "needs the number of lags" in result.output
