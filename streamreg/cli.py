"""The ``streamreg`` command line: parse, call one library function, print.

Errors a user can cause are one sentence on stderr with exit code 2; an
internal failure is exit code 1; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import typer

from . import __version__
from .errors import InputError, StreamregError, command_line_wording

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
GRADIENT = "Gradient solvers (--solver sgd, newton, lbfgs)"


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
            f"streamreg: internal error: {type(exc).__name__}: {exc} (run again with --debug for the traceback).",
            err=True,
        )
        raise typer.Exit(1) from None
    if code:
        raise typer.Exit(code)


def _progress_enabled(quiet: bool, as_json: bool) -> bool | None:
    return False if quiet else None


def _stream(sources, label: str, quiet: bool, work: Callable):
    """Run ``work(source, on_rows)`` over the resolved inputs with a progress line on a terminal."""
    from .io.sources import Source
    from .progress import Progress

    src = Source.resolve(sources)
    bar = Progress(src.total_rows, src.total_bytes, label=label, enabled=_progress_enabled(quiet, False))
    try:
        return work(src, bar.advance)
    finally:
        bar.close()


@app.command()
def fit(
    sources: list[str] = typer.Argument(..., help="Parquet files, directories (recursive; key=value folders become columns) or globs."),
    target: str = typer.Option(..., "--target", "-y", help="The column to predict."),
    features: str | None = typer.Option(None, "--features", "-x", help="Comma-separated feature columns (default: every numeric column but target and weight)."),
    exclude: str | None = typer.Option(None, "--exclude", help="Comma-separated columns to leave out of the default features."),
    weight: str | None = typer.Option(None, "--weight", "-w", help="Column of non-negative weights (weighted least squares)."),
    no_intercept: bool = typer.Option(False, "--no-intercept", help="Fit without an intercept."),
    nulls: str = typer.Option("drop", "--nulls", help="Rows with a null/NaN in a used column: 'drop' (counted) or 'error'."),
    solver: str = typer.Option("auto", "--solver", help="auto (fast, re-reads with a better solver when ill-conditioned), cholesky, qr or exact; or a gradient solver: sgd, newton, lbfgs."),
    cov: str | None = typer.Option(None, "--cov", help="Robust standard errors from a second pass: HC0, HC1, HC2, HC3 or cluster:COLUMN."),
    drop_collinear: bool = typer.Option(False, "--drop-collinear", help="Give collinear columns no coefficient instead of failing."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Write the model as JSON here (atomically)."),
    scheduler: str | None = typer.Option(None, "--scheduler", envvar="DASK_SCHEDULER_ADDRESS", help="Run on this Dask scheduler (tcp://host:8786); the workers read the files."),
    workers: int | None = typer.Option(None, "--workers", min=1, help="Start a local Dask cluster of this many worker processes."),
    timeout: float = typer.Option(10.0, "--timeout", min=0.1, help="Seconds to wait for the Dask scheduler."),
    batch_size: int | None = BATCH,
    learning_rate: float | None = typer.Option(None, "--learning-rate", help="Step size on the standardized problem (default: automatic, from the first pass).", rich_help_panel=GRADIENT),
    schedule: str | None = typer.Option(None, "--schedule", help="Learning-rate schedule: constant (default), invscaling or step (halved every epoch).", rich_help_panel=GRADIENT),
    minibatch: int | None = typer.Option(None, "--minibatch", help="Rows per gradient step (default 256).", rich_help_panel=GRADIENT),
    epochs: int | None = typer.Option(None, "--epochs", help="sgd: at most this many passes of steps (default 10).", rich_help_panel=GRADIENT),
    max_iter: int | None = typer.Option(None, "--max-iter", help="lbfgs: at most this many iterations (default 200).", rich_help_panel=GRADIENT),
    seed: int | None = typer.Option(None, "--seed", help="Seed of the shuffles and the holdout split (default 0).", rich_help_panel=GRADIENT),
    momentum: float | None = typer.Option(None, "--momentum", help="Heavy-ball momentum, e.g. 0.9 (default 0).", rich_help_panel=GRADIENT),
    adam: bool = typer.Option(False, "--adam", help="Take Adam steps instead of plain SGD.", rich_help_panel=GRADIENT),
    l2: float | None = typer.Option(None, "--l2", help="Ridge penalty on the standardized slopes (default 0; never the intercept).", rich_help_panel=GRADIENT),
    no_average: bool = typer.Option(False, "--no-average", help="Report the last iterate, not the average over the latter half of the run.", rich_help_panel=GRADIENT),
    no_standardize: bool = typer.Option(False, "--no-standardize", help="Step on the raw columns (for comparison; offsets and scales then decide the speed).", rich_help_panel=GRADIENT),
    tol: float | None = typer.Option(None, "--tol", help="Converged when the gradient norm is at most this (default 1e-4 for sgd, 1e-6 otherwise).", rich_help_panel=GRADIENT),
    loss_rtol: float | None = typer.Option(None, "--loss-rtol", help="Also converged when the loss changes by at most this, relatively.", rich_help_panel=GRADIENT),
    holdout: float | None = typer.Option(None, "--holdout", help="Fraction of rows held out (seeded) for early stopping (default 0).", rich_help_panel=GRADIENT),
    patience: int | None = typer.Option(None, "--patience", help="Epochs without held-out improvement before stopping (default 3).", rich_help_panel=GRADIENT),
    history: Path | None = typer.Option(None, "--history", help="Write the loss history (one row per epoch or iteration) here as CSV.", rich_help_panel=GRADIENT),
    step_history: Path | None = typer.Option(None, "--step-history", help="sgd: record every step's minibatch loss and write them here as CSV.", rich_help_panel=GRADIENT),
    quiet: bool = QUIET,
    as_json: bool = JSON,
    debug: bool = DEBUG,
) -> None:
    """Fit least squares over the data in one pass and report the coefficients."""

    def action():
        from .fitting import fit as fit_model
        from .report import fit_report

        started = time.monotonic()
        gradient = _gradient_options(solver, learning_rate=learning_rate, schedule=schedule,
                                     minibatch=minibatch, epochs=epochs, max_iter=max_iter, seed=seed,
                                     momentum=momentum, optimizer="adam" if adam else None, l2=l2,
                                     average=False if no_average else None,
                                     standardize=False if no_standardize else None, tol=tol,
                                     loss_rtol=loss_rtol, holdout=holdout, patience=patience,
                                     record_steps=True if step_history else None)
        _check_history_paths(solver, history, step_history)
        options = dict(target=target, features=features, exclude=exclude, weight=weight,
                       fit_intercept=not no_intercept, nulls=nulls, batch_size=batch_size,
                       solver=solver, drop_collinear=drop_collinear, cov_type=cov,
                       progress=_progress_enabled(quiet, as_json), sgd=gradient)
        if scheduler or workers:
            from .engine.dask_runner import cluster_client

            if scheduler and workers:
                raise InputError("give either --scheduler or --workers, not both.")
            with cluster_client(scheduler, workers, timeout=timeout) as client:
                model = fit_model(sources, client=client, **options)
        else:
            model = fit_model(sources, **options)
        seconds = time.monotonic() - started
        if out is not None:
            model.save(out)
        if history is not None or step_history is not None:
            from .io.atomic import write_text_atomic
            from .report import history_csv

            if history is not None:
                write_text_atomic(history, history_csv(model))
            if step_history is not None:
                write_text_atomic(step_history, history_csv(model, steps=True))
        if as_json:
            typer.echo(json.dumps(_json_summary(model, seconds, out), indent=1))
        elif not quiet:
            from .report import optimizer_line

            report = fit_report(model, seconds=seconds, saved_to=out)
            line = optimizer_line(model)
            typer.echo(report if line is None else f"{report}\n{line}")
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
        from .model.linear_model import load
        from .prediction import predict_parquet

        model = load(model_path)
        started = time.monotonic()
        rows = _stream(sources, "predict", quiet, lambda src, on_rows: predict_parquet(
            model, src, out, keep=keep, column=column, batch_size=batch_size, on_rows=on_rows))
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
        from .model.linear_model import load

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
        from .model.linear_model import load

        model = load(model_path)
        result = _stream(sources, "evaluate", quiet,
                         lambda src, on_rows: score(model, src, batch_size=batch_size, on_rows=on_rows))
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
        from .io.sources import Source
        from .report import inspect_report

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
def plot(
    model_path: Path = typer.Argument(..., metavar="MODEL", help="A model JSON written by 'streamreg fit --out'."),
    out: Path = typer.Option(..., "--out", "-o", help="The PNG file to write (atomically)."),
    quiet: bool = QUIET,
    debug: bool = DEBUG,
) -> None:
    """Draw a saved model's loss curve (gradient solvers) and, for one feature, its fitted line, as a PNG (needs matplotlib)."""

    def action():
        from .model.linear_model import load
        from .plotting import plot_model

        plot_model(load(model_path), out)
        if not quiet:
            typer.echo(f"Wrote {out}.")

    _run(debug, action)


