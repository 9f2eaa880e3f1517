"""Commands about saved models and the bundled examples: summary, plot, demo, version."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from .. import __version__
from .app import BATCH, DEBUG, JSON, QUIET, _run, app
from .options import choice, choice_metavar

SUMMARY_FORMATS = ("text", "markdown", "json")
PLOT_KINDS = ("auto", "diagnostics", "coefficients", "loss", "cv")
FIGURE_FORMATS = ("png", "svg")


@app.command()
def summary(
    model_path: Path = typer.Argument(
        ..., metavar="MODEL", help="A model JSON written by 'streamreg fit --out'."
    ),
    fmt: str = typer.Option(
        "text",
        "--format",
        metavar=choice_metavar(SUMMARY_FORMATS),
        callback=choice(SUMMARY_FORMATS),
        help="text (statsmodels' layout), markdown or json.",
    ),
    debug: bool = DEBUG,
) -> None:
    """Print the results table of a saved model: coefficients, standard errors, tests, fit \
statistics.

    Examples:
      streamreg summary model.json
      streamreg summary model.json --format markdown > results.md
    """

    def action():
        from ..model.linear_model import load

        result = load(model_path).summary(fmt)
        typer.echo(json.dumps(result, indent=1, allow_nan=False) if fmt == "json" else result)

    _run(debug, action)


@app.command()
def plot(
    model_path: Path = typer.Argument(
        ..., metavar="MODEL", help="A model JSON written by 'streamreg fit --out'."
    ),
    out: Path = typer.Option(
        ...,
        "--out",
        "-o",
        metavar="FILE",
        help="The figure to write (atomically): PNG, or SVG for a .svg name.",
    ),
    data: list[str] | None = typer.Option(
        None,
        "--data",
        metavar="PATHS",
        help="Parquet files, directories or globs (with the target column): draw the four "
        "diagnostic panels of the fit over them in one pass (repeat for several inputs).",
    ),
    kind: str = typer.Option(
        "auto",
        "--kind",
        metavar=choice_metavar(PLOT_KINDS),
        callback=choice(PLOT_KINDS),
        help="auto (diagnostics with --data; else a penalized model's CV curve, the loss curve "
        "or fitted line when the model has one, else coefficients), diagnostics, "
        "coefficients, loss, or cv.",
    ),
    fmt: str | None = typer.Option(
        None,
        "--format",
        metavar=choice_metavar(FIGURE_FORMATS),
        callback=choice(FIGURE_FORMATS),
        help="png or svg (default: by the name).",
    ),
    top: int = typer.Option(
        10,
        "--top",
        min=0,
        metavar="N",
        help="Rows to mark by Cook's distance, leverage and residual.",
    ),
    batch_size: int | None = BATCH,
    quiet: bool = QUIET,
    debug: bool = DEBUG,
) -> None:
    """Draw a saved model: diagnostics of the fit over --data (residuals vs fitted, normal Q-Q, \
scale-location, leverage; memory flat in the rows), its coefficients with 95% intervals, a \
gradient solver's loss curve (or, for one feature, its fitted line), or the CV curve and \
coefficient path of a penalized model ('streamreg cv') (needs matplotlib).

    Examples:
      streamreg plot model.json --data data/ -o diag.png
      streamreg plot model.json -o coef.svg --kind coefficients
      streamreg plot model.json -o model.png
    """

    def action():
        from ..errors import InputError
        from ..model.diagnostics.figures import coefficient_figure, diagnostic_figure
        from ..model.linear_model import load
        from ..plotting import plot_cv, plot_model

        model = load(model_path)
        chosen = kind
        if chosen == "auto":
            one_line = model.n_features_in_ == 1 and model.coef_[0] == model.coef_[0]
            penalized_path = model.cv_ is not None or (
                model.penalty_ is not None and model.n_features_in_ > 1
            )
            if data:
                chosen = "diagnostics"
            elif penalized_path:
                chosen = "cv"  # a penalty given, not chosen: plot_cv says that 'streamreg cv' plots
            else:
                chosen = "loss" if model.optimizer_ is not None or one_line else "coefficients"
        if chosen == "diagnostics":
            if not data:
                raise InputError("--kind diagnostics needs the data: --data DIR.")
            diagnostic_figure(
                model,
                list(data),
                out=out,
                format=fmt,
                batch_size=batch_size,
                top=top,
                progress=False if quiet else None,
            )
        elif chosen == "coefficients":
            coefficient_figure(model, out=out, format=fmt)
        elif chosen == "cv":
            plot_cv(model, out, format=fmt)
        else:
            plot_model(model, out, format=fmt)
        if not quiet:
            typer.echo(f"Wrote {out}.")

    _run(debug, action)


@app.command()
def demo(
    data_dir: Path | None = typer.Option(
        None, "--data", help="The examples folder (default: the repository's data/)."
    ),
    as_json: bool = JSON,
    debug: bool = DEBUG,
) -> None:
    """Fit the bundled examples from the original article and compare with the truth.

    Examples:
      streamreg demo
      streamreg demo --data path/to/data --json
    """

    def action():
        from ..demo import run_demo

        typer.echo(run_demo(data_dir, as_json=as_json))

    _run(debug, action)


@app.command()
def version() -> None:
    """Print the streamreg version (as does 'streamreg --version').

    Examples:
      streamreg version
    """
    typer.echo(__version__)
