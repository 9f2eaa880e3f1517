"""Where a fit's rows are and what runs its passes: the :class:`Plan` of a fit.

:func:`plan_fit` turns the inputs (Parquet paths, in-memory data, Dask collections) and a
:class:`~streamreg.design.request.Request` into blocks and a runner — the whole local
source as one block, one block per file for Dask, slices of in-memory data for the
gradient solvers' epochs — after finding an encoded design's levels with a pass over its
category columns only. :func:`streamreg.fit` and :func:`streamreg.cv` start here.

>>> import numpy as np
>>> from streamreg.design.request import Request
>>> X, y = np.arange(12.0).reshape(6, 2), np.arange(6.0)
>>> plan = plan_fit(X, y, Request.of(), weight=None, batch_size=None, progress=False,
...                 client=None, stall_timeout=None, grouped=True)
>>> plan.encoded, plan.blocks.spec.features
(False, ('x0', 'x1'))
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from .design import DesignSpec
from .design.levels import levels_part
from .design.request import PendingDesign, Request
from .engine.blocks import Blocks
from .engine.dask_runner import DaskRunner, collection_blocks, is_dask_collection
from .engine.local import LocalRunner
from .engine.scan import resolve_batch_size
from .engine.tasks import task_blocks
from .io.inputs import to_source
from .io.sources import InMemorySource


@dataclass
class Plan:
    """Where the rows of a fit are and what runs the passes.

    ``blocks`` serve the closed-form passes and the robust pass (a local source is one
    block, so the running-mean shift carries across files and one progress line covers
    the pass); ``step_blocks`` serve the gradient solvers' epochs (one block per file).
    """

    runner: object
    blocks: Blocks
    step_blocks: Blocks
    columns: dict | None = None  # what every column of the data is (streamreg.design.roles)
    dense_blocks: Blocks | None = None  # an encoded design's blocks for dense rows
    notes: tuple[str, ...] = ()  # what the inputs hold that the fit leaves out (Source.notes)
    in_memory: bool = False  # a second pass over the rows is cheap (no file is read again)

    @property
    def encoded(self) -> bool:
        return not isinstance(self.blocks.spec, DesignSpec)

    @property
    def dense(self) -> Blocks:
        """The blocks of a pass that reads dense design rows (qr, exact, robust errors)."""
        return self.dense_blocks or self.blocks


def plan_fit(
    source, y, request: Request, *, weight, batch_size, progress, client, stall_timeout, grouped
) -> Plan:
    """Blocks and runner; an encoded design's levels are found first, by a pass over its
    category columns only."""
    partition_keys: list[str] = []
    notes: tuple[str, ...] = ()
    in_memory = False
    if is_dask_collection(source) or is_dask_collection(y):
        runner = DaskRunner(client, progress=progress, stall_timeout=stall_timeout)
        blocks, schema = collection_blocks(
            source,
            y,
            weight=weight,
            batch_size=lambda spec: resolve_batch_size(len(spec.columns), batch_size),
            request=replace(request, weight=weight if isinstance(weight, str) else None),
        )
        steps = blocks
    else:
        src, target, weight = to_source(
            source,
            y,
            target=request.targets or None,
            weight=weight,
            need_target=not request.formula,
        )
        request = replace(
            request,
            targets=as_targets(target, request),
            weight=weight,
            partial=tuple(src.partial_columns()),  # never default features (Source.notes)
        )
        schema = src.schema
        partition_keys = list(src.partition_types)
        # Files that disagree on a named column are reported (naming both files) before its
        # type is.
        named = [*request.targets, request.weight, *request.group_columns]
        named += [*(request.features or ())]
        src.check_columns([c for c in named if c is not None and c in schema.names])
        spec = request.design(schema, partition_keys=partition_keys)
        src.check_columns(spec.columns)
        notes = tuple(src.notes(spec.columns, default_features=request.features is None))
        size = resolve_batch_size(len(spec.columns), batch_size)
        in_memory = isinstance(src, InMemorySource)
        if client is not None:
            # Passes run as tasks planned from the footers (whole files, groups of small ones,
            # row-group runs); the gradient solvers' epochs keep the per-file blocks.
            runner = DaskRunner(client, progress=progress, stall_timeout=stall_timeout)
            blocks = task_blocks(src, spec, size)
            steps = Blocks.per_file(src, spec, size)
        else:
            runner = LocalRunner(progress=progress)
            blocks = Blocks.whole(src, spec, size)
            steps = (
                Blocks.slices(src, spec, size) if in_memory else Blocks.per_file(src, spec, size)
            )
    spec = blocks.spec
    if isinstance(spec, PendingDesign):
        found = runner.map_reduce(
            blocks, levels_part, spec.categorical_sources, request.max_levels, label="levels"
        )
        spec = spec.resolve(found.scan().levels)
    columns = request.roles(schema, spec, partition_keys=partition_keys)
    if isinstance(spec, DesignSpec):
        return Plan(runner, blocks, steps, columns, notes=notes, in_memory=in_memory)
    # Dense rows shrink their batches as the design widens; group sums keep the usual size.
    dense = spec.batch_rows(grouped=False, given=batch_size)
    first = spec.batch_rows(grouped=True, given=batch_size) if grouped else dense
    return Plan(
        runner,
        replace(blocks, spec=spec, batch_size=first),
        replace(steps, spec=spec, batch_size=dense),
        columns,
        replace(blocks, spec=spec, batch_size=dense),
        notes,
        in_memory,
    )


def as_targets(target, request: Request) -> tuple[str, ...]:
    if target is None:
        return request.targets
    return (target,) if isinstance(target, str) else tuple(target)
