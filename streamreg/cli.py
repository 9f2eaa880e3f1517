"""The ``streamreg`` command line: parse, call one library function, print.

Errors a user can cause are one sentence on stderr with exit code 2; an
internal failure is exit code 1; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import typer

from . import __version__
from .errors import StreamregError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Exact linear regression on Parquet data larger than memory, in one streaming pass.",
)

QUIET = typer.Option(False, "--quiet", "-q", help="No progress and no report, only errors.")
JSON = typer.Option(False, "--json", help="Print a machine-readable JSON report on stdout.")
DEBUG = typer.Option(False, "--debug", help="Show the traceback of a failure.")
BATCH = typer.Option(None, "--batch-size", min=1, help="Rows per record batch (default: about 16 MiB of float64).")


def _run(debug: bool, action: Callable[[], int | None]) -> None:
    try:
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
            f"streamreg: internal error: {type(exc).__name__}: {exc} (run again with --debug for the traceback).",
            err=True,
        )
        raise typer.Exit(1) from None
    if code:
        raise typer.Exit(code)


def _progress_enabled(quiet: bool, as_json: bool) -> bool | None:
    return False if quiet else None


@app.command()
def fit(
    sources: list[str] = typer.Argument(..., help="Parquet files, directories (recursive; key=value folders become columns) or globs."),
    target: str = typer.Option(..., "--target", "-y", help="The column to predict."),
    features: str | None = typer.Option(None, "--features", "-x", help="Comma-separated feature columns (default: every numeric column but target and weight)."),
    exclude: str | None = typer.Option(None, "--exclude", help="Comma-separated columns to leave out of the default features."),
    weight: str | None = typer.Option(None, "--weight", "-w", help="Column of non-negative weights (weighted least squares)."),
    no_intercept: bool = typer.Option(False, "--no-intercept", help="Fit without an intercept."),
    nulls: str = typer.Option("drop", "--nulls", help="Rows with a null/NaN in a used column: 'drop' (counted) or 'error'."),
    solver: str = typer.Option("auto", "--solver", help="auto (fast, re-reads with a better solver when ill-conditioned), cholesky, qr or exact."),
    cov: str | None = typer.Option(None, "--cov", help="Robust standard errors from a second pass: HC0, HC1, HC2, HC3 or cluster:COLUMN."),
    drop_collinear: bool = typer.Option(False, "--drop-collinear", help="Give collinear columns no coefficient instead of failing."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Write the model as JSON here (atomically)."),
    scheduler: str | None = typer.Option(None, "--scheduler", envvar="DASK_SCHEDULER_ADDRESS", help="Run on this Dask scheduler (tcp://host:8786); the workers read the files."),
    workers: int | None = typer.Option(None, "--workers", min=1, help="Start a local Dask cluster of this many worker processes."),
    timeout: float = typer.Option(10.0, "--timeout", min=0.1, help="Seconds to wait for the Dask scheduler."),
    batch_size: int | None = BATCH,
    quiet: bool = QUIET,
    as_json: bool = JSON,
    debug: bool = DEBUG,
) -> None:
    """Fit least squares over the data in one pass and report the coefficients."""

    def action():
        from .fitting import fit as fit_model
        from .report import fit_report

        started = time.monotonic()
        options = dict(target=target, features=features, exclude=exclude, weight=weight,
                       fit_intercept=not no_intercept, nulls=nulls, batch_size=batch_size,
                       solver=solver, drop_collinear=drop_collinear, cov_type=cov,
                       progress=_progress_enabled(quiet, as_json))
        if scheduler or workers:
            from .parallel import cluster_client

            if scheduler and workers:
                from .errors import InputError

                raise InputError("give either --scheduler or --workers, not both.")
            with cluster_client(scheduler, workers, timeout=timeout) as client:
                model = fit_model(sources, client=client, **options)
        else:
            model = fit_model(sources, **options)
        seconds = time.monotonic() - started
        if out is not None:
            model.save(out)
        if as_json:
            typer.echo(json.dumps(_json_summary(model, seconds, out), indent=1))
        elif not quiet:
            typer.echo(fit_report(model, seconds=seconds, saved_to=out))
        for warning in model.warnings_:
            if not as_json:
                typer.echo(f"streamreg: warning: {warning}", err=True)

    _run(debug, action)


@app.command()
def predict(
    model_path: Path = typer.Argument(..., metavar="MODEL", help="A model JSON written by 'streamreg fit --out'."),
    sources: list[str] = typer.Argument(..., help="Parquet files, directories or globs to predict for."),
    out: Path = typer.Option(..., "--out", "-o", help="The Parquet file to write (atomically)."),
    keep: str | None = typer.Option(None, "--keep", help="Comma-separated input columns to copy to the output (e.g. an id)."),
    column: str = typer.Option("prediction", "--column", help="Name of the prediction column."),
    batch_size: int | None = BATCH,
    quiet: bool = QUIET,
    as_json: bool = JSON,
    debug: bool = DEBUG,
) -> None:
    """Stream predictions for every input row into a Parquet file."""

    def action():
        from .model import load
        from .progress import Progress
        from .scoring import predict_parquet
        from .sources import Source

        model = load(model_path)
        src = Source.resolve(sources)
        bar = Progress(src.total_rows, src.total_bytes, label="predict",
                       enabled=_progress_enabled(quiet, as_json))
        started = time.monotonic()
        try:
            rows = predict_parquet(model, src, out, keep=keep, column=column, batch_size=batch_size,
                                   on_rows=bar.advance)
        finally:
            bar.close()
        seconds = time.monotonic() - started
        if as_json:
            typer.echo(json.dumps({"rows": rows, "out": str(out), "seconds": round(seconds, 3)}))
        elif not quiet:
            typer.echo(f"Wrote {rows:,} predictions to {out} in {seconds:.1f} s.")

    _run(debug, action)


@app.command()
def summary(
    model_path: Path = typer.Argument(..., metavar="MODEL", help="A model JSON written by 'streamreg fit --out'."),
    fmt: str = typer.Option("text", "--format", help="text (statsmodels' layout), markdown or json."),
    debug: bool = DEBUG,
) -> None:
    """Print the results table of a saved model: coefficients, standard errors, tests, fit statistics."""

    def action():
        from .model import load

        result = load(model_path).summary(fmt)
        typer.echo(json.dumps(result, indent=1, allow_nan=False) if fmt == "json" else result)

    _run(debug, action)


@app.command()
def evaluate(
    model_path: Path = typer.Argument(..., metavar="MODEL", help="A model JSON written by 'streamreg fit --out'."),
    sources: list[str] = typer.Argument(..., help="Held-out Parquet files, directories or globs (with the target column)."),
    batch_size: int | None = BATCH,
    quiet: bool = QUIET,
    as_json: bool = JSON,
    debug: bool = DEBUG,
) -> None:
    """Score a saved model on held-out data: n, RMSE, MAE, bias and R², in one streaming pass."""

    def action():
        from .evaluation import evaluate as score
        from .model import load
        from .progress import Progress
        from .sources import Source

        model = load(model_path)
        src = Source.resolve(sources)
        bar = Progress(src.total_rows, src.total_bytes, label="evaluate", enabled=_progress_enabled(quiet, as_json))
        try:
            result = score(model, src, batch_size=batch_size, on_rows=bar.advance)
        finally:
            bar.close()
        if as_json:
            typer.echo(json.dumps(result, indent=1))
        elif not quiet:
            dropped = f" ({result['rows_dropped']:,} rows dropped for missing values)" if result["rows_dropped"] else ""
            r2 = "n/a" if result["r2"] is None else f"{result['r2']:.6f}"
            typer.echo(f"n {result['n']:,}{dropped}\nRMSE {result['rmse']:.6g}\nMAE {result['mae']:.6g}\n"
                       f"bias {result['bias']:.6g}\nR² {r2}")

    _run(debug, action)


@app.command()
def inspect(
    sources: list[str] = typer.Argument(..., help="Parquet files, directories or globs."),
    as_json: bool = JSON,
    debug: bool = DEBUG,
) -> None:
    """Show files, row counts, column types and null counts (from the footers; no data is read)."""

    def action():
        from .report import inspect_report
        from .sources import Source

        info = Source.resolve(sources).describe()
        typer.echo(json.dumps(info, indent=1) if as_json else inspect_report(info))

    _run(debug, action)


@app.command()
def generate(
    out_dir: Path = typer.Argument(..., help="Directory to write part-NNNNN.parquet files and _truth.json into."),
    rows: int = typer.Option(1000, "--rows", "-n", min=1, help="Rows in all."),
    n_features: int | None = typer.Option(None, "--features", "-p", min=1, help="Number of features (default 3, or as many as --coef)."),
    coef: str | None = typer.Option(None, "--coef", help="Comma-separated true slopes (default 1, 2, …, p)."),
    intercept: float = typer.Option(1.0, "--intercept", help="True intercept b."),
    noise: float = typer.Option(1.0, "--noise", help="Standard deviation of the Gaussian noise."),
    means: str | None = typer.Option(None, "--means", help="Comma-separated feature means (default 0)."),
    sds: str | None = typer.Option(None, "--sds", help="Comma-separated feature standard deviations (default 1)."),
    offset: float = typer.Option(0.0, "--offset", help="Added to every feature's mean (e.g. 1e9, like timestamps)."),
    names: str | None = typer.Option(None, "--names", help="Comma-separated feature names (default x1, x2, …)."),
    target: str = typer.Option("y", "--target", help="Name of the target column."),
    files: int = typer.Option(1, "--files", min=1, help="Number of files to spread the rows over."),
    row_group_size: int = typer.Option(131072, "--row-group-size", min=1, help="Rows per Parquet row group."),
    seed: int = typer.Option(0, "--seed", help="Seed of the random generator."),
    quiet: bool = QUIET,
    as_json: bool = JSON,
    debug: bool = DEBUG,
) -> None:
    """Write synthetic data y = b + Σ βⱼxⱼ + noise, with the truth beside it."""

    def action():
        from .synthetic import generate as make

        truth = make(out_dir, rows=rows, coef=_floats(coef, "--coef"), n_features=n_features,
                     intercept=intercept, noise=noise, means=_floats(means, "--means"),
                     sds=_floats(sds, "--sds"), offset=offset, names=_names(names), target=target,
                     files=files, row_group_size=row_group_size, seed=seed)
        if as_json:
            typer.echo(json.dumps(truth, indent=1))
        elif not quiet:
            typer.echo(f"Wrote {rows:,} rows in {files} file(s) to {out_dir}; the truth is in {out_dir / '_truth.json'}.")

    _run(debug, action)


@app.command()
def demo(
    data_dir: Path | None = typer.Option(None, "--data", help="The examples folder (default: the repository's data/)."),
    as_json: bool = JSON,
    debug: bool = DEBUG,
) -> None:
    """Fit the bundled examples from the original article and compare with the truth."""

    def action():
        from .demo import run_demo

        typer.echo(run_demo(data_dir, as_json=as_json))

    _run(debug, action)


@app.command()
def version() -> None:
    """Print the streamreg version."""
    typer.echo(__version__)


def _floats(text: str | None, option: str):
    if text is None:
        return None
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        from .errors import InputError

        raise InputError(f"{option} expects comma-separated numbers; got {text!r}.") from None


def _names(text: str | None):
    return [v.strip() for v in text.split(",") if v.strip()] if text else None


def _json_summary(model, seconds: float, out) -> dict:
    data = model.to_dict()
    data.pop("state")
    data["coefficients"] = model.coefficients()
    data["seconds"] = round(seconds, 3)
    data["out"] = str(out) if out is not None else None
    return data


def main() -> None:
    app(prog_name="streamreg")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
