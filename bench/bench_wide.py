"""Wide data: how close ``streamreg.fit`` comes to pure decoding when the ``ZᵀZ`` step is
compute-bound, before and after a change.

Contenders, each in its own fresh subprocess (own peak RSS, from ``os.wait4``), alternating
``--repeat`` times on a warm page cache:

* ``floor`` — pure decoding: every record batch of the Parquet columns read with
  ``pyarrow.dataset`` (pre-buffering off, read-ahead 2, as ``bench_fit.py``'s floor, but in
  the fit's batch size) and copied into a Fortran-ordered float64 array; nothing else;
* ``fit`` for each ``--tree`` given (default: this checkout) — ``streamreg.fit(DIR,
  target="y")`` with that checkout first on ``PYTHONPATH``, so the same interpreter runs the
  code before and after a change; with ``--first-pass`` also the same fit without the
  residual pass that recomputes a close fit's SSR (this data is one: R² ≈ 1 − 4e-7, and the
  first pass's SSR keeps ~9 digits, so the default fit reads the data twice).

Each child fits a 64-row file first, so that imports (which ``import streamreg`` defers to
the first fit) are not timed, then times its own pass with ``perf_counter`` and
``process_time``; the parent records the whole child's wall time, CPU time and peak RSS.
The table gives best and median in-pass wall time, median in-pass CPU time and the worst
peak RSS, and each fit's ratio to the floor (best / best, median / median, CPU / CPU).

The data (1M rows × 200 float64 features + y in 8 files by default, about 2 GB of Parquet,
1.6 GB of float64) is generated once into ``bench/work/`` and reused::

    python bench/bench_wide.py --tree /path/to/before --tree .     # before / after, 5 runs
    python bench/bench_wide.py --first-pass --repeat 3             # and one pass alone
    python bench/bench_wide.py --rows 20000 --repeat 1             # a smoke run, seconds
    python bench/bench_wide.py --rows 10000000 --features 20       # the narrow shape
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench_fit import warm_page_cache  # bench/ is the script's folder: on sys.path

BENCH_DIR = Path(__file__).resolve().parent
WORK_DIR = BENCH_DIR / "work"
TARGET = "y"


def floor_batch_rows(n_columns: int) -> int:
    """The fit's default batch rows (``resolve_batch_size``: ~16 MiB of float64, at most 128 Ki
    rows): copying into cache-sized blocks is faster than one row group at a time (on
    1M x 200, ~1.9 instead of ~2.9 CPU s), and the floor should not flatter the fit."""
    return max(1024, min(1 << 17, (1 << 24) // (8 * n_columns)))


# The targets of issue 14, item 5.
TARGET_RATIO = 1.4
TARGET_PEAK_RSS_MB = 800


# ---------------------------------------------------------------------- child bodies
def data_files(data_dir: str) -> list[str]:
    return sorted(str(p) for p in Path(data_dir).iterdir() if p.name.endswith(".parquet"))


def read_floor(data_dir: str, columns: list[str]) -> int:
    """Decode ``columns`` of every file into float64 arrays and do nothing else; the row count."""
    import numpy as np
    import pyarrow.dataset as ds

    parquet = ds.ParquetFileFormat(
        default_fragment_scan_options=ds.ParquetFragmentScanOptions(
            pre_buffer=False, use_buffered_stream=True, buffer_size=1 << 16
        )
    )
    dataset = ds.dataset(data_files(data_dir), format=parquet)
    rows = 0
    for batch in dataset.to_batches(
        columns=columns,
        batch_size=floor_batch_rows(len(columns)),
        batch_readahead=2,
        fragment_readahead=1,
    ):
        matrix = np.empty((batch.num_rows, len(columns)), dtype=np.float64, order="F")
        for j, column in enumerate(batch.columns):
            matrix[:, j] = column.to_numpy()
        rows += batch.num_rows
    return rows


def run_fit(data_dir: str) -> int:
    """``streamreg.fit`` on the directory (whichever streamreg ``PYTHONPATH`` finds first)."""
    import streamreg

    model = streamreg.fit(data_dir, target=TARGET)
    return int(model.rows_read_)


def first_pass_only() -> None:
    """Leave out the residual pass that recomputes the SSR of a close fit (issue 13's policy:
    big data are read again when the first pass's SSR keeps fewer than ~10 digits, as it
    does on this data, R² ≈ 1 − 4e-7), so that the row shows what one pass costs."""
    import streamreg.fitting

    streamreg.fitting.ssr_plan = lambda *args, **kwargs: (False, False)


def warm_up_fit(columns: list[str]) -> None:
    """A fit of a 64-row file first: ``import streamreg`` loads almost nothing (the CLI starts
    fast), so scipy, pandas and the fit's modules would otherwise load inside the timed pass."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    import streamreg

    with tempfile.TemporaryDirectory() as folder:
        values = np.random.default_rng(0).normal(size=(64, len(columns)))
        path = Path(folder) / "tiny.parquet"
        pq.write_table(pa.table({c: values[:, j] for j, c in enumerate(columns)}), path)
        streamreg.fit(path, target=TARGET)


def child(kind: str, data_dir: str, columns: list[str]) -> None:
    """Time one pass in this process and print it as JSON (the parent reads it)."""
    if kind in ("fit", "fit1"):
        warm_up_fit(columns[-3:])  # imports are not part of the pass
        if kind == "fit1":
            first_pass_only()
    else:
        import numpy  # noqa: F401
        import pyarrow.dataset  # noqa: F401
    wall, cpu = time.perf_counter(), time.process_time()
    rows = read_floor(data_dir, columns) if kind == "floor" else run_fit(data_dir)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(json.dumps({"rows": rows, "wall": wall, "cpu": cpu}))


