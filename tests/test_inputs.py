"""In-memory inputs (numpy, pandas, pyarrow) go through the same engine as Parquet files."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import statsmodels.api as sm
from conftest import write_xy

import streamreg


@pytest.fixture
def data(rng):
    x = rng.normal(size=(250, 3)) * [1, 3, 9] + [0, 50, -20]
    y = 1.5 + x @ [2.0, -1.0, 0.25] + rng.normal(size=250)
    w = rng.uniform(0.5, 2, size=250)
    return x, y, w


def test_numpy_pandas_arrow_and_parquet_give_the_same_fit(tmp_path, data):
    x, y, _ = data
    frame = pd.DataFrame(x, columns=["x0", "x1", "x2"]).assign(y=y)
    path = write_xy(tmp_path / "d.parquet", x, y, names=["x0", "x1", "x2"])
    fits = [
        streamreg.fit(x, y),
        streamreg.fit(frame, target="y"),
        streamreg.fit(frame.drop(columns="y"), frame["y"]),
        streamreg.fit(pa.Table.from_pandas(frame), target="y"),
        streamreg.fit(path, target="y"),
    ]
    ref = np.linalg.lstsq(np.column_stack([np.ones(250), x]), y, rcond=None)[0]
    for model in fits:
        assert list(model.feature_names_in_) == ["x0", "x1", "x2"]
        np.testing.assert_allclose(np.r_[model.intercept_, model.coef_], ref, rtol=1e-10)


def test_array_weights_give_wls(data):
    x, y, w = data
    model = streamreg.fit(x, y, weight=w, batch_size=40)
    ref = sm.WLS(y, sm.add_constant(x), weights=w).fit()
    np.testing.assert_allclose(model.params, ref.params, rtol=1e-10)
    np.testing.assert_allclose(model.bse, ref.bse, rtol=1e-8)


def test_series_name_becomes_the_target(data):
    x, y, _ = data
    model = streamreg.fit(pd.DataFrame(x, columns=list("abc")), pd.Series(y, name="score"))
    assert model.target == "score" and list(model.feature_names_in_) == ["a", "b", "c"]


@pytest.mark.parametrize(
    "bad, words",
    [
        (lambda x, y: streamreg.fit(x[:, 0], y), "X must be 2-D"),
        (lambda x, y: streamreg.fit(x, y[:-1]), "X has 250 rows but y has 249"),
        (lambda x, y: streamreg.fit(x, y, weight=np.ones(3)), "sample_weight has 3"),
        (
            lambda x, y: streamreg.fit(pd.DataFrame(x, columns=list("abc"))),
            "a target column is required",
        ),
    ],
)
def test_bad_in_memory_input_is_one_clear_error(data, bad, words):
    x, y, _ = data
    with pytest.raises(streamreg.InputError, match=words):
        bad(x, y)


def test_nan_in_memory_is_dropped_and_named(data):
    x, y, _ = data
    x = x.copy()
    x[5, 1] = np.nan
    model = streamreg.fit(x, y)
    assert model.rows_dropped_by_column_ == {"x1": 1} and model.n_samples_ == 249
    x[7, 2] = np.inf
    with pytest.raises(
        streamreg.DataError, match="'x2' holds an infinite value in row 7 of the in-memory data"
    ):
        streamreg.fit(x, y)
