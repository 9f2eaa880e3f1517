"""Two-way cluster-robust covariance from batches equals statsmodels' (1e-8)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from second_pass import blocks, fit, fold, statsmodels_fit

from streamreg.errors import InputError, ModelFormatError
from streamreg.model.diagnostics.residuals import scores
from streamreg.model.twoway import TwoWayClusterMeat, two_way_covariance


def assert_cov_close(got, ref, rtol=1e-8):
    size = np.sqrt(np.outer(np.diag(ref), np.diag(ref)))
    assert np.all(np.abs(got - ref) <= rtol * size), np.max(np.abs(got - ref) / size)


def streamed(model, x, y, w, g, h, count, how):
    parts = [
        TwoWayClusterMeat.from_scores(
            scores(b.x_centered, b.resid, b.weights, model.fit_intercept), g[b.rows], h[b.rows]
        )
        for b in blocks(model, x, y, w, count)
    ]
    meat = fold(parts, how)
    kept = ~np.isnan(model.coef_)
    mean = (model.state_.mean + model.state_.mean_lo)[:-1][kept] if model.fit_intercept else None
    cov, df = two_way_covariance(meat, model.solution_.xtx_inv, model.state_.weight_sum, mean)
    return meat, cov, df


def reference(x, y, w, g, h, intercept=True):
    codes = np.column_stack([pd.factorize(g)[0], pd.factorize(h)[0]])
    return statsmodels_fit(
        x, y, w, fit_intercept=intercept, cov_type="cluster", cov_kwds={"groups": codes}
    )


@pytest.mark.parametrize("count", [1, 3, 7])
@pytest.mark.parametrize("how", ["left", "tree"])
def test_grunfeld_firm_by_year(count, how):
    data = sm.datasets.grunfeld.load_pandas().data
    x = data[["value", "capital"]].to_numpy()
    y = data["invest"].to_numpy()
    g, h = data["firm"].to_numpy(), data["year"].to_numpy()
    model = fit(x, y)
    ref = reference(x, y, None, g, h)
    meat, cov, df = streamed(model, x, y, None, g, h, count, how)
    assert meat.n_groups == (11, 20, 220)
    assert df == ref.df_resid_inference == 10
    assert_cov_close(cov, ref.cov_params().to_numpy())
    np.testing.assert_allclose(np.sqrt(np.diag(cov)), ref.bse, rtol=1e-8)


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("intercept", [True, False])
def test_repeated_pairs_weights_and_no_intercept(rng, weighted, intercept):
    n = 600
    g = rng.choice([f"firm{i}" for i in range(12)], size=n)
    h = rng.integers(2000, 2009, size=n)
    x = np.column_stack([rng.normal(size=n) + 3, rng.uniform(-2, 2, size=n)])
    shock_g = pd.Series(g).map(dict(zip(np.unique(g), rng.normal(size=12)))).to_numpy()
    y = 1 + x @ [0.5, -1.0] + shock_g + rng.normal(size=n) * (1 + np.abs(x[:, 1]))
    w = rng.uniform(0.3, 3.0, size=n) if weighted else None
    model = fit(x, y, w, fit_intercept=intercept)
    ref = reference(x, y, w, g, h, intercept)
    meat, cov, df = streamed(model, x, y, w, g, h, 7, "tree")
    assert meat.n_groups[:2] == (12, 9) and meat.n_groups[2] < n
    assert df == ref.df_resid_inference
    assert_cov_close(cov, ref.cov_params().to_numpy())


def test_merge_laws_and_json(rng):
    u = rng.normal(size=(40, 3))
    g = rng.choice(["a", "b", "c"], size=40)
    h = rng.choice([1, 2, 3, 4], size=40)
    whole = TwoWayClusterMeat.from_scores(u, g, h)
    parts = [
        TwoWayClusterMeat.from_scores(u[s], g[s], h[s])
        for s in (slice(0, 9), slice(9, 30), slice(30, 40))
    ]
    a, b, c = parts
    for other in ((a + b) + c, a + (b + c), c + b + a, TwoWayClusterMeat(3) + whole):
        assert other.n_groups == whole.n_groups and other.n_rows == 40
        for got, ref in zip(other.meats(), whole.meats()):
            np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-12 * np.abs(ref).max())
    again = TwoWayClusterMeat.from_dict(json.loads(json.dumps(whole.to_dict())))
    assert again == whole
    with pytest.raises(ModelFormatError, match="each pair"):
        TwoWayClusterMeat.from_dict({**whole.to_dict(), "pairs": [["a", 1, [0.0]]]})


def test_too_few_clusters_and_bad_labels_are_refused(rng):
    meat = TwoWayClusterMeat.from_scores(rng.normal(size=(5, 2)), ["a"] * 5, [1, 2, 1, 2, 3])
    with pytest.raises(
        InputError, match="at least two clusters in each grouping; the data hold 1 and 3"
    ):
        meat.covariance(np.eye(2))
    with pytest.raises(InputError, match="one label per score row"):
        TwoWayClusterMeat.from_scores(np.zeros((3, 2)), ["a", "b"], [1, 2, 3])
