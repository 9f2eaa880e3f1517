"""The numerical core of ``streamreg cv``: fold accumulation and the 5-fold, 100-alpha path.

On in-memory synthetic data (no Parquet: this times the math, not the reading):

* **accumulate** — ``FoldStates.update`` (rows sorted by fold once per batch, one state
  per fold) against a plain ``MomentState.from_arrays`` + merge over the same batches;
* **path** — ``cross_validate_path`` on the fold states: K training paths and the refit
  on the total state (K + 1 warm-started 100-alpha paths), for several ``l1_ratio``;
* **scikit-learn** — ``ElasticNetCV`` with the same folds (``PredefinedSplit``) on the
  same rows in memory, as a reference, and the largest gap between the two ``mse_path_``.

    python bench/bench_penalized_core.py                    # 20 and 200 features
    python bench/bench_penalized_core.py --rows 20000 --repeat 1   # smoke
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import numpy as np
from threadpoolctl import threadpool_limits

from streamreg.engine.fold_ids import position_folds
from streamreg.engine.fold_states import FoldStates
from streamreg.solvers.moments import MomentState
from streamreg.solvers.penalized import cross_validate_path

BATCH_ROWS = 65_536


def make_data(rows: int, features: int, seed: int = 0):
    """Correlated columns (ρ = 0.5), a third of the coefficients non-zero, noise SD 2."""
    rng = np.random.default_rng(seed)
    x = np.sqrt(0.5) * rng.normal(size=(rows, features)) + np.sqrt(0.5) * rng.normal(size=(rows, 1))
    beta = rng.normal(size=features) * (rng.uniform(size=features) < 1 / 3)
    y = x @ beta + 2.0 * rng.normal(size=rows) + 1.0
    return np.column_stack([x, y])


def batches(z):
    """Column-major batches, as ``streamreg.design`` hands them to the states."""
    return [
        (start, np.asfortranarray(z[start : start + BATCH_ROWS]))
        for start in range(0, len(z), BATCH_ROWS)
    ]


def accumulate_folds(parts, names, k):
    folds = FoldStates.empty(MomentState, names, n_folds=k)
    for start, batch in parts:
        folds.update(batch, None, position_folds("data", start, len(batch), k))
    return folds


def accumulate_plain(parts, names):
    state = MomentState.empty(names)
    for _, batch in parts:
        state = state.merge(MomentState.from_arrays(batch, names=names))
    return state


def best_of(repeat, func, *args, **kwargs):
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = func(*args, **kwargs)
        times.append(time.perf_counter() - start)
    return min(times), statistics.median(times), result


def sklearn_cv(z, ids, l1_ratio):
    from sklearn.linear_model import ElasticNetCV
    from sklearn.model_selection import PredefinedSplit

    model = ElasticNetCV(l1_ratio=l1_ratio, cv=PredefinedSplit(ids), tol=1e-10, max_iter=100_000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return model.fit(z[:, :-1], z[:, -1])


def run(rows: int, features: int, k: int, repeat: int, sklearn_rows: int) -> None:
    z = make_data(rows, features)
    names = [f"x{j}" for j in range(features)] + ["y"]
    print(
        f"\n{rows:,} rows x {features} features, {k} folds, 100 alphas "
        f"(batches of {BATCH_ROWS:,} rows)"
    )
    parts = batches(z)
    plain, plain_med, _ = best_of(repeat, accumulate_plain, parts, names)
    fold, fold_med, folds = best_of(repeat, accumulate_folds, parts, names, k)
    print(
        f"  accumulate   plain state {plain * 1e3:8.1f} ms (median {plain_med * 1e3:.1f})   "
        f"{k} fold states {fold * 1e3:8.1f} ms (median {fold_med * 1e3:.1f})   "
        f"ratio {fold / plain:.2f}"
    )
    for l1_ratio in (1.0, 0.5, 0.0):
        grid = 100 if l1_ratio > 0 else np.geomspace(10.0, 1e-3, 100)
        best, median, result = best_of(
            repeat, cross_validate_path, folds, l1_ratio=l1_ratio, alphas=grid
        )
        sweeps = sum(int(p.n_iter.sum()) for p in result.paths)
        print(
            f"  path l1_ratio={l1_ratio:<4} {best * 1e3:8.1f} ms (median {median * 1e3:.1f})   "
            f"refit sweeps {sweeps:5d}   best alpha {result.alpha_:.4g}, "
            f"1-SE alpha {result.alpha_1se:.4g}, non-zero {result.best_fit.coef.astype(bool).sum()}"
        )
    if sklearn_rows:
        small = z[:sklearn_rows]
        ids = position_folds("data", 0, len(small), k)
        small_folds = FoldStates.empty(MomentState, names, n_folds=k).update(small, None, ids)
        ours_t, _, ours = best_of(1, cross_validate_path, small_folds, l1_ratio=0.5, tol=1e-10)
        theirs_t, _, theirs = best_of(1, sklearn_cv, small, ids, 0.5)
        gap = np.max(np.abs(ours.mse_path_ / theirs.mse_path_ - 1))
        print(
            f"  vs scikit-learn ElasticNetCV (l1_ratio=0.5, same folds, first {len(small):,} "
            f"rows): {theirs_t * 1e3:.0f} ms vs our path {ours_t * 1e3:.0f} ms (+ accumulation); "
            f"max relative mse_path_ difference {gap:.1e}, "
            f"same alpha: {abs(ours.alpha_ / theirs.alpha_ - 1) < 1e-12}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--wide-rows", type=int, default=50_000)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--sklearn-rows",
        type=int,
        default=20_000,
        help="rows for the scikit-learn comparison (0 to skip)",
    )
    args = parser.parse_args()
    with threadpool_limits(1):  # as during a streaming pass on 2 shared cores
        run(args.rows, 20, args.folds, args.repeat, args.sklearn_rows)
        run(args.wide_rows, 200, args.folds, args.repeat, args.sklearn_rows)


if __name__ == "__main__":
    main()
