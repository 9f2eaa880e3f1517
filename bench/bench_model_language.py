"""The model language at scale: categories and an absorbed factor against a plain fit, and the
in-memory tools side by side.

Data (generated once into ``bench/work/model-language-<rows>/``, 8 Parquet files, row
groups of 131,072 rows): five numeric features ``x1 … x5``, text categories ``c50`` (50
levels) and ``c500`` (500 levels), an integer ``firm`` with 1,000,000 levels, and ``y``
built from all of them plus noise.

Contenders, each in its own fresh subprocess (peak RSS from ``os.wait4``), alternating,
``--repeat`` times, best kept:

* **plain** — ``streamreg.fit(DIR, target="y", features=["x1", …, "x5"])``: the figure to beat;
* **categorical** — ``streamreg.fit(DIR, formula="y ~ x1 + … + x5 + C(c50) + C(c500)")``
  (553 design columns; level discovery, the pass from group sums and the solve included);
* **absorbed** — ``formula="y ~ x1 + … + x5 | firm"`` (1M groups, one pass);
* **absorbed, clustered** — the same with ``cov_type="cluster:firm"`` (a second pass);
* **statsmodels** — ``smf.ols(<categorical formula>, frame).fit()`` on the first
  ``--sm-rows`` rows, in memory (the frame is read first; the fit is timed), and again on
  half as many rows, so that its memory per row gives the largest data it can fit in
  24 GB (an estimate: a straight line through the two peaks);
* **pyfixest** — ``pf.feols("y ~ x1 + … + x5 | firm", frame)`` on ``--fe-rows`` rows and
  half as many, likewise (its first fit also compiles its numba kernels).

For streamreg the table gives the time of the ``fit`` call (imports excluded, ``formulaic``
included among them) — wall and CPU of the process, so that a loaded machine shows
through — the throughput, the ratio to plain in the same run, and peak RSS; the
``pass`` rows time the streaming pass alone (level discovery and the solve of the 553
columns, both independent of the number of rows once the levels are known, left out).
The issue's figures: categorical ≥ 0.5× plain's throughput with peak RSS ≤
800 MB; absorbed ≤ 2× plain's time.

Run from the repository root::

    python bench/bench_model_language.py                      # 10M rows, 3 repeats
    python bench/bench_model_language.py --rows 1000000 --repeat 1 --sm-rows 100000
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

WORK = Path(__file__).resolve().parent / "work"
FEATURES = [f"x{j}" for j in range(1, 6)]
CATEGORICAL = "y ~ " + " + ".join(FEATURES) + " + C(c50) + C(c500)"
ABSORBED = "y ~ " + " + ".join(FEATURES) + " | firm"
GB24 = 24 * 1024**3
ROW_GROUP = 131072
FIRMS = 1_000_000


def make_data(rows: int, files: int = 8) -> Path:
    folder = WORK / f"model-language-{rows}"
    if folder.exists() and len(list(folder.glob("*.parquet"))) == files:
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    e50, e500, firm_effect = rng.normal(size=50), rng.normal(size=500), rng.normal(size=FIRMS)
    names50 = np.array([f"c50_{i:03d}" for i in range(50)])
    names500 = np.array([f"c500_{i:03d}" for i in range(500)])
    for f, n in enumerate(np.diff(np.linspace(0, rows, files + 1).astype(int))):
        x = {name: rng.normal(size=n) + 10.0 * j for j, name in enumerate(FEATURES, 1)}
        c50, c500, firm = (rng.integers(0, k, n) for k in (50, 500, FIRMS))
        y = sum(0.1 * j * x[name] for j, name in enumerate(FEATURES, 1))
        y = y + e50[c50] + e500[c500] + firm_effect[firm] + rng.normal(size=n)
        table = pa.table({**x, "c50": names50[c50], "c500": names500[c500], "firm": firm, "y": y})
        pq.write_table(table, folder / f"part-{f:03d}.parquet", row_group_size=ROW_GROUP)
    return folder


# Each child prints one JSON line: seconds of the timed call (wall and CPU) and its facts.
CHILD = r"""
import json, sys, time
what, folder, rows = sys.argv[1], sys.argv[2], int(sys.argv[3])
features = [f"x{j}" for j in range(1, 6)]
categorical = "y ~ " + " + ".join(features) + " + C(c50) + C(c500)"
absorbed = "y ~ " + " + ".join(features) + " | firm"
if what.startswith("pass"):
    # The streaming pass alone: what a batch costs, level discovery and the solve left out.
    import formulaic.parser  # noqa: F401 - an import, not part of the pass
    from streamreg.design.levels import level_set
    from streamreg.design.request import Request
    from streamreg.engine.local import blas_beside_decoding
    from streamreg.engine.scan import accumulate, resolve_batch_size
    from streamreg.io.sources import Source
    from streamreg.solvers.moments import MomentState
    src = Source.resolve(folder)
    if what == "pass plain":
        spec = Request.of(target="y", features=features).design(src.schema)
        size = resolve_batch_size(len(spec.columns))
    else:
        pending = Request.of(formula=categorical).design(src.schema)
        spec = pending.resolve(level_set(src, pending.categorical_sources).scan().levels)
        size = spec.batch_rows(grouped=True)
    def call():
        with blas_beside_decoding():
            return accumulate(src, spec, MomentState, batch_size=size).state
