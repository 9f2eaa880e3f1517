"""Ingesting one file of a job: its per-file state, checkpointed, resumable, adoptable.

A file's state is written to ``states/<name>.json`` once the whole file is
folded; on the way, every ``job.checkpoint_row_groups`` row groups (and when a
stop is requested) the state so far goes to ``partial/<name>.json`` with the
next row group to read. Record batches never span row groups, so a file
resumed at a row-group boundary folds the same batches in the same order as an
uninterrupted read: its state is bit-identical. A final state left by an
interrupted run (written, but not yet listed in the manifest) is adopted as it
is. Either leftover is used only if it was made for exactly this version of the
file (``<name>`` hashes its URL, size, version and footer checksum) and, for a
checkpoint, the same batch size.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

from ..design import DesignSpec
from ..engine.fold_ids import FoldAssignment
from ..engine.fold_scan import accumulate_folds
from ..engine.fold_states import FoldStates
from ..engine.scan import Accumulation, accumulate
from ..errors import ModelFormatError
from ..io.listing import ListedFile
from ..io.sources import Source
from .log import JobLog
from .manifest import (
    FILE_STATE_FORMAT,
    PARTIAL_FORMAT,
    accumulation_from_doc,
    file_entry,
    file_facts,
    state_doc,
    state_name,
)
from .plan import entry_time, utc_now
from .spec import JobSpec
from .store import Store


class Stopped(Exception):
    """Raised inside a pass when a stop was requested and the file was checkpointed."""


class CheckpointWriter:
    """Checkpoint writes off the hot path: one at a time, in order, on a background thread.

    A checkpoint's content is fixed when it is handed over; while it is written
    and fsynced the fold goes on. Each write waits for the one before, so the
    store always holds the older or the newer checkpoint, and :meth:`wait` makes
    the last one durable (before a file's final state, or before stopping)."""

    def __init__(self, store: Store):
        self.store, self.pool, self.pending = store, None, None

    def write(self, name: str, data: bytes) -> None:
        self.wait()
        if self.pool is None:
            self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="streamreg-checkpoint")
        self.pending = self.pool.submit(self.store.write, name, data)

    def wait(self) -> None:
        pending, self.pending = self.pending, None
        if pending is not None:
            pending.result()

    def close(self) -> None:
        try:
            self.wait()
        finally:
            if self.pool is not None:
                self.pool.shutdown(wait=True)
                self.pool = None


