"""Fold assignment and fold states: invariance under chunking and file order, merge laws,
exact validation errors, cross-validated paths against scikit-learn, bad input."""

from __future__ import annotations

import datetime as dt
import json
import warnings

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from sklearn.exceptions import ConvergenceWarning as SklearnConvergenceWarning
from sklearn.linear_model import ElasticNetCV, Ridge, enet_path
from sklearn.model_selection import PredefinedSplit
from sklearn.preprocessing import StandardScaler

from streamreg.engine.fold_ids import check_n_folds, fold_labels, key_folds, position_folds
from streamreg.engine.fold_states import FoldStates
from streamreg.errors import InputError, ModelFormatError
from streamreg.solvers import state_from_dict
from streamreg.solvers.exact import ExactState
from streamreg.solvers.moments import MomentState
from streamreg.solvers.penalized import cross_validate_path, validation_mse
from streamreg.solvers.qr import QRState

NAMES = ["a", "b", "c", "y"]


def make_rows(n=240, p=3, weighted=False, seed=0, offset=0.0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, p)) + 0.5 * rng.normal(size=(n, 1)) + offset
    y = (x - offset) @ np.linspace(1.0, -1.0, p) + rng.normal(size=n) + 2.0
    w = rng.uniform(0.2, 3.0, size=n) if weighted else None
    return x, y, w


def random_cuts(n, rng, pieces):
    return np.sort(rng.choice(np.arange(1, n), size=pieces - 1, replace=False))


def fold_states_of(z, w, folds, kind=MomentState, n_folds=None, names=NAMES):
    out = FoldStates.empty(kind, names, n_folds=n_folds)
    return out.update(z, w, folds)


# ------------------------------------------------------------------ assignment
KEY_COLUMNS = {
    "int64": pa.array(np.arange(-500, 500, 3, dtype=np.int64)),
    "string": pa.array([f"user-{i % 97}" for i in range(400)]),
    "date": pa.array([dt.date(2020, 1, 1) + dt.timedelta(days=i) for i in range(300)]),
    "timestamp": pa.array(pd.date_range("2021-03-01", periods=300, freq="37min").to_numpy()),
    "float": pa.array(np.linspace(-3, 3, 301)),
}


@pytest.mark.parametrize("kind", list(KEY_COLUMNS))
def test_key_folds_do_not_depend_on_chunking(kind, rng):
    column = KEY_COLUMNS[kind]
    whole = key_folds(column, 5)
    for _ in range(5):
        cuts = random_cuts(len(column), rng, rng.integers(2, 9))
        pieces = np.split(np.arange(len(column)), cuts)
        chunked = np.concatenate([key_folds(column.take(pa.array(ix)), 5) for ix in pieces])
        np.testing.assert_array_equal(chunked, whole)
    assert set(np.unique(whole)) == set(range(5))


def test_key_folds_are_the_same_for_every_width_and_encoding():
    values = np.array([-7, 0, 3, 2**31 - 1, -(2**31)])
    reference = key_folds(pa.array(values, pa.int64()), 7)
    for kind in (pa.int32(),):
        np.testing.assert_array_equal(key_folds(pa.array(values, kind), 7), reference)
    np.testing.assert_array_equal(key_folds(pd.Series(values), 7), reference)
    np.testing.assert_array_equal(
        key_folds(pa.chunked_array([values[:2], values[2:]]), 7), reference
    )
    small = np.array([0, 5, 200])
    np.testing.assert_array_equal(
        key_folds(pa.array(small, pa.uint8()), 7), key_folds(pa.array(small, pa.uint64()), 7)
    )
    words = pa.array(["x", "yy", "x", "zzz"])
    np.testing.assert_array_equal(key_folds(words.dictionary_encode(), 4), key_folds(words, 4))
    np.testing.assert_array_equal(
        key_folds(pa.array(["x", "yy", "x", "zzz"], pa.large_string()), 4), key_folds(words, 4)
    )
    stamps = pa.array([dt.datetime(2020, 5, 1, 12), dt.datetime(1999, 1, 1)])
    np.testing.assert_array_equal(
        key_folds(stamps.cast(pa.timestamp("ms")), 3), key_folds(stamps.cast(pa.timestamp("ns")), 3)
    )
    np.testing.assert_array_equal(
        key_folds(pa.array([0.0, -0.0]), 9)[0], key_folds(pa.array([0.0]), 9)
    )


