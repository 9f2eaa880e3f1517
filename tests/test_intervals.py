"""Prediction intervals equal statsmodels' get_prediction().summary_frame() (1e-8), and exact
rational arithmetic where statsmodels' own raw-coordinate formula loses digits."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from oracles.rational import exact_lstsq, exact_solve
from second_pass import fit, statsmodels_fit

from streamreg.errors import InputError
from streamreg.model.intervals import SUMMARY_COLUMNS, IntervalPredictor


def frame_gaps(got, want, rtol=1e-8) -> dict:
    """The columns of ``got`` off ``want`` by more than ``rtol`` (each with its largest relative
    gap); a column list that differs from statsmodels' is reported under ``"columns"``."""
    if not list(got.columns) == list(want.columns) == list(SUMMARY_COLUMNS):
        return {"columns": list(got.columns)}
    # An interval end is mean ∓ q·se: judge it on the size of both terms.
    scale = np.abs(want["mean"].to_numpy()) + 4 * np.sqrt(want["mean_se"].to_numpy() ** 2 + 1e-300)
    gaps = {}
    for column in SUMMARY_COLUMNS:
        a, b = got[column].to_numpy(), want[column].to_numpy()
        size = np.abs(b) if column == "mean_se" else np.maximum(np.abs(b), scale)
        if column.startswith("obs"):
            size = np.maximum(size, np.abs(want["obs_ci_upper"] - want["obs_ci_lower"]).to_numpy())
        if not np.all(np.abs(a - b) <= rtol * size):
            gaps[column] = float(np.max(np.abs(a - b) / size))
    return gaps


@pytest.fixture(scope="module")
def stackloss():
    data = sm.datasets.stackloss.load_pandas().data
    return data.iloc[:, 1:].to_numpy(), data["STACKLOSS"].to_numpy()


@pytest.mark.parametrize("intercept", [True, False])
@pytest.mark.parametrize("alpha", [0.05, 0.1])
def test_ols_intervals_match_statsmodels(stackloss, intercept, alpha):
    x, y = stackloss
    new = x[::3] + np.array([1.5, -2.0, 3.0])
    model = fit(x, y, fit_intercept=intercept)
    ref = statsmodels_fit(x, y, fit_intercept=intercept)
    exog = sm.add_constant(new, has_constant="add") if intercept else new
    got = IntervalPredictor.from_model(model).predict(new).summary_frame(alpha)
    assert frame_gaps(got, ref.get_prediction(exog).summary_frame(alpha)) == {}


def test_wls_observation_interval_uses_the_new_rows_weights(rng):
    n = 200
    x = np.column_stack([rng.normal(size=n) * 2 + 5, rng.uniform(0, 3, size=n)])
    w = rng.uniform(0.2, 5.0, size=n)
    y = 1 + x @ [0.3, -0.8] + rng.normal(size=n) / np.sqrt(w)
    model = fit(x, y, w)
    ref = statsmodels_fit(x, y, w)
    new, new_w = x[:25] * 1.1, w[:25][::-1]
    predictor = IntervalPredictor.from_model(model)
    exog = sm.add_constant(new, has_constant="add")
    weighted = predictor.predict(new, weights=new_w).summary_frame()
    assert frame_gaps(weighted, ref.get_prediction(exog, weights=new_w).summary_frame()) == {}
    unit = predictor.predict(new).summary_frame()
    assert frame_gaps(unit, ref.get_prediction(exog).summary_frame()) == {}


