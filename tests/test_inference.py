"""Inference from streaming passes equals statsmodels on the same data (1e-8 relative)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import statsmodels.api as sm
from sklearn.datasets import load_diabetes

import streamreg

SCALARS = [
    "rsquared",
    "rsquared_adj",
    "fvalue",
    "llf",
    "aic",
    "bic",
    "ssr",
    "scale",
    "df_model",
    "df_resid",
    "nobs",
]
VECTORS = ["params", "bse", "tvalues"]


def assert_close(a, b, rtol=1e-8):
    np.testing.assert_allclose(
        np.asarray(a, dtype=float), np.asarray(b, dtype=float), rtol=rtol, atol=0
    )


def assert_close_p(a, b):
    """p values: within 1e-8 absolute or relative, whichever is looser."""
    a, b = np.atleast_1d(np.asarray(a, dtype=float)), np.atleast_1d(np.asarray(b, dtype=float))
    assert np.all(np.abs(a - b) <= np.maximum(1e-8, 1e-8 * np.abs(b))), (a, b)


def assert_matches(model, ref):
    for name in VECTORS:
        assert_close(getattr(model, name), getattr(ref, name))
    for name in SCALARS:
        assert_close(getattr(model, name), getattr(ref, name))
    # A covariance entry is judged on the scale √(V_ii V_jj): entries that are zero in exact
    # arithmetic (centered features) are rounding noise in both programs.
    ref_cov = ref.cov_params()
    size = np.sqrt(np.outer(np.diag(ref_cov), np.diag(ref_cov)))
    assert np.all(np.abs(model.cov_params() - ref_cov) <= 1e-8 * size)
    for alpha in (0.05, 0.1):
        # An endpoint is params ∓ q·bse: judge it on the size of those two terms.
        size = np.abs(ref.params) + 3 * ref.bse
        diff = np.abs(model.conf_int(alpha=alpha) - ref.conf_int(alpha=alpha))
        assert np.all(diff <= 1e-8 * size[:, None]), diff
    assert_close_p(model.pvalues, ref.pvalues)
    assert_close_p(model.f_pvalue, ref.f_pvalue)
    # statsmodels takes √(λmax/λmin) of XᵀX in float64, so its own value carries a relative
    # error of about ε·cond²; compare both with the singular values of the weighted design.
    wexog = ref.model.wexog
    exact_cond = np.linalg.cond(wexog)
    noise = max(1e-10, 10 * np.finfo(float).eps * exact_cond**2)
    assert_close(model.condition_number, exact_cond, rtol=noise)
    assert_close(ref.condition_number, exact_cond, rtol=noise)


def write_frame(path, frame: pd.DataFrame, row_group_size=None):
    pq.write_table(
        pa.Table.from_pandas(frame, preserve_index=False), path, row_group_size=row_group_size
    )
    return path


def sm_fit(frame, target, features, weight=None, intercept=True, **fit_kw):
    x = frame[features].to_numpy(dtype=float)
    if intercept:
        x = sm.add_constant(x, has_constant="add")
    y = frame[target].to_numpy(dtype=float)
    model = sm.WLS(y, x, weights=frame[weight].to_numpy()) if weight else sm.OLS(y, x)
    return model.fit(**fit_kw)


@pytest.fixture
def synthetic(tmp_path, rng):
    n = 700
    frame = pd.DataFrame(
        {
            "a": rng.normal(size=n) * 3 + 10,
            "b": rng.uniform(-5, 5, size=n),
            "c": rng.exponential(size=n) + 1e4,
            "w": rng.uniform(0.2, 4.0, size=n),
            "g": rng.choice(["north", "south", "east", "west", "up", "down", "in"], size=n),
        }
    )
    noise = rng.normal(size=n) * (1 + np.abs(frame["b"]))  # heteroskedastic on purpose
    frame["y"] = 3 + 0.5 * frame["a"] - 2 * frame["b"] + 0.1 * frame["c"] + noise
    return frame, write_frame(tmp_path / "syn.parquet", frame, row_group_size=100)


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("intercept", [True, False])
@pytest.mark.parametrize("batch_size", [None, 37])
def test_nonrobust_inference_matches_statsmodels(synthetic, weighted, intercept, batch_size):
    frame, path = synthetic
    features = ["a", "b", "c"]
    model = streamreg.fit(
        path,
        target="y",
        features=features,
        weight="w" if weighted else None,
        fit_intercept=intercept,
        batch_size=batch_size,
    )
    ref = sm_fit(frame, "y", features, "w" if weighted else None, intercept)
    assert model.cov_type == "nonrobust" and model.use_t
    assert_matches(model, ref)
    assert model.param_names[: 1 + intercept] == (["Intercept", "a"] if intercept else ["a"])


@pytest.mark.parametrize("cov_type", ["HC0", "HC1", "HC2", "HC3"])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("intercept", [True, False])
def test_robust_inference_matches_statsmodels(synthetic, cov_type, weighted, intercept):
    frame, path = synthetic
    features = ["a", "b", "c"]
    model = streamreg.fit(
        path,
        target="y",
        features=features,
        weight="w" if weighted else None,
        fit_intercept=intercept,
        batch_size=64,
        cov_type=cov_type,
    )
    ref = sm_fit(frame, "y", features, "w" if weighted else None, intercept, cov_type=cov_type)
    assert model.cov_type == cov_type and not model.use_t
    assert_matches(model, ref)


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("spelling", ["cluster:g", "groups"])
def test_cluster_robust_inference_matches_statsmodels(synthetic, weighted, spelling):
    frame, path = synthetic
    features = ["a", "b", "c"]
    kwargs = (
        {"cov_type": "cluster:g"}
        if spelling == "cluster:g"
        else {"cov_type": "cluster", "groups": "g"}
    )
    model = streamreg.fit(
        path,
        target="y",
        features=features,
        weight="w" if weighted else None,
        batch_size=50,
        **kwargs,
    )
    codes = pd.factorize(frame["g"])[0]
    ref = sm_fit(
        frame,
        "y",
        features,
        "w" if weighted else None,
        True,
        cov_type="cluster",
        cov_kwds={"groups": codes},
    )
    assert model.cov_type == "cluster"
    assert_matches(model, ref)


def test_robust_errors_do_not_depend_on_chunking(synthetic):
    _, path = synthetic
    one = streamreg.fit(path, target="y", features=["a", "b", "c"], cov_type="HC3")
    many = streamreg.fit(path, target="y", features=["a", "b", "c"], cov_type="HC3", batch_size=13)
    assert_close(one.bse, many.bse, rtol=1e-10)


def test_robust_errors_survive_large_offsets(tmp_path, rng):
    n = 500
    frame = pd.DataFrame({"t": 1.6e9 + rng.uniform(0, 100, size=n)})
    frame["y"] = (
        2.0 + 0.03 * (frame["t"] - 1.6e9) + rng.normal(size=n) * (1 + (frame["t"] - 1.6e9) / 50)
    )
    path = write_frame(tmp_path / "ts.parquet", frame, row_group_size=64)
    model = streamreg.fit(path, target="y", cov_type="HC1", batch_size=100)
    centered = frame.assign(t=frame["t"] - 1.6e9)
    ref = sm_fit(centered, "y", ["t"], None, True, cov_type="HC1")
    # The slope's error does not depend on where t starts; statsmodels sees centered data here.
    assert_close(model.bse.iloc[1], ref.bse[1], rtol=1e-8)


@pytest.mark.parametrize("intercept", [True, False])
def test_real_data_longley_from_statsmodels(tmp_path, intercept):
    data = sm.datasets.longley.load_pandas().data
    path = write_frame(tmp_path / "longley.parquet", data, row_group_size=5)
    features = [c for c in data.columns if c != "TOTEMP"]
    model = streamreg.fit(
        path, target="TOTEMP", features=features, fit_intercept=intercept, batch_size=3, solver="qr"
    )
    assert_matches(model, sm_fit(data, "TOTEMP", features, None, intercept))


def test_real_data_diabetes_from_scikit_learn(tmp_path):
    bunch = load_diabetes(as_frame=True)
    frame = bunch.frame
    path = write_frame(tmp_path / "diabetes.parquet", frame, row_group_size=100)
    features = list(bunch.feature_names)
    for cov_type in (None, "HC3"):
        model = streamreg.fit(
            path, target="target", features=features, batch_size=57, cov_type=cov_type
        )
        kw = {"cov_type": cov_type} if cov_type else {}
        assert_matches(model, sm_fit(frame, "target", features, None, True, **kw))


def test_saved_model_carries_its_inference(tmp_path, synthetic):
    _, path = synthetic
    model = streamreg.fit(path, target="y", features=["a", "b", "c"], cov_type="HC2", weight="w")
    out = tmp_path / "m.json"
    model.save(out)
    again = streamreg.load(out)
    assert again.cov_type == "HC2"
    for name in VECTORS + ["pvalues"]:
        np.testing.assert_array_equal(getattr(again, name), getattr(model, name))
    for name in SCALARS + ["f_pvalue"]:
        assert getattr(again, name) == getattr(model, name)


def test_bad_cov_type_is_one_clear_error(synthetic):
    _, path = synthetic
    with pytest.raises(streamreg.InputError, match="cov_type must be one of"):
        streamreg.fit(path, target="y", cov_type="HC9")
    with pytest.raises(streamreg.InputError, match="needs the column"):
        streamreg.fit(path, target="y", cov_type="cluster")
    with pytest.raises(streamreg.InputError, match="cluster column 'nope' is not in the data"):
        streamreg.fit(path, target="y", cov_type="cluster:nope")
