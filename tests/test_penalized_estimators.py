"""StreamingElasticNet and StreamingElasticNetCV: scikit-learn's estimator checks, and the same
answers as scikit-learn's ElasticNet and ElasticNetCV on the same data and folds."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning as SklearnConvergenceWarning
from sklearn.linear_model import ElasticNet, ElasticNetCV
from sklearn.model_selection import GroupKFold, KFold, PredefinedSplit
from sklearn.utils.estimator_checks import parametrize_with_checks

import streamreg
from streamreg import InputError, StreamingElasticNet, StreamingElasticNetCV

CHECKED = [
    StreamingElasticNet(),
    StreamingElasticNet(alpha=0.01, l1_ratio=1.0, fit_intercept=False, solver="qr"),
    StreamingElasticNet(alpha=0.5, l1_ratio=0.0, standardize=True, batch_size=7),
    StreamingElasticNetCV(cv=3, alphas=10),
    StreamingElasticNetCV(l1_ratio=[0.2, 1.0], cv=KFold(3), alphas=5, solver="exact"),
]


@parametrize_with_checks(CHECKED)
def test_sklearn_estimator_checks(estimator, check):
    assert check(estimator) is None  # a check raises when the estimator fails it


# ---------------------------------------------------------------- agreement with scikit-learn
TIGHT = {"tol": 1e-13, "max_iter": 1_000_000}


@pytest.fixture
def data(rng):
    n, p = 300, 6
    x = rng.normal(size=(n, p)) * rng.uniform(0.5, 5.0, size=p) + rng.normal(size=p) * 10
    y = 1.0 + x @ np.array([1.5, 0.0, -0.7, 0.0, 0.2, 0.0]) + rng.normal(size=n)
    w = rng.uniform(0.2, 3.0, size=n)
    return x, y, w


def _quiet(fit):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SklearnConvergenceWarning)
        return fit()


@pytest.mark.parametrize("l1_ratio", [1.0, 0.5, 0.0])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_elastic_net_equals_sklearn(data, l1_ratio, weighted, fit_intercept):
    x, y, w = data
    w = w if weighted else None
    ours = StreamingElasticNet(alpha=0.05, l1_ratio=l1_ratio, fit_intercept=fit_intercept)
    ours.fit(x, y, sample_weight=w)
    theirs = _quiet(
        lambda: ElasticNet(alpha=0.05, l1_ratio=l1_ratio, fit_intercept=fit_intercept, **TIGHT).fit(
            x, y, sample_weight=w
        )
    )
    scale = np.abs(theirs.coef_).max()
    np.testing.assert_allclose(ours.coef_, theirs.coef_, rtol=1e-7, atol=1e-7 * scale)
    assert ours.intercept_ == pytest.approx(theirs.intercept_, rel=1e-7, abs=1e-7 * scale)
    np.testing.assert_allclose(ours.predict(x), theirs.predict(x), rtol=1e-7, atol=1e-7)


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("l1_ratio", [1.0, [0.3, 0.9]])
def test_elastic_net_cv_with_kfold_equals_sklearn(data, weighted, l1_ratio):
    x, y, w = data
    w = w if weighted else None
    ours = StreamingElasticNetCV(l1_ratio=l1_ratio, cv=5, alphas=40).fit(x, y, sample_weight=w)
    theirs = _quiet(
        lambda: ElasticNetCV(l1_ratio=l1_ratio, cv=5, alphas=40, **TIGHT).fit(x, y, sample_weight=w)
    )
    np.testing.assert_allclose(ours.alphas_, theirs.alphas_, rtol=1e-12)
    np.testing.assert_allclose(ours.mse_path_, theirs.mse_path_, rtol=1e-6)
    # the same grid point (the grids agree to rounding)
    assert ours.alpha_ == pytest.approx(theirs.alpha_, rel=1e-12)
    assert ours.l1_ratio_ == theirs.l1_ratio_
    scale = np.abs(theirs.coef_).max()
    np.testing.assert_allclose(ours.coef_, theirs.coef_, rtol=1e-7, atol=1e-7 * scale)


def test_predefined_split_and_group_kfold_define_the_folds(data, rng):
    x, y, _ = data
    test_fold = rng.integers(0, 4, size=len(y))
    split = PredefinedSplit(test_fold)
    ours = StreamingElasticNetCV(l1_ratio=0.7, cv=split, alphas=25).fit(x, y)
    theirs = _quiet(lambda: ElasticNetCV(l1_ratio=0.7, cv=split, alphas=25, **TIGHT).fit(x, y))
    np.testing.assert_allclose(ours.mse_path_, theirs.mse_path_, rtol=1e-6)
    assert ours.alpha_ == pytest.approx(theirs.alpha_, rel=1e-12)
    groups = np.arange(len(y)) // 10
    grouped = StreamingElasticNetCV(cv=GroupKFold(3), alphas=10).fit(x, y, groups=groups)
    splits = list(GroupKFold(3).split(x, y, groups))  # ElasticNetCV routes no groups
    reference = _quiet(lambda: ElasticNetCV(cv=splits, alphas=10, **TIGHT).fit(x, y))
    np.testing.assert_allclose(grouped.mse_path_, reference.mse_path_, rtol=1e-6)


def test_estimators_are_the_engine_and_their_models_round_trip(data, tmp_path):
    x, y, w = data
    est = StreamingElasticNet(alpha=0.1, l1_ratio=0.5, standardize=True).fit(x, y, w)
    model = streamreg.fit(x, y, weight=w, alpha=0.1, l1_ratio=0.5, standardize=True)
    np.testing.assert_array_equal(est.coef_, model.coef_)
    est.model_.save(tmp_path / "m.json")
    again = streamreg.load(tmp_path / "m.json")
    np.testing.assert_array_equal(again.predict(x), est.predict(x))
    assert again.penalty_ == est.model_.penalty_
    cv = StreamingElasticNetCV(cv=4, alphas=12, select="1se").fit(x, y)
    assert cv.alpha_ == cv.alpha_1se_ >= cv.cv_result_.alpha_min_
    assert "no" in cv.model_.summary().lower() and "p values" in cv.model_.summary()


def test_splitters_that_do_not_partition_the_rows_are_refused(data):
    x, y, _ = data
    from sklearn.model_selection import ShuffleSplit

    with pytest.raises(InputError, match="partition the rows"):
        StreamingElasticNetCV(cv=ShuffleSplit(3, test_size=0.2, random_state=0)).fit(x, y)
    with pytest.raises(InputError, match="n_samples = 3 for cv=5"):
        StreamingElasticNetCV(cv=5).fit(x[:3], y[:3])
