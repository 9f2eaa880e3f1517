"""The Dask path against the in-process fit: ratios measured side by side, round after round.

On a shared, noisy machine a ratio of two timings taken minutes apart means little, so
every contender runs once per *round*, one right after the other, and each ratio is
taken within a round; the table shows the median and the range over rounds. All
clusters stay up for the whole run (their start-up is not timed):

* ``in-process``: ``streamreg.fit(DIR, target="y")`` in a separate, long-lived Python
  process (so that its CPU-seconds are its own: ``getrusage`` before and after);
* ``W1`` / ``W2``: the same call with ``client=`` on a ``LocalCluster`` of 1 or 2 worker
  processes (``threads_per_worker=1``); CPU-seconds are summed over the worker processes
  (``getrusage`` inside each); the scheduler's and client's CPU (this process) is shown
  apart;
* ``dd``: ``streamreg.fit(dd.read_parquet(DIR), target="y")`` on the 2-worker cluster;
  ``dd+op``: the same frame behind a ``map_partitions`` (so its partitions are fitted);
  ``array``: ``X, y`` as Dask arrays of that frame (``to_dask_array`` with the row counts
  from the footers); ``… blocks``: Dask computing the same partitions (or row blocks of
  ``X`` and ``y``) and dropping them — what those inputs cost before streamreg sees a
  row, so that the difference is streamreg's own share;
* the same for ``--rg``, one file of many row groups: in-process, W1, W2.

    python bench/bench_dask.py --data DIR --rg RGDIR [--rounds 4]
    python bench/bench_dask.py --data DIR --scaling           # the projected scaling table

``--scaling`` measures, on a 1-worker cluster, each task's CPU-seconds (the compute a
task needs on a core of its own), the cost of one merge of two partial results and the
scheduler's cost per task (no-op tasks), then projects the wall time on W = 1…16
single-core workers: the fixed list of tasks dealt to the workers as they free up
(list scheduling, as Dask's scheduler does for independent tasks), plus the merge
tree's ⌈log₂ T⌉ levels. It prints the measured inputs and the projection apart.
"""

from __future__ import annotations

import argparse
import gc
import math
import multiprocessing
import resource
import statistics
import sys
import time
from pathlib import Path


def rusage() -> dict:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {"cpu": usage.ru_utime + usage.ru_stime, "minflt": usage.ru_minflt}


# ---------------------------------------------------------------------- in-process fits
def _in_process_server(conn) -> None:
    """A long-lived process running fits on request: (path, solver) → (wall, cpu, coef)."""
    import streamreg

    while True:
        job = conn.recv()
        if job is None:
            return
        path, solver = job
        before, started = rusage(), time.perf_counter()
        model = streamreg.fit(path, target="y", solver=solver)
        wall = time.perf_counter() - started
        after = rusage()
        conn.send((wall, after["cpu"] - before["cpu"], model.params.tolist()))


class InProcess:
    def __init__(self):
        context = multiprocessing.get_context("spawn")
        self.conn, child = context.Pipe()
        self.proc = context.Process(target=_in_process_server, args=(child,), daemon=True)
        self.proc.start()

    def fit(self, path: str, solver: str = "auto") -> dict:
        self.conn.send((path, solver))
        wall, cpu, params = self.conn.recv()
        return {"wall": wall, "cpu": cpu, "params": params}

    def close(self) -> None:
        self.conn.send(None)
        self.proc.join(timeout=30)


# ---------------------------------------------------------------------- cluster fits
def _tasks_held(dask_scheduler) -> int:
    return len(dask_scheduler.tasks)


def forget_results(client, timeout: float = 30.0) -> None:
    """Collect this process's last references to earlier futures and wait until the scheduler
    has let their results go: an identical fit must not find its states still in memory
    (a round once timed a 10M-row fit at 0.3 s that way)."""
    gc.collect()
    deadline = time.monotonic() + timeout
    while client.run_on_scheduler(_tasks_held) and time.monotonic() < deadline:
        time.sleep(0.05)


def on_cluster(client, run) -> dict:
    """Wall time of ``run()``, CPU-seconds of all workers, and of this process (scheduler +
    client)."""
    forget_results(client)
    workers_before, me_before = client.run(rusage), rusage()
    started = time.perf_counter()
    model = run()
    wall = time.perf_counter() - started
    me_after, workers_after = rusage(), client.run(rusage)
    cpu = sum(workers_after[w]["cpu"] - workers_before[w]["cpu"] for w in workers_after)
    faults = sum(workers_after[w]["minflt"] - workers_before[w]["minflt"] for w in workers_after)
    return {
        "wall": wall,
        "cpu": cpu,
        "minflt": faults,
        "driver_cpu": me_after["cpu"] - me_before["cpu"],
        "params": model.params.tolist(),
    }


