"""More of the battery of bad inputs (issue 10): files, columns, pages, destinations, addresses,
tampered model files. Each case is one sentence on stderr naming the file, column or flag, exit
code 2, no traceback, and nothing written (the helpers of ``test_bad_input`` check both a fresh
and a pre-existing output).
"""

from __future__ import annotations

import json
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from test_bad_input import (
    assert_fit_fails,
    assert_one_sentence,
    assert_predict_fails,
    sample,
    write,
)
from typer.testing import CliRunner

import streamreg
from streamreg.cli import app
from streamreg.errors import ModelFormatError

runner = CliRunner()


def invoke(*args):
    result = runner.invoke(app, [str(a) for a in args])
    assert isinstance(result.exception, SystemExit) or result.exception is None, result.exception
    return result


# ---------------------------------------------------------------------- columns
def test_two_columns_of_the_same_name(tmp_path):
    data = sample()
    table = pa.Table.from_arrays(
        [pa.array(data["x1"]), pa.array(data["x2"]), pa.array(data["y"])], names=["x", "x", "y"]
    )
    path = tmp_path / "dup.parquet"
    pq.write_table(table, path)
    assert_fit_fails(tmp_path, [path, "-y", "y"], "dup.parquet", "2 columns named 'x'", "rename")
    result = invoke("inspect", path)
    assert result.exit_code == 2
    assert_one_sentence(result.stderr, ["dup.parquet", "columns named 'x'"])


def _with_bad_utf8_name(tmp_path):
    path = tmp_path / "names.parquet"
    pq.write_table(pa.table({"qqqq": [1.0, 2.0, 3.0], "y": [1.0, 2.0, 3.5]}), path)
    raw = path.read_bytes()
    assert raw.count(b"qqqq") >= 1
    path.write_bytes(raw.replace(b"qqqq", b"q\xff\xfeq"))  # same length: offsets stay valid
    return path


def test_column_name_that_is_not_utf8(tmp_path):
    path = _with_bad_utf8_name(tmp_path)
    assert_fit_fails(tmp_path, [path, "-y", "y"], "names.parquet", "not valid UTF-8", "rename")
    result = invoke("inspect", path)
    assert result.exit_code == 2
    assert_one_sentence(result.stderr, ["names.parquet", "UTF-8"])


def test_inspect_of_a_file_without_columns(tmp_path):
    path = tmp_path / "empty.parquet"
    pq.write_table(pa.table({}), path)
    result = invoke("inspect", path)
    assert result.exit_code == 0, result.stderr
    assert "1 file, 0 rows" in result.stdout and "no columns" in result.stdout
    assert json.loads(invoke("inspect", path, "--json").stdout)["columns"] == []


# ---------------------------------------------------------------------- damaged pages
def _checksummed(tmp_path, name="ck.parquet", n=2000):
    rng = np.random.default_rng(3)
    x = rng.normal(size=n)
    path = tmp_path / name
    pq.write_table(
        pa.table({"x": x, "y": 2 * x + 1}),
        path,
        write_page_checksum=True,
        compression="none",
        use_dictionary=False,
        row_group_size=n // 2,
    )
    return path


def test_page_checksums_are_verified(tmp_path):
    """A flipped bit inside a value decodes fine — a silently wrong number — unless the CRC the
    producer wrote is checked. Here the flip is in the file's first batch."""
    path = _checksummed(tmp_path)
    column = pq.read_metadata(path).row_group(0).column(0)
    raw = bytearray(path.read_bytes())
    raw[column.data_page_offset + column.total_compressed_size - 5] ^= 0x10  # in x's values
    bad = tmp_path / "flipped.parquet"
    bad.write_bytes(bytes(raw))
    unverified = pq.read_table(bad, page_checksum_verification=False).column("x").to_numpy()
    assert (unverified != pq.read_table(path).column("x").to_numpy()).sum() == 1
    assert_fit_fails(tmp_path, [bad, "-y", "y"], "flipped.parquet", "row group 0", "CRC", "damaged")


