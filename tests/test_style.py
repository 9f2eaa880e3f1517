"""Lint is part of the test suite: ``pytest`` runs ``ruff check`` over the code, the tests and
bench/.

The rules are those in pyproject.toml (pycodestyle, pyflakes, import order, bugbear, pyupgrade,
line length 100). A fresh clone installs ruff with the ``test`` extra, so what CI proves is what
a newcomer gets.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _ruff() -> list[str]:
    exe = shutil.which("ruff")
    if exe is not None:
        return [exe]
    pytest.importorskip("ruff")
    return [sys.executable, "-m", "ruff"]


def test_ruff_check_is_clean():
    result = subprocess.run(
        [*_ruff(), "check", "--no-cache", "streamreg", "tests", "bench"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_would_catch_a_problem(tmp_path):
    """The check above can fail: an unused import is reported."""
    bad = tmp_path / "bad.py"
    bad.write_text("import os\n")
    result = subprocess.run(
        [*_ruff(), "check", "--no-cache", "--isolated", "--select", "F401", str(bad)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1 and "F401" in result.stdout
