"""The whole cross-validated elastic-net path against one plain fit, and side by side with
scikit-learn's ElasticNetCV, dask-ml and Spark's CrossValidator.

(a) ``streamreg fit DIR --target y --quiet`` and ``streamreg cv DIR --target y --l1-ratio 0.5
    --folds 5 --alphas 100 --quiet``, alternating ``--repeat`` times, each a fresh subprocess
    (the console script, start-up included): wall time, CPU time and peak RSS (``wait4``).
    Targets: cv / fit ≤ 1.3 in time; cv's peak RSS beyond the fit's ≤ K+1 states.
(b) scikit-learn ``ElasticNetCV(l1_ratio=0.5, alphas=100, cv=PredefinedSplit(folds))`` in
    memory on the first ``--sklearn-files`` files, with exactly streamreg's folds (the hash of
    file and row position): its time and peak RSS (a subprocess, loading included), then
    ``streamreg cv`` on the same files, the largest relative difference of the two
    ``mse_path_`` and whether they chose the same alpha. scikit-learn runs at its default
    ``tol`` (1e-4), as users run it.
(c) dask-ml ``LinearRegression(penalty="elastic_net")`` (ADMM) — one fit at streamreg's
    chosen alpha on the first ``--dask-ml-files`` files (a Dask array of the Parquet rows,
    the threaded scheduler), if dask-ml imports (``--dask-ml-path`` adds an install folder);
    a CV path there would be 5 × 100 such fits.
(d) Spark ``CrossValidator`` over ``LinearRegression(elasticNetParam=1.0,
    standardization=False)`` with a ``regParam`` grid of ``--spark-alphas`` values and
    ``foldCol`` = streamreg's folds, on ``local[2]`` at 127.0.0.1, on the first
    ``--spark-rows`` rows; the same grid and folds through ``streamreg cv``: time and the
    largest relative difference of the mean CV errors. The lasso, because there Spark's
    objective is scikit-learn's: Spark standardizes the label internally and divides the
    ridge term by its SD, so at elasticNetParam 0.5 the two objectives differ.

Run from the repository root (the data is bench_fit.py's, generated once into bench/work/)::

    python bench/bench_cv.py                                  # 10M × 20, 3 runs each
    python bench/bench_cv.py --rows 200000 --repeat 1 --sklearn-files 2 --spark-rows 20000
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
from pathlib import Path

from bench_fit import WORK_DIR, Runs, ensure_data, run_child, streamreg_command, warm_page_cache

TARGET = "y"
FOLDS = 5
L1_RATIO = 0.5
ALPHAS = 100
TARGET_TIME_RATIO = 1.3
SPARK_L1_RATIO = 1.0  # the lasso: there Spark's objective is scikit-learn's (see (d))


# ---------------------------------------------------------------------- helpers (children)
def files_of(data_dir: str, count: int | None = None) -> list[str]:
    files = sorted(str(p) for p in Path(data_dir).glob("*.parquet"))
    return files[:count] if count else files


def load_rows(files: list[str], n_features: int, limit: int | None = None):
    """X, y and streamreg's position folds of the rows of ``files`` (first ``limit`` rows)."""
    import numpy as np
    import pyarrow.parquet as pq

    from streamreg.engine.fold_ids import file_id, position_folds

    xs, ys, folds, taken = [], [], [], 0
    columns = [f"x{j + 1}" for j in range(n_features)]
    for path in files:
        table = pq.read_table(path, columns=[*columns, TARGET])
        if limit is not None:
            table = table.slice(0, limit - taken)
        n = table.num_rows
        xs.append(np.column_stack([table.column(c).to_numpy() for c in columns]))
        ys.append(table.column(TARGET).to_numpy())
        folds.append(position_folds(file_id(path, {}), 0, n, FOLDS))
        taken += n
        if limit is not None and taken >= limit:
            break
    return np.vstack(xs), np.concatenate(ys), np.concatenate(folds)


def child_sklearn(data_dir: str, n_files: int, n_features: int, out: str) -> None:
    import numpy as np
    from sklearn.linear_model import ElasticNetCV
    from sklearn.model_selection import PredefinedSplit

    x, y, folds = load_rows(files_of(data_dir, n_files), n_features)
    started = time.perf_counter()
    model = ElasticNetCV(l1_ratio=L1_RATIO, alphas=ALPHAS, cv=PredefinedSplit(folds)).fit(x, y)
    seconds = time.perf_counter() - started
    np.savez(out, mse_path=model.mse_path_, alphas=model.alphas_, alpha=model.alpha_,
             seconds=seconds, rows=len(y))  # fmt: skip