def test_garbage_page_header_in_the_first_batch_names_the_file(tmp_path):
    good = _checksummed(tmp_path)
    other = _checksummed(tmp_path, "other.parquet")
    column = pq.read_metadata(good).row_group(0).column(0)
    raw = bytearray(good.read_bytes())
    raw[column.data_page_offset : column.data_page_offset + 40] = b"\xab" * 40
    bad = tmp_path / "headers.parquet"
    bad.write_bytes(bytes(raw))
    message = assert_fit_fails(
        tmp_path, [bad, other, "-y", "y"], "headers.parquet", "row group 0", "damaged"
    )
    assert "other.parquet" not in message
    # The same in a second file's first batch, after a good file was read.
    assert_fit_fails(tmp_path, [other, bad, "-y", "y"], "headers.parquet", "row group 0")


# ---------------------------------------------------------------------- numbers
def test_a_coefficient_that_overflows_float64_is_refused(tmp_path):
    data = sample()
    path = write(tmp_path / "tiny.parquet", tiny=data["x1"] * 1e-310, y=data["y"])
    for solver in ("auto", "exact"):
        assert_fit_fails(
            tmp_path,
            [path, "-y", "y", "--solver", solver],
            "coefficient of column 'tiny'",
            "overflows float64",
            "rescale",
        )


def test_a_prediction_that_overflows_is_refused(tmp_path):
    data = sample()
    train = write(tmp_path / "train.parquet", x1=data["x1"], y=data["y"])
    model = tmp_path / "m.json"
    streamreg.fit(train, target="y").save(model)
    huge = write(tmp_path / "huge.parquet", x1=np.full(30, 1e308), y=data["y"])
    assert_predict_fails(tmp_path, [model, huge], "huge.parquet", "overflows float64")


# ---------------------------------------------------------------------- destinations
@pytest.mark.parametrize("spelling", ["somedir/", "somedir"])
def test_out_naming_a_directory_is_refused_before_the_pass(tmp_path, monkeypatch, spelling):
    path = write(tmp_path / "d.parquet", **sample())
    (tmp_path / "somedir").mkdir()
    monkeypatch.chdir(tmp_path)

    def never(*args, **kwargs):
        raise AssertionError("the data were read before the destination was checked")

    monkeypatch.setattr("streamreg.fitting.fit", never)
    result = invoke("fit", path, "-y", "y", "-o", spelling)
    assert result.exit_code == 2
    assert_one_sentence(result.stderr, ["somedir", "is a directory", "model.json"])
    assert list((tmp_path / "somedir").iterdir()) == []


def test_out_with_a_trailing_slash_that_does_not_exist(tmp_path):
    path = write(tmp_path / "d.parquet", **sample())
    result = invoke("fit", path, "-y", "y", "-o", f"{tmp_path}/nodir/")
    assert result.exit_code == 2
    assert_one_sentence(result.stderr, ["nodir", "is a directory"])
    assert not (tmp_path / "nodir").exists()


def test_predict_out_naming_a_directory(tmp_path):
    data = write(tmp_path / "d.parquet", **sample())
    model = tmp_path / "m.json"
    streamreg.fit(data, target="y").save(model)
    (tmp_path / "preds").mkdir()
    result = invoke("predict", model, data, "-o", tmp_path / "preds")
    assert result.exit_code == 2
    assert_one_sentence(result.stderr, ["preds", "is a directory"])


# ---------------------------------------------------------------------- addresses
@pytest.mark.parametrize("address", ["not-an-address", "tcp://127.0.0.1", "tcp://:x"])
def test_scheduler_that_is_not_an_address(tmp_path, address):
    path = write(tmp_path / "d.parquet", **sample())
    result = invoke("fit", path, "-y", "y", "--scheduler", address)
    assert result.exit_code == 2
    assert_one_sentence(result.stderr, [f"--scheduler {address}", "tcp://HOST:PORT"])


# ---------------------------------------------------------------------- generate
def test_generate_refuses_a_non_empty_folder(tmp_path):
    out = tmp_path / "g"
    assert invoke("generate", out, "-n", 50, "--seed", 1).exit_code == 0
    first = pq.read_table(out / "part-00000.parquet")
    result = invoke("generate", out, "-n", 80, "--seed", 2)
    assert result.exit_code == 2
    assert_one_sentence(result.stderr, [str(out), "not empty", "mix two data sets", "--force"])
    assert pq.read_table(out / "part-00000.parquet").equals(first)
    (out / "keep.txt").write_text("mine")
    assert invoke("generate", out, "-n", 80, "--seed", 2, "--force").exit_code == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "_truth.json",
        "keep.txt",
        "part-00000.parquet",
    ]
    assert pq.read_metadata(out / "part-00000.parquet").num_rows == 80
    assert json.loads((out / "_truth.json").read_text())["rows"] == 80


