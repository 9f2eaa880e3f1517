"""The file-by-file scan that starts the next file early: same batches, same order, same
errors as reading each file alone, and no thread left behind.

Oracle: ``pyarrow.parquet.ParquetFile.iter_batches`` over each file (and row-group subset)
on its own, one after the other.
"""

from __future__ import annotations

import threading
from dataclasses import replace

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from streamreg.errors import DataError
from streamreg.io.scan_files import parquet_scan_options
from streamreg.io.sources import Source


@pytest.fixture
def folder(tmp_path):
    """Five files of different lengths and row-group sizes (one of them empty)."""
    rng = np.random.default_rng(11)
    for k, (rows, group) in enumerate([(1000, 300), (0, 10), (2500, 1000), (7, 7), (1200, 100)]):
        x = rng.normal(size=rows)
        pq.write_table(
            pa.table({"x": x, "y": 3 * x + k}), tmp_path / f"part{k}.parquet", row_group_size=group
        )
    return tmp_path


def expected_batches(files, batch_size, groups=None):
    """Each file's row groups (or those of ``groups[path]``) read one by one: a scan's batches
    never span row groups."""
    out = []
    for path in files:
        reader = pq.ParquetFile(path)
        wanted = (groups or {}).get(str(path), range(reader.num_row_groups))
        for g in wanted:
            batches = reader.iter_batches(batch_size, row_groups=[g], columns=["x", "y"])
            out += [(str(path), b) for b in batches]
    return out


def non_empty(batches):
    """An empty file is read as one batch of no rows (as it always was); only rows count."""
    return [item for item in batches if item[1].num_rows]


@pytest.mark.parametrize("batch_size", [1, 64, 1000, 10_000])
def test_batches_are_the_files_read_one_after_the_other(folder, batch_size):
    src = Source.resolve(folder)
    files = sorted(folder.glob("*.parquet"))
    got = non_empty((c.file.path, c.batch) for c in src.batches(["x", "y"], batch_size))
    want = expected_batches(files, batch_size)
    assert [path for path, _ in got] == [path for path, _ in want]
    assert [b.num_rows for _, b in got] == [b.num_rows for _, b in want]
    assert all(g.equals(w) for (_, g), (_, w) in zip(got, want))


def test_row_group_subsets_are_read_as_their_row_groups_alone(folder):
    """A task's share of files (a run of row groups each) reads exactly those row groups."""
    src = Source.resolve(folder)
    subsets, groups = [], {}
    for info in src.files:
        if len(info.row_groups) >= 3:
            info = replace(info, first_row_group=1, stop_row_group=3)
            groups[info.path] = [1, 2]
        subsets.append(info)
    assert len(groups) == 3
    chunks = Source(subsets, {}).batches(["x", "y"], 128)
    got = non_empty((c.file.path, c.batch, c.offset) for c in chunks)
    want = expected_batches([info.path for info in src.files], 128, groups)
    assert [(p, b.num_rows) for p, b, _ in got] == [(p, b.num_rows) for p, b in want]
    assert all(g.equals(w) for (_, g, _), (_, w) in zip(got, want))
    first = {}
    for path, _, offset in got:
        first.setdefault(path, offset)
    for info in subsets:
        if info.path in groups:
            assert first[info.path] == info.row_group_starts[1]  # counted from the file's start


def test_a_consumer_that_stops_early_leaves_no_thread_behind(folder):
    src = Source.resolve(folder)
    batches = src.batches(["x", "y"], 500)
    first = next(batches)
    assert first.batch.num_rows == 300  # one row group; 700 rows left: the next file starts
    assert any(t.name.startswith("streamreg-next-file") for t in threading.enumerate())
    batches.close()  # the next file may be starting on the helper thread: it is waited for
    names = [t.name for t in threading.enumerate()]
    assert not any(name.startswith("streamreg-next-file") for name in names)


def test_a_damaged_later_file_is_named_after_the_earlier_files_were_read(folder):
    """The next file is started early, on another thread; its error still surfaces when the
    consumer reaches it, naming it, after every batch of the files before it."""
    paths = [folder / f"part{k}.parquet" for k in (0, 2, 3)]
    src = Source.resolve(paths)  # footers are read here: damage the last file's data after
    bad = paths[-1]
    column = pq.read_metadata(bad).row_group(0).column(0)
    raw = bytearray(bad.read_bytes())
    raw[column.data_page_offset : column.data_page_offset + 40] = b"\xab" * 40
    bad.write_bytes(bytes(raw))
    seen = 0
    with pytest.raises(DataError, match="part3.parquet") as error:
        for chunk in src.batches(["x", "y"], 100):
            seen += chunk.batch.num_rows
    assert seen == 1000 + 2500  # every row of the files before it
    assert "part0.parquet" not in str(error.value)
    assert "part2.parquet" not in str(error.value)


def test_local_files_are_read_through_a_small_buffer_object_stores_are_not():
    """A buffered stream reads a column chunk in 64 KiB pieces: on local files it saves a
    chunk-sized copy; on an object store each piece could be a request, so it stays off."""
    from pyarrow.fs import FSSpecHandler, LocalFileSystem, PyFileSystem

    fsspec = pytest.importorskip("fsspec")
    local = parquet_scan_options(LocalFileSystem())
    remote = parquet_scan_options(PyFileSystem(FSSpecHandler(fsspec.filesystem("memory"))))
    assert local["use_buffered_stream"] is True and local["buffer_size"] == 1 << 16
    assert "use_buffered_stream" not in remote
    assert local["page_checksum_verification"] and remote["page_checksum_verification"]
    assert not local["pre_buffer"] and not remote["pre_buffer"]
