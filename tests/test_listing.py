"""Two spellings of one input give one model: symlink loops, aliases, repeated inputs, globs.

The oracle is numpy's least squares on the rows of the distinct files; the spellings are
compared with each other bit for bit (the same files in the same order read the same way).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import write_parquet
from typer.testing import CliRunner

import streamreg
from streamreg.cli import app
from streamreg.io.listing import list_files
from streamreg.io.walk import expand_glob, walk_directory

runner = CliRunner()


def _part(path, seed, n=25):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    return write_parquet(path, {"x": x, "y": 1.0 + 2.0 * x + 0.1 * rng.normal(size=n)})


def _lstsq(paths):
    import pyarrow.parquet as pq

    tables = [pq.read_table(p) for p in paths]
    x = np.concatenate([t.column("x").to_numpy() for t in tables])
    y = np.concatenate([t.column("y").to_numpy() for t in tables])
    return np.linalg.lstsq(np.column_stack([np.ones_like(x), x]), y, rcond=None)[0]


@pytest.fixture
def tangled(tmp_path):
    """d/sub/a.parquet, d/b.parquet, a loop d/sub/loop → d, and an alias d/alias → d/sub."""
    root = tmp_path / "d"
    a = _part(root / "sub" / "a.parquet", 1)
    b = _part(root / "b.parquet", 2)
    (root / "sub" / "loop").symlink_to(root)
    (root / "alias").symlink_to(root / "sub")
    return root, [a, b]


@pytest.mark.parametrize(
    "spelling",
    [
        lambda r: [r],
        lambda r: [f"{r}/**/*.parquet"],
        lambda r: [f"{r}/**"],
        lambda r: [r, r / "sub" / "a.parquet", r / "alias" / "a.parquet"],
        lambda r: [f"{r}/**/*.parquet", r / "alias"],
        lambda r: [r / "alias", r / "sub", r / "b.parquet"],
    ],
)
def test_every_spelling_counts_each_file_once(tangled, spelling):
    root, files = tangled
    listed = list_files(spelling(root))
    assert sorted(os.path.realpath(f.path) for f in listed) == sorted(
        os.path.realpath(p) for p in files
    )
    model = streamreg.fit(spelling(root), target="y")
    assert model.n_samples_ == 50
    np.testing.assert_allclose([model.intercept_, *model.coef_], _lstsq(files), rtol=1e-12)


def test_a_recursive_glob_over_a_loop_ends(tangled):
    """Python's glob follows the loop 40 levels deep and the alias exponentially (minutes and
    1.8 GB here); the listing visits each real directory once. A subprocess bounds the test."""
    root, files = tangled
    code = (
        "import sys; from streamreg.io.listing import list_files; "
        "print('\\n'.join(f.path for f in list_files(sys.argv[1])))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, f"{root}/**/*.parquet"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [str(files[1]), str(files[0])]


def test_directory_and_glob_spellings_give_bit_identical_models(tangled):
    root, _ = tangled
    by_folder = streamreg.fit(root, target="y")
    by_glob = streamreg.fit(f"{root}/**/*.parquet", target="y")
    assert by_folder.state_ == by_glob.state_
    assert [f["path"] for f in by_folder.inputs_] == [
        str(root / "b.parquet"),
        str(root / "sub" / "a.parquet"),
    ]


def test_plain_path_is_preferred_to_a_link(tangled):
    root, _ = tangled
    paths = [f.path for f in list_files(root)]
    assert paths == [str(root / "b.parquet"), str(root / "sub" / "a.parquet")]
    assert expand_glob(f"{root}/**/a.parquet") == [str(root / "sub" / "a.parquet")]


def test_a_linked_data_folder_is_still_read(tmp_path):
    elsewhere = _part(tmp_path / "elsewhere" / "e.parquet", 3)
    root = tmp_path / "d"
    _part(root / "own.parquet", 4)
    (root / "ext").symlink_to(elsewhere.parent)
    files, skipped = walk_directory(str(root))
    assert [p for p, _ in files] == [str(root / "own.parquet"), str(root / "ext" / "e.parquet")]
    assert skipped == []
    assert streamreg.fit(root, target="y").n_samples_ == 50


def test_hard_links_are_distinct_entries(tmp_path):
    a = _part(tmp_path / "d" / "a.parquet", 5)
    os.link(a, tmp_path / "d" / "a-copy.parquet")
    assert streamreg.fit(tmp_path / "d", target="y").n_samples_ == 50


def test_hidden_names_follow_glob_rules(tmp_path):
    _part(tmp_path / "d" / "a.parquet", 6)
    _part(tmp_path / "d" / ".hidden" / "h.parquet", 7)
    _part(tmp_path / "d" / ".h.parquet", 8)
    assert expand_glob(f"{tmp_path}/d/**/*.parquet") == [str(tmp_path / "d" / "a.parquet")]
    assert expand_glob(f"{tmp_path}/d/.*.parquet") == [str(tmp_path / "d" / ".h.parquet")]
    old = os.getcwd()
    os.chdir(tmp_path)
    try:
        assert expand_glob("d/**/*.parquet") == ["d/a.parquet"]
        assert expand_glob("**/a.parquet") == ["d/a.parquet"]
    finally:
        os.chdir(old)


def test_readme_beside_the_data_is_skipped_and_said(tmp_path):
    root = tmp_path / "d"
    files = [_part(root / "a.parquet", 1), _part(root / "b.parquet", 2)]
    (root / "README.txt").write_text("what these files are")
    (root / "notes.csv").write_text("a,b\n1,2\n")
    result = runner.invoke(app, ["fit", str(root), "-y", "y", "--json"])
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["n_rows"] == 50
    np.testing.assert_allclose([report["intercept"], *report["coef"]], _lstsq(files), rtol=1e-12)
    note = next(w for w in report["warnings"] if "skipped 2 file(s)" in w)
    assert "README.txt" in note and "notes.csv" in note
    text = runner.invoke(app, ["fit", str(root), "-y", "y"])
    assert "streamreg: warning: skipped 2 file(s)" in text.stderr


def test_folder_with_only_a_readme_says_so(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "README.txt").write_text("data comes later")
    result = runner.invoke(app, ["fit", str(tmp_path / "d"), "-y", "y"])
    assert result.exit_code == 2
    assert "holds no Parquet files (only files not named like Parquet: README.txt)" in result.stderr


def test_damaged_file_in_a_folder_says_how_to_proceed(tmp_path):
    _part(tmp_path / "d" / "a.parquet", 1)
    (tmp_path / "d" / "b.parquet").write_text("not parquet")
    result = runner.invoke(app, ["fit", str(tmp_path / "d"), "-y", "y"])
    assert result.exit_code == 2
    assert "b.parquet is not a readable Parquet file" in result.stderr
    assert "leave it out of the inputs" in result.stderr


def test_a_column_added_in_later_files_is_left_out_of_the_default_features(tmp_path):
    rng = np.random.default_rng(9)
    x = rng.normal(size=60)
    y = 3.0 - x + 0.1 * rng.normal(size=60)
    write_parquet(tmp_path / "d" / "a.parquet", {"x": x[:30], "y": y[:30]})
    write_parquet(
        tmp_path / "d" / "b.parquet", {"x": x[30:], "y": y[30:], "extra": rng.normal(size=30)}
    )
    model = streamreg.fit(tmp_path / "d", target="y")
    assert list(model.feature_names_in_) == ["x"]
    expected = np.linalg.lstsq(np.column_stack([np.ones(60), x]), y, rcond=None)[0]
    np.testing.assert_allclose([model.intercept_, *model.coef_], expected, rtol=1e-12)
    assert any(
        "column 'extra' is only in some of the files" in w and "a.parquet" in w
        for w in model.warnings_
    )
    # Asked for by name, it is an error that says how to proceed.
    result = runner.invoke(app, ["fit", str(tmp_path / "d"), "-y", "y", "-x", "x,extra"])
    assert result.exit_code == 2
    assert "leave the column out of the model, or give only the files that have it" in (
        result.stderr
    )


def test_a_pipe_in_the_data_folder_is_skipped_not_read(tmp_path):
    """Opening a FIFO to read its footer would block forever."""
    root = tmp_path / "d"
    files = [_part(root / "a.parquet", 1)]
    os.mkfifo(root / "incoming.parquet")
    model = streamreg.fit(root, target="y")
    np.testing.assert_allclose([model.intercept_, *model.coef_], _lstsq(files), rtol=1e-12)
    assert any("incoming.parquet" in w for w in model.warnings_)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every directory")
def test_an_unreadable_subfolder_is_an_error_not_a_silent_gap(tmp_path):
    root = tmp_path / "d"
    _part(root / "a.parquet", 1)
    _part(root / "locked" / "b.parquet", 2)
    (root / "locked").chmod(0)
    try:
        result = runner.invoke(app, ["fit", str(root), "-y", "y"])
    finally:
        (root / "locked").chmod(0o755)
    assert result.exit_code == 2
    assert "cannot read the directory" in result.stderr and "locked" in result.stderr
