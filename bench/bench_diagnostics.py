"""Per-batch compute cost of the residual pass's accumulators, against the first pass's Gram update.

The residual pass reads the same columns as the fit, so decoding and copying cost the same in
both; what differs is the work per batch after the copy. This times, on in-memory batches of
131072 rows × 20 features (one BLAS thread, best of ``--repeat``), the first pass's
``MomentState.from_arrays`` and each piece a residual pass would run:

* residuals (plain and compensated), whitening, ``ResidualDiagnostics.update``;
* robust pieces: HAC scores and ``NeweyWestMeat.update`` (maxlags 2), two-way cluster sums;
* plot pieces: leverage and studentized residuals, two 200 × 200 histograms, the quantile
  sketch, the influential-rows top-k.

Run from the repository root::

    python bench/bench_diagnostics.py            # ~20 s
    python bench/bench_diagnostics.py --rows 16384 --features 200
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from threadpoolctl import threadpool_limits

from streamreg.model.diagnostics import ResidualDiagnostics
from streamreg.model.diagnostics.accumulators import Histogram2D, InfluentialRows
from streamreg.model.diagnostics.residuals import leverage, residuals, scores, studentized, whiten
from streamreg.model.diagnostics.sketch import QuantileSketch
from streamreg.model.hac import NeweyWestMeat
from streamreg.model.twoway import TwoWayClusterMeat
from streamreg.solvers.moments import MomentState


def best_ms(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.process_time()
        fn()
        times.append(time.process_time() - start)
    return 1e3 * min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=131072)
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    n, p = args.rows, args.features
    x = rng.normal(size=(n, p)) + 3.0
    y = x @ rng.normal(size=p) + rng.normal(size=n)
    w = rng.uniform(0.5, 2.0, size=n)
    names = [f"x{j}" for j in range(p)] + ["y"]
    z = np.asfortranarray(np.column_stack([x, y]))
    state = MomentState.from_arrays(z, names=names)
    inverse = np.linalg.inv(state.comoment[:p, :p])
    beta = np.linalg.solve(state.comoment[:p, :p], state.comoment[:p, p])
    mean, mean_lo = state.mean, state.mean_lo
    xc = x - mean[:p]
    e = residuals(x, y, beta, mean=mean, mean_lo=mean_lo)
    r = whiten(e, w)
    h = leverage(xc, inverse, 1.0 / n, w)
    s = studentized(r, h, 1.0)
    fitted = y - e
    g1, g2 = rng.integers(0, 50, size=n), rng.integers(0, 20, size=n)
    u = scores(xc, e, w, True)
    rows = np.arange(n)
    hist = Histogram2D.for_residuals(float(mean[p]), float(fitted.std()), float(e.std()))
    pieces = {
        "first pass: MomentState.from_arrays": lambda: MomentState.from_arrays(z, names=names),
        "residuals (plain)": lambda: residuals(x, y, beta, mean=mean, mean_lo=mean_lo),
        "residuals (compensated)": lambda: residuals(
            x, y, beta, mean=mean, mean_lo=mean_lo, compensated=True
        ),
        "whiten": lambda: whiten(e, w),
        "ResidualDiagnostics.update": lambda: ResidualDiagnostics().update(r),
        "scores (for HAC / clusters)": lambda: scores(xc, e, w, True),
        "NeweyWestMeat.update (maxlags 2)": lambda: NeweyWestMeat(2, p + 1).update(u),
        "TwoWayClusterMeat.update (50 × 20)": lambda: TwoWayClusterMeat(p + 1).update(u, g1, g2),
        "leverage + studentized": lambda: studentized(r, leverage(xc, inverse, 1.0 / n, w), 1.0),
        "2 × Histogram2D.update (200 × 200)": lambda: (
            hist.update(fitted, e),
            hist.update(fitted, np.sqrt(np.abs(s))),
        ),
        "QuantileSketch.update": lambda: QuantileSketch().update(s),
        "InfluentialRows.update (k = 10)": lambda: InfluentialRows(10, p + 1).update(
            rows, h, s, fitted
        ),
    }
    with threadpool_limits(limits=1, user_api="blas"):
        timings = {name: best_ms(fn, args.repeat) for name, fn in pieces.items()}
    base = timings["first pass: MomentState.from_arrays"]
    print(f"{n} rows × {p} features, one BLAS thread, best of {args.repeat} (CPU ms per batch)")
    for name, ms in timings.items():
        print(f"  {name:40s} {ms:8.2f} ms   {ms / base:6.2f} × first pass")
    plain = sum(timings[k] for k in ("residuals (plain)", "whiten", "ResidualDiagnostics.update"))
    print(
        f"  {'summary pass (plain residuals + moments + DW)':40s} {plain:8.2f} ms   "
        f"{plain / base:6.2f} ×"
    )


if __name__ == "__main__":
    main()
