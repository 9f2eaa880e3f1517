"""Finding input files: paths, directories, globs and fsspec URLs, without opening them.

:func:`list_files` expands what the user gave into :class:`ListedFile` records
(path, size, modification time or ETag, Hive ``key=value`` folder values). That is
all an incremental job needs to decide that nothing is new; reading footers and
data is :mod:`streamreg.io.sources`' business.

>>> import tempfile, pathlib
>>> root = pathlib.Path(tempfile.mkdtemp())
>>> (root / "day=1").mkdir()
>>> _ = (root / "day=1" / "part.parquet").write_bytes(b"")
>>> [(pathlib.Path(f.path).name, f.partition) for f in list_files(root)]
[('part.parquet', {'day': '1'})]
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InputError
from .walk import expand_glob, has_magic, looks_like_data, real_key, walk_directory


@dataclass(frozen=True)
class ListedFile:
    """A file found by :func:`list_files`: what a directory listing tells, no footer read."""

    path: str  # the local path, or the full URL
    size: int
    modified: str | None  # modification time, ISO 8601 in UTC (microseconds)
    etag: str | None = None  # object stores: the entity tag
    partition: dict = field(default_factory=dict)  # raw Hive key=value strings of its folders

    @property
    def version(self) -> str:
        """What changes when the content does: the ETag where there is one, else the mtime."""
        return self.etag if self.etag else str(self.modified)


class Listing(list):
    """The files :func:`list_files` found (a list of :class:`ListedFile`), and ``skipped``: the
    files of the directories given that are not named like Parquet (``README.txt``)."""

    def __init__(self, files=(), skipped=()):
        super().__init__(files)
        self.skipped: list[str] = list(skipped)


def is_url(item: str | os.PathLike) -> bool:
    """True for fsspec URLs such as ``s3://bucket/key`` (``file://`` counts as a local path)."""
    scheme, sep, _ = str(item).partition("://")
    return bool(sep) and scheme.replace("+", "").isalnum() and scheme != "file"


def list_files(
    source: str | os.PathLike | Sequence[str | os.PathLike],
    *,
    storage_options: dict | None = None,
    allow_empty: bool = False,
) -> Listing:
    """Expand paths, directories, globs and URLs into files, in order, without opening them.

    Directories are read recursively (names starting with ``_`` or ``.`` are
    skipped, and so are files named like something other than Parquet — they are
    reported in ``Listing.skipped``; ``key=value`` folders are Hive partitions).
    Linked directories are followed, each real directory once, and a file given by
    several spellings is listed once (:mod:`streamreg.io.walk`). With ``allow_empty``
    an empty directory or a pattern that matches nothing yields no files
    instead of an error (a missing path is an error either way).
    """
    items = [source] if isinstance(source, (str, os.PathLike)) else list(source)
    if not items:
        raise InputError("no input given: expected a Parquet file, a directory or a glob.")
    found: list[ListedFile] = []
    skipped: list[str] = []
    for item in items:
        item = str(item)
        if item.startswith("file://"):
            item = item[len("file://") :]
        if is_url(item):
            found.extend(_list_url(item, storage_options or {}, allow_empty, skipped))
        else:
            for path, part in _expand(item, allow_empty, skipped):
                found.append(_stat_local(path, part))
    seen: set[str] = set()
    unique = []
    for listed in found:
        key = listed.path if is_url(listed.path) else real_key(listed.path)
        if key not in seen:
            seen.add(key)
            unique.append(listed)
    return Listing(unique, dict.fromkeys(skipped))


def url_filesystem(url: str, storage_options: dict | None = None):
    """(fsspec filesystem, path within it) for a URL; a missing backend is a clear error."""
    import fsspec

    try:
        return fsspec.core.url_to_fs(url, **(storage_options or {}))
    except ImportError as exc:
        extra = " (pip install 'streamreg[s3]')" if url_protocol(url) in ("s3", "s3a") else ""
        raise InputError(
            f"reading {url_protocol(url)}:// URLs needs a package that is not installed{extra}: "
            f"{exc}."
        ) from exc
    except (TypeError, ValueError) as exc:
        raise InputError(f"cannot open {url} with the storage options given: {exc}.") from exc


