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


def main() -> None:
    app(prog_name="streamreg")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
