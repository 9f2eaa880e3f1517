"""The fit: inputs → blocks → runner → solver → model.

This is the one orchestration behind ``streamreg fit``, :func:`streamreg.fit`,
the scikit-learn estimator and the Dask path. It decides *what* is read (the
blocks: the whole local source in order, one block per file, slices of
in-memory data, Dask partitions) and *where* (a :class:`LocalRunner` in this
process or a :class:`DaskRunner`), then lets the solver family do its passes,
and builds the model complete — robust covariance and optimizer record included.

>>> import tempfile, pathlib, numpy as np, pyarrow as pa, pyarrow.parquet as pq
>>> path = pathlib.Path(tempfile.mkdtemp()) / "study.parquet"
>>> hours = np.arange(1.0, 11.0)
>>> pq.write_table(pa.table({"hours": hours, "score": 0.5 * hours + 8}), path)
>>> model = fit(path, target="score")
>>> round(float(model.coef_[0]), 10), round(model.intercept_, 10)
(0.5, 8.0)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .design import resolve_spec
from .engine.blocks import Blocks
from .engine.dask_runner import DaskRunner, collection_blocks, is_dask_collection
from .engine.local import LocalRunner
from .engine.scan import accumulate_part, resolve_batch_size
from .engine.tasks import task_blocks
from .errors import CollinearityError, InputError, parameter
from .io.inputs import to_source
from .io.sources import InMemorySource
from .model.linear_model import LinearModel
from .model.robust import parse_cov_type, robust_record, sandwich_part
from .solvers import (
    AUTO_SWITCH_CONDITION,
    GRADIENT_SOLVERS,
    Penalty,
    check_solver,
    family,
    penalized_family,
    second_pass_solver,
)
from .solvers.gradient import GradientOptions, solve_gradient


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
    notes: tuple[str, ...] = ()  # what the inputs hold that the fit leaves out (Source.notes)


def fit(
    source,
    y=None,
    *,
    target: str | None = None,
    features: Sequence[str] | str | None = None,
    exclude: Sequence[str] | str | None = None,
    weight=None,
    fit_intercept: bool = True,
    nulls: str = "drop",
    batch_size: int | None = None,
    solver: str = "auto",
    drop_collinear: bool = False,
    cov_type: str | None = None,
    groups: str | None = None,
    progress: bool | None = False,
    client=None,
    stall_timeout: float | None = None,
    gradient=None,
    sgd=None,
    alpha: float | None = None,
    l1_ratio: float = 1.0,
    standardize: bool = False,
    tol: float | None = None,
    max_iter: int | None = None,
) -> LinearModel:
    """Fit ordinary (or weighted) least squares in one streaming pass — or, with ``alpha``,
    ridge, lasso or the elastic net.

    Parameters
    ----------
    source : path, directory, glob, URL, list of them; DataFrame, Table or array; Dask collection
        Parquet files (directories are read recursively; ``key=value`` folders become
        columns); in-memory data — a pandas DataFrame or pyarrow Table (with
        ``target=``), or arrays ``X, y`` (features are then named ``x0, x1, …``); or a
        Dask DataFrame or Dask arrays ``X, y`` (one state per partition, merged by a
        tree reduction on the current Dask scheduler).
    y : array, optional
        The target, when ``source`` is an array ``X``.
    target, features, exclude, weight : column names
        ``features`` defaults to every numeric column except the target, the weight and
        ``exclude``. ``weight`` may be an array with array inputs.
    fit_intercept : bool, default True
    nulls : {"drop", "error"}, default "drop"
        Rows with a null or NaN in a used column are dropped and counted (in
        ``model.rows_dropped_by_column_`` and the report), or refused. The
        scikit-learn estimator defaults to ``"error"`` instead, as scikit-learn's
        estimators reject NaN unless asked (see
        :class:`~streamreg.estimator.StreamingLinearRegression`).
    batch_size : int, optional
        Rows per record batch (default: about 16 MiB of float64).
    solver : {"auto", "cholesky", "qr", "exact", "sgd", "newton", "lbfgs"}
        See :mod:`streamreg.solvers`. ``auto`` reads the data a second time, with a
        more accurate solver, only when the fast pass is not accurate enough, and says
        so in ``model.warnings_``.
    drop_collinear : bool
        Collinear columns get no coefficient (R's ``NA``) instead of an error.
    cov_type : str, optional
        ``HC0`` … ``HC3``, ``cluster`` with ``groups=COLUMN``, or ``"cluster:COLUMN"``:
        a second pass for robust standard errors (:mod:`streamreg.model.robust`).
    progress : bool or None
        A progress line (None: only on a terminal).
    client : distributed.Client, optional
        Run a Parquet fit on a cluster, its workers reading the files.
    stall_timeout : float, optional
        With ``client``: give up, in words, when no task of the cluster finishes for this
        many seconds (default :data:`~streamreg.engine.dask_runner.STALL_TIMEOUT`, 300 s) —
        a scheduler without workers or whose workers all died never finishes one.
    gradient : GradientOptions or dict, optional
        Options of the gradient solvers (``sgd=`` is the older name); the model then
        records the optimization in ``model.optimizer_``.
    alpha, l1_ratio, standardize : penalized least squares (:mod:`streamreg.solvers.penalized`)
        scikit-learn's ``ElasticNet`` objective ``1/(2Σw)·Σw(y − Xβ − b)² + α·ρ·‖β‖₁ +
        ½·α·(1 − ρ)·‖β‖²`` with ``ρ = l1_ratio`` (0 ridge, 1 lasso, the default), the
        intercept never penalized, weights as ``sample_weight``. ``standardize`` penalizes
        the coefficients of the standardized columns (glmnet's default) and reports them in
        the original units. Solved from the same one-pass state (``solver`` picks it: auto
        and cholesky the moments, or qr, exact); the model has no standard errors or p
        values (``model.penalty_`` records the penalty). :func:`streamreg.cv` chooses alpha.
    tol, max_iter : penalized fits only
        Coordinate descent's duality-gap tolerance (relative to the target's second moment;
        default 1e-10) and its limit of sweeps per alpha (default 100000).

    Returns
    -------
    LinearModel
    """
    check_solver(solver)
    if gradient is not None and sgd is not None:
        raise InputError(
            "give the gradient solvers' options once: gradient= (sgd= is its older name)."
        )
    options = gradient if gradient is not None else sgd
    if options is not None and solver not in GRADIENT_SOLVERS:
        given = "gradient" if gradient is not None else "sgd"
        raise InputError(
            f"{given} options apply to the gradient solvers ({', '.join(GRADIENT_SOLVERS)}); "
            f"the solver is {solver!r}."
        )
    penalty = _penalty(alpha, l1_ratio, standardize, tol, max_iter, solver, options, cov_type)
    cov_type, groups = parse_cov_type(cov_type, groups)
    names = dict(
        target=target,
        features=features,
        exclude=exclude,
        fit_intercept=fit_intercept,
        nulls=nulls,
        groups=groups,
    )
    plan = _plan(
        source,
        y,
        weight=weight,
        batch_size=batch_size,
        progress=progress,
        client=client,
        stall_timeout=stall_timeout,
        **names,
    )
    if penalty is not None:
        return _fit_penalized(plan, solver=solver, penalty=penalty)
    if solver in GRADIENT_SOLVERS:
        return _fit_gradient(
            plan, solver=solver, options=options, drop_collinear=drop_collinear, cov_type=cov_type
        )
    return _fit_closed_form(plan, solver=solver, drop_collinear=drop_collinear, cov_type=cov_type)


def fit_blocks(
    runner, blocks: Blocks, *, solver: str = "auto", drop_collinear: bool = False, cov_type=None
) -> LinearModel:
    """The fit of :func:`fit` over ``blocks`` run by ``runner`` — the way in for other engines
    (:mod:`streamreg.spark`). ``cov_type`` is as :func:`fit` takes it; a cluster column must
    already be ``blocks.spec.groups``."""
    check_solver(solver)
    cov_type, _ = parse_cov_type(cov_type, blocks.spec.groups)
    plan = Plan(runner, blocks, blocks)
    if solver in GRADIENT_SOLVERS:
        return _fit_gradient(
            plan, solver=solver, options=None, drop_collinear=drop_collinear, cov_type=cov_type
        )
    return _fit_closed_form(plan, solver=solver, drop_collinear=drop_collinear, cov_type=cov_type)


def _penalty(alpha, l1_ratio, standardize, tol, max_iter, solver, options, cov_type):
    """The checked penalty of a penalized fit, or None; its options without alpha are refused."""
    if alpha is None:
        given = [
            (name, value)
            for name, value, default in (
                ("l1_ratio", l1_ratio, 1.0),
                ("standardize", standardize, False),
                ("tol", tol, None),
                ("max_iter", max_iter, None),
            )
            if value is not default and value != default
        ]
        if given:
            raise InputError(
                f"{parameter(*given[0])} applies to a penalized fit; give a penalty too "
                f"({parameter('alpha')}; alpha=0 with l1_ratio=0 is least squares)."
            )
        return None
    penalized_family(solver)  # a gradient solver is refused here, before anything is read
    if options is not None:
        raise InputError("gradient solver options do not apply to a penalized fit (alpha=).")
    if cov_type is not None:
        raise InputError(
            "robust standard errors (cov_type) are not available for a penalized fit: "
            "a penalized estimate has no standard errors in streamreg."
        )
    defaults = Penalty(0.0)
    return Penalty(
        alpha,
        l1_ratio,
        standardize,
        defaults.tol if tol is None else tol,
        defaults.max_iter if max_iter is None else max_iter,
    ).checked()


def _plan(source, y, *, weight, batch_size, progress, client, stall_timeout, **names) -> Plan:
    def resolved(spec):
        return resolve_batch_size(len(spec.columns), batch_size)

    if is_dask_collection(source) or is_dask_collection(y):
        blocks = collection_blocks(source, y, weight=weight, batch_size=resolved, **names)
        runner = DaskRunner(client, progress=progress, stall_timeout=stall_timeout)
        return Plan(runner, blocks, blocks)
    src, target, weight = to_source(source, y, target=names.pop("target"), weight=weight)
    spec = resolve_spec(src, target=target, weight=weight, **names)
    size = resolved(spec)
    notes = tuple(src.notes(spec.columns, default_features=names["features"] is None))
    steps = (
        Blocks.slices(src, spec, size)
        if isinstance(src, InMemorySource)
        else Blocks.per_file(src, spec, size)
    )
    if client is not None:
        # Passes run as tasks planned from the footers (whole files, groups of small ones,
        # row-group runs); the gradient solvers' epochs keep the local blocks and so steps.
        blocks = task_blocks(src, spec, size)
        runner = DaskRunner(client, progress=progress, stall_timeout=stall_timeout)
        return Plan(runner, blocks, steps, notes)
    return Plan(LocalRunner(progress=progress), Blocks.whole(src, spec, size), steps, notes)


def _fit_closed_form(
    plan: Plan, *, solver: str, drop_collinear: bool, cov_type: str
) -> LinearModel:
    """Solve, maybe re-read with a better solver (auto), then the robust pass if asked."""
    spec = plan.blocks.spec
    chosen = family(solver)
    acc = plan.runner.map_reduce(plan.blocks, accumulate_part, chosen.state, label="fit")
    notes: list[str] = []
    # A column without variation is aliased exactly (no rounding involved): re-reading the
    # data with a more accurate solver would find the same, so it is no reason for a second pass.
    constant = _constant_columns(acc.state, spec) if solver == "auto" else set()
    try:
        solution = chosen.solve(
            acc.state, fit_intercept=spec.fit_intercept, drop_collinear=drop_collinear
        )
        suspect = [name for name in solution.aliased if name not in constant]
        ill = solution.condition_number > AUTO_SWITCH_CONDITION
        doubtful = solver == "auto" and (ill or bool(suspect))
        reason = (
            f"a scaled condition number of {solution.condition_number:.1e}, too "
            "ill-conditioned to trust all its digits"
            if ill
            else f"{', '.join(repr(n) for n in suspect)} nearly collinear with other columns, "
            "too close to call with rounding"
        )
    except CollinearityError:
        if solver != "auto" or constant:
            raise
        doubtful, reason = True, "a nearly collinear column, too close to call with rounding"
    if doubtful:
        better = family(second_pass_solver(len(spec.features)))
        acc = plan.runner.map_reduce(
            plan.blocks, accumulate_part, better.state, label=f"fit ({better.name})"
        )
        solution = better.solve(
            acc.state, fit_intercept=spec.fit_intercept, drop_collinear=drop_collinear
        )
        notes.append(
            f"auto: the cholesky pass found {reason}; the data were read a second time and "
            f"solved with {better.name}."
        )
    solution.warnings[:0] = notes
    return _finish(plan, acc, solution, cov_type)


# A deviation from a mean of at least this size is at least ~1e-116: its square cannot underflow.
_TRUSTED_MAGNITUDE = 1e-100


def _constant_columns(state, spec) -> set[str]:
    """Features without variation in the rows used (all zero, without an intercept), read off
    a moment state's centered sums of squares; empty for other states."""
    comoment = getattr(state, "comoment", None)
    if comoment is None:
        return set()
    p = len(spec.features)
    mean = np.abs(state.mean + state.mean_lo)[:p]
    spread = np.diagonal(comoment)[:p] == 0
    if spec.fit_intercept:
        # Zero spread is trusted only where a real deviation could not have underflowed when
        # squared (values far from 1e-154); tiny columns go to the exact second pass instead.
        spread &= mean >= _TRUSTED_MAGNITUDE
    else:
        spread &= mean == 0
    return {name for name, flat in zip(spec.features, spread) if flat}


def _fit_gradient(
    plan: Plan, *, solver: str, options, drop_collinear: bool, cov_type: str
) -> LinearModel:
    opts = GradientOptions.coerce(options).checked()
    if cov_type != "nonrobust" and (opts.holdout or opts.l2):
        raise InputError(
            "robust standard errors (cov_type) are available with the gradient solvers "
            "only without a holdout and without an l2 penalty."
        )
    result = solve_gradient(
        plan.runner, plan.step_blocks, solver=solver, options=opts, drop_collinear=drop_collinear
    )
    return _finish(
        plan,
        result.train.with_counts_of(result.everything),
        result.solution,
        cov_type,
        optimizer=result.record,
    )


def _fit_penalized(plan: Plan, *, solver: str, penalty: Penalty) -> LinearModel:
    """One pass for the state of ``solver``, then the penalized solve (no second pass)."""
    chosen = penalized_family(solver)
    acc = plan.runner.map_reduce(plan.blocks, accumulate_part, chosen.state, label="fit")
    solution = chosen.solve(
        acc.state, fit_intercept=plan.blocks.spec.fit_intercept, penalty=penalty
    )
    return LinearModel.from_accumulation(acc, solution)


def _finish(
    plan: Plan, acc, solution, cov_type: str, *, optimizer: dict | None = None
) -> LinearModel:
    """The model, complete: with the robust pass's covariance when one is asked for."""
    solution.warnings[:0] = plan.notes
    robust = None
    if cov_type != "nonrobust":
        sandwich = plan.runner.map_reduce(
            plan.blocks, sandwich_part, acc.state, solution, cov_type, label=f"{cov_type} pass"
        )
        robust = robust_record(sandwich, acc.state, solution, plan.blocks.spec)
    return LinearModel.from_accumulation(acc, solution, robust=robust, optimizer=optimizer)
