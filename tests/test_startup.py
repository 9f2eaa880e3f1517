"""Start-up: ``import streamreg`` and the command line's help pages load no heavy dependency.

Each probe runs in a fresh interpreter and reports which of the heavy modules are in
``sys.modules`` afterwards; the controls show that the same probe sees them when they are
really needed (a fit, scikit-learn's estimator). No wall-clock assertion here: the times
are measured by ``bench/bench_startup.py``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import streamreg
from streamreg import choices, solvers
from streamreg.design import NULL_POLICIES
from streamreg.jobs.spec import ON_CHANGE
from streamreg.model.penalty import SELECTIONS
from streamreg.model.robust import ROBUST_TYPES
from streamreg.solvers.gradient.options import SCHEDULES

ROOT = Path(__file__).resolve().parents[1]
# What ``import streamreg`` must not load (the list).
LIBRARY_HEAVY = ("scipy", "pandas", "dask", "typer")
# What a help page must not load: the numerical stack, rich (the progress line), and pydantic,
# which typer imports to check a parameter's value unless it takes its shortcut for booleans.
HELP_HEAVY = (
    "scipy", "pandas", "dask", "distributed", "sklearn", "numpy", "pyarrow", "pydantic", "rich",
)  # fmt: skip

CLI_PROBE = """
import json, sys
from streamreg.cli import main
code = main(sys.argv[2:])
heavy = json.loads(sys.argv[1])
print(json.dumps({"code": code, "loaded": sorted(m for m in heavy if m in sys.modules)}))
"""


def _python(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, env=env, cwd=ROOT, timeout=300
    )


def _cli(*argv: str, heavy=HELP_HEAVY) -> tuple[dict, str]:
    """Run the console script's ``main`` on ``argv``; (its exit code and the heavy modules it
    loaded, its output before that report)."""
    done = _python("-c", CLI_PROBE, json.dumps(heavy), *argv)
    assert done.returncode == 0, done.stderr
    *output, report = done.stdout.rstrip("\n").split("\n")
    return json.loads(report), "\n".join(output)


def test_import_streamreg_loads_neither_scipy_pandas_dask_nor_typer():
    probe = (
        "import streamreg, sys; "
        'print(sorted(m for m in ("scipy","pandas","dask","typer") if m in sys.modules))'
    )
    done = _python("-c", probe)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_the_import_probe_sees_a_lazy_name_load_its_dependencies():
    """Control: asking for the scikit-learn estimator imports it, and scipy with it."""
    probe = (
        "import streamreg, sys; streamreg.StreamingLinearRegression; "
        f"print(sorted(m for m in {LIBRARY_HEAVY!r} if m in sys.modules))"
    )
    done = _python("-c", probe)
    assert done.returncode == 0, done.stderr
    assert "scipy" in done.stdout


# scikit-learn imports scipy: its estimators are the modules that may.
SKLEARN_MODULES = ("streamreg.estimator", "streamreg.penalized_estimators")


def test_no_module_of_streamreg_imports_scipy_pandas_dask_or_pyarrow_dataset():
    """Each of them is imported where it is used (a solve, a scan, cluster labels), so that
    loading a model or a help page does not pay for them."""
    package = ROOT / "streamreg"
    modules = sorted(
        ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        for path in package.rglob("*.py")
    )
    modules = [m for m in modules if m not in SKLEARN_MODULES]
    heavy = ("scipy", "pandas", "dask", "distributed", "pyarrow.dataset")
    probe = (
        "import importlib, json, sys\n"
        "for name in sys.argv[1:]:\n"
        "    importlib.import_module(name)\n"
        f"    loaded = [m for m in {heavy!r} if m in sys.modules]\n"
        "    if loaded:\n"
        "        print(json.dumps([name, loaded])); break\n"
    )
    done = _python("-c", probe, *modules)
    assert done.returncode == 0, done.stderr
    assert len(modules) > 50 and done.stdout == "", f"[module, what it loaded]: {done.stdout}"


COMMANDS = [
    "fit", "predict", "evaluate", "summary", "inspect", "generate", "run", "cv", "plot", "demo",
    "version",
]  # fmt: skip


@pytest.mark.parametrize(
    "argv",
    [["--help"], ["version"], ["--version"], ["job", "--help"], ["job", "init", "--help"]]
    + [[command, "--help"] for command in COMMANDS],
    ids=" ".join,
)
def test_help_and_version_load_no_heavy_dependency(argv):
    report, output = _cli(*argv)
    assert report == {"code": 0, "loaded": []}
    if argv[-1] == "--help":
        assert output.startswith(f"Usage: streamreg {' '.join(argv[:-1])}".rstrip())
    else:
        assert output == streamreg.__version__


def test_the_help_probe_sees_a_command_load_the_machinery(tmp_path):
    """Control: a fit (here of a folder with no data, an input error) imports numpy and pyarrow."""
    report, _ = _cli("fit", str(tmp_path), "--target", "y")
    assert report["code"] == 2
    assert {"numpy", "pyarrow"} <= set(report["loaded"])


def test_every_public_name_imports_and_dir_lists_them():
    probe = """
import sys, streamreg
listed = set(dir(streamreg))
from streamreg import *
print(sorted(set(streamreg.__all__) - listed), len({n: globals()[n] for n in streamreg.__all__}))
"""
    done = _python("-c", probe)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["[]", str(len(streamreg.__all__))]


def test_streamreg_cv_stays_the_function_when_its_submodule_is_imported_first():
    """The import system binds a submodule on its package: ``streamreg.cv`` (the module)."""
    probe = (
        "import streamreg.cv; from streamreg import cv; "
        "print(type(streamreg.cv).__name__, type(cv).__name__)"
    )
    done = _python("-c", probe)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["function", "function"]


@pytest.mark.parametrize("name", streamreg.__all__)
def test_a_lazy_public_name_is_the_object_of_its_module(name):
    value = getattr(streamreg, name)
    home = getattr(value, "__module__", None)
    if home is not None and home.startswith("streamreg."):
        assert getattr(sys.modules[home], name) is value


def test_an_unknown_attribute_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'fitt'"):
        streamreg.fitt  # noqa: B018


def test_the_command_lines_choices_are_the_librarys():
    assert choices.SOLVER_NAMES == solvers.SOLVER_NAMES
    assert choices.PENALIZED_STATE_SOLVERS == solvers.PENALIZED_STATE_SOLVERS
    assert (NULL_POLICIES, ROBUST_TYPES, SCHEDULES, SELECTIONS, ON_CHANGE) == (
        choices.NULL_POLICIES,
        choices.ROBUST_TYPES,
        choices.SCHEDULES,
        choices.SELECTIONS,
        choices.ON_CHANGE,
    )
