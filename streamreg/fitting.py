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

from .design import resolve_spec
from .engine.blocks import Blocks
from .engine.dask_runner import DaskRunner, collection_blocks, is_dask_collection
from .engine.local import LocalRunner
from .engine.scan import accumulate_part, resolve_batch_size
from .errors import CollinearityError, InputError
from .io.inputs import to_source
from .io.sources import InMemorySource
from .model.covariance import CovarianceRequest, check_use_t, parse_covariance
from .model.linear_model import LinearModel
from .model.residual_pass import PassPlan, finish, residual_part, ssr_plan
from .solvers import (
    AUTO_SWITCH_CONDITION,
    GRADIENT_SOLVERS,
    check_solver,
    family,
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
    gradient=None,
    sgd=None,
) -> LinearModel:
    """Fit ordinary (or weighted) least squares in one streaming pass.

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
    nulls : {"drop", "error"}
        Rows with a null or NaN in a used column are dropped and counted, or refused.
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
        (:mod:`streamreg.model.residual_pass`).
    progress : bool or None
        A progress line (None: only on a terminal).
    client : distributed.Client, optional
        Run a Parquet fit on a cluster, its workers reading the files.
    gradient : GradientOptions or dict, optional
        Options of the gradient solvers (``sgd=`` is the older name); the model then
        records the optimization in ``model.optimizer_``.

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
    names = dict(
        target=target,
        features=features,
        exclude=exclude,
        fit_intercept=fit_intercept,
        nulls=nulls,
        groups=cov.groups,
    )
    plan = _plan(
        source, y, weight=weight, batch_size=batch_size, progress=progress, client=client, **names
    )
    after = _After(cov, use_t, plan.in_memory if diagnostics is None else diagnostics)
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


def _plan(source, y, *, weight, batch_size, progress, client, **names) -> Plan:
    def resolved(spec):
        return resolve_batch_size(len(spec.columns), batch_size)

    if is_dask_collection(source) or is_dask_collection(y):
        blocks = collection_blocks(source, y, weight=weight, batch_size=resolved, **names)
        return Plan(DaskRunner(client), blocks, blocks)
    src, target, weight = to_source(source, y, target=names.pop("target"), weight=weight)
    spec = resolve_spec(src, target=target, weight=weight, **names)
    size = resolved(spec)
    in_memory = isinstance(src, InMemorySource)
    if client is not None:
        blocks = Blocks.per_file(src, spec, size)
        return Plan(DaskRunner(client), blocks, blocks, in_memory)
    steps = Blocks.slices(src, spec, size) if in_memory else Blocks.per_file(src, spec, size)
    return Plan(LocalRunner(progress=progress), Blocks.whole(src, spec, size), steps, in_memory)


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

    try:
        solution = solved(chosen, acc.state)
        doubtful = solver == "auto" and (
            solution.condition_number > AUTO_SWITCH_CONDITION or bool(solution.aliased)
        )
        reason = f"condition number {solution.condition_number:.1e}"
    except CollinearityError:
        if solver != "auto":
            raise
        doubtful, reason = True, "a nearly collinear column"
    if doubtful and rank_deficient == "minimum_norm" and solution.solver == "minimum_norm":
        doubtful = False  # scikit-learn's rank decision, taken on this state, is the answer
    if doubtful:
        better = family(second_pass_solver(len(spec.features)))
        acc = plan.runner.map_reduce(
            plan.blocks, accumulate_part, better.state, label=f"fit ({better.name})"
        )
        solution = solved(better, acc.state)
        notes.append(
            f"auto: the cholesky pass found {reason}, too ill-conditioned to trust all its "
            f"digits; the data were read a second time and solved with {better.name}."
        )
    solution.warnings[:0] = notes
    return _finish(plan, acc, solution, after)


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


def _finish(
    plan: Plan, acc, solution, after: _After, *, optimizer: dict | None = None
) -> LinearModel:
    """The model, complete: with the residual pass's robust covariance, diagnostics and SSR
    when one is asked for (or the first pass's SSR lost digits)."""
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
