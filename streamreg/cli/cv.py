"""``streamreg cv``: ridge, lasso and elastic-net paths cross-validated in one pass."""

from __future__ import annotations

import json
import time
from pathlib import Path

import typer

from ..choices import NULL_POLICIES, PENALIZED_STATE_SOLVERS, SELECTIONS
from ..errors import InputError
from .app import BATCH, DEBUG, JSON, MODEL, QUIET, _floats, _progress_enabled, _run, app
from .options import COLUMN_LIST_HELP, _references, choice, choice_metavar, column_names

FOLDS = "Folds"
PATH = "The alpha path"


@app.command()
def cv(
    sources: list[str] = typer.Argument(
        ...,
        help="Parquet files, directories (recursive; key=value folders become columns) or globs.",
    ),
    target: str | None = typer.Option(
        None, "--target", "-y", metavar="COLUMN", help="The column to predict (or --formula)."
    ),
    features: list[str] | None = typer.Option(
        None,
        "--features",
        "-x",
        metavar="COLUMNS",
        help="Feature columns (default: every numeric column but target, weight and the fold "
        "column or key). " + COLUMN_LIST_HELP,
    ),
    exclude: list[str] | None = typer.Option(
        None,
        "--exclude",
        metavar="COLUMNS",
        help="Columns to leave out of the default features. " + COLUMN_LIST_HELP,
    ),
    formula: str | None = typer.Option(
        None,
        "--formula",
        "-f",
        metavar="FORMULA",
        help="A formula instead of --target/--features, e.g. 'y ~ x1 + log(x2) + C(region)' "
        "(one target; no absorbed factor, no center/scale terms).",
        rich_help_panel=MODEL,
    ),
    categorical: list[str] | None = typer.Option(
        None,
        "--categorical",
        "-c",
        metavar="COLUMNS",
        help="Columns to treatment-code as categories (their indicators are penalized too). "
        + COLUMN_LIST_HELP,
        rich_help_panel=MODEL,
    ),
    reference: list[str] | None = typer.Option(
        None,
        "--reference",
        metavar="COLUMN=LEVEL",
        help="COLUMN=LEVEL: the reference level of a category (default: the first, sorted).",
        rich_help_panel=MODEL,
    ),
    max_levels: int = typer.Option(
        1000,
        "--max-levels",
        min=1,
        metavar="N",
        help="Refuse a category with more levels than this.",
        rich_help_panel=MODEL,
    ),
    weight: str | None = typer.Option(
        None,
        "--weight",
        "-w",
        metavar="COLUMN",
        help="Column of non-negative weights (scikit-learn's sample_weight).",
    ),
    no_intercept: bool = typer.Option(False, "--no-intercept", help="Fit without an intercept."),
    nulls: str = typer.Option(
        "drop",
        "--nulls",
        metavar=choice_metavar(NULL_POLICIES),
        callback=choice(NULL_POLICIES),
        help="Rows with a null/NaN in a used column: 'drop' (counted) or 'error'.",
    ),
    l1_ratio: str = typer.Option(
        "1",
        "--l1-ratio",
        metavar="RATIOS",
        help="0 ridge, 1 lasso (default), in between the elastic net; several comma-separated "
        "values are cross-validated from the same pass.",
        rich_help_panel=PATH,
    ),
    alphas: int | None = typer.Option(
        None,
        "--alphas",
        metavar="N",
        help="How many alphas (default 100), log-spaced from the smallest that zeroes every "
        "coefficient down to --eps times it.",
        rich_help_panel=PATH,
    ),
    alpha_grid: str | None = typer.Option(
        None,
        "--alpha-grid",
        metavar="ALPHAS",
        help="The alphas themselves, comma-separated (instead of --alphas).",
        rich_help_panel=PATH,
    ),
    eps: float = typer.Option(
        1e-3,
        "--eps",
        metavar="EPS",
        help="Smallest alpha / largest alpha of the grid.",
        rich_help_panel=PATH,
    ),
    standardize: bool = typer.Option(
        False,
        "--standardize",
        help="Penalize the standardized coefficients (glmnet's default); reported in the "
        "original units.",
        rich_help_panel=PATH,
    ),
    select: str = typer.Option(
        "min",
        "--select",
        metavar=choice_metavar(SELECTIONS),
        callback=choice(SELECTIONS),
        help="The alpha to refit: 'min' (smallest mean CV error) or '1se' (the largest alpha "
        "within one standard error of it).",
        rich_help_panel=PATH,
    ),
    folds: int = typer.Option(
        5,
        "--folds",
        metavar="K",
        help="Number of folds (with --fold-column: the number of its distinct labels).",
        rich_help_panel=FOLDS,
    ),
    fold_key: str | None = typer.Option(
        None,
        "--fold-key",
        metavar="COLUMN",
        help="Hash this column into the folds: equal keys share a fold (e.g. a customer id).",
        rich_help_panel=FOLDS,
    ),
    fold_column: str | None = typer.Option(
        None,
        "--fold-column",
        metavar="COLUMN",
        help="This column holds each row's fold label (integers or strings).",
        rich_help_panel=FOLDS,
    ),
    seed: int = typer.Option(
        0,
        "--seed",
        metavar="N",
        min=0,
        help="Changes the hashed fold assignment.",
        rich_help_panel=FOLDS,
    ),
    solver: str = typer.Option(
        "auto",
        "--solver",
        metavar=choice_metavar(PENALIZED_STATE_SOLVERS),
        callback=choice(PENALIZED_STATE_SOLVERS),
        help="The fold states: auto or cholesky (moments), qr, or exact (bit-identical however "
        "the data are split).",
    ),
    tol: float = typer.Option(
        1e-10, "--tol", metavar="TOL", help="Coordinate descent's duality-gap tolerance."
    ),
    max_iter: int = typer.Option(
        100_000, "--max-iter", metavar="N", help="Coordinate descent's sweeps per alpha, at most."
    ),
    out: Path | None = typer.Option(
        None,
        "--out",
        "-o",
        metavar="FILE",
        help="Write the refit model, with its CV path, as JSON here.",
    ),
    plot: Path | None = typer.Option(
        None,
        "--plot",
        metavar="FILE",
        help="Draw the CV curve (error bars) and the coefficient path as a PNG here (matplotlib).",
    ),
    path_csv: Path | None = typer.Option(
        None,
        "--path-csv",
        metavar="FILE",
        help="Write the whole path table (every alpha) as CSV here.",
    ),
    rows: int = typer.Option(
        25,
        "--rows",
        metavar="N",
        min=0,
        help="Rows of the path table to print per l1 ratio (0: all).",
    ),
    scheduler: str | None = typer.Option(
        None,
        "--scheduler",
        metavar="ADDRESS",
        envvar="DASK_SCHEDULER_ADDRESS",
        help="Run on this Dask scheduler (tcp://host:8786); the workers read the files.",
    ),
    workers: int | None = typer.Option(
        None,
        "--workers",
        metavar="N",
        min=1,
        help="Start a local Dask cluster of this many worker processes.",
    ),
    timeout: float = typer.Option(
        10.0,
        "--timeout",
        min=0.1,
        metavar="SECONDS",
        help="Seconds to wait for the Dask scheduler to answer.",
    ),
    stall_timeout: float = typer.Option(
        300.0,
        "--stall-timeout",
        min=0.1,
        metavar="SECONDS",
        help=(
            "With --scheduler/--workers: give up when no task finishes for this many seconds "
            "(a cluster without workers never finishes one)."
        ),
    ),
    batch_size: int | None = BATCH,
    quiet: bool = QUIET,
    as_json: bool = JSON,
    debug: bool = DEBUG,
) -> None:
    """Cross-validate ridge, lasso or elastic-net paths in ONE pass over the data: one state per
    fold, every fold's path solved from the others' states; print the path table, the chosen
    and one-SE alphas, and the refit on all rows.

    Examples:
      streamreg cv data/ -y price --l1-ratio 0.5 --folds 5 -o model.json --plot cv.png
      streamreg cv data/ -y y --l1-ratio 0.2,0.5,1 --fold-key customer_id --select 1se
      streamreg cv data/ -f "y ~ x1 + x2 + C(region)" --l1-ratio 0 --fold-column fold
    """

    def action():
        import warnings

        from ..cv import cv as cross_validate
        from ..errors import ConvergenceWarning
        from ..penalty_report import cv_report
        from ..penalty_report import path_csv as path_text

        started = time.monotonic()
        if alphas is not None and alpha_grid is not None:
            raise InputError("give --alphas (a count) or --alpha-grid (the values), not both.")
        grid = _floats(alpha_grid, "--alpha-grid") if alpha_grid is not None else None
        if alpha_grid is not None and not grid:
            raise InputError("--alpha-grid names no alpha; give comma-separated numbers.")
        ratios = _floats(l1_ratio, "--l1-ratio")
        if not ratios:
            raise InputError("--l1-ratio names no value; give numbers from 0 to 1.")
        from ..io.atomic import check_writable

        for path, what in ((out, "the model (--out)"), (plot, "the plot (--plot)"),
                           (path_csv, "the path table (--path-csv)")):  # fmt: skip
            if path is not None:
                check_writable(path, what)
        if plot is not None:
            _check_matplotlib()
        if target is None and formula is None:
            raise InputError("give the column to predict (--target) or a formula (--formula).")
        options = dict(
            target=target,
            features=column_names(features, "--features"),
            exclude=column_names(exclude, "--exclude"),
            formula=formula,
            categorical=column_names(categorical, "--categorical"),
            reference=_references(reference),
            max_levels=max_levels,
            weight=weight,
            fit_intercept=not no_intercept,
            l1_ratio=ratios if len(ratios) > 1 else ratios[0],
            folds=folds,
            alphas=grid if grid is not None else (100 if alphas is None else alphas),
            eps=eps,
            fold_column=fold_column,
            fold_key=fold_key,
            seed=seed,
            standardize=standardize,
            select=select,
            nulls=nulls,
            batch_size=batch_size,
            solver=solver,
            tol=tol,
            max_iter=max_iter,
            progress=_progress_enabled(quiet, as_json),
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # echoed below, once
            if scheduler or workers:
                from ..engine.dask_runner import cluster_client, quiet_cluster

                if scheduler and workers:
                    raise InputError("give either --scheduler or --workers, not both.")
                with (
                    quiet_cluster(not debug),
                    cluster_client(scheduler, workers, timeout=timeout) as client,
                ):
                    result = cross_validate(
                        sources, client=client, stall_timeout=stall_timeout, **options
                    )
            else:
                result = cross_validate(sources, **options)
        model = result.best_model_
        seconds = time.monotonic() - started
        if plot is not None:
            from ..plotting import plot_cv

            plot_cv(model, plot)
        if path_csv is not None:
            from ..io.atomic import write_text_atomic

            write_text_atomic(path_csv, path_text(model))
        if out is not None:
            model.save(out)
        if as_json:
            data = model.to_dict()
            data.pop("state")
            data.pop("design", None)  # levels and coding: in the model file (--out)
            data["coefficients"] = model.coefficients()
            data["path"] = result.path_table()
            data["seconds"] = round(seconds, 3)
            data["out"] = str(out) if out is not None else None
            data["plot"] = str(plot) if plot is not None else None
            typer.echo(json.dumps(data, indent=1, allow_nan=False))
        elif not quiet:
            typer.echo(
                cv_report(
                    model,
                    seconds=seconds,
                    saved_to=out,
                    plot_to=plot,
                    max_rows=rows or None,
                )
            )
        if not as_json:
            for warning in model.warnings_:
                typer.echo(f"streamreg: warning: {warning}", err=True)

    _run(debug, action)


def _check_matplotlib() -> None:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise InputError(
            "--plot needs matplotlib: pip install 'streamreg[plot]' (or pip install matplotlib)."
        ) from None
