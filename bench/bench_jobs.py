"""What a batch job's bookkeeping costs: checkpoints inside files, and deciding "nothing new".

(a) **Checkpointing overhead.** The same data (2M rows × 20 features + y in 20
files of 10 row groups by default) is folded by, alternating, ``--repeat``
times each, in this one process and on a warm page cache:

* ``fit``       — ``streamreg.fit(DIR, solver="cholesky")``: the engine alone, no job;
* ``job rg=0``  — ``run_job`` with ``checkpoint_row_groups = 0``: one state per file, no
  checkpoint inside a file (the manifest, per-file states and model are still written);
* ``job rg=8``  — a checkpoint every 8 row groups (the example job's setting);
* ``job rg=1``  — a checkpoint after every row group (the most a job can write).

Each job run starts from an empty state folder. The table gives the best and
median wall time and the best throughput; below it the throughput ratios
``job rg=N / job rg=0`` (the cost of checkpointing) and ``job rg=0 / fit`` (the
cost of per-file states and publishing).

(b) **"Nothing new" on many files.** 1,000 files of 100 rows are ingested once;
then the time for a run to decide there is nothing new (listing, comparing
with the manifest, checking that the model exists; no file is opened) is
measured in process (``run_job``), and end to end as the console script
(``streamreg run job.toml``), next to the console script's start-up alone
(``streamreg version``).

Run from the repository root::

    python bench/bench_jobs.py                                  # the full benchmark (~2 min)
    python bench/bench_jobs.py --rows 200000 --small-files 100  # a smoke run
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
WORK_DIR = BENCH_DIR / "work"
sys.path.insert(0, str(BENCH_DIR.parent))

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

import streamreg  # noqa: E402
from streamreg.jobs import run_job  # noqa: E402
from streamreg.jobs.spec import parse_job  # noqa: E402
from streamreg.synthetic import generate  # noqa: E402


def job_text(inputs: str, state: str, model: str, checkpoint: int, batch_size: int | None) -> str:
    batch = f"batch_size = {batch_size}\n" if batch_size else ""
    return (
        f'inputs = ["{inputs}"]\n[model]\ntarget = "y"\nsolver = "cholesky"\n'
        f'[state]\nlocation = "{state}"\ncheckpoint_row_groups = {checkpoint}\n{batch}'
        f'[outputs]\nmodel = "{model}"\n'
    )


def timed(action) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def bench_checkpoints(args, scratch: Path) -> None:
    data = WORK_DIR / f"jobs-rows{args.rows}-files{args.files}-p{args.features}-rg{args.row_group}"
    if not (data / "_truth.json").exists():
        print(f"writing {args.rows:,} rows in {args.files} files to {data} ...", flush=True)
        generate(
            data,
            rows=args.rows,
            n_features=args.features,
            files=args.files,
            row_group_size=args.row_group,
            seed=1,
            force=True,
        )
    size = sum(p.stat().st_size for p in data.glob("*.parquet"))

    def fit():
        model = streamreg.fit(str(data), target="y", solver="cholesky", batch_size=args.batch_size)
        assert model.rows_read_ == args.rows

    def job(checkpoint: int):
        def action():
            folder = Path(tempfile.mkdtemp(dir=scratch))
            spec = parse_job(
                job_text(
                    str(data),
                    str(folder / "state"),
                    str(folder / "model.json"),
                    checkpoint,
                    args.batch_size,
                ),
                path=str(folder / "job.toml"),
            )
            result = run_job(spec)
            assert result.status == "published" and result.rows_total == args.rows
            shutil.rmtree(folder)

        return action

    contenders = {"fit": fit, "job rg=0": job(0), "job rg=8": job(8), "job rg=1": job(1)}
    fit()  # warm-ups: page cache, imports (scipy for the model's statistics, fsspec, ...)
    job(0)()
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(args.repeat):
        for name, action in contenders.items():
            times[name].append(timed(action))
    print(
        f"\n(a) checkpointing: {args.rows:,} rows × {args.features} features + y, "
        f"{args.files} files of {args.rows // args.files // args.row_group} row groups, "
        f"{size / 1e6:.0f} MB of Parquet, "
        f"{args.repeat} runs each"
    )
    print(f"  {'contender':<10} {'best s':>8} {'median s':>9} {'Mrows/s':>8}")
    for name, values in times.items():
        print(
            f"  {name:<10} {min(values):8.3f} {statistics.median(values):9.3f} "
            f"{args.rows / min(values) / 1e6:8.2f}"
        )
    base = min(times["job rg=0"])
    for name in ("job rg=8", "job rg=1"):
        median_ratio = statistics.median(times["job rg=0"]) / statistics.median(times[name])
        print(
            f"  throughput {name} / job rg=0: {base / min(times[name]):.3f}"
            f"  (median {median_ratio:.3f})"
        )
    print(f"  throughput job rg=0 / fit: {min(times['fit']) / base:.3f}")


def bench_nothing_new(args, scratch: Path) -> None:
    folder = scratch / "many"
    data = folder / "data"
    data.mkdir(parents=True)
    rng = np.random.default_rng(2)
    for i in range(args.small_files):
        x = rng.normal(size=(100, 3))
        pq.write_table(
            pa.table(
                {
                    "x1": x[:, 0],
                    "x2": x[:, 1],
                    "x3": x[:, 2],
                    "y": x @ [1.0, 2.0, 3.0] + rng.normal(size=100),
                }
            ),
            data / f"part-{i:05d}.parquet",
        )
    (folder / "job.toml").write_text(job_text("data/", "state/", "out/model.json", 8, None))
    spec = parse_job((folder / "job.toml").read_text(), path=str(folder / "job.toml"))
    first = timed(lambda: run_job(spec))
    in_process = []
    for _ in range(args.repeat * 3):
        started = time.perf_counter()
        assert run_job(spec).status == "nothing new"
        in_process.append(time.perf_counter() - started)
    cli, startup = [], []
    for _ in range(args.repeat):
        cli.append(
            timed(
                lambda: subprocess.run(
                    ["streamreg", "run", str(folder / "job.toml"), "--quiet"], check=True
                )
            )
        )
        startup.append(
            timed(lambda: subprocess.run(["streamreg", "version"], check=True, capture_output=True))
        )
    print(
        f"\n(b) nothing new on {args.small_files:,} files of 100 rows (first ingest of all: "
        f"{first:.2f} s)"
    )
    print(
        f"  run_job in process      best {min(in_process) * 1e3:8.1f} ms   median "
        f"{statistics.median(in_process) * 1e3:8.1f} ms"
    )
    print(
        f"  streamreg run (CLI)     best {min(cli) * 1e3:8.1f} ms   median "
        f"{statistics.median(cli) * 1e3:8.1f} ms"
    )
    print(f"  streamreg version       best {min(startup) * 1e3:8.1f} ms   (start-up alone)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--files", type=int, default=20)
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--row-group", type=int, default=10_000)
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--small-files", type=int, default=1000)
    args = parser.parse_args()
    WORK_DIR.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="bench-jobs-") as scratch:
        bench_checkpoints(args, Path(scratch))
        bench_nothing_new(args, Path(scratch))


if __name__ == "__main__":
    main()