def test_equal_keys_share_a_fold_and_folds_are_balanced():
    keys = np.repeat(np.arange(4000), 3)
    folds = key_folds(keys, 5)
    assert np.all(folds.reshape(-1, 3) == folds[::3, None])
    counts = np.bincount(folds[::3], minlength=5)
    assert np.all(np.abs(counts - 800) < 4 * np.sqrt(800))  # a fair hash: within 4 sigma
    reseeded = key_folds(keys, 5, seed=1)
    assert 0.6 < np.mean(reseeded != folds) < 0.95


def test_position_folds_do_not_depend_on_batches_or_file_order(rng):
    files = {"part-0.parquet": 517, "part-1.parquet": 300, "sub/part-2.parquet": 41}
    whole = {f: position_folds(f, 0, n, 4) for f, n in files.items()}
    for order in (list(files), list(reversed(files))):
        for f in order:
            cuts = random_cuts(files[f], rng, 5)
            starts = np.concatenate([[0], cuts])
            ends = np.concatenate([cuts, [files[f]]])
            ids = np.concatenate([position_folds(f, a, b - a, 4) for a, b in zip(starts, ends)])
            np.testing.assert_array_equal(ids, whole[f])
    assert not np.array_equal(whole["part-0.parquet"][:300], whole["part-1.parquet"])
    counts = np.bincount(np.concatenate(list(whole.values())), minlength=4)
    assert np.all(np.abs(counts - 858 / 4) < 4 * np.sqrt(858 / 4))


def test_fold_labels_keep_integers_and_strings():
    np.testing.assert_array_equal(fold_labels(pa.array([3, 1, 2], pa.int16())), [3, 1, 2])
    np.testing.assert_array_equal(fold_labels(np.array([1.0, 2.0])), [1, 2])
    assert fold_labels(pa.array(["b", "a"]).dictionary_encode()).tolist() == ["b", "a"]


def test_fold_column_labels_in_sorted_order_whatever_the_batches():
    x, y, _ = make_rows(90)
    z = np.column_stack([x, y])
    labels = np.array(["q2", "q1", "q3"])[np.arange(90) % 3]
    whole = fold_states_of(z, None, fold_labels(labels), ExactState)
    parts = FoldStates.empty(ExactState, NAMES)
    for ix in (np.arange(60, 90), np.arange(0, 60)):  # the later rows first
        parts.update(z[ix], None, fold_labels(labels[ix]))
    assert whole.labels == ("q1", "q2", "q3") == parts.labels
    assert parts == whole
    assert whole.states[0] == ExactState.from_arrays(z[labels == "q1"], names=NAMES)


# ------------------------------------------------------------------ states
@pytest.mark.parametrize("weighted", [False, True])
def test_exact_fold_states_are_bit_identical_however_the_rows_are_split(weighted, rng):
    x, y, w = make_rows(300, weighted=weighted, seed=1)
    z = np.column_stack([x, y])
    ids = key_folds(np.arange(300), 5)
    reference = fold_states_of(z, w, ids, ExactState, n_folds=5)
    for _ in range(3):
        order = rng.permutation(300)
        pieces = np.split(order, random_cuts(300, rng, 6))
        partials = [
            fold_states_of(z[ix], None if w is None else w[ix], ids[ix], ExactState, 5)
            for ix in pieces
        ]
        merged = partials[0]
        for other in partials[1:]:
            merged = merged + other
        assert merged == reference
        assert all(a == b for a, b in zip(merged.training_states(), reference.training_states()))


