"""The model language through the public API: streamreg.fit(formula=...), categories without a
formula, dates, saved designs for predict/evaluate, several targets, and every solver.

Oracles: statsmodels' formula API (ols/wls: names, params, bse, t, p, R², F to 1e-8) on
statsmodels' bundled Grunfeld and Fair data and synthetic Parquet files, split so that some
levels first appear in the last file; per-target fits (bit for bit with the exact solver).
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import statsmodels.api as sm
import statsmodels.formula.api as smf
from modellang import assert_close, assert_p_close

import streamreg
from streamreg.errors import DataError, InputError, SchemaError, UnseenLevelWarning
from streamreg.evaluation import evaluate
from streamreg.prediction import predict_parquet


def ols(formula, frame, weights=None):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if weights is not None:
            return smf.wls(formula, frame, weights=weights).fit()
        return smf.ols(formula, frame).fit()


def assert_agrees(model, ref, rtol=1e-8):
    """Names, params, bse, t, p, R², F and its p equal statsmodels' to ``rtol``."""
    assert model.param_names == list(ref.params.index)
    assert_close(model.params, ref.params, rtol, "params")
    assert_close(model.bse, ref.bse, rtol, "bse")
    assert_close(model.tvalues, ref.tvalues, rtol, "tvalues")
    assert_p_close(model.pvalues, ref.pvalues)
    assert model.nobs == ref.nobs
    assert_close(model.rsquared, ref.rsquared, rtol, "rsquared")
    assert_close(model.fvalue, ref.fvalue, rtol, "fvalue")
    assert_p_close(model.f_pvalue, ref.f_pvalue)


@pytest.fixture(scope="module")
def grunfeld():
    frame = sm.datasets.grunfeld.load_pandas().data
    frame["firm"] = frame["firm"].astype(str)
    return frame.sort_values(["firm", "year"], kind="stable").reset_index(drop=True)


@pytest.fixture(scope="module")
def fair():
    frame = sm.datasets.fair.load_pandas().data
    return frame.assign(w=1.0 / (1.0 + frame.age / 10.0))


