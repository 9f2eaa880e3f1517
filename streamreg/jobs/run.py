"""Batch jobs: fold only new files into saved states, refit, publish — exactly once.

A job (:mod:`streamreg.jobs.spec`) keeps its **state store** in a folder or an
object-store prefix::

    manifest.json        format, job identity, one entry per ingested file, run records
    states/<hash>.json   the state of one ingested file (its sufficient statistics)
    partial/<hash>.json  the file being ingested: its state so far and the next row group
    lock                 pid, host and start time of the run in progress

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

:func:`run_job` is one run; :func:`watch_job` is the same run in a loop.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import sys
import time
from dataclasses import dataclass, field

from .._version import __version__
from ..design import DesignSpec, resolve_spec
from ..engine.local import blas_beside_decoding
from ..engine.scan import Accumulation, accumulate, resolve_batch_size
from ..errors import InputError, LockError, ModelFormatError, SchemaError, StreamregError
from ..io.sources import ListedFile, Source, footer_digest, is_url, list_files
from ..model.linear_model import LinearModel
from ..solvers import solve, state_class, state_from_dict
from .spec import JobSpec
from .store import Store, delete_output, output_exists, write_output, write_output_file

MANIFEST = "manifest.json"
MANIFEST_FORMAT = "streamreg.job_manifest"
FILE_STATE_FORMAT = "streamreg.job_file_state"
PARTIAL_FORMAT = "streamreg.job_partial_state"
FORMAT_VERSION = 1
RUNS_KEPT = 1000  # run records kept in the manifest (the oldest are dropped)


# ---------------------------------------------------------------------- logging
class JobLog:
    """Operational log lines on stderr: ``text`` for people, ``json`` (JSON lines) for machines."""

    def __init__(self, fmt: str = "text", quiet: bool = False, stream=None):
        if fmt not in ("text", "json"):
            raise InputError(f"--log-format must be text or json; got {fmt!r}.")
        self.fmt, self.quiet = fmt, quiet
        self.stream = stream
        self.records: list[dict] = []

    def _emit(self, level: str, event: str, message: str, fields: dict) -> None:
        record = {"time": _now().isoformat(timespec="milliseconds"), "level": level, "event": event,
                  "message": message, **fields}
        self.records.append(record)
        if self.quiet and level == "info":
            return
        stream = self.stream or sys.stderr
        if self.fmt == "json":
            stream.write(json.dumps(record, default=str) + "\n")
        else:
            prefix = "" if level == "info" else f"{level}: "
            stream.write(f"streamreg run: {prefix}{message}\n")
        stream.flush()

    def info(self, event: str, message: str, **fields) -> None:
        self._emit("info", event, message, fields)

    def warning(self, event: str, message: str, **fields) -> None:
        self._emit("warning", event, message, fields)

    def error(self, event: str, message: str, **fields) -> None:
        self._emit("error", event, message, fields)


class _Silent(JobLog):
    def __init__(self):
        super().__init__()

    def _emit(self, level, event, message, fields):
        self.records.append({"level": level, "event": event, "message": message, **fields})


# ---------------------------------------------------------------------- results
@dataclass
class Plan:
    """What a run would do, decided from the listing and the manifest (no data read)."""

    new: list[ListedFile] = field(default_factory=list)
    changed: list[tuple[ListedFile, dict]] = field(default_factory=list)
    expired: list[dict] = field(default_factory=list)
    outside_window: list[ListedFile] = field(default_factory=list)
    vanished: list[dict] = field(default_factory=list)
    unchanged: int = 0
    republish: bool = False

    @property
    def nothing_new(self) -> bool:
        return not (self.new or self.changed or self.expired or self.republish)


@dataclass
class RunResult:
    status: str                       # "published", "nothing new", "dry run", "stopped", "no data"
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

    def to_dict(self) -> dict:
        return {
            "status": self.status, "files_ingested": self.files_ingested, "rows": self.rows,
            "rows_dropped": self.rows_dropped, "model_version": self.model_version,
            "model": self.model_path, "seconds": round(self.seconds, 3), "files_total": self.files_total,
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


class _Stopped(Exception):
    """Raised inside a pass when a stop was requested and the file was checkpointed."""


class _Writer:
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
            from concurrent.futures import ThreadPoolExecutor

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


# ---------------------------------------------------------------------- the run
def run_job(job: JobSpec, *, dry_run: bool = False, log: JobLog | None = None, stop=None,
            now: dt.datetime | None = None) -> RunResult:
    """One run of ``job``: ingest the files not seen yet, refit, publish.

    ``stop`` (a ``threading.Event``) asks the run to checkpoint the file in
    hand at its next row-group boundary and return with status ``stopped``.
    ``dry_run`` reads the manifest and the listing and writes nothing.
    """
    return _Run(job, log or _Silent(), stop, now).run(dry_run)


def watch_job(job: JobSpec, *, log: JobLog | None = None, stop, max_cycles: int | None = None) -> None:
    """Run ``job`` every ``job.interval`` seconds until ``stop`` is set (the same run, in a loop).

    A failed cycle is logged and retried at the next interval; a stop request
    during a cycle checkpoints the file in hand before returning."""
    log = log or _Silent()
    log.info("watch", f"watching {', '.join(job.inputs)} every {job.interval:g} s.",
             interval=job.interval)
    cycles = 0
    while not stop.is_set():
        log.info("cycle", "looking for new files.", cycle=cycles + 1)
        try:
            run_job(job, log=log, stop=stop)
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
    def __init__(self, job: JobSpec, log: JobLog, stop, now):
        self.job, self.log, self.stop = job, log, stop
        self.now = now or _now()
        self.started = time.monotonic()
        self.store = Store(job.state, job.storage)
        self.kind = state_class(job.solver)
        self.checkpoints = _Writer(self.store)

    # -------------------------------------------------------------- outline
    def run(self, dry_run: bool) -> RunResult:
        if dry_run:
            manifest = self._read_manifest()
            plan = self._plan(manifest)
            result = RunResult("dry run", plan, files_total=len(manifest["files"]),
                               rows_total=manifest.get("rows", 0))
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
            try:
                self.checkpoints.close()
            finally:
                lock.release()

    def _run_locked(self) -> RunResult:
        job, log = self.job, self.log
        manifest = self._read_manifest()
        plan = self._plan(manifest)
        files = {e["url"]: e for e in manifest["files"]}
        if plan.changed and job.on_change == "error":
            listed, entry = plan.changed[0]
            more = f" (and {len(plan.changed) - 1} more)" if len(plan.changed) > 1 else ""
            raise InputError(f"{listed.path} changed since it was ingested ({_what_changed(listed, entry)}){more}; "
                             "run with --on-change replace to re-ingest it, or restore the file.")
        if plan.nothing_new:
            log.info("nothing_new", f"nothing new: {len(files)} files ingested, none changed"
                     + (f", {len(plan.outside_window)} outside the window" if plan.outside_window else "")
                     + ".", files=len(files))
            return RunResult("nothing new", plan, files_total=len(files), rows_total=manifest.get("rows", 0),
                             seconds=time.monotonic() - self.started)
        for entry in plan.vanished:
            log.info("not_listed", f"{entry['url']} is no longer listed; its rows stay in the model.",
                     file=entry["url"])
        # Refuse a corrupt or foreign state before anything is written.
        for entry in files.values():
            if entry not in plan.expired and entry["url"] not in {f.path for f, _ in plan.changed}:
                self._read_file_state(entry)
        todo = sorted(plan.new + [f for f, _ in plan.changed], key=lambda f: f.path)
        opened = [self._open(listed) for listed in todo]  # footers first: a bad file stops the run here
        specs = [self._check_design(manifest, src) for src, _ in opened]
        moved = self._moves(opened, plan)

        for entry in plan.expired:
            files.pop(entry["url"], None)
            log.info("expired", f"{entry['url']} left the window ({job.window_text}); its rows are subtracted.",
                     file=entry["url"])
        ingested, fresh, resumed = [], {}, []
        stopped = False
        batch_size = self._batch_size(specs)
        with blas_beside_decoding():  # BLAS threads leave a core to Arrow's decoding
            for (src, digest), spec in zip(opened, specs):
                listed = next(f for f in todo if f.path == src.files[0].path)
                old = moved.get(listed.path)
                if old is not None:
                    files.pop(old["url"], None)
                    files[listed.path] = {**old, **_listing_fields(listed), "url": listed.path}
                    log.info("moved", f"{listed.path} holds the data ingested from {old['url']}; recorded as moved.",
                             file=listed.path, was=old["url"])
                    continue
                if self.stop is not None and self.stop.is_set():
                    stopped = True
                    break
                try:
                    entry, acc, how = self._ingest(src, digest, spec, listed, batch_size)
                except _Stopped:
                    stopped = True
                    break
                if how.startswith("resumed"):
                    resumed.append(f"{listed.path} ({how})")
                if listed.path in files:
                    log.info("replaced", f"{listed.path} changed; its old rows are subtracted and the file re-ingested.",
                             file=listed.path)
                files[listed.path] = entry
                fresh[listed.path] = acc
                ingested.append(listed.path)
        manifest["files"] = [files[k] for k in sorted(files)]
        rows = sum(fresh[p].rows_read for p in ingested)
        dropped = sum(sum(fresh[p].dropped.values()) for p in ingested)
        record = {"started": self.now.isoformat(timespec="seconds"), "files_ingested": len(ingested),
                  "files_replaced": len([f for f, _ in plan.changed if f.path in ingested]),
                  "files_expired": len(plan.expired), "files_moved": len(moved), "rows": rows,
                  "rows_dropped": dropped, "resumed": resumed}
        if stopped:
            self._commit(manifest, record, status="stopped")
            log.info("stopped", f"stopped on request after {len(ingested)} files; the file in hand is "
                     "checkpointed and the next run continues it.", files_ingested=len(ingested))
            return RunResult("stopped", plan, ingested, rows, dropped, files_total=len(files),
                             rows_total=manifest["rows"], seconds=time.monotonic() - self.started)
        if not files:
            self._commit(manifest, record, status="no data")
            log.info("no_data", "no files are left in the model; nothing was published.")
            return RunResult("no data", plan, ingested, rows, dropped, seconds=time.monotonic() - self.started)
        total = self._total(manifest, fresh)
        version = self._publish(manifest, total, [f for f in todo if f.path in fresh])
        record["model_version"] = version
        self._commit(manifest, record, status="published")
        self._collect_garbage(manifest)
        seconds = time.monotonic() - self.started
        log.info("published", f"ingested {len(ingested)} files ({rows:,} rows, {dropped:,} dropped); "
                 f"the model over {len(files)} files ({manifest['rows']:,} rows) is version {version} "
                 f"at {job.model}.", files_ingested=len(ingested), rows=rows, rows_dropped=dropped,
                 model_version=version, files_total=len(files), rows_total=manifest["rows"],
                 seconds=round(seconds, 3))
        return RunResult("published", plan, ingested, rows, dropped, version, job.model, seconds,
                         len(files), manifest["rows"])

    # -------------------------------------------------------------- planning
    def _plan(self, manifest: dict) -> Plan:
        job = self.job
        listed = list_files(list(job.inputs), storage_options=job.storage, allow_empty=True)
        files = {e["url"]: e for e in manifest["files"]}
        cutoff = None if job.window is None else self.now - dt.timedelta(seconds=job.window)
        plan = Plan()
        seen = set()
        for f in listed:
            f = _canonical(f)
            seen.add(f.path)
            entry = files.get(f.path)
            if cutoff is not None and self._time_of(f) < cutoff:
                if entry is None:
                    plan.outside_window.append(f)
                continue
            if entry is None:
                plan.new.append(f)
            elif entry["size"] != f.size or _version(entry) != f.version:
                plan.changed.append((f, entry))
            else:
                plan.unchanged += 1
        for url, entry in files.items():
            if cutoff is not None and _parse_time(entry.get("time"), url) < cutoff:
                plan.expired.append(entry)
            elif url not in seen:
                plan.vanished.append(entry)
        plan.new.sort(key=lambda f: f.path)
        published = manifest.get("published") or {}
        kept = [e for e in manifest["files"] if e not in plan.expired]
        if kept and (published.get("digest") != _digest(kept) or not self._outputs_exist()):
            plan.republish = True
        return plan

    def _outputs_exist(self) -> bool:
        return all(output_exists(p, self.job.storage) for p in (self.job.model, self.job.summary) if p)

    def _time_of(self, listed: ListedFile) -> dt.datetime:
        key = self.job.window_key
        if key is None:
            return _parse_time(listed.modified, listed.path)
        if key not in listed.partition:
            raise InputError(f"{listed.path} has no '{key}=' folder in its path, which run.window_key needs.")
        return _parse_time(listed.partition[key], listed.path, what=f"its '{key}' partition value")

    # -------------------------------------------------------------- reading
    def _read_manifest(self) -> dict:
        url = self.store.url(MANIFEST)
        raw = self.store.read(MANIFEST)
        if raw is None:
            return {"format": MANIFEST_FORMAT, "format_version": FORMAT_VERSION, "design": None,
                    "identity": None, "files": [], "rows": 0, "published": None, "runs": []}
        try:
            data = json.loads(raw)
        except ValueError as exc:
            raise ModelFormatError(f"{url} is not a readable job manifest ({exc}); it was left as it is: "
                                   "restore it, or point the job at a new state location.") from exc
        _validate_manifest(data, url)
        self._check_spec(data, url)
        return data

    def _check_spec(self, manifest: dict, url: str) -> None:
        """The job must ask for the model the state was built for (checked without reading data)."""
        design = manifest["design"]
        if design is None:
            return
        job = self.job
        wanted = {"target": job.target, "weight": job.weight, "nulls": job.nulls, "solver": job.solver}
        for key, value in wanted.items():
            if design[key] != value:
                raise ModelFormatError(
                    f"the state at {self.store.root} was built for {key} {design[key]!r}, but the job asks "
                    f"for {value!r}; use another state location (or delete this one to start over).")
        if job.features is not None:
            features = [f for f in job.features if f not in job.exclude]
            if features != design["features"]:
                raise ModelFormatError(
                    f"the state at {self.store.root} was built for features {design['features']}, but the "
                    f"job asks for {features}; use another state location (or delete this one to start over).")
        dropped = [f for f in job.exclude if f in design["features"]]
        if dropped:
            raise ModelFormatError(
                f"the state at {self.store.root} has feature '{dropped[0]}', which the job now excludes; "
                "use another state location (or delete this one to start over).")

    def _open(self, listed: ListedFile) -> tuple[Source, str]:
        src = Source.from_listing([listed], storage_options=self.job.storage)
        return src, footer_digest(src.files[0])

    def _check_design(self, manifest: dict, src: Source):
        job = self.job
        spec = resolve_spec(src, target=job.target, features=list(job.features) if job.features else None,
                            exclude=list(job.exclude), weight=job.weight, fit_intercept=job.fit_intercept,
                            nulls=job.nulls)
        design = {"target": spec.target, "features": list(spec.features), "weight": spec.weight,
                  "nulls": spec.nulls, "solver": job.solver}
        if manifest["design"] is None:
            manifest["design"] = design
            manifest["identity"] = _identity(design)
        elif manifest["design"]["features"] != design["features"]:
            have, got = manifest["design"]["features"], design["features"]
            extra = [c for c in got if c not in have]
            hint = (f"it has the extra column '{extra[0]}': list the features in the job spec or exclude it"
                    if extra else "list the features in the job spec")
            raise SchemaError(f"{src.files[0].path} gives the features {got}, but the job's state has {have}; {hint}.")
        return spec

    def _moves(self, opened, plan: Plan) -> dict[str, dict]:
        """New files that are ingested files under a new path (same size and footer checksum)."""
        gone = {(e["size"], e["footer_sha256"]): e for e in plan.vanished}
        moved = {}
        for src, digest in opened:
            info = src.files[0]
            entry = gone.pop((info.size_bytes, digest), None)
            if entry is not None and info.path not in {f.path for f, _ in plan.changed}:
                moved[info.path] = entry
        return moved

    def _batch_size(self, specs) -> int:
        if self.job.batch_size is not None:
            return self.job.batch_size
        return resolve_batch_size(len(specs[0].columns)) if specs else 1

    # -------------------------------------------------------------- per-file states
    def _read_file_state(self, entry: dict) -> Accumulation:
        """The state of an ingested file; a missing, corrupt or foreign one is refused."""
        name = f"states/{entry['state']}"
        raw = self.store.read(name)
        where = self.store.url(name)
        if raw is None:
            raise ModelFormatError(f"{where}, the state of {entry['url']}, is missing; the job's state is "
                                   "incomplete: restore it, or start over in a new state location.")
        try:
            data = json.loads(raw)
        except ValueError as exc:
            raise ModelFormatError(f"{where} is not a readable state file ({exc}); it was left as it is: "
                                   "restore it, or start over in a new state location.") from exc
        acc = self._accumulation(data, where, FILE_STATE_FORMAT)
        if data["file"]["footer_sha256"] != entry["footer_sha256"] or acc.rows_read != entry["rows_read"]:
            raise ModelFormatError(f"{where} does not belong to {entry['url']} as the manifest records it; "
                                   "restore the state, or start over in a new state location.")
        return acc

    def _accumulation(self, data, where: str, fmt: str) -> Accumulation:
        if not isinstance(data, dict) or data.get("format") != fmt:
            raise ModelFormatError(f"{where} is not a streamreg job state file.")
        if data.get("format_version") != FORMAT_VERSION:
            raise ModelFormatError(f"{where} has format version {data.get('format_version')!r}; this "
                                   f"streamreg ({__version__}) reads version {FORMAT_VERSION}.")
        try:
            state = state_from_dict(data["state"], where=where)
            rows_read, dropped = data["rows_read"], data["rows_dropped_by_column"]
            lws = data["log_weight_sum"]
            file_facts = data["file"]
        except KeyError as exc:
            raise ModelFormatError(f"{where}: the field {exc.args[0]!r} is missing.") from exc
        if not isinstance(state, self.kind):
            raise ModelFormatError(f"{where} holds a {type(state).__name__}, not the state of solver {self.job.solver}.")
        if not isinstance(rows_read, int) or not isinstance(dropped, dict) or not isinstance(file_facts, dict) \
                or not (lws is None or isinstance(lws, (int, float))):
            raise ModelFormatError(f"{where}: 'rows_read', 'rows_dropped_by_column', 'log_weight_sum' or 'file' "
                                   "has the wrong type.")
        return Accumulation(state, None, rows_read=rows_read, dropped=dict(dropped),
                            rows_by_file={file_facts.get("url", "?"): rows_read},
                            log_weight_sum=float("-inf") if lws is None else float(lws))

    def _state_doc(self, fmt: str, facts: dict, acc: Accumulation, **extra) -> bytes:
        doc = {"format": fmt, "format_version": FORMAT_VERSION, "streamreg_version": __version__,
               "file": facts, **extra, "rows_read": acc.rows_read, "rows_dropped_by_column": acc.dropped,
               "log_weight_sum": acc.log_weight_sum if acc.log_weight_sum > float("-inf") else None,
               "state": acc.state.to_dict()}
        return (json.dumps(doc, allow_nan=False) + "\n").encode()

    def _ingest(self, src: Source, digest: str, spec, listed: ListedFile, batch_size: int):
        info = src.files[0]
        url = info.path
        facts = {"url": url, **_listing_fields(listed), "rows": info.num_rows, "footer_sha256": digest,
                 "row_groups": len(info.row_group_starts)}
        name = hashlib.sha256(json.dumps([url, listed.size, listed.version, digest]).encode()).hexdigest()[:32]
        final, partial = f"states/{name}.json", f"partial/{name}.json"
        acc, _ = self._adopt(final, facts, FILE_STATE_FORMAT)
        if acc is not None:
            self.log.info("adopted", f"{url}: its state was complete from an interrupted run; adopted.", file=url)
            return self._entry(facts, name, acc), acc, "adopted"
        acc, start = self._adopt(partial, facts, PARTIAL_FORMAT, batch_size=batch_size)
        if acc is not None:
            self.log.info("resumed", f"{url}: resuming at row group {start} of {facts['row_groups']} "
                          f"({acc.rows_read:,} rows already folded).", file=url, row_group=start)
            how = f"resumed at row group {start}"
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
            done = ends.get(chunk.offset + chunk.batch.num_rows)
            if done is None or done >= groups:
                return
            since[0] += 1
            stopping = self.stop is not None and self.stop.is_set()
            if stopping or (every and since[0] >= every):
                # The snapshot is taken here; the write and its fsyncs run beside the next row groups.
                self.checkpoints.write(partial, self._state_doc(PARTIAL_FORMAT, facts, acc_now,
                                                                batch_size=batch_size, next_row_group=done))
                since[0] = 0
                if stopping:
                    self.checkpoints.wait()
                self.log.info("checkpoint", f"{url}: checkpoint after row group {done} of {groups}.",
                              file=url, row_group=done)
                if stopping:
                    raise _Stopped(url)

        self.log.info("reading", f"{url}: reading {info.num_rows - acc.rows_read:,} rows"
                      + (f" from row group {start}" if start else "") + ".", file=url, row_group=start)
        scan = src.from_row_group(url, start) if start else src
        accumulate(scan, spec, self.kind, batch_size=batch_size, into=acc, after_batch=after_batch)
        self.checkpoints.wait()  # the last checkpoint lands before the final state (then it is removed)
        self.store.write(final, self._state_doc(FILE_STATE_FORMAT, facts, acc, batch_size=batch_size))
        self.store.delete(partial)
        dropped = sum(acc.dropped.values())
        self.log.info("ingested", f"{url}: {acc.rows_read:,} rows" + (f" ({dropped:,} dropped)" if dropped else "")
                      + ".", file=url, rows=acc.rows_read, rows_dropped=dropped)
        return self._entry(facts, name, acc), acc, how

    def _adopt(self, name: str, facts: dict, fmt: str, batch_size: int | None = None):
        """(accumulation, next row group) left by an earlier run for exactly this file (and
        batch size), or (None, 0) when there is none or it does not fit."""
        raw = self.store.read(name)
        if raw is None:
            return None, 0
        where = self.store.url(name)
        try:
            data = json.loads(raw)
            acc = self._accumulation(data, where, fmt)
        except (ValueError, ModelFormatError) as exc:
            self.log.warning("discarded", f"{where} is unusable ({exc}); {facts['url']} is read from the start.",
                             file=facts["url"])
            return None, 0
        same = all(data["file"].get(k) == facts[k] for k in ("url", "size", "footer_sha256", "rows"))
        start = 0
        if fmt == PARTIAL_FORMAT:
            start = data.get("next_row_group")
            same = same and data.get("batch_size") == batch_size and isinstance(start, int) \
                and 0 < start < facts["row_groups"]
        if not same:
            self.log.info("discarded", f"{where} was made for another version of {facts['url']} "
                          "(or another batch size); the file is read from the start.", file=facts["url"])
            return None, 0
        return acc, start

    def _entry(self, facts: dict, name: str, acc: Accumulation) -> dict:
        return {**facts, "rows_read": acc.rows_read, "rows_dropped": sum(acc.dropped.values()),
                "time": self._entry_time(facts), "state": f"{name}.json",
                "ingested_at": _now().isoformat(timespec="seconds")}

    def _entry_time(self, facts: dict) -> str:
        listed = ListedFile(facts["url"], facts["size"], facts["modified"], facts["etag"],
                            facts.get("partition") or {})
        if self.job.window_key is None or self.job.window_key not in listed.partition:
            return _parse_time(listed.modified, listed.path).isoformat()
        return self._time_of(listed).isoformat()

    # -------------------------------------------------------------- the model
    def _total(self, manifest: dict, fresh: dict) -> Accumulation:
        """The merge of the listed per-file states, in sorted path order."""
        spec = self._spec(manifest)
        names = spec.state_names
        total = Accumulation(self.kind.empty(names), spec)
        for entry in manifest["files"]:
            acc = fresh.get(entry["url"]) or self._read_file_state(entry)
            if tuple(acc.state.names) != names:
                raise ModelFormatError(f"{self.store.url('states/' + entry['state'])} is over the columns "
                                       f"{list(acc.state.names)}, not {list(names)}.")
            # The manifest's URL names the rows (a moved file's state still names its old path).
            total += Accumulation(acc.state, spec, acc.rows_read, acc.dropped, {entry["url"]: acc.rows_read},
                                  acc.log_weight_sum)
        manifest["rows"] = total.rows_read
        manifest["rows_used"] = total.state.n_rows
        manifest["rows_dropped"] = sum(total.dropped.values())
        return total

    def _spec(self, manifest: dict) -> DesignSpec:
        """The design every file state of this job is over."""
        design, job = manifest["design"], self.job
        return DesignSpec(target=design["target"], features=tuple(design["features"]), weight=job.weight,
                          fit_intercept=job.fit_intercept, nulls=job.nulls)

    def _publish(self, manifest: dict, total: Accumulation, ingested: list[ListedFile]) -> int:
        job = self.job
        solution = solve(total.state, fit_intercept=job.fit_intercept, drop_collinear=job.drop_collinear)
        model = LinearModel.from_accumulation(total, solution)
        version = int((manifest.get("published") or {}).get("version", 0)) + 1
        text = (json.dumps(model.to_dict(), indent=1, allow_nan=False) + "\n").encode()
        write_output(_versioned(job.model, version), text, job.storage)
        write_output(job.model, text, job.storage)
        if job.keep_versions and version > job.keep_versions:
            delete_output(_versioned(job.model, version - job.keep_versions), job.storage)
        if job.summary:
            write_output(job.summary, (model.summary("text") + "\n").encode(), job.storage)
        if job.predictions and ingested:
            from ..prediction import predict_parquet

            src = Source.from_listing(ingested, storage_options=job.storage)
            rows = write_output_file(job.predictions, lambda local: predict_parquet(
                model, src, local, keep=list(job.keep), batch_size=job.batch_size), job.storage)
            self.log.info("predictions", f"wrote {rows:,} predictions for the new rows to {job.predictions}.",
                          rows=rows)
        manifest["published"] = {"version": version, "digest": _digest(manifest["files"]),
                                 "model": job.model, "at": _now().isoformat(timespec="seconds")}
        for warning in model.warnings_:
            self.log.warning("model_warning", warning)
        return version

    def _commit(self, manifest: dict, record: dict, *, status: str) -> None:
        record = {**record, "status": status, "seconds": round(time.monotonic() - self.started, 3),
                  "finished": _now().isoformat(timespec="seconds")}
        manifest["runs"] = (manifest.get("runs") or [])[-(RUNS_KEPT - 1):] + [record]
        manifest["streamreg_version"] = __version__
        if "rows" not in manifest or status != "published":
            manifest["rows"] = sum(e["rows_read"] for e in manifest["files"])
        self.store.write(MANIFEST, (json.dumps(manifest, indent=1, allow_nan=False) + "\n").encode())

    def _collect_garbage(self, manifest: dict) -> None:
        """Remove states no longer listed, checkpoints of finished files and temporary files."""
        keep = {e["state"] for e in manifest["files"]}
        for name in self.store.list("states"):
            if name not in keep:
                self.store.delete(f"states/{name}")
        for name in self.store.list("partial"):
            self.store.delete(f"partial/{name}")
        if not self.store.remote:
            for name in self.store.list(""):
                if name.startswith(".") and name.endswith(".tmp"):
                    self.store.delete(name)


# ---------------------------------------------------------------------- helpers
def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _canonical(listed: ListedFile) -> ListedFile:
    """Local files are known by their absolute path, whatever the working directory."""
    if is_url(listed.path):
        return listed
    return ListedFile(os.path.abspath(listed.path), listed.size, listed.modified, listed.etag, listed.partition)


def _listing_fields(listed: ListedFile) -> dict:
    return {"size": listed.size, "modified": listed.modified, "etag": listed.etag,
            "partition": dict(listed.partition)}


def _version(entry: dict) -> str:
    return entry["etag"] if entry.get("etag") else str(entry.get("modified"))


def _what_changed(listed: ListedFile, entry: dict) -> str:
    if listed.size != entry["size"]:
        return f"size {entry['size']:,} → {listed.size:,} bytes"
    if entry.get("etag"):
        return f"ETag {entry['etag']} → {listed.etag}"
    return f"modified {entry.get('modified')} → {listed.modified}"


def _parse_time(value, where: str, what: str = "its modification time") -> dt.datetime:
    try:
        moment = dt.datetime.fromisoformat(str(value))
    except (TypeError, ValueError):
        raise InputError(f"{where}: {what} {value!r} is not a date or time (ISO 8601).") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)


def _digest(entries: list[dict]) -> str:
    pairs = sorted((e["url"], e["state"]) for e in entries)
    return hashlib.sha256(json.dumps(pairs).encode()).hexdigest()


def _identity(design: dict) -> str:
    return hashlib.sha256(json.dumps(design, sort_keys=True).encode()).hexdigest()


def _versioned(path: str, version: int) -> str:
    """``out/model.json`` → ``out/model.v000003.json``.

    >>> _versioned("s3://b/out/model.json", 3), _versioned("model", 12)
    ('s3://b/out/model.v000003.json', 'model.v000012')
    """
    if is_url(path):
        head, _, tail = path.rpartition("/")
        sep = "/"
    else:
        head, tail = os.path.split(path)
        sep = os.sep
    stem, dot, ext = tail.rpartition(".")
    name = f"{stem}.v{version:06d}.{ext}" if dot and stem else f"{tail}.v{version:06d}"
    return f"{head}{sep}{name}" if head else name


_MANIFEST_FIELDS = {"design": (dict, type(None)), "identity": (str, type(None)), "files": list,
                    "published": (dict, type(None)), "runs": list}
_ENTRY_FIELDS = {"url": str, "size": int, "footer_sha256": str, "state": str, "rows_read": int}


def _validate_manifest(data, url: str) -> None:
    if not isinstance(data, dict) or data.get("format") != MANIFEST_FORMAT:
        raise ModelFormatError(f"{url} is not a streamreg job manifest; it was left as it is.")
    if data.get("format_version") != FORMAT_VERSION:
        raise ModelFormatError(f"{url} has manifest format version {data.get('format_version')!r}; this "
                               f"streamreg ({__version__}) reads version {FORMAT_VERSION}. It was left as it is.")
    for key, kind in _MANIFEST_FIELDS.items():
        if not isinstance(data.get(key), kind):
            raise ModelFormatError(f"{url}: the field '{key}' is missing or has the wrong type; it was left as it is.")
    design = data["design"]
    if design is not None:
        if not all(k in design for k in ("target", "features", "weight", "nulls", "solver")) \
                or _identity(design) != data["identity"]:
            raise ModelFormatError(f"{url}: the job identity does not match its design; it was left as it is.")
    for entry in data["files"]:
        bad = [k for k, kind in _ENTRY_FIELDS.items() if not isinstance(entry, dict) or not isinstance(entry.get(k), kind)]
        if bad:
            raise ModelFormatError(f"{url}: a file entry lacks a valid '{bad[0]}'; it was left as it is.")
