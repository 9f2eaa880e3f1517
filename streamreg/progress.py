"""Progress for long work: rows, bytes, rows/s and ETA on a terminal; silent otherwise.

The math reports through a plain callback (``Progress.advance``); only this
module writes to the terminal, through `rich <https://rich.readthedocs.io>`_'s
live display (which redraws in place, so no stale characters are left), and only
when stderr is a terminal and the user did not ask for quiet. The display is
redrawn at most every ``min_interval`` seconds and never at 100 % until
:meth:`Progress.close`, which draws the final state exactly once. Lines other code
writes to ``sys.stderr`` meanwhile (a job's log) appear above the display.

>>> bar = Progress(1000, 8000, label="fit", enabled=False)
>>> bar.advance(400); bar.advance(600); bar.close()
>>> bar.rows
1000
"""

from __future__ import annotations

import sys
import time

from rich.console import Console
from rich.progress import BarColumn, ProgressColumn, TaskProgressColumn, TextColumn
from rich.progress import Progress as RichProgress
from rich.text import Text


class _Figures(ProgressColumn):
    """``1.2M/10.0M rows  3.1M rows/s  ETA 0:03`` (what is known of it; the bytes too, such as
    ``98.0 MB/820.0 MB``, on a terminal at least 100 columns wide)."""

    def __init__(self, owner: Progress):
        super().__init__()
        self.owner = owner

    def render(self, task) -> Text:
        owner = self.owner
        done = task.completed
        elapsed = max(time.monotonic() - owner.started, 1e-9)
        rate = done / elapsed
        unit = owner.unit
        parts = [
            f"{human_count(done)}/{human_count(task.total)} {unit}"
            if task.total
            else f"{human_count(done)} {unit}"
        ]
        if owner.total_bytes and task.total and owner.wide:
            fraction = min(done / task.total, 1.0)
            parts.append(
                f"{human_bytes(owner.total_bytes * fraction)}/{human_bytes(owner.total_bytes)}"
            )
        parts.append(f"{human_count(rate)} {unit}/s")
        if task.total and not task.finished and rate > 0:
            parts.append(f"ETA {format_seconds((task.total - done) / rate)}")
        elif task.finished:
            parts.append(f"in {format_seconds(elapsed)}")
        return Text("  ".join(parts))


class Progress:
    """A self-redrawing progress display on stderr (rows by default; ``unit`` says what else).

    ``enabled``: True, False, or None for "only when ``stream`` is a terminal".
    ``total_rows`` may be 0 or None when unknown (then no bar length and no ETA).
    """

    def __init__(
        self,
        total_rows: int | None,
        total_bytes: int | None = 0,
        *,
        label: str = "reading",
        enabled: bool | None = None,
        stream=None,
        min_interval: float = 0.2,
        unit: str = "rows",
    ):
        self.stream = stream or sys.stderr
        if enabled is None:
            enabled = bool(getattr(self.stream, "isatty", lambda: False)())
        self.enabled = bool(enabled)
        self.total_rows = max(int(total_rows or 0), 0)
        self.total_bytes = max(int(total_bytes or 0), 0)
        self.label = label
        self.unit = unit
        self.rows = 0
        self.started = time.monotonic()
        self._last = 0.0
        self._min_interval = min_interval
        self._display = None
        self._task = None
        self.wide = False
        if self.enabled:
            self._start()

    def _start(self) -> None:
        console = Console(file=self.stream, stderr=self.stream is sys.stderr)
        # The real stderr's other writers print above the display; a test's stream has none.
        redirect = self.stream is sys.stderr or self.stream is sys.__stderr__
        self._display = RichProgress(
            TextColumn("{task.description}"),
            BarColumn(bar_width=16),
            TaskProgressColumn(),
            _Figures(self),
            console=console,
            auto_refresh=False,
            redirect_stdout=redirect,
            redirect_stderr=redirect,
        )
        self.wide = console.width >= 100  # room for the bytes too
        self._task = self._display.add_task(f"{self.label}:", total=self.total_rows or None)
        self._display.start()

    def advance(self, rows: int) -> None:
        self.rows += rows
        if self._display is None:
            return
        self._display.update(self._task, completed=self.rows)
        now = time.monotonic()
        complete = self.total_rows and self.rows >= self.total_rows
        # 100 % is drawn once, by close(); in between at most every min_interval seconds.
        if not complete and now - self._last >= self._min_interval:
            self._last = now
            self._display.refresh()

    def set_total(self, total_rows: int | None, total_bytes: int | None = None) -> None:
        """The total, when it becomes known after the display started."""
        self.total_rows = max(int(total_rows or 0), 0)
        if total_bytes is not None:
            self.total_bytes = max(int(total_bytes), 0)
        if self._display is not None:
            self._display.update(self._task, total=self.total_rows or None)

    def close(self) -> None:
        if self._display is None:
            return
        display, self._display = self._display, None
        if self.total_rows and self.rows >= self.total_rows:
            display.update(self._task, completed=self.total_rows)
        display.stop()  # draws the final state once and ends the line

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


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
