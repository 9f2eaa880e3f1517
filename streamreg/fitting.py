"""The fit: source → design → per-batch states → merged state → solved model.

This is the one engine behind ``streamreg fit`` and :func:`streamreg.fit`.
It reads each used column once, in batches, so memory is bounded by the batch
size times the number of columns, never by the number of rows.

>>> import tempfile, pathlib, numpy as np, pyarrow as pa, pyarrow.parquet as pq
>>> path = pathlib.Path(tempfile.mkdtemp()) / "study.parquet"
>>> hours = np.arange(1.0, 11.0)
>>> pq.write_table(pa.table({"hours": hours, "score": 0.5 * hours + 8}), path)
>>> model = fit(path, target="score")
>>> round(float(model.coef_[0]), 10), round(model.intercept_, 10)
(0.5, 8.0)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from .design import DesignSpec, _as_list, batch_arrays, screen_values
from .errors import CollinearityError, DataError, InputError
from .io.inputs import to_source
from .io.sources import Chunk, Source
from .model.linear_model import LinearModel
from .solvers import (
    AUTO_SWITCH_CONDITION,
    GRADIENT_SOLVERS,
    check_solver,
    second_pass_solver,
    solve,
    state_class,
)
from .solvers.moments import MomentState

# Default batch: about 16 MiB of float64 per batch, at most 128 Ki rows.
_BATCH_BYTES = 1 << 24
_MAX_BATCH_ROWS = 1 << 17


@dataclass
class Accumulation:
    """A merged state and what was read to build it."""

    state: MomentState
    spec: DesignSpec
    rows_read: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    rows_by_file: dict[str, int] = field(default_factory=dict)
    log_weight_sum: float = 0.0  # Σ log w over the rows used (the WLS likelihood needs it)

    @property
    def inputs(self) -> list[dict]:
        return [{"path": path, "rows": rows} for path, rows in self.rows_by_file.items()]


def default_batch_size(n_columns: int) -> int:
    return int(max(1024, min(_MAX_BATCH_ROWS, _BATCH_BYTES // (8 * max(n_columns, 1)))))


def resolve_spec(source: Source, *, target, features=None, exclude=None, weight=None,
                 fit_intercept=True, nulls="drop", groups=None) -> DesignSpec:
    # Files that disagree on a named column are reported (naming both files) before its type is.
    named = [target, weight, groups, *(_as_list(features) or [])]
    source.check_columns([c for c in named if c is not None and c in source.schema.names])
    spec = DesignSpec.resolve(source.schema, target=target, features=features, exclude=exclude,
                              weight=weight, fit_intercept=fit_intercept, nulls=nulls, groups=groups)
    source.check_columns(spec.columns)
    return spec


def accumulate(source: Source, spec: DesignSpec, *, batch_size: int | None = None,
               on_rows: Callable[[int], None] | None = None, state_kind=MomentState,
               into: Accumulation | None = None,
               after_batch: Callable[[Chunk, Accumulation], None] | None = None) -> Accumulation:
    """One streaming pass: fold every batch of ``source`` into a state of ``state_kind``.

    ``into`` continues an earlier accumulation (it is updated in place), so a
    pass stopped after some batches and resumed with the remaining ones folds
    the same batches in the same order as one uninterrupted pass.
    ``after_batch(chunk, acc)`` is called once each batch is folded in (jobs
    checkpoint there)."""
    if batch_size is None:
        batch_size = default_batch_size(len(spec.columns))
    if batch_size < 1:
        raise InputError(f"batch size must be a positive number of rows; got {batch_size}.")
    if into is None:
        acc = Accumulation(state_kind.empty(spec.state_names), spec,
                           rows_by_file={f.path: 0 for f in source.files})
    else:
        acc = into
        for f in source.files:
            acc.rows_by_file.setdefault(f.path, 0)
    names = spec.state_names
    for chunk in source.batches(spec.columns, batch_size):
        shift = _known_shift(acc.state, state_kind)
        arrays = batch_arrays(chunk, spec, shift=shift)
        with np.errstate(all="ignore"):  # non-finite sums are screened below, not warned about
            part = state_kind.from_arrays(arrays.z, arrays.weights, names=names, overwrite=True,
                                          **({} if shift is None else {"shift": shift, "preshifted": True}))
            if not part.is_finite():
                # from_arrays shifted arrays.z in place; screen a fresh conversion of the batch.
                arrays = screen_values(batch_arrays(chunk, spec), chunk, spec)
                part = state_kind.from_arrays(arrays.z, arrays.weights, names=names, overwrite=True)
                if not part.is_finite():
                    raise DataError(f"the sums over {chunk.file.path} overflow float64; rescale the columns.")
        acc.state._absorb(part)
        if arrays.weights is not None:
            with np.errstate(divide="ignore"):
                acc.log_weight_sum += float(np.log(arrays.weights).sum())
        acc.rows_read += arrays.rows_read
        acc.rows_by_file[chunk.file.path] += arrays.rows_read
        for name, count in arrays.dropped.items():
            acc.dropped[name] = acc.dropped.get(name, 0) + count
        if on_rows is not None:
            on_rows(arrays.rows_read)
        if after_batch is not None:
            after_batch(chunk, acc)
    return acc


def _known_shift(state, state_kind):
    """The running mean: a free, good shift for the next batch (see state._batch_moments),
    subtracted while the batch is copied out of Arrow."""
    if state_kind is MomentState and state.weight_sum > 0 and np.isfinite(state.mean).all():
        return state.mean.copy()
    return None


def fit(source, y=None, *, target: str | None = None,
        features: Sequence[str] | str | None = None, exclude: Sequence[str] | str | None = None,
        weight=None, fit_intercept: bool = True, nulls: str = "drop",
        batch_size: int | None = None, solver: str = "auto", drop_collinear: bool = False,
        cov_type: str | None = None, groups: str | None = None,
        progress: bool | None = False, client=None, sgd=None) -> LinearModel:
    """Fit ordinary (or weighted) least squares in one streaming pass.

    ``source`` is a Parquet file, a directory (read recursively; ``key=value``
    folders become columns), a glob, or a list of them; in-memory data — a
    pandas DataFrame or pyarrow Table (with ``target=``), or arrays ``X, y``
    (features are then named ``x0, x1, …``; ``weight`` may be an array); or a
    Dask DataFrame or Dask arrays ``X, y`` (one state per partition, merged by
    a tree reduction on the current Dask scheduler). ``client`` (a
    ``distributed.Client``) runs a Parquet fit on a cluster, its workers
    reading the files. ``features`` defaults to every numeric column except
    the target, the weight and ``exclude``. Rows with a null or NaN in a used
    column are dropped and counted (``nulls="error"`` refuses them).
    ``solver`` is one of ``auto``, ``cholesky``, ``qr`` and ``exact`` (see
    :mod:`streamreg.solvers`); ``auto`` reads the data a second time, with a
    more accurate solver, only when the fast pass is not accurate enough, and
    says so in ``model.warnings_``. ``cov_type`` (``HC0`` … ``HC3``,
    ``cluster`` with ``groups=COLUMN``, or ``"cluster:COLUMN"``) adds a second
    pass for robust standard errors (:mod:`streamreg.model.robust`).
    ``progress=None`` shows progress only on a terminal.

    The gradient solvers ``sgd``, ``newton`` and ``lbfgs`` (:mod:`streamreg.solvers.gradient`)
    take their options as ``sgd=SGDOptions(...)`` (or a dict); the model then records
    the optimization in ``model.optimizer_``. They show no progress line.
    """
    from .model.robust import parse_cov_type

    check_solver(solver)
    if sgd is not None and solver not in GRADIENT_SOLVERS:
        raise InputError(f"sgd options apply to the gradient solvers ({', '.join(GRADIENT_SOLVERS)}); "
                         f"the solver is {solver!r}.")
    cov_type, groups = parse_cov_type(cov_type, groups)
    names = dict(target=target, features=features, exclude=exclude, fit_intercept=fit_intercept,
                 nulls=nulls, groups=groups)
    from .engine.dask_runner import DaskPasses, is_dask_collection

    if is_dask_collection(source) or is_dask_collection(y):
        passes = DaskPasses.from_collections(source, y, weight=weight, batch_size=batch_size,
                                             client=client, **names)
    else:
        src, target, weight = to_source(source, y, target=target, weight=weight)
        names["target"] = target
        spec = resolve_spec(src, weight=weight, **names)
        if client is not None:
            passes = DaskPasses.from_parquet(src, spec, batch_size=batch_size, client=client)
        else:
            passes = LocalPasses(src, spec, batch_size=batch_size, progress=progress)
    if solver in GRADIENT_SOLVERS:
        from .solvers.gradient import fit_gradient

        return fit_gradient(passes, solver=solver, options=sgd, drop_collinear=drop_collinear,
                            cov_type=cov_type)
    return fit_with(passes, solver=solver, drop_collinear=drop_collinear, cov_type=cov_type)


def fit_with(passes, *, solver: str, drop_collinear: bool, cov_type: str) -> LinearModel:
    """The solver policy over any way of making passes (local, Dask): solve, maybe
    re-read with a better solver (auto), then the robust pass if asked."""
    spec = passes.spec
    acc = passes.accumulate(state_class(solver), "fit")
    notes: list[str] = []
    try:
        solution = solve(acc.state, fit_intercept=spec.fit_intercept, drop_collinear=drop_collinear)
        doubtful = solver == "auto" and (solution.condition_number > AUTO_SWITCH_CONDITION
                                         or bool(solution.aliased))
        reason = f"condition number {solution.condition_number:.1e}"
    except CollinearityError:
        if solver != "auto":
            raise
        doubtful, reason = True, "a nearly collinear column"
    if doubtful:
        better = second_pass_solver(len(spec.features))
        acc = passes.accumulate(state_class(better), f"fit ({better})")
        solution = solve(acc.state, fit_intercept=spec.fit_intercept, drop_collinear=drop_collinear)
        notes.append(f"auto: the cholesky pass found {reason}, too ill-conditioned to trust all its "
                     f"digits; the data were read a second time and solved with {better}.")
    solution.warnings[:0] = notes
    model = LinearModel.from_state(acc.state, fit_intercept=spec.fit_intercept, weight=spec.weight,
                                   drop_collinear=drop_collinear, rows_read=acc.rows_read,
                                   rows_dropped_by_column=acc.dropped, inputs=acc.inputs,
                                   solution=solution, log_weight_sum=acc.log_weight_sum)
    if cov_type != "nonrobust":
        model.robust_ = passes.robust(model, cov_type)
    return model


def merge_accumulations(a: Accumulation, b: Accumulation) -> Accumulation:
    """The accumulation of the union of two disjoint sets of rows."""
    dropped = dict(a.dropped)
    for name, count in b.dropped.items():
        dropped[name] = dropped.get(name, 0) + count
    rows_by_file = dict(a.rows_by_file)
    for path, rows in b.rows_by_file.items():
        rows_by_file[path] = rows_by_file.get(path, 0) + rows
    return Accumulation(a.state.merge(b.state), a.spec, a.rows_read + b.rows_read, dropped,
                        rows_by_file, a.log_weight_sum + b.log_weight_sum)


def _blas_beside_decoding():
    """Limit BLAS to half the cores for a pass, leaving the rest to Arrow's decoding threads.

    OpenBLAS threads wait for each other by spinning, so a threaded ``syrk``
    whose partner thread has lost its core to decoding stalls: on 2 cores a fit
    of 1M rows × 200 columns took 6 s with one BLAS thread and 17-25 s with two.
    The limit is process-wide, so it is set only around passes that this
    process runs itself (Dask workers already run BLAS single-threaded).
    """
    import os

    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=max(1, (os.cpu_count() or 1) // 2), user_api="blas")


class LocalPasses:
    """Passes over a source in this process, with a progress line on a terminal."""

    def __init__(self, src: Source, spec: DesignSpec, *, batch_size=None, progress=None):
        self.src, self.spec, self.batch_size, self.progress = src, spec, batch_size, progress

    def _bar(self, label: str):
        from .progress import Progress

        return Progress(self.src.total_rows, self.src.total_bytes, label=label, enabled=self.progress)

    def accumulate(self, state_kind, label: str) -> Accumulation:
        bar = self._bar(label)
        try:
            with _blas_beside_decoding():
                return accumulate(self.src, self.spec, batch_size=self.batch_size,
                                  on_rows=bar.advance, state_kind=state_kind)
        finally:
            bar.close()

    def robust(self, model, cov_type: str) -> dict:
        from .model.robust import robust_pass

        bar = self._bar(f"{cov_type} pass")
        try:
            with _blas_beside_decoding():
                return robust_pass(self.src, self.spec, model, cov_type, batch_size=self.batch_size,
                                   on_rows=bar.advance)
        finally:
            bar.close()
