"""The fitted model: prediction on every supported input, JSON round trip and validation."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from conftest import write_parquet, write_xy

import streamreg
from streamreg import CollinearityError, InputError, ModelFormatError


@pytest.fixture
def fitted(tmp_path, rng):
    x = rng.normal(size=(300, 3)) * [1, 5, 0.1] + [0, 100, 1]
    y = 2 + x @ [1.5, -0.25, 40.0] + rng.normal(scale=0.5, size=300)
    path = write_xy(tmp_path / "train.parquet", x, y, names=["a", "b", "c"])
    return streamreg.fit(path, target="y"), x, y


def test_predict_agrees_on_numpy_pandas_arrow_and_batches(fitted):
    model, x, _ = fitted
    expected = model.intercept_ + x @ model.coef_
    frame = pd.DataFrame(x, columns=["a", "b", "c"])
    table = pa.Table.from_pandas(frame)
    np.testing.assert_allclose(model.predict(x), expected, rtol=1e-13)
    np.testing.assert_allclose(model.predict(frame[["c", "a", "b"]]), expected, rtol=1e-13)
    np.testing.assert_allclose(model.predict(table), expected, rtol=1e-13)
    np.testing.assert_allclose(
        model.predict(table.to_batches()[0]), expected[: table.to_batches()[0].num_rows], rtol=1e-13
    )


def test_predict_matches_lstsq_coefficients(fitted):
    model, x, y = fitted
    ref = np.linalg.lstsq(np.column_stack([np.ones(len(x)), x]), y, rcond=None)[0]
    np.testing.assert_allclose(model.predict(x[:5]), ref[0] + x[:5] @ ref[1:], rtol=1e-11)


def test_predict_refuses_a_wrong_shape_or_missing_column(fitted):
    model, x, _ = fitted
    with pytest.raises(InputError, match="2 columns; the model was fitted with 3"):
        model.predict(x[:, :2])
    with pytest.raises(InputError, match="shape"):
        model.predict(x[0])
    with pytest.raises(InputError, match="no column 'b'"):
        model.predict(pd.DataFrame({"a": [1.0], "c": [2.0]}))


def test_missing_feature_values_predict_nan(fitted):
    model, _, _ = fitted
    out = model.predict(pd.DataFrame({"a": [1.0, None], "b": [1.0, 2.0], "c": [0.0, 1.0]}))
    assert np.isfinite(out[0]) and np.isnan(out[1])


def test_save_load_round_trips_exactly(tmp_path, fitted):
    model, x, _ = fitted
    path = tmp_path / "model.json"
    model.save(path)
    again = streamreg.load(path)
    np.testing.assert_array_equal(again.coef_, model.coef_)
    assert again.intercept_ == model.intercept_
    assert list(again.feature_names_in_) == ["a", "b", "c"]
    assert again.state_ == model.state_
    assert (again.r2_, again.rmse_, again.condition_number_) == (
        model.r2_,
        model.rmse_,
        model.condition_number_,
    )
    np.testing.assert_array_equal(again.predict(x), model.predict(x))
    assert again.to_dict() == model.to_dict()
    text = path.read_text()
    assert json.loads(text)["streamreg_version"] == streamreg.__version__


def test_model_records_inputs_and_counts(tmp_path, rng):
    for i in range(3):
        write_xy(
            tmp_path / "d" / f"part{i}.parquet",
            rng.normal(size=(10 + i, 1)),
            rng.normal(size=10 + i),
        )
    model = streamreg.fit(tmp_path / "d", target="y")
    assert [f["rows"] for f in model.inputs_] == [10, 11, 12]
    assert model.n_samples_ == 33 and model.rows_read_ == 33


@pytest.mark.parametrize(
    "mutate, words",
    [
        (lambda d: d.update(format_version=99), "format version 99"),
        (lambda d: d.update(format="other"), "not a streamreg model"),
        (lambda d: d.pop("intercept"), "'intercept' is missing"),
        (lambda d: d.update(coef=[1.0]), "'coef' has 1 entries for 3 features"),
        (lambda d: d.update(features=["a", "a", "c"]), "distinct"),
        (lambda d: d.update(n_rows="300"), "'n_rows' should be int"),
        (lambda d: d.update(fit_intercept="yes"), "'fit_intercept' should be bool"),
        (lambda d: d["state"].update(names=["a", "b", "q", "y"]), "state"),
    ],
)
def test_loading_a_bad_model_names_the_field(tmp_path, fitted, mutate, words):
    model, _, _ = fitted
    data = model.to_dict()
    mutate(data)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ModelFormatError, match=words):
        streamreg.load(path)


def test_drop_collinear_gives_aliased_columns_no_coefficient(tmp_path, rng):
    a = rng.normal(size=100)
    b = rng.normal(size=100)
    path = write_parquet(
        tmp_path / "c.parquet",
        {
            "a": a,
            "b": b,
            "ab": 2 * a - b,
            "k": np.full(100, 3.0),
            "y": 1 + a + b + rng.normal(size=100),
        },
    )
    with pytest.raises(CollinearityError, match="'ab'"):
        streamreg.fit(path, target="y")
    model = streamreg.fit(path, target="y", drop_collinear=True)
    assert model.aliased_ == ["ab", "k"]
    assert np.isnan(model.coef_[2]) and np.isnan(model.coef_[3])
    ref = np.linalg.lstsq(np.column_stack([np.ones(100), a, b]), 1 + a + b, rcond=None)[0]
    assert model.coef_[0] == pytest.approx(ref[1], abs=0.5)
    kept = streamreg.fit(path, target="y", features=["a", "b"])
    np.testing.assert_allclose(model.coef_[:2], kept.coef_, rtol=1e-12)
    assert model.intercept_ == pytest.approx(kept.intercept_, rel=1e-12)
    assert model.coefficients()["ab"] is None
    frame = pd.DataFrame({"a": [1.0], "b": [2.0]})  # aliased columns are not needed to predict
    assert model.predict(frame)[0] == pytest.approx(kept.predict(frame)[0], rel=1e-12)
    round_trip = tmp_path / "m.json"
    model.save(round_trip)
    assert streamreg.load(round_trip).aliased_ == ["ab", "k"]


def test_a_failed_write_leaves_the_previous_file_and_no_temporary(tmp_path):
    from streamreg.io.atomic import atomic_path

    out = tmp_path / "model.json"
    out.write_text("previous")
    with pytest.raises(RuntimeError), atomic_path(out) as tmp:
        tmp.write_text("half a mod")
        raise RuntimeError("disk full")
    assert out.read_text() == "previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.json"]


def test_old_public_names_still_work(rng):
    """Renamed in the reorganization; the old names stay as aliases."""
    x = rng.normal(size=(200, 2))
    y = x @ [1.0, -1.0] + rng.normal(size=200)
    assert streamreg.SGDOptions is streamreg.GradientOptions
    old = streamreg.fit(x, y, solver="lbfgs", sgd={"l2": 0.1})
    new = streamreg.fit(x, y, solver="lbfgs", gradient={"l2": 0.1})
    np.testing.assert_array_equal(old.coef_, new.coef_)
    assert old.condition_number_ == old.scaled_condition_number_ > 1.0
    with pytest.raises(streamreg.InputError, match="once"):
        streamreg.fit(x, y, solver="lbfgs", sgd={}, gradient={})


def test_a_model_does_not_change_after_it_is_built(rng):
    x = rng.normal(size=(50, 2))
    model = streamreg.fit(x, x @ [1.0, 2.0] + rng.normal(size=50))
    bse = model.bse.copy()
    with pytest.raises(AttributeError, match="does not change"):
        model.robust_ = {"cov_type": "HC0", "cov": np.eye(3).tolist()}
    np.testing.assert_array_equal(model.bse, bse)
