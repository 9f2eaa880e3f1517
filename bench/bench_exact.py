"""Cost of the exact state against the centered Gram state, measured in the same run.

    python bench/bench_exact.py [--repeat 7] [--cpu]

Prints, per batch shape, the best-of-N time of ``MomentState.from_arrays`` and
``ExactState.from_arrays`` (unweighted and weighted) and their ratio, then the
time of ``solve_exact`` for p = 20 and p = 200 (and of the cholesky solve, for scale).
Times interleave the two states so that machine load affects both alike. On a
busy machine, ``OPENBLAS_NUM_THREADS=1 python bench/bench_exact.py --cpu``
(process CPU time, one BLAS thread) gives the steadiest ratios.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from streamreg.solvers.exact import ExactState, solve_exact
from streamreg.solvers.moments import MomentState, solve_normal_equations

CLOCK = time.perf_counter


def best_time(fn, repeat):
    best = float("inf")
    for _ in range(repeat):
        start = CLOCK()
        fn()
        best = min(best, CLOCK() - start)
    return best


def accumulate(shape, repeat, rng):
    rows, columns = shape
    z = np.asfortranarray(rng.normal(size=(rows, columns)))
    w = rng.uniform(0.5, 2.0, size=rows)
    names = [f"c{j}" for j in range(columns)]
    times = {"moment": [], "exact": [], "moment_w": [], "exact_w": []}
    for _ in range(repeat):
        times["moment"].append(best_time(lambda: MomentState.from_arrays(z, names=names), 1))
        times["exact"].append(best_time(lambda: ExactState.from_arrays(z, names=names), 1))
        times["moment_w"].append(best_time(lambda: MomentState.from_arrays(z, w, names=names), 1))
        times["exact_w"].append(best_time(lambda: ExactState.from_arrays(z, w, names=names), 1))
    best = {key: min(value) for key, value in times.items()}
    mb = z.nbytes / 1e6
    print(f"{rows} × {columns} ({mb:.0f} MB):")
    for label, moment, exact in (
        ("unweighted", "moment", "exact"),
        ("weighted", "moment_w", "exact_w"),
    ):
        print(
            f"  {label:10s}  MomentState {best[moment] * 1e3:7.1f} ms   ExactState "
            f"{best[exact] * 1e3:7.1f} ms"
            f"   ratio {best[exact] / best[moment]:5.1f}×   ({mb / best[exact]:.0f} MB/s exact)"
        )


def solve_times(p, repeat, rng):
    rows = max(4 * p, 2000)
    x = rng.normal(size=(rows, p)) * rng.uniform(0.5, 20, size=p) + rng.uniform(-100, 100, size=p)
    y = 7.5 + x @ rng.uniform(1, 3, size=p) + rng.normal(scale=2.0, size=rows)
    z = np.column_stack([x, y])
    names = [f"x{j}" for j in range(p)] + ["y"]
    exact = ExactState.from_arrays(z, names=names)
    moment = MomentState.from_arrays(z, names=names)
    t_exact = best_time(lambda: solve_exact(exact), max(1, repeat // 3))
    t_chol = best_time(lambda: solve_normal_equations(moment), repeat)
    print(
        f"solve p = {p:3d}: solve_exact {t_exact * 1e3:8.1f} ms   cholesky {t_chol * 1e3:6.2f} ms"
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument(
        "--cpu", action="store_true", help="measure process CPU time instead of wall time"
    )
    args = parser.parse_args()
    global CLOCK
    if args.cpu:
        CLOCK = time.process_time
    rng = np.random.default_rng(20240611)
    for shape in ((131072, 21), (16384, 201)):
        accumulate(shape, args.repeat, rng)
    for p in (20, 200):
        solve_times(p, args.repeat, rng)


if __name__ == "__main__":
    main()
