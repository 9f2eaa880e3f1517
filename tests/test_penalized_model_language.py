"""Penalized fits and cross-validation over encoded designs (formulas, categories): the same
coefficients as scikit-learn's ElasticNet/Ridge/ElasticNetCV on patsy's (or pandas') one-hot
design of the same rows; version-3 model files that carry the design; scheduled jobs with a
formula and a penalty or a [cv] table; and, refused in one sentence, what cannot combine
(an absorbed fixed effect, several targets, center/scale terms in cross-validation)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import patsy
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sklearn.exceptions import ConvergenceWarning as SklearnConvergenceWarning
from sklearn.linear_model import ElasticNet, ElasticNetCV, Ridge
from sklearn.model_selection import PredefinedSplit
from test_jobs import toml_value

import streamreg
from streamreg import InputError
from streamreg.jobs import load_job, run_job

TIGHT = {"tol": 1e-13, "max_iter": 1_000_000}
FORMULA = "y ~ x1 + np.log(x2) + C(region) + x1:C(region)"


def quiet(fit):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SklearnConvergenceWarning)
        return fit()


@pytest.fixture
def frame(rng):
    n = 900
    data = pd.DataFrame(
        {
            "x1": rng.normal(size=n),
            "x2": rng.uniform(1, 4, n),
            "region": rng.choice(["east", "north", "south", "west"], n),
            "w": rng.uniform(0.2, 3.0, n),
            "fold": rng.integers(0, 5, n),
        }
    )
    effect = data.region.map({"east": 0.0, "north": 1.0, "south": -2.0, "west": 0.3})
    data["y"] = 1 + 2 * data.x1 - np.log(data.x2) + effect + 0.5 * data.x1 * (effect > 0)
    data["y"] += rng.normal(size=n)
    data["y2"] = data.y + rng.normal(size=n)
    return data


def write_parts(frame, folder, pieces=3):
    """``frame`` in ``pieces`` Parquet files, in row order; returns the sorted paths."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, rows in enumerate(np.array_split(np.arange(len(frame)), pieces)):
        path = folder / f"part-{i}.parquet"
        table = pa.Table.from_pandas(frame.iloc[rows], preserve_index=False)
        pq.write_table(table, path, row_group_size=100)
        paths.append(str(path))
    return paths


def patsy_design(frame, formula=FORMULA):
    """patsy's treatment-coded design without its intercept column (the oracle's X)."""
    _, x = patsy.dmatrices(formula, frame, return_type="dataframe")
    return x.drop(columns="Intercept")


def assert_same_fit(model, x: pd.DataFrame, ref):
    """Coefficients matched by column name (streamreg orders the design's columns its way)."""
    assert sorted(model.feature_names_in_) == sorted(x.columns)
    expected = pd.Series(ref.coef_, index=x.columns)[list(model.feature_names_in_)].to_numpy()
    scale = np.abs(expected).max()
    np.testing.assert_allclose(model.coef_, expected, rtol=1e-7, atol=1e-7 * scale)
    assert model.intercept_ == pytest.approx(ref.intercept_, rel=1e-7, abs=1e-7 * scale)


# ------------------------------------------------------------------ fit(alpha=) vs scikit-learn
@pytest.mark.parametrize("l1_ratio", [1.0, 0.5, 0.0])
@pytest.mark.parametrize("weighted", [False, True])
def test_formula_fit_with_alpha_equals_elastic_net_on_the_one_hot_design(
    frame, tmp_path, l1_ratio, weighted
):
    paths = write_parts(frame, tmp_path / "data")
    alpha = 0.02
    model = streamreg.fit(
        paths,
        formula=FORMULA,
        weight="w" if weighted else None,
        alpha=alpha,
        l1_ratio=l1_ratio,
        batch_size=128,
    )
    x, y = patsy_design(frame), frame["y"].to_numpy()
    w = frame["w"].to_numpy() if weighted else None
    if l1_ratio == 0.0:  # Ridge minimizes Σw r² + α'‖β‖²: α' = α·Σw
        ref = Ridge(alpha=alpha * (w.sum() if weighted else len(y)))
    else:
        ref = ElasticNet(alpha=alpha, l1_ratio=l1_ratio, **TIGHT)
    ref = quiet(lambda: ref.fit(x.to_numpy(), y, sample_weight=w))
    assert_same_fit(model, x, ref)
    assert model.penalty_["alpha"] == alpha and model.design_ is not None
    assert model.columns_["region"]["role"] == "category"


