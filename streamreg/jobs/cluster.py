"""New files of a job read by a Dask cluster's workers (``[run] scheduler = "tcp://…"``).

Every file a run must read becomes one task, submitted at once, so the workers
read files side by side while the run writes each file's state as its task
finishes, in the usual order. A task folds the whole file exactly as a local
ingest does (same batches, same order), so its state is the same; with the
exact solver it is bit-identical whatever the machine (the other solvers' BLAS
sums may round differently where the workers' BLAS uses other thread counts). A job
with ``[cv]`` sends its fold assignment along: a row's fold depends only on the row,
so a worker's fold states are the ones a local read makes.
There are no checkpoints inside a file on the cluster: a stop request cancels
the tasks not yet finished, and their files are read again by the next run.

>>> ClusterReads(None).enabled
False
"""

from __future__ import annotations

import contextlib

from ..design import DesignSpec
from ..engine.dask_runner import cluster_client
from ..engine.fold_ids import FoldAssignment
from ..engine.fold_scan import accumulate_folds
from ..engine.scan import Accumulation, accumulate
from ..io.sources import Source
from .ingest import Stopped

# Seconds between looks at the stop request while a task runs.
POLL_SECONDS = 0.2


def read_file(
    source: Source,
    spec: DesignSpec,
    state_kind,
    batch_size: int,
    folds: FoldAssignment | None = None,
) -> Accumulation:
    """The task: the whole file's accumulation (what :class:`~streamreg.jobs.ingest.Ingester`
    folds locally), one state per fold with ``folds``."""
    if folds is not None:
        return accumulate_folds(source, spec, state_kind, folds, batch_size=batch_size)
    return accumulate(source, spec, state_kind, batch_size=batch_size)


class Stopping(Stopped):
    """A stop was requested while waiting for a worker (the run stops as it does locally)."""


class ClusterReads(contextlib.AbstractContextManager):
    """A client of ``scheduler`` for one run (or nothing, for a local job)."""

    def __init__(self, scheduler: str | None, timeout: float = 10.0):
        self.scheduler, self.timeout = scheduler, timeout
        self._context = None
        self.client = None
        self.futures: dict = {}

    @property
    def enabled(self) -> bool:
        return self.scheduler is not None

    def __enter__(self) -> ClusterReads:
        if self.enabled:
            self._context = cluster_client(self.scheduler, timeout=self.timeout)
            self.client = self._context.__enter__()
        return self

    def __exit__(self, *exc_info):
        if self.futures:
            self.client.cancel(list(self.futures.values()))
            self.futures.clear()
        if self._context is not None:
            return self._context.__exit__(*exc_info)
        return None

    def submit_all(self, opened, specs, skip, batch_size: int, ingester) -> ClusterReads:
        """A task per file of ``opened`` ((source, digest) pairs; ``specs`` alike) whose path
        is not in ``skip``, reading as ``ingester`` would (its state kind and folds); this
        object (for :attr:`Ingester.cluster`)."""
        if self.enabled:
            for (source, _), spec in zip(opened, specs):
                path = source.files[0].path
                if path not in skip:
                    self.futures[path] = self.client.submit(
                        read_file,
                        source,
                        spec,
                        ingester.kind,
                        batch_size,
                        ingester.folds,
                        pure=False,
                    )
        return self

    def reader(self, path: str, stop):
        """A callable giving ``path``'s accumulation from its worker (None for a local job);
        it raises :class:`Stopping` if ``stop`` is set before the task is done."""
        future = self.futures.get(path)
        if future is None:
            return None

        def result() -> Accumulation:
            while True:
                if stop is not None and stop.is_set():
                    raise Stopping(path)
                try:
                    acc = future.result(timeout=POLL_SECONDS)
                except TimeoutError:
                    continue
                del self.futures[path]
                return acc

        return result
