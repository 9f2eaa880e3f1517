"""Commands about saved models and the bundled examples: summary, plot, demo, version."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from .. import __version__
from .app import BATCH, DEBUG, JSON, QUIET, _run, app


@app.command()
def summary(
    model_path: Path = typer.Argument(
        ..., metavar="MODEL", help="A model JSON written by 'streamreg fit --out'."
    ),
    fmt: str = typer.Option(
        "text", "--format", help="text (statsmodels' layout), markdown or json."
    ),
    debug: bool = DEBUG,
) -> None:
    """Print the results table of a saved model: coefficients, standard errors, tests, fit \
statistics."""

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
        ..., "--out", "-o", help="The figure to write (atomically): PNG, or SVG for a .svg name."
    ),
    data: list[str] | None = typer.Option(
        None,
        "--data",
        help="Parquet files, directories or globs (with the target column): draw the four "
        "diagnostic panels of the fit over them in one pass (repeat for several inputs).",
    ),
    kind: str = typer.Option(
        "auto",
        "--kind",
        help="auto (diagnostics with --data; else the loss curve or fitted line when the model "
        "has one, else coefficients), diagnostics, coefficients, or loss.",
    ),
    fmt: str | None = typer.Option(None, "--format", help="png or svg (default: by the name)."),
    top: int = typer.Option(
        10, "--top", min=0, help="Rows to mark by Cook's distance, leverage and residual."
    ),
    batch_size: int | None = BATCH,
    quiet: bool = QUIET,
    debug: bool = DEBUG,
) -> None:
    """Draw a saved model: diagnostics of the fit over --data (residuals vs fitted, normal Q-Q, \
scale-location, leverage; memory flat in the rows), its coefficients with 95% intervals, or a \
gradient solver's loss curve (needs matplotlib).

    Examples: streamreg plot model.json --data data/ -o diag.png;
    streamreg plot model.json -o coef.svg --kind coefficients
    """

    def action():
        from ..errors import InputError
        from ..model.diagnostics.figures import coefficient_figure, diagnostic_figure
        from ..model.linear_model import load
        from ..plotting import plot_model

        kinds = ("auto", "diagnostics", "coefficients", "loss")
        if kind not in kinds:
            raise InputError(f"--kind must be one of {', '.join(kinds)}; got {kind!r}.")
        model = load(model_path)
        chosen = kind
        if chosen == "auto":
            one_line = model.n_features_in_ == 1 and model.coef_[0] == model.coef_[0]
            if data:
                chosen = "diagnostics"
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
    """Fit the bundled examples from the original article and compare with the truth."""

    def action():
        from ..demo import run_demo

        typer.echo(run_demo(data_dir, as_json=as_json))

    _run(debug, action)


@app.command()
def version() -> None:
    """Print the streamreg version."""
    typer.echo(__version__)
