"""``streamreg run`` and ``streamreg job init``: scheduled batch jobs."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import typer

from ..choices import ON_CHANGE
from ..errors import InputError, StreamregError
from .app import DEBUG, _progress_enabled, _run, app
from .options import choice, choice_metavar

LOG_FORMATS = ("text", "json")


@app.command("run")
def run_job_command(
    job_file: Path = typer.Argument(
        ..., metavar="JOB", help="A job file (TOML); 'streamreg job init' writes an example."
    ),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="List what would be ingested, replaced and expired; write nothing."
    ),
    on_change: str | None = typer.Option(
        None,
        "--on-change",
        metavar=choice_metavar(ON_CHANGE),
        callback=choice(ON_CHANGE),
        help=(
            "A file that changed since it was ingested: error (default) or replace (subtract its "
            "old rows, re-ingest)."
        ),
    ),
    window: str | None = typer.Option(
        None,
        "--window",
        metavar="PERIOD",
        help=(
            "Keep only files from this recent period, e.g. 30d (units s, m, h, d, w); older ones "
            "are subtracted."
        ),
    ),
    watch: bool = typer.Option(
        False,
        "--watch",
        help="Stay up: look for new files every --interval and publish each new model version.",
    ),
    interval: str | None = typer.Option(
        None,
        "--interval",
        metavar="PERIOD",
        help=(
            "With --watch: how often to look for new files, e.g. 60s (default: the job's "
            "run.interval)."
        ),
    ),
    log_format: str = typer.Option(
        "text",
        "--log-format",
        metavar=choice_metavar(LOG_FORMATS),
        callback=choice(LOG_FORMATS),
        help="Log lines on stderr: text or json (JSON lines).",
    ),
    quiet: bool = typer.Option(
        False, "--quiet", "-q", help="Log only warnings and errors; print no result line."
    ),
    debug: bool = DEBUG,
) -> None:
    """Run a batch job: fold in only the files not seen yet, refit, publish the model.

    Exit codes: 0 done (or nothing new), 2 bad job or input, 3 another run holds the lock, \
1 internal error.

    Examples:
      streamreg run nightly.toml --dry-run
      streamreg run nightly.toml --quiet
      streamreg run nightly.toml --window 30d --on-change replace --log-format json
    """

    def action():
        from ..jobs import JobLog, load_job, run_job, watch_job
        from ..report import dry_run_report, job_report

        log = JobLog(log_format, quiet)
        try:
            job = load_job(job_file).with_options(
                on_change=on_change, window=window, interval=interval
            )
            if watch and dry_run:
                raise InputError("--dry-run and --watch do not go together.")
            stop = threading.Event()
            with _graceful_stop(stop):
                progress = _progress_enabled(quiet, log_format == "json")
                if watch:
                    watch_job(job, log=log, stop=stop, progress=progress)
                    return 0
                result = run_job(job, dry_run=dry_run, log=log, stop=stop, progress=progress)
        except StreamregError as exc:
            if log_format != "json" or debug:
                raise
            log.error("failed", str(exc), exit_code=exc.exit_code)
            return exc.exit_code
        if log_format == "json":
            typer.echo(json.dumps(result.to_dict()))
        elif dry_run:
            typer.echo(dry_run_report(result))
        elif not quiet:
            typer.echo(job_report(result))
        return 143 if result.status == "stopped" else 0

    _run(debug, action)


job_app = typer.Typer(
    no_args_is_help=True,
    help="""Batch job files: write an example.

    Examples:
      streamreg job init nightly.toml
    """,
)
app.add_typer(job_app, name="job")


@job_app.command("init")
def job_init(
    path: Path = typer.Argument(
        Path("job.toml"), help="Where to write the example job ('-' for stdout)."
    ),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing file."),
    debug: bool = DEBUG,
) -> None:
    """Write a commented example job file for 'streamreg run'.

    Examples:
      streamreg job init nightly.toml
      streamreg job init - > nightly.toml
    """

    def action():
        from ..jobs.spec import EXAMPLE

        if str(path) == "-":
            typer.echo(EXAMPLE, nl=False)
            return
        if path.exists() and not force:
            raise InputError(f"{path} exists; pass --force to overwrite it.")
        from ..io.atomic import write_text_atomic

        write_text_atomic(path, EXAMPLE)
        typer.echo(
            f"Wrote {path}; edit inputs, target and outputs, then: streamreg run {path} --dry-run"
        )

    _run(debug, action)


class _graceful_stop:
    """SIGTERM/SIGINT set ``stop`` (the job checkpoints and ends); a second one ends at once."""

    def __init__(self, stop: threading.Event):
        self.stop, self.previous = stop, {}

    def _handle(self, signum, frame):
        if self.stop.is_set():
            raise KeyboardInterrupt
        self.stop.set()

    def __enter__(self):
        import signal

        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                self.previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc):
        import signal

        for sig, handler in self.previous.items():
            signal.signal(sig, handler)
        return False
