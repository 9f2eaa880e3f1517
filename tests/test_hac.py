"""Newey-West covariance from ordered blocks equals statsmodels' ``cov_type="HAC"`` (1e-8)."""

from __future__ import annotations

import json
from fractions import Fraction

import numpy as np
import pytest
import statsmodels.api as sm
from oracles.rational import exact_lstsq, exact_solve
from second_pass import blocks, fit, fold, statsmodels_fit

from streamreg.errors import InputError, ModelFormatError
from streamreg.model.diagnostics.residuals import scores
from streamreg.model.hac import NeweyWestMeat, hac_covariance


def ar1(rng, n, rho, scale=1.0):
    shocks = rng.normal(size=n) * scale
    out = np.empty(n)
    out[0] = shocks[0]
    for t in range(1, n):
        out[t] = rho * out[t - 1] + shocks[t]
    return out


@pytest.fixture(scope="module")
def ordered():
    """Autocorrelated regressors and errors, in time order."""
    rng = np.random.default_rng(17)
    n = 240
    x = np.column_stack(
        [ar1(rng, n, 0.8), np.linspace(0, 3, n) + ar1(rng, n, 0.3), rng.normal(size=n)]
    )
    y = 1.5 + x @ [0.7, -1.2, 0.3] + ar1(rng, n, 0.6, scale=1 + 0.5 * np.abs(x[:, 0]))
    w = rng.uniform(0.5, 2.0, size=n)
    return x, y, w


def assert_cov_close(got, ref, rtol=1e-8):
    """Entries judged on the scale √(V_ii V_jj) (off-diagonal zeros are rounding noise)."""
    size = np.sqrt(np.outer(np.diag(ref), np.diag(ref)))
    assert np.all(np.abs(got - ref) <= rtol * size), np.max(np.abs(got - ref) / size)


def streamed_hac(
    model, x, y, w, count, maxlags, kernel="bartlett", how="left", use_correction=False
):
    parts = [
        NeweyWestMeat.from_scores(
            scores(b.x_centered, b.resid, b.weights, model.fit_intercept), maxlags, kernel
        )
        for b in blocks(model, x, y, w, count)
    ]
    meat = fold(parts, how)
    kept = ~np.isnan(model.coef_)
    mean = (model.state_.mean + model.state_.mean_lo)[:-1][kept] if model.fit_intercept else None
    return meat, hac_covariance(
        meat, model.solution_.xtx_inv, model.state_.weight_sum, mean, use_correction=use_correction
    )


@pytest.mark.parametrize("maxlags", [0, 1, 2, 5, 40])
@pytest.mark.parametrize("count", [1, 3, 7])
@pytest.mark.parametrize("weighted", [False, True])
def test_hac_matches_statsmodels(ordered, maxlags, count, weighted):
    x, y, w = ordered
    w = w if weighted else None
    model = fit(x, y, w)
    ref = statsmodels_fit(x, y, w, cov_type="HAC", cov_kwds={"maxlags": maxlags})
    assert ref.cov_kwds["use_correction"] is False and ref.use_t is False  # the defaults we follow
    for how in ("left", "tree"):
        meat, cov = streamed_hac(model, x, y, w, count, maxlags, how=how)
        assert meat.n_rows == len(y)
        assert_cov_close(cov, ref.cov_params().to_numpy())
        np.testing.assert_allclose(np.sqrt(np.diag(cov)), ref.bse, rtol=1e-8)


@pytest.mark.parametrize("kernel", ["bartlett", "uniform"])
@pytest.mark.parametrize("intercept", [True, False])
def test_kernel_correction_and_no_intercept(ordered, kernel, intercept):
    x, y, w = ordered
    model = fit(x, y, w, fit_intercept=intercept)
    ref = statsmodels_fit(
        x,
        y,
        w,
        fit_intercept=intercept,
        cov_type="HAC",
        cov_kwds={"maxlags": 3, "kernel": kernel, "use_correction": True},
    )
    _, cov = streamed_hac(model, x, y, w, 7, 3, kernel=kernel, how="tree", use_correction=True)
    assert_cov_close(cov, ref.cov_params().to_numpy())


def test_blocks_shorter_than_the_lag_window_on_real_data():
    macro = sm.datasets.macrodata.load_pandas().data
    x = macro[["realgdp", "realint", "unemp"]].to_numpy()
    y = macro["realinv"].to_numpy()
    model = fit(x, y)
    ref = statsmodels_fit(x, y, cov_type="HAC", cov_kwds={"maxlags": 12})
    # 40 blocks of ~5 rows each: every seam straddles several blocks.
    meat, cov = streamed_hac(model, x, y, None, 40, 12, how="tree")
    assert_cov_close(cov, ref.cov_params().to_numpy())


