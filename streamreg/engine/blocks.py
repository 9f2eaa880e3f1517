"""The data of a pass, described once: blocks, how to open one, the design, the batch size.

A :class:`Blocks` is what every runner visits. ``parts`` are whatever a task turns
into a :class:`~streamreg.io.sources.Source` — a local source, a slice of
in-memory data, a Dask partition or a block of rows of Dask arrays — and
``open_part(part, index)`` does that wherever the task runs (in this process or
on a worker). Tasks are plain module-level functions
``task(source, index, spec, batch_size, *args, on_rows=None)``, so they pickle by
reference and run the same everywhere.

>>> import numpy as np, pyarrow as pa
>>> from streamreg.design import DesignSpec
>>> from streamreg.io.sources import InMemorySource
>>> src = InMemorySource(pa.table({"x": np.arange(10.0), "y": np.arange(10.0)}))
>>> blocks = Blocks.slices(src, DesignSpec.resolve(src.schema, target="y"), batch_size=4)
>>> len(blocks), [b.total_rows for b in blocks.parts]
(3, [4, 4, 2])
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..design import DesignSpec
from ..errors import InputError
from ..io.sources import InMemorySource, Source


def open_source(part, index: int) -> Source:
    """``open_part`` for parts that already are sources."""
    return part


@dataclass(frozen=True)
class Blocks:
    """The blocks of a pass; see the module docstring."""

    parts: list
    open_part: Callable
    spec: DesignSpec
    batch_size: int
    total_rows: int | None = None  # for a progress line, when known without reading
    total_bytes: int | None = None

    def __post_init__(self):
        if not self.parts:
            raise InputError("the data has no blocks to read.")

    def __len__(self) -> int:
        return len(self.parts)

    @classmethod
    def whole(cls, src: Source, spec: DesignSpec, batch_size: int) -> Blocks:
        """One block: the whole source, read in order (the running-mean shift carries across
        files)."""
        return cls([src], open_source, spec, batch_size, src.total_rows, src.total_bytes)

    @classmethod
    def per_file(cls, src: Source, spec: DesignSpec, batch_size: int) -> Blocks:
        """One block per file (a Dask task each, or a step of a gradient epoch)."""
        if isinstance(src, InMemorySource):
            return cls.slices(src, spec, batch_size)
        parts = [Source([info], src.partition_types) for info in src.files]
        return cls(parts, open_source, spec, batch_size, src.total_rows, src.total_bytes)

    @classmethod
    def slices(cls, src: InMemorySource, spec: DesignSpec, batch_size: int) -> Blocks:
        """Blocks of in-memory data: slices of ``batch_size`` rows."""
        table = src.table
        name = src.files[0].path
        parts = [
            InMemorySource(
                table.slice(s, batch_size), name=f"{name} (rows {s}–{s + batch_size - 1})"
            )
            for s in range(0, max(table.num_rows, 1), batch_size)
        ]
        return cls(parts, open_source, spec, batch_size, src.total_rows, src.total_bytes)
