"""``streamreg predict`` and ``streamreg evaluate`` against ``streamreg fit`` over the same columns.

All three are one pass over the same Parquet files: ``fit`` reads the 20 features
and the target and folds a ``syrk`` per batch into its state; ``predict`` reads the
20 features and writes one column of predictions (a Parquet file, atomically);
``evaluate`` reads the features and the target and sums the residuals. Each batch
of ``predict`` and ``evaluate`` is a mat-vec, so neither should be slower than
``fit``; this prints their throughput as a ratio to fit's, measured in the same run.

Each run is the real console script in a fresh subprocess (start-up and imports
included, exactly as a user runs it), on a warm page cache; the three contenders
alternate ``--repeat`` times, then each runs once more on a 1,000-row file to show
its start-up cost, so the ratios can also be read net of it. One untimed
``fit --out`` writes the model that ``predict`` and ``evaluate`` use; afterwards
the prediction file's row count and ``evaluate``'s RMSE (against the generated
noise) are checked.

The data (10M rows × 20 float64 features + y in 8 files by default, about 2 GB)
is the one ``bench_fit.py`` generates into ``bench/work/``; it is reused when
present and generated otherwise.

Run from the repository root::

    python bench/bench_predict.py                           # the full benchmark
    python bench/bench_predict.py --rows 200000 --repeat 1  # a smoke run, seconds
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_fit import (  # noqa: E402 - the sibling script, reused rather than copied
    PROBE_ROWS,
    TARGET,
    WORK_DIR,
    Runs,
    ensure_data,
    run_child,
    streamreg_command,
    warm_page_cache,
)

# From the project's issue: predict and evaluate at fit's throughput.
TARGET_RATIO = 1.0


def commands(data_dir: Path, model: Path, predictions: Path) -> dict[str, list[str]]:
    script = streamreg_command()
    return {
        "fit": [*script, "fit", str(data_dir), "--target", TARGET, "--quiet"],
        "predict": [*script, "predict", str(model), str(data_dir), "-o", str(predictions), "-q"],
        "evaluate": [*script, "evaluate", str(model), str(data_dir), "--quiet"],
    }


def write_model(data_dir: Path, model: Path) -> None:
    subprocess.run(
        [*streamreg_command(), "fit", str(data_dir), "--target", TARGET, "-q", "-o", str(model)],
        check=True,
    )


def check_results(data_dir: Path, model: Path, predictions: Path, rows: int) -> None:
    """Untimed: every row got a prediction, and evaluate finds the generated noise."""
    import pyarrow.parquet as pq

    predicted = pq.ParquetFile(predictions).metadata.num_rows
    if predicted != rows:
        sys.exit(f"predict wrote {predicted:,} rows, expected {rows:,}")
    scored = subprocess.run(
        [*streamreg_command(), "evaluate", str(model), str(data_dir), "--json"],
        check=True,
        capture_output=True,
        text=True,
    )
    result = json.loads(scored.stdout)
    noise = json.loads((data_dir / "_truth.json").read_text())["noise_sd"]
    if result["n"] != rows or abs(result["rmse"] / noise - 1) > 0.05:
        sys.exit(f"evaluate: n {result['n']:,}, RMSE {result['rmse']:.4g}; noise sd is {noise}")
    print(
        f"check: predict wrote {predicted:,} rows; evaluate scored {result['n']:,} rows, "
        f"RMSE {result['rmse']:.5f} (noise sd {noise:g})"
    )


def print_table(rows: int, timed: dict[str, Runs], probes: dict[str, Runs]) -> None:
    print()
    print(f"{rows:,} rows; {len(timed['fit'].walls)} alternating runs each")
    print(f"{'':<22}{'best s':>8}{'med s':>8}{'Mrows/s':>9}{'CPU s':>8}{'RSS MB':>9}")
    for runs in [*timed.values(), *probes.values()]:
        rate = f"{runs.rows / runs.best / 1e6:>9.2f}" if runs.rows == rows else f"{'':>9}"
        cpu = statistics.median(runs.cpu_seconds)
        print(
            f"{runs.label:<22}{runs.best:>8.2f}{runs.median:>8.2f}{rate}{cpu:>8.2f}{runs.rss:>9.0f}"
        )
    print()
    fit, fit_start = timed["fit"], probes["fit"]
    for name in ("predict", "evaluate"):
        runs, start = timed[name], probes[name]
        best = fit.best / runs.best
        median = fit.median / runs.median
        net_fit, net_runs = fit.best - fit_start.best, runs.best - start.best
        net = f"{net_fit / net_runs:.2f}" if net_fit > 0 and net_runs > 0 else "n/a"
        cpu = statistics.median(fit.cpu_seconds) / statistics.median(runs.cpu_seconds)
        print(
            f"throughput {name} / fit: {best:.2f} best, {median:.2f} median, {net} net of "
            f"start-up (best runs); CPU time fit / {name}: {cpu:.2f} (medians); "
            f"target >= {TARGET_RATIO}"
        )
    print("wall times include interpreter start-up and imports; RSS is the worst run")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--rows", type=int, default=10_000_000, help="rows in the data (default 10M)"
    )
    parser.add_argument("--features", type=int, default=20, help="feature columns (default 20)")
    parser.add_argument("--files", type=int, default=8, help="Parquet files (default 8)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each contender (default 3)")
    parser.add_argument("--seed", type=int, default=20240611)
    args = parser.parse_args(argv)

    data_dir = ensure_data(args.rows, args.features, args.files, args.seed)
    probe_dir = ensure_data(PROBE_ROWS, args.features, 1, args.seed)
    model = WORK_DIR / "bench-predict-model.json"
    probe_model = WORK_DIR / "bench-predict-probe-model.json"
    predictions = WORK_DIR / "bench-predictions.parquet"
    probe_predictions = WORK_DIR / "bench-predictions-probe.parquet"
    write_model(data_dir, model)
    write_model(probe_dir, probe_model)
    warm_page_cache(data_dir)

    timed_commands = commands(data_dir, model, predictions)
    probe_commands = commands(probe_dir, probe_model, probe_predictions)
    timed = {name: Runs(f"streamreg {name}", args.rows) for name in timed_commands}
    probes = {name: Runs(f"{name} start-up only", PROBE_ROWS) for name in probe_commands}
    try:
        for attempt in range(1, args.repeat + 1):
            print(f"run {attempt}/{args.repeat}:", end=" ", flush=True)
            for name, command in timed_commands.items():
                run_child(command, timed[name])
                print(f"{name} {timed[name].walls[-1]:.2f} s", end=", ", flush=True)
            for name, command in probe_commands.items():
                run_child(command, probes[name])
            print("start-up " + " / ".join(f"{r.walls[-1]:.2f}" for r in probes.values()) + " s")
        check_results(data_dir, model, predictions, args.rows)  # the last timed predict's file
    finally:
        predictions.unlink(missing_ok=True)
        probe_predictions.unlink(missing_ok=True)
    print_table(args.rows, timed, probes)


if __name__ == "__main__":
    main()
