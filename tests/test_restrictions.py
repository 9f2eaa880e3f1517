"""t_test, f_test and wald_test of linear restrictions equal statsmodels' (1e-8), robust too."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from second_pass import blocks, fold

import streamreg
from streamreg.errors import InputError
from streamreg.model.diagnostics.residuals import scores
from streamreg.model.hac import NeweyWestMeat, hac_covariance
from streamreg.model.restrictions import f_test, linear_restrictions, t_test, wald_test

LONGLEY = sm.datasets.longley.load_pandas().data
FEATURES = ["GNPDEFL", "GNP", "UNEMP", "ARMED", "POP", "YEAR"]
RESTRICTIONS = [
    "GNPDEFL = GNP",
    "UNEMP = 2",
    "(GNPDEFL = GNP), (UNEMP = 2), (YEAR/1829 = 1)",
    "2*ARMED + 3*POP = 1",
    "UNEMP = -ARMED, POP = -2",
    ["GNP = 0", "YEAR = 0"],
    "Intercept = 0",
]


def reference(cov_type="nonrobust", use_t=None, **cov_kwds):
    x = sm.add_constant(LONGLEY[FEATURES]).rename(columns={"const": "Intercept"})
    kw = {"cov_type": cov_type, "use_t": use_t}
    if cov_kwds:
        kw["cov_kwds"] = cov_kwds
    return sm.OLS(LONGLEY["TOTEMP"], x).fit(**kw)


def ours(cov_type=None):
    return streamreg.fit(
        LONGLEY, target="TOTEMP", features=FEATURES, cov_type=cov_type, batch_size=5
    )


def close(a, b, rtol=1e-8) -> bool:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return a.shape == b.shape and bool(np.all(np.abs(a - b) <= rtol * np.abs(b) + 1e-12))


def close_p(a, b) -> bool:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return a.shape == b.shape and bool(np.all(np.abs(a - b) <= np.maximum(1e-8, 1e-8 * np.abs(b))))


def t_mismatches(got, ref) -> list[str]:
    """What of a t test differs from statsmodels' (nothing: an empty list)."""
    off = [
        name
        for name in ("effect", "sd", "tvalue")
        if not close(getattr(got, name), getattr(ref, name))
    ]
    off += [] if got.distribution == ref.distribution else ["distribution"]
    off += [] if close_p(got.pvalue, ref.pvalue) else ["pvalue"]
    for alpha in (0.05, 0.2):
        ci, ref_ci = got.conf_int(alpha), ref.conf_int(alpha)
        scale = np.abs(np.asarray(ref.effect)).reshape(-1, 1) + 3 * np.asarray(ref.sd).reshape(
            -1, 1
        )
        if not (ci.shape == ref_ci.shape and np.all(np.abs(ci - ref_ci) <= 1e-8 * scale)):
            off.append(f"conf_int({alpha})")
    if ref.distribution == "t" and got.df_denom != ref.df_denom:
        off.append("df_denom")
    return off


def wald_mismatches(got, ref) -> list[str]:
    """What of an F or Wald test differs from statsmodels' (nothing: an empty list)."""
    off = [] if got.distribution == ref.distribution else ["distribution"]
    off += [] if close(got.statistic, ref.statistic) else ["statistic"]
    off += [] if close_p(got.pvalue, ref.pvalue) else ["pvalue"]
    off += [] if got.df_denom == ref.df_denom else ["df_denom"]
    if ref.distribution == "F":
        off += [] if close(got.fvalue, ref.fvalue) else ["fvalue"]
        off += [] if got.df_num == ref.df_num else ["df_num"]
    return off


def run(model_params, cov, names, df, use_t, restriction):
    return (
        t_test(model_params, cov, names, df, use_t, restriction),
        f_test(model_params, cov, names, df, restriction),
        wald_test(model_params, cov, names, df, use_t, restriction),
    )


@pytest.mark.parametrize("restriction", RESTRICTIONS, ids=str)
def test_nonrobust_tests_match_statsmodels(restriction):
    model, ref = ours(), reference()
    tt, ft, wt = run(
        model.params, model.cov_params(), model.param_names, model.df_resid, True, restriction
    )
    assert t_mismatches(tt, ref.t_test(restriction)) == []
    assert wald_mismatches(ft, ref.f_test(restriction)) == []
    assert wald_mismatches(wt, ref.wald_test(restriction, scalar=True)) == []


@pytest.mark.parametrize("cov_type", ["HC0", "HC1", "HC3"])
@pytest.mark.parametrize("use_t", [False, True])
@pytest.mark.parametrize("restriction", RESTRICTIONS[:3], ids=str)
def test_robust_tests_match_statsmodels(cov_type, use_t, restriction):
    model, ref = ours(cov_type), reference(cov_type, use_t=use_t)
    tt, ft, wt = run(
        model.params, model.cov_params(), model.param_names, model.df_resid, use_t, restriction
    )
    assert t_mismatches(tt, ref.t_test(restriction)) == []
    assert wald_mismatches(ft, ref.f_test(restriction)) == []
    assert wald_mismatches(wt, ref.wald_test(restriction, scalar=True)) == []