def write_parts(frame: pd.DataFrame, folder, parts: int, row_group_size: int = 37):
    """Consecutive slices as files: with a sorted frame the later files bring new levels."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, rows in enumerate(np.array_split(np.arange(len(frame)), parts)):
        table = pa.Table.from_pandas(frame.iloc[rows], preserve_index=False)
        pq.write_table(table, folder / f"part-{i}.parquet", row_group_size=row_group_size)
    return folder


GRUNFELD = [
    "invest ~ value + capital + C(firm)",
    'invest ~ np.log(value) * C(firm, Treatment("IBM"))',
    "invest ~ value:firm + firm - 1",
    "invest ~ I(value**2) + capital:C(year) + value",
    "invest ~ center(value) + scale(capital) + center(value):capital",
]


@pytest.mark.parametrize("formula", GRUNFELD)
@pytest.mark.parametrize("solver", ["cholesky", "qr", "exact", "auto"])
def test_grunfeld_parquet_with_levels_first_seen_in_later_files(
    grunfeld, tmp_path, formula, solver
):
    folder = write_parts(grunfeld, tmp_path / "g", parts=4)
    last = set(grunfeld.firm.iloc[len(grunfeld) * 3 // 4 :])
    assert last - set(grunfeld.firm.iloc[: len(grunfeld) * 3 // 4])  # some firms only at the end
    if solver == "exact" and "center" in formula:
        with pytest.raises(InputError, match="cholesky or qr"):
            streamreg.fit(folder, formula=formula, solver=solver)
        return
    ref = ols(formula, grunfeld)
    for batch_size in (13, 10_000):
        model = streamreg.fit(folder, formula=formula, solver=solver, batch_size=batch_size)
        assert_agrees(model, ref)


FAIR = [
    "affairs ~ rate_marriage + age + yrs_married + C(occupation) + C(religious):educ",
    "affairs ~ np.log1p(children) * C(occupation_husb) + I(age**2) + age",
]


@pytest.mark.parametrize("formula", FAIR)
@pytest.mark.parametrize("weighted", [False, True])
def test_fair_ols_and_wls_agree_with_statsmodels(fair, tmp_path, formula, weighted):
    folder = write_parts(fair.sort_values("occupation", kind="stable"), tmp_path / "f", parts=3)
    model = streamreg.fit(folder, formula=formula, weight="w" if weighted else None)
    ref = ols(formula, fair, weights=fair.w if weighted else None)
    assert_agrees(model, ref)
    robust = streamreg.fit(
        folder, formula=formula, weight="w" if weighted else None, cov_type="HC1"
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if weighted:
            hc1 = smf.wls(formula, fair, weights=fair.w).fit(cov_type="HC1")
        else:
            hc1 = smf.ols(formula, fair).fit(cov_type="HC1")
    assert_close(robust.bse, hc1.bse, 1e-8, "HC1 bse")


@pytest.fixture
def sales(rng):
    n = 600
    frame = pd.DataFrame(
        {
            "price": rng.uniform(1, 10, n),
            "region": rng.choice(["north", "south", "east"], n),
            "store": rng.integers(0, 4, n),
            "promo": rng.random(n) < 0.3,
            "day": pd.to_datetime("2024-01-01")
            + pd.to_timedelta(rng.integers(0, 365, n), unit="D"),
        }
    )
    effect = frame.region.map({"north": 0.0, "south": 2.0, "east": -1.0})
    frame["sales"] = 3 + 0.5 * frame.price + effect + frame.store * 0.3 + rng.normal(size=n)
    frame["units"] = 2 * frame.sales + rng.normal(size=n)
    return frame


def test_text_features_are_categories_named_as_statsmodels(sales):
    # A feature list keeps its order (statsmodels' formula puts categories first).
    model = streamreg.fit(sales, target="sales", features=["price", "region"])
    ref = ols("sales ~ price + region", sales)
    assert model.param_names == ["Intercept", "price", "region[T.north]", "region[T.south]"]
    assert_close(model.params, ref.params[model.param_names])
    assert_close(model.bse, ref.bse[model.param_names])
    assert model.columns_["region"] == {"role": "category", "why": "3 levels, reference 'east'"}


def test_reference_and_categorical_options(sales):
    model = streamreg.fit(
        sales,
        target="sales",
        features=["price", "region", "store"],
        categorical=["store"],
        reference={"region": "north", "store": 2},
    )
    ref = ols("sales ~ price + C(region, Treatment('north')) + C(store, Treatment(2))", sales)
    assert model.param_names[2:4] == ["region[T.east]", "region[T.south]"]
    assert model.param_names[4:] == ["store[T.0]", "store[T.1]", "store[T.3]"]
    named = {
        n.replace("C(region, Treatment('north'))", "region").replace(
            "C(store, Treatment(2))", "store"
        ): v
        for n, v in ref.params.items()
    }
    assert_close(model.params, [named[n] for n in model.param_names])
    with pytest.raises(InputError, match="reference level 'west' of 'region' is not a level"):
        streamreg.fit(sales, target="sales", features=["region"], reference={"region": "west"})


def test_dates_and_timestamps_are_days_and_seconds(sales):
    frame = sales.assign(date=sales.day.dt.date)
    by_seconds = streamreg.fit(frame, target="sales", features=["price", "day"])
    by_days = streamreg.fit(frame, target="sales", features=["price", "date"])
    numbers = frame.assign(
        seconds=(frame.day - pd.Timestamp("1970-01-01")).dt.total_seconds(),
        days=(frame.day - pd.Timestamp("1970-01-01")).dt.days.astype(float),
    )
    # The same as the plain fit of the numbers (which keeps its digits with a 1.7e9 offset;
    # statsmodels' uncentered solve loses ~8 of them there), and as statsmodels on the slopes.
    seconds = streamreg.fit(numbers, target="sales", features=["price", "seconds"])
    assert_close(by_seconds.params, seconds.params, 1e-12)
    assert_close(by_seconds.bse, seconds.bse, 1e-12)
    assert_close(by_seconds.params[1:], ols("sales ~ price + seconds", numbers).params[1:], 1e-6)
    assert_close(by_days.params, ols("sales ~ price + days", numbers).params.values, 1e-9)
    assert "seconds since 1970-01-01 UTC" in by_seconds.columns_["day"]["why"]
    assert "days since 1970-01-01" in by_days.columns_["date"]["why"]
    month = streamreg.fit(frame, formula="sales ~ price + C(month(day))")
    ref = ols("sales ~ price + C(month)", frame.assign(month=frame.day.dt.month))
    assert_close(month.params, ref.params.values, 1e-9)


def test_saved_design_predicts_and_evaluates_new_data_identically(sales, tmp_path):
    formula = "sales ~ price + np.log(price):C(region) + C(region) + promo"
    model = streamreg.fit(sales, formula=formula)
    path = tmp_path / "model.json"
    model.save(path)
    data = json.loads(path.read_text())
    assert data["format_version"] == 2
    assert data["design"]["levels"]["region"] == ["east", "north", "south"]
    loaded = streamreg.load(path)
    new = sales.iloc[::-1].iloc[:50]  # other order; "east" may be first or last
    ref = ols(formula, sales)
    np.testing.assert_allclose(loaded.predict(new), ref.predict(new).values, rtol=1e-10)
    np.testing.assert_array_equal(loaded.predict(new), model.predict(new))
    part = tmp_path / "new.parquet"
    pq.write_table(pa.Table.from_pandas(new, preserve_index=False), part)
    out = tmp_path / "p.parquet"
    predict_parquet(loaded, part, out, batch_size=7)
    np.testing.assert_allclose(pq.read_table(out).column("prediction"), ref.predict(new), 1e-10)
    scores = evaluate(loaded, part, batch_size=9)
    resid = new.sales - ref.predict(new)
    assert_close(scores["rmse"], np.sqrt(np.mean(resid**2)), 1e-10)


def test_unseen_level_is_named_or_coded_as_reference(sales, tmp_path):
    model = streamreg.fit(sales, target="sales", features=["price", "region"])
    new = sales.iloc[:40].copy()
    new.loc[new.index[25], "region"] = "west"
    path = tmp_path / "new.parquet"
    pq.write_table(pa.Table.from_pandas(new, preserve_index=False), path, row_group_size=10)
    out = tmp_path / "p.parquet"
    with pytest.raises(DataError) as error:
        predict_parquet(model, path, out)
    message = str(error.value)
    assert "'region'" in message and "'west'" in message
    assert str(path) in message and "row group 2" in message
    assert not out.exists()
    counts: dict = {}
    predict_parquet(model, path, out, unseen="reference", unseen_rows=counts)
    assert counts == {"region": 1}
    values = pq.read_table(out).column("prediction").to_numpy()
    as_reference = new.assign(region="east").iloc[[25]]
    assert_close(values[25], model.predict(as_reference)[0], 1e-12)
    with pytest.warns(UnseenLevelWarning, match="1 in 'region'"):
        model.predict(new, unseen="reference")


def test_missing_values_give_null_predictions(sales):
    model = streamreg.fit(sales, target="sales", features=["price", "region"])
    new = sales.iloc[:5].copy()
    new.loc[new.index[2], "region"] = None
    values = model.predict(new)
    assert np.isnan(values[2]) and np.isfinite(values[[0, 1, 3, 4]]).all()


# ---------------------------------------------------------------------- several targets
def test_several_targets_equal_one_fit_each_bit_for_bit_with_exact(sales, tmp_path):
    folder = write_parts(sales.sort_values("region"), tmp_path / "s", parts=3)
    both = streamreg.fit(
        folder, target=["sales", "units"], features=["price", "region"], solver="exact"
    )
    assert both.coef_.shape == (2, 3) and both.targets_ == ["sales", "units"]
    for k, target in enumerate(["sales", "units"]):
        alone = streamreg.fit(folder, target=target, features=["price", "region"], solver="exact")
        np.testing.assert_array_equal(both.coef_[k], alone.coef_)
        assert both.intercept_[k] == alone.intercept_
        np.testing.assert_array_equal(both[target].bse, alone.bse)
    path = tmp_path / "two.json"
    both.save(path)
    again = streamreg.load(path)
    np.testing.assert_array_equal(again.coef_, both.coef_)
    np.testing.assert_array_equal(again["units"].bse, both["units"].bse)
    np.testing.assert_array_equal(again.predict(sales), both.predict(sales))
    assert again.predict(sales).shape == (len(sales), 2)
    assert set(again.summary("json")["targets"]) == {"sales", "units"}


def test_several_targets_with_cholesky_and_robust_errors(sales):
    both = streamreg.fit(sales, formula="sales + units ~ price + C(region)", cov_type="HC3")
    for target in ("sales", "units"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref = smf.ols(f"{target} ~ price + C(region)", sales).fit(cov_type="HC3")
        assert_close(both[target].params, ref.params, 1e-10)
        assert_close(both[target].bse, ref.bse, 1e-8)


def test_estimator_takes_a_two_dimensional_y(sales):
    from streamreg import StreamingLinearRegression

    x = sales[["price", "store"]].to_numpy(float)
    y = sales[["sales", "units"]].to_numpy()
    est = StreamingLinearRegression(solver="exact").fit(x, y)
    assert est.coef_.shape == (2, 2) and est.intercept_.shape == (2,)
    for k in range(2):
        one = StreamingLinearRegression(solver="exact").fit(x, y[:, k])
        np.testing.assert_array_equal(est.coef_[k], one.coef_)
    prediction = est.predict(x[:7])
    np.testing.assert_allclose(prediction, x[:7] @ est.coef_.T + est.intercept_, rtol=1e-12)
    with pytest.raises(InputError, match="partial_fit fits one target"):
        est.partial_fit(x, y)


# ---------------------------------------------------------------------- every solver
@pytest.mark.parametrize("solver", ["sgd", "newton", "lbfgs"])
def test_gradient_solvers_take_the_encoded_design(sales, solver):
    exact = streamreg.fit(sales, formula="sales ~ price + C(region)", solver="qr")
    options = {"epochs": 60, "seed": 1} if solver == "sgd" else None
    model = streamreg.fit(
        sales, formula="sales ~ price + C(region)", solver=solver, gradient=options
    )
    assert model.param_names == exact.param_names
    tolerance = 5e-2 if solver == "sgd" else 1e-6  # sgd: a stochastic optimizer
    np.testing.assert_allclose(model.params, exact.params, atol=tolerance)


def test_what_a_solver_cannot_take_is_refused_in_words(sales):
    with pytest.raises(InputError, match="gradient solvers fit one target"):
        streamreg.fit(sales, target=["sales", "units"], features=["price"], solver="sgd")
    with pytest.raises(InputError, match="center/scale"):
        streamreg.fit(sales, formula="sales ~ center(price)", solver="newton")
    with pytest.raises(InputError, match="absorbed fixed effect is solved from per-group sums"):
        streamreg.fit(sales, formula="sales ~ price | store", solver="qr")


def test_dask_dataframe_carries_the_encoding(sales):
    dd = pytest.importorskip("dask.dataframe")
    frame = sales.assign(region=sales.region.astype(object))
    local = streamreg.fit(frame, formula="sales ~ price + C(region) + C(store)")
    lazy = dd.from_pandas(frame, npartitions=4)
    distributed = streamreg.fit(lazy, formula="sales ~ price + C(region) + C(store)")
    assert distributed.param_names == local.param_names
    assert_close(distributed.params, local.params, 1e-10)
    predicted = distributed.predict(lazy).compute()
    assert_close(predicted.to_numpy(), local.predict(frame), 1e-10)


# ---------------------------------------------------------------------- bad input, in words
def test_more_levels_than_the_default_1000_are_refused(rng):
    frame = pd.DataFrame({"code": np.arange(1200) % 1001, "y": rng.normal(size=1200)})
    with pytest.raises(InputError, match="more than 1000 levels .*absorb='code'"):
        streamreg.fit(frame, target="y", features=["code"], categorical=["code"])


@pytest.mark.parametrize(
    "kwargs, error, words",
    [
        (dict(formula="sales ~ price + nothere"), SchemaError, "column 'nothere', which is not"),
        (dict(formula="sales ~ price + foo(price)"), InputError, "calls 'foo'"),
        (dict(formula="sales ~ 1"), InputError, "only an intercept"),
        (dict(formula="sales ~ price", features=["price"]), InputError, "not both"),
        (dict(target="sales", features=["region"], max_levels=2), InputError, "absorb"),
        (dict(formula="sales ~ price | store + region"), InputError, "alternating projections"),
    ],
)
def test_bad_model_requests_are_one_sentence(sales, kwargs, error, words):
    with pytest.raises(error, match=words) as caught:
        streamreg.fit(sales, **kwargs)
    assert "\n" not in str(caught.value)
