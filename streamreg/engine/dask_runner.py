"""Dask and distributed: the Dask runner, Dask collections as blocks, lazy prediction, clusters.

This is the only module that imports dask, with :mod:`streamreg.engine.dask_parts` (what
a worker opens) and :mod:`streamreg.engine.cluster`. Every block — a Dask DataFrame
partition, a block of rows of Dask arrays, or Parquet files or row groups read *by a
worker* (:mod:`streamreg.engine.tasks`) — is a task running the same code as a local
pass; results are merged in the fixed pairwise tree of :mod:`streamreg.engine.merge`,
so no partial result travels more than ⌈log₂ P⌉ hops, the client never holds the data,
and a recomputed partition (a worker that died) gives the same bits.

>>> import numpy as np, dask.array as da
>>> from streamreg import fit
>>> X = da.from_array(np.arange(20.0).reshape(10, 2), chunks=(3, 2))
>>> y = X[:, 0] * 2 - X[:, 1] + 1
>>> model = fit(X, y, drop_collinear=True)
>>> model.aliased_
['x1']
"""

from __future__ import annotations

import contextlib
import logging
import operator
import os
import warnings
from collections.abc import Callable, Iterator, Sequence

import numpy as np
import pyarrow as pa

from ..design import DesignSpec
from ..errors import InputError, parameter
from ..progress import Progress
from .blocks import Blocks
from .cluster import STALL_TIMEOUT, await_future, probe_scheduler
from .dask_parts import (
    ArrayBlockSource,
    FramePartitions,
    frame_source,
    plain_parquet_read,
    tune_worker,
    worker_threads_by_host,
)
from .merge import tree_reduce
from .tasks import task_blocks

# A block's step of a chain is submitted this many blocks ahead of the one running (bounded memory).
LOOKAHEAD = 2


def is_dask_collection(obj) -> bool:
    # Only objects from dask's own modules can be collections here; checking the
    # module first keeps a plain local fit from importing dask (~0.1 s of start-up).
    if obj is None or not type(obj).__module__.startswith("dask"):
        return False
    import dask

    return dask.is_dask_collection(obj)