@app.command()
def version() -> None:
    """Print the streamreg version."""
    typer.echo(__version__)


@app.command("run")
def run_job_command(
    job_file: Path = typer.Argument(..., metavar="JOB", help="A job file (TOML); 'streamreg job init' writes an example."),
    dry_run: bool = typer.Option(False, "--dry-run", help="List what would be ingested, replaced and expired; write nothing."),
    on_change: str | None = typer.Option(None, "--on-change", help="A file that changed since it was ingested: error (default) or replace (subtract its old rows, re-ingest)."),
    window: str | None = typer.Option(None, "--window", help="Keep only files from this recent period, e.g. 30d (units s, m, h, d, w); older ones are subtracted."),
    watch: bool = typer.Option(False, "--watch", help="Stay up: look for new files every --interval and publish each new model version."),
    interval: str | None = typer.Option(None, "--interval", help="With --watch: how often to look for new files, e.g. 60s (default: the job's run.interval)."),
    log_format: str = typer.Option("text", "--log-format", help="Log lines on stderr: text or json (JSON lines)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Log only warnings and errors; print no result line."),
    debug: bool = DEBUG,
) -> None:
    """Run a batch job: fold in only the files not seen yet, refit, publish the model.

    Exit codes: 0 done (or nothing new), 2 bad job or input, 3 another run holds the lock, 1 internal error."""

    def action():
        from .jobs import JobLog, run_job, watch_job
        from .jobs import load_job
        from .report import dry_run_report, job_report

        log = JobLog(log_format, quiet)
        try:
            job = load_job(job_file).with_options(on_change=on_change, window=window, interval=interval)
            if watch and dry_run:
                raise InputError("--dry-run and --watch do not go together.")
            stop = threading.Event()
            with _graceful_stop(stop):
                if watch:
                    watch_job(job, log=log, stop=stop)
                    return 0
                result = run_job(job, dry_run=dry_run, log=log, stop=stop)
        except StreamregError as exc:
            if log_format != "json" or debug:
                raise
            log.error("failed", str(exc), exit_code=exc.exit_code)
            return exc.exit_code
        if log_format == "json":
            typer.echo(json.dumps(result.to_dict()))
        elif dry_run:
            typer.echo(dry_run_report(result))
        elif not quiet:
            typer.echo(job_report(result))
        return 143 if result.status == "stopped" else 0

    _run(debug, action)


