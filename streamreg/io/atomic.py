"""Atomic file output: write to a temporary sibling, fsync, then rename.

A reader (or a crash) sees either the old file or the complete new one, never a
half-written file, and a failure leaves no temporary file behind. Beyond that, what an
operator relies on:

* **modes** — the new file gets the mode of the file it replaces, or ``0o666`` less the
  umask for a new one (``mkstemp`` alone makes every output ``0600``, and a model server
  running as another user loses access at the next publish);
* **failures in words** — a full disk, a read-only or unwritable folder, a directory where a
  file should go: one :class:`~streamreg.errors.InputError` naming the *target* (not the
  temporary file), saying that nothing was written and the previous file is unchanged;
* **no orphans** — a process killed while writing (SIGKILL, OOM) cannot remove its
  temporary file. Each writer holds an ``flock`` on its temporary file while it lives; the
  next write to the same target removes the temporaries whose lock is free and that are
  older than :data:`STALE_SECONDS` — only files of our naming (``.NAME.*.streamreg.tmp``),
  only those whose writer is gone (the kernel drops a dead process's locks).

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
import re
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from ..errors import InputError, ModelFormatError

try:  # POSIX: a dead writer's flock is gone, which tells a stale temporary file for certain
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

TMP_SUFFIX = ".streamreg.tmp"
# A temporary file is swept only when its writer's lock is free *and* it is older than this:
# the lock is taken right after the file is made, and the age closes that window.
STALE_SECONDS = 60.0
_UMASK_LOCK = threading.Lock()


def check_writable(target: str | os.PathLike, what: str = "the output") -> None:
    """Fail now, in words, if ``target`` cannot be written: a directory given (``-o dir/``), a
    missing or unwritable folder. Checked before a long pass, so a typo loses no run."""
    text = os.fspath(target)
    if not text:
        raise InputError(f"{what} needs a file name.")
    if text.endswith(("/", os.sep)) or os.path.isdir(text):
        raise InputError(
            f"{text} is a directory; give the path of a file for {what} "
            f"(for example {os.path.join(text.rstrip('/' + os.sep) or '.', 'model.json')})."
        )
    directory = _directory_of(Path(text))
    if not directory.is_dir():
        raise InputError(f"cannot write {text}: the directory {directory} does not exist.")
    try:
        fd, probe = tempfile.mkstemp(prefix=".streamreg-probe.", suffix=TMP_SUFFIX, dir=directory)
    except OSError as exc:
        raise InputError(
            f"cannot write {text}: {_reason(exc)} in {directory}; nothing was written."
        ) from None
    os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(probe)


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``target``; on success it replaces ``target``."""
    target = Path(target)
    text = os.fspath(target)
    directory = _directory_of(target)
    if not directory.is_dir():
        raise InputError(f"cannot write {target}: the directory {directory} does not exist.")
    if os.path.isdir(text):
        raise InputError(f"cannot write {target}: it is a directory; give the path of a file.")
    sweep_stale_temporaries(directory, target.name)
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=TMP_SUFFIX, dir=directory)
    except OSError as exc:
        raise InputError(
            f"cannot write {target}: {_reason(exc)} in {directory}; nothing was written."
        ) from None
    tmp = Path(tmp_name)
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # held while this writer lives
        os.fchmod(fd, _mode_for(target))
        yield tmp
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, target)
        _fsync_directory(directory)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        if exc.filename not in (None, str(tmp), text, str(directory)):
            raise  # another file's failure (an input), not this write's
        unchanged = "the previous file is unchanged" if target.exists() else "no file was left"
        raise InputError(f"cannot write {target}: {_reason(exc)}; {unchanged}.") from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        os.close(fd)


def sweep_stale_temporaries(directory: str | os.PathLike, name: str) -> list[str]:
    """Remove the temporary files of writes to ``directory/name`` whose writer is gone.

    Only files named ``.{name}.*.streamreg.tmp``, whose ``flock`` can be taken (no live
    writer) and that are older than :data:`STALE_SECONDS`. Returns the paths removed."""
    if fcntl is None:  # pragma: no cover - no way to tell a live writer
        return []
    prefix = f".{name}."
    try:
        names = [
            n for n in os.listdir(directory) if n.startswith(prefix) and n.endswith(TMP_SUFFIX)
        ]
    except OSError:
        return []
    removed = []
    now = time.time()
    for entry in names:
        path = os.path.join(directory, entry)
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except OSError:
            continue
        try:
            st = os.fstat(fd)
            if now - st.st_mtime < STALE_SECONDS:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                continue  # a live writer holds it
            if os.stat(path, follow_symlinks=False).st_ino == st.st_ino:
                os.unlink(path)
                removed.append(path)
        except OSError:
            continue
        finally:
            os.close(fd)
    return removed


def write_json_atomic(target: str | os.PathLike, data, *, indent: int | None = None) -> None:
    """Write ``data`` as JSON (no NaN or infinity: plain JSON only), atomically.

    The text is encoded piece by piece straight into the file: a large model is never held
    as one string."""
    with atomic_path(target) as tmp, open(tmp, "w", encoding="utf-8") as handle:
        try:
            json.dump(data, handle, indent=indent, allow_nan=False)
        except ValueError as exc:  # a non-finite number: refuse rather than write non-JSON
            raise InputError(f"cannot write {target}: {exc}.") from exc
        if indent:
            handle.write("\n")


def read_json(path: str | os.PathLike, what: str) -> dict:
    """Parse a JSON file; a missing or unreadable file is a :class:`ModelFormatError` naming it."""
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except FileNotFoundError as exc:
        raise ModelFormatError(f"{path} does not exist.") from exc
    except IsADirectoryError as exc:
        raise ModelFormatError(f"{path} is a directory, not a {what} file.") from exc
    except RecursionError as exc:
        raise ModelFormatError(
            f"{path} is not a {what} file: its JSON is nested too deeply to be one."
        ) from exc
    except (OSError, ValueError) as exc:
        raise ModelFormatError(f"{path} is not a readable {what} file ({exc}).") from exc


def write_text_atomic(target: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``target`` atomically."""
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")


def current_umask() -> int:
    """The process's umask (read without changing it where Linux allows)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    with _UMASK_LOCK:  # os.umask can only be read by setting it
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


# ---------------------------------------------------------------------- helpers
def _mode_for(target: Path) -> int:
    try:
        return os.stat(target).st_mode & 0o7777
    except OSError:
        return 0o666 & ~current_umask()


def _directory_of(target: Path) -> Path:
    return target.parent if str(target.parent) else Path(".")


def describe_os_error(exc: OSError) -> str:
    """The reason of an OS error in a few words ("no space left on device"), also for Arrow's
    errors, which carry the errno only in their text ("... [errno 28] ...")."""
    number = exc.errno
    if number is None:
        found = re.search(r"\[errno (\d+)\]", str(exc), re.IGNORECASE)
        number = int(found.group(1)) if found else None
    reason = os.strerror(number) if number else (" ".join(str(exc).split()) or type(exc).__name__)
    return reason[0].lower() + reason[1:]


_reason = describe_os_error


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
