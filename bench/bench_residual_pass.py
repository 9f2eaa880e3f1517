"""The residual pass against the fit's first pass, and the memory of diagnostic plots.

1. **Time.** ``streamreg.fit(DIR, target="y")`` and ``streamreg.fit(..., diagnostics=True)``,
   each in a fresh subprocess, alternating, ``--repeat`` times, on a warm page cache. Each run
   records the wall time of every pass (the first pass, "fit", and the residual pass) by
   timing the local runner's ``map_reduce`` calls, so the ratio *residual pass / first pass*
   is taken within one run. (On the default data — ``y = 1 + Σ j·xⱼ + N(0, 1)``, R² ≈ 0.9996 —
   the first pass's SSR keeps only ~12 digits, so a plain fit runs the residual pass too, to
   recompute it; ``--noise 20`` gives data where it does not.)
2. **Plot memory.** ``streamreg plot model.json --data DIR`` (the real console script: one
   pass, four panels, a PNG) on the data and on the same files listed 4 times, each in a
   fresh subprocess: peak RSS (``os.wait4``) must not grow with the rows.

The data (10M rows × 20 features in 8 files by default, about 2 GB) is generated once into
``bench/work/`` by ``bench_fit.py``'s helper and reused.

Run from the repository root::

    python bench/bench_residual_pass.py                            # 10M × 20, a few minutes
    python bench/bench_residual_pass.py --rows 200000 --repeat 1   # a smoke run
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

from bench_fit import (
    WORK_DIR,
    Runs,
    ensure_data,
    ensure_repeated_listing,
    run_child,
    streamreg_command,
    warm_page_cache,
)

TARGET_PASS_RATIO = 1.2  # the figure: the diagnostics pass ≤ 1.2× a plain fit
TARGET_GROWTH_RATIO = 1.10

CHILD = """
import json, sys, time
import streamreg
from streamreg.engine import local

passes = []
original = local.LocalRunner.map_reduce

def timed(self, blocks, task, *args, label="reading", **kwargs):
    started = time.perf_counter()
    result = original(self, blocks, task, *args, label=label, **kwargs)
    passes.append([label, time.perf_counter() - started])
    return result

local.LocalRunner.map_reduce = timed
started = time.perf_counter()
model = streamreg.fit(sys.argv[1], target="y", diagnostics=sys.argv[2] == "1")
total = time.perf_counter() - started
print(json.dumps({"passes": passes, "total": total, "diagnostics": model.diagnostics,
                  "notes": model.warnings_}))
"""


def timing(data_dir: Path, repeat: int) -> None:
    runs = {False: [], True: []}
    for _ in range(repeat):
        for diagnostics in (False, True):
            out = run_child(
                [sys.executable, "-c", CHILD, str(data_dir), "1" if diagnostics else "0"],
                Runs("fit", 0),
            )
            runs[diagnostics].append(json.loads(out))
    print("\n1. Passes of a fit (wall seconds; best / median over the runs)")
    for diagnostics, results in runs.items():
        label = "fit(diagnostics=True)" if diagnostics else "fit()"
        first = [r["passes"][0][1] for r in results]
        second = [r["passes"][1][1] for r in results if len(r["passes"]) > 1]
        ratios = [r["passes"][1][1] / r["passes"][0][1] for r in results if len(r["passes"]) > 1]
        totals = [r["total"] for r in results]
        line = (
            f"  {label:<24} total {min(totals):6.2f} / {statistics.median(totals):6.2f}   "
            f"first pass {min(first):6.2f} / {statistics.median(first):6.2f}"
        )
        if second:
            line += (
                f"   residual pass {min(second):6.2f} / {statistics.median(second):6.2f}   "
                f"residual/first {min(ratios):.2f} / {statistics.median(ratios):.2f}"
            )
        print(line)
        print(f"      passes: {[label for label, _ in results[0]['passes']]}")
    ratio = statistics.median(
        r["passes"][1][1] / r["passes"][0][1] for r in runs[True] if len(r["passes"]) > 1
    )
    verdict = "meets" if ratio <= TARGET_PASS_RATIO else "MISSES"
    print(f"  diagnostics pass / first pass (median): {ratio:.2f}; {verdict} ≤ {TARGET_PASS_RATIO}")


def plot_memory(data_dir: Path, rows: int, repeat: int) -> None:
    grown_dir = ensure_repeated_listing(data_dir, 4)
    warm_page_cache(data_dir)
    with tempfile.TemporaryDirectory() as tmp:
        model_path = WORK_DIR / "bench-residual-model.json"
        run_child(
            [*streamreg_command(), "fit", str(data_dir), "-y", "y", "-q", "-o", str(model_path)],
            Runs("fit", rows),
        )
        one, four = Runs("plot, 1x rows", rows), Runs("plot, 4x rows", 4 * rows)
        for _ in range(repeat):
            for runs, folder in ((one, data_dir), (four, grown_dir)):
                out = Path(tmp) / "diag.png"
                command = [*streamreg_command(), "plot", str(model_path), "--data", str(folder)]
                run_child([*command, "-o", str(out), "-q"], runs)
                assert out.stat().st_size > 10_000
    print("\n2. streamreg plot --data (one pass, four panels, PNG): wall seconds and peak RSS")
    for runs in (one, four):
        print(
            f"  {runs.label:<16} {runs.rows:>12,} rows  best {runs.best:7.2f} s   "
            f"peak RSS {runs.rss:7.0f} MB"
        )
    growth = four.rss / one.rss
    verdict = "meets" if growth <= TARGET_GROWTH_RATIO else "MISSES"
    print(f"  peak RSS 4x / 1x: {growth:.3f}; {verdict} ≤ {TARGET_GROWTH_RATIO}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--files", type=int, default=8)
    parser.add_argument("--seed", type=int, default=20240611)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-plot", action="store_true")
    args = parser.parse_args()
    data_dir = ensure_data(args.rows, args.features, args.files, args.seed)
    warm_page_cache(data_dir)
    timing(data_dir, args.repeat)
    if not args.skip_plot:
        plot_memory(data_dir, args.rows, args.repeat)


if __name__ == "__main__":
    main()