def child_dask_ml(data_dir: str, n_files: int, n_features: int, alpha: float, out: str) -> None:
    import dask
    import dask.array as da
    import numpy as np
    import pyarrow.parquet as pq
    from dask_ml.linear_model import LinearRegression

    columns = [f"x{j + 1}" for j in range(n_features)]

    def read(path, names):
        table = pq.read_table(path, columns=names)
        return np.column_stack([table.column(c).to_numpy() for c in names])

    paths = files_of(data_dir, n_files)
    sizes = [pq.ParquetFile(path).metadata.num_rows for path in paths]
    x = da.concatenate(
        [
            da.from_delayed(dask.delayed(read)(path, columns), (m, n_features), float)
            for path, m in zip(paths, sizes)
        ]
    )
    y = da.concatenate(
        [
            da.from_delayed(dask.delayed(read)(path, [TARGET]), (m, 1), float)[:, 0]
            for path, m in zip(paths, sizes)
        ]
    )
    n = int(x.shape[0])
    # dask-glm minimizes ½‖y − Xβ‖² + λ(w‖β‖₁ + (1 − w)·½‖β‖²), w = 0.5: λ = n·α.
    with dask.config.set(scheduler="threads"):
        started = time.perf_counter()
        model = LinearRegression(penalty="elastic_net", C=1.0 / (n * alpha), max_iter=100)
        model.fit(x, y)
        seconds = time.perf_counter() - started
    np.savez(out, coef=model.coef_, intercept=model.intercept_, seconds=seconds, rows=n)


def child_spark(data_dir: str, n_features: int, rows: int, grid: list[float], out: str) -> None:
    import numpy as np
    import pandas as pd

    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    from pyspark.ml.evaluation import RegressionEvaluator
    from pyspark.ml.feature import VectorAssembler
    from pyspark.ml.regression import LinearRegression
    from pyspark.ml.tuning import CrossValidator, ParamGridBuilder
    from pyspark.sql import SparkSession

    started = time.perf_counter()
    spark = (
        SparkSession.builder.master("local[2]")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "4")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    session = time.perf_counter() - started
    x, y, folds = load_rows(files_of(data_dir), n_features, limit=rows)
    columns = [f"x{j + 1}" for j in range(n_features)]
    frame = pd.DataFrame(x, columns=columns)
    frame[TARGET], frame["fold"] = y, folds.astype("int32")
    data = VectorAssembler(inputCols=columns, outputCol="features").transform(
        spark.createDataFrame(frame)
    )
    data = data.select("features", TARGET, "fold").repartition(2).cache()
    data.count()
    regression = LinearRegression(
        featuresCol="features", labelCol=TARGET, elasticNetParam=SPARK_L1_RATIO,
        standardization=False, fitIntercept=True, maxIter=1000, tol=1e-10,
    )  # fmt: skip
    grid_params = ParamGridBuilder().addGrid(regression.regParam, grid).build()
    validator = CrossValidator(
        estimator=regression,
        estimatorParamMaps=grid_params,
        evaluator=RegressionEvaluator(labelCol=TARGET, metricName="mse"),
        foldCol="fold",
        numFolds=FOLDS,
        parallelism=1,
    )
    started = time.perf_counter()
    fitted = validator.fit(data)
    seconds = time.perf_counter() - started
    alphas = [m[regression.regParam] for m in grid_params]
    np.savez(out, alphas=alphas, mse=fitted.avgMetrics, seconds=seconds, session=session,
             rows=len(y), coef=fitted.bestModel.coefficients.toArray(),
             jvm_peak_mb=_children_peak_rss_mb())  # fmt: skip
    spark.stop()


def _children_peak_rss_mb() -> float:
    """The largest peak RSS (VmHWM) among this process's children: Spark's JVM."""
    import psutil

    peaks = [0.0]
    for proc in psutil.Process().children(recursive=True):
        try:
            for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peaks.append(int(line.split()[1]) / 1024)
        except OSError:
            pass
    return max(peaks)