def frame_cases(data: str, client):
    import dask
    import dask.dataframe as dd
    import pyarrow.parquet as pq

    import streamreg

    files = sorted(str(p) for p in Path(data).glob("*.parquet"))
    lengths = [pq.read_metadata(f).num_rows for f in files]

    def plain():
        with dask.config.set(scheduler=client.get):
            return streamreg.fit(dd.read_parquet(data), target="y", client=client)

    def with_op():
        frame = dd.read_parquet(data).map_partitions(lambda part: part)
        with dask.config.set(scheduler=client.get):
            return streamreg.fit(frame, target="y", client=client)

    def arrays():
        values = dd.read_parquet(data).to_dask_array(lengths=lengths)
        k = values.shape[1] - 1
        with dask.config.set(scheduler=client.get):
            return streamreg.fit(values[:, :k], values[:, k], client=client)

    def blocks_only(make):
        """Dask making the same partitions (or row blocks of X and y) and dropping them."""

        def run():
            parts = make()
            sizes = [p.map_blocks(_rows, chunks=(1,), drop_axis=1, dtype=int) for p in parts]
            return _Rows(sum(dask.compute(*[s.sum() for s in sizes], scheduler=client.get)))

        return run

    def frame_parts():
        frame = dd.read_parquet(data).map_partitions(lambda part: part)
        return [frame.to_dask_array(lengths=lengths)]

    def array_parts():
        values = dd.read_parquet(data).to_dask_array(lengths=lengths)
        k = values.shape[1] - 1
        return [values[:, :k], values[:, k : k + 1]]

    return plain, with_op, arrays, blocks_only(frame_parts), blocks_only(array_parts)


def _rows(block):
    import numpy as np

    return np.array([block.shape[0]])


class _Rows:
    """Stands for a model where only the time counts (``params``: nothing to compare)."""

    def __init__(self, rows: int):
        import numpy as np

        self.params = np.array([np.nan, rows])


def start_clusters(sizes, config: dict | None = None):
    import dask
    from distributed import Client, LocalCluster

    clusters, clients = {}, {}
    for w in sizes:
        with dask.config.set(config or {}):  # the workers take the config they start with
            clusters[w] = LocalCluster(
                n_workers=w,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
                scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
                host="127.0.0.1",
            )
        clients[w] = Client(clusters[w], set_as_default=False)
    return clusters, clients


