"""Encoded batches fed to the existing states and solver agree with statsmodels' formula API
(params, bse, t, p, R², F to 1e-8) across chunkings, forms and solvers; the grouped Gram
equals the dense one-hot Gram; levels, dates, missing values and unseen levels."""

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
from modellang import accumulate_design, assert_close, assert_matches_statsmodels, fit_formula

from streamreg.design.coding import DesignPlan
from streamreg.design.encoding import BatchEncoder, dense_batch_rows
from streamreg.design.formula import parse_formula
from streamreg.design.grouped import grouped_moments
from streamreg.design.levels import discover_levels
from streamreg.errors import DataError, InputError
from streamreg.io.sources import InMemorySource, Source
from streamreg.solvers.exact import ExactState
from streamreg.solvers.moments import MomentState
from streamreg.solvers.qr import QRState


def ols(formula, frame, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if "weights" in kwargs:
            return smf.wls(formula, frame, **kwargs).fit()
        return smf.ols(formula, frame, **kwargs).fit()


@pytest.fixture(scope="module")
def grunfeld():
    frame = sm.datasets.grunfeld.load_pandas().data
    frame["firm"] = frame["firm"].astype(object)
    return frame


@pytest.fixture(scope="module")
def fair():
    return sm.datasets.fair.load_pandas().data


def table_of(frame):
    return pa.Table.from_pandas(frame, preserve_index=False)


GRUNFELD_FORMULAS = [
    "invest ~ value + capital + C(firm)",
    'invest ~ np.log(value) * C(firm, Treatment("IBM"))',
    "invest ~ value:firm + firm - 1",
    "invest ~ I(value**2) + capital:C(year) + value",
    "invest ~ center(value) + scale(capital) + center(value):capital + firm:scale(capital)",
]


@pytest.mark.parametrize("formula", GRUNFELD_FORMULAS)
@pytest.mark.parametrize("batch_size", [7, 64, 10_000])
@pytest.mark.parametrize("kind", ["grouped", "dense", "qr"])
def test_grunfeld_agrees_with_statsmodels(grunfeld, formula, batch_size, kind):
    source = InMemorySource(table_of(grunfeld))
    state_kind = QRState if kind == "qr" else MomentState
    form = "grouped" if kind == "grouped" else "dense"
    model, design, _ = fit_formula(
        source, formula, form=form, state_kind=state_kind, batch_size=batch_size
    )
    assert_matches_statsmodels(model, ols(formula, grunfeld), design)


@pytest.mark.parametrize("formula", GRUNFELD_FORMULAS[:4])
def test_grunfeld_exact_solver(grunfeld, formula):
    model, design, _ = fit_formula(
        InMemorySource(table_of(grunfeld)),
        formula,
        form="dense",
        state_kind=ExactState,
        batch_size=50,
    )
    assert_matches_statsmodels(model, ols(formula, grunfeld), design)


def test_exact_solver_refuses_center_in_words(grunfeld):
    with pytest.raises(InputError, match="need the cholesky or qr solver"):
        fit_formula(
            InMemorySource(table_of(grunfeld)),
            GRUNFELD_FORMULAS[-1],
            form="dense",
            state_kind=ExactState,
        )


def test_levels_first_seen_in_later_files(grunfeld, tmp_path):
    """Files sorted by firm: every file brings firms the earlier ones never held."""
    frame = grunfeld.sort_values(["firm", "year"], kind="stable").reset_index(drop=True)
    for i, part in enumerate(np.array_split(np.arange(len(frame)), 4)):
        pq.write_table(
            table_of(frame.iloc[part]), tmp_path / f"part-{i}.parquet", row_group_size=17
        )
    source = Source.resolve(tmp_path)
    firms_in_last = set(frame.iloc[np.array_split(np.arange(len(frame)), 4)[-1]].firm)
    assert firms_in_last - set(frame.iloc[: len(frame) * 3 // 4].firm)
    for formula in GRUNFELD_FORMULAS[:2]:
        for form in ("grouped", "dense"):
            model, design, _ = fit_formula(source, formula, form=form, batch_size=23)
            assert_matches_statsmodels(model, ols(formula, frame), design)


FAIR_FORMULAS = [
    "affairs ~ rate_marriage + age + yrs_married + C(occupation) + C(religious):educ",
    "affairs ~ np.log1p(children) * C(occupation_husb) + I(age**2) + age",
]


@pytest.mark.parametrize("formula", FAIR_FORMULAS)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("form", ["grouped", "dense"])
def test_fair_agrees_with_statsmodels(fair, formula, weighted, form):
    frame = fair.assign(w=1.0 / (1.0 + fair.age / 10.0))
    source = InMemorySource(table_of(frame))
    model, design, _ = fit_formula(
        source, formula, weight="w" if weighted else None, form=form, batch_size=1000
    )
    ref = ols(formula, frame, weights=frame.w) if weighted else ols(formula, frame)
    assert_matches_statsmodels(model, ref, design)


def _synthetic(rng, n=3000, spread=2e6):
    region = rng.choice(["north", "south", "east"], n).astype(object)
    region[-200:] = rng.choice(["east", "west"], 200)  # 'west' only at the end
    frame = pd.DataFrame(
        {
            "x1": rng.normal(size=n),
            "x2": rng.uniform(1e6, 1e6 + spread, n),
            "flag": rng.choice([True, False], n),
            "k": rng.integers(0, 4, n),
            "region": region,
            "w": rng.uniform(0.2, 3.0, n),
        }
    )
    effect = {"north": 0.0, "south": 1.0, "east": -2.0, "west": 0.5}
    frame["y"] = (
        1
        + 2 * frame.x1
        + frame.region.map(effect)
        + frame.x1 * frame.region.map(effect)
        + frame.flag * 0.3
        + frame.k * 0.2
        + np.log(frame.x2)
        + rng.normal(size=n)
    )
    return frame


SYNTHETIC_FORMULAS = [
    "y ~ x1 + np.log(x2) + C(region) + x1:C(region) + flag + C(k)",
    "y ~ x1 * region * flag + x2",
    "y ~ C(region):C(k) + x1:x2 - 1",
]


@pytest.mark.parametrize("formula", SYNTHETIC_FORMULAS)
@pytest.mark.parametrize("weighted", [False, True])
def test_synthetic_parquet_with_missing_values(formula, weighted, tmp_path, rng):
    frame = _synthetic(rng)
    # Every coefficient well away from zero, so that 1e-8 relative is a fair test of each.
    exog = ols(formula, frame).model.exog
    beta = rng.uniform(0.5, 2.0, exog.shape[1]) * rng.choice([-1, 1], exog.shape[1])
    beta /= np.maximum(1.0, exog.std(axis=0))
    frame["y"] = exog @ beta + rng.normal(size=len(frame))
    frame.loc[[5, 77, 2999], "x1"] = np.nan
    frame.loc[[8, 1500], "region"] = None
    for i, part in enumerate(np.array_split(np.arange(len(frame)), 3)):
        pq.write_table(table_of(frame.iloc[part]), tmp_path / f"p{i}.parquet", row_group_size=400)
    source = Source.resolve(tmp_path)
    for form in ("grouped", "dense"):
        model, design, acc = fit_formula(
            source, formula, weight="w" if weighted else None, form=form, batch_size=333
        )
        ref = ols(formula, frame, weights=frame.w) if weighted else ols(formula, frame)
        assert_matches_statsmodels(model, ref, design)
        assert acc.dropped == {"x1": 3, "region": 2}
        assert acc.rows_read == len(frame)


def test_offsets_cost_statsmodels_digits_not_ours(rng):
    """log(x2) for x2 in [1e6, 1e6 + 50] varies by 5e-5 about 13.8: statsmodels' pseudo-inverse
    of the raw design loses digits that the centered moments keep (the exact solver is the
    referee)."""
    frame = _synthetic(rng, spread=50.0)
    formula = SYNTHETIC_FORMULAS[0]
    source = InMemorySource(table_of(frame))
    ours = fit_formula(source, formula, batch_size=333)[0].params
    exact = fit_formula(source, formula, form="dense", state_kind=ExactState)[0].params
    theirs = ols(formula, frame).params.to_numpy()
    ours_error = np.max(np.abs(ours - exact) / np.abs(exact))
    theirs_error = np.max(np.abs(theirs - exact) / np.abs(exact))
    assert ours_error < 1e-11 and theirs_error > 100 * ours_error


def _assert_same_moments(a, b, tol=1e-12):
    assert a.names == b.names and a.n_rows == b.n_rows
    assert_close(a.weight_sum, b.weight_sum, 1e-14)
    scale = np.sqrt(np.outer(np.diagonal(b.comoment), np.diagonal(b.comoment)))
    scale[scale == 0] = 1.0
    assert np.max(np.abs(a.comoment - b.comoment) / scale) < tol
    mean_a, mean_b = a.mean + a.mean_lo, b.mean + b.mean_lo
    spread = np.sqrt(np.diagonal(b.comoment) / b.weight_sum) + np.abs(mean_b)
    assert np.all(np.abs(mean_a - mean_b) <= tol * np.maximum(spread, 1e-300))


WIDE_FORMULA = (
    "y ~ x + C(a) + C(b) + C(a):C(b) + x:C(a) + x:z:C(c) + C(b):C(c):z + "
    "I(x * z) + C(a, Treatment(7)):C(c)"
)


def _wide(rng, n=5000):
    return pa.table(
        {
            "x": rng.normal(size=n) + 3.0,
            "z": rng.normal(size=n) * 2.0,
            "a": rng.integers(0, 30, n),
            "b": pa.array(rng.choice(list("pqrst"), n)).dictionary_encode(),
            "c": rng.choice(["u", "v", "w"], n),
            "y": rng.normal(size=n),
            "w": rng.uniform(0, 2, n),
        }
    )


@pytest.mark.parametrize("weighted", [False, True])
def test_grouped_gram_equals_dense_one_hot_gram(weighted, rng):
    table = _wide(rng)
    plan = DesignPlan.from_formula(
        parse_formula(WIDE_FORMULA),
        table.schema,
        weight="w" if weighted else None,
        categorical=["a"],
    )
    source = InMemorySource(table)
    design = plan.with_levels(discover_levels(source, plan.categorical_sources).levels)
    encoder = BatchEncoder(design)
    assert len(design.column_names) > 250
    shift = None
    for chunk in source.batches(encoder.columns_read, 1200):
        prepared = encoder.prepare(chunk)
        grouped = grouped_moments(encoder, prepared, shift, state_kind=MomentState)
        dense = MomentState.from_arrays(
            encoder.dense(prepared), prepared.weights, names=encoder.state_names
        )
        _assert_same_moments(grouped, dense)
        shift = dense.mean  # a shift off this batch's mean, as the running mean is
    whole_grouped = accumulate_design(source, encoder, form="grouped", batch_size=700).state
    whole_dense = accumulate_design(source, encoder, form="dense", batch_size=900).state
    _assert_same_moments(whole_grouped, whole_dense)


def test_grouped_sums_recentre_when_the_mean_drifts(rng):
    """The first batch sits at 0 ± 16, the 39 later ones at 1e8 ± 16: about the first batch's
    mean the sums would, by the 17th batch, cancel more than 1/16 of the co-moment (S/M = k
    after k batches), so they are set aside and the shift moves to 1e8."""
    from streamreg.design.grouped import GroupedSums

    n = 4000
    t = np.where(np.arange(n) < 100, 0.0, 1e8) + rng.integers(-1000, 1000, n) / 64.0
    table = pa.table({"t": t, "g": rng.choice(list("abc"), n), "y": rng.normal(size=n)})
    plan = DesignPlan.from_formula(parse_formula("y ~ t + g + t:g"), table.schema)
    encoder = BatchEncoder(plan.with_levels({"g": ["a", "b", "c"]}))
    source = InMemorySource(table)
    sums = GroupedSums(encoder, state_kind=MomentState)
    for chunk in source.batches(encoder.columns_read, 100):
        assert sums.add(encoder.prepare(chunk))
    assert sums._pending is not None  # the set-aside path ran
    grouped = sums.flush()
    z = encoder.dense(encoder.prepare(next(source.batches(encoder.columns_read, n))))
    truth = ExactState.from_arrays(z, names=encoder.state_names)
    _assert_same_moments(grouped, truth, tol=1e-12)
    _assert_same_moments(accumulate_design(source, encoder, batch_size=100).state, truth, 1e-12)


def test_dates_and_timestamps_are_days_and_seconds(rng):
    n = 400
    days = rng.integers(0, 3000, n)
    seconds = rng.integers(0, 10**8, n).astype(np.int64)
    date = pa.array(days.astype(np.int32), pa.date32())
    stamp = pa.array((1_600_000_000 + seconds) * 1_000_000, pa.timestamp("us"))
    y = 0.01 * days + 1e-7 * seconds + rng.normal(size=n)
    table = pa.table({"d": date, "t": stamp, "y": y})
    model, design, _ = fit_formula(InMemorySource(table), "y ~ d + t + C(month(d)) + weekday(t)")
    months = pd.to_datetime(days, unit="D").month
    frame = pd.DataFrame(
        {
            "y": y,
            "d": days.astype(float),
            "t": 1.6e9 + seconds.astype(float),
            "m": months,
            "wd": pd.to_datetime(1.6e9 + seconds, unit="s").day_of_week,
        }
    )
    ref = ols("y ~ d + t + C(m) + wd", frame)
    assert design.column_names[0] == "C(month(d))[T.2]"
    assert design.column_names[-3:] == ("d", "t", "weekday(t)")
    assert_close(model.params, ref.params.to_numpy())
    assert_close(model.bse, ref.bse.to_numpy())


def test_transforms_that_make_nan_drop_rows_and_inf_is_refused(rng):
    n = 200
    x = rng.uniform(1, 2, n)
    x[[3, 50]] = -1.0
    table = pa.table({"x": x, "y": rng.normal(size=n)})
    model, _, acc = fit_formula(InMemorySource(table), "y ~ np.log(x)")
    assert acc.dropped == {"np.log(x)": 2} and model.nobs == n - 2
    frame = table.to_pandas()
    ref = ols("y ~ np.log(x)", frame[frame.x > 0])
    assert_close(model.params, ref.params.to_numpy())
    x[7] = 0.0
    with pytest.raises(DataError, match=r"'np.log\(x\)' is infinite in row 7 of the data"):
        fit_formula(InMemorySource(pa.table({"x": x, "y": rng.normal(size=n)})), "y ~ np.log(x)")
    with pytest.raises(DataError, match="'x' has a missing value in row 1 of the data"):
        fit_formula(
            InMemorySource(pa.table({"x": [1.0, None, 2.0, 3.0], "y": [1.0, 2, 3, 5]})),
            "y ~ x",
            nulls="error",
        )


def _three_files(tmp_path, rng):
    for i, levels in enumerate([["a", "b"], ["b", "c"], ["c", "new"]]):
        n = 300
        pq.write_table(
            pa.table(
                {"g": rng.choice(levels, n), "x": rng.normal(size=n), "y": rng.normal(size=n)}
            ),
            tmp_path / f"f{i}.parquet",
            row_group_size=100,
        )
    return sorted(tmp_path.glob("*.parquet"))


def test_unseen_level_is_an_error_naming_column_level_file_and_row_group(tmp_path, rng):
    files = _three_files(tmp_path, rng)
    old = Source.resolve([str(f) for f in files[:2]])
    plan = DesignPlan.from_formula(parse_formula("y ~ x + C(g)"), old.schema)
    design = plan.with_levels(discover_levels(old, plan.categorical_sources).levels)
    assert design.levels["g"] == ("a", "b", "c")
    new = Source.resolve(str(files[2]))
    encoder = BatchEncoder(design)
    with pytest.raises(DataError) as err:
        for chunk in new.batches(encoder.columns_read, 50):
            encoder.prepare(chunk)
    message = str(err.value)
    assert "'g'" in message and "'new'" in message and str(files[2]) in message
    assert "row group" in message and "unseen='reference'" in message
    lenient = BatchEncoder(design, unseen="reference")
    acc = accumulate_design(new, lenient, batch_size=64)
    labels = pq.read_table(files[2]).column("g").to_numpy(zero_copy_only=False)
    expected = int((labels == "new").sum())
    assert lenient.coder.unseen_rows == {"g": expected} and acc.state.n_rows == 300


def test_max_levels_refused_with_a_pointer_to_absorb(tmp_path, rng):
    files = _three_files(tmp_path, rng)
    source = Source.resolve(tmp_path)
    plan = DesignPlan.from_formula(parse_formula("y ~ x + C(g)"), source.schema)
    with pytest.raises(InputError, match=r"more than 3 levels.*Absorb it as a fixed effect"):
        discover_levels(source, plan.categorical_sources, max_levels=3)
    scan = discover_levels(source, plan.categorical_sources, max_levels=3, optional=["g"])
    assert scan.levels == {} and scan.too_many == {"g": 4}
    assert len(files) == 3


def test_discovery_reads_dictionaries_and_hive_partitions(tmp_path, rng):
    for part in ("west", "east"):
        folder = tmp_path / f"zone={part}"
        folder.mkdir()
        codes = pa.array(rng.choice(["m", "k", "z"], 100)).dictionary_encode()
        pq.write_table(
            pa.table({"s": codes, "x": rng.normal(size=100), "y": rng.normal(size=100)}),
            folder / "data.parquet",
            row_group_size=30,
        )
    source = Source.resolve(tmp_path)
    plan = DesignPlan.from_formula(parse_formula("y ~ x + s + zone"), source.schema)
    scan = discover_levels(source, plan.categorical_sources)
    assert scan.levels == {"s": ["k", "m", "z"], "zone": ["east", "west"]}
    model, design, _ = fit_formula(source, "y ~ x + s + zone")
    frame = pd.concat(
        [
            pq.read_table(tmp_path / f"zone={p}" / "data.parquet").to_pandas().assign(zone=p)
            for p in ("west", "east")
        ]
    )
    frame["s"] = frame["s"].astype(str).astype(object)
    assert_matches_statsmodels(model, ols("y ~ x + s + zone", frame), design)


def test_dense_batch_rows_shrink_with_width():
    assert dense_batch_rows(7) == 131072
    assert dense_batch_rows(554) == (1 << 24) // (8 * 554)
    assert dense_batch_rows(100_000) == 1024


@pytest.mark.parametrize(
    "formula",
    [
        'invest ~ np.log(value) * C(firm, Treatment("IBM")) + capital',
        "invest ~ center(value) + scale(capital) + center(value):capital + firm:scale(capital)",
    ],
)
def test_saved_design_encodes_new_data_identically(grunfeld, formula):
    """The saved design (levels, references, center/scale statistics) predicts as statsmodels."""
    from streamreg.design.coding import Design
    from streamreg.solvers.views import finish_state

    source = InMemorySource(table_of(grunfeld))
    model, design, acc = fit_formula(source, formula)
    _, stats = finish_state(BatchEncoder(design), acc.state)
    assert (stats is None) == (not design.plan.transformed)
    saved = json.loads(json.dumps(design.with_stats(stats).to_dict()))
    again = Design.from_dict(saved)
    encoder = BatchEncoder(again, raw=False)
    rows = encoder.dense(encoder.prepare(next(source.batches(encoder.columns_read, 1000))))
    kept = ~np.isnan(model.coef_)
    predicted = model.predict_kept(rows[:, :-1][:, kept])
    assert_close(predicted, ols(formula, grunfeld).fittedvalues.to_numpy(), 1e-9)


EDGE_FORMULAS = [
    ("y ~ C(g) + x:g", None),  # two factors (C(g), g) over one column
    ("y ~ x + C(one)", None),  # a single level: no column, as in patsy
    ("y ~ C(flag) * x + g", "w"),  # booleans; rows of zero weight
    ("y ~ C(g):C(flag):x + x", None),  # a three-factor term with mixed coding
]


@pytest.mark.parametrize(("formula", "weight"), EDGE_FORMULAS)
@pytest.mark.parametrize("form", ["grouped", "dense"])
def test_edge_designs_agree_with_statsmodels(formula, weight, form, rng):
    n = 300
    frame = pd.DataFrame(
        {
            "x": rng.normal(size=n),
            "g": rng.choice(list("abc"), n).astype(object),
            "one": ["z"] * n,
            "flag": rng.choice([True, False], n),
            "w": rng.uniform(0, 1, n),
        }
    )
    frame.loc[:9, "w"] = 0.0
    frame["y"] = frame.x + (frame.g == "b") + rng.normal(size=n)
    model, design, _ = fit_formula(
        InMemorySource(table_of(frame)), formula, weight=weight, form=form, batch_size=50
    )
    ref = ols(formula, frame, weights=frame.w) if weight else ols(formula, frame)
    assert_matches_statsmodels(model, ref, design)
