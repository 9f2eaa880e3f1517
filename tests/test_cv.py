"""streamreg.fit(alpha=) and streamreg.cv over Parquet files, in memory and on Dask: the same
answers as scikit-learn's ElasticNet/Lasso/Ridge and ElasticNetCV(PredefinedSplit); folds that
do not depend on chunking, file order, the split into files or the number of Dask workers;
penalized models that save, load, predict and summarize."""

from __future__ import annotations

import json
import re
import warnings

import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest
from conftest import write_parquet
from sklearn.exceptions import ConvergenceWarning as SklearnConvergenceWarning
from sklearn.linear_model import ElasticNet, ElasticNetCV, Lasso, Ridge
from sklearn.model_selection import PredefinedSplit

import streamreg
from streamreg import CVResult, InputError
from streamreg.engine import tasks
from streamreg.engine.fold_ids import FoldAssignment
from streamreg.engine.fold_scan import accumulate_folds
from streamreg.io.sources import Source

TIGHT = {"tol": 1e-13, "max_iter": 1_000_000}


def quiet(fit):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SklearnConvergenceWarning)
        return fit()


@pytest.fixture
def table(rng):
    n, p = 1200, 5
    x = rng.normal(size=(n, p)) * [1.0, 4.0, 0.3, 2.0, 1.0] + [0.0, 50.0, -3.0, 1e3, 0.0]
    x[:, 4] += 0.8 * x[:, 0]
    y = 4.0 + x @ np.array([1.2, 0.0, -3.0, 0.05, 0.0]) + rng.normal(size=n)
    frame = pd.DataFrame({f"x{j}": x[:, j] for j in range(p)})
    frame["y"] = y
    frame["w"] = rng.uniform(0.2, 3.0, size=n)
    frame["id"] = rng.integers(0, 300, size=n)  # grouped: ~4 rows per id
    frame["fold"] = rng.integers(0, 5, size=n)
    return frame


FEATURES = [f"x{j}" for j in range(5)]


def write_files(frame, root, pieces, order=None):
    """``frame`` in ``pieces`` files (optionally listed in another order); returns the paths."""
    bounds = np.linspace(0, len(frame), pieces + 1).astype(int)
    paths = []
    for i, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:])):
        part = frame.iloc[lo:hi]
        paths.append(
            write_parquet(root / f"part-{i:02d}.parquet", {c: part[c].to_numpy() for c in part})
        )
    return [paths[i] for i in order] if order is not None else paths


# ------------------------------------------------------------------ fit(alpha=) vs scikit-learn
@pytest.mark.parametrize("l1_ratio", [1.0, 0.5, 0.0])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_penalized_fit_over_files_equals_sklearn(
    table, tmp_path, l1_ratio, weighted, fit_intercept
):
    paths = write_files(table, tmp_path, 3)
    alpha = 0.03
    model = streamreg.fit(
        paths,
        target="y",
        features=FEATURES,
        weight="w" if weighted else None,
        fit_intercept=fit_intercept,
        alpha=alpha,
        l1_ratio=l1_ratio,
        batch_size=256,
    )
    x, y = table[FEATURES].to_numpy(), table["y"].to_numpy()
    w = table["w"].to_numpy() if weighted else None
    if l1_ratio == 1.0:
        ref = Lasso(alpha=alpha, fit_intercept=fit_intercept, **TIGHT)
    elif l1_ratio == 0.0:  # Ridge minimizes Σw r² + α'‖β‖²: α' = α·Σw
        ref = Ridge(alpha=alpha * (w.sum() if weighted else len(y)), fit_intercept=fit_intercept)
    else:
        ref = ElasticNet(alpha=alpha, l1_ratio=l1_ratio, fit_intercept=fit_intercept, **TIGHT)
    ref = quiet(lambda: ref.fit(x, y, sample_weight=w))
    scale = np.abs(ref.coef_).max()
    np.testing.assert_allclose(model.coef_, ref.coef_, rtol=1e-7, atol=1e-7 * scale)
    assert model.intercept_ == pytest.approx(ref.intercept_, rel=1e-7, abs=1e-7 * scale)
    assert model.penalty_["alpha"] == alpha and model.solver_ == "elastic_net"


