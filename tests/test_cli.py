"""The ``streamreg`` command line, end to end.

The real console script runs in a subprocess for every command (fit, predict,
inspect, generate, demo and each ``--help``); cheaper extra cases go through
typer's ``CliRunner``. Numbers are checked against numpy on the same data.
"""

from __future__ import annotations

import io
import json
import os
import subprocess

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

import streamreg
from streamreg.cli import app
from streamreg.progress import Progress

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

runner = CliRunner()


def run(*args, cwd=None):
    """Run the installed console script; output is piped (not a terminal)."""
    return subprocess.run(
        ["streamreg", *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=120
    )


def lstsq(x: np.ndarray, y: np.ndarray, intercept: bool = True) -> np.ndarray:
    """[intercept, coef...] (or just coef) from numpy's in-memory least squares."""
    a = np.column_stack([np.ones(len(y)), x]) if intercept else x
    return np.linalg.lstsq(a, y, rcond=None)[0]


def assert_quiet_stderr(stderr: str) -> None:
    """No progress bar: nothing redrawn with a carriage return, no escape codes."""
    assert "\r" not in stderr
    assert "\x1b" not in stderr


@pytest.fixture
def xy_data(tmp_path):
    rng = np.random.default_rng(11)
    n = 300
    x = rng.normal(size=(n, 3)) * [1.0, 10.0, 0.1] + [0.0, 100.0, -5.0]
    y = 2.0 + x @ np.array([1.5, -0.25, 8.0]) + rng.normal(size=n)
    path = tmp_path / "data.parquet"
    pq.write_table(
        pa.table({"id": np.arange(n), "a": x[:, 0], "b": x[:, 1], "c": x[:, 2], "y": y}),
        path,
        row_group_size=70,
    )
    return path, x, y


# ---------------------------------------------------------------------- fit
def test_fit_json_and_out_match_lstsq(xy_data, tmp_path):
    path, x, y = xy_data
    out = tmp_path / "model.json"
    proc = run(
        "fit",
        path,
        "--target",
        "y",
        "--features",
        "a,b,c",
        "--out",
        out,
        "--json",
        "--batch-size",
        "64",
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    report = json.loads(proc.stdout)
    expected = lstsq(x, y)
    assert report["features"] == ["a", "b", "c"]
    np.testing.assert_allclose(report["intercept"], expected[0], rtol=1e-10)
    np.testing.assert_allclose(report["coef"], expected[1:], rtol=1e-10)
    assert report["coefficients"] == dict(zip(["a", "b", "c"], report["coef"]))
    assert report["n_rows"] == report["rows_read"] == len(y)
    assert report["rows_dropped"] == 0
    assert report["out"] == str(out)
    residual = y - np.column_stack([np.ones(len(y)), x]) @ expected
    np.testing.assert_allclose(report["rmse"], np.sqrt(np.mean(residual**2)), rtol=1e-8)
    # The saved model holds the same numbers and loads back.
    saved = json.loads(out.read_text())
    assert saved["coef"] == report["coef"] and saved["intercept"] == report["intercept"]
    model = streamreg.load(out)
    np.testing.assert_allclose(model.coef_, expected[1:], rtol=1e-10)
    # Atomic write: only the model is left in the folder, no temporary file.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.parquet", "model.json"]


def test_fit_quiet_prints_nothing(xy_data, tmp_path):
    path, x, y = xy_data
    out = tmp_path / "model.json"
    proc = run("fit", path, "-y", "y", "-x", "a,b,c", "-o", out, "--quiet", "--batch-size", "50")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""
    assert proc.stderr == ""
    np.testing.assert_allclose(streamreg.load(out).coef_, lstsq(x, y)[1:], rtol=1e-10)


def test_fit_human_report(xy_data):
    path, x, y = xy_data
    result = runner.invoke(app, ["fit", str(path), "-y", "y", "-x", "a,b,c"])
    assert result.exit_code == 0, result.output
    expected = lstsq(x, y)
    assert result.stdout.startswith("y ~ a + b + c\n300 rows used from 1 file")
    assert "R²" in result.stdout and "solver cholesky" in result.stdout
    for name, value in zip(["(intercept)", "a", "b", "c"], expected):
        assert f"{name}" in result.stdout
        assert f"{value:.7g}" in result.stdout  # 7 significant digits
    assert_quiet_stderr(result.stderr)


def test_fit_default_features_are_the_numeric_columns(xy_data):
    path, x, y = xy_data
    result = runner.invoke(app, ["fit", str(path), "-y", "y", "--exclude", "id", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["features"] == ["a", "b", "c"]
    np.testing.assert_allclose(report["coef"], lstsq(x, y)[1:], rtol=1e-10)


def test_fit_no_intercept(xy_data):
    path, x, y = xy_data
    result = runner.invoke(
        app, ["fit", str(path), "-y", "y", "-x", "a,b,c", "--no-intercept", "--json"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["fit_intercept"] is False and report["intercept"] == 0.0
    np.testing.assert_allclose(report["coef"], lstsq(x, y, intercept=False), rtol=1e-10)


def test_fit_weighted_matches_weighted_lstsq(tmp_path):
    rng = np.random.default_rng(5)
    n = 120
    x = rng.normal(size=(n, 2))
    w = rng.uniform(0.0, 3.0, size=n)
    w[:5] = 0.0
    y = 1.0 + x @ [2.0, -3.0] + rng.normal(size=n)
    path = tmp_path / "w.parquet"
    pq.write_table(pa.table({"x1": x[:, 0], "x2": x[:, 1], "w": w, "y": y}), path)
    result = runner.invoke(app, ["fit", str(path), "-y", "y", "-w", "w", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["features"] == ["x1", "x2"]
    sw = np.sqrt(w)
    a = np.column_stack([np.ones(n), x]) * sw[:, None]
    expected = np.linalg.lstsq(a, y * sw, rcond=None)[0]
    np.testing.assert_allclose([report["intercept"], *report["coef"]], expected, rtol=1e-10)
    np.testing.assert_allclose(report["weight_sum"], w.sum(), rtol=1e-12)


# ---------------------------------------------------------------------- predict
def test_predict_keeps_ids_in_order(tmp_path):
    rng = np.random.default_rng(3)
    sizes = [130, 1, 77]
    frames = []
    start = 0
    folder = tmp_path / "new"
    folder.mkdir()
    for k, m in enumerate(sizes):
        x = rng.normal(size=(m, 2))
        frames.append((np.arange(start, start + m) * 7 % 1000, x))
        start += m
        pq.write_table(
            pa.table({"id": frames[-1][0], "u": x[:, 0], "v": x[:, 1]}),
            folder / f"part-{k}.parquet",
            row_group_size=40,
        )
    # One missing feature value: its prediction is null, the row is still there.
    last_id, last_x = frames[-1]
    u = pa.array(last_x[:, 0], mask=np.arange(len(last_id)) == 5)
    pq.write_table(pa.table({"id": last_id, "u": u, "v": last_x[:, 1]}), folder / "part-2.parquet")

    train = tmp_path / "train.parquet"
    xt = rng.normal(size=(50, 2))
    pq.write_table(
        pa.table({"u": xt[:, 0], "v": xt[:, 1], "y": 3 + xt @ [1.0, -2.0] + rng.normal(size=50)}),
        train,
    )
    model_path = tmp_path / "model.json"
    streamreg.fit(train, target="y").save(model_path)
    saved = json.loads(model_path.read_text())

    out = tmp_path / "pred.parquet"
    proc = run(
        "predict", model_path, folder, "--out", out, "--keep", "id", "--batch-size", "16", "--json"
    )
    assert proc.returncode == 0, proc.stderr
    assert_quiet_stderr(proc.stderr)
    assert json.loads(proc.stdout)["rows"] == sum(sizes)
    table = pq.read_table(out)
    assert table.column_names == ["id", "prediction"]
    assert table.num_rows == sum(sizes)
    ids = np.concatenate([f[0] for f in frames])
    x = np.concatenate([f[1] for f in frames])
    np.testing.assert_array_equal(table.column("id").to_numpy(), ids)
    expected = saved["intercept"] + x @ np.array(saved["coef"])
    got = table.column("prediction")
    assert got.null_count == 1
    null_row = sizes[0] + sizes[1] + 5
    assert got[null_row].as_py() is None
    keep = np.arange(len(ids)) != null_row
    np.testing.assert_allclose(got.to_numpy(zero_copy_only=False)[keep], expected[keep], rtol=1e-12)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "model.json",
        "new",
        "pred.parquet",
        "train.parquet",
    ]


def test_predict_custom_column_and_text_report(tmp_path):
    x = np.arange(10.0)
    pq.write_table(pa.table({"x": x, "y": 2 * x + 1}), tmp_path / "d.parquet")
    streamreg.fit(tmp_path / "d.parquet", target="y").save(tmp_path / "m.json")
    out = tmp_path / "p.parquet"
    result = runner.invoke(
        app,
        [
            "predict",
            str(tmp_path / "m.json"),
            str(tmp_path / "d.parquet"),
            "-o",
            str(out),
            "--column",
            "yhat",
        ],
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"Wrote 10 predictions to {out}")
    table = pq.read_table(out)
    assert table.column_names == ["yhat"]
    np.testing.assert_allclose(table.column("yhat").to_numpy(), 2 * x + 1, rtol=1e-12)


# ---------------------------------------------------------------------- inspect
def test_inspect_json(tmp_path):
    folder = tmp_path / "d"
    folder.mkdir()
    pq.write_table(
        pa.table(
            {
                "i": pa.array([1, 2, None, 4], pa.int32()),
                "f": pa.array([1.5, None, None, 2.0]),
                "b": pa.array([True, False, True, None]),
                "s": pa.array(["a", None, "c", "d"]),
            }
        ),
        folder / "one.parquet",
        row_group_size=2,
    )
    pq.write_table(
        pa.table(
            {
                "i": pa.array([5, 6, 7], pa.int32()),
                "f": pa.array([None, 1.0, 2.0]),
                "b": pa.array([False, False, True]),
                "s": pa.array(["x", "y", "z"]),
            }
        ),
        folder / "two.parquet",
    )
    proc = run("inspect", folder, "--json")
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert info["rows"] == 7
    assert [(os.path.basename(f["path"]), f["rows"], f["row_groups"]) for f in info["files"]] == [
        ("one.parquet", 4, 2),
        ("two.parquet", 3, 1),
    ]
    assert info["bytes"] == sum(os.path.getsize(folder / n) for n in ("one.parquet", "two.parquet"))
    columns = {c["name"]: c for c in info["columns"]}
    assert list(columns) == ["i", "f", "b", "s"]
    assert {n: c["type"] for n, c in columns.items()} == {
        "i": "int32",
        "f": "double",
        "b": "bool",
        "s": "string",
    }
    assert {n: c["numeric"] for n, c in columns.items()} == {
        "i": True,
        "f": True,
        "b": True,
        "s": False,
    }
    assert {n: c["nulls"] for n, c in columns.items()} == {"i": 1, "f": 3, "b": 1, "s": 1}
    assert not any(c["partition"] for c in columns.values())


def test_inspect_text(tmp_path):
    pq.write_table(pa.table({"x": [1.0, None], "name": ["a", "b"]}), tmp_path / "a.parquet")
    result = runner.invoke(app, ["inspect", str(tmp_path / "a.parquet")])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith("1 file, 2 rows, ")
    assert lines[2].split() == ["x", "double", "yes", "1"]
    assert lines[3].split() == ["name", "string", "no", "0"]


# ---------------------------------------------------------------------- generate
def test_generate_writes_truth_and_fit_recovers_it(tmp_path):
    out = tmp_path / "gen"
    rows, noise = 4000, 0.5
    proc = run(
        "generate",
        out,
        "--rows",
        rows,
        "--coef",
        "1.5,-2,0.5",
        "--intercept",
        "3",
        "--noise",
        noise,
        "--files",
        "3",
        "--row-group-size",
        "500",
        "--seed",
        "7",
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == (
        f"Wrote 4,000 rows in 3 file(s) to {out}; the truth is in {out / '_truth.json'}."
    )
    truth = json.loads((out / "_truth.json").read_text())
    assert truth["coef"] == {"x1": 1.5, "x2": -2.0, "x3": 0.5}
    assert truth["intercept"] == 3.0 and truth["noise_sd"] == noise
    assert truth["rows"] == rows and truth["seed"] == 7 and truth["target"] == "y"
    assert [f["path"] for f in truth["files"]] == [f"part-{k:05d}.parquet" for k in range(3)]
    assert sum(f["rows"] for f in truth["files"]) == rows
    for f in truth["files"]:
        meta = pq.read_metadata(out / f["path"])
        assert meta.num_rows == f["rows"]
        assert meta.schema.to_arrow_schema().names == ["x1", "x2", "x3", "y"]

    fitted = run("fit", out, "--target", "y", "--json")
    assert fitted.returncode == 0, fitted.stderr
    report = json.loads(fitted.stdout)
    assert report["n_rows"] == rows  # _truth.json is not read as data
    # Features are N(0, 1), so each slope and the intercept have a standard
    # error of about noise / √rows; allow five of them.
    tol = 5 * noise / np.sqrt(rows)
    np.testing.assert_allclose(report["coef"], [1.5, -2.0, 0.5], atol=tol)
    assert abs(report["intercept"] - 3.0) < tol
    # The residual SD estimates the noise SD with relative error ≈ 1/√(2·rows).
    assert abs(report["rmse"] / noise - 1) < 5 / np.sqrt(2 * rows)


def test_generate_json_and_offset(tmp_path):
    result = runner.invoke(
        app,
        [
            "generate",
            str(tmp_path / "g"),
            "-n",
            "50",
            "-p",
            "2",
            "--offset",
            "1e9",
            "--names",
            "t,u",
            "--target",
            "z",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    truth = json.loads(result.stdout)
    assert truth == json.loads((tmp_path / "g" / "_truth.json").read_text())
    assert truth["coef"] == {"t": 1.0, "u": 2.0} and truth["means"] == {"t": 1e9, "u": 1e9}
    table = pq.read_table(tmp_path / "g" / "part-00000.parquet")
    assert table.column_names == ["t", "u", "z"]
    assert abs(np.mean(table.column("t").to_numpy()) - 1e9) < 1.0


def test_generate_bad_numbers_is_an_input_error(tmp_path):
    result = runner.invoke(app, ["generate", str(tmp_path / "g"), "--coef", "1,two"])
    assert result.exit_code == 2
    assert (
        result.stderr == "streamreg: error: --coef expects comma-separated numbers; got '1,two'.\n"
    )
    assert not (tmp_path / "g").exists()


# ---------------------------------------------------------------------- demo
def test_demo_subprocess(tmp_path):
    # Run from an unrelated folder: the bundled data is found next to the package.
    proc = run("demo", "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    results = {r["example"]: r for r in json.loads(proc.stdout)}
    assert set(results) == {"study_hours", "hours_food"}
    for name, res in results.items():
        truth = json.loads(open(os.path.join(REPO, "data", name, "_truth.json")).read())
        assert res["truth"] == truth
        assert res["rows"] == truth["rows"]
        # Each bundled example has 50 rows; allow six standard errors of the slope.
        for feature, true in truth["coef"].items():
            se = truth["noise_sd"] / (truth["sds"][feature] * np.sqrt(truth["rows"]))
            assert abs(res["coefficients"][feature] - true) < 6 * se, (name, feature)
    study = results["study_hours"]
    expected = study["intercept"] + study["coefficients"]["hours"] * 11
    assert study["score_at_11_hours"] == pytest.approx(expected, rel=1e-12)


def test_demo_text():
    result = runner.invoke(app, ["demo"])
    assert result.exit_code == 0, result.output
    assert "$ streamreg fit" in result.stdout
    assert "study hours" in result.stdout and "hours and food" in result.stdout
    assert "11 hours of study a week: expected score" in result.stdout


def test_demo_missing_data_dir(tmp_path):
    result = runner.invoke(app, ["demo", "--data", str(tmp_path)])
    assert result.exit_code == 2
    assert result.stderr.startswith("streamreg: error: the bundled examples were not found in ")
    assert str(tmp_path) in result.stderr


# ---------------------------------------------------------------------- help
@pytest.mark.parametrize(
    "command, words",
    [
        ([], ["fit", "predict", "inspect", "generate", "demo"]),
        (
            ["fit"],
            [
                "--target",
                "--features",
                "--exclude",
                "--weight",
                "--no-intercept",
                "--nulls",
                "--drop-collinear",
                "--out",
                "--batch-size",
                "--quiet",
                "--json",
                "--debug",
            ],
        ),
        (["predict"], ["MODEL", "--out", "--keep", "--column", "--quiet", "--json", "--debug"]),
        (["inspect"], ["--json", "--debug"]),
        (
            ["generate"],
            [
                "--rows",
                "--features",
                "--coef",
                "--intercept",
                "--noise",
                "--offset",
                "--seed",
                "--files",
            ],
        ),
        (["demo"], ["--data", "--json"]),
    ],
)
def test_help(command, words):
    proc = run(*command, "--help")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.lstrip().startswith("Usage: streamreg")
    assert proc.stderr == ""
    for word in words:
        assert word in proc.stdout, word


def test_no_arguments_shows_help():
    result = runner.invoke(app, [])
    assert "Usage:" in result.output
    assert "fit" in result.output and "predict" in result.output


def test_version():
    result = runner.invoke(app, ["version"])
    assert result.exit_code == 0
    assert result.stdout.strip() == streamreg.__version__


# ---------------------------------------------------------------------- progress
def test_progress_draws_only_on_a_terminal():
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    tty, pipe = Terminal(), io.StringIO()
    for stream in (tty, pipe):
        bar = Progress(1000, 10_000, label="fit", stream=stream, min_interval=0.0)
        bar.advance(400)
        bar.advance(600)
        bar.close()
    assert "\r" in tty.getvalue() and "1.0k/1.0k rows" in tty.getvalue()
    assert pipe.getvalue() == ""
    quiet = Terminal()
    bar = Progress(10, 10, stream=quiet, enabled=False)
    bar.advance(10)
    bar.close()
    assert quiet.getvalue() == ""
