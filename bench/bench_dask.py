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

``--scaling`` prints a scaling table for W = 1, 2, 4, 8, 16 single-core workers and says
which figures are MEASURED and which PROJECTED. A 1- and a 2-worker ``LocalCluster``
(``threads_per_worker=1``) have every worker process pinned to one core of its own
(``sched_setaffinity`` on all its threads), so that ``tune_worker`` sizes Arrow's
decoding pool to one thread in every task (``pa.set_cpu_count(1)`` from outside is
undone by ``tune_worker`` at the start of each task). MEASURED, round by round:

* each task's cost: the fit's accumulation task wrapped to take ``RUSAGE_SELF`` (the
  worker process: the task thread *and* Arrow's decoding threads, plus whatever the
  worker's event loop did meanwhile) before and after, and its wall time; on the
  1-worker cluster (alone) and on the 2-worker one (both cores busy);
* one merge of two partial states; the scheduler's cost per task (200 no-op tasks,
  round trip); one state's serialized bytes, its worker-to-worker transfer (a task on
  worker B needing a state held by A, less the same with the state on B) and its
  gather to the client;
* the real ``streamreg.fit(DIR, target="y", client=client)`` on 1 and 2 workers (median
  and best of ``--rounds``), its pass timed apart from the client's work around it.

PROJECTED by ``project()``: the fixed task list dealt in order to whichever of W
workers frees up first (list scheduling), each task its process CPU-s + the scheduler's
cost; then ⌈log₂ T⌉ merge levels, each a merge, a task and (W > 1) a transfer; then the
gather and the client's work. The model's error at W = 1 and 2 is printed against the
real fits; W = 4, 8, 16, and every row of the 16× table (the task list repeated), are
projections only.
"""

from __future__ import annotations

import argparse
import gc
import math
import multiprocessing
import os
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


# ---------------------------------------------------------------------- scaling table
SCALING_WORKERS = (1, 2, 4, 8, 16)
DATA_COPIES = 16  # the second table: the task list repeated, as for 16× the files


def _pin_to_core(core: int) -> list[int]:
    """In a worker: every thread of this process on ``core`` (threads started later inherit
    it); returns the cores its threads may now run on."""
    allowed: set[int] = set()
    for tid in os.listdir("/proc/self/task"):
        try:
            os.sched_setaffinity(int(tid), {core})
            allowed |= os.sched_getaffinity(int(tid))
        except ProcessLookupError:  # a thread that ended meanwhile
            pass
    return sorted(allowed)


def pin_workers(client, cores: list[int]) -> dict[str, int]:
    """One core per worker: worker i of ``client``'s cluster on ``cores[i]`` (all its threads,
    Arrow's pool included). ``tune_worker`` then sizes Arrow's pool from that affinity: one
    thread, in every task — unlike ``pa.set_cpu_count(1)``, which every task undoes."""
    workers = sorted(client.scheduler_info(n_workers=-1)["workers"])
    placed = {}
    for i, address in enumerate(workers):
        core = cores[i % len(cores)]
        allowed = client.run(_pin_to_core, core, workers=[address])[address]
        if allowed != [core]:
            raise RuntimeError(f"worker {address} still runs on cores {allowed}, not [{core}]")
        placed[address] = core
    return placed


def _task_cost(source, index, spec, batch_size, state_kind, *, on_rows=None):
    """The fit's accumulation task, reporting its cost: [(index, process CPU-s, task thread
    CPU-s, wall-s, Arrow pool threads, the accumulation)].

    Process CPU-s (``RUSAGE_SELF``) counts Arrow's decoding threads, which the task thread's
    own CPU-s (``RUSAGE_THREAD``) misses; in a one-thread worker no other task runs meanwhile,
    so the process delta is this task plus what the worker's event loop did meanwhile."""
    import pyarrow as pa

    from streamreg.engine.scan import accumulate_part

    pool = pa.cpu_count()  # after tune_worker: the pool this task decodes with
    process, thread = resource.RUSAGE_SELF, resource.RUSAGE_THREAD
    p0, t0, started = resource.getrusage(process), resource.getrusage(thread), time.perf_counter()
    acc = accumulate_part(source, index, spec, batch_size, state_kind, on_rows=on_rows)
    wall = time.perf_counter() - started
    p1, t1 = resource.getrusage(process), resource.getrusage(thread)

    def cpu(a, b):
        return (b.ru_utime + b.ru_stime) - (a.ru_utime + a.ru_stime)

    return [(index, cpu(p0, p1), cpu(t0, t1), wall, pool, acc)]


_task_cost.task_name = "accumulation-cost"


