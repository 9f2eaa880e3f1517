"""Record batches of Parquet files, one file scanned at a time, the next file started early.

A scan of a whole dataset decodes later files while an earlier one is still being
consumed and holds their batches back to keep the order; with a consumer busy in BLAS
that backlog reached ~0.5 GB at 21 columns and grew with the number of files. So each
file gets a scanner of its own, whose read-ahead (a few batches) bounds the memory.

Between files such a scan would pause: the next file's scanner set up and its first
batch decoded only when the consumer asks for it, with the decoding threads idle
during the consumer's work on the previous file's last batches. On 10M × 20 in 20 files,
even with the next file started as the current one's last batch was handed over, the
consumer still waited 0.23 s in all for those starts (``cProfile``): opening a file and
decoding its first batch takes longer than one batch's products. Here the next file's
scanner is opened and its first batch
decoded on a helper thread once the current file has :data:`START_NEXT_BATCHES` batches
left (known from the footers' row counts). Starting it earlier hides more but holds two
scanners' buffers for longer (started with the current file: ~160 MiB more peak RSS for
``streamreg fit`` on 10M × 20 in 8 files); five batches before the end cost ~60 MiB (361-381
→ 433-440 MiB) and brought the accumulation of the 20 files from 1.13 s to
0.99-1.04 s (best of 4, two alternations).

>>> import pyarrow as pa, pyarrow.parquet as pq, pyarrow.dataset as ds, tempfile, os
>>> folder = tempfile.mkdtemp()
>>> for k in range(3):
...     pq.write_table(pa.table({"x": [float(k)] * 5}), os.path.join(folder, f"{k}.parquet"))
>>> dataset = ds.dataset(folder)
>>> [(os.path.basename(p), b.num_rows) for p, b in scan_file_by_file(dataset, dataset.schema,
...                                                                   ["x"], 2)][:4]
[('0.parquet', 2), ('0.parquet', 2), ('0.parquet', 1), ('1.parquet', 2)]
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pyarrow as pa

# Decoded-batch readahead: enough to overlap decoding with the math, small
# enough that memory stays a few batches wide (see DESIGN.md, Speed and memory).
BATCH_READAHEAD = 2
# Parquet's pre-buffering coalesces whole row groups into big reads, which pays
# on object stores; on local files it only costs memory (~300 MB more peak RSS
# at 21 columns) and system time.
# Page checksums (CRC32), where the producer wrote them, are verified: a flipped bit in a data
# page is then an error naming the file instead of a silently wrong value.
# (The keyword arguments of ds.ParquetFragmentScanOptions: pyarrow.dataset imports pandas, so
# it is imported when a scan starts, not with this module.)
# How many batches before a file's end the next file is started (see above).
START_NEXT_BATCHES = 5
PARQUET_SCAN_OPTIONS = {"pre_buffer": False, "page_checksum_verification": True}
# Local files are read through a small buffered stream instead of whole column chunks: a
# chunk read whole is a fresh block-sized allocation filled by one big copy (84 MB for a
# 500k-row group of 21 columns) before its first page decodes. Decoding 10M × 20 in 8 files
# took 0.50 instead of 0.57-0.63 s (1.01 instead of 1.23 CPU-s), a 500k-row group 19 instead
# of 30 ms. Not on object stores, where each small read could be a request of its own.
LOCAL_SCAN_OPTIONS = {"use_buffered_stream": True, "buffer_size": 1 << 16}


def parquet_scan_options(filesystem) -> dict:
    """The Parquet reader's options for files on ``filesystem`` (a ``pyarrow.fs`` one)."""
    from pyarrow.fs import LocalFileSystem

    local = isinstance(filesystem, LocalFileSystem)
    return {**PARQUET_SCAN_OPTIONS, **(LOCAL_SCAN_OPTIONS if local else {})}


def scan_file_by_file(
    dataset,
    schema: pa.Schema,
    columns: list[str],
    batch_size: int,
    infos: dict | None = None,
    reading: list | None = None,
) -> Iterator[tuple[str, pa.RecordBatch]]:
    """(path, batch) for each batch of ``dataset`` (a ``pyarrow.dataset.Dataset``), in file
    order, each file with a scanner of its own, the next one started near this one's end;
    ``infos`` (path → footer info) restricts a file to its row groups in the scan and tells
    where a file ends (without them the next file is started with the current one).
    ``reading[0]`` is set to the path of the file being consumed (an error raised while
    starting a file surfaces when the consumer reaches it)."""
    import pyarrow.dataset as ds

    scan_options = parquet_scan_options(getattr(dataset, "filesystem", None))
    options = dict(
        schema=schema,
        columns=columns,
        batch_size=batch_size,
        use_threads=True,
        batch_readahead=BATCH_READAHEAD,
        fragment_scan_options=ds.ParquetFragmentScanOptions(**scan_options),
    )
    files = []
    for fragment in dataset.get_fragments():
        info = (infos or {}).get(fragment.path)
        if info is not None and not info.is_whole:
            # A resumed scan or a task's share of a file: batches never span row groups.
            groups = list(info.row_groups)
            if not groups:
                continue
            fragment = fragment.subset(row_group_ids=groups)
        files.append((fragment, None if info is None else info.rows_in_scan))

    def start(fragment):
        batches = iter(fragment.to_batches(**options))
        return batches, next(batches, None)

    with ThreadPoolExecutor(1, thread_name_prefix="streamreg-next-file") as ahead:
        upcoming = None
        for k, (fragment, rows) in enumerate(files):
            if reading is not None:
                reading[0] = fragment.path
            batches, batch = start(fragment) if upcoming is None else upcoming.result()
            upcoming, seen = None, 0
            while batch is not None:
                seen += batch.num_rows
                near_end = rows is None or rows - seen <= START_NEXT_BATCHES * batch_size
                if upcoming is None and near_end and k + 1 < len(files):
                    upcoming = ahead.submit(start, files[k + 1][0])
                yield fragment.path, batch
                batch = next(batches, None)