class DaskRunner:
    """Runs a pass's tasks as Dask tasks, on ``client``'s cluster or the current scheduler.

    ``progress`` (True, False, or None for "only on a terminal") shows the blocks done — in
    rows when every block knows its rows (files) — as their tasks finish on the cluster; it
    needs a client (without one Dask computes the graph in one call, with nothing to watch).
    With a client, a pass that finishes no task for ``stall_timeout`` seconds (default
    :data:`~streamreg.engine.cluster.STALL_TIMEOUT`) ends with an :class:`InputError`.
    """

    def __init__(
        self, client=None, *, progress: bool | None = False, stall_timeout: float | None = None
    ):
        self.client = client
        self.progress = progress
        self.stall_timeout = STALL_TIMEOUT if stall_timeout is None else stall_timeout

    def _bar(self, blocks: Blocks, label: str) -> tuple[Progress, list[int]]:
        """The progress display of a pass and each block's share of it (rows, or 1 a block)."""
        rows = [getattr(part, "total_rows", None) for part in blocks.parts]
        if all(isinstance(r, int) for r in rows):
            sizes, unit = rows, "rows"
        else:
            sizes, unit = [1] * len(blocks.parts), "blocks"
        enabled = self.progress if self.client is not None and sum(sizes) else False
        bar = Progress(sum(sizes), blocks.total_bytes, label=label, enabled=enabled, unit=unit)
        return bar, sizes

    def map_reduce(
        self,
        blocks: Blocks,
        task: Callable,
        *args,
        label: str = "reading",
        combine: Callable = operator.add,
    ):
        """``task(source, i, spec, batch_size, *args)`` per block on the workers, merged in the
        tree."""
        from dask import delayed
        from dask.base import tokenize

        # Keys read "_partition_<what>-<token>" on the dashboard and in task streams.
        prefix = f"_partition_{getattr(task, 'task_name', task.__name__)}"
        run = delayed(_partition_task, pure=True)
        hosts = worker_threads_by_host(self.client)
        items = [
            run(
                part,
                i,
                blocks.open_part,
                blocks.spec,
                blocks.batch_size,
                hosts,
                task,
                *args,
                dask_key_name=(
                    f"{prefix}-{tokenize(part, i, blocks.spec, blocks.batch_size, task, *args)}"
                ),
            )
            for i, part in enumerate(blocks.parts)
        ]
        if self.client is None:
            return tree_reduce(items, delayed(combine, pure=True)).compute()
        # The same tree as futures, so that each finished task counts as progress (for the
        # display, and against the stall deadline).
        leaves = self.client.compute(items)
        merges: list = []

        def merge(a, b):
            merges.append(self.client.submit(combine, a, b, pure=True))
            return merges[-1]

        root = tree_reduce(list(leaves), merge)
        bar, sizes = self._bar(blocks, label)
        counted: set[int] = set()

        def advance() -> None:
            for i, leaf in enumerate(leaves):
                if i not in counted and leaf.done():
                    counted.add(i)
                    bar.advance(sizes[i])

        with bar:
            result = await_future(
                self.client,
                root,
                self.stall_timeout,
                f"the {label} pass",
                [*leaves, *merges],
                on_progress=advance,
            )
            advance()  # the leaves that finished since the last poll
            return result

    def fold(
        self,
        blocks: Blocks,
        order: Sequence[int],
        step: Callable,
        carry,
        *args,
        label: str = "steps",
    ):
        """``carry = step(source, i, …, carry, *args)`` for the blocks in ``order``, one after
        another.

        With a client each step runs on a worker, reading its own block, so only the
        carried value moves between workers; without one the chain runs here, each
        Dask block computed in turn."""
        import dask

        if self.client is None:
            for i in order:
                part = blocks.parts[i]
                if _lazy(part):
                    (part,) = dask.compute(part)
                carry = _partition_task(
                    part,
                    int(i),
                    blocks.open_part,
                    blocks.spec,
                    blocks.batch_size,
                    None,
                    step,
                    carry,
                    *args,
                )
            return carry
        bar, sizes = self._bar(blocks, label)
        with bar:
            return self._chain(blocks, order, step, carry, args, bar, sizes, label)

    def _chain(
        self, blocks: Blocks, order, step, carry, args, bar: Progress, sizes: list[int], label: str
    ):
        """``fold`` on the cluster: each step on a worker, a few blocks ahead at most."""
        pending = []
        hosts = worker_threads_by_host(self.client)
        for i in order:
            part = blocks.parts[i]
            if _lazy(part):
                part = self.client.compute(part)
            carry = self.client.submit(
                _partition_task,
                part,
                int(i),
                blocks.open_part,
                blocks.spec,
                blocks.batch_size,
                hosts,
                step,
                carry,
                *args,
                pure=False,
            )
            pending.append((carry, sizes[int(i)]))
            if len(pending) > LOOKAHEAD:
                done, size = pending.pop(0)
                # bounded: a few blocks in flight, never the whole data
                await_future(self.client, done, self.stall_timeout, f"the {label}")
                bar.advance(size)
        for done, size in pending[:-1]:
            await_future(self.client, done, self.stall_timeout, f"the {label}")
            bar.advance(size)
        result = await_future(self.client, carry, self.stall_timeout, f"the {label}")
        if pending:
            bar.advance(pending[-1][1])
        return result


def _lazy(part) -> bool:
    """A Dask partition, or the row blocks [X, y(, w)] of Dask arrays (not yet computed)."""
    return is_dask_collection(part) or (
        isinstance(part, (list, tuple)) and any(is_dask_collection(p) for p in part)
    )


def _partition_task(part, index, open_part, spec, batch_size, hosts, task, *args):
    """What a worker runs: size Arrow's pool for this worker, open the block, then the task."""
    tune_worker(hosts)
    return task(open_part(part, index), index, spec, batch_size, *args)


