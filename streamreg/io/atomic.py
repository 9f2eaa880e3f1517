"""Atomic file output: write to a temporary sibling, fsync, then rename.

A reader (or a crash) sees either the old file or the complete new one, never a
half-written file, and a failure leaves no temporary file behind.

>>> import tempfile, pathlib
>>> target = pathlib.Path(tempfile.mkdtemp()) / "model.json"
>>> write_text_atomic(target, "{}")
>>> target.read_text()
'{}'
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from ..errors import InputError, ModelFormatError


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``target``; on success it replaces ``target``."""
    target = Path(target)
    directory = target.parent if str(target.parent) else Path(".")
    if not directory.is_dir():
        raise InputError(f"cannot write {target}: the directory {directory} does not exist.")
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=directory)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, target)
        _fsync_directory(directory)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_json_atomic(target: str | os.PathLike, data, *, indent: int | None = None) -> None:
    """Write ``data`` as JSON (no NaN or infinity: plain JSON only), atomically."""
    write_text_atomic(
        target, json.dumps(data, indent=indent, allow_nan=False) + ("\n" if indent else "")
    )


def read_json(path: str | os.PathLike, what: str) -> dict:
    """Parse a JSON file; a missing or unreadable file is a :class:`ModelFormatError` naming it."""
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except FileNotFoundError as exc:
        raise ModelFormatError(f"{path} does not exist.") from exc
    except (OSError, ValueError) as exc:
        raise ModelFormatError(f"{path} is not a readable {what} file ({exc}).") from exc


def write_text_atomic(target: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``target`` atomically."""
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")


def _fsync_directory(directory: Path) -> None:
    # The rename is durable only once the directory entry is on disk.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
