"""Scheduled batch jobs: fold only new files into saved states, refit, publish — exactly once.

``spec`` reads the TOML job file, ``store`` is the state store (a folder or an
object-store prefix, with its lock), ``manifest`` the documents kept there,
``plan`` decides what a run does from the listing, ``ingest`` folds one file into
its state with checkpoints, ``log`` is the operational log, and ``run`` is one
run (or the watch loop). See :mod:`streamreg.jobs.run` for the guarantees.
"""

from .log import JobLog
from .run import RunResult, run_job, watch_job
from .spec import EXAMPLE, JobSpec, load_job, parse_job

__all__ = [
    "EXAMPLE",
    "JobLog",
    "JobSpec",
    "RunResult",
    "load_job",
    "parse_job",
    "run_job",
    "watch_job",
]
