"""The command line's shared parts: the typer app, the common options, and one error policy.

Errors a user can cause are one sentence on stderr with exit code 2 (usage errors of the
parser too, see :mod:`streamreg.cli.command`); an internal failure is exit code 1;
``--debug`` shows the traceback instead.
"""

from __future__ import annotations

from collections.abc import Callable

import typer

from .. import __version__
from ..errors import InputError, StreamregError, command_line_wording
from .command import HELP_OPTION_NAMES, Group
from .options import choice, choice_metavar, column_names

app = typer.Typer(
    cls=Group,
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain help pages, the same in a pipe as on a terminal
    context_settings={"help_option_names": HELP_OPTION_NAMES},
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(__version__)
        raise typer.Exit()


@app.callback()
def _streamreg(
    version: bool = typer.Option(
        False,
        "--version",
        "-V",
        is_eager=True,
        callback=_print_version,
        help="Print the version and exit.",
    ),
) -> None:
    """Exact linear regression on Parquet data larger than memory, in one streaming pass.

    Examples:
      streamreg generate demo/ --rows 100000 --features 3
      streamreg fit demo/ -y y -o model.json
      streamreg predict model.json new/ -o predictions.parquet
    """


QUIET = typer.Option(False, "--quiet", "-q", help="No progress and no report, only errors.")
JSON = typer.Option(False, "--json", help="Print a machine-readable JSON report on stdout.")
DEBUG = typer.Option(False, "--debug", help="Show the traceback of a failure.")
BATCH = typer.Option(
    None,
    "--batch-size",
    min=1,
    metavar="ROWS",
    help="Rows per record batch (default: about 16 MiB of float64).",
)
GRADIENT = "Gradient solvers (--solver sgd, newton, lbfgs)"
MODEL = "Model language (formulas, categories, fixed effects, several targets)"
# streamreg.design.levels.UNSEEN_POLICIES (not imported here: the command line starts fast)
UNSEEN_CHOICES = ("error", "reference")
UNSEEN = typer.Option(
    "error",
    "--unseen",
    metavar=choice_metavar(UNSEEN_CHOICES),
    callback=choice(UNSEEN_CHOICES),
    help=(
        "A category level the model does not know: 'error' (names the column, level, file and "
        "row group) or 'reference' (predict with the reference level and count the rows)."
    ),
)
PENALTY = "Penalized fits: ridge, lasso, elastic net"


def _run(debug: bool, action: Callable[[], int | None]) -> None:
    try:
        with command_line_wording():  # messages name flags, not Python parameters
            code = action()
    except StreamregError as exc:
        if debug:
            raise
        typer.echo(f"streamreg: error: {exc}", err=True)
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt:
        typer.echo("streamreg: interrupted; nothing was written.", err=True)
        raise typer.Exit(130) from None
    except Exception as exc:  # noqa: BLE001 - the last line of defence for the user
        if debug:
            raise
        typer.echo(
            f"streamreg: internal error: {type(exc).__name__}: {exc} (run again with --debug for "
            "the traceback).",
            err=True,
        )
        raise typer.Exit(1) from None
    if code:
        raise typer.Exit(code)


def _progress_enabled(quiet: bool, as_json: bool) -> bool | None:
    return False if quiet else None


def _stream(sources, label: str, quiet: bool, work: Callable):
    """Run ``work(source, on_rows)`` over the resolved inputs with a progress line on a terminal."""
    from ..io.sources import Source
    from ..progress import Progress

    src = Source.resolve(sources)
    bar = Progress(
        src.total_rows, src.total_bytes, label=label, enabled=_progress_enabled(quiet, False)
    )
    try:
        return work(src, bar.advance)
    finally:
        bar.close()


def _floats(text: str | None, option: str):
    if text is None:
        return None
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise InputError(f"{option} expects comma-separated numbers; got {text!r}.") from None


def _names(values, option: str = "--names"):
    return column_names(values, option)