elif what.startswith("streamreg"):
    import formulaic.parser  # noqa: F401 - imported like streamreg itself, before the clock
    import streamreg
    calls = {
        "streamreg plain": lambda: streamreg.fit(folder, target="y", features=features),
        "streamreg categorical": lambda: streamreg.fit(folder, formula=categorical),
        "streamreg absorbed": lambda: streamreg.fit(folder, formula=absorbed),
        "streamreg absorbed, clustered": lambda: streamreg.fit(
            folder, formula=absorbed, cov_type="cluster:firm"),
    }
    call = calls[what]
else:
    import pyarrow.dataset as ds
    frame = ds.dataset(folder).head(rows).to_pandas()
    if what == "statsmodels":
        import statsmodels.formula.api as smf
        call = lambda: smf.ols(categorical, frame).fit()
    else:
        import pyfixest as pf
        call = lambda: pf.feols(absorbed, frame)
wall, cpu = time.perf_counter(), time.process_time()
model = call()
wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
if what.startswith("pass"):
    first = float(model.mean[0])
else:
    params = getattr(model, "params", None)
    if params is None:
        params = model.coef()
    first = float(list(params)[1] if what.startswith("streamreg") else params.iloc[0])
print(json.dumps({"wall": wall, "cpu": cpu, "first": first}))
"""


def run(what: str, folder: Path, rows: int) -> dict:
    env = dict(os.environ)
    process = subprocess.Popen(
        [sys.executable, "-c", CHILD, what, str(folder), str(rows)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    _, status, usage = os.wait4(process.pid, 0)
    out, err = process.stdout.read(), process.stderr.read()
    if status != 0:
        return {"error": (err.strip().splitlines() or ["?"])[-1], "rss": usage.ru_maxrss * 1024}
    result = json.loads(out.strip().splitlines()[-1])
    result["rss"] = usage.ru_maxrss * 1024  # ru_maxrss is KiB on Linux
    return result


def best(results: list[dict]) -> dict:
    good = [r for r in results if "error" not in r]
    if not good:
        return results[-1]
    return {
        "wall": min(r["wall"] for r in good),
        "cpu": min(r["cpu"] for r in good),
        "rss": max(r["rss"] for r in good),
        "first": good[-1]["first"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--sm-rows", type=int, default=400_000, help="statsmodels' rows")
    parser.add_argument("--fe-rows", type=int, default=4_000_000, help="pyfixest's rows")
    parser.add_argument("--no-others", action="store_true", help="skip statsmodels, pyfixest")
    args = parser.parse_args()
    folder = make_data(args.rows)
    ours = [
        "streamreg plain",
        "streamreg categorical",
        "streamreg absorbed",
        "streamreg absorbed, clustered",
        "pass plain",
        "pass categorical",
    ]
    results: dict[str, list[dict]] = {name: [] for name in ours}
    for _ in range(args.repeat):
        for name in ours:
            results[name].append(run(name, folder, args.rows))
    table = {name: best(r) for name, r in results.items()}
    plain = table["streamreg plain"]
    print(
        f"{args.rows:,} rows in {folder.relative_to(WORK.parent.parent)}; best of {args.repeat}\n"
    )
    print(
        f"{'contender':32} {'rows':>11} {'wall s':>7} {'CPU s':>7} {'Mrows/s':>8} "
        f"{'÷plain wall':>11} {'÷plain CPU':>10} {'peak RSS':>9}"
    )
    for name, r in table.items():
        if "error" in r:
            print(f"{name:32} failed: {r['error']}")
            continue
        print(
            f"{name:32} {args.rows:>11,} {r['wall']:7.2f} {r['cpu']:7.2f} "
            f"{args.rows / r['wall'] / 1e6:8.2f} {plain['wall'] / r['wall']:11.2f} "
            f"{plain['cpu'] / r['cpu']:10.2f} {r['rss'] / 2**20:7.0f} MB"
        )
    if not args.no_others:
        print()
        for name, rows in (("statsmodels", args.sm_rows), ("pyfixest", args.fe_rows)):
            half, full = run(name, folder, rows // 2), run(name, folder, rows)
            for n, r in ((rows // 2, half), (rows, full)):
                if "error" in r:
                    print(f"{name:32} {n:>11,} failed: {r['error']}")
                    continue
                print(
                    f"{name:32} {n:>11,} {r['wall']:7.2f} {r['cpu']:7.2f} "
                    f"{n / r['wall'] / 1e6:8.2f} {'':>11} {'':>10} {r['rss'] / 2**20:7.0f} MB"
                )
            if "error" not in half and "error" not in full and full["rss"] > half["rss"]:
                per_row = (full["rss"] - half["rss"]) / (rows - rows // 2)
                base = full["rss"] - per_row * rows
                largest = (GB24 - base) / per_row
                print(
                    f"  {name}: {per_row:,.0f} bytes of peak RSS per row → about "
                    f"{largest / 1e6:,.1f}M rows fit in 24 GB (a straight-line estimate)"
                )
    cat, absorbed = table["streamreg categorical"], table["streamreg absorbed"]
    passes = table["pass plain"], table["pass categorical"]
    if not any("error" in r for r in (cat, absorbed, *passes)):
        print(
            f"\ncategorical ÷ plain throughput: whole fit {plain['wall'] / cat['wall']:.2f} wall, "
            f"{plain['cpu'] / cat['cpu']:.2f} CPU; the pass alone "
            f"{passes[0]['wall'] / passes[1]['wall']:.2f} wall, "
            f"{passes[0]['cpu'] / passes[1]['cpu']:.2f} CPU (target ≥ 0.5)\n"
            f"absorbed ÷ plain time: {absorbed['wall'] / plain['wall']:.2f} wall, "
            f"{absorbed['cpu'] / plain['cpu']:.2f} CPU (target ≤ 2)"
        )


if __name__ == "__main__":
    main()
