"""Throughput of each solver relative to cholesky, on the same data in the same run.

For each solver the whole ``streamreg.fit`` runs in this process (reading,
folding, solving; ``auto`` included), timed by wall clock and by CPU time,
alternating the solvers ``--repeat`` times. Shapes: the 10M × 20 bench data
and a wide 1M × 200 set (generated once into ``bench/work/``).

    python bench/bench_solvers.py                               # both shapes
    python bench/bench_solvers.py --rows 200000 --wide-rows 20000 --repeat 1   # smoke
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_fit import ensure_data  # noqa: E402

import streamreg  # noqa: E402

SOLVERS = ["cholesky", "auto", "qr", "exact"]


def measure(data: Path, repeat: int) -> dict[str, list[tuple[float, float]]]:
    runs: dict[str, list[tuple[float, float]]] = {s: [] for s in SOLVERS}
    for _ in range(repeat):
        for solver in SOLVERS:
            wall, cpu = time.perf_counter(), time.process_time()
            streamreg.fit(data, target="y", solver=solver)
            runs[solver].append((time.perf_counter() - wall, time.process_time() - cpu))
    return runs


def report(title: str, runs) -> None:
    base = min(w for w, _ in runs["cholesky"])
    base_cpu = statistics.median(c for _, c in runs["cholesky"])
    print(title)
    print(
        f"  {'solver':<10}{'best s':>9}{'median s':>10}{'CPU s':>9}"
        f"{'throughput / cholesky':>24}{'CPU ratio':>11}"
    )
    for solver, values in runs.items():
        walls = [w for w, _ in values]
        cpu = statistics.median(c for _, c in values)
        print(
            f"  {solver:<10}{min(walls):>9.2f}{statistics.median(walls):>10.2f}{cpu:>9.2f}"
            f"{base / min(walls):>24.2f}{base_cpu / cpu:>11.2f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--wide-rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    tall = ensure_data(args.rows, 20, 8, 20240611)
    report(f"{args.rows:,} rows × 20 features", measure(tall, args.repeat))
    wide = ensure_data(args.wide_rows, 200, 4, 20240611)
    report(f"{args.wide_rows:,} rows × 200 features", measure(wide, args.repeat))


if __name__ == "__main__":
    main()
