"""The operational log of a job run: one line per event, for people or for machines.

Every event is also kept in :attr:`JobLog.records` (a list of dicts), which is
what the tests and the CLI's run report read.

>>> import io
>>> out = io.StringIO()
>>> log = JobLog(stream=out)
>>> log.info("nothing_new", "nothing new: 3 files ingested, none changed.", files=3)
>>> out.getvalue()
'streamreg run: nothing new: 3 files ingested, none changed.\\n'
>>> log.records[0]["event"], log.records[0]["files"]
('nothing_new', 3)
"""

from __future__ import annotations

import datetime as dt
import json
import sys

from ..errors import InputError


class JobLog:
    """Operational log lines on stderr: ``text`` for people, ``json`` (JSON lines) for machines."""

    def __init__(self, fmt: str = "text", quiet: bool = False, stream=None):
        if fmt not in ("text", "json"):
            raise InputError(f"--log-format must be text or json; got {fmt!r}.")
        self.fmt, self.quiet = fmt, quiet
        self.stream = stream
        self.records: list[dict] = []

    def _emit(self, level: str, event: str, message: str, fields: dict) -> None:
        now = dt.datetime.now(dt.timezone.utc)
        record = {
            "time": now.isoformat(timespec="milliseconds"),
            "level": level,
            "event": event,
            "message": message,
            **fields,
        }
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


class SilentLog(JobLog):
    """A log that only keeps its records (the default of :func:`~streamreg.jobs.run_job`)."""

    def __init__(self):
        super().__init__()

    def _emit(self, level, event, message, fields):
        self.records.append({"level": level, "event": event, "message": message, **fields})
