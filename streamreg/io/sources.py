"""Where rows come from: paths, directories, globs → Arrow record batches.

This module and :mod:`streamreg.io.listing` are the only ones that open data files. A :class:`Source` is resolved
once (file list, footers, Hive partitions, per-file schemas); then
:meth:`Source.batches` streams only the requested columns in record batches of
bounded size, each tagged with the file it came from and its row offset there.

Inputs may also be fsspec URLs (``s3://bucket/prefix/``, globs included, with
``storage_options`` such as ``endpoint_url``); they are listed through fsspec and
read through pyarrow with that filesystem. :func:`list_files` only lists (path,
size, modification time or ETag) without opening a file, which is what an
incremental job needs to decide that nothing is new.

>>> import tempfile, pathlib, pyarrow as pa, pyarrow.parquet as pq
>>> root = pathlib.Path(tempfile.mkdtemp())
>>> pq.write_table(pa.table({"x": [1.0, 2.0], "y": [3.0, 5.0]}), root / "part.parquet")
>>> src = Source.resolve(root)
>>> src.total_rows, [f.name for f in src.schema]
(2, ['x', 'y'])
"""

from __future__ import annotations

import bisect
import hashlib
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from ..errors import DataError, InputError, SchemaError
from .listing import (
    ListedFile,
    describe_storage_error,
    is_url,
    list_files,
    url_filesystem,
    url_protocol,
)

HIVE_NULL = "__HIVE_DEFAULT_PARTITION__"
# Decoded-batch readahead: enough to overlap decoding with the math, small
# enough that memory stays a few batches wide (see DESIGN.md, Speed and memory).
BATCH_READAHEAD = 2
# Parquet's pre-buffering coalesces whole row groups into big reads, which pays
# on object stores; on local files it only costs memory (~300 MB more peak RSS
# at 21 columns) and system time.
PARQUET_SCAN_OPTIONS = ds.ParquetFragmentScanOptions(pre_buffer=False)


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

    @property
    def location(self) -> str:
        """The path to open: within ``filesystem`` for a URL input, else the local path."""
        return self.fs_path if self.fs_path is not None else self.path

    def row_group_of(self, row: int) -> int:
        """Index of the row group holding the file's ``row``-th row (0-based)."""
        return bisect.bisect_right(self.row_group_starts, row) - 1


@dataclass
class Chunk:
    """A record batch and where it came from."""

    batch: pa.RecordBatch
    file: ParquetFileInfo
    offset: int  # row offset of the batch's first row within its file

    def describe_row(self, index: int) -> str:
        """'file f.parquet, row group 3' for the batch's ``index``-th row ('row 17 of …' in memory)."""
        row = self.offset + int(index)
        if not self.file.row_group_starts:
            return f"row {row} of {self.file.path}"
        return f"{self.file.path}, row group {self.file.row_group_of(row)}"


