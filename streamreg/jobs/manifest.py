"""The documents of a job's state store: the manifest and the per-file states.

A job keeps its **state store** in a folder or an object-store prefix::

    manifest.json        format, job identity, one entry per ingested file, run records
    states/<hash>.json   the state of one ingested file (its sufficient statistics; with
                         [cv], its fold states beside it)
    partial/<hash>.json  the file being ingested: its state so far and the next row group
    lock                 pid, host and start time of the run in progress

This module reads, validates and writes those documents. A per-file state is
named by :func:`state_name`, a hash of the file's URL, size, version (ETag or
modification time) and footer checksum, so a state left by an interrupted run
can be recognized and adopted. The manifest records the job's design and its
identity (a hash of the design), and, once a model is published, the digest of
the file entries it was solved from (:func:`files_digest`).
"""

from __future__ import annotations

import hashlib
import json
import os

from .._version import __version__
from ..design import DesignSpec, resolve_spec
from ..engine.fold_ids import FoldAssignment
from ..engine.fold_states import FoldStates
from ..engine.scan import Accumulation
from ..errors import ModelFormatError, SchemaError
from ..io.footers import ParquetFileInfo
from ..io.listing import ListedFile, is_url
from ..io.sources import Source
from ..solvers import state_from_dict
from .spec import JobSpec
from .store import Store

MANIFEST = "manifest.json"
MANIFEST_FORMAT = "streamreg.job_manifest"
FILE_STATE_FORMAT = "streamreg.job_file_state"
PARTIAL_FORMAT = "streamreg.job_partial_state"
FORMAT_VERSION = 1
RUNS_KEPT = 1000  # run records kept in the manifest (the oldest are dropped)

_MANIFEST_FIELDS = {
    "design": (dict, type(None)),
    "identity": (str, type(None)),
    "files": list,
    "published": (dict, type(None)),
    "runs": list,
}
_ENTRY_FIELDS = {"url": str, "size": int, "footer_sha256": str, "state": str, "rows_read": int}


# ---------------------------------------------------------------------- the manifest
def read_manifest(store: Store, job: JobSpec) -> dict:
    """The store's manifest (an empty one if there is none yet), validated against ``job``."""
    url = store.url(MANIFEST)
    raw = store.read(MANIFEST)
    if raw is None:
        return {
            "format": MANIFEST_FORMAT,
            "format_version": FORMAT_VERSION,
            "design": None,
            "identity": None,
            "files": [],
            "rows": 0,
            "published": None,
            "runs": [],
        }
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise ModelFormatError(
            f"{url} is not a readable job manifest ({exc}); it was left as it "
            "is: restore it, or point the job at a new state location."
        ) from exc
    validate_manifest(data, url)
    check_spec(data, job, store.root)
    return data


def write_manifest(store: Store, manifest: dict) -> None:
    store.write(MANIFEST, (json.dumps(manifest, indent=1, allow_nan=False) + "\n").encode())


def validate_manifest(data, url: str) -> None:
    """Refuse anything but a manifest of this format version, with its fields and entries."""
    if not isinstance(data, dict) or data.get("format") != MANIFEST_FORMAT:
        raise ModelFormatError(f"{url} is not a streamreg job manifest; it was left as it is.")
    if data.get("format_version") != FORMAT_VERSION:
        raise ModelFormatError(
            f"{url} has manifest format version {data.get('format_version')!r}; "
            f"this streamreg ({__version__}) reads version {FORMAT_VERSION}. "
            "It was left as it is."
        )
    for key, kind in _MANIFEST_FIELDS.items():
        if not isinstance(data.get(key), kind):
            raise ModelFormatError(
                f"{url}: the field '{key}' is missing or has the wrong type; it was left as it is."
            )
    design = data["design"]
    if design is not None:
        if (
            not all(k in design for k in ("target", "features", "weight", "nulls", "solver"))
            or design_identity(design) != data["identity"]
        ):
            raise ModelFormatError(
                f"{url}: the job identity does not match its design; it was left as it is."
            )
    for entry in data["files"]:
        bad = [
            k
            for k, kind in _ENTRY_FIELDS.items()
            if not isinstance(entry, dict) or not isinstance(entry.get(k), kind)
        ]
        if bad:
            raise ModelFormatError(
                f"{url}: a file entry lacks a valid '{bad[0]}'; it was left as it is."
            )