# ---------------------------------------------------------------------- parent
def cv_command(paths, *extra) -> list[str]:
    return [
        *streamreg_command(), "cv", *map(str, paths), "--target", TARGET, "--l1-ratio",
        str(L1_RATIO), "--folds", str(FOLDS), "--quiet", *map(str, extra),
    ]  # fmt: skip


def child(args, *extra) -> list[str]:
    return [sys.executable, str(Path(__file__).resolve()), "--features", str(args.features),
            *map(str, extra)]  # fmt: skip


def part_a(args, data_dir: Path) -> dict:
    fit = Runs("streamreg fit", args.rows)
    cross = Runs(f"streamreg cv ({FOLDS} folds x {ALPHAS} alphas)", args.rows)
    fit_command = [*streamreg_command(), "fit", str(data_dir), "--target", TARGET, "--quiet"]
    for attempt in range(1, args.repeat + 1):
        run_child(fit_command, fit)
        run_child(cv_command([data_dir], "--alphas", ALPHAS), cross)
        print(f"  run {attempt}/{args.repeat}: fit {fit.walls[-1]:.2f} s, "
              f"cv {cross.walls[-1]:.2f} s", flush=True)  # fmt: skip
    print(f"\n{'':<34}{'best s':>8}{'med s':>8}{'CPU s':>8}{'RSS MB':>9}")
    for runs in (fit, cross):
        cpu = statistics.median(runs.cpu_seconds)
        print(f"{runs.label:<34}{runs.best:>8.2f}{runs.median:>8.2f}{cpu:>8.2f}{runs.rss:>9.0f}")
    states_kb = (FOLDS + 1) * (args.features + 1) ** 2 * 8 / 1024
    figures = {
        "time_ratio_best": cross.best / fit.best,
        "time_ratio_median": cross.median / fit.median,
        "cpu_ratio": statistics.median(cross.cpu_seconds) / statistics.median(fit.cpu_seconds),
        "rss_extra_mb": cross.rss - fit.rss,
        "rss_extra_median_mb": statistics.median(cross.peak_rss_mb)
        - statistics.median(fit.peak_rss_mb),
        "fit_best": fit.best,
        "cv_best": cross.best,
        "fit_rss": fit.rss,
        "cv_rss": cross.rss,
    }
    print(
        f"\ncv / fit time: {figures['time_ratio_best']:.2f} best, "
        f"{figures['time_ratio_median']:.2f} median, CPU {figures['cpu_ratio']:.2f} "
        f"(target <= {TARGET_TIME_RATIO})\n"
        f"cv peak RSS beyond the fit: {figures['rss_extra_mb']:+.0f} MB worst runs, "
        f"{figures['rss_extra_median_mb']:+.0f} MB median runs; K+1 = {FOLDS + 1} states of "
        f"{args.features + 1}x{args.features + 1} float64 are {states_kb:.1f} KB, the rest is "
        "one batch reordered by fold"
    )
    heaps = {}
    for mode in ("fit", "cv"):
        out = subprocess.run(
            child(args, "--child-heap", data_dir, mode), capture_output=True, text=True, check=True
        ).stdout.split()
        heaps[mode] = (float(out[0]), float(out[1]))
    print(
        f"in process, 2 files: numpy heap peak (tracemalloc) fit {heaps['fit'][0]:.1f} MB, cv "
        f"{heaps['cv'][0]:.1f} MB; Arrow's pool peak fit {heaps['fit'][1]:.0f} MB, cv "
        f"{heaps['cv'][1]:.0f} MB (it varies by ~50 MB between identical runs: the decoding "
        "threads read ahead)"
    )
    figures["heap_extra_mb"] = heaps["cv"][0] - heaps["fit"][0]
    return figures


def child_heap(data_dir: str, mode: str) -> None:
    """The numpy heap peak and Arrow's pool peak of one pass over the first 2 files."""
    import tracemalloc

    import pyarrow as pa

    from streamreg.design import DesignSpec
    from streamreg.engine.fold_ids import FoldAssignment
    from streamreg.engine.fold_scan import accumulate_folds
    from streamreg.engine.local import blas_beside_decoding
    from streamreg.engine.scan import accumulate, resolve_batch_size
    from streamreg.io.sources import Source
    from streamreg.solvers.moments import MomentState

    src = Source.resolve(files_of(data_dir, 2))
    spec = DesignSpec.resolve(src.schema, target=TARGET)
    size = resolve_batch_size(len(spec.columns))
    tracemalloc.start()
    with blas_beside_decoding():
        if mode == "fit":
            accumulate(src, spec, MomentState, batch_size=size)
        else:
            folds = FoldAssignment.by_position(FOLDS)
            accumulate_folds(src, spec, MomentState, folds, batch_size=size)
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    print(peak, pa.default_memory_pool().max_memory() / 2**20)


