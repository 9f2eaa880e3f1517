"""The command line as people use it: help pages, one error style, choices, repeated options,
column names with commas, near-miss column names.

Most cases run ``streamreg.cli.main(args)`` in this process (what the console script runs);
a few run the real console script in a subprocess. Numbers are checked against numpy's
least squares and statsmodels on the same data.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import typer

import streamreg
from streamreg.cli import app, main
from streamreg.cli.options import column_names
from streamreg.design import NULL_POLICIES
from streamreg.errors import SchemaError, did_you_mean
from streamreg.jobs.spec import ON_CHANGE
from streamreg.model.robust import ROBUST_TYPES
from streamreg.prediction import predict_parquet
from streamreg.solvers import SOLVER_NAMES
from streamreg.solvers.gradient.options import SCHEDULES

ERROR_LINE = re.compile(r"^streamreg: error: .+ See 'streamreg( [a-z]+)* --help'\.$")


def console(*args):
    """The installed console script; output piped."""
    return subprocess.run(
        ["streamreg", *map(str, args)], capture_output=True, text=True, timeout=180
    )


def cli(capsys, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def lstsq(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.linalg.lstsq(np.column_stack([np.ones(len(y)), x]), y, rcond=None)[0]


def commands() -> list[tuple[str, ...]]:
    """Every command's words, from the command tree itself (so a new command is covered)."""
    root = typer.main.get_command(app)
    found = []

    def walk(group, prefix):
        for name, command in group.commands.items():
            if hasattr(command, "commands"):
                walk(command, (*prefix, name))
            else:
                found.append((*prefix, name))

    walk(root, ())
    return found


def command_object(words):
    command = typer.main.get_command(app)
    for word in words:
        command = command.commands[word]
    return command


@pytest.fixture
def data(tmp_path, rng):
    n = 200
    x = rng.normal(size=(n, 3)) * [1.0, 3.0, 0.5] + [0.0, 10.0, -2.0]
    y = 1.5 + x @ [2.0, -0.5, 4.0] + rng.normal(size=n)
    columns = {"id": np.arange(n), "a": x[:, 0], "b": x[:, 1], "c": x[:, 2], "y": y}
    path = tmp_path / "data.parquet"
    pq.write_table(pa.table(columns), path, row_group_size=64)
    return path, x, y


# ---------------------------------------------------------------------- help
@pytest.mark.parametrize("words", commands(), ids=" ".join)
def test_help_has_examples_and_no_type_labels(capsys, words):
    code, out, err = cli(capsys, *words, "--help")
    assert code == 0 and err == ""
    assert out.startswith(f"Usage: streamreg {' '.join(words)} ")
    for label in ("<str>", "<bool>", "<int", "<float", "<path>", "<list", "TEXT", "BOOLEAN"):
        assert label not in out, label
    examples = out.split("\nExamples:\n", 1)[1].strip().splitlines()
    assert 1 <= len(examples) <= 3, examples
    command = command_object(words)
    for line in examples:
        argv = shlex.split(line)
        argv = argv[: next((i for i, w in enumerate(argv) if w in ("|", ">", ">>")), len(argv))]
        assert argv[: 1 + len(words)] == ["streamreg", *words], line
        # Every example is a valid command line: the parser accepts it as written.
        command.make_context(" ".join(words), argv[1 + len(words) :])
    # Flags are shown as flags: nothing between a flag's names and its help text.
    for param in command.params:
        if getattr(param, "is_flag", False):
            names = ", ".join(sorted(param.opts, key=lambda o: (o.startswith("--"), o)))
            assert re.search(rf"^  {re.escape(names)}  +\S", out, re.M), (names, out)


def test_choices_are_listed_from_their_sources(capsys):
    _, fit_help, _ = cli(capsys, "fit", "--help")
    assert f"--solver [{'|'.join(SOLVER_NAMES)}]" in fit_help
    assert f"--nulls [{'|'.join(NULL_POLICIES)}]" in fit_help
    hc = "|".join(t for t in ROBUST_TYPES if t != "cluster")
    assert f"--cov [nonrobust|{hc}|cluster:COLUMN]" in fit_help
    assert f"--schedule [{'|'.join(SCHEDULES)}]" in fit_help
    _, run_help, _ = cli(capsys, "run", "--help")
    assert f"--on-change [{'|'.join(ON_CHANGE)}]" in run_help
    assert "--log-format [text|json]" in run_help
    _, summary_help, _ = cli(capsys, "summary", "--help")
    assert "--format [text|markdown|json]" in summary_help


def test_help_version_and_short_help_through_the_console_script():
    long, short = console("fit", "--help"), console("fit", "-h")
    assert long.returncode == short.returncode == 0
    assert long.stdout == short.stdout and long.stderr == ""
    assert "\nExamples:\n  streamreg fit " in long.stdout
    assert "--no-intercept  " in long.stdout and "<bool>" not in long.stdout
    version = console("--version")
    assert version.returncode == 0 and version.stdout.strip() == streamreg.__version__
    root = console("-h")
    assert root.returncode == 0 and "Commands:" in root.stdout and "--version" in root.stdout
    assert root.stdout.split("Commands:\n")[1].split()[0] == "fit"
    assert "\nExamples:\n  streamreg " in root.stdout