# ---------------------------------------------------------------------- collections as blocks
def collection_blocks(source, y=None, *, weight=None, batch_size: Callable, request):
    """``(blocks, schema)`` of a Dask DataFrame (with a target column) or of Dask arrays
    ``X, y``; ``request`` (:class:`streamreg.design.request.Request`) names the columns, and
    ``batch_size(spec)`` resolves the batch size once the design is known."""
    import dask.array as da
    import dask.dataframe as dd

    if isinstance(source, dd.DataFrame):
        if y is not None:
            raise InputError(
                "with a Dask DataFrame name the target column (target=) instead of passing y."
            )
        if not request.targets and not request.formula:
            raise InputError("a target column is required (target=).")
        if weight is not None and not isinstance(weight, str):
            raise InputError("with a Dask DataFrame, weight must be a column name.")
        schema = pa.Schema.from_pandas(source._meta, preserve_index=False)
        spec = request.design(schema)
        if isinstance(spec, DesignSpec):  # plain numeric columns: the fast paths
            files = plain_parquet_read(source, spec)
            if files is not None:  # nothing but dd.read_parquet(path): the workers read the files
                return task_blocks(files, spec, batch_size(spec)), schema
            opener = FramePartitions(convert=(spec.groups,) if spec.groups else ())
            return Blocks(list(source.to_delayed()), opener, spec, batch_size(spec)), schema
        # An encoded design (categories, formulas) converts each partition through pandas.
        return Blocks(list(source.to_delayed()), frame_source, spec, batch_size(spec)), schema
    if isinstance(source, da.Array):
        if y is None:
            raise InputError("fit(X, y) with a Dask array X needs y.")
        if source.ndim != 2:
            raise InputError(f"X must be 2-D (rows, features); got {source.ndim} dimensions.")
        if request.needs_encoding or getattr(y, "ndim", 1) > 1:
            raise InputError(
                "Dask arrays are fitted as numeric columns x0, x1, … with one target; for "
                "categories, formulas, absorbed factors or several targets use a Dask DataFrame."
            )
        x = source.rechunk({1: -1})
        columns = [f"x{j}" for j in range(x.shape[1])]
        target = (request.targets or ("y",))[0]
        pieces = [x, _as_dask_vector(y, x, "y")]
        names = [*columns, target]
        weight_name = None
        if weight is not None:
            if isinstance(weight, str):
                raise InputError("with Dask arrays, weight must be an array of weights.")
            pieces.append(_as_dask_vector(weight, x, "weight"))
            weight_name = "sample_weight"
            names.append(weight_name)
        blocks = [p.to_delayed().ravel().tolist() for p in pieces]
        if len({len(b) for b in blocks}) != 1:
            raise InputError("X, y (and weight) must be split into the same number of row blocks.")
        schema = pa.schema([(n, pa.float64()) for n in names])
        spec = DesignSpec.resolve(
            schema,
            target=target,
            features=columns,
            weight=weight_name,
            fit_intercept=request.fit_intercept,
            nulls=request.nulls,
        )
        parts = [list(group) for group in zip(*blocks)]
        return Blocks(parts, ArrayBlockSource(names), spec, batch_size(spec)), schema
    raise InputError(
        f"cannot fit a Dask collection of type {type(source).__name__}; "
        "expected a Dask DataFrame or Dask arrays X, y."
    )


def _as_dask_vector(values, x, label: str):
    import dask.array as da

    if not is_dask_collection(values):
        values = np.asarray(values, dtype=np.float64).reshape(-1)
        if not any(np.isnan(c) for c in x.chunks[0]) and len(values) != x.shape[0]:
            raise InputError(f"X has {x.shape[0]} rows but {label} has {len(values)}.")
        if any(np.isnan(c) for c in x.chunks[0]):
            raise InputError(
                f"X has unknown chunk sizes; pass {label} as a Dask array split like X."
            )
        return da.from_array(values, chunks=(x.chunks[0],))
    values = values.reshape(-1) if values.ndim > 1 else values
    known = not any(np.isnan(c) for c in (*x.chunks[0], *values.chunks[0]))
    if known and values.chunks[0] != x.chunks[0]:
        values = values.rechunk((x.chunks[0],))
    return values


# ---------------------------------------------------------------------- prediction
def predict_dask(model, data, *, unseen: str = "error"):
    """Lazy predictions: a Dask Series for a Dask DataFrame, a Dask array for a Dask array.

    ``model`` is anything with ``predict`` and ``n_features_in_`` (duck typed)."""
    import dask.array as da
    import dask.dataframe as dd
    import pandas as pd

    if isinstance(data, dd.DataFrame):
        return data.map_partitions(
            _predict_frame, model, unseen, meta=pd.Series(dtype="float64", name="prediction")
        )
    if isinstance(data, da.Array):
        if data.ndim != 2:
            raise InputError(
                f"expected a 2-D array of shape (rows, {model.n_features_in_}); got {data.ndim}-D."
            )
        if data.shape[1] != model.n_features_in_:
            raise InputError(
                f"the data has {data.shape[1]} columns; the model was fitted with "
                f"{model.n_features_in_}."
            )
        return data.rechunk({1: -1}).map_blocks(model.predict, drop_axis=1, dtype=np.float64)
    raise InputError(f"cannot predict for a Dask collection of type {type(data).__name__}.")


