"""predict and evaluate after their speed-up: the same numbers, against exact arithmetic and
numpy, whatever the batch size; the prediction column written without a dictionary.

(Their throughput is measured by ``bench/bench_predict.py``; no test here times anything.)
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import streamreg
from streamreg.evaluation import evaluate
from streamreg.model.predictor import Predictor
from streamreg.prediction import predict_parquet


def exact_prediction(model, row: dict) -> Fraction:
    """ŷ = μ_y + Σⱼ (xⱼ − μⱼ)βⱼ with the model's stored numbers, in exact rationals."""
    state = model.state_
    p = len(model.coef_)
    total = Fraction(state.mean[p]) + Fraction(state.mean_lo[p])
    for j, name in enumerate(model.feature_names_in_):
        if np.isnan(model.coef_[j]):
            continue
        mean = Fraction(state.mean[j]) + Fraction(state.mean_lo[j])
        total += (Fraction(float(row[name])) - mean) * Fraction(model.coef_[j])
    return total


@pytest.fixture
def offset_data(tmp_path, rng):
    """Timestamps near 1.7e9 beside small columns of other types, a few nulls."""
    n = 1000
    t = 1.7e9 + rng.uniform(0, 1000, size=n)
    small = rng.normal(size=n).astype(np.float32)
    count = rng.integers(0, 50, size=n)
    flag = rng.random(n) < 0.3
    y = 5.0 + 1e-3 * (t - 1.7e9) + 2.0 * small.astype(float) - 0.1 * count + flag
    y += rng.normal(size=n)
    columns = {"t": t, "small": small, "count": count, "flag": flag, "y": y}
    train = tmp_path / "train.parquet"
    pq.write_table(pa.table(columns), train, row_group_size=128)
    new_t = pa.array(t[::-1].copy(), mask=np.arange(n) % 97 == 5)
    held = dict(columns, t=new_t)
    test = tmp_path / "test.parquet"
    pq.write_table(pa.table(held), test, row_group_size=100)
    return train, test


def test_predictions_match_exact_arithmetic_with_large_offsets(offset_data, tmp_path):
    train, test = offset_data
    model = streamreg.fit(train, target="y")
    out = tmp_path / "p.parquet"
    predict_parquet(model, test, out, keep=["t"])
    got = pq.read_table(out)
    rows = pq.read_table(test).to_pylist()
    predicted = got.column("prediction").to_pylist()
    for row, value in zip(rows, predicted):
        if row["t"] is None:
            assert value is None
            continue
        exact = exact_prediction(model, row)
        # A few roundings of terms of size |xⱼ − μⱼ|·|βⱼ| ≲ 10: error far below 1e-12.
        assert abs(Fraction(value) - exact) < Fraction(1, 10**12), (row, value, float(exact))


def test_predictions_do_not_depend_on_the_batch_size(offset_data, tmp_path):
    train, test = offset_data
    model = streamreg.fit(train, target="y")
    outputs = []
    for size in (1, 7, 100, None):
        out = tmp_path / f"p{size}.parquet"
        assert predict_parquet(model, test, out, batch_size=size) == 1000
        outputs.append(pq.read_table(out).column("prediction"))
    for other in outputs[1:]:
        assert other.equals(outputs[0])  # bit for bit: each row's sum is the same sequence
    # The in-memory path computes the same sequence: identical bits as well.
    in_memory = model.predict(pq.read_table(test).to_pandas())
    np.testing.assert_array_equal(outputs[0].to_numpy(zero_copy_only=False), in_memory)