def test_generate_into_a_file(tmp_path):
    (tmp_path / "f").write_text("x")
    result = invoke("generate", tmp_path / "f")
    assert result.exit_code == 2
    assert_one_sentence(result.stderr, ["is a file"])


def test_generate_features_and_coef_conflict(tmp_path):
    result = invoke("generate", tmp_path / "g", "--features", 2, "--coef", "1,2,3")
    assert result.exit_code == 2
    assert_one_sentence(result.stderr, ["--features", "2 features", "--coef", "3 slopes"])
    assert not (tmp_path / "g").exists()
    ok = invoke("generate", tmp_path / "g", "--features", 3, "--coef", "1,2,3", "-n", 20)
    assert ok.exit_code == 0, ok.stderr


# ---------------------------------------------------------------------- tampered model files
@pytest.fixture
def saved(tmp_path):
    data = write(tmp_path / "train.parquet", **sample(60))
    path = tmp_path / "model.json"
    streamreg.fit(data, target="y", features="x1,x2", cov_type="HC1").save(path)
    return data, path, json.loads(path.read_text())


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


TAMPERED = [
    (lambda d: d["xtx_inv"][0].__setitem__(1, None), "'xtx_inv' must hold finite numbers"),
    (lambda d: d["xtx_inv"][1].__setitem__(1, -1.0), "non-negative diagonal"),
    (lambda d: d["xtx_inv"].__setitem__(0, [1.0]), "'xtx_inv' must be a 2×2 matrix"),
    (lambda d: d.update(rank=10**30), "'rank' is 1000000000000000000000000000000"),
    (lambda d: d.update(rank=-1), "'rank' is -1"),
    (lambda d: d["robust"]["cov"].__setitem__(1, [1.0]), "robust covariance must be a 3×3"),
    (lambda d: d["robust"]["cov"][0].__setitem__(0, "big"), "robust covariance must be a 3×3"),
    (lambda d: d["robust"]["cov"].__setitem__(2, "row"), "robust covariance must be a 3×3"),
    (lambda d: d["robust"].update(n_groups="many"), "'robust.n_groups'"),
    (lambda d: d["coef"].__setitem__(0, 1e308), "would overflow float64"),
    (lambda d: d.update(intercept=1e305), "would overflow float64"),
    (lambda d: d.update(n_rows=7), "row counts"),
    (lambda d: d.update(ssr=-1.0), "'ssr' must be a finite, non-negative number"),
    (lambda d: d.update(aliased=["x1"]), "'aliased' must name exactly"),
    (lambda d: d.update(rows_dropped=5), "'rows_dropped_by_column'"),
    (lambda d: d.update(warnings=[1]), "'warnings' must be a list of sentences"),
    (lambda d: d.update(inputs=[{"path": 3}]), "'inputs' must list"),
    (lambda d: d["state"].update(mean=["1", 2.0, 3.0, 4.0]), "not a number"),
    (lambda d: d["state"].update(mean=[True, 2.0, 3.0, 4.0]), "not a number"),
    (lambda d: d["state"].update(weight_sum=-3.0), "'weight_sum'"),
    (lambda d: d["state"].update(comoment=[[1.0, 2.0]] * 3 + [[1.0]]), "not a number"),
    (lambda d: d.update(format_version=True), "format version True"),
]


@pytest.mark.parametrize("mutate, words", TAMPERED)
def test_tampered_model_is_refused(tmp_path, saved, mutate, words):
    data, path, content = saved
    mutate(content)
    path.write_text(json.dumps(content))
    with pytest.raises(ModelFormatError, match=words.replace("(", r"\(")):
        streamreg.load(path)
    assert_predict_fails(tmp_path, [path, data], "model.json")


def test_deeply_nested_model_file_is_refused(tmp_path, saved):
    data, path, content = saved
    assert sys.getrecursionlimit() < 100_000
    path.write_text(json.dumps({**content, "warnings": "@"}).replace('"@"', _nested(100_000)))
    with pytest.raises(ModelFormatError, match="nested too deeply"):
        streamreg.load(path)
    assert_predict_fails(tmp_path, [path, data], "model.json", "nested too deeply")


def test_the_untampered_model_still_loads(saved):
    _, path, content = saved
    model = streamreg.load(path)
    assert model.to_dict() == content