class Source:
    """A resolved set of Parquet files with a common view of their columns."""

    def __init__(self, files: list[ParquetFileInfo], partition_types: dict[str, pa.DataType]):
        if not files:
            raise InputError("no Parquet files to read.")
        self.files = files
        self.partition_types = partition_types
        self.schema = self._combined_schema()

    # ----------------------------------------------------------------- build
    @classmethod
    def resolve(cls, source: str | os.PathLike | Sequence[str | os.PathLike], *,
                storage_options: dict | None = None) -> Source:
        """Expand a path, directory, glob, URL or list of them into files and read their footers.

        ``storage_options`` go to fsspec for URL inputs (e.g. ``endpoint_url``)."""
        if isinstance(source, Source):
            return source
        return cls.from_listing(list_files(source, storage_options=storage_options),
                                storage_options=storage_options)

    @classmethod
    def from_listing(cls, listed: Sequence[ListedFile], *, storage_options: dict | None = None) -> Source:
        """Read the footers of files found by :func:`list_files`."""
        urls = {is_url(f.path) for f in listed}
        if len(urls) > 1:
            raise InputError("the inputs mix local paths and URLs; give one kind per source.")
        filesystem = fsspec_fs = None
        if urls == {True}:
            protocols = {url_protocol(f.path) for f in listed}
            if len(protocols) > 1:
                raise InputError(f"the inputs mix URL schemes ({', '.join(sorted(protocols))}); "
                                 "give one kind per source.")
            fsspec_fs, _ = url_filesystem(listed[0].path, storage_options)
            from pyarrow import fs as pafs

            filesystem = pafs.PyFileSystem(pafs.FSSpecHandler(fsspec_fs))
        partition_types = _partition_types([f.partition for f in listed])
        files = [_read_footer(f.path, _typed_partition(f.partition, partition_types), filesystem,
                              fsspec_fs._strip_protocol(f.path) if fsspec_fs is not None else None,
                              f.size)
                 for f in listed]
        return cls(files, partition_types)

    def from_row_group(self, path: str, row_group: int) -> Source:
        """The same files, with ``path`` read from its ``row_group``-th row group on.

        Record batches never span row groups, so a scan resumed here yields the
        same batches as the tail of a full scan."""
        files = []
        for info in self.files:
            if info.path == path:
                if not 0 <= row_group <= len(info.row_group_starts):
                    raise InputError(f"{path} has {len(info.row_group_starts)} row groups; "
                                     f"cannot start at row group {row_group}.")
                info = replace(info, first_row_group=row_group)
            files.append(info)
        return Source(files, self.partition_types)

    def _combined_schema(self) -> pa.Schema:
        fields: dict[str, pa.Field] = {}
        for info in self.files:
            for f in info.schema:
                fields.setdefault(f.name, f)
        for name, dtype in self.partition_types.items():
            if name in fields:
                raise SchemaError(
                    f"the Hive partition key '{name}' in the directory names is also a column "
                    f"inside {self._first_with(name)}; rename one of them."
                )
            fields[name] = pa.field(name, dtype)
        return pa.schema(list(fields.values()))

    def _first_with(self, column: str) -> str:
        for info in self.files:
            if column in info.schema.names:
                return info.path
        return "?"

    # ----------------------------------------------------------------- facts
    @property
    def total_rows(self) -> int:
        return sum(f.num_rows for f in self.files)

    @property
    def total_bytes(self) -> int:
        return sum(f.size_bytes for f in self.files)

    def column_type(self, name: str) -> pa.DataType:
        """The column's type; a missing column is an error listing what exists."""
        if name not in self.schema.names:
            raise SchemaError(
                f"column '{name}' is not in the data; columns are: {', '.join(self.schema.names)}."
            )
        return self.schema.field(name).type

    def check_columns(self, columns: Sequence[str]) -> None:
        """Every used column exists in every file, with a numeric type in all of them."""
        for name in columns:
            self.column_type(name)
            if name in self.partition_types:
                continue
            first_file = None
            for info in self.files:
                if name not in info.schema.names:
                    holder = self._first_with(name)
                    raise SchemaError(
                        f"files disagree on column '{name}': it is in {holder} "
                        f"but missing from {info.path}."
                    )
                dtype = info.schema.field(name).type
                if first_file is None:
                    first_file, first_type = info, dtype
                elif dtype != first_type and not (is_numeric_type(dtype) and is_numeric_type(first_type)):
                    raise SchemaError(
                        f"files disagree on column '{name}': it is {first_type} in "
                        f"{first_file.path} but {dtype} in {info.path}."
                    )

    # ----------------------------------------------------------------- read
    def batches(self, columns: Sequence[str], batch_size: int) -> Iterator[Chunk]:
        """Stream ``columns`` in record batches of at most ``batch_size`` rows, file by file.

        Only the named columns are decoded. Hive partition columns are appended
        as constant arrays. Numeric columns whose type differs between files
        are read as float64.
        """
        self.check_columns(columns)
        data_columns = [c for c in columns if c not in self.partition_types]
        part_columns = [c for c in columns if c in self.partition_types]
        by_path = {info.path: info for info in self.files}
        by_location = {info.location: info for info in self.files}
        scan_schema = pa.schema([self._scan_field(c) for c in data_columns])
        dataset = ds.dataset(list(by_location), schema=scan_schema, format="parquet",
                             filesystem=self.files[0].filesystem)
        offsets = {info.path: _first_row(info) for info in self.files}
        try:
            for location, batch in _scan_file_by_file(dataset, scan_schema, data_columns, batch_size,
                                                      by_location):
                info = by_location[location]
                if part_columns:
                    batch = _with_constants(batch, {c: info.partition.get(c) for c in part_columns},
                                            self.partition_types)
                yield Chunk(batch, info, offsets[info.path])
                offsets[info.path] += batch.num_rows
        except (pa.ArrowInvalid, OSError) as exc:
            current = next((p for p, o in offsets.items() if 0 < o < by_path[p].num_rows), None)
            where = f" while reading {current}" if current else ""
            raise DataError(f"could not read the Parquet data{where}: {exc}") from exc

    def _scan_field(self, name: str) -> pa.Field:
        types = {info.schema.field(name).type for info in self.files}
        if len(types) == 1:
            return pa.field(name, types.pop())
        return pa.field(name, pa.float64())

    # ----------------------------------------------------------------- inspect
    def describe(self) -> dict:
        """Schema, row counts and null counts from the footers (no data is decoded)."""
        nulls: dict[str, int | None] = {}
        for name in self.schema.names:
            if name in self.partition_types:
                nulls[name] = sum(f.num_rows for f in self.files if f.partition.get(name) is None)
                continue
            total: int | None = 0
            for info in self.files:
                count = _null_count_from_footer(info, name)
                total = None if (count is None or total is None) else total + count
            nulls[name] = total
        return {
            "files": [{"path": f.path, "rows": f.num_rows, "bytes": f.size_bytes,
                       "row_groups": len(f.row_group_starts)} for f in self.files],
            "rows": self.total_rows,
            "bytes": self.total_bytes,
            "columns": [
                {
                    "name": f.name,
                    "type": str(f.type),
                    "numeric": is_numeric_type(f.type),
                    "partition": f.name in self.partition_types,
                    "nulls": nulls[f.name],
                }
                for f in self.schema
            ],
        }