@pytest.mark.parametrize("kind", [MomentState, QRState, ExactState])
def test_training_state_is_the_state_of_the_other_folds(kind):
    x, y, w = make_rows(200, weighted=True, seed=2, offset=1e6)
    z = np.column_stack([x, y])
    ids = position_folds("f", 0, 200, 4)
    folds = fold_states_of(z, w, ids, kind, 4)
    for k, train in enumerate(folds.training_states()):
        direct = kind.from_arrays(z[ids != k], w[ids != k], names=NAMES)
        assert train.n_rows == direct.n_rows
        assert train.weight_sum == pytest.approx(direct.weight_sum, rel=1e-14)
        np.testing.assert_allclose(
            train.mean + train.mean_lo, direct.mean + direct.mean_lo, rtol=1e-15
        )
        np.testing.assert_allclose(
            train.comoment, direct.comoment, rtol=1e-10, atol=1e-10 * np.abs(direct.comoment).max()
        )
    total = kind.from_arrays(z, w, names=NAMES)
    assert folds.total().n_rows == total.n_rows
    np.testing.assert_allclose(folds.total().comoment, total.comoment, rtol=1e-10)


def test_merge_laws_of_fold_states(rng):
    x, y, w = make_rows(150, weighted=True, seed=3)
    z = np.column_stack([x, y])
    ids = key_folds(np.arange(150), 3)
    cuts = np.split(np.arange(150), [40, 90])
    a, b, c = (fold_states_of(z[ix], w[ix], ids[ix], MomentState, 3) for ix in cuts)
    empty = FoldStates.empty(MomentState, NAMES, n_folds=3)
    assert a + empty == a and empty + a == a
    for left, right in (((a + b) + c, a + (b + c)), (a + b, b + a)):
        for s, t in zip(left.states, right.states):
            assert s.n_rows == t.n_rows
            np.testing.assert_allclose(s.comoment, t.comoment, rtol=1e-12, atol=1e-12)
            np.testing.assert_allclose(
                s.mean + s.mean_lo, t.mean + t.mean_lo, rtol=1e-13, atol=1e-15
            )
    exact = [fold_states_of(z[ix], w[ix], ids[ix], ExactState, 3) for ix in cuts]
    assert (exact[0] + exact[1]) + exact[2] == exact[2] + (exact[1] + exact[0])


@pytest.mark.parametrize("kind", [MomentState, QRState, ExactState])
def test_fold_states_round_trip_through_json(kind):
    x, y, w = make_rows(80, weighted=True, seed=4)
    z = np.column_stack([x, y])
    labels = fold_labels(np.array(["b", "a", "c", "a"])[np.arange(80) % 4])
    folds = fold_states_of(z, w, labels, kind)
    again = FoldStates.from_dict(
        json.loads(json.dumps(folds.to_dict())), parse_state=state_from_dict
    )
    assert again == folds and again.state_type is kind and again.labels == ("a", "b", "c")
    hashed = fold_states_of(z, w, key_folds(np.arange(80), 3), kind, 3)
    assert (
        FoldStates.from_dict(json.loads(json.dumps(hashed.to_dict())), parse_state=state_from_dict)
        == hashed
    )


def test_damaged_fold_files_are_refused():
    x, y, _ = make_rows(30)
    data = fold_states_of(
        np.column_stack([x, y]), None, key_folds(np.arange(30), 3), MomentState, 3
    ).to_dict()
    for change, words in (
        (lambda d: d.update(format_version=99), "version"),
        (lambda d: d.update(format="x"), "not a streamreg"),
        (lambda d: d.update(labels=[0, 1]), "equal length"),
        (lambda d: d.update(labels=[0, "1", 2]), "all integers"),
        (lambda d: d.update(labels=[1, 2, 3]), "0..n_folds-1"),
        (lambda d: d.pop("states"), "'states'"),
    ):
        damaged = json.loads(json.dumps(data))
        change(damaged)
        with pytest.raises(ModelFormatError, match=words):
            FoldStates.from_dict(damaged, parse_state=state_from_dict, where="folds.json")