@pytest.mark.parametrize("solver", ["auto", "qr", "exact"])
def test_categorical_fit_with_alpha_equals_elastic_net_on_pandas_dummies(frame, solver):
    """Group sums (auto) and dense rows (qr, exact) give the same penalized fit."""
    model = streamreg.fit(
        frame[["x1", "region", "y"]],
        target="y",
        categorical=["region"],
        alpha=0.05,
        l1_ratio=0.7,
        solver=solver,
    )
    x = pd.get_dummies(frame[["x1", "region"]], columns=["region"], drop_first=True, dtype=float)
    x.columns = ["x1", *(f"region[T.{c.split('_', 1)[1]}]" for c in x.columns[1:])]
    ref = quiet(lambda: ElasticNet(alpha=0.05, l1_ratio=0.7, **TIGHT).fit(x, frame["y"]))
    assert_same_fit(model, x, ref)


def test_a_centered_term_with_alpha_keeps_the_raw_columns_slopes(frame):
    """Centering moves only the intercept (it is never penalized): same slopes, same fit."""
    raw = streamreg.fit(frame, formula="y ~ x1 + C(region)", alpha=0.05, l1_ratio=0.5)
    centered = streamreg.fit(frame, formula="y ~ center(x1) + C(region)", alpha=0.05, l1_ratio=0.5)
    np.testing.assert_allclose(centered.coef_, raw.coef_, rtol=1e-9, atol=1e-12)
    slope = raw.coef_[list(raw.feature_names_in_).index("x1")]
    shift = slope * frame.x1.mean()
    assert centered.intercept_ == pytest.approx(raw.intercept_ + shift, rel=1e-9)
    np.testing.assert_allclose(centered.predict(frame), raw.predict(frame), rtol=1e-9)


def test_a_penalized_encoded_model_saves_as_version_3_with_its_design(frame, tmp_path):
    model = streamreg.fit(frame, formula=FORMULA, alpha=0.02, l1_ratio=0.5)
    model.save(tmp_path / "model.json")
    data = json.loads((tmp_path / "model.json").read_text())
    assert data["format_version"] == 3 and data["penalty"]["alpha"] == 0.02
    assert data["design"] is not None and data["columns"]["region"]["role"] == "category"
    loaded = streamreg.load(tmp_path / "model.json")
    np.testing.assert_array_equal(loaded.predict(frame), model.predict(frame))
    x = patsy_design(frame)[list(model.feature_names_in_)].to_numpy()
    np.testing.assert_allclose(
        loaded.predict(frame), model.intercept_ + x @ model.coef_, rtol=1e-12
    )
    unseen = frame.head(3).assign(region="nowhere")
    with pytest.raises(InputError, match="nowhere"):
        loaded.predict(unseen)
    # A plain penalized model keeps the fields it always had: no design, columns or absorbed.
    plain = streamreg.fit(frame, target="y", features=["x1", "x2"], alpha=0.02)
    plain_data = plain.to_dict()
    assert plain_data["format_version"] == 3
    assert not {"design", "columns", "absorbed"} & set(plain_data)


# ------------------------------------------------------------------ cv vs ElasticNetCV
@pytest.mark.parametrize("weighted", [False, True])
def test_formula_cv_equals_elastic_net_cv_on_the_one_hot_design(frame, tmp_path, weighted):
    paths = write_parts(frame, tmp_path / "data")
    result = streamreg.cv(
        paths,
        formula=FORMULA,
        weight="w" if weighted else None,
        l1_ratio=0.5,
        fold_column="fold",
        folds=5,
        alphas=30,
        batch_size=200,
    )
    x, y = patsy_design(frame), frame["y"].to_numpy()
    w = frame["w"].to_numpy() if weighted else None
    ref = quiet(
        lambda: ElasticNetCV(
            l1_ratio=0.5, alphas=30, cv=PredefinedSplit(frame["fold"].to_numpy()), **TIGHT
        ).fit(x.to_numpy(), y, sample_weight=w)
    )
    np.testing.assert_allclose(result.alphas_, ref.alphas_, rtol=1e-12)
    np.testing.assert_allclose(result.mse_path_, ref.mse_path_, rtol=1e-6)
    assert result.alpha_ == pytest.approx(ref.alpha_, rel=1e-12)
    assert_same_fit(result.best_model_, x, ref)
    assert result.best_model_.design_ is not None


def test_categorical_cv_never_makes_the_fold_column_a_feature(frame):
    result = streamreg.cv(
        frame[["x1", "x2", "region", "fold", "y"]],
        target="y",
        categorical=["region"],
        fold_column="fold",
        folds=5,
        alphas=10,
    )
    names = list(result.best_model_.feature_names_in_)
    assert "fold" not in names and "x1" in names and "region[T.west]" in names


# ------------------------------------------------------------------ what does not combine
@pytest.mark.parametrize(
    "options, message",
    [
        (dict(formula="y ~ x1 | region"), "cannot absorb the fixed effect 'region'"),
        (dict(target="y", features=["x1"], absorb="region"), "cannot absorb the fixed effect"),
        (dict(formula="y + y2 ~ x1 + C(region)"), "is for one target; fit the 2 targets"),
    ],
)
def test_penalized_fits_refuse_an_absorbed_factor_and_several_targets(frame, options, message):
    with pytest.raises(InputError, match=message):
        streamreg.fit(frame, alpha=0.1, **options)


