"""Faults for tests: a full disk, a read-only folder, a silent or lying port, a cluster that
never finishes.

A *full disk* is a small tmpfs (real ENOSPC) where the machine lets us mount one (root with
CAP_SYS_ADMIN), else — in a subprocess — a file-size limit (``RLIMIT_FSIZE``: the write
fails with EFBIG, as on a quota). A *read-only folder* is a tmpfs remounted read-only (real
EROFS), or ``chmod 0o555`` for a user the permissions bind. Every service listens on
127.0.0.1 only and is stopped by its context manager.
"""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import pytest


def _try_mount() -> bool:
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return False
    folder = tempfile.mkdtemp(prefix="streamreg-mount-probe-")
    try:
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", folder],
            capture_output=True,
            timeout=30,
        )
        if done.returncode != 0:
            return False
        subprocess.run(["umount", folder], capture_output=True, timeout=30)
        return True
    except (OSError, subprocess.SubprocessError):
        return False
    finally:
        with contextlib.suppress(OSError):
            os.rmdir(folder)


CAN_MOUNT = _try_mount()
# The command line in a subprocess (the PYTHONPATH of the tests is inherited).
STREAMREG = [sys.executable, "-c", "import sys; from streamreg.cli import main; sys.exit(main())"]
needs_mount = pytest.mark.skipif(not CAN_MOUNT, reason="cannot mount a tmpfs here")


@contextlib.contextmanager
def small_tmpfs(size: str = "256k"):
    """A fresh tmpfs of ``size`` (a folder that fills up for real), unmounted afterwards."""
    if not CAN_MOUNT:
        pytest.skip("cannot mount a tmpfs here")
    folder = Path(tempfile.mkdtemp(prefix="streamreg-tmpfs-"))
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(folder)],
        check=True,
        timeout=30,
    )
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True, timeout=30)
        with contextlib.suppress(OSError):
            folder.rmdir()


def remount(folder: Path, read_only: bool) -> None:
    """Make a tmpfs of :func:`small_tmpfs` read-only (EROFS on every write) or writable again."""
    option = "remount,ro" if read_only else "remount,rw"
    subprocess.run(["mount", "-o", option, str(folder)], check=True, timeout=30)


def fill(folder: Path) -> None:
    """Fill the file system of ``folder`` to the last byte."""
    with open(folder / "ballast", "wb", buffering=0) as handle:
        for size in (65536, 4096, 512, 1):
            chunk = b"\0" * size
            try:
                while True:
                    handle.write(chunk)
            except OSError:
                continue


@contextlib.contextmanager
def read_only_folder(base: Path):
    """A folder whose writes fail: a read-only tmpfs, or 0o555 for a non-root user."""
    if CAN_MOUNT:
        with small_tmpfs("1m") as folder:
            remount(folder, read_only=True)
            yield folder
        return
    if os.geteuid() == 0:
        pytest.skip("root ignores permissions and cannot mount here")
    folder = base / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        yield folder
    finally:
        folder.chmod(0o755)


def run_with_file_size_limit(args: list[str], limit: int, **kwargs) -> subprocess.CompletedProcess:
    """``streamreg ARGS`` in a subprocess whose files cannot grow past ``limit`` bytes (EFBIG
    for writes beyond it, SIGXFSZ ignored): a disk that fills, for any user."""

    def limited():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return subprocess.run(
        [*STREAMREG, *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=limited,
        **kwargs,
    )


@contextlib.contextmanager
def bad_port(mode: str):
    """A port on 127.0.0.1 that accepts and then: ``silent`` (never answers), ``http`` (answers
    as a web server), ``garbage`` (sends bytes that are no protocol). Yields its address."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.settimeout(0.2)
    stop = threading.Event()
    accepted: list[socket.socket] = []

    def serve():
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            accepted.append(conn)
            try:
                if mode == "http":
                    conn.settimeout(2)
                    with contextlib.suppress(OSError):
                        conn.recv(4096)
                    conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
                elif mode == "garbage":
                    conn.sendall(b"\xff" * 64)
            except OSError:
                pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"tcp://127.0.0.1:{server.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(5)
        for conn in accepted:
            conn.close()
        server.close()
