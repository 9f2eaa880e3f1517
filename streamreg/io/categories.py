"""Reading only the category columns of a source, cheaply: the level-discovery read.

Before the main pass of a fit with categories, every distinct value of each
category column must be known (so a level first seen in the last file still gets
its column). This read decodes only those columns: text columns of Parquet files
are read as *dictionary* arrays (``read_dictionary``), so a batch costs its
dictionary indices and a small dictionary rather than one Python string per row;
Hive partition columns cost nothing (their values are in the paths), and a file
read only for partition values is not opened at all.

>>> import pyarrow as pa
>>> from streamreg.io.sources import InMemorySource
>>> table = pa.table({"g": ["b", "a", "b"], "x": [1.0, 2.0, 3.0]})
>>> [(batch.num_rows, where) for batch, where in category_batches(InMemorySource(table), ["g"])]
[(3, 'the data')]
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import DataError
from .sources import InMemorySource, Source

DISCOVERY_BATCH_ROWS = 1 << 20


def is_text_type(dtype: pa.DataType) -> bool:
    """String and dictionary columns."""
    return (
        pa.types.is_string(dtype)
        or pa.types.is_large_string(dtype)
        or pa.types.is_dictionary(dtype)
        or getattr(pa.types, "is_string_view", lambda _: False)(dtype)
    )


def category_batches(
    source: Source, columns: Sequence[str], batch_size: int = DISCOVERY_BATCH_ROWS
) -> Iterator[tuple[pa.RecordBatch, str]]:
    """``(batch, where)`` over ``columns`` only, file by file; text columns as dictionaries.

    ``where`` names the file (or the in-memory data) the batch came from."""
    columns = list(dict.fromkeys(columns))
    source.check_columns(columns)
    if isinstance(source, InMemorySource):
        for batch in source.table.select(columns).to_batches(max_chunksize=batch_size):
            yield batch, source.files[0].path
        return
    partition = [c for c in columns if c in source.partition_types]
    data = [c for c in columns if c not in source.partition_types]
    for info in source.files:
        if not data:
            arrays = [
                pa.array([info.partition.get(c)], source.partition_types[c]) for c in partition
            ]
            yield pa.record_batch(arrays, names=partition), info.path
            continue
        text = [c for c in data if is_text_type(info.schema.field(c).type)]
        try:
            handle = pq.ParquetFile(info.location, filesystem=info.filesystem, read_dictionary=text)
            groups = list(range(info.first_row_group, handle.num_row_groups))
            for batch in handle.iter_batches(
                columns=data, batch_size=batch_size, row_groups=groups
            ):
                for c in partition:
                    value = info.partition.get(c)
                    constant = pa.array([value] * batch.num_rows, source.partition_types[c])
                    batch = batch.append_column(c, constant)
                yield batch, info.path
        except (pa.ArrowInvalid, OSError) as exc:
            raise DataError(f"could not read the categories of {info.path}: {exc}") from exc
