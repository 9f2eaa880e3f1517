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
from dataclasses import dataclass, replace

import numpy as np

from .design import resolve_spec
from .engine.blocks import Blocks
from .engine.dask_runner import DaskRunner, collection_blocks, is_dask_collection
from .engine.local import LocalRunner
from .engine.scan import accumulate_part, resolve_batch_size
from .errors import CollinearityError, InputError, parameter
from .io.inputs import to_source
from .io.sources import InMemorySource
from .model.covariance import CovarianceRequest, check_use_t, parse_covariance
from .model.linear_model import LinearModel
from .model.residual_pass import PassPlan, finish, residual_part, ssr_plan
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
from .solvers.minimum_norm import check_rank_deficient, solve_least_norm


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
    in_memory: bool = False  # a second pass over the rows is cheap (no file is read again)


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
    rank_deficient: str | None = None,
    cov_type: str | None = None,
    groups: str | Sequence[str] | None = None,
    maxlags: int | None = None,
    use_t: bool | None = None,
    diagnostics: bool | None = None,
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
        Collinear columns get no coefficient (R's ``NA``) instead of an error; the same as
        ``rank_deficient="alias"``.
    rank_deficient : {"error", "alias", "minimum_norm"}, optional
        What a rank-deficient (or under-determined) design gives: an error naming the
        columns (the default), R-style aliasing (``drop_collinear=True``), or scikit-learn
        ``LinearRegression``'s minimum-norm solution (:mod:`streamreg.solvers.minimum_norm`).
    cov_type : str, optional
        ``HC0`` … ``HC3``; ``"cluster:COLUMN"`` (or ``cluster`` with ``groups=COLUMN``);
        two-way ``"cluster:COLUMN,COLUMN"``; Newey–West ``"HAC:LAGS"`` (or ``HAC`` with
        ``maxlags=``) over the data's order: a second pass for robust standard errors
        (:mod:`streamreg.model.covariance`).
    use_t : bool, optional
        Student's t (with ``G − 1`` degrees of freedom for clusters) for p values, intervals
        and tests; None: only without a robust covariance (statsmodels' default).
    diagnostics : bool, optional
        Run the residual pass for statsmodels' bottom block (``model.diagnostics``: Omnibus,
        skew, kurtosis, Durbin–Watson in the data's order, Jarque–Bera). None: for in-memory
        data only (a second read of files or a Dask graph is not free). The pass also runs,
        whatever this says, when the first pass's SSR lost digits
        (:mod:`streamreg.model.residual_pass`). A penalized fit (``alpha``) gets the same
        diagnostics of its residuals and keeps its solver's SSR; ``use_t`` and
        ``rank_deficient="minimum_norm"`` are refused with ``alpha``.
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
    cov = parse_covariance(cov_type, groups, maxlags)
    use_t = check_use_t(use_t)
    rank_deficient = check_rank_deficient(rank_deficient, drop_collinear)
    if diagnostics is not None and not isinstance(diagnostics, bool):
        raise InputError(f"diagnostics must be True, False or None; got {diagnostics!r}.")
    if rank_deficient == "minimum_norm" and solver in GRADIENT_SOLVERS:
        raise InputError(
            "rank_deficient='minimum_norm' is a closed-form solve; the gradient solvers "
            f"({', '.join(GRADIENT_SOLVERS)}) take rank_deficient='alias' or 'error'."
        )
    if penalty is not None:
        _refuse_with_penalty(use_t, rank_deficient)
    names = dict(
        target=target,
        features=features,
        exclude=exclude,
        fit_intercept=fit_intercept,
        nulls=nulls,
        groups=cov.groups,
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
    after = _After(cov, use_t, plan.in_memory if diagnostics is None else diagnostics)
    if penalty is not None:
        return _fit_penalized(plan, solver=solver, penalty=penalty, after=after)
    if solver in GRADIENT_SOLVERS:
        return _fit_gradient(
            plan,
            solver=solver,
            options=options,
            drop_collinear=rank_deficient == "alias",
            after=after,
        )
    return _fit_closed_form(plan, solver=solver, rank_deficient=rank_deficient, after=after)


@dataclass(frozen=True)
class _After:
    """What the fit does after its solve: the robust covariance, ``use_t``, diagnostics."""

    cov: CovarianceRequest
    use_t: bool | None
    diagnostics: bool


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


def _refuse_with_penalty(use_t, rank_deficient: str) -> None:
    """The least-squares options that mean nothing for a penalized fit, refused in words."""
    if use_t is not None:
        raise InputError(
            f"{parameter('use_t', use_t)} chooses the distribution of t tests and intervals, "
            f"which a penalized fit ({parameter('alpha')}) does not have: its shrunk estimates "
            "are biased."
        )
    if rank_deficient == "minimum_norm":
        raise InputError(
            f"{parameter('rank_deficient', 'minimum_norm')} picks one of many least-squares "
            f"solutions; a penalized fit ({parameter('alpha')}) has a unique one of its own."
        )


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
    in_memory = isinstance(src, InMemorySource)
    notes = tuple(src.notes(spec.columns, default_features=names["features"] is None))
    if client is not None:
        blocks = Blocks.per_file(src, spec, size)
        runner = DaskRunner(client, progress=progress, stall_timeout=stall_timeout)
        return Plan(runner, blocks, blocks, notes, in_memory)
    steps = Blocks.slices(src, spec, size) if in_memory else Blocks.per_file(src, spec, size)
    runner = LocalRunner(progress=progress)
    return Plan(runner, Blocks.whole(src, spec, size), steps, notes, in_memory)


def _fit_closed_form(plan: Plan, *, solver: str, rank_deficient: str, after: _After) -> LinearModel:
    """Solve, maybe re-read with a better solver (auto), then the residual pass if needed."""
    spec = plan.blocks.spec
    chosen = family(solver)
    acc = plan.runner.map_reduce(plan.blocks, accumulate_part, chosen.state, label="fit")
    notes: list[str] = []
    drop_collinear = rank_deficient != "error"

    def solved(fam, state):
        if rank_deficient == "minimum_norm":
            return solve_least_norm(state, fam.solve, fit_intercept=spec.fit_intercept)
        return fam.solve(state, fit_intercept=spec.fit_intercept, drop_collinear=drop_collinear)

    # A column without variation is aliased exactly (no rounding involved): re-reading the
    # data with a more accurate solver would find the same, so it is no reason for a second pass.
    constant = _constant_columns(acc.state, spec) if solver == "auto" else set()
    try:
        solution = solved(chosen, acc.state)
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
    if doubtful and rank_deficient == "minimum_norm" and solution.solver == "minimum_norm":
        doubtful = False  # scikit-learn's rank decision, taken on this state, is the answer
    if doubtful:
        better = family(second_pass_solver(len(spec.features)))
        acc = plan.runner.map_reduce(
            plan.blocks, accumulate_part, better.state, label=f"fit ({better.name})"
        )
        solution = solved(better, acc.state)
        notes.append(
            f"auto: the cholesky pass found {reason}; the data were read a second time and "
            f"solved with {better.name}."
        )
    solution.warnings[:0] = notes
    return _finish(plan, acc, solution, after)


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
    plan: Plan, *, solver: str, options, drop_collinear: bool, after: _After
) -> LinearModel:
    opts = GradientOptions.coerce(options).checked()
    if after.cov.robust and (opts.holdout or opts.l2):
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
        after,
        optimizer=result.record,
    )


def _fit_penalized(plan: Plan, *, solver: str, penalty: Penalty, after: _After) -> LinearModel:
    """One pass for the state of ``solver``, then the penalized solve; a second pass only for
    the residual diagnostics when asked (they describe any fit's residuals). The solver's SSR
    is kept: the SSR policy of least squares (:func:`ssr_plan`) is not applied."""
    chosen = penalized_family(solver)
    acc = plan.runner.map_reduce(plan.blocks, accumulate_part, chosen.state, label="fit")
    solution = chosen.solve(
        acc.state, fit_intercept=plan.blocks.spec.fit_intercept, penalty=penalty
    )
    diagnostics = None
    if after.diagnostics:
        pass_plan = PassPlan(diagnostics=True)
        merged = plan.runner.map_reduce(
            plan.blocks, residual_part, acc.state, solution, pass_plan, label="residual pass"
        )
        results = finish(merged, acc.state, solution, plan.blocks.spec, pass_plan)
        diagnostics = results.diagnostics
    return LinearModel.from_accumulation(acc, solution, diagnostics=diagnostics)


def _finish(
    plan: Plan, acc, solution, after: _After, *, optimizer: dict | None = None
) -> LinearModel:
    """The model, complete: with the residual pass's robust covariance, diagnostics and SSR
    when one is asked for (or the first pass's SSR lost digits)."""
    solution.warnings[:0] = plan.notes
    spec = plan.blocks.spec
    recompute, compensated = ssr_plan(
        acc.state, solution, spec.fit_intercept, in_memory=plan.in_memory
    )
    wanted = after.diagnostics
    if optimizer is not None and optimizer.get("holdout_rows"):
        # The pass would read the held-out rows too: no diagnostics with a holdout.
        wanted = recompute = compensated = False
    pass_plan = PassPlan(after.cov, wanted or recompute, recompute, compensated)
    robust = diagnostics = None
    if pass_plan.needed:
        label = f"{after.cov.label} pass" if after.cov.robust else "residual pass"
        merged = plan.runner.map_reduce(
            plan.blocks, residual_part, acc.state, solution, pass_plan, label=label
        )
        results = finish(merged, acc.state, solution, spec, pass_plan)
        # Diagnostics computed only for the SSR are not attached: the model says what was asked.
        robust, diagnostics = results.robust, results.diagnostics if wanted else None
        if results.ssr is not None:
            solution = replace(solution, ssr=results.ssr, warnings=list(solution.warnings))
        solution.warnings.extend(results.notes)
    return LinearModel.from_accumulation(
        acc,
        solution,
        robust=robust,
        optimizer=optimizer,
        diagnostics=diagnostics,
        use_t=after.use_t,
    )