def describe_storage_error(exc: BaseException) -> str:
    """A short, one-line reason for a failed object-store call (no traceback)."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) < 300 else text[:297] + "..."


def url_protocol(url: str) -> str:
    return str(url).partition("://")[0]


def _iso_from_ns(ns: int) -> str:
    moment = dt.datetime.fromtimestamp(ns // 1_000_000_000, tz=dt.timezone.utc)
    return moment.replace(microsecond=(ns % 1_000_000_000) // 1000).isoformat()


def _stat_local(path: str, part: dict) -> ListedFile:
    try:
        st = os.stat(path)
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}.") from exc
    return ListedFile(
        path=path, size=st.st_size, modified=_iso_from_ns(st.st_mtime_ns), partition=part
    )


def _list_url(
    item: str, storage_options: dict, allow_empty: bool, skipped: list[str]
) -> list[ListedFile]:
    fs, root = url_filesystem(item, storage_options)
    try:
        fs.invalidate_cache()  # a long-lived process must see files that landed since
        if any(ch in root for ch in "*?["):
            entries = {
                p: i for p, i in fs.glob(root, detail=True).items() if i.get("type") == "file"
            }
            parts = dict.fromkeys(entries, {})
            if not entries and not allow_empty:
                raise InputError(f"the pattern {item} matches no files.")
        elif fs.isdir(root):
            entries, parts = {}, {}
            base = root.rstrip("/")
            for path, info in sorted(fs.find(root, detail=True).items()):
                relative = path[len(base) :].lstrip("/").split("/")
                if info.get("type") != "file" or any(s.startswith(("_", ".")) for s in relative):
                    continue
                if not looks_like_data(relative[-1]):
                    skipped.append(fs.unstrip_protocol(path))
                    continue
                entries[path] = info
                parts[path] = _hive_keys("/".join(relative[:-1]))
            if not entries and not allow_empty:
                raise InputError(f"the directory {item} holds no Parquet files{_besides(skipped)}.")
        elif fs.isfile(root):
            entries = {root: fs.info(root)}
            parts = {root: {}}
        else:
            raise InputError(
                f"{item} does not exist: expected a Parquet file, a directory or a glob."
            )
    except InputError:
        raise
    except Exception as exc:  # noqa: BLE001 - the storage backends raise many families
        raise InputError(f"cannot list {item}: {describe_storage_error(exc)}.") from exc
    listed = []
    for path in sorted(entries):
        info = entries[path]
        modified = info.get("LastModified") or info.get("mtime") or info.get("last_modified")
        if isinstance(modified, dt.datetime):
            modified = modified.astimezone(dt.timezone.utc).isoformat()
        elif isinstance(modified, (int, float)):
            modified = dt.datetime.fromtimestamp(modified, tz=dt.timezone.utc).isoformat()
        etag = info.get("ETag") or info.get("etag")
        listed.append(
            ListedFile(
                path=fs.unstrip_protocol(path),
                size=int(info.get("size") or 0),
                modified=None if modified is None else str(modified),
                etag=None if etag is None else str(etag).strip('"'),
                partition=parts[path],
            )
        )
    return listed


# ---------------------------------------------------------------------- helpers
def _expand(item: str, allow_empty: bool, skipped: list[str]) -> list[tuple[str, dict]]:
    if has_magic(item):
        files = expand_glob(item)
        if not files and not allow_empty:
            raise InputError(f"the pattern {item} matches no files.")
        return [(m, {}) for m in files]
    if os.path.isdir(item):
        found, passed_over = walk_directory(item)
        skipped.extend(passed_over)
        if not found and not allow_empty:
            raise InputError(f"the directory {item} holds no Parquet files{_besides(passed_over)}.")
        return [(path, _hive_keys(rel)) for path, rel in found]
    if os.path.isfile(item):
        return [(item, {})]
    raise InputError(f"{item} does not exist: expected a Parquet file, a directory or a glob.")


def _besides(skipped: list[str]) -> str:
    if not skipped:
        return ""
    names = ", ".join(os.path.basename(p.rstrip("/")) for p in skipped[:3])
    more = f" and {len(skipped) - 3} more" if len(skipped) > 3 else ""
    return f" (only files not named like Parquet: {names}{more})"


def _hive_keys(relative_dir: str) -> dict:
    keys = {}
    if relative_dir in ("", "."):
        return keys
    for part in Path(relative_dir).parts:
        if "=" in part:
            key, _, value = part.partition("=")
            keys[key] = value
    return keys
