"""How long the command line takes to start, against ``import numpy`` and the library in process.

Each contender is a fresh subprocess, timed from ``Popen`` to exit; the contenders run in
turn, ``--repeat`` rounds of all of them (interleaved, so that the neighbours' load falls on
all alike), and the table gives the best and the median wall time:

* ``python -c 'import numpy'`` — the yardstick: the start-up budget of ``streamreg --help``,
  ``streamreg version`` and ``streamreg --version`` is 0.3 s and 3× this, measured in the
  same run;
* ``python -c 'import streamreg'``, ``streamreg --help``, ``streamreg --version``,
  ``streamreg version``, ``streamreg fit --help`` — the console script next to this
  interpreter (not a pyenv shim, which adds its own ~0.1 s);
* ``streamreg fit DIR --target y --quiet`` end to end on a small and a medium data set, and
  beside it the library call ``streamreg.fit(DIR, target="y")`` timed inside one process
  (a child that imports streamreg, calls it once untimed, then times ``--calls`` calls and
  keeps the best): the difference is what the command line adds — start-up and the
  imports a first call pays.

With ``--before CHECKOUT`` (another copy of the repository, e.g. the main branch) every
contender also runs with ``PYTHONPATH=CHECKOUT``, interleaved with this checkout's runs,
and the table shows both and their ratio. The data (bench_fit's generator) is written once
into ``bench/work/`` and reused.

Run from the repository root::

    python bench/bench_startup.py                          # 7 rounds, 10k and 1M rows
    python bench/bench_startup.py --before ../main         # this checkout against another
    python bench/bench_startup.py --repeat 2 --medium-rows 100000   # a smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench_fit import ensure_data, streamreg_command, warm_page_cache

ROOT = Path(__file__).resolve().parents[1]
BUDGET_SECONDS = 0.3
BUDGET_NUMPY_RATIO = 3.0
BUDGETED = ("streamreg --help", "streamreg --version", "streamreg version")

# A child that times the library call in its own process (imports paid before the clock).
LIBRARY_CALL = """
import json, sys, time
import streamreg
path, calls = sys.argv[1], int(sys.argv[2])
streamreg.fit(path, target="y")  # the first call imports what fitting needs; not timed
best = float("inf")
for _ in range(calls):
    started = time.perf_counter()
    streamreg.fit(path, target="y")
    best = min(best, time.perf_counter() - started)
print(json.dumps(best))
"""


def timed(command: list[str], checkout: Path) -> tuple[float, str]:
    """Wall time of ``command`` run with ``PYTHONPATH=checkout``, from start to exit, and its
    stdout; a failure stops the bench. It runs in ``checkout``: ``python -c`` puts its working
    directory first on ``sys.path``, before PYTHONPATH."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(checkout)
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=checkout)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"{' '.join(command)} failed with exit code {done.returncode}:\n{done.stderr}")
    return wall, done.stdout


def contenders(small: Path, medium: Path) -> dict[str, list[str]]:
    script = streamreg_command()
    python = sys.executable
    return {
        "python -c 'import numpy'": [python, "-c", "import numpy"],
        "python -c 'import streamreg'": [python, "-c", "import streamreg"],
        "streamreg --help": [*script, "--help"],
        "streamreg --version": [*script, "--version"],
        "streamreg version": [*script, "version"],
        "streamreg fit --help": [*script, "fit", "--help"],
        "streamreg fit SMALL": [*script, "fit", str(small), "--target", "y", "--quiet"],
        "streamreg fit MEDIUM": [*script, "fit", str(medium), "--target", "y", "--quiet"],
    }


def measure(args) -> tuple[dict, dict, dict]:
    small = ensure_data(args.small_rows, args.features, 1, seed=7)
    medium = ensure_data(args.medium_rows, args.features, args.medium_files, seed=7)
    for data in (small, medium):
        warm_page_cache(data)
    commands = contenders(small, medium)
    checkouts = {"after": ROOT}
    if args.before:
        checkouts["before"] = Path(args.before).resolve()
    walls = {(name, label): [] for name in commands for label in checkouts}
    library = {(size, label): [] for size in ("SMALL", "MEDIUM") for label in checkouts}
    for round_ in range(args.repeat):
        print(f"round {round_ + 1}/{args.repeat}", flush=True)
        for name, command in commands.items():
            for label, checkout in checkouts.items():
                walls[name, label].append(timed(command, checkout)[0])
        for size, data in (("SMALL", small), ("MEDIUM", medium)):
            for label, checkout in checkouts.items():
                child = [sys.executable, "-c", LIBRARY_CALL, str(data), str(args.calls)]
                library[size, label].append(json.loads(timed(child, checkout)[1]))
    return walls, library, checkouts


def report(walls: dict, library: dict, checkouts: dict, args) -> None:
    labels = list(checkouts)
    numpy = {label: min(walls["python -c 'import numpy'", label]) for label in labels}
    head = "| contender |" + "".join(
        f" {label} best s | {label} median s | {label} × numpy |" for label in labels
    )
    if "before" in labels:
        head += " after / before |"
    print()
    for label, checkout in checkouts.items():
        print(f"{label}: PYTHONPATH={checkout}")
    print(f"{args.repeat} rounds, best and median wall time of fresh subprocesses\n")
    print(head)
    print("|---|" + "---:|" * (3 * len(labels) + ("before" in labels)))
    for name in dict.fromkeys(n for n, _ in walls):
        row = f"| {name} |"
        for label in labels:
            runs = walls[name, label]
            row += f" {min(runs):.3f} | {statistics.median(runs):.3f} |"
            row += f" {min(runs) / numpy[label]:.2f} |"
        if "before" in labels:
            row += f" {min(walls[name, 'after']) / min(walls[name, 'before']):.2f} |"
        print(row)

    print("\nThe command line against the library call in process (best of each):\n")
    print("| data | checkout | streamreg fit s | streamreg.fit() s | ratio | difference s |")
    print("|---|---|---:|---:|---:|---:|")
    sizes = {"SMALL": args.small_rows, "MEDIUM": args.medium_rows}
    for size, rows in sizes.items():
        for label in labels:
            cli = min(walls[f"streamreg fit {size}", label])
            call = min(library[size, label])
            print(
                f"| {rows:,} rows × {args.features} | {label} | {cli:.3f} | {call:.3f} | "
                f"{cli / call:.1f} | {cli - call:.3f} |"
            )

    print(f"\nBudget (this checkout): ≤ {BUDGET_SECONDS} s and ≤ {BUDGET_NUMPY_RATIO:g}× numpy")
    for name in BUDGETED:
        best = min(walls[name, "after"])
        ratio = best / numpy["after"]
        met = best <= BUDGET_SECONDS and ratio <= BUDGET_NUMPY_RATIO
        print(f"  {name}: {best:.3f} s, {ratio:.2f}× numpy — {'met' if met else 'NOT met'}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7, help="rounds of every contender")
    parser.add_argument("--calls", type=int, default=3, help="timed library calls per child")
    parser.add_argument("--small-rows", type=int, default=10_000)
    parser.add_argument("--medium-rows", type=int, default=1_000_000)
    parser.add_argument("--medium-files", type=int, default=4)
    parser.add_argument("--features", type=int, default=10)
    parser.add_argument("--before", metavar="CHECKOUT", help="another checkout to compare")
    args = parser.parse_args(argv)
    walls, library, checkouts = measure(args)
    report(walls, library, checkouts, args)


if __name__ == "__main__":
    main()