@pytest.mark.parametrize("l1_ratio", [1.0, 0.4, 0.0])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_standardized_fit_equals_sklearn_on_scaled_columns(
    table, l1_ratio, weighted, fit_intercept
):
    x, y = table[FEATURES].to_numpy(), table["y"].to_numpy()
    w = table["w"].to_numpy() if weighted else None
    weights = np.ones(len(y)) if w is None else w
    if fit_intercept:
        mean = np.average(x, axis=0, weights=weights)
        scale = np.sqrt(np.average((x - mean) ** 2, axis=0, weights=weights))
    else:  # glmnet without an intercept: the root mean square
        scale = np.sqrt(np.average(x**2, axis=0, weights=weights))
    alpha = 0.05
    model = streamreg.fit(
        table,
        target="y",
        features=FEATURES,
        weight="w" if weighted else None,
        fit_intercept=fit_intercept,
        alpha=alpha,
        l1_ratio=l1_ratio,
        standardize=True,
    )
    if l1_ratio == 0.0:
        ref = Ridge(alpha=alpha * weights.sum(), fit_intercept=fit_intercept)
    else:
        ref = ElasticNet(alpha=alpha, l1_ratio=l1_ratio, fit_intercept=fit_intercept, **TIGHT)
    ref = quiet(lambda: ref.fit(x / scale, y, sample_weight=w))
    expected = ref.coef_ / scale
    top = np.abs(expected).max()
    np.testing.assert_allclose(model.coef_, expected, rtol=1e-7, atol=1e-7 * top)
    assert model.intercept_ == pytest.approx(ref.intercept_, rel=1e-7, abs=1e-7 * top)


# ------------------------------------------------------------------ cv vs ElasticNetCV
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("l1_ratio", [1.0, 0.5, [0.2, 0.7, 1.0]])
def test_cv_over_files_equals_elastic_net_cv_with_the_same_folds(
    table, tmp_path, weighted, fit_intercept, l1_ratio
):
    paths = write_files(table, tmp_path, 4)
    result = streamreg.cv(
        paths,
        target="y",
        features=FEATURES,
        weight="w" if weighted else None,
        fit_intercept=fit_intercept,
        l1_ratio=l1_ratio,
        fold_column="fold",
        folds=5,
        alphas=50,
        batch_size=300,
    )
    x, y = table[FEATURES].to_numpy(), table["y"].to_numpy()
    w = table["w"].to_numpy() if weighted else None
    ref = quiet(
        lambda: ElasticNetCV(
            l1_ratio=l1_ratio,
            alphas=50,
            cv=PredefinedSplit(table["fold"].to_numpy()),
            fit_intercept=fit_intercept,
            **TIGHT,
        ).fit(x, y, sample_weight=w)
    )
    np.testing.assert_allclose(result.alphas_, ref.alphas_, rtol=1e-12)
    np.testing.assert_allclose(result.mse_path_, ref.mse_path_, rtol=1e-6)
    assert result.alpha_ == pytest.approx(ref.alpha_, rel=1e-12)  # the same grid point
    assert result.l1_ratio_ == ref.l1_ratio_
    scale = np.abs(ref.coef_).max()
    np.testing.assert_allclose(result.coef_, ref.coef_, rtol=1e-7, atol=1e-7 * scale)
    assert result.best_model_.n_samples_ == len(table)


def test_ridge_path_carries_exact_gcv(table):
    x = table[FEATURES].to_numpy()
    y = table["y"].to_numpy()
    result = streamreg.cv(table, target="y", features=FEATURES, l1_ratio=0.0, alphas=[1.0, 0.1])
    for alpha, score in zip(result.alphas_, result.gcv_):
        # GCV from the rows: the hat matrix of Ridge(α·n) with an intercept
        centered = x - x.mean(axis=0)
        n = len(y)
        hat = centered @ np.linalg.solve(centered.T @ centered + alpha * n * np.eye(5), centered.T)
        hat += 1.0 / n
        resid = y - hat @ y
        expected = n * (resid @ resid) / (n - np.trace(hat)) ** 2
        assert score == pytest.approx(expected, rel=1e-9)
    assert [row["gcv"] for row in result.path_table()] == pytest.approx(list(result.gcv_))