class Ingester:
    """Folds files of ``job`` into their per-file states in ``store`` (states of ``kind``).

    ``stop`` (a ``threading.Event`` or None) makes :meth:`ingest` checkpoint the
    file at its next row-group boundary and raise :class:`Stopped`. Call
    :meth:`close` when done: it makes the last checkpoint durable. With ``folds`` (a job
    with [cv]) each file's rows go into one state per fold."""

    def __init__(
        self,
        job: JobSpec,
        store: Store,
        kind: type,
        log: JobLog,
        stop,
        folds: FoldAssignment | None = None,
    ):
        self.job, self.store, self.kind, self.log, self.stop = job, store, kind, log, stop
        self.folds = folds
        self.checkpoints = CheckpointWriter(store)
        self.on_rows = None  # called with each batch's row count (a progress display)
        self.cluster = None  # a jobs.cluster.ClusterReads whose workers read the files

    def close(self) -> None:
        self.checkpoints.close()

    def ingest(
        self, src: Source, digest: str, spec: DesignSpec, listed: ListedFile, batch_size: int
    ) -> tuple[dict, Accumulation, str]:
        """(manifest entry, accumulation, how) of the one file of ``src``; ``how`` is
        ``"ingested"``, ``"adopted"`` or ``"resumed at row group k"``. With a :attr:`cluster`
        that read the file, its worker's accumulation is taken (no checkpoints then)."""
        info = src.files[0]
        url = info.path
        facts = file_facts(listed, info, digest)
        name = state_name(url, listed, digest)
        final, partial = f"states/{name}.json", f"partial/{name}.json"
        acc, _ = self._adopt(final, facts, FILE_STATE_FORMAT)
        if acc is not None:
            self.log.info(
                "adopted",
                f"{url}: its state was complete from an interrupted run; adopted.",
                file=url,
            )
            return self._entry(facts, name, acc), acc, "adopted"
        computed = self.cluster.reader(url, self.stop) if self.cluster is not None else None
        if computed is not None:
            self.log.info(
                "reading",
                f"{url}: {info.num_rows:,} rows read by a worker of the cluster.",
                file=url,
                row_group=0,
            )
            entry, acc = self._finish(facts, name, computed(), spec, batch_size)
            if self.on_rows is not None:
                self.on_rows(acc.rows_read)
            return entry, acc, "ingested"
        acc, start = self._adopt(partial, facts, PARTIAL_FORMAT, batch_size=batch_size)
        if acc is not None:
            self.log.info(
                "resumed",
                f"{url}: resuming at row group {start} of "
                f"{facts['row_groups']} ({acc.rows_read:,} rows already folded).",
                file=url,
                row_group=start,
            )
            how = f"resumed at row group {start}"
        elif self.folds is not None:
            empty = FoldStates.for_assignment(self.kind, spec.state_names, self.folds)
            acc = Accumulation(empty, spec, rows_by_file={f.path: 0 for f in src.files})
            start, how = 0, "ingested"
        else:
            acc, start, how = Accumulation.empty(self.kind, spec, src.files), 0, "ingested"
        acc.spec = spec
        groups = len(info.row_group_starts)
        ends = {}
        for k in range(groups):
            ends[info.row_group_starts[k + 1] if k + 1 < groups else info.num_rows] = k + 1
        every = self.job.checkpoint_row_groups
        since = [0]

        def after_batch(chunk, acc_now):
            if self.on_rows is not None:
                self.on_rows(chunk.batch.num_rows)
            done = ends.get(chunk.offset + chunk.batch.num_rows)
            if done is None or done >= groups:
                return
            since[0] += 1
            stopping = self.stop is not None and self.stop.is_set()
            if stopping or (every and since[0] >= every):
                # The snapshot is taken here; the write and its fsyncs run beside the next
                # row groups.
                self.checkpoints.write(
                    partial,
                    state_doc(
                        PARTIAL_FORMAT, facts, acc_now, batch_size=batch_size, next_row_group=done
                    ),
                )
                since[0] = 0
                if stopping:
                    self.checkpoints.wait()
                self.log.info(
                    "checkpoint",
                    f"{url}: checkpoint after row group {done} of {groups}.",
                    file=url,
                    row_group=done,
                )
                if stopping:
                    raise Stopped(url)

        self.log.info(
            "reading",
            f"{url}: reading {info.num_rows - acc.rows_read:,} rows"
            + (f" from row group {start}" if start else "")
            + ".",
            file=url,
            row_group=start,
        )
        scan = src.from_row_group(url, start) if start else src
        if self.folds is not None:
            accumulate_folds(
                scan,
                spec,
                self.kind,
                self.folds,
                batch_size=batch_size,
                into=acc,
                after_batch=after_batch,
            )
        else:
            accumulate(
                scan, spec, self.kind, batch_size=batch_size, into=acc, after_batch=after_batch
            )
        # The last checkpoint lands before the final state (then it is removed).
        self.checkpoints.wait()
        entry, acc = self._finish(facts, name, acc, spec, batch_size)
        return entry, acc, how

    def _finish(self, facts: dict, name: str, acc: Accumulation, spec, batch_size: int):
        """Write the file's final state, drop its checkpoint: (manifest entry, accumulation)."""
        url = facts["url"]
        acc.spec = spec
        self.store.write(
            f"states/{name}.json", state_doc(FILE_STATE_FORMAT, facts, acc, batch_size=batch_size)
        )
        self.store.delete(f"partial/{name}.json")
        dropped = sum(acc.dropped.values())
        self.log.info(
            "ingested",
            f"{url}: {acc.rows_read:,} rows" + (f" ({dropped:,} dropped)" if dropped else "") + ".",
            file=url,
            rows=acc.rows_read,
            rows_dropped=dropped,
        )
        return self._entry(facts, name, acc), acc

    def _adopt(self, name: str, facts: dict, fmt: str, batch_size: int | None = None):
        """(accumulation, next row group) left by an earlier run for exactly this file (and
        batch size), or (None, 0) when there is none or it does not fit."""
        raw = self.store.read(name)
        if raw is None:
            return None, 0
        where = self.store.url(name)
        try:
            data = json.loads(raw)
            acc = accumulation_from_doc(data, where, fmt, self.kind, self.job.solver, self.folds)
        except (ValueError, RecursionError, ModelFormatError) as exc:
            self.log.warning(
                "discarded",
                f"{where} is unusable ({exc}); {facts['url']} is read from the start.",
                file=facts["url"],
            )
            return None, 0
        same = all(
            data["file"].get(k) == facts[k] for k in ("url", "size", "footer_sha256", "rows")
        )
        start = 0
        if fmt == PARTIAL_FORMAT:
            start = data.get("next_row_group")
            same = (
                same
                and data.get("batch_size") == batch_size
                and isinstance(start, int)
                and 0 < start < facts["row_groups"]
            )
        if not same:
            self.log.info(
                "discarded",
                f"{where} was made for another version of {facts['url']} "
                "(or another batch size); the file is read from the start.",
                file=facts["url"],
            )
            return None, 0
        return acc, start

    def _entry(self, facts: dict, name: str, acc: Accumulation) -> dict:
        return file_entry(
            facts,
            name,
            acc,
            time=entry_time(facts, self.job.window_key),
            ingested_at=utc_now().isoformat(timespec="seconds"),
        )