def test_hac_covariance_tests_match_statsmodels():
    # Longley's HAC covariance is ill-conditioned enough that statsmodels' own figures are off by
    # up to 6e-8 (tests/test_hac.py checks ours against exact arithmetic there); use stackloss.
    data = sm.datasets.stackloss.load_pandas().data
    features = ["AIRFLOW", "WATERTEMP", "ACIDCONC"]
    model = streamreg.fit(data, target="STACKLOSS", features=features, batch_size=4)
    x, y = data[features].to_numpy(), data["STACKLOSS"].to_numpy()
    meat = fold(
        [
            NeweyWestMeat.from_scores(scores(b.x_centered, b.resid, None, True), 2)
            for b in blocks(model, x, y, None, 3)
        ],
        "left",
    )
    cov = hac_covariance(
        meat,
        model.solution_.xtx_inv,
        model.state_.weight_sum,
        (model.state_.mean + model.state_.mean_lo)[:-1],
    )
    exog = sm.add_constant(data[features]).rename(columns={"const": "Intercept"})
    ref = sm.OLS(y, exog).fit(cov_type="HAC", cov_kwds={"maxlags": 2})
    restriction = "(AIRFLOW = 2*WATERTEMP), (ACIDCONC = 0)"
    tt, ft, wt = run(model.params, cov, model.param_names, model.df_resid, False, restriction)
    assert t_mismatches(tt, ref.t_test(restriction)) == []
    assert wald_mismatches(ft, ref.f_test(restriction)) == []
    assert wald_mismatches(wt, ref.wald_test(restriction, scalar=True)) == []


def test_cluster_tests_use_the_inference_degrees_of_freedom(rng):
    n = 300
    frame = pd.DataFrame(
        {
            "a": rng.normal(size=n),
            "b": rng.normal(size=n) + 2,
            "g": rng.choice(list("abcdefgh"), size=n),
        }
    )
    frame["y"] = 1 + frame["a"] - frame["b"] + rng.normal(size=n)
    model = streamreg.fit(
        frame, target="y", features=["a", "b"], cov_type="cluster:g", batch_size=40
    )
    x = sm.add_constant(frame[["a", "b"]]).rename(columns={"const": "Intercept"})
    ref = sm.OLS(frame["y"], x).fit(
        cov_type="cluster", use_t=True, cov_kwds={"groups": pd.factorize(frame["g"])[0]}
    )
    df = model.robust_["n_groups"] - 1
    assert df == ref.df_resid_inference
    tt, ft, wt = run(model.params, model.cov_params(), model.param_names, df, True, "a = 1, b = -1")
    assert t_mismatches(tt, ref.t_test("a = 1, b = -1")) == []
    assert wald_mismatches(ft, ref.f_test("a = 1, b = -1")) == []
    assert wald_mismatches(wt, ref.wald_test("a = 1, b = -1", scalar=True)) == []


def test_matrix_and_pair_forms_and_summary_frame():
    model, ref = ours(), reference()
    r = np.zeros((2, 7))
    r[0, 1], r[0, 2], r[1, 3] = 1.0, -1.0, 1.0
    for spec in (r, (r, np.array([0.0, 2.0])), r[0]):
        tt = t_test(model.params, model.cov_params(), model.param_names, model.df_resid, True, spec)
        assert t_mismatches(tt, ref.t_test(spec)) == []
    tt = t_test(
        model.params, model.cov_params(), model.param_names, model.df_resid, True, RESTRICTIONS[2]
    )
    got, want = tt.summary_frame(alpha=0.1), ref.t_test(RESTRICTIONS[2]).summary_frame(alpha=0.1)
    assert list(got.columns) == list(want.columns) and list(got.index) == list(want.index)
    np.testing.assert_allclose(got.to_numpy(), want.to_numpy(), rtol=1e-8, atol=1e-12)


def test_names_that_are_not_identifiers_and_aliased_parameters(rng):
    n = 60
    frame = pd.DataFrame({"x^2": rng.normal(size=n), "log(z)": rng.normal(size=n)})
    frame["dup"] = 2 * frame["x^2"]
    frame["y"] = frame["x^2"] - frame["log(z)"] + rng.normal(size=n)
    model = streamreg.fit(frame, target="y", features=["x^2", "dup", "log(z)"], drop_collinear=True)
    assert np.isnan(model.params.iloc[2])
    tt = t_test(
        model.params,
        model.cov_params(),
        model.param_names,
        model.df_resid,
        True,
        "`x^2` + `log(z)` = 0",
    )
    kept = streamreg.fit(frame, target="y", features=["x^2", "log(z)"])
    again = t_test(
        kept.params,
        kept.cov_params(),
        kept.param_names,
        kept.df_resid,
        True,
        "`x^2` + `log(z)` = 0",
    )
    assert close(tt.tvalue, again.tvalue, rtol=1e-10)
    with pytest.raises(InputError, match="involves 'dup', which is aliased"):
        t_test(model.params, model.cov_params(), model.param_names, model.df_resid, True, "dup = 0")


def test_bad_restrictions_are_refused_in_a_sentence():
    names = ["Intercept", "a", "b"]
    with pytest.raises(
        InputError, match="names 'c', which is not a parameter; the parameters are Intercept, a, b"
    ):
        linear_restrictions("c = 1", names)
    with pytest.raises(InputError, match="is not a linear restriction"):
        linear_restrictions("a = ", names)
    with pytest.raises(InputError, match="is not a linear restriction"):
        linear_restrictions("a * b = 1", names)
    with pytest.raises(InputError, match="row 1 involves no parameter"):
        linear_restrictions("a = a", names)
    with pytest.raises(InputError, match="has 4 columns; expected 3, one per parameter"):
        linear_restrictions(np.ones((1, 4)), names)
