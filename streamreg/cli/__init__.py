"""The ``streamreg`` command line: parse, call one library function, print.

One module per group of commands; ``app`` is the typer application, ``main`` the console
script.

Errors a user can cause are one sentence on stderr with exit code 2; an
internal failure is exit code 1; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import sys

from . import cv, data, fit, jobs, models  # noqa: F401 - each module registers its commands on app
from .app import app
from .command import run, use_house_commands

use_house_commands(app)


def main(args: list[str] | None = None) -> int:
    """The console script: run the command line and exit with its code (with ``args``: return
    the code instead, for tests)."""
    code = run(app, args)
    if args is None:
        sys.exit(code)
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