def ratios(args) -> None:
    import numpy as np

    import streamreg

    local = InProcess()
    config = dict(item.split("=", 1) for item in args.dask_config)
    config = {k: {"false": False, "true": True}.get(v.lower(), v) for k, v in config.items()}
    clusters, clients = start_clusters((1, 2), config)
    plain, with_op, arrays, frame_floor, array_floor = frame_cases(args.data, clients[2])

    def fit_on(w, path):
        return lambda: on_cluster(
            clients[w], lambda: streamreg.fit(path, target="y", client=clients[w])
        )

    cases = {
        "in-process": lambda: local.fit(args.data),
        "W1": fit_on(1, args.data),
        "W2": fit_on(2, args.data),
        "W2 dd": lambda: on_cluster(clients[2], plain),
        "W2 dd+op": lambda: on_cluster(clients[2], with_op),
        "W2 dd+op blocks": lambda: on_cluster(clients[2], frame_floor),
        "W2 array": lambda: on_cluster(clients[2], arrays),
        "W2 array blocks": lambda: on_cluster(clients[2], array_floor),
    }
    if args.rg:
        cases |= {
            "rg in-process": lambda: local.fit(args.rg),
            "rg W1": fit_on(1, args.rg),
            "rg W2": fit_on(2, args.rg),
        }
    for run in cases.values():
        run()  # warm: imports in every process, page cache
    rounds = []
    for r in range(args.rounds):
        rounds.append({name: run() for name, run in cases.items()})
        print(
            f"round {r + 1}: "
            + ", ".join(f"{k} {v['wall']:.2f}s/{v['cpu']:.2f}cpu" for k, v in rounds[-1].items()),
            flush=True,
        )
    reference = np.array(rounds[0]["in-process"]["params"])
    worst = max(
        float(np.max(np.abs(np.array(v["params"]) - reference) / np.abs(reference)))
        for x in rounds
        for k, v in x.items()
        if not k.startswith("rg") and not k.endswith("blocks")
    )

    def wall(x, k):
        return x[k]["wall"]

    table = {
        "W1 throughput / in-process  (target >= 0.9)": [
            wall(x, "in-process") / wall(x, "W1") for x in rounds
        ],
        "W2 throughput / in-process  (target >= 1.2)": [
            wall(x, "in-process") / wall(x, "W2") for x in rounds
        ],
        "W1 CPU-s / in-process CPU-s  (target <= 1.1)": [
            x["W1"]["cpu"] / x["in-process"]["cpu"] for x in rounds
        ],
        "W2 CPU-s / in-process CPU-s  (target <= 1.1)": [
            x["W2"]["cpu"] / x["in-process"]["cpu"] for x in rounds
        ],
        "W2 dd.read_parquet time / Parquet path  (<= 1.2)": [
            wall(x, "W2 dd") / wall(x, "W2") for x in rounds
        ],
        "W2 dd + map_partitions time / Parquet path": [
            wall(x, "W2 dd+op") / wall(x, "W2") for x in rounds
        ],
        "W2 dd + map_partitions CPU-s / Parquet path": [
            x["W2 dd+op"]["cpu"] / x["W2"]["cpu"] for x in rounds
        ],
        "W2 dd + map_partitions CPU-s - Dask's own blocks": [
            (x["W2 dd+op"]["cpu"] - x["W2 dd+op blocks"]["cpu"]) / x["W2"]["cpu"] for x in rounds
        ],
        "W2 Dask arrays time / Parquet path": [wall(x, "W2 array") / wall(x, "W2") for x in rounds],
        "W2 Dask arrays CPU-s - Dask's own blocks": [
            (x["W2 array"]["cpu"] - x["W2 array blocks"]["cpu"]) / x["W2"]["cpu"] for x in rounds
        ],
    }
    if args.rg:
        table |= {
            "rg file: W2 throughput / W1  (target >= 1.3)": [
                wall(x, "rg W1") / wall(x, "rg W2") for x in rounds
            ],
            "rg file: W1 throughput / in-process": [
                wall(x, "rg in-process") / wall(x, "rg W1") for x in rounds
            ],
            "rg file: W2 throughput / in-process": [
                wall(x, "rg in-process") / wall(x, "rg W2") for x in rounds
            ],
        }
    print(
        f"\n{'contender':<16}{'median s':>9}{'min s':>8}{'CPU-s':>8}{'faults k':>10}{'sched s':>9}"
    )
    for name in cases:
        walls = [x[name]["wall"] for x in rounds]
        cpus = [x[name]["cpu"] for x in rounds]
        faults = [x[name].get("minflt", 0) / 1000 for x in rounds]
        driver = [x[name].get("driver_cpu", 0.0) for x in rounds]
        print(
            f"{name:<16}{statistics.median(walls):>9.2f}{min(walls):>8.2f}"
            f"{statistics.median(cpus):>8.2f}{statistics.median(faults):>10.0f}"
            f"{statistics.median(driver):>9.2f}"
        )
    print(f"\n{'ratio (same round)':<50}{'median':>8}{'min':>7}{'max':>7}   ({args.rounds} rounds)")
    for name, values in table.items():
        print(f"{name:<50}{statistics.median(values):>8.2f}{min(values):>7.2f}{max(values):>7.2f}")
    print(f"largest relative coefficient difference between the paths: {worst:.1e}")
    local.close()
    for c in (*clients.values(), *clusters.values()):
        c.close()


# ---------------------------------------------------------------------- scaling projection
def _task_cost(source, index, spec, batch_size, state_kind, *, on_rows=None):
    """A task that reports its own cost: (CPU-s, wall-s, the accumulation)."""
    from streamreg.engine.scan import accumulate_part

    before, started = resource.getrusage(resource.RUSAGE_THREAD), time.perf_counter()
    acc = accumulate_part(source, index, spec, batch_size, state_kind)
    after = resource.getrusage(resource.RUSAGE_THREAD)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return [(index, cpu, time.perf_counter() - started, acc)]


def _noop(x):
    return x


