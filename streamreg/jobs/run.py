"""Batch jobs: fold only new files into saved states, refit, publish — exactly once.

A job (:mod:`streamreg.jobs.spec`) keeps one state per ingested file in its
state store (:mod:`streamreg.jobs.manifest` describes the documents there).
The model is always solved from the merge of the per-file states listed in the
manifest, in sorted path order. Everything follows from that:

* **exactly once** — a file counts when, and only when, the manifest lists it.
  A crash between writing a file's state and the manifest leaves an unlisted
  state that the next run adopts (it is named by the file's URL, size,
  mtime/ETag and footer checksum), never a double count;
* **resumable** — inside a big file the state is checkpointed every N row
  groups. Record batches never span row groups, so a run resumed at a
  row-group boundary folds the same batches in the same order as an
  uninterrupted one: the per-file states, and so the model, are bit-identical;
* **subtraction** — a replaced file (``--on-change replace``) or one that left
  the ``--window`` is removed by leaving its state out of the merge, which is
  exact for every solver;
* **atomic** — every state, manifest and model is written to a temporary file,
  fsynced and renamed (a single PUT on object storage); a failed run leaves the
  manifest and the published model as they were.

A run decides what to do without reading data (:mod:`streamreg.jobs.plan`),
ingests each new file into its own state (:mod:`streamreg.jobs.ingest`), then
merges the listed states, publishes the model, commits the manifest and removes
what is no longer listed. :func:`run_job` is one run; :func:`watch_job` is the
same run in a loop.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field

from .._version import __version__
from ..design.encoded import EncodedSpec
from ..engine.local import blas_beside_decoding
from ..engine.scan import Accumulation, resolve_batch_size
from ..errors import InputError, LockError, ModelFormatError, StreamregError
from ..io.footers import footer_digest
from ..io.listing import ListedFile
from ..io.sources import Source
from ..progress import Progress
from ..solvers import state_class
from .cluster import ClusterReads
from .ingest import Ingester, Stopped
from .levels import encoded_batch_rows, file_designs, job_spec
from .log import JobLog, SilentLog
from .manifest import (
    RUNS_KEPT,
    collect_garbage,
    design_spec,
    listing_fields,
    read_file_state,
    read_manifest,
    write_manifest,
)
from .penalized import empty_state, job_fold_assignment
from .plan import Plan, find_moves, plan_run, utc_now, what_changed
from .publish import publish, withdraw
from .spec import JobSpec
from .store import Store


@dataclass
class RunResult:
    status: str  # "published", "nothing new", "dry run", "stopped", "no data"
    plan: Plan
    files_ingested: list[str] = field(default_factory=list)
    rows: int = 0
    rows_dropped: int = 0
    model_version: int | None = None
    model_path: str | None = None
    seconds: float = 0.0
    files_total: int = 0
    rows_total: int = 0
    new_rows: dict = field(default_factory=dict)  # dry run: rows of each new file (from footers)
    message: str = ""  # status "no data": what is published now, in words

    def to_dict(self) -> dict:
        return {
            "status": self.status,
            "files_ingested": self.files_ingested,
            "rows": self.rows,
            "rows_dropped": self.rows_dropped,
            "model_version": self.model_version,
            "model": self.model_path,
            "seconds": round(self.seconds, 3),
            "files_total": self.files_total,
            "rows_total": self.rows_total,
            "plan": {
                "new": [f.path for f in self.plan.new],
                "changed": [f.path for f, _ in self.plan.changed],
                "expired": [e["url"] for e in self.plan.expired],
                "outside_window": [f.path for f in self.plan.outside_window],
                "no_longer_listed": [e["url"] for e in self.plan.vanished],
                "unchanged": self.plan.unchanged,
            },
        }


# ---------------------------------------------------------------------- the run
def run_job(
    job: JobSpec,
    *,
    dry_run: bool = False,
    log: JobLog | None = None,
    stop=None,
    now: dt.datetime | None = None,
    progress: bool | None = False,
) -> RunResult:
    """One run of ``job``: ingest the files not seen yet, refit, publish.

    ``stop`` (a ``threading.Event``) asks the run to checkpoint the file in
    hand at its next row-group boundary and return with status ``stopped``.
    ``dry_run`` reads the manifest and the listing and writes nothing.
    ``progress``: a progress display of the rows ingested (None: only on a terminal).
    """
    return _Run(job, log or SilentLog(), stop, now, progress).run(dry_run)


def watch_job(
    job: JobSpec,
    *,
    log: JobLog | None = None,
    stop,
    max_cycles: int | None = None,
    progress: bool | None = False,
) -> None:
    """Run ``job`` every ``job.interval`` seconds until ``stop`` is set (the same run, in a loop).

    A failed cycle is logged and retried at the next interval; a stop request
    during a cycle checkpoints the file in hand before returning."""
    log = log or SilentLog()
    log.info(
        "watch",
        f"watching {', '.join(job.inputs)} every {job.interval:g} s.",
        interval=job.interval,
    )
    cycles = 0
    while not stop.is_set():
        log.info("cycle", "looking for new files.", cycle=cycles + 1)
        try:
            run_job(job, log=log, stop=stop, progress=progress)
        except LockError as exc:
            log.warning("locked", str(exc))
        except StreamregError as exc:
            log.error("run_failed", str(exc), exit_code=exc.exit_code)
        cycles += 1
        if max_cycles is not None and cycles >= max_cycles:
            break
        if stop.wait(job.interval):
            break
    log.info("stopped", "stopped on request; the next start continues where this one left off.")


class _Run:
    def __init__(self, job: JobSpec, log: JobLog, stop, now, progress: bool | None = False):
        self.job, self.log, self.stop = job, log, stop
        self.progress, self.bar = progress, Progress(0, enabled=False)
        self.now = now or utc_now()
        self.started = time.monotonic()
        self.store = Store(job.state, job.storage)
        self.kind = state_class(job.solver)
        self.folds = job_fold_assignment(job)  # with [cv]: one state per fold per file
        self.ingester = Ingester(job, self.store, self.kind, log, stop, self.folds)

    # -------------------------------------------------------------- outline
    def run(self, dry_run: bool) -> RunResult:
        if dry_run:
            manifest = read_manifest(self.store, self.job)
            plan = plan_run(self.job, manifest, self.now)
            result = RunResult(
                "dry run",
                plan,
                files_total=len(manifest["files"]),
                rows_total=manifest.get("rows", 0),
            )
            for listed in plan.new + [f for f, _ in plan.changed]:
                result.new_rows[listed.path] = self._open(listed)[0].files[0].num_rows
            return result
        self.store.ensure()
        lock = self.store.lock()
        try:
            if lock.stale is not None:
                self.log.warning("stale_lock", lock.describe_stale() + ".")
            return self._run_locked()
        finally:
            self.bar.close()
            try:
                self.ingester.close()
            finally:
                lock.release()

    def _run_locked(self) -> RunResult:
        job, log = self.job, self.log
        manifest = read_manifest(self.store, job)
        plan = plan_run(job, manifest, self.now)
        files = {e["url"]: e for e in manifest["files"]}
        if plan.changed and job.on_change == "error":
            listed, entry = plan.changed[0]
            more = f" (and {len(plan.changed) - 1} more)" if len(plan.changed) > 1 else ""
            raise InputError(
                f"{listed.path} changed since it was ingested "
                f"({what_changed(listed, entry)}){more}; run with --on-change "
                "replace to re-ingest it, or restore the file."
            )
        if plan.nothing_new:
            outside = len(plan.outside_window)
            log.info(
                "nothing_new",
                f"nothing new: {len(files)} files ingested, none changed"
                + (f", {outside} outside the window" if plan.outside_window else "")
                + ".",
                files=len(files),
            )
            return RunResult(
                "nothing new",
                plan,
                files_total=len(files),
                rows_total=manifest.get("rows", 0),
                seconds=time.monotonic() - self.started,
            )
        for entry in plan.vanished:
            log.info(
                "not_listed",
                f"{entry['url']} is no longer listed; its rows stay in the model.",
                file=entry["url"],
            )
        # Refuse a corrupt or foreign state before anything is written.
        for entry in files.values():
            if entry not in plan.expired and entry["url"] not in {f.path for f, _ in plan.changed}:
                read_file_state(self.store, entry, self.kind, job.solver, self.folds)
        todo = sorted(plan.new + [f for f, _ in plan.changed], key=lambda f: f.path)
        # Footers first: a bad file stops the run here.
        opened = [self._open(listed) for listed in todo]
        specs = file_designs(manifest, job, opened)
        moved = find_moves(opened, plan)

        for entry in plan.expired:
            files.pop(entry["url"], None)
            log.info(
                "expired",
                f"{entry['url']} left the window ({job.window_text}); its rows are subtracted.",
                file=entry["url"],
            )
        ingested, fresh, resumed = [], {}, []
        stopped = False
        batch_size = self._batch_size(specs)
        self.bar = Progress(
            sum(src.total_rows for src, _ in opened), label="ingest", enabled=self.progress
        )
        self.ingester.on_rows = self.bar.advance
        with blas_beside_decoding(), ClusterReads(job.scheduler if opened else None) as cluster:
            reads = cluster.submit_all(opened, specs, moved, batch_size, self.ingester)
            self.ingester.cluster = reads  # with a scheduler, its workers read the files
            for (src, digest), spec in zip(opened, specs):
                listed = next(f for f in todo if f.path == src.files[0].path)
                old = moved.get(listed.path)
                if old is not None:
                    files.pop(old["url"], None)
                    files[listed.path] = {**old, **listing_fields(listed), "url": listed.path}
                    log.info(
                        "moved",
                        f"{listed.path} holds the data ingested from {old['url']}; "
                        "recorded as moved.",
                        file=listed.path,
                        was=old["url"],
                    )
                    continue
                if self.stop is not None and self.stop.is_set():
                    stopped = True
                    break
                try:
                    entry, acc, how = self.ingester.ingest(src, digest, spec, listed, batch_size)
                except Stopped:
                    stopped = True
                    break
                if how.startswith("resumed"):
                    resumed.append(f"{listed.path} ({how})")
                if listed.path in files:
                    log.info(
                        "replaced",
                        f"{listed.path} changed; its old rows are subtracted and "
                        "the file re-ingested.",
                        file=listed.path,
                    )
                files[listed.path] = entry
                fresh[listed.path] = acc
                ingested.append(listed.path)
        self.bar.close()
        manifest["files"] = [files[k] for k in sorted(files)]
        rows = sum(fresh[p].rows_read for p in ingested)
        dropped = sum(sum(fresh[p].dropped.values()) for p in ingested)
        record = {
            "started": self.now.isoformat(timespec="seconds"),
            "files_ingested": len(ingested),
            "files_replaced": len([f for f, _ in plan.changed if f.path in ingested]),
            "files_expired": len(plan.expired),
            "files_moved": len(moved),
            "rows": rows,
            "rows_dropped": dropped,
            "resumed": resumed,
        }
        if stopped:
            self._commit(manifest, record, status="stopped")
            log.info(
                "stopped",
                f"stopped on request after {len(ingested)} files; the file in "
                "hand is checkpointed and the next run continues it.",
                files_ingested=len(ingested),
            )
            return RunResult(
                "stopped",
                plan,
                ingested,
                rows,
                dropped,
                files_total=len(files),
                rows_total=manifest["rows"],
                seconds=time.monotonic() - self.started,
            )
        if not files:
            # Withdraw first, commit second: a crash in between withdraws again next time,
            # never leaves an expired model published with a manifest that says otherwise.
            message, withdrawn = self._withdraw(manifest)
            if withdrawn is not None:
                record["withdrawn_version"] = withdrawn
            self._commit(manifest, record, status="no data")
            log.info("no_data", message[0].lower() + message[1:], model=job.model)
            return RunResult(
                "no data",
                plan,
                ingested,
                rows,
                dropped,
                seconds=time.monotonic() - self.started,
                message=message,
            )
        total = self._total(manifest, fresh)
        version = self._publish(manifest, total, [f for f in todo if f.path in fresh])
        record["model_version"] = version
        self._commit(manifest, record, status="published")
        collect_garbage(self.store, manifest)
        seconds = time.monotonic() - self.started
        log.info(
            "published",
            f"ingested {len(ingested)} files ({rows:,} rows, {dropped:,} "
            f"dropped); the model over {len(files)} files ({manifest['rows']:,} rows) is "
            f"version {version} at {job.model}.",
            files_ingested=len(ingested),
            rows=rows,
            rows_dropped=dropped,
            model_version=version,
            files_total=len(files),
            rows_total=manifest["rows"],
            seconds=round(seconds, 3),
        )
        return RunResult(
            "published",
            plan,
            ingested,
            rows,
            dropped,
            version,
            job.model,
            seconds,
            len(files),
            manifest["rows"],
        )

    def _open(self, listed: ListedFile) -> tuple[Source, str]:
        src = Source.from_listing([listed], storage_options=self.job.storage)
        return src, footer_digest(src.files[0])

    def _batch_size(self, specs) -> int:
        if specs and isinstance(specs[0], EncodedSpec):
            return encoded_batch_rows(
                specs[0], self.kind, self.job.batch_size, folds=self.folds is not None
            )
        if self.job.batch_size is not None:
            return self.job.batch_size
        return resolve_batch_size(len(specs[0].columns)) if specs else 1

    # -------------------------------------------------------------- the model
    def _total(self, manifest: dict, fresh: dict) -> Accumulation:
        """The merge of the listed per-file states, in sorted path order."""
        spec = job_spec(manifest, self.job) or design_spec(manifest, self.job)
        names = spec.state_names
        total = Accumulation(empty_state(self.kind, names, self.folds), spec)
        for entry in manifest["files"]:
            acc = fresh.get(entry["url"]) or read_file_state(
                self.store, entry, self.kind, self.job.solver, self.folds
            )
            if tuple(acc.state.names) != names:
                raise ModelFormatError(
                    f"{self.store.url('states/' + entry['state'])} is over the "
                    f"columns {list(acc.state.names)}, not {list(names)}."
                )
            # The manifest's URL names the rows (a moved file's state still names its old path).
            total += Accumulation(
                acc.state,
                spec,
                acc.rows_read,
                acc.dropped,
                {entry["url"]: acc.rows_read},
                acc.log_weight_sum,
            )
        manifest["rows"] = total.rows_read
        manifest["rows_used"] = total.state.n_rows
        manifest["rows_dropped"] = sum(total.dropped.values())
        return total

    def _publish(self, manifest: dict, total: Accumulation, ingested: list[ListedFile]) -> int:
        return publish(self.job, manifest, total, ingested, self.log)

    def _withdraw(self, manifest: dict) -> tuple[str, int | None]:
        return withdraw(self.job, manifest)

    def _commit(self, manifest: dict, record: dict, *, status: str) -> None:
        record = {
            **record,
            "status": status,
            "seconds": round(time.monotonic() - self.started, 3),
            "finished": utc_now().isoformat(timespec="seconds"),
        }
        manifest["runs"] = (manifest.get("runs") or [])[-(RUNS_KEPT - 1) :] + [record]
        manifest["streamreg_version"] = __version__
        if "rows" not in manifest or status != "published":
            manifest["rows"] = sum(e["rows_read"] for e in manifest["files"])
        write_manifest(self.store, manifest)