def test_longley_hac_equals_exact_rational_arithmetic():
    """On Longley statsmodels' own HAC figures are off by up to 6e-8 (its bread is the float
    pinv of an ill-conditioned design); ours are held to 1e-10 of the exact value of
    B·S·B, computed in fractions from the exact least-squares fit of the float64 data."""
    data = sm.datasets.longley.load_pandas().data
    x, y = data.iloc[:, 1:].to_numpy(), data["TOTEMP"].to_numpy()
    exact = exact_hac(x, y, maxlags=2)
    model = fit(x, y)
    for count in (1, 3, 7):
        _, cov = streamed_hac(model, x, y, None, count, 2, how="tree")
        assert np.all(np.abs(np.diag(cov) - np.diag(exact)) <= 1e-10 * np.diag(exact))
        assert_cov_close(cov, exact, rtol=1e-10)


def exact_hac(x, y, maxlags):
    """``G⁻¹ S G⁻¹`` with Bartlett weights, every step in exact rational arithmetic."""
    b0, b = exact_lstsq(x, y)
    beta = [b0, *b]
    rows = [[Fraction(1)] + [Fraction(float(v)) for v in row] for row in x]
    resid = [Fraction(float(t)) - sum(c * v for c, v in zip(beta, row)) for row, t in zip(rows, y)]
    u = [[e * v for v in row] for e, row in zip(resid, rows)]
    k, n = len(beta), len(rows)
    meat = [[Fraction(0)] * k for _ in range(k)]
    for lag in range(maxlags + 1):
        weight = 1 - Fraction(lag, maxlags + 1)
        for t in range(lag, n):
            for i in range(k):
                for j in range(k):
                    meat[i][j] += weight * u[t][i] * u[t - lag][j]
                    if lag:
                        meat[i][j] += weight * u[t - lag][i] * u[t][j]
    gram = [[sum(r[i] * r[j] for r in rows) for j in range(k)] for i in range(k)]
    inverse = [exact_solve(gram, [Fraction(int(i == j)) for i in range(k)]) for j in range(k)]
    # inverse[j] is column j of G⁻¹ (G is symmetric, so also row j)
    left = [[sum(inverse[i][t] * meat[t][j] for t in range(k)) for j in range(k)] for i in range(k)]
    return np.array(
        [
            [float(sum(left[i][t] * inverse[j][t] for t in range(k))) for j in range(k)]
            for i in range(k)
        ]
    )


def test_merge_laws_and_row_by_row_updates(rng):
    u = rng.normal(size=(30, 3)) + np.linspace(0, 1, 30)[:, None]
    whole = NeweyWestMeat.from_scores(u, 4)
    rows = NeweyWestMeat(4, 3)
    for t in range(30):
        rows.update(u[t : t + 1])
    a, b, c = (NeweyWestMeat.from_scores(p, 4) for p in np.split(u, [2, 17]))
    empty = NeweyWestMeat(4, 3)
    for other in (rows, (a + b) + c, a + (b + c), empty + whole, whole + empty):
        np.testing.assert_allclose(
            other.meat, whole.meat, rtol=1e-13, atol=1e-13 * np.abs(whole.meat).max()
        )
        np.testing.assert_array_equal(other.head, whole.head)
        np.testing.assert_array_equal(other.tail, whole.tail)
    # Order matters: the seam terms of b + a are those of the reversed blocks.
    swapped = NeweyWestMeat.from_scores(np.vstack([u[2:17], u[:2]]), 4)
    np.testing.assert_allclose((b + a).meat, swapped.meat, rtol=1e-13)
    assert not np.allclose((b + a).meat, (a + b).meat)


def test_json_round_trip_and_bad_input(rng):
    meat = NeweyWestMeat.from_scores(rng.normal(size=(9, 2)), 3, "uniform")
    again = NeweyWestMeat.from_dict(json.loads(json.dumps(meat.to_dict())))
    assert again == meat
    broken = meat.to_dict()
    broken["head"] = broken["head"][:1]
    with pytest.raises(ModelFormatError, match="head"):
        NeweyWestMeat.from_dict(broken)
    with pytest.raises(InputError, match="maxlags must be a non-negative"):
        NeweyWestMeat(-1, 2)
    with pytest.raises(InputError, match="kernel must be one of"):
        NeweyWestMeat(2, 2, "parzen")
    with pytest.raises(InputError, match="cannot merge HAC sums with maxlags=3"):
        NeweyWestMeat(2, 2) + meat