def _noop(x):
    return x


def _present(x) -> int:
    """A task that only needs its argument on its worker."""
    return 0


def serialized_bytes(obj) -> int:
    """Bytes Dask sends for ``obj`` between processes (its serialized frames)."""
    from distributed.protocol import serialize_bytelist

    return sum(memoryview(frame).nbytes for frame in serialize_bytelist(obj))


def project(
    task_seconds: list[float],
    workers: int,
    per_task: float,
    merge: float,
    transfer: float = 0.0,
    gather: float = 0.0,
    fixed: float = 0.0,
) -> float:
    """Projected wall time of a pass over a fixed task list on ``workers`` single-core workers.

    Tasks are dealt in order to whichever worker frees up first (list scheduling, as Dask
    runs independent tasks), each costing its seconds plus ``per_task`` (scheduling); then
    the merge tree's ⌈log₂ T⌉ levels, each one merge task (``merge + per_task``) after one
    state moved between workers (``transfer``, none on one worker); then the root travels to
    the client (``gather``) and the fit's work outside the pass (``fixed``).

    >>> project([3.0, 1.0, 1.0, 1.0], 2, per_task=0.0, merge=0.0)
    3.0
    >>> project([1.0, 1.0, 1.0], 2, per_task=0.5, merge=0.25, transfer=1.0)
    6.5
    """
    free = [0.0] * workers
    for seconds in task_seconds:
        k = free.index(min(free))
        free[k] += seconds + per_task
    levels = math.ceil(math.log2(len(task_seconds))) if len(task_seconds) > 1 else 0
    level = merge + per_task + (transfer if workers > 1 else 0.0)
    return fixed + max(free) + levels * level + gather


def task_costs(client, blocks, state) -> list[tuple]:
    """One pass of the fit's accumulation tasks on ``client``'s cluster, each reporting its
    cost: ``_task_cost``'s tuples in task order."""
    from streamreg.engine.dask_runner import DaskRunner

    forget_results(client)
    return sorted(DaskRunner(client).map_reduce(blocks, _task_cost, state), key=lambda r: r[0])


def per_task_median(runs: list[list[tuple]], field: int) -> list[float]:
    """Each task's median over rounds of one field of ``_task_cost``'s tuples."""
    return [statistics.median(run[i][field] for run in runs) for i in range(len(runs[0]))]


def scheduler_cost(client, rounds: int, tasks: int = 200) -> float:
    """Seconds per task of no-op tasks run through the scheduler (round trip, pipelined)."""
    per = []
    for _ in range(rounds):
        started = time.perf_counter()
        client.gather(client.map(_noop, range(tasks), pure=False))
        per.append((time.perf_counter() - started) / tasks)
    return statistics.median(per)


def transfer_cost(client, state, repeats: int = 15) -> dict:
    """One partial state moved between workers, and from a worker to this process (medians).

    ``transfer``: a task on worker B needing a state held by worker A, less the same task with
    the state already on B (fresh copies each time, so that B never holds one already)."""
    a, b = sorted(client.scheduler_info(n_workers=-1)["workers"])[:2]
    remote, local, gather = [], [], []
    for _ in range(repeats):
        for holder, out in ((a, remote), (b, local)):
            [held] = client.scatter([state], workers=[holder], hash=False)
            started = time.perf_counter()
            client.submit(
                _present, held, workers=[b], allow_other_workers=False, pure=False
            ).result()
            out.append(time.perf_counter() - started)
            del held
        [held] = client.scatter([state], workers=[a], hash=False)
        started = time.perf_counter()
        client.gather(held)
        gather.append(time.perf_counter() - started)
        del held
    return {
        "transfer": max(0.0, statistics.median(remote) - statistics.median(local)),
        "remote": statistics.median(remote),
        "local": statistics.median(local),
        "gather": statistics.median(gather),
    }


def timed_fit(client, data: str) -> dict:
    """``streamreg.fit(data, target="y", client=client)``: its wall time, the wall time of its
    passes (``DaskRunner.map_reduce``, timed from outside; the rest is the client's work:
    footers, plan, solve, inference) and the CPU-s of this process (scheduler and client)."""
    import streamreg
    from streamreg.engine.dask_runner import DaskRunner

    passes = []
    original = DaskRunner.map_reduce

    def timed(self, *args, **kwargs):
        started = time.perf_counter()
        try:
            return original(self, *args, **kwargs)
        finally:
            passes.append(time.perf_counter() - started)

    forget_results(client)
    DaskRunner.map_reduce = timed
    try:
        before, started = rusage(), time.perf_counter()
        model = streamreg.fit(data, target="y", client=client)
        wall = time.perf_counter() - started
        driver = rusage()["cpu"] - before["cpu"]
    finally:
        DaskRunner.map_reduce = original
    return {
        "wall": wall,
        "pass": sum(passes),
        "driver_cpu": driver,
        "params": model.params,
    }


