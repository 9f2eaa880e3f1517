"""Commands about saved models and the bundled examples: summary, plot, demo, version."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from .. import __version__
from .app import DEBUG, JSON, QUIET, _run, app
from .options import choice, choice_metavar

SUMMARY_FORMATS = ("text", "markdown", "json")


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
    out: Path = typer.Option(..., "--out", "-o", help="The PNG file to write (atomically)."),
    quiet: bool = QUIET,
    debug: bool = DEBUG,
) -> None:
    """Draw a saved model's loss curve (gradient solvers), its CV curve and coefficient path \
('streamreg cv'), or, for one feature, its fitted line, as a PNG (needs matplotlib).

    Examples:
      streamreg plot model.json -o model.png
    """

    def action():
        from ..model.linear_model import load
        from ..plotting import plot_cv, plot_model

        model = load(model_path)
        if model.cv_ is not None or (model.penalty_ is not None and model.n_features_in_ > 1):
            plot_cv(model, out)  # a penalty given, not chosen: says that 'streamreg cv' plots
        else:
            plot_model(model, out)
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
