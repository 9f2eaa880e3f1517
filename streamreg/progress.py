"""Progress for long work: rows, bytes, rows/s and ETA on a terminal; silent otherwise.

The math reports through a plain callback (``Progress.advance``); only this
module writes to the terminal, and only when stderr is a TTY and the user did
not ask for quiet.
"""

from __future__ import annotations

import sys
import time


class Progress:
    """A one-line, self-overwriting progress report on stderr."""

    def __init__(
        self,
        total_rows: int,
        total_bytes: int,
        *,
        label: str = "reading",
        enabled: bool | None = None,
        stream=None,
        min_interval: float = 0.2,
    ):
        self.stream = stream or sys.stderr
        if enabled is None:
            enabled = bool(getattr(self.stream, "isatty", lambda: False)())
        self.enabled = enabled
        self.total_rows = max(int(total_rows), 0)
        self.total_bytes = max(int(total_bytes), 0)
        self.label = label
        self.rows = 0
        self.started = time.monotonic()
        self._last = 0.0
        self._min_interval = min_interval
        self._drawn = False

    def advance(self, rows: int) -> None:
        self.rows += rows
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self._last >= self._min_interval or self.rows >= self.total_rows:
            self._last = now
            self._draw(now)

    def _draw(self, now: float) -> None:
        elapsed = max(now - self.started, 1e-9)
        rate = self.rows / elapsed
        fraction = self.rows / self.total_rows if self.total_rows else 1.0
        done_bytes = self.total_bytes * min(fraction, 1.0)
        eta = (
            (self.total_rows - self.rows) / rate
            if rate > 0 and self.total_rows > self.rows
            else 0.0
        )
        line = (
            f"\r{self.label}: {fraction:6.1%}  "
            f"{human_count(self.rows)}/{human_count(self.total_rows)} rows  "
            f"{human_bytes(done_bytes)}/{human_bytes(self.total_bytes)}  "
            f"{human_count(rate)} rows/s  "
            f"ETA {format_seconds(eta)}  "
        )
        self.stream.write(line)
        self.stream.flush()
        self._drawn = True

    def close(self) -> None:
        if self.enabled and self._drawn:
            self._draw(time.monotonic())
            self.stream.write("\n")
            self.stream.flush()


def human_count(value: float) -> str:
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= size:
            return f"{value / size:.1f}{unit}"
    return f"{value:.0f}"


def human_bytes(value: float) -> str:
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if abs(value) >= size:
            return f"{value / size:.1f} {unit}"
    return f"{value:.0f} B"


def format_seconds(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
