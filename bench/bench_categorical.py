"""Categorical columns without one-hot blocks: grouped moments against a plain numeric pass.

All contenders read the same in-memory Arrow table (so the numbers are about the
math, not Parquet decoding) through the same :class:`~streamreg.sources.InMemorySource`
batches of 131,072 rows, with BLAS limited to one thread as during a real fit:

* **plain** — :func:`streamreg.fitting.accumulate` over the 5 numeric features
  and the target: the existing engine, the figure to beat;
* **grouped** — ``y ~ x1 + … + x5 + C(c50) + C(c500)`` (553 design columns)
  encoded by :class:`~streamreg.encoding.BatchEncoder` and accumulated from group
  sums (:mod:`streamreg.grouped`); the categories are dictionary arrays, as the
  Parquet reader delivers them with ``read_dictionary``;
* **grouped, text** — the same with plain string columns (each value hashed);
* **dense** — the same design with every indicator column materialized
  (``form="dense"``, batches shrunk to 16 MiB: 3,787 rows), the route the QR and
  exact solvers take;

plus the level discovery pass (dictionary columns only). Each runs ``--repeat``
times, alternating; the table gives best and median seconds, rows/s and the
ratio of each to plain (the issue asks grouped ≥ 0.5× plain). The states are
compared at the end: grouped and dense must agree to 1e-9 (relative to the
diagonal).

Run from the repository root::

    python bench/bench_categorical.py                     # 2M rows, 3 repeats
    python bench/bench_categorical.py --rows 200000 --repeat 1 --no-dense
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import pyarrow as pa

from streamreg.coding import DesignPlan
from streamreg.encoding import BatchEncoder, accumulate_design
from streamreg.fitting import DesignSpec, _blas_beside_decoding, accumulate
from streamreg.formula import parse_formula
from streamreg.levels import discover_levels
from streamreg.sources import InMemorySource

FORMULA = "y ~ x1 + x2 + x3 + x4 + x5 + C(c50) + C(c500)"
BATCH_ROWS = 131072
TARGET_RATIO = 0.5


def make_table(rows: int, seed: int = 0, dictionary: bool = True) -> pa.Table:
    rng = np.random.default_rng(seed)
    columns = {f"x{j}": rng.normal(size=rows) + 10.0 * j for j in range(1, 6)}
    c50 = rng.integers(0, 50, rows)
    c500 = rng.integers(0, 500, rows)
    effects50, effects500 = rng.normal(size=50), rng.normal(size=500)
    columns["y"] = (sum(0.1 * j * columns[f"x{j}"] for j in range(1, 6)) + effects50[c50]
                    + effects500[c500] + rng.normal(size=rows))
    for name, codes, levels in (("c50", c50, 50), ("c500", c500, 500)):
        labels = pa.array([f"{name}_{i:03d}" for i in range(levels)])
        array = pa.DictionaryArray.from_arrays(pa.array(codes.astype(np.int32)), labels)
        columns[name] = array if dictionary else array.cast(pa.string())
    return pa.table(columns)


def timed(function, repeat: int) -> tuple[list[float], object]:
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - start)
    return times, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-dense", action="store_true", help="skip the (slow) dense route")
    args = parser.parse_args()

    table = make_table(args.rows)
    text_table = make_table(args.rows, dictionary=False)
    source, text_source = InMemorySource(table), InMemorySource(text_table)
    spec = DesignSpec.resolve(table.schema, target="y", features=[f"x{j}" for j in range(1, 6)])
    plan = DesignPlan.from_formula(parse_formula(FORMULA), table.schema)

    def discover():
        return discover_levels(source, plan.categorical_sources).levels

    levels = discover()
    design = plan.with_levels(levels)
    encoder = BatchEncoder(design)
    text_encoder = BatchEncoder(design)
    contenders = {
        "plain (5 numeric)": lambda: accumulate(source, spec, batch_size=BATCH_ROWS).state,
        "grouped (dictionary)": lambda: accumulate_design(source, encoder, form="grouped",
                                                          batch_size=BATCH_ROWS).state,
        "grouped (text)": lambda: accumulate_design(text_source, text_encoder, form="grouped",
                                                    batch_size=BATCH_ROWS).state,
        "level discovery": discover,
    }
    if not args.no_dense:
        contenders["dense (one-hot)"] = lambda: accumulate_design(source, encoder, form="dense").state
    times: dict[str, list[float]] = {name: [] for name in contenders}
    results = {}
    with _blas_beside_decoding():
        for _ in range(args.repeat):
            for name, function in contenders.items():
                elapsed, results[name] = timed(function, 1)
                times[name] += elapsed

    plain = min(times["plain (5 numeric)"])
    print(f"{args.rows:,} rows; design {len(design.column_names)} columns + target; "
          f"batches of {BATCH_ROWS:,} rows; best of {args.repeat}\n")
    print(f"{'contender':24} {'best s':>8} {'median s':>9} {'Mrows/s':>8} {'plain/this':>11}")
    for name, values in times.items():
        best = min(values)
        print(f"{name:24} {best:8.3f} {statistics.median(values):9.3f} "
              f"{args.rows / best / 1e6:8.2f} {plain / best:11.2f}")
    ratio = plain / min(times["grouped (dictionary)"])
    verdict = "meets" if ratio >= TARGET_RATIO else "MISSES"
    print(f"\ngrouped/plain throughput ratio {ratio:.2f} ({verdict} the {TARGET_RATIO} target)")
    if "dense (one-hot)" in results:
        grouped, dense = results["grouped (dictionary)"], results["dense (one-hot)"]
        scale = np.sqrt(np.outer(np.diagonal(dense.comoment), np.diagonal(dense.comoment)))
        scale[scale == 0] = 1.0
        gap = float(np.max(np.abs(grouped.comoment - dense.comoment) / scale))
        print(f"grouped vs dense co-moments: max |Δ|/√(M_ii M_jj) = {gap:.1e}")
        assert gap < 1e-9, gap


if __name__ == "__main__":
    main()
