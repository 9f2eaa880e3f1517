"""Epoch throughput and accuracy per epoch of ``solver="sgd"``, next to scikit-learn's SGDRegressor.

Everything runs in this process, on the same files, with a warm page cache:

* **read floor** — read the feature and target columns of every file into float64
  arrays with ``pyarrow.dataset`` (the loop of ``bench_fit.py``), nothing else;
  best of ``--repeat``, measured before and after the contenders.
* **streamreg sgd** — :func:`streamreg.solvers.gradient.solve_gradient` over the files (defaults;
  then ``momentum=0.9`` and ``optimizer="adam"``), ``tol=0`` so every epoch runs. An
  ``on_epoch`` hook records the coefficients and a timestamp after each epoch; the
  epoch time is the median gap between epochs (the first pass and set-up excluded).
* **scikit-learn** — ``StandardScaler.partial_fit`` over the batches (its first
  pass), then per epoch: the files in a seeded order, each record batch
  ``scaler.transform``-ed and given to ``SGDRegressor.partial_fit``; coefficients are
  mapped back to original units after each epoch. With its defaults (``penalty="l2"``,
  ``alpha=1e-4``, ``eta0=0.01``, ``invscaling``) and with ``penalty=None``.
* **streamreg newton** — one Newton step (first pass + a gradient pass), for reference.

Accuracy is the issue's standardized measure against the exact fit
(``solver="exact"``): ``max(maxⱼ |Δβⱼ|·sⱼ/s_y, |Δŷ(μ_x)|/s_y)``. The table gives the
epoch time, rows/s, the ratio floor time / epoch time, the error after the first
and the last epoch, and the first epoch at which the error is ≤ 1e-3 and ≤ 1e-6.

Run from the repository root::

    python bench/bench_sgd.py                          # 10M × 20 (bench_fit's data), 20 epochs
    python bench/bench_sgd.py --rows 1000000 --epochs 20   # a smaller run
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np

BENCH_DIR = Path(__file__).resolve().parent
WORK_DIR = BENCH_DIR / "work"
TARGET = "y"
BATCH_ROWS = 131072
THRESHOLDS = (1e-3, 1e-6)


def ensure_data(rows: int, n_features: int, files: int, seed: int) -> Path:
    """The data of ``bench_fit.py`` for these parameters (same folder name), generated once."""
    data_dir = WORK_DIR / f"rows{rows}-p{n_features}-files{files}-seed{seed}"
    if not (data_dir / "_truth.json").exists():  # written last: its presence means complete
        from streamreg.synthetic import generate

        print(
            f"generating {rows:,} rows x {n_features} features into {data_dir} (once) ...",
            flush=True,
        )
        generate(data_dir, rows=rows, n_features=n_features, files=files, seed=seed, force=True)
    return data_dir


def parquet_files(data_dir: Path) -> list[str]:
    return sorted(str(p) for p in data_dir.glob("*.parquet"))


def batches(files: list[str], columns: list[str]):
    """Float64 ``(x, y)`` per record batch, file by file (the floor's reading loop)."""
    import pyarrow.dataset as ds

    parquet = ds.ParquetFileFormat(
        default_fragment_scan_options=ds.ParquetFragmentScanOptions(
            pre_buffer=False, use_buffered_stream=True, buffer_size=1 << 16
        )
    )
    dataset = ds.dataset(files, format=parquet)
    for batch in dataset.to_batches(
        columns=columns, batch_size=BATCH_ROWS, batch_readahead=2, fragment_readahead=1
    ):
        matrix = np.empty((batch.num_rows, len(columns)), dtype=np.float64, order="F")
        for j, column in enumerate(batch.columns):
            matrix[:, j] = column.to_numpy()
        yield matrix[:, :-1], matrix[:, -1]


def read_floor(files: list[str], columns: list[str]) -> float:
    started = time.perf_counter()
    rows = sum(len(y) for _, y in batches(files, columns))
    assert rows > 0
    return time.perf_counter() - started


class Reference:
    """The exact fit and the scales of the standardized error measure."""

    def __init__(self, data_dir: Path):
        import streamreg

        model = streamreg.fit(data_dir, target=TARGET, solver="exact")
        state = model.state_
        p = model.n_features_in_
        self.coef, self.intercept = model.coef_, model.intercept_
        self.mean = (state.mean + state.mean_lo)[:p]
        scales = np.sqrt(np.diagonal(state.comoment) / state.weight_sum)
        self.sx, self.sy = scales[:p], scales[p]
        self.rows = state.n_rows
        self.features = list(model.feature_names_in_)

    def error(self, coef: np.ndarray, intercept: float) -> float:
        slopes = np.max(np.abs(coef - self.coef) * self.sx / self.sy)
        at_mean = (
            abs((intercept + self.mean @ coef) - (self.intercept + self.mean @ self.coef)) / self.sy
        )
        return float(max(slopes, at_mean))


def run_streamreg(data_dir: Path, ref: Reference, epochs: int, **options) -> dict:
    from streamreg.design import resolve_spec
    from streamreg.engine.blocks import Blocks
    from streamreg.engine.local import LocalRunner
    from streamreg.engine.scan import resolve_batch_size
    from streamreg.io.inputs import to_source
    from streamreg.solvers.gradient import GradientOptions, solve_gradient

    src, target, _ = to_source(data_dir, target=TARGET)
    spec = resolve_spec(src, target=target)
    blocks = Blocks.per_file(src, spec, resolve_batch_size(len(spec.columns)))
    stamps, errors = [], []

    def on_epoch(epoch, coef, intercept):
        stamps.append(time.perf_counter())
        errors.append(ref.error(coef, intercept))

    started = time.perf_counter()
    result = solve_gradient(
        LocalRunner(),
        blocks,
        solver="sgd",
        options=GradientOptions(epochs=epochs, tol=0.0, **options),
        on_epoch=on_epoch,
    )
    total = time.perf_counter() - started
    gaps = np.diff(stamps)
    return {
        "epoch_seconds": float(np.median(gaps)) if len(gaps) else float("nan"),
        "errors": errors,
        "total": total,
        "learning_rate": result.record["options"]["learning_rate"],
    }


def run_sklearn(
    files: list[str], columns: list[str], ref: Reference, epochs: int, seed: int, **params
) -> dict:
    from sklearn.linear_model import SGDRegressor
    from sklearn.preprocessing import StandardScaler

    started = time.perf_counter()
    scaler = StandardScaler()
    for x, _ in batches(files, columns):
        scaler.partial_fit(x)
    model = SGDRegressor(random_state=seed, **params)
    order = np.random.default_rng(seed)
    seconds, errors = [], []
    for _ in range(epochs):
        tick = time.perf_counter()
        for x, y in batches([files[i] for i in order.permutation(len(files))], columns):
            model.partial_fit(scaler.transform(x), y)
        seconds.append(time.perf_counter() - tick)
        coef = model.coef_ / scaler.scale_
        intercept = float(model.intercept_[0] - coef @ scaler.mean_)
        errors.append(ref.error(coef, intercept))
    return {
        "epoch_seconds": float(np.median(seconds)),
        "errors": errors,
        "total": time.perf_counter() - started,
    }


def run_newton(data_dir: Path, ref: Reference) -> dict:
    import streamreg

    started = time.perf_counter()
    model = streamreg.fit(data_dir, target=TARGET, solver="newton")
    total = time.perf_counter() - started
    return {
        "epoch_seconds": float("nan"),
        "errors": [ref.error(model.coef_, model.intercept_)],
        "total": total,
    }


def first_epoch_below(errors: list[float], threshold: float) -> str:
    for epoch, error in enumerate(errors, start=1):
        if error <= threshold:
            return str(epoch)
    return f">{len(errors)}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--rows", type=int, default=10_000_000, help="rows (default 10M, bench_fit's data)"
    )
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--files", type=int, default=8)
    parser.add_argument("--seed", type=int, default=20240611, help="seed of the data (bench_fit's)")
    parser.add_argument("--epochs", type=int, default=20, help="epochs per contender (default 20)")
    parser.add_argument(
        "--repeat", type=int, default=3, help="runs of the read floor, before and after"
    )
    parser.add_argument("--no-sklearn", action="store_true", help="skip scikit-learn")
    args = parser.parse_args(argv)

    data_dir = ensure_data(args.rows, args.features, args.files, args.seed)
    files = parquet_files(data_dir)
    columns = [f"x{j + 1}" for j in range(args.features)] + [TARGET]
    for _ in range(2):  # warm the page cache
        read_floor(files, columns)
    floors = [read_floor(files, columns) for _ in range(args.repeat)]
    ref = Reference(data_dir)
    print(
        f"{ref.rows:,} rows x {args.features} features in {len(files)} files; "
        f"{args.epochs} epochs each; "
        f"standardized error vs the exact fit"
    )

    results: dict[str, dict] = {}
    results["streamreg sgd (defaults)"] = run_streamreg(data_dir, ref, args.epochs)
    results["streamreg sgd momentum=0.9"] = run_streamreg(data_dir, ref, args.epochs, momentum=0.9)
    results["streamreg sgd adam"] = run_streamreg(data_dir, ref, args.epochs, optimizer="adam")
    if not args.no_sklearn:
        results["sklearn SGDRegressor (defaults)"] = run_sklearn(
            files, columns, ref, args.epochs, args.seed
        )
        results["sklearn SGDRegressor penalty=None"] = run_sklearn(
            files, columns, ref, args.epochs, args.seed, penalty=None
        )
    results["streamreg newton (1 step, 2 passes)"] = run_newton(data_dir, ref)
    floors += [read_floor(files, columns) for _ in range(args.repeat)]
    floor = min(floors)

    width = max(len(name) for name in results)
    print(
        f"\n{'read floor':<{width}}  epoch {floor:6.2f} s  {ref.rows / floor / 1e6:6.2f} M rows/s  "
        f"(best of {len(floors)}; median {statistics.median(floors):.2f} s)"
    )
    print(
        f"\n{'contender':<{width}}  {'epoch s':>7}  {'Mrows/s':>7}  {'floor/epoch':>11}  "
        f"{'err ep.1':>9}  {'err last':>9}  {'ep→1e-3':>7}  {'ep→1e-6':>7}  {'total s':>7}"
    )
    for name, result in results.items():
        seconds = result["epoch_seconds"]
        errors = result["errors"]
        rate = ref.rows / seconds / 1e6 if seconds == seconds else float("nan")
        print(
            f"{name:<{width}}  {seconds:7.2f}  {rate:7.2f}  {floor / seconds:11.2f}  "
            f"{errors[0]:9.2e}  {errors[-1]:9.2e}  {first_epoch_below(errors, 1e-3):>7}  "
            f"{first_epoch_below(errors, 1e-6):>7}  "
            f"{result['total']:7.1f}"
        )
    default = results["streamreg sgd (defaults)"]
    print(
        f"\nstreamreg's automatic learning rate: {default['learning_rate']:.3g}; errors per epoch "
        "(defaults): " + " ".join(f"{e:.1e}" for e in default["errors"])
    )


if __name__ == "__main__":
    main()