def test_groups_have_examples_too(capsys):
    code, out, _ = cli(capsys, "job", "--help")
    assert code == 0 and "\nExamples:\n  streamreg job init " in out


# ---------------------------------------------------------------------- one error style
@pytest.mark.parametrize(
    "args, words",
    [
        (["fit"], ["missing argument 'sources'", "'streamreg fit --help'"]),
        (["fit", "d.parquet", "--target"], ["'--target' requires an argument", "fit --help"]),
        (["fit", "d.parquet", "-y", "y", "--taget", "y"], ["no such option", "--target"]),
        (["fit", "d.parquet", "-y", "y", "--batch-size", "many"], ["--batch-size", "integer"]),
        (["fit", "d.parquet", "-y", "y", "--batch-size", "0"], ["--batch-size", "1"]),
        (["fit", "d.parquet", "-y", "y", "--solver", "ridge"], ["'ridge'", "auto, cholesky"]),
        (["fit", "d.parquet", "-y", "y", "--nulls", "dorp"], ["did you mean 'drop'?"]),
        (["fit", "d.parquet", "-y", "a", "-y", "b"], ["--target was given 2 times", "once"]),
        (["predict", "m.json", "d", "-o", "a", "-o", "b"], ["--out was given 2 times"]),
        (["fti"], ["no such command 'fti'", "fit"]),
        (["summary", "m.json", "--format", "html"], ["'html'", "text, markdown, json"]),
        (["run", "job.toml", "--log-format", "xml"], ["'xml'", "text, json"]),
        (["job", "init", "--bogus"], ["no such option", "'streamreg job init --help'"]),
    ],
)
def test_usage_errors_are_one_line_with_exit_2(capsys, args, words):
    code, out, err = cli(capsys, *args)
    assert code == 2 and out == ""
    assert err.endswith("\n") and err.count("\n") == 1, err
    line = err.rstrip("\n")
    assert ERROR_LINE.match(line), line
    for word in words:
        assert word in line, (word, line)


def test_usage_error_through_the_console_script():
    proc = console("fit", "nowhere.parquet", "--target")
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr == (
        "streamreg: error: option '--target' requires an argument. See 'streamreg fit --help'.\n"
    )


def test_no_arguments_prints_help_and_exits_2(capsys):
    code, out, err = cli(capsys)
    assert code == 2 and err == ""
    assert out.startswith("Usage: streamreg [OPTIONS] COMMAND") and "fit" in out


# ---------------------------------------------------------------------- choices in any case
def test_choices_match_in_any_case(capsys, data, tmp_path):
    import statsmodels.api as sm

    path, x, y = data
    code, out, err = cli(
        capsys, "fit", path, "-y", "y", "-x", "a,b,c", "--solver", "QR", "--cov", "hc1",
        "--nulls", "Drop", "--json",
    )  # fmt: skip
    assert code == 0, err
    report = json.loads(out)
    assert report["solver"] == "qr" and report["inference"]["cov_type"] == "HC1"
    oracle = sm.OLS(y, sm.add_constant(x)).fit(cov_type="HC1")
    np.testing.assert_allclose(report["inference"]["bse"], oracle.bse, rtol=1e-9)
    np.testing.assert_allclose([report["intercept"], *report["coef"]], oracle.params, rtol=1e-10)


def test_cov_cluster_keeps_the_column_case(capsys, tmp_path, rng):
    n = 120
    x = rng.normal(size=n)
    firm = np.repeat(np.arange(12), 10)
    y = 1 + 2 * x + rng.normal(size=12)[firm] + rng.normal(size=n)
    path = tmp_path / "panel.parquet"
    pq.write_table(pa.table({"x": x, "Firm": firm, "y": y}), path)
    code, out, err = cli(
        capsys, "fit", path, "-y", "y", "-x", "x", "--cov", "CLUSTER:Firm", "--json"
    )
    assert code == 0, err
    assert json.loads(out)["inference"]["cov_type"] == "cluster"


# ---------------------------------------------------------------------- repeated options
def test_repeated_features_accumulate(capsys, data):
    path, x, y = data
    expected = lstsq(x, y)
    fits = []
    for spelling in (["-x", "a", "-x", "b", "-x", "c"], ["-x", "a,b", "--features", "c"]):
        code, out, err = cli(capsys, "fit", path, "-y", "y", *spelling, "--json")
        assert code == 0, err
        fits.append(json.loads(out))
        assert fits[-1]["features"] == ["a", "b", "c"]
        np.testing.assert_allclose([fits[-1]["intercept"], *fits[-1]["coef"]], expected, rtol=1e-10)
    assert fits[0]["coef"] == fits[1]["coef"]


