"""Fits with an absorbed fixed effect (``y ~ x | firm``, ``absorb="firm"``): one pass, and a
second for clustered standard errors.

The first pass folds each batch's dense design rows into an
:class:`~streamreg.solvers.absorb.AbsorbState` — per-group counts and sums and the
within co-moment, memory ``O(groups × columns)``, no column per level — and the
slopes are solved from the within co-moment
(:func:`~streamreg.solvers.absorb.solve_within`, pyfixest's degrees of freedom,
singleton groups dropped). ``cov_type="cluster:COLUMN"`` adds a second pass that
sums the scores per cluster (:mod:`streamreg.solvers.clusters`). The model keeps
the slopes and their inference; it has no intercept and no group effects, so it
does not predict (it says so).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from .design.encoded import reading
from .engine.scan import Accumulation
from .model.linear_model import LinearModel
from .model.multi import MultiTargetModel
from .solvers.absorb import AbsorbState, solve_within
from .solvers.clusters import ClusterScores


def absorb_part(source, index, spec, batch_size, *, on_rows=None) -> Accumulation:
    """A runner's task: the absorbed state of one block's rows (merged with ``+``).

    Record batches never span Parquet row groups, so they are gathered here into updates of
    up to ``batch_size`` rows: an update's cost grows with the groups it touches, and larger
    updates touch each group fewer times."""
    acc = Accumulation.empty(AbsorbState, spec, source.files)
    (column,) = spec.absorb
    pending: list = []

    def flush():
        if pending:
            z = np.concatenate([p[0] for p in pending]) if len(pending) > 1 else pending[0][0]
            labels = np.concatenate([p[1] for p in pending])
            weights = None if pending[0][2] is None else np.concatenate([p[2] for p in pending])
            acc.state.update(z, labels, weights)
            pending.clear()

    buffered = 0
    for chunk in source.batches(spec.columns, batch_size, **reading(spec)):
        prepared = spec.prepare(chunk, screen=True)
        z = spec.encoder.dense(prepared)
        pending.append((z, spec.labels(chunk, prepared, column), prepared.weights))
        buffered += len(z)
        if buffered >= batch_size:
            flush()
            buffered = 0
        acc.rows_read += prepared.rows_read
        acc.rows_by_file[chunk.file.path] += prepared.rows_read
        for name, count in prepared.dropped.items():
            acc.dropped[name] = acc.dropped.get(name, 0) + count
        if prepared.weights is not None:
            with np.errstate(divide="ignore"):
                acc.log_weight_sum += float(np.log(prepared.weights).sum())
        if on_rows is not None:
            on_rows(chunk.batch.num_rows)
    flush()
    return acc


absorb_part.task_name = "absorbed"


def cluster_part(source, index, spec, batch_size, state, fit, *, on_rows=None) -> ClusterScores:
    """A runner's task: one block's cluster scores at the first pass's slopes."""
    scores = ClusterScores(state, fit)
    (column,) = spec.absorb
    by_factor = spec.groups == column
    for chunk in source.batches(spec.columns, batch_size, **reading(spec)):
        prepared = spec.prepare(chunk, screen=True)
        z = spec.encoder.dense(prepared)
        labels = spec.labels(chunk, prepared, column)
        clusters = None if by_factor else spec.labels(chunk, prepared, spec.groups)
        scores.update(z, labels, clusters, prepared.weights)
        if on_rows is not None:
            on_rows(chunk.batch.num_rows)
    return scores


cluster_part.task_name = "cluster scores"


def fit_absorbed(plan, *, drop_collinear: bool, cov_type: str):
    """The model(s) of a fit with one absorbed factor; ``plan`` is a
    :class:`streamreg.fitting.Plan` over an encoded design."""
    spec = plan.blocks.spec
    (column,) = spec.absorb
    acc = plan.runner.map_reduce(plan.dense, absorb_part, label="fit (absorbed)")
    everything = acc.state
    m = len(spec.targets)
    p = len(spec.features)
    models = []
    for k in range(m):
        state = everything if m == 1 else everything.select([*range(p), p + k])
        fit = solve_within(state, drop_collinear=drop_collinear)
        kept = int(fit.kept.sum())
        solution = replace(
            fit.solution,
            intercept=0.0,
            rank=kept,
            warnings=[*plan.notes, *fit.solution.warnings],
        )
        robust = None
        if cov_type == "cluster":
            scores = plan.runner.map_reduce(
                plan.dense, cluster_part, state, fit, label="cluster pass"
            )
            clustered = scores.finish()
            full = np.full((p, p), np.nan)
            index = np.flatnonzero(fit.kept)
            full[np.ix_(index, index)] = clustered.vcov
            robust = {
                "cov_type": "cluster",
                "cov": full.tolist(),
                "n_groups": clustered.n_clusters,
                "groups": spec.groups,
            }
        target_acc = Accumulation(
            state.moment_state(),
            spec,
            acc.rows_read,
            acc.dropped,
            acc.rows_by_file,
            acc.log_weight_sum,
        )
        models.append(
            LinearModel.from_accumulation(
                target_acc,
                solution,
                robust=robust,
                design=spec.design,
                columns=plan.columns,
                absorbed={"column": column, "n_groups": fit.n_groups, "singletons": fit.singletons},
            )
        )
    if m == 1:
        return models[0]
    return MultiTargetModel(models, everything.moment_state())