job_app = typer.Typer(no_args_is_help=True, help="Batch job files: write an example.")
app.add_typer(job_app, name="job")


@job_app.command("init")
def job_init(
    path: Path = typer.Argument(Path("job.toml"), help="Where to write the example job ('-' for stdout)."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing file."),
    debug: bool = DEBUG,
) -> None:
    """Write a commented example job file for 'streamreg run'."""

    def action():
        from .jobs.spec import EXAMPLE

        if str(path) == "-":
            typer.echo(EXAMPLE, nl=False)
            return
        if path.exists() and not force:
            raise InputError(f"{path} exists; pass --force to overwrite it.")
        from .io.atomic import write_text_atomic

        write_text_atomic(path, EXAMPLE)
        typer.echo(f"Wrote {path}; edit inputs, target and outputs, then: streamreg run {path} --dry-run")

    _run(debug, action)


class _graceful_stop:
    """SIGTERM/SIGINT set ``stop`` (the job checkpoints and ends); a second one ends at once."""

    def __init__(self, stop: threading.Event):
        self.stop, self.previous = stop, {}

    def _handle(self, signum, frame):
        if self.stop.is_set():
            raise KeyboardInterrupt
        self.stop.set()

    def __enter__(self):
        import signal

        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                self.previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc):
        import signal

        for sig, handler in self.previous.items():
            signal.signal(sig, handler)
        return False


def _floats(text: str | None, option: str):
    if text is None:
        return None
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise InputError(f"{option} expects comma-separated numbers; got {text!r}.") from None


def _gradient_options(solver: str, **given) -> dict | None:
    """The gradient solvers' options that were given on the command line (None if none were)."""
    from .solvers import GRADIENT_SOLVERS

    given = {name: value for name, value in given.items() if value is not None}
    if not given:
        return None
    if solver not in GRADIENT_SOLVERS:
        flag = {"optimizer": "adam", "average": "no-average", "standardize": "no-standardize",
                "record_steps": "step-history"}.get(next(iter(given)), next(iter(given)).replace("_", "-"))
        raise InputError(f"--{flag} applies to the gradient solvers (--solver {', '.join(GRADIENT_SOLVERS)}); "
                         f"the solver is {solver!r}.")
    return given


def _check_history_paths(solver: str, history: Path | None, step_history: Path | None) -> None:
    from .solvers import GRADIENT_SOLVERS

    if history is not None and solver not in GRADIENT_SOLVERS:
        raise InputError(f"--history needs a gradient solver (--solver {', '.join(GRADIENT_SOLVERS)}); "
                         f"solver {solver!r} keeps no loss history.")
    if step_history is not None and solver != "sgd":
        raise InputError(f"--step-history needs --solver sgd; solver {solver!r} takes no minibatch steps.")
    for path in (history, step_history):
        if path is not None and not (path.parent if str(path.parent) else Path(".")).is_dir():
            raise InputError(f"cannot write {path}: the directory {path.parent} does not exist.")


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