def project(task_seconds: list[float], workers: int, per_task: float, merge: float) -> float:
    """Wall time of the fixed task list on ``workers`` single-core workers: tasks dealt in
    order to whichever worker frees up first, then the merge tree's levels."""
    free = [0.0] * workers
    for seconds in task_seconds:
        k = free.index(min(free))
        free[k] += seconds + per_task
    levels = math.ceil(math.log2(max(len(task_seconds), 1))) if len(task_seconds) > 1 else 0
    return max(free) + levels * merge


def scaling(args) -> None:
    import operator

    import pyarrow as pa

    import streamreg
    from streamreg.design import resolve_spec
    from streamreg.engine.dask_runner import DaskRunner
    from streamreg.engine.scan import resolve_batch_size
    from streamreg.engine.tasks import task_blocks
    from streamreg.io.sources import Source
    from streamreg.solvers import family

    clusters, clients = start_clusters((1,))
    client = clients[1]
    src = Source.resolve(args.data)
    spec = resolve_spec(src, target="y")
    blocks = task_blocks(src, spec, resolve_batch_size(len(spec.columns)))
    state = family("cholesky").state
    client.run(pa.set_cpu_count, 1)  # one core per simulated worker: decoding on one thread
    runs = []
    for _ in range(args.rounds):
        results = DaskRunner(client).map_reduce(blocks, _task_cost, state, combine=operator.add)
        runs.append(sorted(results, key=lambda r: r[0]))
    per_task_cpu = [statistics.median(r[i][1] for r in runs) for i in range(len(blocks))]
    per_task_wall = [statistics.median(r[i][2] for r in runs) for i in range(len(blocks))]
    accs = [a for _, _, _, a in runs[-1]]
    started = time.perf_counter()
    for _ in range(200):
        accs[0] + accs[1]
    merge = (time.perf_counter() - started) / 200
    noop = []
    for _ in range(args.rounds):
        started = time.perf_counter()
        client.gather(client.map(_noop, range(200), pure=False))
        noop.append((time.perf_counter() - started) / 200)
    per_task = statistics.median(noop)
    # Measured end to end on the same 1-worker cluster, for the model's check.
    walls = []
    for _ in range(args.rounds):
        started = time.perf_counter()
        streamreg.fit(args.data, target="y", client=client)
        walls.append(time.perf_counter() - started)
    client.run(pa.set_cpu_count, 2)
    for c in (client, clusters[1]):
        c.close()

    print(f"MEASURED on a 1-worker cluster, {len(blocks)} tasks of {args.data}:")
    print(
        f"  task CPU-s: median {statistics.median(per_task_cpu):.3f}, "
        f"total {sum(per_task_cpu):.2f}; task wall-s total {sum(per_task_wall):.2f}"
    )
    print(f"  one merge of two partial results: {merge * 1e3:.3f} ms")
    print(f"  scheduler cost per task (no-op tasks): {per_task * 1e3:.2f} ms")
    print(
        f"  1-worker fit end to end: median {statistics.median(walls):.2f} s "
        f"(model: {project(per_task_wall, 1, per_task, merge):.2f} s from task wall times)"
    )
    rows = src.total_rows
    print(
        "\nPROJECTED (each worker one core of its own; a task costs its measured CPU-s; "
        "data as given, and 16× the files):"
    )
    print(
        f"{'workers':>8}{'wall s':>9}{'speed-up':>10}{'Mrows/s':>9}"
        f"{'16x data s':>12}{'speed-up':>10}"
    )
    one = project(per_task_cpu, 1, per_task, merge)
    one_big = project(per_task_cpu * 16, 1, per_task, merge)
    for w in (1, 2, 4, 8, 16):
        t = project(per_task_cpu, w, per_task, merge)
        big = project(per_task_cpu * 16, w, per_task, merge)
        print(
            f"{w:>8}{t:>9.2f}{one / t:>10.2f}{rows / t / 1e6:>9.1f}"
            f"{big:>12.2f}{one_big / big:>10.2f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="a directory of Parquet files (y, x...)")
    parser.add_argument("--rg", help="a directory holding one file of many row groups")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--scaling", action="store_true", help="the projected scaling table")
    parser.add_argument(
        "--dask-config",
        nargs="*",
        default=[],
        help="KEY=VALUE settings the clusters' workers start with, e.g. "
        "distributed.worker.profile.enabled=false",
    )
    args = parser.parse_args()
    if args.scaling:
        scaling(args)
    else:
        ratios(args)


if __name__ == "__main__":
    sys.exit(main())