def part_b(args, data_dir: Path) -> None:
    import numpy as np

    import streamreg

    files = files_of(str(data_dir), args.sklearn_files)
    with tempfile.TemporaryDirectory(dir=WORK_DIR) as tmp:
        out, model = Path(tmp) / "sklearn.npz", Path(tmp) / "model.json"
        theirs_runs = Runs("scikit-learn ElasticNetCV", 0)
        run_child(child(args, "--child-sklearn", data_dir, args.sklearn_files, out), theirs_runs)
        ours_runs = Runs("streamreg cv", 0)
        run_child(cv_command(files, "--alphas", ALPHAS, "--out", model), ours_runs)
        theirs = np.load(out)
        ours = streamreg.CVResult(streamreg.load(model))
    gap = float(np.max(np.abs(ours.mse_path_ / theirs["mse_path"] - 1)))
    same = abs(ours.alpha_ / float(theirs["alpha"]) - 1) < 1e-9
    rows = int(theirs["rows"])
    print(
        f"\n(b) {rows:,} rows ({len(files)} files), the same {FOLDS} folds (PredefinedSplit):\n"
        f"  scikit-learn ElasticNetCV: {theirs_runs.walls[0]:.1f} s in all "
        f"({float(theirs['seconds']):.1f} s in fit; the rest: start-up, imports, loading the "
        f"rows), peak RSS "
        f"{theirs_runs.rss:.0f} MB\n"
        f"  streamreg cv             : {ours_runs.walls[0]:.1f} s (console script, start-up "
        f"included), peak RSS {ours_runs.rss:.0f} MB\n"
        f"  largest relative mse_path_ difference {gap:.1e} (scikit-learn at tol 1e-4); "
        f"same alpha: {same}"
    )


def part_c(args, data_dir: Path, alpha: float, coef) -> None:
    import numpy as np

    env = dict(os.environ)
    if args.dask_ml_path:
        env["PYTHONPATH"] = os.pathsep.join([args.dask_ml_path, env.get("PYTHONPATH", "")])
    probe = subprocess.run([sys.executable, "-c", "import dask_ml"], env=env, capture_output=True)
    if probe.returncode != 0:
        print("\n(c) dask-ml does not import here; not run.")
        return
    with tempfile.TemporaryDirectory(dir=WORK_DIR) as tmp:
        out = Path(tmp) / "dask_ml.npz"
        runs = Runs("dask-ml", 0)
        command = child(args, "--child-dask-ml", data_dir, args.dask_ml_files, alpha, out)
        with tempfile.TemporaryFile() as err:
            started = time.perf_counter()
            proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=err)
            _, status, usage = os.wait4(proc.pid, 0)
            wall = time.perf_counter() - started
            if os.waitstatus_to_exitcode(status) != 0:
                err.seek(0)
                print(f"\n(c) dask-ml failed: {err.read().decode()[-400:]}")
                return
        runs.walls.append(wall)
        theirs = np.load(out)
    rows = int(theirs["rows"])
    difference = float(np.max(np.abs(theirs["coef"] - coef)) / np.max(np.abs(coef)))
    print(
        f"\n(c) dask-ml LinearRegression(penalty='elastic_net', ADMM, 100 iterations) at alpha "
        f"{alpha:.4g} on {rows:,} rows: one fit {float(theirs['seconds']):.1f} s "
        f"({wall:.1f} s with start-up and the Parquet read), peak RSS "
        f"{usage.ru_maxrss / 1024:.0f} MB; largest coefficient difference from streamreg's "
        f"refit at that alpha {difference:.1e} (relative to the largest coefficient). A "
        f"{FOLDS}-fold, {ALPHAS}-alpha path there is {FOLDS * ALPHAS} such fits."
    )