# ---------------------------------------------------------------------- data
def ensure_data(rows: int, n_features: int, files: int, seed: int) -> Path:
    """The data directory for these parameters, generated only if it is not complete yet."""
    data_dir = WORK_DIR / f"rows{rows}-p{n_features}-files{files}-seed{seed}"
    # synthetic.generate writes _truth.json last, so its presence means the data is complete.
    if (data_dir / "_truth.json").exists():
        print(f"reusing {data_dir.relative_to(BENCH_DIR.parent)}")
        return data_dir
    from streamreg.synthetic import generate

    print(f"generating {rows:,} rows x {n_features} features in {files} files (once) ...")
    started = time.perf_counter()
    generate(data_dir, rows=rows, n_features=n_features, files=files, seed=seed, force=True)
    print(f"  done in {time.perf_counter() - started:.0f} s", flush=True)
    return data_dir


# ---------------------------------------------------------------------- runs
@dataclass
class Runs:
    label: str
    command: list[str]
    env: dict
    walls: list[float] = field(default_factory=list)
    cpus: list[float] = field(default_factory=list)
    process_walls: list[float] = field(default_factory=list)
    rss_mb: list[float] = field(default_factory=list)

    def run(self, rows: int) -> float:
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            started = time.perf_counter()
            process = subprocess.Popen(self.command, stdout=out, stderr=err, env=self.env)
            # wait4: this child's own rusage (RUSAGE_CHILDREN keeps only the largest so far).
            _, status, usage = os.wait4(process.pid, 0)
            elapsed = time.perf_counter() - started
            out.seek(0)
            err.seek(0)
            stdout, stderr = out.read().decode(), err.read().decode()
        if os.waitstatus_to_exitcode(status) != 0:
            sys.exit(f"{self.label} failed:\n{stderr}")
        report = json.loads(stdout.strip().splitlines()[-1])
        if report["rows"] != rows:
            sys.exit(f"{self.label} read {report['rows']:,} rows, expected {rows:,}")
        self.walls.append(report["wall"])
        self.cpus.append(report["cpu"])
        self.process_walls.append(elapsed)
        self.rss_mb.append(usage.ru_maxrss / 1024)  # KiB on Linux
        return report["wall"]


def print_table(rows: int, features: int, data_bytes: int, floor: Runs, fits: list[Runs]):
    print()
    print(
        f"{rows:,} rows x {features} features + y, {data_bytes / 1e9:.2f} GB of Parquet; "
        f"{len(floor.walls)} alternating runs each; times are of the pass (imports excluded)"
    )
    head = f"{'':<34}{'best s':>8}{'med s':>8}{'CPU s':>8}{'RSS MB':>8}"
    print(head + f"{'best x':>8}{'med x':>8}{'CPU x':>8}")
    for runs in [floor, *fits]:
        cpu = statistics.median(runs.cpus)
        line = (
            f"{runs.label:<34}{min(runs.walls):>8.2f}{statistics.median(runs.walls):>8.2f}"
            f"{cpu:>8.2f}{max(runs.rss_mb):>8.0f}"
        )
        if runs is not floor:
            line += (
                f"{min(runs.walls) / min(floor.walls):>8.2f}"
                f"{statistics.median(runs.walls) / statistics.median(floor.walls):>8.2f}"
                f"{cpu / statistics.median(floor.cpus):>8.2f}"
            )
        print(line)
    print(
        f"ratios are fit / floor (target <= {TARGET_RATIO}); RSS is the worst run "
        f"(target <= {TARGET_PEAK_RSS_MB} MB); CPU is the median"
    )
    print(f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(unset)')}")


# ---------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows (default 1M)")
    parser.add_argument("--features", type=int, default=200, help="features (default 200)")
    parser.add_argument("--files", type=int, default=8, help="Parquet files (default 8)")
    parser.add_argument("--repeat", type=int, default=5, help="runs of each (default 5)")
    parser.add_argument("--seed", type=int, default=20240611)
    parser.add_argument(
        "--tree",
        action="append",
        help="a streamreg checkout to fit with (repeatable; default: this one)",
    )
    parser.add_argument(
        "--first-pass",
        action="store_true",
        help="also each tree's fit without the residual pass that recomputes a close fit's SSR",
    )
    # Internal: the body of a child process.
    parser.add_argument("--child", nargs=2, metavar=("KIND", "DIR"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    columns = [f"x{j + 1}" for j in range(args.features)] + [TARGET]

    if args.child:
        child(args.child[0], args.child[1], columns)
        return

    data_dir = ensure_data(args.rows, args.features, args.files, args.seed)
    data_bytes = sum(p.stat().st_size for p in data_dir.glob("*.parquet"))
    warm_page_cache(data_dir)
    me = [sys.executable, str(Path(__file__).resolve()), "--features", str(args.features)]
    floor = Runs(
        "floor (pure decoding)", [*me, "--child", "floor", str(data_dir)], dict(os.environ)
    )
    fits = []
    for tree in args.tree or [str(BENCH_DIR.parent)]:
        root = Path(tree).resolve()
        env = dict(os.environ, PYTHONPATH=str(root))
        fits.append(Runs(f"fit {root.name}", [*me, "--child", "fit", str(data_dir)], env))
        if args.first_pass:
            command = [*me, "--child", "fit1", str(data_dir)]
            fits.append(Runs(f"fit {root.name}, first pass only", command, env))
    for attempt in range(1, args.repeat + 1):
        said = [f"floor {floor.run(args.rows):.2f}"]
        said += [f"{runs.label} {runs.run(args.rows):.2f}" for runs in fits]
        print(f"run {attempt}/{args.repeat}: " + ", ".join(said) + " s", flush=True)
    print_table(args.rows, args.features, data_bytes, floor, fits)


if __name__ == "__main__":
    main()
