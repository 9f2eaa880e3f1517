"""Dask routes against the cost of reading the data, on the same files in the same run.

Contenders, each in its own subprocess, reporting wall time and the peak RSS of
the *client* process (``RUSAGE_SELF`` inside it; worker processes are not
counted):

* the read-only floor (``bench_fit.read_floor``: read the 21 columns into numpy);
* ``streamreg fit DIR --target y --quiet`` in one process;
* ``streamreg fit DIR --target y --workers 2 --quiet`` (a local cluster whose
  two workers read the files);
* ``streamreg.fit(dd.read_parquet(DIR), target="y")`` on a 2-worker LocalCluster;
* ``dask.array.linalg.lstsq`` on the same Dask DataFrame's array (with a
  column of ones), on the same cluster.

For these two the time is the fit alone (timed inside the script, after the
cluster is up); the CLI rows include interpreter start-up and, for
``--workers 2``, starting the cluster;
* dask-ml's ``LinearRegression`` when dask-ml is installed (it is not a
  dependency; the row says so otherwise).

Run from the repository root::

    python bench/bench_dask.py                            # 10M × 20, 2 runs each
    python bench/bench_dask.py --rows 200000 --repeat 1    # smoke run
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_fit import ensure_data  # noqa: E402

CLIENT_PRELUDE = """
import resource, sys, time
def report():
    print("RSS_MB", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""

SCRIPTS = {
    "read-only floor": """
from bench_fit import read_floor
import pyarrow.parquet as pq, glob
files = sorted(glob.glob(DATA + "/*.parquet"))
columns = pq.read_schema(files[0]).names
read_floor(DATA, columns)
report()
""",
    "dask DataFrame, streamreg.fit": """
if __name__ == "__main__":
    import dask.dataframe as dd, streamreg
    from distributed import Client, LocalCluster
    with LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as c, Client(c):
        t = time.perf_counter()
        model = streamreg.fit(dd.read_parquet(DATA), target="y")
        print("INNER", time.perf_counter() - t)
    report()
""",
    "dask.array.linalg.lstsq": """
if __name__ == "__main__":
    import dask.array as da, dask.dataframe as dd
    from distributed import Client, LocalCluster
    with LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as c, Client(c):
        t = time.perf_counter()
        ddf = dd.read_parquet(DATA)
        arr = ddf.to_dask_array(lengths=True)
        x = da.concatenate(
            [da.ones((arr.shape[0], 1), chunks=(arr.chunks[0], 1)), arr[:, :-1]], axis=1
        )
        coef = da.linalg.lstsq(x.rechunk({1: -1}), arr[:, -1])[0].compute()
        print("INNER", time.perf_counter() - t)
    report()
""",
    "dask-ml LinearRegression": """
if __name__ == "__main__":
    try:
        from dask_ml.linear_model import LinearRegression
    except ImportError:
        print("SKIP dask-ml is not installed"); raise SystemExit(0)
    import dask.dataframe as dd
    from distributed import Client, LocalCluster
    with LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as c, Client(c):
        ddf = dd.read_parquet(DATA)
        arr = ddf.to_dask_array(lengths=True)
        LinearRegression().fit(arr[:, :-1], arr[:, -1])
    report()
""",
}


def run_script(name: str, data: Path) -> tuple[float | None, float | None, str]:
    code = CLIENT_PRELUDE + f"DATA = {str(data)!r}\n" + SCRIPTS[name]
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parent))
    started = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    wall = time.perf_counter() - started
    if out.returncode != 0:
        return None, None, out.stderr.strip().splitlines()[-1] if out.stderr.strip() else "failed"
    if "SKIP" in out.stdout:
        return None, None, out.stdout.split("SKIP", 1)[1].strip()
    rss = float(out.stdout.split("RSS_MB")[1].split()[0])
    if "INNER" in out.stdout:  # the fit alone, without interpreter and cluster start-up
        wall = float(out.stdout.split("INNER")[1].split()[0])
    return wall, rss, ""


def run_cli(args: list[str]) -> tuple[float, float]:
    code = (
        CLIENT_PRELUDE
        + f"""
import subprocess
if __name__ == "__main__":
    from streamreg.cli import main
    sys.argv = ["streamreg", *{args!r}]
    try:
        main()
    except SystemExit as exc:
        if exc.code:
            raise
    report()
"""
    )
    started = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    wall = time.perf_counter() - started
    if out.returncode != 0:
        raise SystemExit(out.stderr)
    return wall, float(out.stdout.split("RSS_MB")[1].split()[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--files", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--seed", type=int, default=20240611)
    args = parser.parse_args()
    data = ensure_data(args.rows, args.features, args.files, args.seed)
    results: dict[str, list[tuple[float, float]]] = {}
    notes: dict[str, str] = {}
    contenders = [
        "read-only floor",
        "streamreg fit (1 process)",
        "streamreg fit --workers 2",
        "dask DataFrame, streamreg.fit",
        "dask.array.linalg.lstsq",
        "dask-ml LinearRegression",
    ]
    for _ in range(args.repeat):
        for name in contenders:
            if name == "streamreg fit (1 process)":
                wall, rss = run_cli(["fit", str(data), "--target", "y", "--quiet"])
            elif name == "streamreg fit --workers 2":
                wall, rss = run_cli(
                    ["fit", str(data), "--target", "y", "--quiet", "--workers", "2"]
                )
            else:
                wall, rss, note = run_script(name, data)
                if wall is None:
                    notes[name] = note
                    continue
            results.setdefault(name, []).append((wall, rss))
    floor = min(w for w, _ in results["read-only floor"])
    print(
        f"{args.rows:,} rows × {args.features} features in {args.files} files; {args.repeat} runs "
        "each"
    )
    print(f"{'contender':<32}{'best s':>9}{'median s':>10}{'× floor':>9}{'client RSS MB':>15}")
    for name in contenders:
        if name not in results:
            print(f"{name:<32}  ({notes.get(name, 'no result')})")
            continue
        walls = [w for w, _ in results[name]]
        rss = max(r for _, r in results[name])
        print(
            f"{name:<32}{min(walls):>9.2f}{statistics.median(walls):>10.2f}"
            f"{min(walls) / floor:>9.2f}{rss:>15.0f}"
        )


if __name__ == "__main__":
    main()
