"""One Parquet file as the footer describes it: rows, row groups, schema, Hive partition values.

Reading a footer costs a few kilobytes whatever the file's size; everything here
is decided from footers (and directory names) without decoding any data.
"""

from __future__ import annotations

import bisect
import hashlib
import os
from collections import Counter
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import DataError, InputError, SchemaError
from .listing import describe_storage_error

HIVE_NULL = "__HIVE_DEFAULT_PARTITION__"


def is_numeric_type(dtype: pa.DataType) -> bool:
    """Integer, floating, boolean and decimal columns can be read as float64."""
    return (
        pa.types.is_integer(dtype)
        or pa.types.is_floating(dtype)
        or pa.types.is_boolean(dtype)
        or pa.types.is_decimal(dtype)
    )


@dataclass(frozen=True)
class ParquetFileInfo:
    """One input file: its footer facts and the Hive partition values of its path."""

    path: str
    num_rows: int
    size_bytes: int
    schema: pa.Schema
    row_group_starts: tuple[int, ...]
    partition: dict = field(default_factory=dict)
    # For a URL input: the pyarrow filesystem it is read through and its path there.
    filesystem: object = field(default=None, compare=False, repr=False)
    fs_path: str | None = None
    first_row_group: int = 0  # row groups before this one are skipped (a resumed scan)
    stop_row_group: int | None = None  # row groups from this one on are skipped (a task's share)

    @property
    def location(self) -> str:
        """The path to open: within ``filesystem`` for a URL input, else the local path."""
        return self.fs_path if self.fs_path is not None else self.path

    @property
    def row_groups(self) -> range:
        """The row groups a scan of this file reads."""
        stop = len(self.row_group_starts) if self.stop_row_group is None else self.stop_row_group
        return range(self.first_row_group, stop)

    @property
    def is_whole(self) -> bool:
        """Whether a scan reads every row group of the file."""
        return self.first_row_group == 0 and self.stop_row_group is None

    @property
    def rows_in_scan(self) -> int:
        """Rows a scan of this file reads (all of them unless it covers only some row groups)."""
        if self.is_whole:
            return self.num_rows
        groups = self.row_groups
        if not groups:
            return 0
        starts = (*self.row_group_starts, self.num_rows)
        return starts[groups.stop] - starts[groups.start]

    def row_group_of(self, row: int) -> int:
        """Index of the row group holding the file's ``row``-th row (0-based)."""
        return bisect.bisect_right(self.row_group_starts, row) - 1


def footer_digest(info: ParquetFileInfo) -> str:
    """SHA-256 of the file's footer (metadata, its length and the magic): a content fingerprint.

    Reads only the footer, so it is cheap even for a large file on object storage."""
    try:
        handle = (
            info.filesystem.open_input_file(info.location)
            if info.filesystem is not None
            else open(info.path, "rb")
        )
        with handle:
            size = info.size_bytes
            handle.seek(max(size - 8, 0))
            tail = handle.read(8)
            length = int.from_bytes(tail[:4], "little") if len(tail) == 8 else -1
            if tail[4:] != b"PAR1" or not 0 <= length <= size - 12:
                raise DataError(
                    f"{info.path} is not a readable Parquet file (no footer at its end)."
                )
            handle.seek(size - 8 - length)
            footer = handle.read(length)
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataError(f"{info.path} is not a readable Parquet file ({exc}).") from exc
    return hashlib.sha256(footer + tail).hexdigest()


def partition_types(parts: list[dict]) -> dict[str, pa.DataType]:
    keys: dict[str, list[str]] = {}
    for part in parts:
        for k, v in part.items():
            keys.setdefault(k, []).append(v)
    types = {}
    for key, values in keys.items():
        present = [v for v in values if v != HIVE_NULL]
        if len(values) != len(parts):
            types[key] = pa.string()
        elif all(_parses(v, int) for v in present):
            types[key] = pa.int64()
        elif all(_parses(v, float) for v in present):
            types[key] = pa.float64()
        else:
            types[key] = pa.string()
    return types


def _parses(value: str, kind) -> bool:
    try:
        kind(value)
    except ValueError:
        return False
    return True


def typed_partition(part: dict, types: dict[str, pa.DataType]) -> dict:
    typed = {}
    for key, dtype in types.items():
        raw = part.get(key)
        if raw is None or raw == HIVE_NULL:
            typed[key] = None
        elif pa.types.is_int64(dtype):
            typed[key] = int(raw)
        elif pa.types.is_float64(dtype):
            typed[key] = float(raw)
        else:
            typed[key] = raw
    return typed


def read_footer(
    path: str, partition: dict, filesystem=None, fs_path: str | None = None, size: int | None = None
) -> ParquetFileInfo:
    try:
        meta = pq.read_metadata(fs_path or path, filesystem=filesystem)
        schema = meta.schema.to_arrow_schema()
    except UnicodeDecodeError as exc:
        raise SchemaError(
            f"{path} has a column name that is not valid UTF-8 ({bytes(exc.object[:40])!r}); "
            "rename the column where the file is written."
        ) from None
    except (pa.ArrowInvalid, OSError) as exc:
        reason = " ".join(str(exc).split()).rstrip(".")
        raise DataError(
            f"{path} is not a readable Parquet file ({reason}); restore it, or leave it out of "
            "the inputs."
        ) from exc
    except Exception as exc:  # noqa: BLE001 - object-store errors come in many families
        if filesystem is None:
            raise
        raise InputError(f"cannot read {path}: {describe_storage_error(exc)}.") from exc
    repeated = [name for name, count in Counter(schema.names).items() if count > 1]
    if repeated:
        raise SchemaError(
            f"{path} has {Counter(schema.names)[repeated[0]]} columns named '{repeated[0]}'; "
            "every column needs a name of its own: rename them where the file is written."
        )
    starts, row = [], 0
    for i in range(meta.num_row_groups):
        starts.append(row)
        row += meta.row_group(i).num_rows
    return ParquetFileInfo(
        path=path,
        num_rows=meta.num_rows,
        size_bytes=os.path.getsize(path) if size is None else size,
        schema=schema,
        row_group_starts=tuple(starts) or (0,),
        partition=partition,
        filesystem=filesystem,
        fs_path=fs_path,
    )


def first_row(info: ParquetFileInfo) -> int:
    """Row offset in its file of the first row a scan of ``info`` reads."""
    if info.first_row_group == 0:
        return 0
    if info.first_row_group >= len(info.row_group_starts):
        return info.num_rows
    return info.row_group_starts[info.first_row_group]


def null_count_from_footer(info: ParquetFileInfo, name: str) -> int | None:
    if name not in info.schema.names:
        return info.num_rows
    try:
        meta = pq.read_metadata(info.location, filesystem=info.filesystem)
        index = meta.schema.to_arrow_schema().get_field_index(name)
        leaf = [
            i for i in range(meta.num_columns) if meta.schema.column(i).path.split(".")[0] == name
        ]
        if index < 0 or len(leaf) != 1:
            return None
        total = 0
        for g in range(meta.num_row_groups):
            stats = meta.row_group(g).column(leaf[0]).statistics
            if stats is None or not stats.has_null_count:
                return None
            total += stats.null_count
        return total
    except (pa.ArrowInvalid, OSError):
        return None