# ------------------------------------------------------------------ fold invariance
@pytest.mark.parametrize("assignment", ["key", "column"])
def test_folds_do_not_depend_on_files_order_or_batches(table, tmp_path, assignment):
    options = dict(target="y", features=FEATURES, l1_ratio=0.5, alphas=20, solver="exact")
    options["fold_key" if assignment == "key" else "fold_column"] = (
        "id" if assignment == "key" else "fold"
    )
    results = []
    for case, (pieces, order, batch) in enumerate(
        [(1, None, 4096), (3, [2, 0, 1], 100), (7, [6, 5, 4, 3, 2, 1, 0], 33)]
    ):
        paths = write_files(table, tmp_path / f"case{case}", pieces, order)
        results.append(streamreg.cv(paths, batch_size=batch, **options))
    first = results[0]
    for other in results[1:]:
        assert other.fold_rows_ == first.fold_rows_
        np.testing.assert_array_equal(other.mse_path_, first.mse_path_)  # exact fold states
        assert other.best_model_.state_ == first.best_model_.state_


def test_position_folds_do_not_depend_on_batches_or_file_order(table, tmp_path):
    paths = write_files(table, tmp_path, 3)
    source = Source.resolve(paths)
    reversed_source = Source.resolve(paths[::-1])
    assignment = FoldAssignment.by_position(5)
    spec = streamreg.design.DesignSpec.resolve(source.schema, target="y", features=FEATURES)
    kind = streamreg.ExactState
    a = accumulate_folds(source, spec, kind, assignment, batch_size=1000).state
    b = accumulate_folds(reversed_source, spec, kind, assignment, batch_size=17).state
    assert a == b  # bit-identical exact fold states
    assert [s.n_rows for s in a.states] == [s.n_rows for s in b.states]
    assert min(s.n_rows for s in a.states) > 0.15 * len(table)


def test_moment_fold_states_agree_to_rounding_however_chunked(table, tmp_path):
    paths = write_files(table, tmp_path, 2)
    one = streamreg.cv(paths, target="y", features=FEATURES, fold_key="id", batch_size=5000)
    many = streamreg.cv(paths[::-1], target="y", features=FEATURES, fold_key="id", batch_size=29)
    np.testing.assert_allclose(many.mse_path_, one.mse_path_, rtol=1e-11)
    assert many.alpha_ == one.alpha_


# ------------------------------------------------------------------ Dask
@pytest.fixture(scope="module")
def two_clusters():
    distributed = pytest.importorskip("distributed")
    made = []
    for workers in (1, 2):
        cluster = distributed.LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            host="127.0.0.1",
        )
        made.append((cluster, distributed.Client(cluster, set_as_default=False)))
    yield [client for _, client in made]
    for cluster, client in made:
        client.close()
        cluster.close()


def test_dask_one_and_two_workers_give_the_same_folds_and_path(table, tmp_path, two_clusters):
    paths = write_files(table, tmp_path, 5)
    options = dict(target="y", features=FEATURES, l1_ratio=0.5, alphas=15, solver="exact")
    local = streamreg.cv(paths, **options)
    on_one, on_two = (streamreg.cv(paths, client=client, **options) for client in two_clusters)
    for result in (on_one, on_two):
        assert result.fold_rows_ == local.fold_rows_
        assert result.best_model_.state_ == local.best_model_.state_
        np.testing.assert_array_equal(result.mse_path_, local.mse_path_)
    keyed = [
        streamreg.cv(dd.from_pandas(table, npartitions=parts), fold_key="id", **options)
        for parts in (1, 6)
    ]
    np.testing.assert_array_equal(keyed[0].mse_path_, keyed[1].mse_path_)
    reference = streamreg.cv(table, fold_key="id", **options)
    np.testing.assert_array_equal(keyed[0].mse_path_, reference.mse_path_)