def part_d(args, data_dir: Path) -> None:
    import numpy as np

    import streamreg

    try:
        import pyspark  # noqa: F401
    except ImportError:
        print("\n(d) pyspark does not import here; not run.")
        return
    x, y, folds = load_rows(files_of(str(data_dir)), args.features, limit=args.spark_rows)
    columns = [f"x{j + 1}" for j in range(args.features)]
    import pandas as pd

    frame = pd.DataFrame(x, columns=columns)
    frame[TARGET], frame["fold"] = y, folds
    full = streamreg.cv(frame, target=TARGET, features=columns, fold_column="fold",
                        l1_ratio=SPARK_L1_RATIO, alphas=ALPHAS)  # fmt: skip
    grid = sorted(np.geomspace(full.alphas_[0] / 2, full.alphas_[-1] * 2, args.spark_alphas))
    started = time.perf_counter()
    ours = streamreg.cv(frame, target=TARGET, features=columns, fold_column="fold",
                        l1_ratio=SPARK_L1_RATIO, alphas=grid)  # fmt: skip
    our_seconds = time.perf_counter() - started
    with tempfile.TemporaryDirectory(dir=WORK_DIR) as tmp:
        out = Path(tmp) / "spark.npz"
        runs = Runs("spark", 0)
        command = child(args, "--child-spark", data_dir, args.spark_rows, out,
                        "--grid", json.dumps([float(a) for a in grid]))  # fmt: skip
        run_child(command, runs)
        theirs = np.load(out)
    order = np.argsort(theirs["alphas"])[::-1]  # ours: decreasing
    gap = float(np.max(np.abs(ours.mse_mean_[0] / np.asarray(theirs["mse"])[order] - 1)))
    same = float(theirs["alphas"][int(np.argmin(theirs["mse"]))]) == ours.alpha_
    print(
        f"\n(d) Spark CrossValidator + LinearRegression(elasticNetParam={SPARK_L1_RATIO:g}), "
        f"local[2], {int(theirs['rows']):,} rows, {len(grid)} alphas "
        f"x {FOLDS} folds (streamreg's, as foldCol): {float(theirs['seconds']):.1f} s in fit "
        f"(+ {float(theirs['session']):.1f} s session start; {runs.walls[0]:.1f} s in all), "
        f"peak RSS: the Python driver {runs.rss:.0f} MB, Spark's JVM "
        f"{float(theirs['jvm_peak_mb']):.0f} MB;\n"
        f"  streamreg cv on the same rows, grid and folds: {our_seconds:.2f} s in process; "
        f"largest relative difference of the mean CV errors {gap:.1e}; same alpha: {same}"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--files", type=int, default=8)
    parser.add_argument("--seed", type=int, default=20240611)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--sklearn-files", type=int, default=2, help="files for (b); 0: skip")
    parser.add_argument("--dask-ml-files", type=int, default=8, help="files for (c); 0: skip")
    parser.add_argument("--dask-ml-path", default=None, help="a folder with dask-ml installed")
    parser.add_argument("--spark-rows", type=int, default=200_000, help="rows for (d); 0: skip")
    parser.add_argument("--spark-alphas", type=int, default=10)
    parser.add_argument("--skip-a", action="store_true", help="skip (a), the timing runs")
    for name in ("--child-sklearn", "--child-dask-ml", "--child-spark", "--child-heap"):
        parser.add_argument(name, nargs="+", help=argparse.SUPPRESS)
    parser.add_argument("--grid", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child_heap:
        return child_heap(*args.child_heap)
    if args.child_sklearn:
        data_dir, n_files, out = args.child_sklearn
        return child_sklearn(data_dir, int(n_files), args.features, out)
    if args.child_dask_ml:
        data_dir, n_files, alpha, out = args.child_dask_ml
        return child_dask_ml(data_dir, int(n_files), args.features, float(alpha), out)
    if args.child_spark:
        data_dir, rows, out = args.child_spark
        return child_spark(data_dir, args.features, int(rows), json.loads(args.grid), out)

    import streamreg

    data_dir = ensure_data(args.rows, args.features, args.files, args.seed)
    warm_page_cache(data_dir)
    print(f"(a) {args.rows:,} rows x {args.features} features, {args.files} files")
    if not args.skip_a:
        part_a(args, data_dir)
    if args.sklearn_files:
        part_b(args, data_dir)
    if args.dask_ml_files:
        files = files_of(str(data_dir), args.dask_ml_files)
        result = streamreg.cv(files, target=TARGET, l1_ratio=L1_RATIO, folds=FOLDS, alphas=ALPHAS)
        part_c(args, data_dir, result.alpha_, result.coef_)
    if args.spark_rows:
        part_d(args, data_dir)


if __name__ == "__main__":
    main()