def _predict_frame(frame, model, unseen="error"):
    import pandas as pd

    values = model.predict(frame) if unseen == "error" else model.predict(frame, unseen=unseen)
    return pd.Series(values, index=frame.index, name="prediction")


# ---------------------------------------------------------------------- clusters
# Loggers of Dask's own chatter: connection retries, restarted workers, GC timing, the HTTP
# server's port. A command line's user gets one sentence from streamreg instead.
DASK_LOGGERS = ("distributed", "tornado", "bokeh")


@contextlib.contextmanager
def quiet_cluster(quiet: bool = True) -> Iterator[None]:
    """Keep Dask's warnings and distributed's log lines out of a command line's output.

    In this process: warnings raised from ``distributed`` (e.g. "Port 8787 is already in
    use") are ignored and the loggers above say only critical things; a local cluster's
    dashboard takes any free port instead of warning about 8787. Worker processes started
    meanwhile inherit ``DASK_LOGGING__DISTRIBUTED=critical`` from the environment. With
    ``quiet=False`` (``--debug``) nothing is changed.
    """
    if not quiet:
        yield
        return
    import dask
    import distributed  # noqa: F401 - its config defaults must exist before the set below

    # (dask.config.set removes on exit every key it did not find: had distributed been imported
    # inside the context, its whole configuration would go with it.)
    env = {"DASK_LOGGING__DISTRIBUTED": "critical"}
    saved_env = {name: os.environ.get(name) for name in env}
    loggers = [logging.getLogger(name) for name in DASK_LOGGERS]
    saved_levels = [logger.level for logger in loggers]
    os.environ.update(env)
    try:
        with (
            warnings.catch_warnings(),
            dask.config.set(
                {
                    "distributed.scheduler.dashboard.address": ":0",
                    "logging.distributed": "critical",
                }
            ),
        ):
            warnings.filterwarnings("ignore", module=r"(distributed|tornado|bokeh)(\.|$)")
            for logger in loggers:
                logger.setLevel(logging.CRITICAL)
            yield
    finally:
        for logger, level in zip(loggers, saved_levels):
            logger.setLevel(level)
        for name, value in saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextlib.contextmanager
def cluster_client(
    scheduler: str | None = None, workers: int | None = None, timeout: float = 10.0
) -> Iterator:
    """A ``distributed.Client`` to ``scheduler``, or to a local cluster of ``workers`` processes.

    ``timeout`` bounds the connection *and* the handshake (a port that accepts and never
    answers, or speaks another protocol, is refused in words: :func:`probe_scheduler`)."""
    import dask
    from distributed import Client, LocalCluster

    for name in ("distributed", "distributed.worker", "distributed.scheduler", "distributed.nanny"):
        logging.getLogger(name).setLevel(logging.ERROR)
    if scheduler:
        probe_scheduler(scheduler, timeout)
        try:
            client = Client(scheduler, timeout=timeout)
        except (OSError, TimeoutError) as exc:
            raise InputError(
                f"could not reach the Dask scheduler at {scheduler} within {timeout:g} s ({exc})."
            ) from None
        except Exception as exc:  # noqa: BLE001 - it answered the probe, then misbehaved
            raise InputError(
                f"{scheduler} did not answer as a Dask scheduler does ({type(exc).__name__}: "
                f"{' '.join(str(exc).split())[:200]})."
            ) from None
        with client:
            yield client
        return
    if workers is None or workers < 1:
        raise InputError(
            f"{parameter('workers')} must be a positive number of processes; got {workers}."
        )
    # dashboard_address=None alone still serves the scheduler's HTTP routes on :8787 of every
    # interface: give them a free loopback port. Without a dashboard nobody reads the workers'
    # statistical profiler, which samples the task thread every 10 ms: it was half of an idle
    # worker's CPU (0.04 → 0.02 CPU-s per second).
    with (
        dask.config.set({"distributed.worker.profile.enabled": False}),
        LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client
