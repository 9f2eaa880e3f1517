"""``streamreg fit --alpha`` and ``streamreg cv`` through the real console script: the numbers
of the library, the saved model, the plot and the path table; every bad input one sentence,
exit code 2, and nothing written."""

from __future__ import annotations

import csv
import json
import subprocess

import numpy as np
import pytest
from conftest import write_parquet

import streamreg
from streamreg.engine.fold_ids import key_folds

SENTINEL = b"previous output, must survive a failed run\n"


def run(*args, cwd=None):
    return subprocess.run(
        ["streamreg", *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=180
    )


@pytest.fixture
def data(tmp_path, rng):
    n = 600
    x = rng.normal(size=(n, 4)) * [1.0, 2.0, 0.5, 3.0]
    y = 1.0 + x @ [2.0, 0.0, -1.0, 0.1] + rng.normal(size=n)
    columns = {f"x{j}": x[:, j] for j in range(4)}
    columns |= {"y": y, "id": rng.integers(0, 100, size=n), "fold": np.arange(n) % 4}
    for i in range(2):
        part = {k: v[i * n // 2 : (i + 1) * n // 2] for k, v in columns.items()}
        write_parquet(tmp_path / "data" / f"part{i}.parquet", part, row_group_size=100)
    return tmp_path / "data"


def test_cv_command_reports_saves_and_plots_what_the_library_computes(data, tmp_path):
    out, plot, table = tmp_path / "model.json", tmp_path / "cv.png", tmp_path / "path.csv"
    proc = run(
        "cv", data, "--target", "y", "--exclude", "fold", "--l1-ratio", "0.5,1", "--folds", "5",
        "--fold-key", "id", "--alphas", "30", "--out", out, "--plot", plot, "--path-csv", table,
        "--json",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    expected = streamreg.cv(
        data, target="y", exclude="fold", l1_ratio=[0.5, 1.0], folds=5, fold_key="id", alphas=30
    )
    assert report["penalty"]["alpha"] == expected.alpha_
    assert report["coef"] == expected.coef_.tolist()
    assert len(report["path"]) == 60 and sum(row["chosen"] for row in report["path"]) == 1
    saved = streamreg.CVResult(streamreg.load(out))
    np.testing.assert_array_equal(saved.mse_path_, expected.mse_path_)
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = list(csv.DictReader(table.open()))
    assert len(rows) == 60
    assert [float(r["mse_mean"]) for r in rows[:30]] == expected.mse_mean_[0].tolist()
    text = run("cv", data, "--target", "y", "--exclude", "fold", "--fold-column", "fold",
               "--folds", "4", "--select", "1se")  # fmt: skip
    assert text.returncode == 0, text.stderr
    assert "← chosen, 1se" in text.stdout and "Refit on all rows" in text.stdout
    summary = run("summary", out)
    assert summary.returncode == 0 and "p values" in summary.stdout
    again = run("plot", out, "--out", tmp_path / "again.png", "--quiet")
    assert again.returncode == 0, again.stderr
    assert (tmp_path / "again.png").read_bytes() == plot.read_bytes()


def test_fit_alpha_is_the_library_fit(data, tmp_path):
    proc = run(
        "fit", data, "--target", "y", "--features", "x0,x1,x2,x3", "--alpha", "0.2",
        "--l1-ratio", "0.3", "--standardize", "--json",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    model = streamreg.fit(
        data, target="y", features="x0,x1,x2,x3", alpha=0.2, l1_ratio=0.3, standardize=True
    )
    report = json.loads(proc.stdout)
    assert report["coef"] == model.coef_.tolist() and report["format_version"] == 3
    assert report["penalty"]["standardize"] is True
    text = run("fit", data, "--target", "y", "--features", "x0,x1", "--alpha", "0.1")
    assert "lasso: alpha 0.1" in text.stdout and "no standard errors" in text.stdout


def test_help_names_the_new_options():
    fit_help = run("fit", "--help").stdout
    for flag in ("--alpha", "--l1-ratio", "--standardize"):
        assert flag in fit_help
    cv_help = run("cv", "--help").stdout
    for flag in ("--folds", "--fold-key", "--fold-column", "--alphas", "--alpha-grid", "--plot"):
        assert flag in cv_help


# ------------------------------------------------------------------ bad input
def assert_refused(tmp_path, args, *words):
    """Exit 2, one sentence naming ``words``, no stdout; an existing output left as it was and
    no other file written."""
    out_dir = tmp_path / "out"
    out_dir.mkdir(exist_ok=True)
    model = out_dir / "model.json"
    model.write_bytes(SENTINEL)
    extra = []
    if args[0] == "cv":
        extra = ["--plot", out_dir / "cv.png", "--path-csv", out_dir / "path.csv"]
    proc = run(*args, "--out", model, *extra)
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    line = lines[0]
    assert line.startswith("streamreg: error: ") and line.endswith("."), line
    sentence = line.split(" See 'streamreg ")[0]  # usage errors end by pointing at --help
    assert sentence.count(". ") == 0, line  # one sentence
    for word in words:
        assert word in line, (word, line)
    assert sorted(p.name for p in out_dir.iterdir()) == ["model.json"]
    assert model.read_bytes() == SENTINEL


@pytest.mark.parametrize(
    "args, words",
    [
        (["fit", "--alpha", "-1"], ["alpha", "zero or greater", "--alpha -1.0"]),
        (["fit", "--alpha", "0.1", "--l1-ratio", "1.5"], ["l1_ratio", "--l1-ratio 1.5"]),
        (["fit", "--l1-ratio", "0.5"], ["--l1-ratio", "--alpha"]),
        (["cv", "--alpha-grid", "0.1,-2"], ["every alpha", "-2.0"]),
        (["cv", "--l1-ratio", "0.5,-0.2"], ["l1_ratio", "--l1-ratio -0.2"]),
        (["cv", "--folds", "1"], ["at least 2 folds", "--folds 1"]),
        (["cv", "--folds", "700"], ["--folds 700", "600 usable rows"]),
        (["cv", "--fold-column", "fold", "--folds", "5"], ["4 distinct values", "--folds 4"]),
        (["cv", "--fold-key", "nope"], ["fold key 'nope'", "not in the data"]),
        (["cv", "--fold-key", "id", "--fold-column", "fold"], ["not both"]),
        (["cv", "--select", "median"], ["'--select'", "'median'", "min, 1se"]),
    ],
)
def test_bad_parameters(data, tmp_path, args, words):
    assert_refused(tmp_path, [args[0], data, "--target", "y", *args[1:]], *words)


def test_a_fold_key_with_nulls(tmp_path, rng):
    key = np.arange(40, dtype=float)
    key[17] = np.nan
    columns = {"x": rng.normal(size=40), "y": rng.normal(size=40), "k": key}
    path = write_parquet(tmp_path / "d" / "keys.parquet", columns)
    assert_refused(
        tmp_path,
        ["cv", path, "--target", "y", "--features", "x", "--fold-key", "k"],
        "fold key 'k' has 1 missing value",
        "keys.parquet",
        "every row needs a fold",
    )


def test_a_fold_left_empty(tmp_path, rng):
    keys = np.array([3, 8] * 20)  # two keys: at most two of five folds get rows
    empty = sorted(set(range(5)) - set(key_folds(keys, 5).tolist()))[0]
    columns = {"x": rng.normal(size=40), "y": rng.normal(size=40), "k": keys}
    path = write_parquet(tmp_path / "d" / "two.parquet", columns)
    assert_refused(
        tmp_path,
        ["cv", path, "--target", "y", "--features", "x", "--fold-key", "k", "--folds", "5"],
        f"fold {empty} of the hash of key column 'k' has no rows",
    )
    weights = np.where(np.arange(40) % 2 == 0, 0.0, 1.0)  # fold "a" has only zero weights
    labels = np.where(np.arange(40) % 2 == 0, "a", "b")
    columns = {"x": rng.normal(size=40), "y": rng.normal(size=40), "w": weights, "f": labels}
    path = write_parquet(tmp_path / "e" / "weights.parquet", columns)
    assert_refused(
        tmp_path,
        [
            "cv",
            path,
            "--target",
            "y",
            "--features",
            "x",
            "--weight",
            "w",
            "--fold-column",
            "f",
            "--folds",
            "2",
        ],  # fmt: skip
        "fold 'a' of the fold column 'f' has no rows with positive weight",
    )
