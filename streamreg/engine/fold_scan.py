r"""The pass of a cross-validation: every row into the state of its fold.

:func:`accumulate_folds` is :func:`~streamreg.engine.scan.accumulate` with a fold per
row (from a :class:`~streamreg.engine.fold_ids.FoldAssignment`, computed on the raw
batch before rows with missing values are dropped); :func:`accumulate_folds_part` is
its runner task. The result is an :class:`~streamreg.engine.scan.Accumulation` whose
``state`` is a :class:`~streamreg.engine.fold_states.FoldStates`.

>>> import numpy as np, pyarrow as pa
>>> from streamreg.design import DesignSpec
>>> from streamreg.io.sources import InMemorySource
>>> from streamreg.solvers.moments import MomentState
>>> from streamreg.engine.fold_ids import FoldAssignment
>>> src = InMemorySource(pa.table({"x": np.arange(50.0), "y": 2 * np.arange(50.0)}))
>>> spec = DesignSpec.resolve(src.schema, target="y")
>>> acc = accumulate_folds(src, spec, MomentState, FoldAssignment.by_position(3), batch_size=8)
>>> acc.rows_read, acc.state.n_rows, len(acc.state.labels)
(50, 50, 3)
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pyarrow as pa

from ..design import DesignBatch, DesignSpec, batch_arrays, screen_values
from ..design.encoded import reading
from ..errors import DataError, SchemaError
from ..io.sources import Chunk, Source
from .fold_ids import FoldAssignment
from .fold_states import FoldStates
from .scan import Accumulation


def accumulate_folds(
    source: Source,
    spec: DesignSpec,
    state_kind,
    assignment: FoldAssignment,
    *,
    batch_size: int,
    on_rows: Callable[[int], None] | None = None,
    into: Accumulation | None = None,
    after_batch: Callable[[Chunk, Accumulation], None] | None = None,
) -> Accumulation:
    """One streaming pass folding every row into the state of its fold.

    As :func:`~streamreg.engine.scan.accumulate` (``into`` continues an earlier
    accumulation, ``after_batch`` is called after each batch), with a
    :class:`FoldStates` as the accumulation's ``state``.
    """
    if into is None:
        acc = Accumulation(
            FoldStates.for_assignment(state_kind, spec.state_names, assignment),
            spec,
            rows_by_file={f.path: 0 for f in source.files},
        )
    else:
        acc = into
        for f in source.files:
            acc.rows_by_file.setdefault(f.path, 0)
    for column in assignment.columns:
        if column not in source.schema.names:
            what = "fold column" if assignment.by == "column" else "fold key"
            raise SchemaError(
                f"{what} '{column}' is not in the data; columns are: "
                f"{', '.join(source.schema.names)}."
            )
    columns = spec.columns + tuple(c for c in assignment.columns if c not in spec.columns)
    for chunk in source.batches(columns, batch_size, **reading(spec)):
        _fold_chunk_by_fold(acc, chunk, spec, assignment)
        if on_rows is not None:
            on_rows(chunk.batch.num_rows)
        if after_batch is not None:
            after_batch(chunk, acc)
    return acc


def _fold_chunk_by_fold(acc: Accumulation, chunk: Chunk, spec: DesignSpec, assignment) -> None:
    """Fold one record batch into the fold states of ``acc`` (a fresh batch state per fold,
    merged in once it is known to be finite).

    The rows are put in fold order while they are copied out of Arrow (one gather instead
    of a copy and a gather) unless a used column holds nulls; then the design's conversion
    drops them first and the rows are gathered after it. An encoded design (a formula,
    categories) always goes through its dense rows."""
    folds = acc.state
    ids = assignment.ids(chunk)
    shift = folds.shift_hint()
    with np.errstate(all="ignore"):  # non-finite sums are screened below, not warned about
        part = FoldStates(folds.state_type, folds.names, n_folds=folds.n_folds, origin=folds.origin)
        labels, order, starts, ends = part.batch_order(ids) if len(ids) else ([], None, [], [])
        gather = order is not None and isinstance(spec, DesignSpec)
        arrays = _gathered_arrays(chunk, spec, order, shift) if gather else None
        if arrays is not None:
            part.add_sorted(arrays.z, arrays.weights, labels, starts, ends, shift=shift)
        else:
            arrays = batch_arrays(chunk, spec, shift=shift)
            rows = ids if arrays.positions is None else ids[arrays.positions]
            part.update(arrays.z, arrays.weights, rows, shift=shift)
        if not part.is_finite():
            # the batch was shifted in place; screen a fresh conversion of it.
            arrays = screen_values(batch_arrays(chunk, spec), chunk, spec)
            part = FoldStates(
                folds.state_type, folds.names, n_folds=folds.n_folds, origin=folds.origin
            )
            rows = ids if arrays.positions is None else ids[arrays.positions]
            part.update(arrays.z, arrays.weights, rows)
            if not part.is_finite():
                raise DataError(
                    f"the sums over {chunk.file.path} overflow float64; rescale the columns."
                )
    folds += part
    if arrays.weights is not None:
        with np.errstate(divide="ignore"):
            acc.log_weight_sum += float(np.log(arrays.weights).sum())
    acc.rows_read += arrays.rows_read
    acc.rows_by_file[chunk.file.path] += arrays.rows_read
    for name, count in arrays.dropped.items():
        acc.dropped[name] = acc.dropped.get(name, 0) + count


def _gathered_arrays(chunk: Chunk, spec: DesignSpec, order: np.ndarray, shift):
    """The batch's float64 arrays with its rows in ``order`` (minus ``shift``), gathered
    straight out of Arrow; None when a used column holds nulls (the design drops those rows
    first). A negative weight is left to the design's conversion, which names it."""
    batch = chunk.batch
    used = [*spec.state_names, *([spec.weight] if spec.weight else [])]
    columns = [batch.column(name) for name in used]
    if any(column.null_count for column in columns):
        return None
    z = np.empty((batch.num_rows, len(spec.state_names)), dtype=np.float64, order="F")
    for j in range(z.shape[1]):
        np.take(_float_values(columns[j]), order, out=z[:, j], mode="wrap")
        if shift is not None:
            z[:, j] -= shift[j]
    weights = None
    if spec.weight:
        weights = _float_values(columns[-1])[order]
        if weights.size and weights.min() < 0:
            return None
    return DesignBatch(z, weights, batch.num_rows, {})


def _float_values(column) -> np.ndarray:
    if not pa.types.is_float64(column.type):
        column = column.cast(pa.float64(), safe=False)
    return column.to_numpy(zero_copy_only=False)


def accumulate_folds_part(
    source: Source,
    index: int,
    spec: DesignSpec,
    batch_size: int,
    state_kind,
    assignment: FoldAssignment,
    *,
    on_rows=None,
) -> Accumulation:
    """A runner's task: the fold states of one block."""
    return accumulate_folds(
        source, spec, state_kind, assignment, batch_size=batch_size, on_rows=on_rows
    )


accumulate_folds_part.task_name = "fold-states"


def total_accumulation(acc: Accumulation) -> Accumulation:
    """The plain accumulation of all rows of a fold accumulation (its folds merged)."""
    return Accumulation(
        acc.state.total(),
        acc.spec,
        acc.rows_read,
        dict(acc.dropped),
        dict(acc.rows_by_file),
        acc.log_weight_sum,
    )
