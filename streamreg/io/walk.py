"""Expanding local directories and globs so that each file is listed once, whatever its spellings.

Python's ``glob.glob(pattern, recursive=True)`` follows directory symlinks without limit: a
symlink loop lists a file up to 40 times (the kernel's ELOOP depth) and two aliases make the
walk exponential; ``os.walk`` follows none, so the directory spelling of the same input gave
a different model. Here both spellings read the same files:

* a symlink to a directory is followed (data folders are often links), but every real
  directory — identified by its device and inode — is visited at most once, so a loop ends;
* plain subdirectories are walked before linked ones, so a file reachable both ways is listed
  under its plain path;
* a file reached by several spellings (through a link, two patterns, a folder and one of its
  files) is listed once, under the first spelling met (:func:`real_key`, ``os.path.realpath``).
  Hard links are distinct directory entries and stay distinct.

Directory walks skip names starting with ``_`` or ``.`` (metadata such as ``_SUCCESS``, as
``pyarrow.dataset`` does) and files named like something other than Parquet (``README.txt``,
``notes.csv``); :func:`walk_directory` returns those separately so that a caller can say what
was skipped. Files without an extension are read (Hive and Impala write them).

>>> import tempfile, pathlib
>>> root = pathlib.Path(tempfile.mkdtemp())
>>> (root / "sub").mkdir()
>>> _ = (root / "sub" / "a.parquet").write_bytes(b"")
>>> _ = (root / "sub" / "README.txt").write_text("about the data")
>>> (root / "sub" / "loop").symlink_to(root)
>>> (root / "alias").symlink_to(root / "sub")
>>> [pathlib.Path(p).relative_to(root).as_posix() for p in expand_glob(f"{root}/**/*.parquet")]
['sub/a.parquet']
>>> files, skipped = walk_directory(str(root))
>>> [pathlib.Path(p).relative_to(root).as_posix() for p, _ in files], len(skipped)
(['sub/a.parquet'], 1)
"""

from __future__ import annotations

import fnmatch
import os
import re
from collections.abc import Iterator

from ..errors import InputError

# Names a directory walk reads: Parquet's usual extensions, or none at all.
PARQUET_SUFFIXES = (".parquet", ".parq", ".pq")
_MAGIC = re.compile(r"[*?[]")


def has_magic(text: str) -> bool:
    return _MAGIC.search(text) is not None


def real_key(path: str) -> str:
    """What identifies a file however it is spelled: its real path (links resolved)."""
    return os.path.realpath(path)


def looks_like_data(name: str) -> bool:
    """A file a directory walk reads: named ``*.parquet``/``*.parq``/``*.pq``, or without an
    extension."""
    lower = name.lower()
    if lower.endswith(PARQUET_SUFFIXES):
        return True
    return "." not in lower.lstrip(".")


def walk_directory(top: str) -> tuple[list[tuple[str, str]], list[str]]:
    """``([(file, its directory relative to top)], [skipped non-Parquet files])`` under ``top``.

    The order is ``os.walk``'s (top-down, names sorted) over the plain directories, then the
    linked directories not already seen, each walked the same way."""
    files: list[tuple[str, str]] = []
    skipped: list[str] = []
    seen_files: set[str] = set()
    for directory in _directories(top, hidden=("_", ".")):
        for entry in _entries(directory):
            if entry.name.startswith(("_", ".")) or _is_dir(entry):
                continue
            path = os.path.join(directory, entry.name)
            if not looks_like_data(entry.name) or not _is_file_or_broken_link(entry):
                skipped.append(path)  # README.txt; a pipe or socket (reading one would block)
                continue
            key = real_key(path)
            if key not in seen_files:
                seen_files.add(key)
                files.append((path, os.path.relpath(directory, top)))
    return files, skipped


def expand_glob(pattern: str) -> list[str]:
    """The files matching ``pattern`` (``glob`` syntax, ``**`` for any depth), each once, sorted.

    As in ``glob``, ``*`` and ``**`` do not match names starting with ``.`` unless the
    pattern's component does."""
    if os.path.isabs(pattern):
        anchor, rest = os.sep, pattern.lstrip(os.sep)
    else:
        anchor, rest = "", pattern
    parts = rest.split(os.sep)
    paths = [anchor]
    for index, part in enumerate(parts):
        last = index == len(parts) - 1
        matched: list[str] = []
        if part == "**":
            visited: set = set()
            for base in paths:
                for directory in _directories(base or os.curdir, hidden=(".",), visited=visited):
                    shown = _respell(directory, base)
                    matched.append(shown)
                    if last:
                        matched.extend(
                            os.path.join(shown, name)
                            for name in _names(directory, ".")
                            if os.path.isfile(os.path.join(directory, name))
                        )
        elif has_magic(part):
            for base in paths:
                for name in _names(base or os.curdir, "" if part.startswith(".") else "."):
                    if fnmatch.fnmatchcase(name, part):
                        path = os.path.join(base, name)
                        if last or os.path.isdir(path):
                            matched.append(path)
        else:
            for base in paths:
                path = os.path.join(base, part) if part else base
                if (last and os.path.lexists(path)) or os.path.isdir(path):
                    matched.append(path)
        paths = matched
    seen: set[str] = set()
    unique = []
    for path in paths:
        if os.path.isfile(path):
            key = real_key(path)
            if key not in seen:
                seen.add(key)
                unique.append(path)
    return sorted(unique)


# ---------------------------------------------------------------------- helpers
def _directories(top: str, hidden: tuple[str, ...], visited: set | None = None) -> Iterator[str]:
    """``top`` and the directories below it, each real directory once: plain subdirectories
    depth-first in name order (as ``os.walk``), then the linked ones not yet seen."""
    visited = set() if visited is None else visited
    links = [top]
    while links:
        stack = [links.pop(0)]
        while stack:
            directory = stack.pop()
            key = _dir_key(directory)
            if key is None or key in visited:
                continue
            visited.add(key)
            yield directory
            plain = []
            for entry in _entries(directory):
                if entry.name.startswith(hidden) or not _is_dir(entry):
                    continue
                path = os.path.join(directory, entry.name)
                if entry.is_symlink():
                    links.append(path)
                else:
                    plain.append(path)
            stack.extend(reversed(plain))


def _respell(directory: str, base: str) -> str:
    """``directory`` (found from ``base or '.'``) spelled from ``base`` as the pattern spells it."""
    if base:
        return directory
    return os.path.relpath(directory, os.curdir) if directory != os.curdir else ""


def _entries(directory: str) -> list[os.DirEntry]:
    """The entries of a directory, by name; one that cannot be read is an error, not a folder
    silently left out of the data."""
    try:
        return sorted(os.scandir(directory), key=lambda e: e.name)
    except FileNotFoundError:
        return []  # a broken link to a directory, or removed meanwhile
    except OSError as exc:
        raise InputError(
            f"cannot read the directory {directory}: {exc.strerror or exc}; the files in it "
            "would be left out."
        ) from exc


def _names(directory: str, hidden: str) -> list[str]:
    return [e.name for e in _entries(directory) if not (hidden and e.name.startswith(hidden))]


def _dir_key(path: str):
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


def _is_file_or_broken_link(entry: os.DirEntry) -> bool:
    try:
        if entry.is_file(follow_symlinks=True):
            return True
        return entry.is_symlink() and not os.path.exists(entry.path)  # reported when read
    except OSError:
        return False


def _is_dir(entry: os.DirEntry) -> bool:
    try:
        return entry.is_dir(follow_symlinks=True)
    except OSError:
        return False
