"""streamreg's Spark engine against Spark MLlib's normal-equation solver, on the same data.

One local Spark session (``local[2]``; its start-up is timed but left out of the ratios)
reads the same Parquet files for every contender; each round runs every contender once,
one after the other, and the ratios are taken within a round (the machine is shared):

* ``streamreg.spark cholesky`` / ``exact``: :func:`streamreg.spark.fit` on
  ``spark.read.parquet(DIR)`` — one state per Spark partition, folded on the executors;
* ``MLlib normal``: ``VectorAssembler`` + ``LinearRegression(solver="normal")`` (its
  defaults otherwise: no regularization, standardization on), on the same DataFrame;
* ``streamreg local``: :func:`streamreg.fit` on the files in the driver process, for scale.

The coefficient error is the largest relative difference (intercept included) from the
local exact fit (the correctly rounded least-squares solution of the float64 data).

    python bench/bench_spark.py --data DIR [--rounds 3] [--memory 2g]
    python bench/bench_spark.py --rows 2000000 --offset 1e4   # generated data, features near 1e4
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def start_spark(memory: str):
    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    session = (
        SparkSession.builder.master("local[2]")
        .appName("streamreg-bench")
        .config("spark.ui.enabled", "false")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.memory", memory)
        .config("spark.ui.showConsoleProgress", "false")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    return session


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="a directory of Parquet files with y and x1..xP")
    parser.add_argument("--rows", type=int, default=2_000_000, help="rows to generate (no --data)")
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--files", type=int, default=4)
    parser.add_argument("--offset", type=float, default=0.0, help="add this to every feature")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--memory", default="2g", help="Spark driver memory")
    args = parser.parse_args()
    import numpy as np
    import pyarrow.parquet as pq

    import streamreg
    import streamreg.spark

    if args.data:
        data = Path(args.data)
    else:
        from streamreg.synthetic import generate

        data = (
            Path(__file__).resolve().parent
            / "work"
            / (f"spark-rows{args.rows}-p{args.features}-files{args.files}-offset{args.offset:g}")
        )
        if not (data / "_truth.json").exists():
            generate(
                data,
                rows=args.rows,
                n_features=args.features,
                files=args.files,
                offset=args.offset,
                seed=20240611,
            )
    files = sorted(str(p) for p in data.glob("*.parquet"))
    features = [n for n in pq.read_schema(files[0]).names if n != "y"]
    rows = sum(pq.read_metadata(f).num_rows for f in files)
    reference = streamreg.fit(files, target="y", features=features, solver="exact")
    truth = reference.params

    started = time.perf_counter()
    spark = start_spark(args.memory)
    session_start = time.perf_counter() - started
    frame = spark.read.parquet(*files)
    partitions = frame.rdd.getNumPartitions()

    def mllib():
        from pyspark.ml.feature import VectorAssembler
        from pyspark.ml.regression import LinearRegression

        assembled = VectorAssembler(inputCols=features, outputCol="features").transform(frame)
        model = LinearRegression(featuresCol="features", labelCol="y", solver="normal").fit(
            assembled
        )
        return np.r_[model.intercept, model.coefficients.toArray()]

    def ours(solver):
        def run():
            return streamreg.spark.fit(frame, target="y", features=features, solver=solver).params

        return run

    def local():
        return streamreg.fit(files, target="y", features=features, solver="cholesky").params

    contenders = {
        "streamreg.spark cholesky": ours("cholesky"),
        "streamreg.spark exact": ours("exact"),
        "MLlib normal": mllib,
        "streamreg local cholesky": local,
    }
    for run in contenders.values():  # warm: JIT, Python workers, page cache
        run()
    walls: dict[str, list[float]] = {name: [] for name in contenders}
    errors: dict[str, float] = {}
    for r in range(args.rounds):
        for name, run in contenders.items():
            t = time.perf_counter()
            coef = run()
            walls[name].append(time.perf_counter() - t)
            errors[name] = float(np.max(np.abs(coef - truth) / np.maximum(np.abs(truth), 1e-300)))
        print(
            f"round {r + 1}: " + ", ".join(f"{k} {v[-1]:.2f}s" for k, v in walls.items()),
            flush=True,
        )
    spark.stop()

    print(
        f"\n{rows:,} rows × {len(features)} features (offset {args.offset:g}), {len(files)} files, "
        f"{partitions} Spark partitions, local[2]; {args.rounds} rounds; session start "
        f"{session_start:.1f} s (excluded)"
    )
    print(f"{'contender':<28}{'median s':>9}{'min s':>8}{'max rel coef err':>18}")
    for name in contenders:
        print(
            f"{name:<28}{statistics.median(walls[name]):>9.2f}{min(walls[name]):>8.2f}"
            f"{errors[name]:>18.1e}"
        )
    ratio = [m / c for m, c in zip(walls["MLlib normal"], walls["streamreg.spark cholesky"])]
    exact = [
        e / c for e, c in zip(walls["streamreg.spark exact"], walls["streamreg.spark cholesky"])
    ]
    print(
        f"MLlib time / streamreg.spark cholesky time (same round): median "
        f"{statistics.median(ratio):.2f}, range {min(ratio):.2f}-{max(ratio):.2f}"
    )
    print(
        f"streamreg.spark exact / cholesky time: median {statistics.median(exact):.2f}, "
        f"range {min(exact):.2f}-{max(exact):.2f}"
    )


if __name__ == "__main__":
    main()
