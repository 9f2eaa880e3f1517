"""A job's encoded design: levels fixed at its first run, refused in words when data bring more.

A job whose model has categories (a formula, ``categorical`` or ``reference``) keeps
one state per file, all over the same design columns — so the levels must be fixed
before the first file is read, and never change. The first run reads the category
columns of every file it ingests (cheap: only those columns, text as dictionaries)
and records the design — levels, coding, references — in the manifest, where it
is part of the job's identity. Later runs read the category columns of their new
files first and refuse, naming the file, the column and the level, any level the
design does not know: a state over other columns would silently mis-align (start a
new state location to refit with the new levels). Plain jobs are unchanged.
"""

from __future__ import annotations

from ..design import DesignSpec
from ..design.coding import Design
from ..design.encoded import EncodedSpec
from ..design.levels import level_set
from ..design.request import PendingDesign, Request
from ..errors import InputError, SchemaError
from ..io.sources import Source
from .manifest import check_design, design_identity, design_record
from .spec import JobSpec

JOB_HINT = (
    "the job's levels were fixed at its first run and its per-file states are over those "
    "columns; start a new state location to refit with the new level"
)


def request_of(job: JobSpec) -> Request:
    return Request.of(
        target=None if job.formula else job.target,
        features=None if job.features is None else list(job.features),
        exclude=list(job.exclude) if not job.formula else None,
        weight=job.weight,
        fit_intercept=job.fit_intercept,
        nulls=job.nulls,
        formula=job.formula,
        categorical=list(job.categorical),
        reference=dict(job.reference),
        max_levels=job.max_levels,
    )


def file_designs(manifest: dict, job: JobSpec, opened: list[tuple[Source, str]]) -> list:
    """The design of every file to ingest (see the module docstring); the first run of an
    encoded job records its levels in the manifest."""
    if not job.encoded:
        return [check_design(manifest, job, src) for src, _ in opened]
    if manifest["design"] is None:
        if not opened:
            return []
        pending = _pending(job, opened[0][0])
        found = None
        for src, _ in opened:
            src.check_columns(pending.columns)
            part = level_set(src, pending.categorical_sources, max_levels=job.max_levels)
            found = part if found is None else found + part
        spec = pending.resolve(found.scan().levels, hint=JOB_HINT)
        design = design_record(spec, job, formula=job.formula, encoding=spec.design.to_dict())
        manifest["design"] = design
        manifest["identity"] = design_identity(design)
        return [spec] * len(opened)
    spec = job_spec(manifest, job)
    for src, _ in opened:
        src.check_columns(spec.columns)
        _check_levels(src, spec.design)
    return [spec] * len(opened)


def encoded_batch_rows(spec: EncodedSpec, kind, given: int | None, *, folds: bool = False) -> int:
    """Rows per batch of an encoded job: group sums keep the usual size, dense rows shrink
    (``folds``: a job with [cv], whose fold states read dense rows)."""
    return spec.batch_rows(grouped=not folds and spec.grouped_for(kind), given=given)


def job_spec(manifest: dict, job: JobSpec):
    """The spec every file state of the job is over (None before the first run)."""
    design = manifest["design"]
    if design is None or "encoding" not in design:
        return None
    return EncodedSpec(
        Design.from_dict(design["encoding"], where="the job manifest's design"),
        nulls=job.nulls,
        hint=JOB_HINT,
    )


def _pending(job: JobSpec, src: Source) -> PendingDesign:
    pending = request_of(job).design(src.schema, partition_keys=list(src.partition_types))
    if isinstance(pending, DesignSpec):  # pragma: no cover - job.encoded asks for encoding
        raise InputError("the job's model needs no encoding.")
    if pending.plan.absorb or len(pending.plan.targets) != 1:
        raise InputError(
            "a job fits one target without absorbed fixed effects; fit several targets or an "
            "absorbed factor with 'streamreg fit'."
        )
    if pending.plan.transformed:
        raise InputError(
            f"a job cannot use center/scale terms ('{pending.plan.transformed[0]}'): their "
            "statistics would change with every file; center the column in the data."
        )
    return pending


def _check_levels(src: Source, design: Design) -> None:
    """Refuse, in words, a level of ``src`` that the job's design does not know."""
    sources = design.plan.categorical_sources
    found = level_set(src, sources, max_levels=max(len(v) for v in design.levels.values()) * 2 + 8)
    for code, values in found.values.items():
        known = set(design.levels[code])
        new = sorted(v for v in values if v not in known)
        if new or code in found.too_many:
            shown = repr(new[0]) if new else "many new levels"
            raise SchemaError(
                f"{src.files[0].path} holds the level {shown} of the category '{code}', which "
                f"the job's design does not know (its {len(known)} levels were fixed at the "
                f"job's first run); {JOB_HINT}."
            )
