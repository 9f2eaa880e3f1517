"""Where a job keeps its state and puts its outputs: a local folder or an object-store prefix.

A :class:`Store` offers the few operations a job needs, with the same meaning
on both: read a small file, write one **atomically** (locally a temporary
sibling, fsync and rename; on object storage a single PUT, which is atomic),
create one only if it does not exist yet (the lock), list and delete. Object
storage goes through fsspec (``s3fs`` for ``s3://``); :func:`write_output`
puts one output file (a model, a summary, predictions) at a path or URL.

>>> import tempfile
>>> store = Store(tempfile.mkdtemp())
>>> store.write("states/a.json", b"{}")
>>> store.read("states/a.json"), store.list("states"), store.read("missing.json")
(b'{}', ['a.json'], None)
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import socket
import tempfile
from collections.abc import Callable
from dataclasses import dataclass

from ..errors import InputError, LockError, StreamregError
from ..io.atomic import atomic_path, current_umask, describe_os_error
from ..io.listing import describe_storage_error, is_url, url_filesystem

try:  # POSIX: the kernel drops a flock when its holder dies, so a stale lock is certain
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None


class Store:
    """A folder (local path or URL prefix) holding named files such as ``states/ab12.json``."""

    def __init__(self, root: str | os.PathLike, storage_options: dict | None = None):
        root = str(root)
        self.remote = is_url(root)
        if self.remote:
            self.fs, path = url_filesystem(root, storage_options)
            self.base = path.rstrip("/")
            self.root = root.rstrip("/")
        else:
            self.fs = None
            self.base = self.root = os.path.abspath(root)

    def url(self, name: str) -> str:
        """The full path or URL of ``name``, for messages."""
        return f"{self.root}/{name}" if self.remote else os.path.join(self.root, name)

    def _path(self, name: str) -> str:
        return f"{self.base}/{name}" if self.remote else os.path.join(self.base, name)

    def _call(self, what: str, name: str, action: Callable, *, missing_ok: bool = True):
        """Run a storage call; a failure is one sentence naming ``name`` (a missing file is
        passed on as FileNotFoundError when ``missing_ok``, else reported too)."""
        try:
            return action()
        except StreamregError:
            raise
        except FileNotFoundError as exc:
            if missing_ok:
                raise
            raise InputError(
                f"cannot {what} {self.url(name)}: {describe_storage_error(exc)} (does the "
                "bucket or folder exist?)."
            ) from exc
        except Exception as exc:  # noqa: BLE001 - storage backends raise many families
            raise InputError(
                f"cannot {what} {self.url(name)}: {describe_storage_error(exc)}."
            ) from exc

    def _local(self, what: str, name: str, action: Callable):
        """Run a local file operation; an OSError (read-only folder, full disk) is one
        sentence naming the file."""
        try:
            return action()
        except FileNotFoundError:
            raise
        except OSError as exc:
            raise InputError(f"cannot {what} {self.url(name)}: {_reason(exc)}.") from exc

    # ------------------------------------------------------------ files
    def read(self, name: str) -> bytes | None:
        """The content of ``name``, or None if it does not exist."""
        try:
            if self.remote:
                return self._call("read", name, lambda: self.fs.cat_file(self._path(name)))
            with open(self._path(name), "rb") as handle:
                return handle.read()
        except FileNotFoundError:
            return None
        except (IsADirectoryError, PermissionError) as exc:
            raise InputError(f"cannot read {self.url(name)}: {exc.strerror or exc}.") from exc

    def exists(self, name: str) -> bool:
        if self.remote:
            return bool(self._call("read", name, lambda: self.fs.exists(self._path(name))))
        return os.path.exists(self._path(name))

    def write(self, name: str, data: bytes) -> None:
        """Replace ``name`` with ``data`` atomically: readers see the old or the new content."""
        if self.remote:
            self._call(
                "write", name, lambda: self.fs.pipe_file(self._path(name), data), missing_ok=False
            )
            return
        path = self._path(name)
        self._local("write", name, lambda: os.makedirs(os.path.dirname(path), exist_ok=True))
        with atomic_path(path) as tmp:
            tmp.write_bytes(data)

    def create(self, name: str, data: bytes) -> bool:
        """Write ``name`` only if it does not exist; False if it does."""
        if self.remote:

            def put():
                try:
                    self.fs.pipe_file(self._path(name), data, mode="create")  # If-None-Match: *
                except FileExistsError:
                    return False
                return True

            if self.exists(name):  # also for servers that ignore the condition
                return False
            return self._call("write", name, put, missing_ok=False)
        path = self._path(name)
        self._local("write", name, lambda: os.makedirs(os.path.dirname(path), exist_ok=True))
        fd, tmp = self._local("write", name, lambda: _write_temporary(path, data))
        try:
            return self._local("write", name, lambda tmp=tmp: _link_exclusive(tmp, path))
        finally:
            os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(tmp)

    def delete(self, name: str) -> None:
        """Remove ``name`` if it exists."""
        if self.remote:
            with contextlib.suppress(FileNotFoundError):
                self._call("delete", name, lambda: self.fs.rm_file(self._path(name)))
            return
        with contextlib.suppress(FileNotFoundError):
            self._local("delete", name, lambda: os.unlink(self._path(name)))

    def list(self, folder: str) -> list[str]:
        """Names of the files directly in ``folder`` (sorted; none if it does not exist)."""
        if self.remote:

            def ls():
                try:
                    self.fs.invalidate_cache(self._path(folder))
                    entries = self.fs.ls(self._path(folder), detail=False)
                except FileNotFoundError:
                    return []
                return [e.rstrip("/").rsplit("/", 1)[-1] for e in entries]

            return sorted(self._call("list", folder, ls))
        try:
            return self._local(
                "list",
                folder,
                lambda: sorted(e.name for e in os.scandir(self._path(folder)) if e.is_file()),
            )
        except FileNotFoundError:
            return []

    def ensure(self) -> None:
        """Create the local folder (object stores need no folders)."""
        if not self.remote:
            try:
                os.makedirs(self.base, exist_ok=True)
            except OSError as exc:
                raise InputError(
                    f"cannot create the state folder {self.root}: {exc.strerror or exc}."
                ) from exc

    # ------------------------------------------------------------ lock
    def lock(self, name: str = "lock") -> Lock:
        """Take the job's lock or raise :class:`LockError` naming its holder.

        The lock file is created exclusively and records pid, host and start
        time. A lock left by a dead process is taken over: locally the kernel's
        flock on it is gone (certain, whatever the host); on object storage
        when the holder ran on this host and its pid is no longer alive.
        """
        holder = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        }
        data = (json.dumps(holder) + "\n").encode()
        if self.remote:
            return self._lock_remote(name, data)
        return self._lock_local(name, data)

    def _lock_local(self, name: str, data: bytes) -> Lock:
        """The lock's content appears with the file: it is written (and flocked) in a
        temporary file first, then linked into place — exclusively for a new lock, by an
        atomic rename over a stale one. A loser never reads a half-made lock."""
        path = self._path(name)
        if fcntl is None:  # pragma: no cover
            return self._lock_by_pid(name, data)
        for _ in range(10):
            mine, tmp = self._local("take the lock", name, lambda: _write_temporary(path, data))
            fcntl.flock(mine, fcntl.LOCK_EX | fcntl.LOCK_NB)  # a file nobody else knows yet
            taken = False
            try:
                if self._local("take the lock", name, lambda tmp=tmp: _link_exclusive(tmp, path)):
                    taken = True
                    return Lock(self, name, fd=mine)
                try:
                    theirs = os.open(path, os.O_RDONLY)
                except FileNotFoundError:
                    continue  # released meanwhile
                try:
                    try:
                        fcntl.flock(theirs, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    except OSError:
                        if not _same_file(path, theirs):
                            continue  # replaced meanwhile: look again
                        previous = _parse_holder(_read_fd(theirs))
                        raise LockError(_held_message(self.url(name), previous)) from None
                    if not _same_file(path, theirs):
                        continue  # its holder released it between our open and our flock
                    # Its holder died (the kernel dropped its flock): ours replaces it whole.
                    stale = _parse_holder(_read_fd(theirs)) or {}
                    self._local("take the lock", name, lambda tmp=tmp: os.rename(tmp, path))
                    taken = True
                    return Lock(self, name, fd=mine, stale=stale)
                finally:
                    os.close(theirs)
            finally:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)  # the lock's own name stays; this one is not needed
                if not taken:
                    os.close(mine)
        raise LockError(
            f"could not take the lock {self.url(name)}: it keeps changing hands; try again."
        )

    def _lock_remote(self, name: str, data: bytes) -> Lock:
        return self._lock_by_pid(name, data)

    def _lock_by_pid(self, name: str, data: bytes) -> Lock:
        stale = None
        for _ in range(5):
            if self.create(name, data):
                return Lock(self, name, stale=stale)
            raw = self.read(name)
            if raw is None:
                continue  # released meanwhile
            previous = _parse_holder(raw)
            if (
                previous
                and previous.get("host") == socket.gethostname()
                and isinstance(previous.get("pid"), int)
                and not _pid_alive(previous["pid"])
            ):
                self.delete(name)
                stale = previous
                continue
            raise LockError(_held_message(self.url(name), previous))
        raise LockError(
            f"could not take the lock {self.url(name)}: it keeps changing hands; try again."
        )


@dataclass
class Lock:
    """A held lock; :meth:`release` removes it."""

    store: Store
    name: str
    fd: int | None = None
    stale: dict | None = None  # the dead holder whose lock was taken over, if any

    def release(self) -> None:
        """Remove the lock. It never raises: if the file cannot be removed (the folder turned
        read-only), closing the fd still drops the flock, and the next run takes it over."""
        try:
            self.store.delete(self.name)
        except StreamregError:
            pass
        finally:
            if self.fd is not None:
                os.close(self.fd)  # closing drops the flock
                self.fd = None

    def describe_stale(self) -> str | None:
        if self.stale is None:
            return None
        who = _describe_holder(self.stale) if self.stale else "a run that left it empty"
        return (
            f"took over the stale lock {self.store.url(self.name)} of {who}, which is no longer "
            "running"
        )


def write_output(target: str, data: bytes, storage_options: dict | None = None) -> None:
    """Write one output file (path or URL) atomically, creating local folders as needed."""
    if is_url(target):
        Store(target.rsplit("/", 1)[0], storage_options).write(target.rsplit("/", 1)[1], data)
        return
    Store(os.path.dirname(os.path.abspath(target))).write(os.path.basename(target), data)


def write_output_file(
    target: str, produce: Callable[[str], object], storage_options: dict | None = None
):
    """Have ``produce(local_path)`` write a file, then publish it at ``target`` atomically.

    Locally the file is written beside the target and renamed; for a URL it is
    written to a local temporary file and uploaded (a single object write)."""
    if not is_url(target):
        target = os.path.abspath(target)
        folder = Store(os.path.dirname(target))
        folder._local(
            "write", os.path.basename(target), lambda: os.makedirs(folder.base, exist_ok=True)
        )
        with atomic_path(target) as tmp:
            return produce(str(tmp))
    with tempfile.TemporaryDirectory(prefix="streamreg-") as folder:
        local = os.path.join(folder, target.rsplit("/", 1)[1])
        result = produce(local)
        fs, path = url_filesystem(target, storage_options)
        try:
            fs.put_file(local, path)
        except Exception as exc:  # noqa: BLE001 - storage backends raise many families
            raise InputError(f"cannot write {target}: {describe_storage_error(exc)}.") from exc
        return result


def output_exists(target: str, storage_options: dict | None = None) -> bool:
    if is_url(target):
        return Store(target.rsplit("/", 1)[0], storage_options).exists(target.rsplit("/", 1)[1])
    return os.path.exists(target)


def delete_output(target: str, storage_options: dict | None = None) -> None:
    if is_url(target):
        Store(target.rsplit("/", 1)[0], storage_options).delete(target.rsplit("/", 1)[1])
    else:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(target)


# ---------------------------------------------------------------- helpers
def _write_temporary(path: str, data: bytes) -> tuple[int, str]:
    """(fd, path) of a new temporary file beside ``path`` holding ``data``, fsynced, with the
    mode a new file gets under the umask. The fd is read-only: enough for ``flock``, and a
    held lock then keeps no file of the folder open for writing."""
    directory, base = os.path.split(path)
    # Not "*.tmp": a job's garbage collection removes those, and a contender's lock must stay.
    fd, tmp = tempfile.mkstemp(prefix=f".{base}.", suffix=".new", dir=directory or ".")
    try:
        try:
            os.fchmod(fd, 0o666 & ~current_umask())
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        return os.open(tmp, os.O_RDONLY), tmp
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _link_exclusive(tmp: str, path: str) -> bool:
    """Give the file ``tmp`` the name ``path`` too, unless ``path`` exists (then False)."""
    try:
        os.link(tmp, path)
    except FileExistsError:
        return False
    return True


def _same_file(path: str, fd: int) -> bool:
    try:
        return os.stat(path).st_ino == os.fstat(fd).st_ino
    except FileNotFoundError:
        return False


def _reason(exc: OSError) -> str:
    return describe_os_error(exc)


def _read_fd(fd: int) -> bytes:
    try:
        return os.pread(fd, 4096, 0)
    except OSError:
        return b""


def _parse_holder(raw: bytes | None) -> dict | None:
    try:
        holder = json.loads(raw or b"")
    except (ValueError, RecursionError):
        return None
    return holder if isinstance(holder, dict) else None


def _describe_holder(holder: dict | None) -> str:
    if not holder:
        return "an unknown process"
    return (
        f"pid {holder.get('pid', '?')} on host {holder.get('host', '?')}, "
        f"started {holder.get('started', '?')}"
    )


def _held_message(where: str, holder: dict | None) -> str:
    return (
        f"another run of this job holds the lock {where} ({_describe_holder(holder)}); "
        "try again when it has finished."
    )


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