# ------------------------------------------------------------------ validation error
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("offset", [0.0, 1e7])
def test_validation_mse_equals_residuals_computed_row_by_row(weighted, offset):
    x, y, w = make_rows(120, weighted=weighted, seed=5, offset=offset)
    train, test = np.arange(120) % 4 != 0, np.arange(120) % 4 == 0
    fold = MomentState.from_arrays(
        np.column_stack([x[test], y[test]]), None if w is None else w[test], names=NAMES
    )
    trained = MomentState.from_arrays(
        np.column_stack([x[train], y[train]]), None if w is None else w[train], names=NAMES
    )
    rng = np.random.default_rng(6)
    coefs = rng.normal(size=(7, 3))
    mean = trained.mean + trained.mean_lo
    intercepts = mean[3] - coefs @ mean[:3]
    residual = (
        y[test][:, None] - (x[test] - offset) @ coefs.T - (intercepts + offset * coefs.sum(1))
    )
    expected = np.average(residual**2, axis=0, weights=None if w is None else w[test])
    np.testing.assert_allclose(validation_mse(fold, coefs, intercepts), expected, rtol=1e-6)
    implied = validation_mse(fold, coefs, train_mean=(trained.mean, trained.mean_lo))
    np.testing.assert_allclose(implied, expected, rtol=1e-9)


# ------------------------------------------------------------------ cross-validated paths
def _sklearn_cv(x, y, w, ids, **kwargs):
    model = ElasticNetCV(cv=PredefinedSplit(ids), tol=1e-13, max_iter=1_000_000, **kwargs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SklearnConvergenceWarning)
        return model.fit(x, y, sample_weight=w)


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("l1_ratio", [1.0, 0.5, [0.5], [0.1, 0.6, 1.0]])
def test_mse_path_equals_sklearn_elastic_net_cv(weighted, fit_intercept, l1_ratio):
    x, y, w = make_rows(200, p=6, weighted=weighted, seed=7)
    ids = key_folds(np.arange(200), 5)
    names = [f"x{j}" for j in range(6)] + ["y"]
    folds = fold_states_of(np.column_stack([x, y]), w, ids, MomentState, 5, names=names)
    ours = cross_validate_path(folds, l1_ratio=l1_ratio, fit_intercept=fit_intercept, tol=1e-12)
    theirs = _sklearn_cv(x, y, w, ids, l1_ratio=l1_ratio, fit_intercept=fit_intercept)
    assert ours.mse_path_.shape == theirs.mse_path_.shape
    np.testing.assert_allclose(ours.mse_path_, theirs.mse_path_, rtol=1e-6)
    np.testing.assert_allclose(ours.alphas_, theirs.alphas_, rtol=1e-12)
    assert ours.alpha_ == pytest.approx(theirs.alpha_, rel=1e-12)
    assert ours.l1_ratio_ == theirs.l1_ratio_
    fit = ours.best_fit
    np.testing.assert_allclose(
        fit.coef, theirs.coef_, rtol=1e-7, atol=1e-7 * np.abs(theirs.coef_).max()
    )
    assert fit.intercept == pytest.approx(theirs.intercept_, rel=1e-7, abs=1e-12)


def test_mse_path_equals_sklearn_on_a_wide_problem_with_an_explicit_grid():
    x, y, w = make_rows(60, p=80, weighted=True, seed=8)
    ids = np.arange(60) % 3
    names = [f"x{j}" for j in range(80)] + ["y"]
    folds = fold_states_of(np.column_stack([x, y]), w, ids, MomentState, 3, names=names)
    grid = [0.5, 0.05, 0.2, 0.01]
    ours = cross_validate_path(folds, l1_ratio=0.8, alphas=grid, tol=1e-12)
    theirs = _sklearn_cv(x, y, w, ids, l1_ratio=0.8, alphas=grid)
    np.testing.assert_allclose(ours.alphas_, theirs.alphas_, rtol=0)
    np.testing.assert_allclose(ours.mse_path_, theirs.mse_path_, rtol=1e-6)
    assert ours.alpha_ == theirs.alpha_


