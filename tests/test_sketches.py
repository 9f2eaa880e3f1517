"""Plot accumulators: the quantile sketch's rank-error bound holds on adversarial data; the 2-D
histogram equals numpy's; the top-k keepers equal a full sort and statsmodels' influence."""

from __future__ import annotations

import json

import numpy as np
import pytest
import statsmodels.api as sm
from second_pass import blocks, fit, fold, split_points
from statsmodels.stats.outliers_influence import OLSInfluence

from streamreg.errors import InputError, ModelFormatError
from streamreg.model.diagnostics.accumulators import Histogram2D, InfluentialRows, TopPoints
from streamreg.model.diagnostics.residuals import leverage, studentized
from streamreg.model.diagnostics.sketch import QuantileSketch


def adversarial(name: str, rng) -> np.ndarray:
    n = 120_000
    if name == "cauchy":
        return rng.standard_cauchy(n)
    if name == "duplicates":
        return rng.integers(0, 7, size=n).astype(float)
    if name == "sorted":
        return np.sort(rng.normal(size=n))
    if name == "reverse-sorted":
        return np.sort(rng.lognormal(sigma=3, size=n))[::-1].copy()
    if name == "sawtooth":
        return np.tile(np.arange(1000.0), n // 1000)
    if name == "one-outlier-cluster":
        values = rng.normal(size=n)
        values[::97] = 1e300
        return values
    raise KeyError(name)


def sketch_of(values, how: str, capacity=256, tail=64) -> QuantileSketch:
    if how == "one batch":
        return QuantileSketch(capacity, tail).update(values)
    if how == "tiny batches":
        sketch = QuantileSketch(capacity, tail)
        for piece in np.array_split(values, 400):
            sketch.update(piece)
        return sketch
    parts = [QuantileSketch(capacity, tail).update(values[s]) for s in split_points(len(values), 7)]
    return fold(parts, "tree" if how == "tree of 7" else "left")


def assert_bound_holds(sketch: QuantileSketch, values: np.ndarray) -> None:
    n = len(values)
    data = np.sort(values)
    bound = sketch.rank_error_bound
    assert sketch.count == n
    assert bound <= sketch.theoretical_bound()
    # Ranks at every distinct value the data holds (subsampled) and at the sketch's items.
    probes = np.unique(np.r_[data[:: max(1, n // 4000)], np.concatenate(sketch.levels)])
    items, weights = sketch._weighted()
    cumulative = np.r_[0.0, np.cumsum(weights)]
    est_le = cumulative[np.searchsorted(items, probes, side="right")]
    est_lt = cumulative[np.searchsorted(items, probes, side="left")]
    true_le = np.searchsorted(data, probes, side="right")
    true_lt = np.searchsorted(data, probes, side="left")
    assert np.max(np.abs(est_le - true_le)) <= bound
    assert np.max(np.abs(est_lt - true_lt)) <= bound
    # Quantile answers: a value whose rank range meets [r − E, r + E].
    q = np.r_[0.0, 1e-5, np.linspace(0.001, 0.999, 301), 1 - 1e-5, 1.0]
    answers = sketch.quantiles(q)
    ranks = np.clip(np.ceil(q * n), 1, n)
    below = np.searchsorted(data, answers, side="left")
    at_most = np.searchsorted(data, answers, side="right")
    assert np.all(below <= ranks - 1 + bound) and np.all(at_most >= ranks - bound)
    # Within `tail` of either end the answer is exact.
    exact_ranks = np.r_[1, 2, sketch.tail, n - sketch.tail + 1, n]
    exact_q = (exact_ranks - 0.5) / n
    np.testing.assert_array_equal(sketch.quantiles(exact_q), data[exact_ranks - 1])


@pytest.mark.parametrize(
    "name", ["cauchy", "duplicates", "sorted", "reverse-sorted", "sawtooth", "one-outlier-cluster"]
)
@pytest.mark.parametrize("how", ["one batch", "tiny batches", "tree of 7", "left fold of 7"])
def test_rank_error_bound_holds_on_adversarial_data(name, how, rng):
    values = adversarial(name, rng)
    sketch = sketch_of(values, how)
    assert_bound_holds(sketch, values)
    # Memory: at most capacity + 1 items on each of ⌊log₂(n/capacity)⌋ + 2 levels.
    assert len(sketch.levels) <= int(np.log2(len(values) / sketch.capacity)) + 2
    assert all(level.size <= sketch.capacity + 1 for level in sketch.levels)
    # And the bound is a small fraction of the rows.
    assert sketch.rank_error_bound <= 0.06 * len(values)


def test_default_capacity_is_tight_and_deterministic(rng):
    values = rng.standard_t(2, size=300_000)
    a = sketch_of(values, "tree of 7", capacity=8192, tail=1000)
    b = sketch_of(values, "tree of 7", capacity=8192, tail=1000)
    assert a == b
    assert a + QuantileSketch() == a and QuantileSketch() + a == a  # empty is the identity
    assert a.rank_error_bound <= 0.002 * len(values)
    assert_bound_holds(a, values)


def test_sketch_json_round_trip_and_bad_input(rng):
    sketch = sketch_of(rng.normal(size=5000), "tree of 7", capacity=64, tail=8)
    again = QuantileSketch.from_dict(json.loads(json.dumps(sketch.to_dict())))
    assert again == sketch and np.array_equal(
        again.quantiles([0.1, 0.5]), sketch.quantiles([0.1, 0.5])
    )
    broken = sketch.to_dict()
    broken["count"] += 1
    with pytest.raises(ModelFormatError, match="do not fit together"):
        QuantileSketch.from_dict(broken)
    with pytest.raises(InputError, match="finite values"):
        QuantileSketch().update([1.0, np.nan])
    with pytest.raises(InputError, match="capacity 64 and tail 8 into one with capacity 8192"):
        QuantileSketch() + sketch
    with pytest.raises(InputError, match="seen no values"):
        QuantileSketch().quantile(0.5)


def test_histogram_equals_numpy_and_merges_exactly(rng):
    x = rng.normal(size=20_000) * 3
    y = rng.standard_t(3, size=20_000)
    grid = Histogram2D.regular(-6.0, 6.0, 60, -4.0, 4.0, 40)
    whole = Histogram2D(grid.x_edges, grid.y_edges).update(x, y)
    expected, _, _ = np.histogram2d(x, y, bins=[grid.x_edges, grid.y_edges])
    np.testing.assert_array_equal(whole.counts, expected.astype(np.int64))
    inside = (np.abs(x) <= 6) & (np.abs(y) <= 4)
    assert whole.outside == int((~inside).sum()) and whole.count == x.size
    assert whole.x_range == [x.min(), x.max()] and whole.y_range == [y.min(), y.max()]
    for count in (3, 7):
        parts = [
            Histogram2D(grid.x_edges, grid.y_edges).update(x[s], y[s])
            for s in split_points(len(x), count)
        ]
        assert fold(parts, "tree") == whole and fold(parts[::-1], "left") == whole
    empty = Histogram2D(grid.x_edges, grid.y_edges)
    assert whole + empty == whole and empty + whole == whole
    assert Histogram2D.from_dict(json.loads(json.dumps(whole.to_dict()))) == whole
    with pytest.raises(InputError, match="different grids"):
        whole + Histogram2D.regular(0, 1, 2, 0, 1, 2)


def test_histogram_cells_at_and_beyond_the_edges_follow_numpy():
    grid = Histogram2D.regular(-0.3, 0.7, 10, 0.0, 1.0, 3)  # edges that decimal steps miss
    edges = grid.x_edges
    x = np.r_[
        edges, np.nextafter(edges, -np.inf), np.nextafter(edges, np.inf), -np.inf, np.inf, 1e300
    ]
    y = np.full(x.size, 0.5)
    grid.update(x, y)
    expected, _, _ = np.histogram2d(
        x[np.isfinite(x)], y[np.isfinite(x)], bins=[edges, grid.y_edges]
    )
    np.testing.assert_array_equal(grid.counts, expected.astype(np.int64))
    assert grid.outside == x.size - int(expected.sum())
    uneven = Histogram2D([0.0, 0.1, 1.0, 10.0], [0.0, 1.0]).update(
        [0.1, 1.0, 10.0, 10.5], [0.5] * 4
    )
    assert uneven.counts[:, 0].tolist() == [0, 1, 2] and uneven.outside == 1


def test_residual_grid_comes_from_the_model():
    data = sm.datasets.stackloss.load_pandas().data
    x, y = data.iloc[:, 1:].to_numpy(), data["STACKLOSS"].to_numpy()
    model = fit(x, y)
    grid = Histogram2D.for_residuals(
        model.state_.mean[-1], np.sqrt(model.ess / model.nobs), np.sqrt(model.scale), bins=(50, 30)
    )
    for b in blocks(model, x, y, None, 3):
        grid.update(model.predict(x[b.rows]), b.resid)
    assert grid.count == len(y) and grid.outside == 0  # every point of this fit is within 4 spreads
    assert grid.counts.shape == (50, 30)


def test_top_points_equal_a_full_sort_whatever_the_batching(rng):
    keys = np.round(rng.normal(size=5000), 1)  # many ties
    rows = np.arange(5000)
    expected = np.lexsort((rows, -keys))[:25]
    for count in (1, 3, 7):
        parts = [
            TopPoints(25, ("twice",)).update(keys[s], rows[s], twice=2 * keys[s])
            for s in split_points(5000, count)
        ]
        for how in ("left", "tree"):
            top = fold(parts, how)
            np.testing.assert_array_equal(top.rows, expected)
            np.testing.assert_array_equal(top.values[:, 0], 2 * keys[expected])
    assert TopPoints.from_dict(json.loads(json.dumps(top.to_dict()))) == top
    assert top + TopPoints(25, ("twice",)) == top
    assert top.records()[0] == {
        "row": int(expected[0]),
        "key": float(keys[expected[0]]),
        "twice": float(2 * keys[expected[0]]),
    }
    with pytest.raises(InputError, match="expected the fields twice"):
        TopPoints(3, ("twice",)).update([1.0], [0])


@pytest.mark.parametrize("weighted", [False, True])
def test_influential_rows_match_statsmodels(weighted):
    data = sm.datasets.ccard.load_pandas().data
    x = data[["AGE", "INCOME", "OWNRENT"]].to_numpy()
    y = data["AVGEXP"].to_numpy()
    w = 1.0 / data["INCOMESQ"].to_numpy() if weighted else None
    model = fit(x, y, w)
    exog = sm.add_constant(x)
    # The oracle for weights is OLS on the whitened rows (√w·y on √w·[1, x]), whose hat diagonal
    # is R's weighted one, w·x̃ᵀ(X̃ᵀWX̃)⁻¹x̃; OLSInfluence of a WLS fit mixes raw and whitened
    # design (exog · pinv(wexog)ᵀ), which is no hat matrix.
    root = np.ones_like(y) if w is None else np.sqrt(w)
    influence = OLSInfluence(sm.OLS(root * y, root[:, None] * exog).fit())
    kept_inv = model.solution_.xtx_inv
    parts = []
    for b in blocks(model, x, y, w, 7):
        h = leverage(b.x_centered, kept_inv, 1.0 / model.state_.weight_sum, b.weights)
        r = studentized(b.wresid, h, model.scale)
        rows = np.arange(len(y))[b.rows]
        np.testing.assert_allclose(h, influence.hat_matrix_diag[b.rows], rtol=1e-8)
        np.testing.assert_allclose(r, influence.resid_studentized_internal[b.rows], rtol=1e-8)
        parts.append(InfluentialRows(5, n_params=4).update(rows, h, r, model.predict(x[b.rows])))
    top = fold(parts, "tree")
    assert InfluentialRows.from_dict(json.loads(json.dumps(top.to_dict()))) == top
    cooks = influence.cooks_distance[0]
    np.testing.assert_array_equal(
        top.by_residual.rows,
        np.argsort(-np.abs(influence.resid_studentized_internal), kind="stable")[:5],
    )
    np.testing.assert_array_equal(
        top.by_leverage.rows, np.argsort(-influence.hat_matrix_diag, kind="stable")[:5]
    )
    np.testing.assert_array_equal(top.by_cooks_distance.rows, np.argsort(-cooks, kind="stable")[:5])
    np.testing.assert_allclose(
        top.by_cooks_distance.values[:, 3], np.sort(cooks)[::-1][:5], rtol=1e-8
    )
