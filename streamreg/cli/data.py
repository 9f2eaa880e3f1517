"""Commands that read data besides fitting: predict, evaluate, inspect, generate."""

from __future__ import annotations

import json
import time
from pathlib import Path

import typer

from .app import (
    BATCH,
    DEBUG,
    JSON,
    QUIET,
    UNSEEN,
    _floats,
    _names,
    _progress_enabled,
    _run,
    _stream,
    app,
)
from .options import COLUMN_LIST_HELP


@app.command()
def predict(
    model_path: Path = typer.Argument(
        ..., metavar="MODEL", help="A model JSON written by 'streamreg fit --out'."
    ),
    sources: list[str] = typer.Argument(
        ..., help="Parquet files, directories or globs to predict for."
    ),
    out: str = typer.Option(
        ..., "--out", "-o", metavar="FILE", help="The Parquet file to write (atomically)."
    ),
    keep: list[str] | None = typer.Option(
        None,
        "--keep",
        metavar="COLUMNS",
        help="Input columns to copy to the output (e.g. an id). " + COLUMN_LIST_HELP,
    ),
    column: str = typer.Option(
        "prediction", "--column", metavar="NAME", help="Name of the prediction column."
    ),
    unseen: str = UNSEEN,
    batch_size: int | None = BATCH,
    quiet: bool = QUIET,
    as_json: bool = JSON,
    debug: bool = DEBUG,
) -> None:
    """Stream predictions for every input row into a Parquet file.

    A model fitted with categories or a formula encodes the data with its saved levels,
    coding and references; with several targets it writes COLUMN_TARGET for each.

    Examples:
      streamreg predict model.json new/ -o predictions.parquet
      streamreg predict model.json 'day=*/*.parquet' -o out.parquet --keep id,day
      streamreg predict model.json new/ -o p.parquet --unseen reference
    """

    def action():
        from ..io.atomic import check_writable
        from ..model.linear_model import load
        from ..prediction import predict_parquet

        check_writable(out, "the predictions (--out)")
        model = load(model_path)
        started = time.monotonic()
        unseen_rows: dict = {}
        rows = _stream(
            sources,
            "predict",
            quiet,
            lambda src, on_rows: predict_parquet(
                model,
                src,
                out,
                keep=_names(keep, "--keep") or [],
                column=column,
                batch_size=batch_size,
                on_rows=on_rows,
                unseen=unseen,
                unseen_rows=unseen_rows,
            ),
        )
        seconds = time.monotonic() - started
        if as_json:
            report = {"rows": rows, "out": str(out), "seconds": round(seconds, 3)}
            if unseen_rows:
                report["unseen_rows"] = unseen_rows
            typer.echo(json.dumps(report))
        elif not quiet:
            typer.echo(f"Wrote {rows:,} predictions to {out} in {seconds:.1f} s.")
        if unseen_rows and not as_json:
            typer.echo(f"streamreg: warning: {_unseen_words(unseen_rows)}", err=True)

    _run(debug, action)


@app.command()
def evaluate(
    model_path: Path = typer.Argument(
        ..., metavar="MODEL", help="A model JSON written by 'streamreg fit --out'."
    ),
    sources: list[str] = typer.Argument(
        ..., help="Held-out Parquet files, directories or globs (with the target column)."
    ),
    unseen: str = UNSEEN,
    batch_size: int | None = BATCH,
    quiet: bool = QUIET,
    as_json: bool = JSON,
    debug: bool = DEBUG,
) -> None:
    """Score a saved model on held-out data: n, RMSE, MAE, bias and R², in one streaming pass.

    Examples:
      streamreg evaluate model.json holdout/
      streamreg evaluate model.json 'test/*.parquet' --json
    """

    def action():
        from ..evaluation import evaluate as score
        from ..model.linear_model import load

        model = load(model_path)
        result = _stream(
            sources,
            "evaluate",
            quiet,
            lambda src, on_rows: score(
                model, src, batch_size=batch_size, on_rows=on_rows, unseen=unseen
            ),
        )
        if as_json:
            typer.echo(json.dumps(result, indent=1))
        elif not quiet:
            per_target = result.get("targets", {None: result})
            lines = []
            for target, scores in per_target.items():
                dropped = (
                    f" ({scores['rows_dropped']:,} rows dropped for missing values)"
                    if scores["rows_dropped"]
                    else ""
                )
                r2 = "n/a" if scores["r2"] is None else f"{scores['r2']:.6f}"
                lines.append(
                    ("" if target is None else f"{target}:\n")
                    + f"n {scores['n']:,}{dropped}\nRMSE {scores['rmse']:.6g}\n"
                    f"MAE {scores['mae']:.6g}\nbias {scores['bias']:.6g}\nR² {r2}"
                )
            typer.echo("\n".join(lines))
        if result.get("unseen_rows") and not as_json:
            typer.echo(f"streamreg: warning: {_unseen_words(result['unseen_rows'])}", err=True)

    _run(debug, action)


