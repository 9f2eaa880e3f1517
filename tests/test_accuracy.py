"""The streamed fit equals in-memory least squares: numpy, statsmodels, exact rationals, NIST."""

from __future__ import annotations

import numpy as np
import pytest
import statsmodels.api as sm
from conftest import write_xy
from oracles import nist
from oracles.rational import exact_lstsq, max_rel_error

import streamreg
from streamreg import StreamregError


def make_problem(rng, n, p, weighted, offset=100.0):
    x = rng.normal(size=(n, p)) * rng.uniform(0.5, 20, size=p) + rng.uniform(
        -offset, offset, size=p
    )
    beta = rng.uniform(1, 3, size=p) * rng.choice([-1, 1], size=p)
    y = 7.5 + x @ beta + rng.normal(scale=2.0, size=n)
    w = rng.uniform(0.2, 5.0, size=n) if weighted else None
    return x, y, w


@pytest.mark.parametrize("n, p", [(200, 1), (1500, 7), (2500, 100)])
@pytest.mark.parametrize("batch_size", [None, 7, 333])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_fit_equals_numpy_and_statsmodels(tmp_path, rng, n, p, batch_size, weighted, fit_intercept):
    if batch_size == 7 and p == 100:
        batch_size = 101  # a batch must not be narrower than the question; still many chunks
    # Without an intercept nothing removes the column offsets, and the normal equations
    # square the condition number of X: keep that problem well-conditioned here
    # (the offset case is covered with an intercept, and by the qr/exact solvers).
    x, y, w = make_problem(rng, n, p, weighted, offset=100.0 if fit_intercept else 2.0)
    path = write_xy(tmp_path / "data.parquet", x, y, w, row_group_size=max(n // 3, 1))
    model = streamreg.fit(
        path,
        target="y",
        weight="w" if weighted else None,
        fit_intercept=fit_intercept,
        batch_size=batch_size,
    )
    design = sm.add_constant(x, has_constant="add") if fit_intercept else x
    if weighted:
        ref = sm.WLS(y, design, weights=w).fit().params
    else:
        ref = np.linalg.lstsq(design, y, rcond=None)[0]
    got = np.r_[model.intercept_, model.coef_] if fit_intercept else model.coef_
    np.testing.assert_allclose(got, ref, rtol=1e-10, atol=0)
    assert model.n_samples_ == n and model.rows_dropped_ == 0


def test_fit_statistics_equal_statsmodels(tmp_path, rng):
    x, y, w = make_problem(rng, 800, 4, weighted=True)
    path = write_xy(tmp_path / "d.parquet", x, y, w)
    model = streamreg.fit(path, target="y", weight="w", batch_size=50)
    ref = sm.WLS(y, sm.add_constant(x), weights=w).fit()
    assert model.r2_ == pytest.approx(ref.rsquared, rel=1e-10)
    assert model.ssr_ == pytest.approx(ref.ssr, rel=1e-9)
    assert model.rmse_ == pytest.approx(np.sqrt(ref.ssr / w.sum()), rel=1e-9)
    assert model.weight_sum_ == pytest.approx(w.sum(), rel=1e-14)


def test_no_intercept_r2_is_uncentered_like_statsmodels(tmp_path, rng):
    x, y, _ = make_problem(rng, 300, 2, weighted=False)
    path = write_xy(tmp_path / "d.parquet", x, y)
    model = streamreg.fit(path, target="y", fit_intercept=False, batch_size=64)
    ref = sm.OLS(y, x).fit()
    assert model.r2_ == pytest.approx(ref.rsquared, rel=1e-10)


@pytest.mark.parametrize("offset", [1e9, 1.7e9])
def test_huge_offsets_keep_their_digits(tmp_path, rng, offset):
    # Timestamps: offset 1e9, spread 1. Raw ZᵀZ sums lose every digit here.
    n = 400
    x = offset + rng.uniform(0, 1, size=(n, 2))
    y = 3.0 + (x - offset) @ [2.0, -1.0] + 1e-3 * rng.normal(size=n)
    path = write_xy(tmp_path / "ts.parquet", x, y, row_group_size=50)
    exact_b0, exact_beta = exact_lstsq(x, y)
    for batch_size in (None, 13, 64):
        model = streamreg.fit(path, target="y", batch_size=batch_size)
        # The issue asks for 1e-8; double-double means give far more.
        assert max_rel_error(model.coef_, exact_beta) <= 1e-12
        assert max_rel_error([model.intercept_], [exact_b0]) <= 1e-12
    # The oracle is meaningful: the textbook normal equations on raw sums fail badly here.
    z = np.column_stack([np.ones(n), x])
    naive = np.linalg.solve(z.T @ z, z.T @ y)
    assert max_rel_error(naive[1:], exact_beta) > 1e-4
    assert exact_b0 != 0


def test_weighted_fit_equals_exact_rational_solution(tmp_path, rng):
    x = rng.normal(size=(60, 3)) * [1, 1e3, 1e-3] + [0, 5e5, 1]
    y = x @ [1.0, 2e-3, 300.0] + rng.normal(size=60)
    w = rng.uniform(0.5, 2, size=60)
    path = write_xy(tmp_path / "w.parquet", x, y, w)
    model = streamreg.fit(path, target="y", weight="w", batch_size=9)
    b0, beta = exact_lstsq(x, y, w)
    assert max_rel_error(model.coef_, beta) <= 1e-10
    assert max_rel_error([model.intercept_], [b0]) <= 1e-9


@pytest.mark.parametrize(
    "name, floor",
    [("Norris", 11), ("Pontius", 11), ("Longley", 11), ("NoInt1", 14), ("NoInt2", 14)],
)
def test_nist_lower_and_average_difficulty(tmp_path, name, floor):
    case = nist.load(name)
    path = write_xy(tmp_path / f"{name}.parquet", case.x, case.y, names=case.feature_names)
    model = streamreg.fit(path, target="y", fit_intercept=case.fit_intercept, batch_size=7)
    est = np.r_[model.intercept_, model.coef_] if case.fit_intercept else model.coef_
    assert nist.lre(est, case.params) >= floor


@pytest.mark.parametrize(
    "name", ["Filip", "Wampler1", "Wampler2", "Wampler3", "Wampler4", "Wampler5"]
)
def test_nist_higher_difficulty_reaches_six_digits_or_says_why(tmp_path, name):
    case = nist.load(name)
    path = write_xy(tmp_path / f"{name}.parquet", case.x, case.y, names=case.feature_names)
    try:
        model = streamreg.fit(path, target="y", fit_intercept=case.fit_intercept, batch_size=7)
    except StreamregError as exc:
        assert "collinear" in str(exc) or "condition number" in str(exc)
        return
    est = np.r_[model.intercept_, model.coef_]
    score = nist.lre(est, case.params)
    warned = any("condition number" in w for w in model.warnings_)
    assert score >= 6 or warned, f"{name}: {score:.1f} digits and no warning"