def test_dask_row_group_tasks_keep_the_folds_of_a_local_pass(
    table, tmp_path, two_clusters, monkeypatch
):
    """A file cut into runs of row groups (one task each): position folds number rows within
    the file, so every task's rows keep the folds a local pass gives them."""
    columns = {c: table[c].to_numpy() for c in table}
    path = write_parquet(tmp_path / "one.parquet", columns, row_group_size=100)
    monkeypatch.setattr(tasks, "TASK_BYTES", 200 * 6 * 8)  # two row groups of the 6 columns read
    assert len(tasks.parquet_tasks(Source.resolve(path), 6)) == 6
    options = dict(target="y", features=FEATURES, l1_ratio=0.5, alphas=15, solver="exact")
    local = streamreg.cv(path, **options)
    remote = streamreg.cv(path, client=two_clusters[1], **options)
    assert remote.fold_rows_ == local.fold_rows_
    assert remote.best_model_.state_ == local.best_model_.state_
    np.testing.assert_array_equal(remote.mse_path_, local.mse_path_)


# ------------------------------------------------------------------ the model
def test_cv_model_saves_loads_predicts_and_summarizes(table, tmp_path):
    result = streamreg.cv(
        table, target="y", features=FEATURES, l1_ratio=[0.5, 1.0], fold_key="id", alphas=30
    )
    path = tmp_path / "model.json"
    result.save(path)
    data = json.loads(path.read_text())
    assert data["format_version"] == 3 and data["xtx_inv"] is None
    loaded = streamreg.load(path)
    again = CVResult(loaded)
    np.testing.assert_array_equal(again.mse_path_, result.mse_path_)
    np.testing.assert_array_equal(again.coef_path_, result.coef_path_)
    assert again.alpha_ == result.alpha_ and again.alpha_1se_ == result.alpha_1se_
    np.testing.assert_array_equal(loaded.predict(table), result.predict(table))
    x = table[FEATURES].to_numpy()
    np.testing.assert_allclose(
        loaded.predict(table), x @ result.coef_ + result.intercept_, rtol=1e-10
    )
    text = loaded.summary()
    assert "p values" in text and "Cross-validation" in text and "alpha_1se" in text
    assert np.isnan(loaded.bse).all() and np.isnan(loaded.pvalues).all()
    assert loaded.summary("json")["pvalues"] is None
    assert result.coef_path_.shape == (2, 5, 30) and result.mse_path_.shape == (2, 30, 5)
    # the path's coefficients at the chosen alpha are the model's
    r, a = result.best_index
    np.testing.assert_array_equal(result.coef_path[r, a], result.coef_)


def test_one_standard_error_rule_refits_at_the_larger_alpha(table):
    best = streamreg.cv(table, target="y", features=FEATURES, fold_column="fold", alphas=40)
    simpler = streamreg.cv(
        table, target="y", features=FEATURES, fold_column="fold", alphas=40, select="1se"
    )
    assert simpler.alpha_ == best.alpha_1se_ >= best.alpha_
    r, a = best.min_index_
    limit = best.mse_mean_[r, a] + best.mse_se_[r, a]
    chosen = list(simpler.alphas_).index(simpler.alpha_)
    assert simpler.mse_mean_[0, chosen] <= limit
    assert all(simpler.mse_mean_[0, i] > limit for i in range(chosen))  # larger alphas fail


def test_a_fold_label_column_is_not_a_feature(table):
    result = streamreg.cv(table.drop(columns=["w", "id"]), target="y", fold_column="fold")
    assert list(result.best_model_.feature_names_in_) == FEATURES