class InMemorySource(Source):
    """An Arrow table (a pandas frame, arrays, a Dask partition) read through the same engine.

    ``name`` stands where a file name would in messages ("row 17 of dask partition 3").
    """

    def __init__(self, table: pa.Table, name: str = "the data"):
        self.table = table
        info = ParquetFileInfo(path=name, num_rows=table.num_rows, size_bytes=table.nbytes,
                               schema=table.schema, row_group_starts=())
        super().__init__([info], {})

    def batches(self, columns: Sequence[str], batch_size: int) -> Iterator[Chunk]:
        self.check_columns(columns)
        offset = 0
        for batch in self.table.select(list(columns)).to_batches(max_chunksize=batch_size):
            yield Chunk(batch, self.files[0], offset)
            offset += batch.num_rows


def footer_digest(info: ParquetFileInfo) -> str:
    """SHA-256 of the file's footer (metadata, its length and the magic): a content fingerprint.

    Reads only the footer, so it is cheap even for a large file on object storage."""
    try:
        handle = (info.filesystem.open_input_file(info.location) if info.filesystem is not None
                  else open(info.path, "rb"))
        with handle:
            size = info.size_bytes
            handle.seek(max(size - 8, 0))
            tail = handle.read(8)
            length = int.from_bytes(tail[:4], "little") if len(tail) == 8 else -1
            if tail[4:] != b"PAR1" or not 0 <= length <= size - 12:
                raise DataError(f"{info.path} is not a readable Parquet file (no footer at its end).")
            handle.seek(size - 8 - length)
            footer = handle.read(length)
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataError(f"{info.path} is not a readable Parquet file ({exc}).") from exc
    return hashlib.sha256(footer + tail).hexdigest()


# ---------------------------------------------------------------------- helpers
def _partition_types(parts: list[dict]) -> dict[str, pa.DataType]:
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


def _typed_partition(part: dict, types: dict[str, pa.DataType]) -> dict:
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


def _read_footer(path: str, partition: dict, filesystem=None, fs_path: str | None = None,
                 size: int | None = None) -> ParquetFileInfo:
    try:
        meta = pq.read_metadata(fs_path or path, filesystem=filesystem)
        schema = meta.schema.to_arrow_schema()
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataError(f"{path} is not a readable Parquet file ({exc}).") from exc
    except Exception as exc:  # noqa: BLE001 - object-store errors come in many families
        if filesystem is None:
            raise
        raise InputError(f"cannot read {path}: {describe_storage_error(exc)}.") from exc
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


def _first_row(info: ParquetFileInfo) -> int:
    """Row offset in its file of the first row a scan of ``info`` reads."""
    if info.first_row_group == 0:
        return 0
    if info.first_row_group >= len(info.row_group_starts):
        return info.num_rows
    return info.row_group_starts[info.first_row_group]


def _scan_file_by_file(dataset: ds.Dataset, schema: pa.Schema, columns: list[str],
                       batch_size: int, infos: dict | None = None) -> Iterator[tuple[str, pa.RecordBatch]]:
    """(path, batch) for each batch of ``dataset``, one file scanned at a time.

    A scan of the whole dataset decodes later files while an earlier one is
    still being consumed and holds their batches back to keep the order; with a
    consumer busy in BLAS that backlog reached ~0.5 GB at 21 columns and grew
    with the number of files. One scanner per file keeps memory bounded by its
    read-ahead, at the price of a pause of one batch's decoding between files.
    """
    for fragment in dataset.get_fragments():
        info = (infos or {}).get(fragment.path)
        if info is not None and info.first_row_group:
            # Resume at a row-group boundary: batches never span row groups.
            groups = list(range(info.first_row_group, len(info.row_group_starts)))
            if not groups:
                continue
            fragment = fragment.subset(row_group_ids=groups)
        for batch in fragment.to_batches(schema=schema, columns=columns, batch_size=batch_size,
                                         use_threads=True, batch_readahead=BATCH_READAHEAD,
                                         fragment_scan_options=PARQUET_SCAN_OPTIONS):
            yield fragment.path, batch


def _null_count_from_footer(info: ParquetFileInfo, name: str) -> int | None:
    if name not in info.schema.names:
        return info.num_rows
    try:
        meta = pq.read_metadata(info.location, filesystem=info.filesystem)
        index = meta.schema.to_arrow_schema().get_field_index(name)
        leaf = [i for i in range(meta.num_columns) if meta.schema.column(i).path.split(".")[0] == name]
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


def _with_constants(batch: pa.RecordBatch, values: dict, types: dict) -> pa.RecordBatch:
    arrays = list(batch.columns)
    names = list(batch.schema.names)
    for name, value in values.items():
        dtype = types[name]
        if value is None:
            arrays.append(pa.nulls(batch.num_rows, dtype))
        elif pa.types.is_string(dtype):
            arrays.append(pa.array([value] * batch.num_rows, dtype))
        else:
            arrays.append(pa.array(np.full(batch.num_rows, value), dtype))
        names.append(name)
    return pa.RecordBatch.from_arrays(arrays, names=names)