def test_repeated_exclude_accumulates(capsys, data):
    path, x, y = data
    code, out, err = cli(
        capsys, "fit", path, "-y", "y", "--exclude", "id", "--exclude", "b", "--json"
    )
    assert code == 0, err
    report = json.loads(out)
    assert report["features"] == ["a", "c"]
    np.testing.assert_allclose(
        [report["intercept"], *report["coef"]], lstsq(x[:, [0, 2]], y), rtol=1e-10
    )


def test_a_feature_listed_twice_is_refused(capsys, data):
    path, _, _ = data
    code, out, err = cli(capsys, "fit", path, "-y", "y", "-x", "a", "-x", "b,a")
    assert code == 2 and out == ""
    assert err.startswith("streamreg: error: ") and "'a' is listed twice" in err


def test_repeated_keep_accumulates(capsys, data, tmp_path):
    path, x, y = data
    model = tmp_path / "m.json"
    streamreg.fit(path, target="y", features=["a", "b", "c"]).save(model)
    out_file = tmp_path / "p.parquet"
    code, _, err = cli(
        capsys, "predict", model, path, "-o", out_file, "--keep", "id", "--keep", "y"
    )
    assert code == 0, err
    table = pq.read_table(out_file)
    assert table.column_names == ["id", "y", "prediction"]
    np.testing.assert_array_equal(table.column("y").to_numpy(), y)


# ---------------------------------------------------------------------- names with commas
def test_column_names_split_on_commas_outside_quotes():
    assert column_names(None, "-x") is None
    assert column_names(["a , b", "c,", ",d"], "-x") == ["a", "b", "c", "d"]
    assert column_names(['"net, price"', '" padded "', '"say ""hi"""'], "-x") == [
        "net, price",
        " padded ",
        'say "hi"',
    ]
    assert column_names(['x,"a,b" , y'], "-x") == ["x", "a,b", "y"]
    for bad, words in [('"open', "unclosed"), ('"a"b', "must end at a comma")]:
        with pytest.raises(streamreg.InputError, match=words):
            column_names([bad], "--features")


def test_features_with_commas_and_spaces_in_their_names(capsys, tmp_path, rng):
    n = 150
    x = rng.normal(size=(n, 3))
    y = 2.0 + x @ [1.0, -3.0, 0.5] + rng.normal(size=n)
    names = ["net, price", " padded ", "plain"]
    path = tmp_path / "odd.parquet"
    pq.write_table(pa.table({**{nm: x[:, j] for j, nm in enumerate(names)}, "y": y}), path)
    code, out, err = cli(
        capsys, "fit", path, "-y", "y", "-x", '"net, price"', "-x", '" padded ",plain', "--json"
    )
    assert code == 0, err
    report = json.loads(out)
    assert report["features"] == names
    np.testing.assert_allclose([report["intercept"], *report["coef"]], lstsq(x, y), rtol=1e-10)
    code, out, err = cli(capsys, "fit", path, "-y", "y", "--exclude", '"net, price"', "--json")
    assert code == 0, err
    assert json.loads(out)["features"] == [" padded ", "plain"]
    code, out, err = cli(capsys, "fit", path, "-y", "y", "-x", '"net, price')
    assert code == 2 and "unclosed double quote" in err and err.count("\n") == 1


# ---------------------------------------------------------------------- did you mean
def test_did_you_mean():
    names = ["price", "rooms", "y"]
    assert did_you_mean("prise", names) == " (did you mean 'price'?)"
    assert did_you_mean("Y", names) == " (did you mean 'y'?)"
    assert did_you_mean(" rooms", names) == " (did you mean 'rooms'?)"
    assert did_you_mean("zzzz", names) == ""


def test_near_miss_columns_in_library_messages(data, tmp_path):
    path, _, _ = data
    with pytest.raises(SchemaError, match=r"target 'Y' is not in the data \(did you mean 'y'\?\)"):
        streamreg.fit(path, target="Y")
    with pytest.raises(SchemaError, match=r"feature 'bb' .*did you mean 'b'\?"):
        streamreg.fit(path, target="y", features=["a", "bb"])
    with pytest.raises(SchemaError, match=r"weight 'wieght' is not in the data; columns"):
        streamreg.fit(path, target="y", weight="wieght")  # nothing close: no suggestion
    model = streamreg.fit(path, target="y", features=["a", "b"])
    renamed = tmp_path / "renamed.parquet"
    table = pq.read_table(path)
    pq.write_table(table.rename_columns(["id", "A", "b", "c", "y"]), renamed)
    with pytest.raises(SchemaError, match=r"feature 'a', .*did you mean 'A'\?"):
        predict_parquet(model, renamed, tmp_path / "p.parquet")
    frame = table.to_pandas().rename(columns={"a": "a_"})
    with pytest.raises(streamreg.InputError, match=r"no column 'a'.*did you mean 'a_'\?"):
        model.predict(frame)


def test_near_miss_column_on_the_command_line(capsys, data):
    path, _, _ = data
    code, out, err = cli(capsys, "fit", path, "-y", "yy")
    assert code == 2 and out == ""
    assert err == (
        "streamreg: error: target 'yy' is not in the data (did you mean 'y'?); "
        "columns are: id, a, b, c, y.\n"
    )