def test_bad_parameters_are_refused_before_reading(table):
    cases = [
        (dict(l1_ratio=1.5), "l1_ratio must be a number from 0"),
        (dict(folds=1), "at least 2 folds"),
        (dict(alphas=0), "number of alphas must be a positive integer"),
        (dict(alphas=[0.1, -1.0]), "every alpha must be"),
        (dict(select="best"), "select must be 'min' or '1se'"),
        (dict(fold_key="id", fold_column="fold"), "not both"),
        (dict(solver="sgd"), "gradient solver"),
    ]
    for kwargs, words in cases:
        with pytest.raises(InputError, match=words):
            streamreg.cv(table, target="y", features=FEATURES, **kwargs)
    with pytest.raises(InputError, match="alpha must be a finite number zero or greater"):
        streamreg.fit(table, target="y", features=FEATURES, alpha=-0.1)
    with pytest.raises(InputError, match="l1_ratio=0.5 applies to a penalized fit"):
        streamreg.fit(table, target="y", features=FEATURES, l1_ratio=0.5)
    with pytest.raises(InputError, match="not available for a penalized fit"):
        streamreg.fit(table, target="y", features=FEATURES, alpha=0.1, cov_type="HC1")


@pytest.mark.parametrize(
    "mutate, words",
    [
        (lambda d: d.pop("penalty"), "format version 3 (a penalized fit) needs its 'penalty'"),
        (lambda d: d["penalty"].update(alpha=-1.0), "alpha must be a number zero or greater"),
        (lambda d: d["penalty"].update(l1_ratio=2.0), "l1_ratio must be between 0 and 1"),
        (lambda d: d["penalty"].pop("n_iter"), "penalty field 'n_iter'"),
        (lambda d: d["cv"]["mse_path"][0].pop(), "'mse_path' must be 1 × 30 × 5"),
        (lambda d: d["cv"].update(best=[0, 99]), "'best' must be"),
        (lambda d: d["cv"].update(selection="max"), "'selection' must be one of"),
        (lambda d: d.update(format_version=4), "format version 4"),
        (lambda d: d.update(format_version=1), "'xtx_inv' must be null exactly in a penalized"),
    ],
)
def test_damaged_penalized_model_files_are_refused(table, tmp_path, mutate, words):
    result = streamreg.cv(table, target="y", features=FEATURES, fold_key="id", alphas=30)
    data = result.best_model_.to_dict()
    mutate(data)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(streamreg.ModelFormatError, match=re.escape(words)):
        streamreg.load(path)


def test_plain_fits_still_write_format_version_1(table):
    data = streamreg.fit(table, target="y", features=FEATURES, diagnostics=False).to_dict()
    assert data["format_version"] == 1 and "penalty" not in data and "cv" not in data
    # In-memory fits carry the residual diagnostics by default: an optional field, version 2.
    data = streamreg.fit(table, target="y", features=FEATURES).to_dict()
    assert data["format_version"] == 2 and "diagnostics" in data
    assert "penalty" not in data and "cv" not in data


@pytest.mark.parametrize("with_nulls", [False, True])
def test_fold_pass_equals_folding_the_kept_rows_by_hand(table, with_nulls, rng):
    """The pass (rows gathered into fold order out of Arrow, or after the nulls are dropped)
    equals FoldStates.update on the rows that are kept, with the folds of their positions."""
    import pyarrow as pa

    from streamreg.engine.fold_ids import file_id, position_folds
    from streamreg.engine.fold_states import FoldStates
    from streamreg.io.sources import InMemorySource

    arrow = pa.Table.from_pandas(table[[*FEATURES, "y", "w"]], preserve_index=False)
    if with_nulls:
        mask = rng.random(len(table)) < 0.05
        arrow = arrow.set_column(1, "x1", pa.array(table["x1"].to_numpy(), mask=mask))
    source = InMemorySource(arrow, name="frame")
    spec = streamreg.design.DesignSpec.resolve(arrow.schema, target="y", features=FEATURES,
                                               weight="w")  # fmt: skip
    assignment = FoldAssignment.by_position(4)
    got = accumulate_folds(source, spec, streamreg.ExactState, assignment, batch_size=97)
    ids = position_folds(file_id("frame", {}), 0, len(table), 4)
    keep = np.ones(len(table), bool) if not with_nulls else ~mask
    z = table[[*FEATURES, "y"]].to_numpy()[keep]
    expected = FoldStates(streamreg.ExactState, spec.state_names, n_folds=4)
    expected.update(z, table["w"].to_numpy()[keep], ids[keep])
    assert got.state == expected
    assert got.rows_read == len(table) and got.dropped == (
        {"x1": int(mask.sum())} if with_nulls else {}
    )