@pytest.mark.parametrize("l1_ratio", [0.5, 0.0])
def test_standardized_cv_equals_sklearn_scaled_per_training_fold(l1_ratio):
    x, y, w = make_rows(150, p=4, weighted=True, seed=9)
    x = x * [1.0, 10.0, 0.1, 3.0]
    ids = position_folds("f", 0, 150, 3)
    names = [f"x{j}" for j in range(4)] + ["y"]
    folds = fold_states_of(np.column_stack([x, y]), w, ids, MomentState, 3, names=names)
    grid = np.geomspace(1.0, 1e-3, 8)
    ours = cross_validate_path(folds, l1_ratio=l1_ratio, alphas=grid, standardize=True, tol=1e-12)
    for k in range(3):
        train, test = ids != k, ids == k
        scaler = StandardScaler().fit(x[train], sample_weight=w[train])
        scaled = scaler.transform(x[train])
        centre = np.average(y[train], weights=w[train])
        if l1_ratio == 0.0:
            coefs = np.array(
                [
                    Ridge(alpha=w[train].sum() * a, solver="cholesky")
                    .fit(scaled, y[train], sample_weight=w[train])
                    .coef_
                    for a in grid
                ]
            )
        else:
            xc = scaled - np.average(scaled, axis=0, weights=w[train])
            root = np.sqrt(w[train] / w[train].mean())[:, None]
            _, path, _ = enet_path(
                xc * root,
                (y[train] - centre) * root[:, 0],
                l1_ratio=l1_ratio,
                alphas=grid,
                tol=1e-13,
                max_iter=1_000_000,
            )
            coefs = path.T
        coefs = coefs / scaler.scale_
        intercepts = centre - coefs @ scaler.mean_
        residual = y[test][:, None] - x[test] @ coefs.T - intercepts
        expected = np.average(residual**2, axis=0, weights=w[test])
        np.testing.assert_allclose(ours.mse_path_[:, k], expected, rtol=1e-6)


def test_one_standard_error_alpha_and_summaries():
    x, y, _ = make_rows(300, p=3, seed=10)
    names = ["a", "b", "c", "y"]
    folds = fold_states_of(
        np.column_stack([x, y]), None, key_folds(np.arange(300), 6), MomentState, 6, names=names
    )
    result = cross_validate_path(folds, l1_ratio=1.0, alphas=40)
    mse = result.mse_path_
    means = mse.mean(axis=1)
    se = mse.std(axis=1, ddof=1) / np.sqrt(6)
    best = int(np.argmin(means))
    assert result.alpha_ == result.alphas_[best]
    one_se = result.alpha_1se
    assert one_se >= result.alpha_
    assert means[list(result.alphas_).index(one_se)] <= means[best] + se[best]
    assert np.all(means[result.alphas_ > one_se] > means[best] + se[best])
    np.testing.assert_array_equal(result.n_nonzero[0], result.paths[0].n_nonzero)
    assert result.n_nonzero[0][0] == 0


# ------------------------------------------------------------------ bad input
@pytest.mark.parametrize("bad", [1, 0, -3, 2.5, True, "5"])
def test_fold_counts_below_two_or_not_integers_are_refused(bad):
    with pytest.raises(InputError, match="needs at least 2 folds"):
        check_n_folds(bad)


def test_more_folds_than_rows_are_refused():
    with pytest.raises(InputError, match="folds=5 asks for more folds than the 3 rows"):
        check_n_folds(5, 3)
    z = np.column_stack([np.arange(3.0), np.arange(3.0)])
    folds = FoldStates.empty(MomentState, ["x", "y"], n_folds=5).update(z, None, np.arange(3))
    with pytest.raises(InputError, match="folds=5 asks for more folds than the 3 usable rows"):
        folds.check_complete()


def test_an_empty_fold_is_refused_with_its_label():
    x, y, _ = make_rows(40)
    z = np.column_stack([x, y])
    folds = fold_states_of(z, None, np.arange(40) % 3, MomentState, 4)  # fold 3 gets nothing
    with pytest.raises(InputError, match="fold 3 .* has no rows"):
        cross_validate_path(folds)
    zero_weight = fold_states_of(
        z, (np.arange(40) % 2).astype(float), np.arange(40) % 2, MomentState, 2
    )
    with pytest.raises(InputError, match="fold 0 .* no rows with positive weight"):
        zero_weight.check_complete()


