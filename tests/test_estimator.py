"""StreamingLinearRegression: scikit-learn's estimator checks, and the same answers as the engine,
scikit-learn and statsmodels; partial_fit over chunks equals one fit."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LinearRegression
from sklearn.metrics import r2_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

import streamreg
from streamreg import CollinearityError, InputError, StreamingLinearRegression
from streamreg.estimator import UnsolvedWarning

# ---------------------------------------------------------------- scikit-learn's check suite
# Every check the estimator is excused from, with the reason; the same for every instance below.
# Not listed because scikit-learn itself skips it: check_array_api_input (SCIPY_ARRAY_API unset;
# the estimator takes NumPy, pandas and Dask, not array-API namespaces).
# None: check_sample_weight_equivalence_on_dense_data (15 rows × 30 features, under-determined)
# passes since rank_deficient="minimum_norm" (the default) gives lstsq's answer, and
# drop_collinear=True aliases the columns beyond the rank, as R does.
EXPECTED_FAILED_CHECKS: dict[str, str] = {}

CHECKED = [
    StreamingLinearRegression(),
    StreamingLinearRegression(solver="qr", batch_size=7),
    StreamingLinearRegression(fit_intercept=False, solver="cholesky"),
    StreamingLinearRegression(solver="exact"),
    # allow_nan is True for nulls="drop", so check_estimators_nan_inf is not run for this one.
    StreamingLinearRegression(nulls="drop", drop_collinear=True),
]


@parametrize_with_checks(CHECKED, expected_failed_checks=lambda est: EXPECTED_FAILED_CHECKS)
def test_sklearn_estimator_checks(estimator, check):
    assert check(estimator) is None  # a check raises when the estimator fails it


# ---------------------------------------------------------------- data
@pytest.fixture
def data(rng):
    n = 400
    x = rng.normal(size=(n, 4)) * [1.0, 3.0, 0.5, 8.0] + [0.0, 40.0, -7.0, 1000.0]
    x[:, 2] += 0.3 * x[:, 0]  # correlated, still well conditioned
    y = 2.5 + x @ [1.5, -0.75, 4.0, 0.01] + rng.normal(scale=0.7, size=n)
    w = rng.uniform(0.2, 3.0, size=n)
    return x, y, w


def _params(est):
    return np.r_[est.intercept_, est.coef_]


# ---------------------------------------------------------------- agreement with other libraries
@pytest.mark.parametrize("solver", ["auto", "cholesky", "qr", "exact"])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_coefficients_equal_sklearn_and_statsmodels(data, solver, weighted, fit_intercept):
    x, y, w = data
    w = w if weighted else None
    est = StreamingLinearRegression(fit_intercept=fit_intercept, solver=solver, batch_size=64)
    assert est.fit(x, y, sample_weight=w) is est
    ref = LinearRegression(fit_intercept=fit_intercept).fit(x, y, sample_weight=w)
    np.testing.assert_allclose(est.coef_, ref.coef_, rtol=1e-10)
    np.testing.assert_allclose(
        est.intercept_, ref.intercept_, rtol=1e-10, atol=0 if fit_intercept else 1e-300
    )
    design = sm.add_constant(x) if fit_intercept else x
    sm_fit = sm.WLS(y, design, weights=np.ones(len(y)) if w is None else w).fit()
    np.testing.assert_allclose(est.model_.params, sm_fit.params, rtol=1e-10)
    np.testing.assert_allclose(est.model_.bse, sm_fit.bse, rtol=1e-8)
    np.testing.assert_allclose(est.predict(x), ref.predict(x), rtol=1e-10)
    assert est.n_samples_seen_ == len(y) and est.n_features_in_ == 4
    assert not hasattr(est, "feature_names_in_")  # numpy input has no column names


def test_fit_is_streamreg_fit(data):
    x, y, w = data
    est = StreamingLinearRegression(batch_size=50).fit(x, y, sample_weight=w)
    model = streamreg.fit(x, y, weight=w, batch_size=50)
    np.testing.assert_array_equal(est.coef_, model.coef_)
    assert est.intercept_ == model.intercept_
    assert est.model_.state_ == model.state_


def test_score_is_r2(data):
    x, y, w = data
    est = StreamingLinearRegression().fit(x[:300], y[:300])
    assert est.score(x[300:], y[300:]) == pytest.approx(
        r2_score(y[300:], est.predict(x[300:])), rel=1e-14
    )
    assert est.score(x[:300], y[:300]) == pytest.approx(est.model_.r2_, rel=1e-10)
    weighted = est.score(x, y, sample_weight=w)
    assert weighted == pytest.approx(r2_score(y, est.predict(x), sample_weight=w), rel=1e-14)


def test_weights_equal_repeated_rows(data):
    x, y, _ = data
    counts = np.random.default_rng(5).integers(0, 4, size=len(y))
    weighted = StreamingLinearRegression().fit(x, y, sample_weight=counts)
    repeated = StreamingLinearRegression().fit(np.repeat(x, counts, axis=0), np.repeat(y, counts))
    np.testing.assert_allclose(_params(weighted), _params(repeated), rtol=1e-11)


# ---------------------------------------------------------------- partial_fit
@pytest.mark.parametrize("solver", ["auto", "cholesky", "qr", "exact"])
@pytest.mark.parametrize("nchunks", [1, 3, 7])
@pytest.mark.parametrize("weighted", [False, True])
def test_partial_fit_over_chunks_equals_one_fit(data, solver, nchunks, weighted):
    x, y, w = data
    w = w if weighted else None
    whole = StreamingLinearRegression(solver=solver).fit(x, y, sample_weight=w)
    est = StreamingLinearRegression(solver=solver, batch_size=32)
    bounds = np.linspace(0, len(y), nchunks + 1).astype(int)
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        assert est.partial_fit(x[lo:hi], y[lo:hi], None if w is None else w[lo:hi]) is est
    np.testing.assert_allclose(est.coef_, whole.coef_, rtol=1e-12)
    np.testing.assert_allclose(est.intercept_, whole.intercept_, rtol=1e-12)
    np.testing.assert_allclose(est.model_.bse, whole.model_.bse, rtol=1e-10)
    assert est.n_samples_seen_ == len(y) and est.model_.rows_read_ == len(y)
    expected_kind = {"qr": "QRState", "exact": "ExactState"}.get(
        solver, "MomentState"
    )  # auto: cholesky
    assert type(est.model_.state_).__name__ == expected_kind
    if weighted:
        assert est.model_.llf == pytest.approx(whole.model_.llf, rel=1e-12)


def test_exact_partial_fit_is_bit_for_bit_one_fit(data):
    x, y, w = data
    whole = StreamingLinearRegression(solver="exact").fit(x, y, sample_weight=w)
    est = StreamingLinearRegression(solver="exact", batch_size=16)
    for lo in range(0, len(y), 57):
        est.partial_fit(x[lo : lo + 57], y[lo : lo + 57], sample_weight=w[lo : lo + 57])
    assert est.model_.state_ == whole.model_.state_
    np.testing.assert_array_equal(_params(est), _params(whole))


def test_partial_fit_after_fit_adds_rows(data):
    x, y, _ = data
    est = StreamingLinearRegression().fit(x[:150], y[:150]).partial_fit(x[150:], y[150:])
    whole = StreamingLinearRegression().fit(x, y)
    np.testing.assert_allclose(_params(est), _params(whole), rtol=1e-12)
    refit = est.fit(x[:150], y[:150])  # fit starts again
    assert refit.n_samples_seen_ == 150


def test_partial_fit_waits_for_enough_rows(data):
    x, y, _ = data
    est = StreamingLinearRegression(rank_deficient="error")
    with pytest.warns(
        UnsolvedWarning, match="kept the 2 rows .* only 2 usable rows for 5 coefficients"
    ):
        est.partial_fit(x[:2], y[:2])
    with pytest.raises(NotFittedError):
        est.predict(x)
    for start in range(2, len(y), 100):
        est.partial_fit(x[start : start + 100], y[start : start + 100])
    whole = StreamingLinearRegression().fit(x, y)
    np.testing.assert_allclose(_params(est), _params(whole), rtol=1e-12)


def test_partial_fit_of_too_few_rows_is_the_minimum_norm_answer_by_default(data):
    x, y, _ = data
    est = StreamingLinearRegression().partial_fit(x[:2], y[:2])  # 2 rows, 5 coefficients
    ref = LinearRegression().fit(x[:2], y[:2])
    np.testing.assert_allclose(est.coef_, ref.coef_, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(est.predict(x), ref.predict(x), rtol=1e-9)
    for start in range(2, len(y), 100):
        est.partial_fit(x[start : start + 100], y[start : start + 100])
    whole = StreamingLinearRegression().fit(x, y)
    np.testing.assert_allclose(_params(est), _params(whole), rtol=1e-12)


def test_partial_fit_refuses_other_features(data):
    x, y, _ = data
    est = StreamingLinearRegression().partial_fit(x, y)
    with pytest.raises(
        ValueError, match="X has 3 features, but StreamingLinearRegression is expecting 4"
    ):
        est.partial_fit(x[:, :3], y)
    frame = pd.DataFrame(x, columns=list("abcd"))
    named = StreamingLinearRegression().partial_fit(frame, y)
    with pytest.raises(ValueError, match="feature names should match"):
        named.partial_fit(frame[list("abdc")], y)


# ---------------------------------------------------------------- pandas
def test_pandas_names_features_and_target(data):
    x, y, w = data
    frame = pd.DataFrame(x, columns=["hours", "price", "temp", "stamp"])
    est = StreamingLinearRegression().fit(
        frame, pd.Series(y, name="score"), sample_weight=pd.Series(w)
    )
    assert list(est.feature_names_in_) == ["hours", "price", "temp", "stamp"]
    assert list(est.model_.feature_names_in_) == list(est.feature_names_in_)
    assert est.model_.target == "score"
    np.testing.assert_allclose(est.predict(frame), est.model_.predict(x), rtol=1e-15)
    with pytest.raises(ValueError, match="feature names should match"):
        est.predict(frame[["price", "hours", "temp", "stamp"]])
    with pytest.warns(UserWarning, match="X does not have valid feature names"):
        est.predict(x)
    np.testing.assert_allclose(  # the engine's model selects columns by name
        est.model_.predict(frame[["price", "hours", "temp", "stamp"]]),
        est.predict(frame),
        rtol=1e-15,
    )


def test_awkward_column_names_still_fit(data):
    x, y, w = data
    frame = pd.DataFrame(x, columns=["y", "sample_weight", "y_", "x"])
    est = StreamingLinearRegression().fit(frame, y, sample_weight=w)
    ref = LinearRegression().fit(x, y, sample_weight=w)
    np.testing.assert_allclose(est.coef_, ref.coef_, rtol=1e-10)
    assert est.model_.target == "y__"
    numbered = StreamingLinearRegression().fit(pd.DataFrame(x), y)  # integer column names
    assert not hasattr(numbered, "feature_names_in_")
    assert list(numbered.model_.feature_names_in_) == ["x0", "x1", "x2", "x3"]


# ---------------------------------------------------------------- parameters, cloning, pickling
def test_get_params_clone_and_set_params_round_trip(data):
    x, y, _ = data
    params = dict(
        fit_intercept=False,
        solver="qr",
        batch_size=17,
        drop_collinear=True,
        rank_deficient="minimum_norm",
        nulls="drop",
        sgd=None,
    )
    est = StreamingLinearRegression(**params)
    assert est.get_params() == params
    twin = clone(est.fit(x, y))
    assert twin.get_params() == params and not hasattr(twin, "coef_")
    assert StreamingLinearRegression().set_params(**params).get_params() == params
    np.testing.assert_allclose(twin.fit(x, y).coef_, est.coef_, rtol=0)
    assert " ".join(repr(est).split()) == (
        "StreamingLinearRegression(batch_size=17, drop_collinear=True, "
        "fit_intercept=False, nulls='drop', solver='qr')"
    )


def test_pickled_estimator_predicts_and_keeps_streaming(data):
    x, y, _ = data
    est = StreamingLinearRegression().partial_fit(x[:200], y[:200])
    copy = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(copy.predict(x), est.predict(x))
    copy.partial_fit(x[200:], y[200:])
    whole = StreamingLinearRegression().fit(x, y)
    np.testing.assert_allclose(_params(copy), _params(whole), rtol=1e-12)


def test_works_in_a_pipeline(data):
    x, y, _ = data
    pipe = make_pipeline(StandardScaler(), StreamingLinearRegression()).fit(x, y)
    np.testing.assert_allclose(pipe.predict(x), LinearRegression().fit(x, y).predict(x), rtol=1e-10)


@pytest.mark.parametrize(
    "params, words",
    [
        (
            dict(solver="lsqr"),
            "solver must be one of auto, cholesky, qr, exact, sgd, newton, lbfgs; got 'lsqr'",
        ),
        (dict(nulls="keep"), "nulls must be one of drop, error; got 'keep'"),
        (dict(batch_size=0), "batch_size must be a positive number of rows or None; got 0"),
        (dict(batch_size=2.5), "batch_size must be a positive number of rows or None; got 2.5"),
    ],
)
def test_bad_parameters_are_named_at_fit(data, params, words):
    x, y, _ = data
    est = StreamingLinearRegression(**params)  # __init__ only stores
    for method in (est.fit, est.partial_fit):
        with pytest.raises(InputError, match=words.replace("(", r"\(")):
            method(x, y)


def test_predict_checks_the_number_of_features(data):
    x, y, _ = data
    est = StreamingLinearRegression().fit(x, y)
    with pytest.raises(
        ValueError, match="X has 3 features, but StreamingLinearRegression is expecting 4"
    ):
        est.predict(x[:, :3])


# ------------------------------------------------------------ collinear columns and missing values
def test_collinear_columns_get_the_minimum_norm_answer_raise_or_drop_on_request(data):
    x, y, _ = data
    x = np.column_stack([x, x[:, 0] - 2 * x[:, 1]])
    least = StreamingLinearRegression().fit(x, y)  # rank_deficient="minimum_norm"
    ref = LinearRegression().fit(x, y)
    np.testing.assert_allclose(least.coef_, ref.coef_, rtol=1e-8)
    np.testing.assert_allclose(least.predict(x), ref.predict(x), rtol=1e-10)
    assert least.model_.solver_ == "minimum_norm" and least.model_.aliased_ == []
    with pytest.raises(CollinearityError, match="column 'x4' is a linear combination"):
        StreamingLinearRegression(rank_deficient="error").fit(x, y)
    est = StreamingLinearRegression(drop_collinear=True).fit(x, y)
    assert est.coef_[4] == 0.0 and np.isnan(est.model_.coef_[4]) and est.model_.aliased_ == ["x4"]
    reduced = StreamingLinearRegression().fit(x[:, :4], y)
    np.testing.assert_allclose(est.coef_[:4], reduced.coef_, rtol=1e-9)
    np.testing.assert_allclose(est.predict(x), x @ est.coef_ + est.intercept_, rtol=1e-12)


def test_nan_raises_by_default_and_drops_rows_on_request(data):
    x, y, w = data
    x = x.copy()
    x[[3, 50], [1, 2]] = np.nan
    with pytest.raises(ValueError, match="Input X contains NaN"):
        StreamingLinearRegression().fit(x, y)
    est = StreamingLinearRegression(nulls="drop").fit(x, y, sample_weight=w)
    keep = ~np.isnan(x).any(axis=1)
    ref = LinearRegression().fit(x[keep], y[keep], sample_weight=w[keep])
    np.testing.assert_allclose(est.coef_, ref.coef_, rtol=1e-10)
    assert est.n_samples_seen_ == len(y) - 2 and est.model_.rows_dropped_ == 2
    assert np.isnan(est.predict(x)).sum() == 2
    x[7, 0] = np.inf
    with pytest.raises(ValueError, match="Input X contains infinity"):
        StreamingLinearRegression(nulls="drop").fit(x, y)


def test_partial_fit_with_dask_input_points_to_fit(data):
    da = pytest.importorskip("dask.array")
    x, y, _ = data
    with pytest.raises(InputError, match="for a Dask collection call fit"):
        StreamingLinearRegression().partial_fit(
            da.from_array(x, chunks=100), da.from_array(y, chunks=100)
        )


# ---------------------------------------------------------------- dask (the engine's own input)
def test_fit_on_dask_arrays_and_dataframes_equals_numpy(data):
    import dask.array as da
    import dask.dataframe as dd

    x, y, w = data
    numpy_fit = StreamingLinearRegression().fit(x, y, sample_weight=w)
    est = StreamingLinearRegression().fit(
        da.from_array(x, chunks=(90, 4)),
        da.from_array(y, chunks=90),
        sample_weight=da.from_array(w, chunks=90),
    )
    np.testing.assert_allclose(_params(est), _params(numpy_fit), rtol=1e-12)
    assert est.n_features_in_ == 4 and not hasattr(est, "feature_names_in_")
    np.testing.assert_allclose(
        np.asarray(est.predict(da.from_array(x, chunks=(90, 4)))), numpy_fit.predict(x), rtol=1e-12
    )

    frame = pd.DataFrame(x, columns=list("abcd"))
    ddf = dd.from_pandas(frame, npartitions=3)
    named = StreamingLinearRegression().fit(
        ddf, dd.from_pandas(pd.Series(y, name="y"), npartitions=3)
    )
    np.testing.assert_allclose(
        _params(named), _params(StreamingLinearRegression().fit(x, y)), rtol=1e-12
    )
    assert list(named.feature_names_in_) == list("abcd")
    np.testing.assert_allclose(
        named.predict(frame), StreamingLinearRegression().fit(x, y).predict(x), rtol=1e-12
    )
