"""One streaming pass over a source: every batch folded into a mergeable state.

:func:`accumulate` reads each used column once, in record batches, so memory is
bounded by the batch size times the number of columns, never by the number of
rows. Its result, an :class:`Accumulation`, is the state plus what was read to
build it (rows read, rows dropped per column, rows per file, Σ log w); two
accumulations of disjoint rows merge with ``+``.

>>> import numpy as np, pyarrow as pa
>>> from streamreg.design import DesignSpec
>>> from streamreg.io.sources import InMemorySource
>>> from streamreg.solvers.moments import MomentState
>>> src = InMemorySource(pa.table({"x": np.arange(6.0), "y": 2 * np.arange(6.0) + 1}))
>>> spec = DesignSpec.resolve(src.schema, target="y")
>>> halves = [accumulate(InMemorySource(src.table.slice(s, 3)), spec, MomentState, batch_size=2)
...           for s in (0, 3)]
>>> whole = accumulate(src, spec, MomentState, batch_size=4)
>>> merged = halves[0] + halves[1]
>>> merged.rows_read, bool(np.allclose(merged.state.comoment, whole.state.comoment))
(6, True)
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from ..design import DesignSpec, batch_arrays, screen_values
from ..design.encoded import EncodedSpec, overflow, reading
from ..errors import InputError
from ..io.sources import Chunk, Source
from .merge import Mergeable

# Default batch: about 16 MiB of float64 per batch, at most 128 Ki rows.
BATCH_BYTES = 1 << 24
MAX_BATCH_ROWS = 1 << 17


def resolve_batch_size(n_columns: int, given: int | None = None) -> int:
    """Rows per record batch: ``given`` (checked), else about 16 MiB of float64 per batch."""
    if given is None:
        return int(max(1024, min(MAX_BATCH_ROWS, BATCH_BYTES // (8 * max(n_columns, 1)))))
    if isinstance(given, bool) or not isinstance(given, (int, np.integer)) or given < 1:
        raise InputError(f"batch_size must be a positive number of rows; got {given!r}.")
    return int(given)


@dataclass
class Accumulation(Mergeable):
    """A merged state and what was read to build it."""

    state: object  # any state (streamreg.solvers.base.State)
    spec: DesignSpec | None
    rows_read: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    rows_by_file: dict[str, int] = field(default_factory=dict)
    log_weight_sum: float = 0.0  # Σ log w over the rows used (the WLS likelihood needs it)

    @classmethod
    def empty(cls, state_kind, spec: DesignSpec, files=()) -> Accumulation:
        """No rows yet, over ``spec``'s columns, with a zero count for each of ``files``."""
        return cls(
            state_kind.empty(spec.state_names), spec, rows_by_file={f.path: 0 for f in files}
        )

    @property
    def inputs(self) -> list[dict]:
        return [{"path": path, "rows": rows} for path, rows in self.rows_by_file.items()]

    def copy(self) -> Accumulation:
        return Accumulation(
            self.state.copy(),
            self.spec,
            self.rows_read,
            dict(self.dropped),
            dict(self.rows_by_file),
            self.log_weight_sum,
        )

    def __iadd__(self, other: Accumulation) -> Accumulation:
        self.state += other.state
        self.rows_read += other.rows_read
        for name, count in other.dropped.items():
            self.dropped[name] = self.dropped.get(name, 0) + count
        for path, rows in other.rows_by_file.items():
            self.rows_by_file[path] = self.rows_by_file.get(path, 0) + rows
        self.log_weight_sum += other.log_weight_sum
        return self

    def with_counts_of(self, other: Accumulation) -> Accumulation:
        """This state with ``other``'s row counts (a fit on training rows that read more)."""
        return Accumulation(
            self.state,
            self.spec,
            other.rows_read,
            dict(other.dropped),
            dict(other.rows_by_file),
            self.log_weight_sum,
        )


def accumulate(
    source: Source,
    spec: DesignSpec,
    state_kind,
    *,
    batch_size: int,
    on_rows: Callable[[int], None] | None = None,
    into: Accumulation | None = None,
    after_batch: Callable[[Chunk, Accumulation], None] | None = None,
) -> Accumulation:
    """One streaming pass: fold every batch of ``source`` into a state of ``state_kind``.

    ``into`` continues an earlier accumulation (it is updated in place), so a
    pass stopped after some batches and resumed with the remaining ones folds
    the same batches in the same order as one uninterrupted pass.
    ``after_batch(chunk, acc)`` is called once each batch is folded in (jobs
    checkpoint there).

    An encoded design accumulates a moment state from group sums over the whole pass
    (:class:`~streamreg.design.grouped.GroupedSums`), converted to the state once at the
    end (and before each ``after_batch``); other states read its dense rows.
    """
    if into is None:
        acc = Accumulation.empty(state_kind, spec, source.files)
    else:
        acc = into
        for f in source.files:
            acc.rows_by_file.setdefault(f.path, 0)
    sums = None
    if isinstance(spec, EncodedSpec) and spec.grouped_for(state_kind):
        sums = spec.group_sums(state_kind, acc.state.shift_hint())
    # Every plain batch's z goes into one buffer (see batch_arrays); encoded designs make their own.
    buffer = np.empty(batch_size * len(spec.state_names)) if isinstance(spec, DesignSpec) else None
    for chunk in source.batches(spec.columns, batch_size, **reading(spec)):
        if sums is None:
            _fold_chunk(acc, chunk, spec, state_kind, buffer)
        else:
            _add_group_sums(acc, sums, chunk, spec)
        if on_rows is not None:
            on_rows(chunk.batch.num_rows)
        if after_batch is not None:
            if sums is not None:
                acc.state += sums.flush()
            after_batch(chunk, acc)
    if sums is not None:
        acc.state += sums.flush()
    return acc


