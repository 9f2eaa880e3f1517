"""Where a Dask worker spends CPU on a fit, thread by thread, beside the in-process fit.

CPU-seconds per thread come from ``/proc/self/task/*/stat``: Python threads by name (the
worker's event loop, its task thread), all others as "native" (Arrow's decoding pool,
OpenBLAS). The in-process fit runs in a fresh subprocess; the cluster fit on a 1-worker
``LocalCluster`` (processes, one thread). Also printed: minor page faults of each.

    python bench/profile_dask.py --data DIR [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import threading
import time


def thread_cpu() -> dict[str, float]:
    """CPU-seconds of every thread of this process, grouped by name ('native' if unnamed)."""
    tick = os.sysconf("SC_CLK_TCK")
    names = {t.native_id: t.name for t in threading.enumerate()}
    out: dict[str, float] = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        name = names.get(int(tid), "native")
        for prefix in ("Dask-Default-Threads", "ThreadPoolExecutor", "Dask-Offload"):
            if name.startswith(prefix):
                name = prefix
        out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / tick
    out["minflt"] = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    return out


def diff(after: dict, before: dict) -> dict:
    return {k: v - before.get(k, 0.0) for k, v in after.items()}


IN_PROCESS = """
import sys, time
sys.path.insert(0, {bench!r})
import streamreg
from profile_dask import thread_cpu, diff
streamreg.fit({data!r}, target="y")
for _ in range({repeat}):
    before, t = thread_cpu(), time.perf_counter()
    streamreg.fit({data!r}, target="y")
    print("RUN", time.perf_counter() - t, repr(diff(thread_cpu(), before)), flush=True)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    bench = os.path.dirname(os.path.abspath(__file__))
    code = IN_PROCESS.format(bench=bench, data=args.data, repeat=args.repeat)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    local = [
        (float(line.split()[1]), eval(line.split(" ", 2)[2]))  # noqa: S307 - our own repr
        for line in out.stdout.splitlines()
        if line.startswith("RUN ")
    ]
    from distributed import Client, LocalCluster

    import streamreg

    with (
        LocalCluster(
            n_workers=1,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
        ) as cluster,
        Client(cluster) as client,
    ):
        client.run(sys.path.insert, 0, bench)
        streamreg.fit(args.data, target="y", client=client)
        remote = []
        for _ in range(args.repeat):
            (before,) = client.run(thread_cpu).values()
            t = time.perf_counter()
            streamreg.fit(args.data, target="y", client=client)
            wall = time.perf_counter() - t
            (after,) = client.run(thread_cpu).values()
            remote.append((wall, diff(after, before)))

    def show(label, runs):
        keys = sorted({k for _, d in runs for k in d if k != "minflt"})
        walls = [w for w, _ in runs]
        total = [sum(v for k, v in d.items() if k != "minflt") for _, d in runs]
        print(
            f"{label}: wall {statistics.median(walls):.2f} s, "
            f"CPU {statistics.median(total):.2f} s, "
            f"minor faults {statistics.median(d['minflt'] for _, d in runs) / 1e3:.0f}k"
        )
        for k in keys:
            print(f"    {k:<24}{statistics.median(d.get(k, 0.0) for _, d in runs):>7.2f} s")

    show("in-process", local)
    show("1-worker cluster (worker process)", remote)


if __name__ == "__main__":
    main()
