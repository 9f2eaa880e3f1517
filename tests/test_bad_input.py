"""Bad input gets one sentence on stderr, exit code 2, no traceback, and no output file.

Every case runs ``streamreg fit``/``predict`` twice: once with an output path
that does not exist (it must not appear, nor any temporary file), and once
with an output file already there (it must be left byte-identical). A few
cases also run the real console script in a subprocess. The positive cases at
the end (nulls counted, ``--drop-collinear``, Hive partitions, integer and
boolean columns, globs and lists) check the same inputs that are accepted.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

import streamreg
from streamreg.cli import app

runner = CliRunner()
SENTINEL = b"previous output, must survive a failed run\n"


def write(path: Path, row_group_size: int | None = None, **columns) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(columns), path, row_group_size=row_group_size)
    return path


def sample(n: int = 30, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    return {
        "id": np.arange(n),
        "x1": x1,
        "x2": x2,
        "y": 1.0 + 2.0 * x1 - x2 + 0.1 * rng.normal(size=n),
    }


def lstsq(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.linalg.lstsq(np.column_stack([np.ones(len(y)), x]), y, rcond=None)[0]


def assert_one_sentence(stderr: str, words) -> str:
    assert "Traceback" not in stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    line = lines[0]
    assert line.startswith("streamreg: error: ") and line.endswith("."), line
    for word in words:
        assert word in line, (word, line)
    return line


def check_failure(args: list, words, out_option: str, out_name: str, tmp_path: Path) -> str:
    """Run the CLI twice (fresh and pre-existing output); both fail the same way, writing
    nothing."""
    out_dir = tmp_path / "out"
    out_dir.mkdir(exist_ok=True)
    out = out_dir / out_name
    messages = []
    for existing in (False, True):
        if existing:
            out.write_bytes(SENTINEL)
        result = runner.invoke(app, [*map(str, args), out_option, str(out)])
        assert isinstance(result.exception, SystemExit), result.exception  # no uncaught exception
        assert result.exit_code == 2, result.output
        assert result.stdout == ""
        messages.append(assert_one_sentence(result.stderr, words))
        if existing:
            assert out.read_bytes() == SENTINEL
            assert [p.name for p in out_dir.iterdir()] == [out_name]
        else:
            assert list(out_dir.iterdir()) == []
    assert messages[0] == messages[1]
    out.unlink()
    return messages[0]


def assert_fit_fails(tmp_path, args, *words) -> str:
    return check_failure(["fit", *args], words, "--out", "model.json", tmp_path)


def assert_predict_fails(tmp_path, args, *words) -> str:
    return check_failure(["predict", *args], words, "--out", "pred.parquet", tmp_path)


def run(*args):
    return subprocess.run(
        ["streamreg", *map(str, args)], capture_output=True, text=True, timeout=120
    )


def assert_run_fails(tmp_path, args, *words) -> str:
    """The console script in a subprocess, with a pre-existing output file left alone."""
    out = tmp_path / "existing-output"
    out.write_bytes(SENTINEL)
    proc = run(*args, "--out", out)
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == ""
    assert out.read_bytes() == SENTINEL
    assert sorted(p.name for p in tmp_path.glob(".existing-output*")) == []
    return assert_one_sentence(proc.stderr, words)


# ---------------------------------------------------------------------- sources
def test_missing_file_subprocess(tmp_path):
    assert_run_fails(
        tmp_path,
        ["fit", tmp_path / "nope.parquet", "--target", "y"],
        "nope.parquet",
        "does not exist",
    )


def test_missing_file_in_a_list(tmp_path):
    good = write(tmp_path / "good.parquet", **sample())
    assert_fit_fails(
        tmp_path, [good, tmp_path / "gone.parquet", "-y", "y"], "gone.parquet", "does not exist"
    )


def test_glob_matching_nothing(tmp_path):
    write(tmp_path / "a.parquet", **sample())
    assert_fit_fails(tmp_path, [str(tmp_path / "*.parq"), "-y", "y"], "*.parq", "matches no files")


def test_empty_directory(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "_SUCCESS").write_text("")  # metadata files are not data
    assert_fit_fails(tmp_path, [tmp_path / "empty", "-y", "y"], "empty", "no Parquet files")


def test_not_parquet(tmp_path):
    path = tmp_path / "notes.parquet"
    path.write_text("id,x,y\n1,2,3\n" * 20)
    assert_fit_fails(tmp_path, [path, "-y", "y"], "notes.parquet", "not a readable Parquet file")


def test_truncated_parquet(tmp_path):
    good = write(tmp_path / "good.parquet", **sample(200))
    path = tmp_path / "cut.parquet"
    path.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    assert_fit_fails(tmp_path, [path, "-y", "y"], "cut.parquet", "not a readable Parquet file")
    predict_model = tmp_path / "m.json"
    streamreg.fit(good, target="y", features="x1,x2").save(predict_model)
    assert_predict_fails(
        tmp_path, [predict_model, path], "cut.parquet", "not a readable Parquet file"
    )


# ---------------------------------------------------------------------- columns
def test_target_not_in_data(tmp_path):
    path = write(tmp_path / "d.parquet", **sample())
    assert_fit_fails(
        tmp_path, [path, "--target", "score"], "target 'score'", "not in the data", "x1, x2, y"
    )


def test_feature_not_in_data(tmp_path):
    path = write(tmp_path / "d.parquet", **sample())
    assert_fit_fails(
        tmp_path, [path, "-y", "y", "--features", "x1,hours"], "feature 'hours'", "not in the data"
    )


def test_weight_not_in_data(tmp_path):
    path = write(tmp_path / "d.parquet", **sample())
    assert_fit_fails(tmp_path, [path, "-y", "y", "--weight", "w"], "weight 'w'", "not in the data")


def test_unusable_feature_names_its_type(tmp_path):
    # A text feature is a category (test_model_language); a list is no feature at all.
    data = sample()
    path = tmp_path / "d.parquet"
    table = pa.table({**data, "tags": pa.array([[1, 2]] * len(data["y"]))})
    pq.write_table(table, path)
    assert_fit_fails(
        tmp_path, [path, "-y", "y", "-x", "x1,tags"], "'tags'", "type list", "expected numbers"
    )


def test_string_target_names_its_type(tmp_path):
    data = sample()
    data["label"] = np.array(["a", "b", "c"] * 10)
    path = write(tmp_path / "d.parquet", **data)
    assert_fit_fails(
        tmp_path, [path, "-y", "label", "-x", "x1"], "'label'", "type string", "numeric"
    )


def test_schemas_disagree_column_missing_subprocess(tmp_path):
    a = write(tmp_path / "d" / "a.parquet", **sample())
    data = sample(seed=1)
    del data["x2"]
    b = write(tmp_path / "d" / "b.parquet", **data)
    assert_run_fails(
        tmp_path,
        ["fit", tmp_path / "d", "-y", "y", "-x", "x1,x2"],
        "'x2'",
        str(a),
        str(b),
        "missing",
    )


@pytest.mark.parametrize("string_first", [False, True])
def test_schemas_disagree_string_and_number(tmp_path, string_first):
    a = write(tmp_path / "a.parquet", **sample())
    data = sample(seed=1)
    data["x1"] = np.array([f"{v:.3f}" for v in data["x1"]])
    b = write(tmp_path / "b.parquet", **data)
    files = [b, a] if string_first else [a, b]
    assert_fit_fails(
        tmp_path,
        [*files, "-y", "y", "-x", "x1,x2"],
        "'x1'",
        "a.parquet",
        "b.parquet",
        "string",
        "double",
    )


def test_mixed_numeric_types_across_files_are_accepted(tmp_path):
    a = sample(20, seed=1)
    b = sample(25, seed=2)
    write(tmp_path / "a.parquet", **a)
    b_int = dict(b, x1=np.round(b["x1"] * 10).astype(np.int32))
    write(tmp_path / "b.parquet", **b_int)
    model = streamreg.fit(
        [tmp_path / "a.parquet", tmp_path / "b.parquet"], target="y", features="x1,x2"
    )
    x = np.column_stack(
        [np.concatenate([a["x1"], b_int["x1"]]), np.concatenate([a["x2"], b["x2"]])]
    )
    expected = lstsq(x, np.concatenate([a["y"], b["y"]]))
    np.testing.assert_allclose([model.intercept_, *model.coef_], expected, rtol=1e-10)


# ---------------------------------------------------------------------- values
def test_null_with_nulls_error(tmp_path):
    data = sample()
    path = write(
        tmp_path / "d.parquet", **dict(data, x2=pa.array(data["x2"], mask=np.arange(30) == 17))
    )
    assert_fit_fails(
        tmp_path,
        [path, "-y", "y", "--nulls", "error"],
        "d.parquet",
        "'x2'",
        "missing value",
        "row group 0",
        "--nulls",
    )


def test_nan_with_nulls_error(tmp_path):
    data = sample()
    data["y"][4] = np.nan
    path = write(tmp_path / "d.parquet", **data)
    assert_fit_fails(
        tmp_path,
        [path, "-y", "y", "-x", "x1,x2", "--nulls", "error"],
        "d.parquet",
        "'y'",
        "NaN",
        "--nulls",
    )


@pytest.mark.parametrize("value", [np.inf, -np.inf])
def test_inf_in_a_feature_names_the_row_group(tmp_path, value):
    data = sample(50)
    data["x2"][23] = value  # rows 20-29 are row group 2 (numbered from 0, as in Parquet metadata)
    path = write(tmp_path / "inf.parquet", row_group_size=10, **data)
    assert pq.read_metadata(path).num_row_groups == 5
    assert_fit_fails(
        tmp_path,
        [path, "-y", "y", "-x", "x1,x2", "--batch-size", "7"],
        "inf.parquet",
        "'x2'",
        "infinite",
        "row group 2",
    )


def test_inf_in_a_feature_subprocess(tmp_path):
    data = sample(50)
    data["x1"][31] = np.inf
    path = write(tmp_path / "inf.parquet", row_group_size=10, **data)
    assert_run_fails(
        tmp_path,
        ["fit", path, "-y", "y", "-x", "x1,x2"],
        "inf.parquet",
        "'x1'",
        "infinite",
        "row group 3",
    )


def test_inf_is_an_error_even_when_nulls_are_dropped(tmp_path):
    data = sample(40)
    data["x1"][35] = np.inf
    x2 = pa.array(data["x2"], mask=np.isin(np.arange(40), [2, 30]))
    path = write(tmp_path / "d.parquet", row_group_size=10, **dict(data, x2=x2))
    assert_fit_fails(
        tmp_path, [path, "-y", "y", "-x", "x1,x2"], "d.parquet", "'x1'", "infinite", "row group 3"
    )


def test_negative_weight(tmp_path):
    data = sample()
    data["w"] = np.ones(30)
    data["w"][12] = -2.5
    path = write(tmp_path / "d.parquet", **data)
    assert_fit_fails(
        tmp_path,
        [path, "-y", "y", "-x", "x1,x2", "-w", "w"],
        "d.parquet",
        "'w'",
        "negative",
        "-2.5",
        "zero or positive",
    )


def test_infinite_weight(tmp_path):
    data = sample()
    data["w"] = np.ones(30)
    data["w"][3] = np.inf
    path = write(tmp_path / "d.parquet", **data)
    assert_fit_fails(
        tmp_path, [path, "-y", "y", "-x", "x1,x2", "-w", "w"], "d.parquet", "'w'", "infinite"
    )


def test_constant_column_is_collinear(tmp_path):
    path = write(tmp_path / "d.parquet", **dict(sample(), c=np.full(30, 4.0)))
    assert_fit_fails(
        tmp_path,
        [path, "-y", "y", "-x", "x1,c,x2"],
        "'c'",
        "constant",
        "intercept",
        "--drop-collinear",
    )


def test_linear_combination_is_collinear(tmp_path):
    data = sample()
    data["combo"] = 2 * data["x1"] - 0.5 * data["x2"] + 3
    path = write(tmp_path / "d.parquet", **data)
    message = assert_fit_fails(
        tmp_path,
        [path, "-y", "y", "-x", "x1,x2,combo"],
        "'combo'",
        "linear combination",
        "x1",
        "x2",
        "--drop-collinear",
    )
    assert "is a linear combination of the intercept, " in message


def test_two_aliased_columns_are_both_named(tmp_path):
    data = sample()
    data["c"] = np.zeros(30) + 1.0
    data["d"] = data["x1"] + data["x2"]
    path = write(tmp_path / "d.parquet", **data)
    assert_fit_fails(tmp_path, [path, "-y", "y", "-x", "x1,x2,c,d"], "'c'", "'d'")


def test_fewer_rows_than_coefficients(tmp_path):
    path = write(tmp_path / "d.parquet", **sample(2))
    assert_fit_fails(tmp_path, [path, "-y", "y", "-x", "x1,x2"], "2 usable rows", "3 coefficients")


def test_no_rows_at_all(tmp_path):
    empty = write(tmp_path / "empty.parquet", **{k: v[:0] for k, v in sample().items()})
    assert_fit_fails(tmp_path, [empty, "-y", "y", "-x", "x1"], "no usable rows")
    data = dict(sample(), w=np.zeros(30))
    zero_weights = write(tmp_path / "w.parquet", **data)
    assert_fit_fails(
        tmp_path, [zero_weights, "-y", "y", "-x", "x1", "-w", "w"], "no usable rows", "zero weight"
    )


def test_output_directory_missing(tmp_path):
    path = write(tmp_path / "d.parquet", **sample())
    result = runner.invoke(
        app, ["fit", str(path), "-y", "y", "--out", str(tmp_path / "nodir" / "m.json")]
    )
    assert result.exit_code == 2
    assert_one_sentence(result.stderr, ["nodir", "does not exist"])
    assert not (tmp_path / "nodir").exists()


def test_nulls_invalid_choice(tmp_path):
    path = write(tmp_path / "d.parquet", **sample())
    assert_fit_fails(
        tmp_path, [path, "-y", "y", "--nulls", "maybe"], "nulls", "'maybe'", "drop", "error"
    )


def test_invalid_solver(tmp_path):
    path = write(tmp_path / "d.parquet", **sample())
    assert_fit_fails(
        tmp_path, [path, "-y", "y", "--solver", "magic"], "solver", "'magic'", "cholesky"
    )


# ---------------------------------------------------------------------- predict
@pytest.fixture
def fitted(tmp_path):
    data = write(tmp_path / "train.parquet", **sample())
    model = tmp_path / "model.json"
    streamreg.fit(data, target="y", features="x1,x2").save(model)
    return data, model


def test_predict_model_not_json_subprocess(tmp_path, fitted):
    data, _ = fitted
    bad = tmp_path / "broken.json"
    bad.write_text("{not json")
    assert_run_fails(tmp_path, ["predict", bad, data], "broken.json", "not a readable model file")


def test_predict_model_missing(tmp_path, fitted):
    data, _ = fitted
    assert_predict_fails(
        tmp_path, [tmp_path / "nomodel.json", data], "nomodel.json", "does not exist"
    )


def test_predict_not_a_model(tmp_path, fitted):
    data, _ = fitted
    other = tmp_path / "other.json"
    other.write_text('{"hello": 1}')
    assert_predict_fails(tmp_path, [other, data], "other.json", "not a streamreg model")


def test_predict_wrong_format_version(tmp_path, fitted):
    data, model = fitted
    saved = json.loads(model.read_text())
    saved["format_version"] = 99
    model.write_text(json.dumps(saved))
    assert_predict_fails(tmp_path, [model, data], "model.json", "version 99", "version 1")


@pytest.mark.parametrize("field", ["coef", "intercept", "state"])
def test_predict_model_missing_field(tmp_path, fitted, field):
    data, model = fitted
    saved = json.loads(model.read_text())
    del saved[field]
    model.write_text(json.dumps(saved))
    assert_predict_fails(tmp_path, [model, data], "model.json", f"'{field}'", "missing")


def test_predict_model_field_of_wrong_type(tmp_path, fitted):
    data, model = fitted
    saved = json.loads(model.read_text())
    saved["intercept"] = "1.5"
    model.write_text(json.dumps(saved))
    assert_predict_fails(tmp_path, [model, data], "model.json", "'intercept'", "str")


def test_predict_feature_missing_from_data(tmp_path, fitted):
    _, model = fitted
    data = sample()
    del data["x2"]
    new = write(tmp_path / "new.parquet", **data)
    assert_predict_fails(tmp_path, [model, new], "'x2'", "new.parquet", "model")


def test_predict_string_feature_names_its_type(tmp_path, fitted):
    _, model = fitted
    data = sample()
    data["x1"] = np.array([f"{v:.4f}" for v in data["x1"]])  # looks numeric, but is text
    new = write(tmp_path / "new.parquet", **data)
    assert_predict_fails(tmp_path, [model, new], "'x1'", "string", "numeric")


def test_predict_keep_column_missing(tmp_path, fitted):
    data, model = fitted
    assert_predict_fails(tmp_path, [model, data, "--keep", "id,ref"], "'ref'", "not in the data")


# ---------------------------------------------------------------------- --debug
def test_debug_shows_the_traceback(tmp_path):
    path = write(tmp_path / "d.parquet", **sample())
    plain = run("fit", path, "-y", "score")
    debug = run("fit", path, "-y", "score", "--debug")
    assert plain.returncode == 2 and "Traceback" not in plain.stderr
    assert debug.returncode != 0
    assert "Traceback (most recent call last)" in debug.stderr
    assert "SchemaError: target 'score' is not in the data" in debug.stderr


def test_internal_error_is_exit_1_without_traceback(tmp_path, monkeypatch):
    path = write(tmp_path / "d.parquet", **sample())

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr("streamreg.fitting.fit", broken)
    result = runner.invoke(app, ["fit", str(path), "-y", "y"])
    assert result.exit_code == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("streamreg: internal error: RuntimeError: boom")
    assert "--debug" in result.stderr


# ---------------------------------------------------------------------- accepted input
def test_nulls_dropped_by_default_are_counted(tmp_path):
    data = sample(60, seed=4)
    x1_null = np.isin(np.arange(60), [1, 2, 3])
    data["x2"][[5, 6]] = np.nan
    y_null = np.isin(np.arange(60), [3, 8])  # row 3 is already dropped for x1
    path = write(
        tmp_path / "d.parquet",
        row_group_size=25,
        id=data["id"],
        x1=pa.array(data["x1"], mask=x1_null),
        x2=data["x2"],
        y=pa.array(data["y"], mask=y_null),
    )
    result = runner.invoke(
        app, ["fit", str(path), "-y", "y", "-x", "x1,x2", "--json", "--batch-size", "16"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["rows_read"] == 60
    assert report["rows_dropped"] == 6
    assert report["rows_dropped_by_column"] == {"x1": 3, "x2": 2, "y": 1}
    assert report["n_rows"] == 54
    keep = ~(x1_null | y_null | np.isnan(data["x2"]))
    expected = lstsq(np.column_stack([data["x1"], data["x2"]])[keep], data["y"][keep])
    np.testing.assert_allclose([report["intercept"], *report["coef"]], expected, rtol=1e-10)
    text = runner.invoke(app, ["fit", str(path), "-y", "y", "-x", "x1,x2"])
    assert "54 rows used from 1 file; 6 rows dropped for missing values (" in text.stdout
    for part in ("x1: 3", "x2: 2", "y: 1"):
        assert part in text.stdout.split("missing values")[1].split(")")[0]


def test_drop_collinear_gives_null_and_predict_works(tmp_path):
    data = sample(40)
    data["combo"] = data["x1"] + data["x2"]
    path = write(tmp_path / "d.parquet", **data)
    out = tmp_path / "m.json"
    result = runner.invoke(
        app,
        [
            "fit",
            str(path),
            "-y",
            "y",
            "-x",
            "x1,x2,combo",
            "--drop-collinear",
            "--out",
            str(out),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["coef"][2] is None and report["coefficients"]["combo"] is None
    assert report["aliased"] == ["combo"]
    assert json.loads(out.read_text())["coef"][2] is None
    expected = lstsq(np.column_stack([data["x1"], data["x2"]]), data["y"])
    np.testing.assert_allclose([report["intercept"], *report["coef"][:2]], expected, rtol=1e-10)
    text = runner.invoke(
        app, ["fit", str(path), "-y", "y", "-x", "x1,x2,combo", "--drop-collinear"]
    )
    assert "aliased" in text.stdout
    assert "streamreg: warning: dropped as collinear (no coefficient): combo." in text.stderr

    # The aliased column is not needed to predict.
    new = dict(sample(10, seed=9))
    new_path = write(tmp_path / "new.parquet", **new)
    pred = tmp_path / "p.parquet"
    result = runner.invoke(
        app, ["predict", str(out), str(new_path), "-o", str(pred), "--keep", "id"]
    )
    assert result.exit_code == 0, result.output
    table = pq.read_table(pred)
    np.testing.assert_array_equal(table.column("id").to_numpy(), new["id"])
    np.testing.assert_allclose(
        table.column("prediction").to_numpy(),
        expected[0] + np.column_stack([new["x1"], new["x2"]]) @ expected[1:],
        rtol=1e-10,
    )


def test_hive_partition_keys_are_features_only_when_named(tmp_path):
    root = tmp_path / "events"
    rng = np.random.default_rng(8)
    xs, parts, ys = [], [], []
    for part, name in [(1, "a"), (2, "b"), (5, "c")]:
        x = rng.normal(size=20)
        y = 1.0 + 3.0 * x + 4.0 * part + 0.1 * rng.normal(size=20)
        write(root / f"part={part}" / f"{name}.parquet", x=x, y=y)
        xs.append(x), parts.append(np.full(20, part)), ys.append(y)
    info = json.loads(runner.invoke(app, ["inspect", str(root), "--json"]).stdout)
    column = next(c for c in info["columns"] if c["name"] == "part")
    assert column == {
        "name": "part",
        "type": "int64",
        "numeric": True,
        "partition": True,
        "nulls": 0,
    }
    # A folder layout is not a measurement: the key is not a default feature, and the report
    # says so.
    result = runner.invoke(app, ["fit", str(root), "-y", "y", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["features"] == ["x"]
    assert report["columns"]["part"]["role"] == "skipped"
    assert "Hive partition key" in report["columns"]["part"]["why"]
    result = runner.invoke(app, ["fit", str(root), "-y", "y", "-x", "x,part", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["features"] == ["x", "part"]
    expected = lstsq(
        np.column_stack([np.concatenate(xs), np.concatenate(parts)]), np.concatenate(ys)
    )
    np.testing.assert_allclose([report["intercept"], *report["coef"]], expected, rtol=1e-10)


def test_integer_and_boolean_columns_equal_the_float64_fit(tmp_path):
    rng = np.random.default_rng(6)
    n = 80
    columns = {
        "i64": rng.integers(-50, 50, n),
        "i8": rng.integers(-100, 100, n).astype(np.int8),
        "u16": rng.integers(0, 60000, n).astype(np.uint16),
        "flag": rng.random(n) < 0.3,
    }
    x = np.column_stack([np.asarray(v, dtype=np.float64) for v in columns.values()])
    y = 0.5 + x @ [0.1, -0.02, 1e-4, 3.0] + rng.normal(size=n)
    typed = write(
        tmp_path / "typed" / "d.parquet", **columns, y=y.astype(np.float32).astype(np.float64)
    )
    floats = write(
        tmp_path / "floats" / "d.parquet",
        **{k: x[:, j] for j, k in enumerate(columns)},
        y=y.astype(np.float32).astype(np.float64),
    )
    a = streamreg.fit(typed, target="y")
    b = streamreg.fit(floats, target="y")
    assert list(a.feature_names_in_) == list(columns)
    np.testing.assert_allclose(a.coef_, b.coef_, rtol=1e-12)
    np.testing.assert_allclose(a.intercept_, b.intercept_, rtol=1e-12)
    expected = lstsq(x, y.astype(np.float32).astype(np.float64))
    np.testing.assert_allclose([a.intercept_, *a.coef_], expected, rtol=1e-10)


def test_glob_list_and_directory_give_the_same_fit(tmp_path):
    folder = tmp_path / "d"
    for k in range(3):
        write(folder / f"part-{k}.parquet", **sample(15 + k, seed=k))
    files = sorted(folder.glob("*.parquet"))
    reports = []
    for args in ([folder], [folder / "*.parquet"], files):
        result = runner.invoke(app, ["fit", *map(str, args), "-y", "y", "-x", "x1,x2", "--json"])
        assert result.exit_code == 0, result.output
        reports.append(json.loads(result.stdout))
    assert [r["n_rows"] for r in reports] == [48, 48, 48]
    for other in reports[1:]:
        np.testing.assert_allclose(other["coef"], reports[0]["coef"], rtol=1e-13)
        np.testing.assert_allclose(other["intercept"], reports[0]["intercept"], rtol=1e-13)
    data = [sample(15 + k, seed=k) for k in range(3)]
    x = np.concatenate([np.column_stack([d["x1"], d["x2"]]) for d in data])
    expected = lstsq(x, np.concatenate([d["y"] for d in data]))
    np.testing.assert_allclose([reports[0]["intercept"], *reports[0]["coef"]], expected, rtol=1e-10)
