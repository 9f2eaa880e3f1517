"""Where rows come from: paths, directories, globs → Arrow record batches.

This module and :mod:`streamreg.io.listing` are the only ones that open data files. A
:class:`Source` is resolved once (file list, footers, Hive partitions, per-file schemas); then
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

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from ..errors import DataError, InputError, SchemaError, did_you_mean
from .footers import (
    ParquetFileInfo,
    first_row,
    is_numeric_type,
    null_count_from_footer,
    read_footer,
    typed_partition,
)
from .footers import (
    partition_types as infer_partition_types,
)
from .listing import (
    ListedFile,
    is_url,
    list_files,
    url_filesystem,
    url_protocol,
)
from .scan_files import scan_file_by_file

if TYPE_CHECKING:
    pass


@dataclass
class Chunk:
    """A record batch and where it came from."""

    batch: pa.RecordBatch
    file: ParquetFileInfo
    offset: int  # row offset of the batch's first row within its file

    def describe_row(self, index: int) -> str:
        """'file f.parquet, row group 3' for the batch's ``index``-th row ('row 17 of …' in
        memory)."""
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
        self.skipped: list[str] = []  # files of the input folders not named like Parquet

    # ----------------------------------------------------------------- build
    @classmethod
    def resolve(
        cls,
        source: str | os.PathLike | Sequence[str | os.PathLike],
        *,
        storage_options: dict | None = None,
    ) -> Source:
        """Expand a path, directory, glob, URL or list of them into files and read their footers.

        ``storage_options`` go to fsspec for URL inputs (e.g. ``endpoint_url``)."""
        if isinstance(source, Source):
            return source
        return cls.from_listing(
            list_files(source, storage_options=storage_options), storage_options=storage_options
        )

    @classmethod
    def from_listing(
        cls, listed: Sequence[ListedFile], *, storage_options: dict | None = None
    ) -> Source:
        """Read the footers of files found by :func:`list_files`."""
        urls = {is_url(f.path) for f in listed}
        if len(urls) > 1:
            raise InputError("the inputs mix local paths and URLs; give one kind per source.")
        filesystem = fsspec_fs = None
        if urls == {True}:
            protocols = {url_protocol(f.path) for f in listed}
            if len(protocols) > 1:
                raise InputError(
                    f"the inputs mix URL schemes ({', '.join(sorted(protocols))}); "
                    "give one kind per source."
                )
            fsspec_fs, _ = url_filesystem(listed[0].path, storage_options)
            from pyarrow import fs as pafs

            filesystem = pafs.PyFileSystem(pafs.FSSpecHandler(fsspec_fs))
        partition_types = infer_partition_types([f.partition for f in listed])
        files = [
            read_footer(
                f.path,
                typed_partition(f.partition, partition_types),
                filesystem,
                fsspec_fs._strip_protocol(f.path) if fsspec_fs is not None else None,
                f.size,
            )
            for f in listed
        ]
        src = cls(files, partition_types)
        src.skipped = list(getattr(listed, "skipped", []))
        return src

    def from_row_group(self, path: str, row_group: int) -> Source:
        """The same files, with ``path`` read from its ``row_group``-th row group on.

        Record batches never span row groups, so a scan resumed here yields the
        same batches as the tail of a full scan."""
        files = []
        for info in self.files:
            if info.path == path:
                if not 0 <= row_group <= len(info.row_group_starts):
                    raise InputError(
                        f"{path} has {len(info.row_group_starts)} row groups; "
                        f"cannot start at row group {row_group}."
                    )
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
        """Rows a scan reads (a task's share of a file counts only its row groups)."""
        return sum(f.rows_in_scan for f in self.files)

    @property
    def total_bytes(self) -> int:
        return sum(f.size_bytes for f in self.files)

    def column_type(self, name: str) -> pa.DataType:
        """The column's type; a missing column is an error listing what exists."""
        if name not in self.schema.names:
            raise SchemaError(
                f"column '{name}' is not in the data{did_you_mean(name, self.schema.names)}; "
                f"columns are: {', '.join(self.schema.names)}."
            )
        return self.schema.field(name).type

    def partial_columns(self) -> list[str]:
        """Columns some files have and others lack (a column added in later files)."""
        common = set.intersection(*(set(info.schema.names) for info in self.files))
        return [
            name
            for name in self.schema.names
            if name not in self.partition_types and name not in common
        ]

    def notes(self, used: Sequence[str], default_features: bool = True) -> list[str]:
        """What a pass over the ``used`` columns leaves out of the inputs, in words (not errors):
        files of the input folders not named like Parquet and, when the features were picked
        by default, the columns only some files have."""
        said = []
        if self.skipped:
            names = ", ".join(self.skipped[:3]) + (
                f" and {len(self.skipped) - 3} more" if len(self.skipped) > 3 else ""
            )
            said.append(
                f"skipped {len(self.skipped)} file(s) of the input folders not named like "
                f"Parquet (*.parquet, *.parq, *.pq): {names}."
            )
        for name in self.partial_columns() if default_features else ():
            if name not in used:
                lacking = next(info.path for info in self.files if name not in info.schema.names)
                said.append(
                    f"column '{name}' is only in some of the files (not in {lacking}); "
                    "it was left out of the default features."
                )
        return said

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
                        f"but missing from {info.path}; leave the column out of the model, "
                        "or give only the files that have it."
                    )
                dtype = info.schema.field(name).type
                if first_file is None:
                    first_file, first_type = info, dtype
                elif dtype != first_type and not (
                    is_numeric_type(dtype) and is_numeric_type(first_type)
                ):
                    raise SchemaError(
                        f"files disagree on column '{name}': it is {first_type} in "
                        f"{first_file.path} but {dtype} in {info.path}."
                    )

    # ----------------------------------------------------------------- read
    def batches(
        self, columns: Sequence[str], batch_size: int, *, dictionary: Sequence[str] = ()
    ) -> Iterator[Chunk]:
        """Stream ``columns`` in record batches of at most ``batch_size`` rows, file by file.

        Only the named columns are decoded. Hive partition columns are appended
        as constant arrays. Numeric columns whose type differs between files
        are read as float64. Text columns named in ``dictionary`` are read as
        dictionary arrays (codes and a small dictionary per row group, no string
        per row): what category columns need.
        """
        import pyarrow.dataset as ds

        self.check_columns(columns)
        data_columns = [c for c in columns if c not in self.partition_types]
        part_columns = [c for c in columns if c in self.partition_types]
        by_location = {info.location: info for info in self.files}
        fields = [self._scan_field(c) for c in data_columns]
        coded = {
            f.name
            for f in fields
            if f.name in set(dictionary)
            and (pa.types.is_string(f.type) or pa.types.is_large_string(f.type))
        }
        fields = [
            pa.field(f.name, pa.dictionary(pa.int32(), f.type)) if f.name in coded else f
            for f in fields
        ]
        scan_schema = pa.schema(fields)
        dataset = ds.dataset(
            list(by_location),
            schema=scan_schema,
            format=ds.ParquetFileFormat(
                read_options=ds.ParquetReadOptions(dictionary_columns=coded)
            )
            if coded
            else "parquet",
            filesystem=self.files[0].filesystem,
        )
        offsets = {info.path: first_row(info) for info in self.files}
        reading: list = [None]  # the file being scanned, for a message naming it
        try:
            for location, batch in scan_file_by_file(
                dataset, scan_schema, data_columns, batch_size, by_location, reading
            ):
                info = by_location[location]
                if part_columns:
                    batch = _with_constants(
                        batch,
                        {c: info.partition.get(c) for c in part_columns},
                        self.partition_types,
                    )
                yield Chunk(batch, info, offsets[info.path])
                offsets[info.path] += batch.num_rows
        except (pa.ArrowInvalid, OSError) as exc:
            info = by_location.get(reading[0])
            where = ""
            if info is not None:
                offset = offsets[info.path]
                group = f", row group {info.row_group_of(offset)}" if offset < info.num_rows else ""
                where = f" of {info.path}{group}"
            reason = " ".join(str(exc).split()).rstrip(".")
            raise DataError(
                f"could not read the Parquet data{where}: {reason}; the file is damaged: "
                "restore it or leave it out of the inputs."
            ) from exc

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
                count = null_count_from_footer(info, name)
                total = None if (count is None or total is None) else total + count
            nulls[name] = total
        return {
            "files": [
                {
                    "path": f.path,
                    "rows": f.num_rows,
                    "bytes": f.size_bytes,
                    "row_groups": len(f.row_group_starts),
                }
                for f in self.files
            ],
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
        info = ParquetFileInfo(
            path=name,
            num_rows=table.num_rows,
            size_bytes=table.nbytes,
            schema=table.schema,
            row_group_starts=(),
        )
        super().__init__([info], {})

    def batches(
        self, columns: Sequence[str], batch_size: int, *, dictionary: Sequence[str] = ()
    ) -> Iterator[Chunk]:
        self.check_columns(columns)
        offset = 0
        for batch in self.table.select(list(columns)).to_batches(max_chunksize=batch_size):
            yield Chunk(batch, self.files[0], offset)
            offset += batch.num_rows


# ---------------------------------------------------------------------- helpers


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