def _load() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def scaling(args) -> None:
    import numpy as np

    from streamreg.design import resolve_spec
    from streamreg.engine.scan import resolve_batch_size
    from streamreg.engine.tasks import task_blocks
    from streamreg.io.sources import Source
    from streamreg.solvers import family

    print(f"load average (1/5/15 min) at start: {_load()}", flush=True)
    cores = sorted(os.sched_getaffinity(0))
    # As streamreg's own local clusters: no statistical profiler sampling the task thread.
    clusters, clients = start_clusters((1, 2), {"distributed.worker.profile.enabled": False})
    for client in clients.values():
        pin_workers(client, cores)
    src = Source.resolve(args.data)
    spec = resolve_spec(src, target="y")
    blocks = task_blocks(src, spec, resolve_batch_size(len(spec.columns)))
    n_tasks, rows = len(blocks.parts), src.total_rows
    for w in (1, 2):
        timed_fit(clients[w], args.data)  # warm: imports in every process, page cache

    # MEASURED, round by round (so that load hits all alike): each task's cost on 1 worker
    # and on 2 workers busy at once, then the real fit on 1 and on 2 workers.
    state = family("cholesky").state
    alone, beside, fits = [], [], {1: [], 2: []}
    for r in range(args.rounds):
        alone.append(task_costs(clients[1], blocks, state))
        beside.append(task_costs(clients[2], blocks, state))
        for w in (1, 2):
            fits[w].append(timed_fit(clients[w], args.data))
        print(
            f"round {r + 1}: W1 {fits[1][-1]['wall']:.2f} s, W2 {fits[2][-1]['wall']:.2f} s; "
            f"task CPU-s total {sum(t[1] for t in alone[-1]):.2f} alone, "
            f"{sum(t[1] for t in beside[-1]):.2f} on 2 busy workers (load {_load()})",
            flush=True,
        )
    task_cpu = per_task_median(alone, 1)
    thread_cpu = per_task_median(alone, 2)
    task_wall = per_task_median(alone, 3)
    beside_cpu = per_task_median(beside, 1)
    pools = {t[4] for run in alone + beside for t in run}
    a, b = alone[-1][0][5], alone[-1][1 % n_tasks][5]
    merges = []
    for _ in range(args.rounds):
        started = time.perf_counter()
        for _ in range(100):
            a + b
        merges.append((time.perf_counter() - started) / 100)
    merge = statistics.median(merges)
    per_task = scheduler_cost(clients[1], args.rounds)
    moved = transfer_cost(clients[2], a)
    size = serialized_bytes(a)
    worst = max(
        float(np.max(np.abs(f["params"] - fits[1][0]["params"]) / np.abs(fits[1][0]["params"])))
        for w in fits
        for f in fits[w]
    )
    measured = {w: statistics.median(f["wall"] for f in fits[w]) for w in fits}
    best = {w: min(f["wall"] for f in fits[w]) for w in fits}
    driver = {w: statistics.median(f["driver_cpu"] for f in fits[w]) for w in fits}
    outside = statistics.median(f["wall"] - f["pass"] for w in fits for f in fits[w])
    for c in (*clients.values(), *clusters.values()):
        c.close()

    def model(seconds, w):
        return project(
            seconds, w, per_task, merge, moved["transfer"], moved["gather"], fixed=outside
        )

    print(
        f"\nMEASURED inputs ({n_tasks} tasks over {rows:,} rows of {Path(args.data).name}; "
        f"medians of {args.rounds} rounds; each worker pinned to one core, Arrow's pool at "
        f"{'/'.join(map(str, sorted(pools)))} thread in every task):"
    )
    print(
        f"  task cost, process CPU-s (the task thread and Arrow's decoding threads): "
        f"median {statistics.median(task_cpu):.3f}, range {min(task_cpu):.3f}-"
        f"{max(task_cpu):.3f}, total {sum(task_cpu):.2f}"
    )
    print(
        f"    (of which the task thread alone: total {sum(thread_cpu):.2f}; task wall-s total "
        f"{sum(task_wall):.2f}; the process figure also holds what the worker's event loop "
        "did meanwhile)"
    )
    print(
        f"  the same tasks on 2 workers busy at once: process CPU-s total {sum(beside_cpu):.2f} "
        f"({sum(beside_cpu) / sum(task_cpu) - 1:+.0%}: the cores share caches and memory, "
        "and the scheduler runs beside them)"
    )
    print(f"  one merge of two partial states: {merge * 1e3:.3f} ms")
    print(
        f"  scheduler cost per task (no-op tasks, round trip, pipelined): {per_task * 1e3:.2f} ms"
    )
    print(
        f"  one partial state: {size:,} bytes serialized; worker-to-worker transfer "
        f"{moved['transfer'] * 1e3:.2f} ms (a task needing it: {moved['remote'] * 1e3:.2f} ms "
        f"from the other worker, {moved['local'] * 1e3:.2f} ms in place); gather to the "
        f"client {moved['gather'] * 1e3:.2f} ms"
    )
    print(
        f"  the fit's work outside its pass (client: footers, plan, solve, inference): "
        f"{outside:.3f} s"
    )
    print(
        f"  scheduler and client (this process) CPU-s during a fit: W1 {driver[1]:.2f}, "
        f"W2 {driver[2]:.2f} (at W2 on the workers' two cores; on a cluster, its own machine)"
    )
    print(f"  largest relative coefficient difference between the fits: {worst:.1e}")

    print(
        "\nMODEL CHECK: the real streamreg.fit(DIR, target='y', client=...) against the model "
        f"(median and best of {args.rounds})"
    )
    print(
        f"{'workers':>8}{'measured s':>12}{'best s':>8}{'model s':>9}{'error':>8}"
        f"{'error to best':>15}{'model from task wall-s':>24}"
    )
    errors = {}
    for w in (1, 2):
        projected = model(task_cpu, w)
        errors[w] = projected / measured[w] - 1
        print(
            f"{w:>8}{measured[w]:>12.2f}{best[w]:>8.2f}{projected:>9.2f}{errors[w]:>+8.0%}"
            f"{projected / best[w] - 1:>+15.0%}{model(task_wall, w):>24.2f}"
        )

    def table(title, seconds, n_rows, measured_walls):
        tasks = len(seconds)
        print(f"\n{title}: {n_rows / 1e6:.0f}M rows in {tasks} tasks")
        print(
            f"{'workers':>8}{'wall s':>9}{'speed-up':>10}{'Mrows/s':>9}  {'':<10}"
            f"{'projected s':>12}{'cap':>6}"
        )
        for w in SCALING_WORKERS:
            projected = model(seconds, w)
            wall = measured_walls.get(w, projected)
            # speed-up against W = 1 of the same kind: measured over measured, projected over
            # projected
            one = measured_walls[1] if w in measured_walls else model(seconds, 1)
            kind = "MEASURED" if w in measured_walls else "PROJECTED"
            beside = f"{projected:>12.2f}" if w in measured_walls else f"{'':>12}"
            cap = sum(seconds) / project(seconds, w, per_task=0.0, merge=0.0)
            print(
                f"{w:>8}{wall:>9.2f}{one / wall:>10.2f}{n_rows / wall / 1e6:>9.1f}  {kind:<10}"
                f"{beside}{cap:>6.1f}"
            )

    table("The data as given", task_cpu, rows, measured)
    table(
        f"{DATA_COPIES}× the data (the task list repeated)",
        task_cpu * DATA_COPIES,
        rows * DATA_COPIES,
        {},
    )
    print(
        f"\nModel error: W=1 {errors[1]:+.0%}, W=2 {errors[2]:+.0%} (model / measured - 1)."
        f"\nMEASURED: the rows marked so (median wall of {args.rounds} real fits) and every model "
        "input above. PROJECTED: everything else, from those inputs."
        f"\nSpeed-up is capped by the task count: the {n_tasks} tasks cannot be cut, so W workers "
        "finish no sooner than the busiest one's share ('cap': all tasks' seconds over that "
        "share, with no overheads; for T equal tasks T/⌈T/W⌉); beyond W = T workers sit idle. "
        f"{DATA_COPIES}× the data ({n_tasks * DATA_COPIES} tasks) shows the scaling without "
        "that cap."
        "\nAssumptions of the projection: each worker has one core of its own (as measured here:"
        " one pinned core, Arrow decoding on one thread); a task costs its measured process "
        "CPU-s (an idle core; the data in the page cache, storage bandwidth never a limit); the "
        "scheduler's cost per task is constant whatever the number of workers (no scheduler "
        "saturation); each merge level costs one merge, one task and one state transfer; the "
        "client's work outside the pass is the same for every W."
        f"\nload average (1/5/15 min) at end: {_load()}"
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