def _unseen_words(unseen_rows: dict) -> str:
    detail = ", ".join(f"{rows:,} rows in '{name}'" for name, rows in unseen_rows.items())
    return (
        f"rows with a level the model does not know were predicted with the reference level "
        f"({detail})."
    )


@app.command()
def inspect(
    sources: list[str] = typer.Argument(..., help="Parquet files, directories or globs."),
    as_json: bool = JSON,
    debug: bool = DEBUG,
) -> None:
    """Show files, row counts, column types and null counts (from the footers; no data is read).

    Examples:
      streamreg inspect data/
      streamreg inspect 's3://bucket/events/*.parquet' --json
    """

    def action():
        from ..io.sources import Source
        from ..report import inspect_report

        info = Source.resolve(sources).describe()
        typer.echo(json.dumps(info, indent=1) if as_json else inspect_report(info))

    _run(debug, action)


@app.command()
def generate(
    out_dir: Path = typer.Argument(
        ..., help="Directory to write part-NNNNN.parquet files and _truth.json into."
    ),
    rows: int = typer.Option(1000, "--rows", "-n", min=1, help="Rows in all."),
    n_features: int | None = typer.Option(
        None,
        "--features",
        "-p",
        min=1,
        help="Number of features (default 3, or as many as --coef).",
    ),
    coef: str | None = typer.Option(
        None,
        "--coef",
        metavar="NUMBERS",
        help="Comma-separated true slopes (default 1, 2, …, p).",
    ),
    intercept: float = typer.Option(1.0, "--intercept", help="True intercept b."),
    noise: float = typer.Option(1.0, "--noise", help="Standard deviation of the Gaussian noise."),
    means: str | None = typer.Option(
        None, "--means", metavar="NUMBERS", help="Comma-separated feature means (default 0)."
    ),
    sds: str | None = typer.Option(
        None,
        "--sds",
        metavar="NUMBERS",
        help="Comma-separated feature standard deviations (default 1).",
    ),
    offset: float = typer.Option(
        0.0, "--offset", help="Added to every feature's mean (e.g. 1e9, like timestamps)."
    ),
    names: list[str] | None = typer.Option(
        None,
        "--names",
        metavar="COLUMNS",
        help="Feature names (default x1, x2, …). " + COLUMN_LIST_HELP,
    ),
    target: str = typer.Option(
        "y", "--target", metavar="COLUMN", help="Name of the target column."
    ),
    files: int = typer.Option(1, "--files", min=1, help="Number of files to spread the rows over."),
    row_group_size: int = typer.Option(
        131072, "--row-group-size", min=1, help="Rows per Parquet row group."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the random generator."),
    force: bool = typer.Option(
        False, "--force", help="Write into a non-empty folder, replacing data generated there."
    ),
    quiet: bool = QUIET,
    as_json: bool = JSON,
    debug: bool = DEBUG,
) -> None:
    """Write synthetic data y = b + Σ βⱼxⱼ + noise, with the truth beside it.

    Examples:
      streamreg generate demo/ --rows 100000 --features 3
      streamreg generate big/ -n 10000000 -p 20 --files 8 --seed 1
      streamreg generate stamps/ --coef 0.5,-2 --names t,load --offset 1e9
    """

    def action():
        from ..progress import Progress
        from ..synthetic import generate as make

        with Progress(rows, label="generate", enabled=_progress_enabled(quiet, as_json)) as bar:
            truth = make(
                out_dir,
                rows=rows,
                coef=_floats(coef, "--coef"),
                n_features=n_features,
                intercept=intercept,
                noise=noise,
                means=_floats(means, "--means"),
                sds=_floats(sds, "--sds"),
                offset=offset,
                names=_names(names, "--names"),
                target=target,
                files=files,
                row_group_size=row_group_size,
                seed=seed,
                on_rows=bar.advance,
                force=force,
            )
        if as_json:
            typer.echo(json.dumps(truth, indent=1))
        elif not quiet:
            typer.echo(
                f"Wrote {rows:,} rows in {files} file(s) to {out_dir}; the truth is in "
                f"{out_dir / '_truth.json'}."
            )

    _run(debug, action)
