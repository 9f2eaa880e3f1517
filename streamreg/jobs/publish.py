"""Publishing a job's model: solve the merged per-file states, write the model, its numbered
version, the summary and the new rows' predictions; or withdraw it when no file is left."""

from __future__ import annotations

import json

from ..engine.scan import Accumulation
from ..io.listing import ListedFile
from ..io.sources import Source
from ..prediction import predict_parquet
from .log import JobLog
from .manifest import files_digest, versioned_name
from .penalized import job_model
from .plan import utc_now
from .spec import JobSpec
from .store import delete_output, write_output, write_output_file


def publish(
    job: JobSpec, manifest: dict, total: Accumulation, ingested: list[ListedFile], log: JobLog
) -> int:
    """Solve the merged state and write the model (and its numbered version, summary and
    predictions for the new rows); record it in the manifest. Returns the new version."""
    model = job_model(job, total)
    # Versions keep counting after a withdrawal: no numbered file is ever overwritten.
    last = manifest.get("published") or manifest.get("withdrawn") or {}
    version = int(last.get("version", 0)) + 1
    text = (json.dumps(model.to_dict(), indent=1, allow_nan=False) + "\n").encode()
    write_output(versioned_name(job.model, version), text, job.storage)
    write_output(job.model, text, job.storage)
    if job.keep_versions and version > job.keep_versions:
        delete_output(versioned_name(job.model, version - job.keep_versions), job.storage)
    if job.summary:
        write_output(job.summary, (model.summary("text") + "\n").encode(), job.storage)
    if job.predictions and ingested:
        src = Source.from_listing(ingested, storage_options=job.storage)
        rows = write_output_file(
            job.predictions,
            lambda local: predict_parquet(
                model, src, local, keep=list(job.keep), batch_size=job.batch_size
            ),
            job.storage,
        )
        log.info(
            "predictions",
            f"wrote {rows:,} predictions for the new rows to {job.predictions}.",
            rows=rows,
        )
    manifest["published"] = {
        "version": version,
        "digest": files_digest(manifest["files"]),
        "model": job.model,
        "at": utc_now().isoformat(timespec="seconds"),
    }
    for warning in model.warnings_:
        log.warning("model_warning", warning)
    return version


def withdraw(job: JobSpec, manifest: dict) -> tuple[str, int | None]:
    """No file is left (all left the window): the published model, which describes rows
    no longer wanted, is removed (its numbered versions stay). Returns what is published
    now, in words, and the version withdrawn (None if there was none)."""
    published = manifest.get("published")
    why = (
        f"no files are left in the window ({job.window_text})"
        if job.window is not None
        else "no files are left in the model"
    )
    if not published:
        return f"{why[0].upper()}{why[1:]}; no model is published at {job.model}.", None
    for output in (job.model, job.summary):
        if output:
            delete_output(output, job.storage)
    version = int(published.get("version", 0))
    manifest["withdrawn"] = {**published, "at": utc_now().isoformat(timespec="seconds")}
    manifest["published"] = None
    return (
        f"{why[0].upper()}{why[1:]}: the model at {job.model} was withdrawn and nothing is "
        f"published until new files arrive (its last version, {version}, stays at "
        f"{versioned_name(job.model, version)}).",
        version,
    )
