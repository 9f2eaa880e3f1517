"""``streamreg fit``: one pass over the data, a report, a saved model."""

from __future__ import annotations

import json
import time
import warnings
from pathlib import Path

import typer

from ..choices import NULL_POLICIES, RANK_DEFICIENT, ROBUST_TYPES, SCHEDULES, SOLVER_NAMES
from ..errors import ConvergenceWarning, InputError
from .app import BATCH, DEBUG, GRADIENT, JSON, MODEL, PENALTY, QUIET, _progress_enabled, _run, app
from .options import (
    COLUMN_LIST_HELP,
    _check_history_paths,
    _gradient_options,
    _references,
    choice,
    choice_metavar,
    column_names,
    cov_type,
)

# --cov values as the help lists them (cluster takes its column or two after a colon, HAC its
# number of lags).
COV_CHOICES = [
    "nonrobust",
    *(t for t in ROBUST_TYPES if t != "cluster"),
    "cluster:COLUMN[,COLUMN]",
    "HAC:LAGS",
]


@app.command()
def fit(
    sources: list[str] = typer.Argument(
        ...,
        help="Parquet files, directories (recursive; key=value folders become columns) or globs.",
    ),
    target: str | None = typer.Option(
        None,
        "--target",
        "-y",
        metavar="COLUMN",
        help="The column to predict (several, comma-separated: one fit each from one pass).",
    ),
    features: list[str] | None = typer.Option(
        None,
        "--features",
        "-x",
        metavar="COLUMNS",
        help=(
            "Feature columns (default: the numeric columns but target, weight, Hive partition "
            "keys and ID-like columns; text columns become categories, dates and timestamps "
            "days and seconds since 1970-01-01). " + COLUMN_LIST_HELP
        ),
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
        help=(
            "A formula instead of --target/--features, e.g. "
            "'y ~ x1 + log(x2) + C(region) + x1:C(region)' or 'y ~ x1 + x2 | firm'."
        ),
        rich_help_panel=MODEL,
    ),
    categorical: list[str] | None = typer.Option(
        None,
        "--categorical",
        "-c",
        metavar="COLUMNS",
        help=(
            "Columns to treatment-code as categories (e.g. integer codes; text features "
            "already are). " + COLUMN_LIST_HELP
        ),
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
        help="Refuse a category with more levels than this (absorb it instead).",
        rich_help_panel=MODEL,
    ),
    absorb: str | None = typer.Option(
        None,
        "--absorb",
        metavar="COLUMN",
        help=(
            "Absorb this column's fixed effect (within estimator; no column per level); "
            "errors iid or --cov cluster:COLUMN."
        ),
        rich_help_panel=MODEL,
    ),
    weight: str | None = typer.Option(
        None,
        "--weight",
        "-w",
        metavar="COLUMN",
        help="Column of non-negative weights (weighted least squares).",
    ),
    no_intercept: bool = typer.Option(False, "--no-intercept", help="Fit without an intercept."),
    nulls: str = typer.Option(
        "drop",
        "--nulls",
        metavar=choice_metavar(NULL_POLICIES),
        callback=choice(NULL_POLICIES),
        help="Rows with a null/NaN in a used column: 'drop' (counted) or 'error'.",
    ),
    solver: str = typer.Option(
        "auto",
        "--solver",
        metavar=choice_metavar(SOLVER_NAMES),
        callback=choice(SOLVER_NAMES),
        help=(
            "auto (fast, re-reads with a better solver when ill-conditioned), cholesky, qr or "
            "exact; or a gradient solver: sgd, newton, lbfgs."
        ),
    ),
    cov: str | None = typer.Option(
        None,
        "--cov",
        metavar=choice_metavar(COV_CHOICES),
        callback=cov_type(COV_CHOICES),
        help=(
            "Robust standard errors from a second pass: HC0, HC1, HC2, HC3, cluster:COLUMN, "
            "two-way cluster:COLUMN,COLUMN, or Newey-West HAC:LAGS (over the files' order)."
        ),
    ),
    use_t: bool | None = typer.Option(
        None,
        "--use-t/--use-z",
        help="Student's t (G-1 df for clusters) or the normal for p values and intervals "
        "(default: t only without --cov).",
    ),
    diagnostics: bool = typer.Option(
        False,
        "--diagnostics",
        help="A second pass for statsmodels' bottom block: Omnibus, skew, kurtosis, "
        "Durbin-Watson (in the files' order), Jarque-Bera.",
    ),
    drop_collinear: bool = typer.Option(
        False, "--drop-collinear", help="Give collinear columns no coefficient instead of failing."
    ),
    rank_deficient: str | None = typer.Option(
        None,
        "--rank-deficient",
        metavar=choice_metavar(RANK_DEFICIENT),
        callback=choice(RANK_DEFICIENT),
        help="error (default), alias (as --drop-collinear) or minimum_norm (scikit-learn's "
        "LinearRegression answer).",
    ),
    out: str | None = typer.Option(
        None,
        "--out",
        "-o",
        metavar="FILE",
        help="Write the model as JSON here (atomically; checked before the data are read).",
    ),
    scheduler: str | None = typer.Option(
        None,
        "--scheduler",
        envvar="DASK_SCHEDULER_ADDRESS",
        metavar="ADDRESS",
        help="Run on this Dask scheduler (tcp://host:8786); the workers read the files.",
    ),
    workers: int | None = typer.Option(
        None,
        "--workers",
        min=1,
        metavar="N",
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
    alpha: float | None = typer.Option(
        None,
        "--alpha",
        metavar="ALPHA",
        help=(
            "Penalized least squares of this strength (scikit-learn's alpha): ridge, lasso or "
            "elastic net by --l1-ratio. No standard errors or p values. 'streamreg cv' picks it."
        ),
        rich_help_panel=PENALTY,
    ),
    l1_ratio: float | None = typer.Option(
        None,
        "--l1-ratio",
        metavar="RATIO",
        help="With --alpha: 0 ridge, 1 lasso (default), in between the elastic net.",
        rich_help_panel=PENALTY,
    ),
    standardize: bool = typer.Option(
        False,
        "--standardize",
        help="With --alpha: penalize the standardized coefficients (glmnet's default); "
        "they are reported in the original units.",
        rich_help_panel=PENALTY,
    ),
    learning_rate: float | None = typer.Option(
        None,
        "--learning-rate",
        help="Step size on the standardized problem (default: automatic, from the first pass).",
        rich_help_panel=GRADIENT,
    ),
    schedule: str | None = typer.Option(
        None,
        "--schedule",
        metavar=choice_metavar(SCHEDULES),
        callback=choice(SCHEDULES),
        help="Learning-rate schedule: constant (default), invscaling or step (halved every epoch).",
        rich_help_panel=GRADIENT,
    ),
    minibatch: int | None = typer.Option(
        None, "--minibatch", help="Rows per gradient step (default 256).", rich_help_panel=GRADIENT
    ),
    epochs: int | None = typer.Option(
        None,
        "--epochs",
        help="sgd: at most this many passes of steps (default 10).",
        rich_help_panel=GRADIENT,
    ),
    max_iter: int | None = typer.Option(
        None,
        "--max-iter",
        help="lbfgs: at most this many iterations (default 200). With --alpha: coordinate "
        "descent's sweeps (100000).",
        rich_help_panel=GRADIENT,
    ),
    seed: int | None = typer.Option(
        None,
        "--seed",
        help="Seed of the shuffles and the holdout split (default 0).",
        rich_help_panel=GRADIENT,
    ),
    momentum: float | None = typer.Option(
        None,
        "--momentum",
        help="Heavy-ball momentum, e.g. 0.9 (default 0).",
        rich_help_panel=GRADIENT,
    ),
    adam: bool = typer.Option(
        False, "--adam", help="Take Adam steps instead of plain SGD.", rich_help_panel=GRADIENT
    ),
    l2: float | None = typer.Option(
        None,
        "--l2",
        help="Ridge penalty on the standardized slopes (default 0; never the intercept).",
        rich_help_panel=GRADIENT,
    ),
    no_average: bool = typer.Option(
        False,
        "--no-average",
        help="Report the last iterate, not the average over the latter half of the run.",
        rich_help_panel=GRADIENT,
    ),
    no_standardize: bool = typer.Option(
        False,
        "--no-standardize",
        help="Step on the raw columns (for comparison; offsets and scales then decide the speed).",
        rich_help_panel=GRADIENT,
    ),
    tol: float | None = typer.Option(
        None,
        "--tol",
        help=(
            "Converged when the gradient norm is at most this (default 1e-4 for sgd, 1e-6 "
            "otherwise). With --alpha: coordinate descent's duality-gap tolerance (1e-10)."
        ),
        rich_help_panel=GRADIENT,
    ),
    loss_rtol: float | None = typer.Option(
        None,
        "--loss-rtol",
        help="Also converged when the loss changes by at most this, relatively.",
        rich_help_panel=GRADIENT,
    ),
    holdout: float | None = typer.Option(
        None,
        "--holdout",
        help="Fraction of rows held out (seeded) for early stopping (default 0).",
        rich_help_panel=GRADIENT,
    ),
    patience: int | None = typer.Option(
        None,
        "--patience",
        help="Epochs without held-out improvement before stopping (default 3).",
        rich_help_panel=GRADIENT,
    ),
    history: Path | None = typer.Option(
        None,
        "--history",
        help="Write the loss history (one row per epoch or iteration) here as CSV.",
        rich_help_panel=GRADIENT,
    ),
    step_history: Path | None = typer.Option(
        None,
        "--step-history",
        help="sgd: record every step's minibatch loss and write them here as CSV.",
        rich_help_panel=GRADIENT,
    ),
    quiet: bool = QUIET,
    as_json: bool = JSON,
    debug: bool = DEBUG,
) -> None:
    """Fit least squares over the data in one pass and report the coefficients.

    A second pass over the data runs for --cov, --diagnostics, or when the first pass's sum of
    squared residuals lost digits (a very close fit): its figures are then recomputed from the
    residuals. Durbin-Watson and HAC use the data's order: files as listed (a directory's
    files sorted by path), rows in file order.

    Every column of the data is reported as used (feature, category, target, weight,
    cluster, absorbed) or skipped, with why.

    Examples:
      streamreg fit 'sales/*.parquet' -y revenue -x price -x region --cov HC1 -o model.json
      streamreg fit data/ --formula "y ~ x1 + np.log(x2) + C(region) + x1:C(region)"
      streamreg fit panel/ -f "wage ~ hours + tenure | firm" --cov cluster:firm
    """

    def action():
        from ..fitting import fit as fit_model
        from ..report import fit_report

        started = time.monotonic()
        penalized = alpha is not None
        if not penalized and (l1_ratio is not None or standardize):
            flag = "--l1-ratio" if l1_ratio is not None else "--standardize"
            raise InputError(f"{flag} applies to a penalized fit; give --alpha too.")
        gradient = _gradient_options(
            solver,
            learning_rate=learning_rate,
            schedule=schedule,
            minibatch=minibatch,
            epochs=epochs,
            max_iter=None if penalized else max_iter,
            seed=seed,
            momentum=momentum,
            optimizer="adam" if adam else None,
            l2=l2,
            average=False if no_average else None,
            standardize=False if no_standardize else None,
            tol=None if penalized else tol,
            loss_rtol=loss_rtol,
            holdout=holdout,
            patience=patience,
            record_steps=True if step_history else None,
        )
        _check_history_paths(solver, history, step_history)
        if out is not None:  # a typo in the destination must not cost the whole pass
            from ..io.atomic import check_writable

            check_writable(out, "the model (--out)")
        options = dict(
            target=column_names(target, "--target") if target and "," in target else target,
            features=column_names(features, "--features"),
            exclude=column_names(exclude, "--exclude"),
            formula=formula,
            categorical=column_names(categorical, "--categorical"),
            reference=_references(reference),
            max_levels=max_levels,
            absorb=absorb,
            weight=weight,
            fit_intercept=not no_intercept,
            nulls=nulls,
            batch_size=batch_size,
            solver=solver,
            drop_collinear=drop_collinear,
            rank_deficient=rank_deficient,
            cov_type=cov,
            use_t=use_t,
            diagnostics=True if diagnostics else None,
            progress=_progress_enabled(quiet, as_json),
            sgd=gradient,
        )
        if penalized:
            options.update(alpha=alpha, standardize=standardize, tol=tol, max_iter=max_iter)
            if l1_ratio is not None:
                options["l1_ratio"] = l1_ratio
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # model.warnings_ are echoed
            if scheduler or workers:
                from ..engine.dask_runner import cluster_client, quiet_cluster

                if scheduler and workers:
                    raise InputError("give either --scheduler or --workers, not both.")
                with (
                    quiet_cluster(not debug),
                    cluster_client(scheduler, workers, timeout=timeout) as client,
                ):
                    model = fit_model(
                        sources, client=client, stall_timeout=stall_timeout, **options
                    )
            else:
                model = fit_model(sources, **options)
        seconds = time.monotonic() - started
        if out is not None:
            model.save(out)
        if history is not None or step_history is not None:
            from ..io.atomic import write_text_atomic
            from ..report import history_csv

            if history is not None:
                write_text_atomic(history, history_csv(model))
            if step_history is not None:
                write_text_atomic(step_history, history_csv(model, steps=True))
        if as_json:
            typer.echo(json.dumps(_json_summary(model, seconds, out), indent=1))
        elif not quiet and penalized:
            from ..penalty_report import penalized_fit_report

            typer.echo(penalized_fit_report(model, seconds=seconds, saved_to=out))
        elif not quiet:
            from ..report import optimizer_line

            report = fit_report(model, seconds=seconds, saved_to=out)
            line = optimizer_line(model)
            typer.echo(report if line is None else f"{report}\n{line}")
        for warning in model.warnings_:
            if not as_json:
                typer.echo(f"streamreg: warning: {warning}", err=True)

    _run(debug, action)


def _json_summary(model, seconds: float, out) -> dict:
    data = model.to_dict()
    data.pop("state")
    data.pop("design", None)
    data["columns"] = model.columns_
    # The model file's "condition_number" is the scaled one; statsmodels' is in "inference".
    if "condition_number" in data:  # one model per target has its own, in "models"
        data["scaled_condition_number"] = data.pop("condition_number")
    data["coefficients"] = model.coefficients()
    data["seconds"] = round(seconds, 3)
    data["out"] = str(out) if out is not None else None
    return data