@pytest.mark.parametrize("kind", ["no intercept", "gradient", "aliased"])
def test_prediction_forms(kind, tmp_path, rng):
    n = 400
    x = rng.normal(size=(n, 3)) + [0.0, 5.0, -2.0]
    y = 1.0 + x @ [0.5, -1.0, 2.0] + 0.1 * rng.normal(size=n)
    columns = {"a": x[:, 0], "b": x[:, 1], "c": x[:, 2], "y": y}
    if kind == "aliased":
        columns["d"] = 2 * x[:, 0] - x[:, 2]
    path = tmp_path / "d.parquet"
    pq.write_table(pa.table(columns), path)
    options = {
        "no intercept": dict(fit_intercept=False),
        "gradient": dict(solver="lbfgs"),
        "aliased": dict(drop_collinear=True),
    }[kind]
    model = streamreg.fit(path, target="y", **options)
    coef = np.nan_to_num(model.coef_)
    names = list(model.feature_names_in_)
    design = np.column_stack([columns[name] for name in names])
    expected = model.intercept_ + design @ coef
    out = tmp_path / "p.parquet"
    predict_parquet(model, path, out)
    got = pq.read_table(out).column("prediction").to_numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12 * np.abs(expected).max())
    predictor = Predictor.of(model)
    assert predictor.features == tuple(n for n, c in zip(names, model.coef_) if not np.isnan(c))


def test_evaluate_matches_numpy_and_ignores_the_batch_size(offset_data):
    train, test = offset_data
    model = streamreg.fit(train, target="y")
    frame = pq.read_table(test).to_pandas()
    usable = frame.dropna()
    resid = usable["y"].to_numpy() - model.predict(usable)
    y = usable["y"].to_numpy()
    expected = {
        "n": len(usable),
        "rmse": math.sqrt(np.mean(resid**2)),
        "mae": np.mean(np.abs(resid)),
        "bias": np.mean(resid),
        "r2": 1 - np.sum(resid**2) / np.sum((y - y.mean()) ** 2),
    }
    results = [evaluate(model, test, batch_size=size) for size in (1, 33, None)]
    for result in results:
        assert result["rows_read"] == 1000
        assert result["rows_dropped_by_column"] == {"t": len(frame) - len(usable)}
        assert result["n"] == expected["n"]
        for key in ("rmse", "mae", "r2"):
            assert result[key] == pytest.approx(expected[key], rel=1e-12), key
        assert result["bias"] == pytest.approx(expected["bias"], rel=1e-9, abs=1e-12)


def test_evaluate_keeps_its_digits_for_a_target_with_a_large_offset(tmp_path, rng):
    """y = 1e8 + 3x + noise: every residual and the sum of squares about the mean are
    differences of numbers near 1e8. The oracle is exact arithmetic on the stored values."""
    n = 2000
    x = rng.normal(size=n)
    y = 1e8 + 3.0 * x + rng.normal(size=n)
    path = tmp_path / "d.parquet"
    pq.write_table(pa.table({"x": x, "y": y}), path)
    model = streamreg.fit(path, target="y")
    result = evaluate(model, path, batch_size=64)
    ys = [Fraction(v) for v in y]
    resid = [v - exact_prediction(model, {"x": xi}) for v, xi in zip(ys, x)]
    mean = sum(ys) / n
    tss = sum((v - mean) ** 2 for v in ys)
    ssr = sum(r * r for r in resid)
    assert result["rmse"] == pytest.approx(math.sqrt(ssr / n), rel=1e-13)
    assert result["r2"] == pytest.approx(float(1 - ssr / tss), rel=1e-13)
    assert result["bias"] == pytest.approx(float(sum(resid) / n), abs=1e-13)
    assert result["mae"] == pytest.approx(float(sum(abs(r) for r in resid) / n), rel=1e-13)


def test_the_prediction_column_is_written_without_a_dictionary(tmp_path, rng):
    n = 500
    x = rng.normal(size=n)
    path = tmp_path / "d.parquet"
    pq.write_table(
        pa.table({"x": x, "shop": np.array(["north", "south"])[np.arange(n) % 2], "y": 2 * x}),
        path,
    )
    model = streamreg.fit(path, target="y", features=["x"])
    out = tmp_path / "p.parquet"
    predict_parquet(model, path, out, keep=["shop"])
    meta = pq.ParquetFile(out).metadata.row_group(0)
    encodings = {meta.column(i).path_in_schema: meta.column(i).encodings for i in range(2)}
    assert not any("DICTIONARY" in e for e in encodings["prediction"])
    assert any("DICTIONARY" in e for e in encodings["shop"])
    np.testing.assert_allclose(pq.read_table(out).column("prediction").to_numpy(), 2 * x)