def check_spec(manifest: dict, job: JobSpec, root: str) -> None:
    """The job must ask for the model the state at ``root`` was built for (no data read)."""
    design = manifest["design"]
    if design is None:
        return
    wanted = {"target": job.target, "weight": job.weight, "nulls": job.nulls, "solver": job.solver}
    if design.get("cv") != folds_of(job):
        have = "no folds" if design.get("cv") is None else f"the folds {design['cv']}"
        want = "none" if folds_of(job) is None else f"{folds_of(job)}"
        raise ModelFormatError(
            f"the state at {root} was built with {have}, but the job's [cv] asks for {want}; "
            "use another state location (or delete this one to start over)."
        )
    if "encoding" in design or job.encoded:
        # An encoded job's design is its formula or categories, its levels fixed at the first
        # run (streamreg.jobs.levels); its features are design columns, not column names.
        wanted = {
            "formula": job.formula,
            "weight": job.weight,
            "nulls": job.nulls,
            "solver": job.solver,
            "encoded": job.encoded,
        }
        design = {**design, "encoded": "encoding" in design, "formula": design.get("formula")}
    for key, value in wanted.items():
        if design[key] != value:
            raise ModelFormatError(
                f"the state at {root} was built for {key} {design[key]!r}, but the job asks "
                f"for {value!r}; use another state location (or delete this one to start over)."
            )
    if job.features is not None and not job.encoded:
        features = [f for f in job.features if f not in job.exclude]
        if features != design["features"]:
            raise ModelFormatError(
                f"the state at {root} was built for features {design['features']}, but the "
                f"job asks for {features}; use another state location (or delete this one to "
                "start over)."
            )
    dropped = [f for f in job.exclude if f in design["features"]]
    if dropped:
        raise ModelFormatError(
            f"the state at {root} has feature '{dropped[0]}', which the job now excludes; "
            "use another state location (or delete this one to start over)."
        )


def design_record(spec, job: JobSpec, **more) -> dict:
    """The job's design as its manifest records it (the job's identity is its digest): the
    resolved columns, the solver, ``more`` (an encoded design's formula and levels) and, for a
    job with [cv], its folds."""
    design = {
        "target": spec.target,
        "features": list(spec.features),
        "weight": spec.weight,
        "nulls": spec.nulls,
        "solver": job.solver,
        **more,
    }
    if job.cv is not None:  # only then: a plain job's identity is what it always was
        design["cv"] = folds_of(job)
    return design


def check_design(manifest: dict, job: JobSpec, src: Source) -> DesignSpec:
    """The design of the file ``src`` under ``job``; the first one is recorded in the manifest
    (with its identity), later ones must have the same features."""
    spec = resolve_spec(
        src,
        target=job.target,
        features=list(job.features) if job.features else None,
        exclude=list(job.exclude),
        weight=job.weight,
        fit_intercept=job.fit_intercept,
        nulls=job.nulls,
    )
    design = design_record(spec, job)
    if manifest["design"] is None:
        manifest["design"] = design
        manifest["identity"] = design_identity(design)
    elif manifest["design"]["features"] != design["features"]:
        have, got = manifest["design"]["features"], design["features"]
        extra = [c for c in got if c not in have]
        hint = (
            f"it has the extra column '{extra[0]}': list the features in the job spec or exclude it"
            if extra
            else "list the features in the job spec"
        )
        raise SchemaError(
            f"{src.files[0].path} gives the features {got}, but the job's state has {have}; {hint}."
        )
    return spec


def design_spec(manifest: dict, job: JobSpec) -> DesignSpec:
    """The design every file state of this job is over."""
    design = manifest["design"]
    return DesignSpec(
        target=design["target"],
        features=tuple(design["features"]),
        weight=job.weight,
        fit_intercept=job.fit_intercept,
        nulls=job.nulls,
    )


def folds_of(job: JobSpec) -> dict | None:
    """How a cross-validating job assigns rows to folds (None without [cv])."""
    if job.cv is None:
        return None
    return {k: job.cv[k] for k in ("folds", "fold_key", "fold_column", "seed")}


def design_identity(design: dict) -> str:
    """SHA-256 of the design's canonical JSON: the job's identity."""
    return hashlib.sha256(json.dumps(design, sort_keys=True).encode()).hexdigest()


def files_digest(entries: list[dict]) -> str:
    """SHA-256 of the sorted (URL, state) pairs: which file states a model was solved from."""
    pairs = sorted((e["url"], e["state"]) for e in entries)
    return hashlib.sha256(json.dumps(pairs).encode()).hexdigest()


# ---------------------------------------------------------------------- file entries
def listing_fields(listed: ListedFile) -> dict:
    """What the listing says of a file, as recorded in its manifest entry."""
    return {
        "size": listed.size,
        "modified": listed.modified,
        "etag": listed.etag,
        "partition": dict(listed.partition),
    }


def file_facts(listed: ListedFile, info: ParquetFileInfo, digest: str) -> dict:
    """Everything that identifies one version of a file: its listing and its footer."""
    return {
        "url": info.path,
        **listing_fields(listed),
        "rows": info.num_rows,
        "footer_sha256": digest,
        "row_groups": len(info.row_group_starts),
    }


def state_name(url: str, listed: ListedFile, digest: str) -> str:
    """The name of a file's state: a hash of its URL, size, version and footer checksum."""
    key = json.dumps([url, listed.size, listed.version, digest]).encode()
    return hashlib.sha256(key).hexdigest()[:32]


def file_entry(facts: dict, name: str, acc: Accumulation, *, time: str, ingested_at: str) -> dict:
    """The manifest entry of a file whose state ``states/<name>.json`` holds ``acc``."""
    return {
        **facts,
        "rows_read": acc.rows_read,
        "rows_dropped": sum(acc.dropped.values()),
        "time": time,
        "state": f"{name}.json",
        "ingested_at": ingested_at,
    }