def test_fold_column_with_too_few_values_is_refused():
    x, y, _ = make_rows(40)
    folds = fold_states_of(np.column_stack([x, y]), None, np.array([1, 2, 3, 4] * 10), MomentState)
    with pytest.raises(InputError, match="has 4 distinct values .*1, 2, 3, 4.*folds=5"):
        folds.check_complete(5)
    single = fold_states_of(np.column_stack([x, y]), None, np.full(40, 7), MomentState)
    with pytest.raises(InputError, match="at least 2 folds"):
        single.check_complete()


@pytest.mark.parametrize(
    "values", [pa.array([1, None, 2]), pa.array(["a", None]), np.array([1.0, np.nan, 2.0])]
)
def test_fold_keys_and_columns_with_nulls_are_refused(values):
    with pytest.raises(InputError, match="fold key 'id' has 1 missing value.*row 1"):
        key_folds(values, 3, column="id")
    with pytest.raises(InputError, match="fold column 'fold' has 1 missing value"):
        fold_labels(values)


def test_unusable_fold_values_are_refused():
    with pytest.raises(InputError, match="fold column 'fold' must hold whole numbers.*1.5"):
        fold_labels(np.array([1.0, 1.5]))
    with pytest.raises(InputError, match="must hold integers or strings; it is bool"):
        fold_labels(pa.array([True, False]))
    with pytest.raises(InputError, match="fold key 'k' must hold .* it is list"):
        key_folds(pa.array([[1], [2]]), 3, column="k")
    folds = FoldStates.empty(MomentState, ["x", "y"], n_folds=3)
    with pytest.raises(InputError, match="fold id 3 is outside 0..2"):
        folds.update(np.ones((2, 2)), None, np.array([0, 3]))
    labelled = FoldStates.empty(MomentState, ["x", "y"]).update(
        np.ones((2, 2)), None, np.array([1, 2])
    )
    with pytest.raises(InputError, match="mixes integer and string labels"):
        labelled.update(np.ones((1, 2)), None, np.array(["a"], dtype=object))
    named = FoldStates.empty(MomentState, ["x", "y"]).update(
        np.ones((1, 2)), None, np.array(["a"], dtype=object)
    )
    with pytest.raises(InputError, match="mixes integer and string labels"):
        labelled + named
    with pytest.raises(InputError, match="got 3 fold ids for a batch of 2 rows"):
        labelled.update(np.ones((2, 2)), None, np.array([1, 2, 3]))


def test_bad_l1_ratio_in_cv_is_refused():
    x, y, _ = make_rows(40)
    folds = fold_states_of(np.column_stack([x, y]), None, np.arange(40) % 2, MomentState, 2)
    with pytest.raises(
        InputError, match="l1_ratio must be a number from 0 .ridge. to 1 .lasso.; got l1_ratio=1.2"
    ):
        cross_validate_path(folds, l1_ratio=[0.5, 1.2])


@pytest.mark.parametrize(
    "values",
    [np.arange(-50, 50), np.linspace(-3.0, 3.0, 101), np.array(["u1", "u2", "x", "u1"], object)],
)
@pytest.mark.parametrize("seed", [0, 11])
def test_hashed_folds_are_pandas_hash_array_mod_k(values, seed):
    """The documented definition, with pandas as the oracle: fold = h(key) mod K, h =
    pd.util.hash_array (seeded: h(h(key) xor h(seed))); position: h(row xor h(file id))."""
    hashes = pd.util.hash_array(values)
    if seed:
        hashes = pd.util.hash_array(hashes ^ pd.util.hash_array(np.array([seed]))[0])
    np.testing.assert_array_equal(key_folds(values, 7, seed=seed), (hashes % np.uint64(7)))
    salt = pd.util.hash_array(np.array(["d=1/f.parquet"], dtype=object))[0]
    rows = pd.util.hash_array(np.arange(40, 140, dtype=np.uint64) ^ salt)
    if seed:
        rows = pd.util.hash_array(rows ^ pd.util.hash_array(np.array([seed]))[0])
    np.testing.assert_array_equal(
        position_folds("d=1/f.parquet", 40, 100, 5, seed=seed), rows % np.uint64(5)
    )