@pytest.mark.parametrize("cov_type", ["HC1", "HC3", "cluster"])
def test_robust_covariance_and_normal_quantiles(rng, cov_type):
    n = 300
    frame = pd.DataFrame(
        {
            "a": rng.normal(size=n),
            "b": rng.exponential(size=n) + 10,
            "g": rng.choice(list("pqrstuvw"), size=n),
        }
    )
    frame["y"] = 2 + frame["a"] - 0.5 * frame["b"] + rng.normal(size=n) * (1 + np.abs(frame["a"]))
    kwargs = {"cov_type": "cluster:g"} if cov_type == "cluster" else {"cov_type": cov_type}
    import streamreg

    model = streamreg.fit(frame, target="y", features=["a", "b"], batch_size=64, **kwargs)
    exog = sm.add_constant(frame[["a", "b"]]).rename(columns={"const": "Intercept"})
    cov_kwds = {"groups": pd.factorize(frame["g"])[0]} if cov_type == "cluster" else None
    ref = sm.OLS(frame["y"], exog).fit(cov_type=cov_type, cov_kwds=cov_kwds)
    assert not ref.use_t and not model.use_t
    new = frame[["a", "b"]].to_numpy()[:40] + 0.25
    got = IntervalPredictor.from_model(model).predict(new).summary_frame(0.1)
    want = ref.get_prediction(sm.add_constant(new, has_constant="add")).summary_frame(0.1)
    assert frame_gaps(got, want) == {}


def exact_mean_se(x, y, new):
    """√(scale · x̃ᵀ(XᵀX)⁻¹x̃) for each new row, in exact rational arithmetic (then rounded)."""
    b0, b = exact_lstsq(x, y)
    rows = [[Fraction(1)] + [Fraction(float(v)) for v in row] for row in x]
    beta = [b0, *b]
    ssr = sum(
        (Fraction(float(t)) - sum(c * v for c, v in zip(beta, row))) ** 2 for row, t in zip(rows, y)
    )
    scale = ssr / (len(rows) - len(beta))
    k = len(beta)
    gram = [[sum(r[i] * r[j] for r in rows) for j in range(k)] for i in range(k)]
    out = []
    for target in new:
        point = [Fraction(1)] + [Fraction(float(v)) for v in target]
        solved = exact_solve(gram, point)
        out.append(float(scale * sum(p * s for p, s in zip(point, solved))) ** 0.5)
    return np.array(out)


@pytest.mark.parametrize("solver", ["cholesky", "exact"])
def test_longley_mean_se_against_exact_arithmetic(solver):
    data = sm.datasets.longley.load_pandas().data
    x, y = data.iloc[:, 1:].to_numpy(), data["TOTEMP"].to_numpy()
    new = x[[0, 5, 11, 15]] * np.array([1.0, 1.01, 0.99, 1.0, 1.0, 1.0])
    exact = exact_mean_se(x, y, new)
    got = IntervalPredictor.from_model(fit(x, y, solver=solver)).predict(new).se_mean
    assert np.all(np.abs(got - exact) <= 1e-11 * exact), np.abs(got - exact) / exact
    ref = statsmodels_fit(x, y).get_prediction(sm.add_constant(new)).se_mean
    # statsmodels' x Σ xᵀ on the raw design cancels: it is much further from the exact value.
    assert np.max(np.abs(ref - exact) / exact) > 100 * np.max(np.abs(got - exact) / exact)


def test_large_offsets_keep_their_digits(rng):
    n = 400
    t = 1.6e9 + rng.uniform(0, 1000, size=n)
    x = np.column_stack([t, rng.normal(size=n)])
    y = 3 + 0.002 * (t - 1.6e9) + x[:, 1] + rng.normal(size=n)
    new = x[:7] + np.array([10.0, 0.5])
    exact = exact_mean_se(x, y, new)
    model = fit(x, y)
    result = IntervalPredictor.from_model(model).predict(new)
    assert np.all(np.abs(result.se_mean - exact) <= 1e-9 * exact)
    np.testing.assert_array_equal(result.predicted_mean, model.predict(new))


def test_batches_are_independent_and_bad_input_is_refused(stackloss):
    x, y = stackloss
    predictor = IntervalPredictor.from_model(fit(x, y))
    whole = predictor.predict(x).summary_frame()
    parts = pd.concat(
        [predictor.predict(x[s]).summary_frame() for s in (slice(0, 4), slice(4, 21))]
    )
    np.testing.assert_array_equal(whole.to_numpy(), parts.to_numpy())
    with pytest.raises(InputError, match="the batch has 2 feature columns; the model has 3"):
        predictor.predict(x[:, :2])
    with pytest.raises(InputError, match="alpha must be between 0 and 1"):
        predictor.predict(x).summary_frame(alpha=1.5)
    with pytest.raises(InputError, match="one per row"):
        predictor.predict(x, weights=np.ones(3))