# ---------------------------------------------------------------------- per-file states
def read_file_state(
    store: Store, entry: dict, kind: type, solver: str, folds: FoldAssignment | None = None
) -> Accumulation:
    """The state of an ingested file (its fold states with ``folds``); a missing, corrupt or
    foreign one is refused."""
    name = f"states/{entry['state']}"
    raw = store.read(name)
    where = store.url(name)
    if raw is None:
        raise ModelFormatError(
            f"{where}, the state of {entry['url']}, is missing; the job's state "
            "is incomplete: restore it, or start over in a new state location."
        )
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise ModelFormatError(
            f"{where} is not a readable state file ({exc}); it was left as it "
            "is: restore it, or start over in a new state location."
        ) from exc
    acc = accumulation_from_doc(data, where, FILE_STATE_FORMAT, kind, solver, folds)
    if (
        data["file"]["footer_sha256"] != entry["footer_sha256"]
        or acc.rows_read != entry["rows_read"]
    ):
        raise ModelFormatError(
            f"{where} does not belong to {entry['url']} as the manifest records "
            "it; restore the state, or start over in a new state location."
        )
    return acc


def accumulation_from_doc(
    data, where: str, fmt: str, kind: type, solver: str, folds: FoldAssignment | None = None
) -> Accumulation:
    """The accumulation a state document of format ``fmt`` holds; it must be a ``kind`` state
    (the state of ``solver``). With ``folds`` the accumulation's state is the document's
    fold states (:class:`~streamreg.engine.fold_states.FoldStates` of ``kind``)."""
    if not isinstance(data, dict) or data.get("format") != fmt:
        raise ModelFormatError(f"{where} is not a streamreg job state file.")
    if data.get("format_version") != FORMAT_VERSION:
        raise ModelFormatError(
            f"{where} has format version {data.get('format_version')!r}; this "
            f"streamreg ({__version__}) reads version {FORMAT_VERSION}."
        )
    try:
        state = state_from_dict(data["state"], where=where)
        rows_read, dropped = data["rows_read"], data["rows_dropped_by_column"]
        lws = data["log_weight_sum"]
        facts = data["file"]
    except KeyError as exc:
        raise ModelFormatError(f"{where}: the field {exc.args[0]!r} is missing.") from exc
    if not isinstance(state, kind):
        raise ModelFormatError(
            f"{where} holds a {type(state).__name__}, not the state of solver {solver}."
        )
    if folds is not None:
        if not isinstance(data.get("folds"), dict):
            raise ModelFormatError(f"{where} holds no fold states, which the job's [cv] needs.")
        state = FoldStates.from_dict(data["folds"], parse_state=state_from_dict, where=where)
        if state.state_type is not kind or state.n_folds != folds.n_folds:
            raise ModelFormatError(f"{where} holds fold states of another kind or fold count.")
    if (
        not isinstance(rows_read, int)
        or not isinstance(dropped, dict)
        or not isinstance(facts, dict)
        or not (lws is None or isinstance(lws, (int, float)))
    ):
        raise ModelFormatError(
            f"{where}: 'rows_read', 'rows_dropped_by_column', 'log_weight_sum' "
            "or 'file' has the wrong type."
        )
    return Accumulation(
        state,
        None,
        rows_read=rows_read,
        dropped=dict(dropped),
        rows_by_file={facts.get("url", "?"): rows_read},
        log_weight_sum=float("-inf") if lws is None else float(lws),
    )


def state_doc(fmt: str, facts: dict, acc: Accumulation, **extra) -> bytes:
    """The bytes of a state document of format ``fmt`` (a file's final state or a checkpoint)."""
    folds = acc.state if isinstance(acc.state, FoldStates) else None
    doc = {
        "format": fmt,
        "format_version": FORMAT_VERSION,
        "streamreg_version": __version__,
        "file": facts,
        **extra,
        "rows_read": acc.rows_read,
        "rows_dropped_by_column": acc.dropped,
        "log_weight_sum": acc.log_weight_sum if acc.log_weight_sum > float("-inf") else None,
        "state": (acc.state if folds is None else folds.total()).to_dict(),
    }
    if folds is not None:  # a cross-validating job: the fold states beside the plain state
        doc["folds"] = folds.to_dict()
    return (json.dumps(doc, allow_nan=False) + "\n").encode()


# ---------------------------------------------------------------------- published outputs
def versioned_name(path: str, version: int) -> str:
    """``out/model.json`` → ``out/model.v000003.json``.

    >>> versioned_name("s3://b/out/model.json", 3), versioned_name("model", 12)
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


def collect_garbage(store: Store, manifest: dict) -> None:
    """Remove states no longer listed, checkpoints of finished files and temporary files."""
    keep = {e["state"] for e in manifest["files"]}
    for name in store.list("states"):
        if name not in keep:
            store.delete(f"states/{name}")
    for name in store.list("partial"):
        store.delete(f"partial/{name}")
    if not store.remote:
        for name in store.list(""):
            if name.startswith(".") and name.endswith(".tmp"):
                store.delete(name)
