"""Passes in this process: the local runner.

:class:`LocalRunner` has the two verbs every runner has — ``map_reduce`` (a task
per block, results merged in the fixed pairwise tree of
:mod:`streamreg.engine.merge`) and ``fold`` (an ordered chain of steps that carries
a value from block to block, as SGD's epochs do). It shows a progress line on a
terminal and runs BLAS beside Arrow's decoding threads; it never imports dask.

>>> import numpy as np, pyarrow as pa
>>> from streamreg.design import DesignSpec
>>> from streamreg.engine.blocks import Blocks
>>> from streamreg.io.sources import InMemorySource
>>> src = InMemorySource(pa.table({"x": np.arange(10.0), "y": np.arange(10.0)}))
>>> blocks = Blocks.slices(src, DesignSpec.resolve(src.schema, target="y"), batch_size=4)
>>> def rows(source, index, spec, batch_size, *, on_rows=None):
...     return source.total_rows
>>> LocalRunner().map_reduce(blocks, rows)
10
"""

from __future__ import annotations

import operator
import os
from collections.abc import Callable, Sequence

from ..progress import Progress
from .blocks import Blocks
from .merge import reduce_in_order


def blas_beside_decoding():
    """Limit BLAS to half the cores for a pass, leaving the rest to Arrow's decoding threads.

    OpenBLAS threads wait for each other by spinning, so a threaded ``syrk``
    whose partner thread has lost its core to decoding stalls: on 2 cores a fit
    of 1M rows × 200 columns took 6 s with one BLAS thread and 17-25 s with two.
    The limit is process-wide, so it is set only around passes that this
    process runs itself (Dask workers already run BLAS single-threaded).
    """
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=max(1, (os.cpu_count() or 1) // 2), user_api="blas")


class LocalRunner:
    """Runs a pass's tasks one after another in this process.

    ``progress``: True, False, or None for "only on a terminal".
    """

    def __init__(self, *, progress: bool | None = False):
        self.progress = progress

    def _bar(self, blocks: Blocks, label: str) -> Progress:
        return Progress(
            blocks.total_rows or 0,
            blocks.total_bytes or 0,
            label=label,
            enabled=self.progress if blocks.total_rows else False,
        )

    def map_reduce(
        self,
        blocks: Blocks,
        task: Callable,
        *args,
        label: str = "reading",
        combine: Callable = operator.add,
    ):
        """``task(source, i, spec, batch_size, *args)`` for every block, merged in the fixed
        tree."""
        bar = self._bar(blocks, label)
        try:
            with blas_beside_decoding():
                results = (
                    task(
                        blocks.open_part(part, i),
                        i,
                        blocks.spec,
                        blocks.batch_size,
                        *args,
                        on_rows=bar.advance,
                    )
                    for i, part in enumerate(blocks.parts)
                )
                return reduce_in_order(results, combine)
        finally:
            bar.close()

    def fold(
        self,
        blocks: Blocks,
        order: Sequence[int],
        step: Callable,
        carry,
        *args,
        label: str = "steps",
    ):
        """``carry = step(source, i, spec, batch_size, carry, *args)`` for the blocks in
        ``order``."""
        bar = self._bar(blocks, label)
        try:
            with blas_beside_decoding():
                for i in order:
                    i = int(i)
                    carry = step(
                        blocks.open_part(blocks.parts[i], i),
                        i,
                        blocks.spec,
                        blocks.batch_size,
                        carry,
                        *args,
                        on_rows=bar.advance,
                    )
            return carry
        finally:
            bar.close()