def _add_group_sums(acc: Accumulation, sums, chunk: Chunk, spec: EncodedSpec) -> None:
    """Add one batch's group tables to ``sums``; its counts go to ``acc``."""
    prepared = spec.prepare(chunk)
    if not sums.add(prepared):
        # A NaN made by a transform, or ±inf: evaluate the batch again, screening row by row.
        prepared = spec.prepare(chunk, screen=True)
        if not sums.add(prepared):
            raise overflow(chunk)
    _count(acc, chunk, prepared.rows_read, prepared.dropped, prepared.weights)


def _count(acc: Accumulation, chunk: Chunk, rows_read: int, dropped: dict, weights) -> None:
    if weights is not None:
        with np.errstate(divide="ignore"):
            acc.log_weight_sum += float(np.log(weights).sum())
    acc.rows_read += rows_read
    acc.rows_by_file[chunk.file.path] += rows_read
    for name, count in dropped.items():
        acc.dropped[name] = acc.dropped.get(name, 0) + count


def _fold_chunk(acc: Accumulation, chunk: Chunk, spec: DesignSpec, state_kind, buffer=None) -> None:
    """Fold one record batch into ``acc``, shifting it by the state's hint while copying it
    (into ``buffer`` when given: no state keeps a reference to its batch)."""
    names = spec.state_names
    shift = acc.state.shift_hint()
    arrays = batch_arrays(chunk, spec, shift=shift, out=buffer)
    with np.errstate(all="ignore"):  # non-finite sums are screened below, not warned about
        part = state_kind.from_arrays(
            arrays.z,
            arrays.weights,
            names=names,
            overwrite=True,
            **({} if shift is None else {"shift": shift, "preshifted": True}),
        )
        if not part.is_finite():
            # from_arrays shifted arrays.z in place; screen a fresh conversion of the batch.
            arrays = screen_values(batch_arrays(chunk, spec), chunk, spec)
            part = state_kind.from_arrays(arrays.z, arrays.weights, names=names, overwrite=True)
            if not part.is_finite():
                raise overflow(chunk)
    acc.state += part
    _count(acc, chunk, arrays.rows_read, arrays.dropped, arrays.weights)


# ---------------------------------------------------------------------- tasks (run by a runner)
def accumulate_part(
    source: Source, index: int, spec: DesignSpec, batch_size: int, state_kind, *, on_rows=None
) -> Accumulation:
    """A runner's task: the accumulation of one block."""
    return accumulate(source, spec, state_kind, batch_size=batch_size, on_rows=on_rows)


accumulate_part.task_name = "accumulation"  # how the task is named on a Dask dashboard


@dataclass
class SplitAccumulation(Mergeable):
    """Accumulations of the rows kept for training and of the rows held out (mergeable)."""

    train: Accumulation
    held: Accumulation

    def copy(self) -> SplitAccumulation:
        return SplitAccumulation(self.train.copy(), self.held.copy())

    def __iadd__(self, other: SplitAccumulation) -> SplitAccumulation:
        self.train += other.train
        self.held += other.held
        return self


def accumulate_split_part(
    source: Source,
    index: int,
    spec: DesignSpec,
    batch_size: int,
    state_kind,
    held_out: Callable[[int, int, int], np.ndarray],
    *,
    on_rows=None,
) -> SplitAccumulation:
    """A runner's task: one block's rows split by ``held_out(block, batch, rows)`` (a row mask).

    Each record batch is split in two and each half folded into a fresh accumulation,
    then merged; the mask depends only on positions, so every pass agrees on it.
    """
    result = None
    for number, chunk in enumerate(source.batches(spec.columns, batch_size, **reading(spec))):
        held = held_out(index, number, chunk.batch.num_rows)
        halves = []
        for rows in (~held, held):
            acc = Accumulation.empty(state_kind, spec, source.files)
            _fold_chunk(
                acc,
                Chunk(chunk.batch.filter(pa.array(rows)), chunk.file, chunk.offset),
                spec,
                state_kind,
            )
            halves.append(acc)
        pair = SplitAccumulation(*halves)
        if result is None:
            result = pair
        else:
            result += pair
        if on_rows is not None:
            on_rows(chunk.batch.num_rows)
    if result is None:  # a block without rows
        empty = Accumulation.empty(state_kind, spec, source.files)
        result = SplitAccumulation(empty, copy.deepcopy(empty))
    return result