@pytest.mark.parametrize(
    "options, message",
    [
        (dict(formula="y ~ x1 | region"), "cross-validation cannot absorb the fixed effect"),
        (dict(formula="y + y2 ~ x1"), "cross-validation is for one target"),
        (dict(formula="y ~ scale(x1) + C(region)"), r"center/scale term 'scale\(x1\)'"),
    ],
)
def test_cv_refuses_what_its_folds_cannot_hold(frame, options, message):
    with pytest.raises(InputError, match=message):
        streamreg.cv(frame, folds=3, alphas=5, **options)


# ------------------------------------------------------------------ jobs
def write_formula_job(folder, model: dict, cv: dict | None = None):
    lines = [
        'inputs = ["data/"]',
        "[model]",
        *(f"{k} = {toml_value(v)}" for k, v in model.items()),
        "[state]",
        'location = "state/"',
        "batch_size = 100",
        "[outputs]",
        'model = "out/model.json"',
    ]
    if cv is not None:
        lines += ["[cv]", *(f"{k} = {toml_value(v)}" for k, v in cv.items())]
    path = folder / "job.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_a_formula_job_with_alpha_publishes_the_penalized_fit_of_all_files(frame, tmp_path):
    paths = write_parts(frame, tmp_path / "data")
    model_options = {"formula": FORMULA, "solver": "exact", "alpha": 0.02, "l1_ratio": 0.5}
    job = load_job(write_formula_job(tmp_path, model_options))
    assert run_job(job).status == "published"
    published = streamreg.load(tmp_path / "out" / "model.json")
    expected = streamreg.fit(
        paths, formula=FORMULA, solver="exact", alpha=0.02, l1_ratio=0.5, batch_size=100
    )
    assert published.state_ == expected.state_  # exact sums: the same rows, the same bits
    np.testing.assert_array_equal(published.coef_, expected.coef_)
    assert list(published.feature_names_in_) == list(expected.feature_names_in_)
    assert json.loads((tmp_path / "out" / "model.json").read_text())["format_version"] == 3
    np.testing.assert_array_equal(published.predict(frame), expected.predict(frame))


def test_a_formula_job_with_cv_equals_cv_over_all_files(frame, tmp_path):
    paths = write_parts(frame, tmp_path / "data", pieces=2)
    cv_table = {"folds": 4, "l1_ratio": [0.5, 1.0], "alphas": 15}
    job = load_job(write_formula_job(tmp_path, {"formula": FORMULA, "solver": "exact"}, cv_table))
    assert run_job(job).status == "published"
    published = streamreg.load(tmp_path / "out" / "model.json")
    expected = streamreg.cv(
        paths,
        formula=FORMULA,
        l1_ratio=[0.5, 1.0],
        folds=4,
        alphas=15,
        solver="exact",
        batch_size=100,
    )
    assert published.state_ == expected.best_model_.state_
    np.testing.assert_array_equal(streamreg.CVResult(published).mse_path_, expected.mse_path_)
    np.testing.assert_array_equal(published.coef_, expected.coef_)
    assert published.design_ is not None


# ------------------------------------------------------------------ the command line
def streamreg_cli(*args):
    return subprocess.run(
        [sys.executable, "-c", "from streamreg.cli import main; main()", *map(str, args)],
        capture_output=True,
        text=True,
        env=dict(os.environ),
        timeout=300,
    )


def test_fit_alpha_and_cv_with_a_formula_through_the_command_line(frame, tmp_path):
    folder = tmp_path / "data"
    paths = write_parts(frame, folder)
    fitted = streamreg_cli(
        "fit", folder, "-f", FORMULA, "--alpha", "0.02", "--l1-ratio", "0.5", "-o", tmp_path / "a"
    )
    assert fitted.returncode == 0, fitted.stderr
    expected = streamreg.fit(paths, formula=FORMULA, alpha=0.02, l1_ratio=0.5)
    np.testing.assert_allclose(streamreg.load(tmp_path / "a").coef_, expected.coef_, rtol=1e-12)
    validated = streamreg_cli(
        "cv", folder, "-f", FORMULA, "--fold-column", "fold", "--alphas", "10", "--json"
    )
    assert validated.returncode == 0, validated.stderr
    report = json.loads(validated.stdout)
    result = streamreg.cv(paths, formula=FORMULA, fold_column="fold", alphas=10)
    assert report["cv"]["alpha"] == pytest.approx(result.alpha_, rel=1e-12)
    assert "design" not in report and report["features"] == list(
        result.best_model_.feature_names_in_
    )
    refused = streamreg_cli("cv", folder, "-f", "y ~ x1 | region", "--alphas", "5")
    assert refused.returncode == 2 and refused.stdout == ""
    assert "cross-validation cannot absorb the fixed effect 'region'" in refused.stderr
