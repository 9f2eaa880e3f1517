"""What a job run would do, decided from the listing, the manifest and the clock (no data read).

Each listed file is *new* (not in the manifest), *changed* (listed with another
size than the manifest records, or another version — ETag, else modification time —
*and* another footer checksum: a file only touched, or copied back unchanged, keeps
its content identity, the same one that recognizes a moved file), *unchanged*, or
*outside the window* (older than ``job.window``, and never
ingested). Each manifest entry older than the window has *expired*; one no
longer listed has *vanished* (its rows stay in the model). A file is dated by
its modification time, or by its ``job.window_key`` Hive partition value.

>>> parse_time("2026-01-31", "s3://b/date=2026-01-31/part.parquet")
datetime.datetime(2026, 1, 31, 0, 0, tzinfo=datetime.timezone.utc)
>>> what_changed(ListedFile("part.parquet", 2048, "2026-02-01T10:00:00", None, {}),
...              {"size": 1024, "modified": "2026-01-31T10:00:00"})
'size 1,024 → 2,048 bytes'
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass, field

from ..errors import InputError
from ..io.footers import footer_digest
from ..io.listing import ListedFile, is_url, list_files
from ..io.sources import Source
from .manifest import files_digest
from .spec import JobSpec
from .store import output_exists


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


def plan_run(job: JobSpec, manifest: dict, now: dt.datetime) -> Plan:
    """Compare ``job``'s listing at ``now`` with ``manifest``; republish when the published model
    is not the one of the kept entries, or an output is missing."""
    listed = list_files(list(job.inputs), storage_options=job.storage, allow_empty=True)
    files = {e["url"]: e for e in manifest["files"]}
    cutoff = None if job.window is None else now - dt.timedelta(seconds=job.window)
    plan = Plan()
    seen = set()
    for f in listed:
        f = canonical(f)
        seen.add(f.path)
        entry = files.get(f.path)
        if cutoff is not None and time_of(f, job.window_key) < cutoff:
            if entry is None:
                plan.outside_window.append(f)
            continue
        if entry is None:
            plan.new.append(f)
        elif entry["size"] != f.size or (
            recorded_version(entry) != f.version and not same_footer(f, entry, job.storage)
        ):
            plan.changed.append((f, entry))
        else:
            plan.unchanged += 1
    for url, entry in files.items():
        if cutoff is not None and parse_time(entry.get("time"), url) < cutoff:
            plan.expired.append(entry)
        elif url not in seen:
            plan.vanished.append(entry)
    plan.new.sort(key=lambda f: f.path)
    published = manifest.get("published") or {}
    kept = [e for e in manifest["files"] if e not in plan.expired]
    if kept and (published.get("digest") != files_digest(kept) or not outputs_exist(job)):
        plan.republish = True
    return plan


def same_footer(listed: ListedFile, entry: dict, storage_options: dict | None) -> bool:
    """Whether a file listed with a new version still has the footer it was ingested with (a
    ``touch``, a copy that kept the bytes): only its footer is read. A file that cannot be
    read counts as changed, and the run reports why."""
    try:
        src = Source.from_listing([listed], storage_options=storage_options)
        return footer_digest(src.files[0]) == entry.get("footer_sha256")
    except InputError:
        return False


def outputs_exist(job: JobSpec) -> bool:
    """Whether the job's published model (and summary, if any) are where the job says."""
    return all(output_exists(p, job.storage) for p in (job.model, job.summary) if p)


def find_moves(opened, plan: Plan) -> dict[str, dict]:
    """New files that are ingested files under a new path (same size and footer checksum).

    ``opened`` holds a (source, footer digest) pair per file to ingest; the result maps
    each moved file's new path to the manifest entry of its old one."""
    gone = {(e["size"], e["footer_sha256"]): e for e in plan.vanished}
    moved = {}
    for src, digest in opened:
        info = src.files[0]
        entry = gone.pop((info.size_bytes, digest), None)
        if entry is not None and info.path not in {f.path for f, _ in plan.changed}:
            moved[info.path] = entry
    return moved


def canonical(listed: ListedFile) -> ListedFile:
    """Local files are known by their absolute path, whatever the working directory."""
    if is_url(listed.path):
        return listed
    return ListedFile(
        os.path.abspath(listed.path), listed.size, listed.modified, listed.etag, listed.partition
    )


def recorded_version(entry: dict) -> str:
    """The version of a file as its manifest entry records it: its ETag, else its mtime."""
    return entry["etag"] if entry.get("etag") else str(entry.get("modified"))


def what_changed(listed: ListedFile, entry: dict) -> str:
    """How the listed file differs from its manifest entry, in a few words."""
    if listed.size != entry["size"]:
        return f"size {entry['size']:,} → {listed.size:,} bytes"
    if entry.get("etag"):
        return f"ETag {entry['etag']} → {listed.etag}"
    return f"modified {entry.get('modified')} → {listed.modified}"


# ---------------------------------------------------------------------- time
def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def parse_time(value, where: str, what: str = "its modification time") -> dt.datetime:
    """``value`` (ISO 8601) as an aware datetime; without a zone it is taken as UTC."""
    try:
        moment = dt.datetime.fromisoformat(str(value))
    except (TypeError, ValueError):
        raise InputError(f"{where}: {what} {value!r} is not a date or time (ISO 8601).") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)


def time_of(listed: ListedFile, window_key: str | None) -> dt.datetime:
    """The time a file is dated by: its ``window_key`` partition value, else its mtime."""
    if window_key is None:
        return parse_time(listed.modified, listed.path)
    if window_key not in listed.partition:
        raise InputError(
            f"{listed.path} has no '{window_key}=' folder in its path, which run.window_key needs."
        )
    return parse_time(
        listed.partition[window_key], listed.path, what=f"its '{window_key}' partition value"
    )


def entry_time(facts: dict, window_key: str | None) -> str:
    """The time recorded in a file's manifest entry (the one the window compares)."""
    listed = ListedFile(
        facts["url"], facts["size"], facts["modified"], facts["etag"], facts.get("partition") or {}
    )
    if window_key is None or window_key not in listed.partition:
        return parse_time(listed.modified, listed.path).isoformat()
    return time_of(listed, window_key).isoformat()
