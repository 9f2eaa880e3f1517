"""The fit: inputs → blocks → runner → solver → model.

This is the one orchestration behind ``streamreg fit``, :func:`streamreg.fit`,
the scikit-learn estimator and the Dask path. Its :mod:`~streamreg.planning` decides
*what* is read (the blocks: the whole local source in order, one block per file, slices
of in-memory data, Dask partitions) and *where* (a :class:`LocalRunner` in this process
or a :class:`DaskRunner`); the fit checks its options (:mod:`streamreg.fit_checks`), lets
the solver family do its passes — least squares, or a penalty with ``alpha`` — and builds
the model complete — robust covariance and optimizer record included.

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

from .absorbed import fit_absorbed
from .design import DesignSpec
from .design.levels import DEFAULT_MAX_LEVELS
from .design.request import Request
from .engine.blocks import Blocks
from .engine.scan import Accumulation, accumulate_part
from .errors import CollinearityError, InputError
from .fit_checks import (
    check_absorbed_options,
    check_encoded_solver,
    check_penalty,
    constant_columns,
    refuse_with_penalty,
)
from .model.covariance import CovarianceRequest, check_use_t, parse_covariance
from .model.linear_model import LinearModel
from .model.multi import MultiTargetModel
from .model.residual_pass import PassPlan, finish, residual_part, ssr_plan
from .planning import Plan, plan_fit
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
from .solvers.views import finish_state, select_target


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
    formula: str | None = None,
    categorical: Sequence[str] | str | None = None,
    reference: dict | None = None,
    absorb: Sequence[str] | str | None = None,
    max_levels: int = DEFAULT_MAX_LEVELS,
    alpha: float | None = None,
    l1_ratio: float = 1.0,
    standardize: bool = False,
    tol: float | None = None,
    max_iter: int | None = None,
) -> LinearModel | MultiTargetModel:
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
        The target, when ``source`` is an array ``X`` (2-D: one target per column).
    target, features, exclude, weight : column names
        ``target`` may list several targets: one coefficient vector each, from the same
        pass (a :class:`~streamreg.model.MultiTargetModel`). ``features`` defaults to
        every numeric column except the target, the weight, ``exclude``, Hive partition
        keys and ID-like columns (:mod:`streamreg.design.roles`); text columns named in
        ``features`` are categories, dates and timestamps numbers (days, seconds since
        1970-01-01). ``weight`` may be an array with array inputs.
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
    formula : str, optional
        ``"y ~ x1 + np.log(x2) + C(region) + x1:C(region) | firm"`` (Wilkinson/patsy
        syntax, :mod:`streamreg.design.formula`) instead of ``target``/``features``.
    categorical : column names, optional
        Columns treatment-coded as categories (text columns named as features already
        are; this marks integer or boolean ones).
    reference : dict, optional
        ``{column: level}``: the reference level of a category (default: the first level
        in sorted order).
    absorb : column name, optional
        A fixed effect absorbed by the within estimator (pyfixest's ``y ~ x | firm``):
        no column per level; iid or cluster-robust errors (``cov_type="cluster:COLUMN"``).
    max_levels : int, default 1000
        A category with more levels is refused (absorb it instead).
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
    LinearModel, or MultiTargetModel for several targets
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
    penalty = check_penalty(alpha, l1_ratio, standardize, tol, max_iter, solver, options, cov_type)
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
        refuse_with_penalty(use_t, rank_deficient)
    request = Request.of(
        target=target,
        features=features,
        exclude=exclude,
        weight=None if weight is None or not isinstance(weight, str) else weight,
        fit_intercept=fit_intercept,
        nulls=nulls,
        groups=cov.groups,
        formula=formula,
        categorical=categorical,
        reference=reference,
        absorb=absorb,
        max_levels=max_levels,
    )
    plan = plan_fit(
        source,
        y,
        request,
        weight=weight,
        batch_size=batch_size,
        progress=progress,
        client=client,
        stall_timeout=stall_timeout,
        grouped=solver in ("auto", "cholesky"),
    )
    check_encoded_solver(plan.blocks.spec, solver, cov.cov_type, penalized=penalty is not None)
    after = _After(cov, use_t, plan.in_memory if diagnostics is None else diagnostics)
    if penalty is not None:
        return _fit_penalized(plan, solver=solver, penalty=penalty, after=after)
    if plan.encoded and plan.blocks.spec.absorb:
        check_absorbed_options(plan.blocks.spec, cov, rank_deficient, diagnostics)
        return fit_absorbed(
            plan, drop_collinear=rank_deficient == "alias", cov_type=cov.cov_type, use_t=use_t
        )
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


def fit_blocks(
    runner, blocks: Blocks, *, solver: str = "auto", drop_collinear: bool = False, cov_type=None
) -> LinearModel:
    """The fit of :func:`fit` over ``blocks`` run by ``runner`` — the way in for other engines
    (:mod:`streamreg.spark`). ``cov_type`` is as :func:`fit` takes it; a cluster column must
    already be ``blocks.spec.groups``. No residual diagnostics (another pass) are computed."""
    check_solver(solver)
    after = _After(parse_covariance(cov_type, blocks.spec.groups), None, False)
    plan = Plan(runner, blocks, blocks)
    if solver in GRADIENT_SOLVERS:
        return _fit_gradient(
            plan, solver=solver, options=None, drop_collinear=drop_collinear, after=after
        )
    rank_deficient = check_rank_deficient(None, drop_collinear)
    return _fit_closed_form(plan, solver=solver, rank_deficient=rank_deficient, after=after)


def _fit_closed_form(plan: Plan, *, solver: str, rank_deficient: str, after: _After):
    """Solve, maybe re-read with a better solver (auto), then the residual pass if needed."""
    spec = plan.blocks.spec
    chosen = family(solver)
    acc = _accumulate(plan, chosen, "fit")
    acc, states, stats = _solvable(plan, acc)
    notes: list[str] = []
    fit_intercept = spec.fit_intercept
    drop_collinear = rank_deficient != "error"

    def solved(fam, state):
        if rank_deficient == "minimum_norm":
            return solve_least_norm(state, fam.solve, fit_intercept=fit_intercept)
        return fam.solve(state, fit_intercept=fit_intercept, drop_collinear=drop_collinear)

    # A column without variation is aliased exactly (no rounding involved): re-reading the
    # data with a more accurate solver would find the same, so it is no reason for a second pass.
    constant = (
        constant_columns(acc.state, len(states[0].names) - 1, fit_intercept)
        if solver == "auto"
        else set()
    )
    try:
        solutions = [solved(chosen, state) for state in states]
        worst = max(s.condition_number for s in solutions)
        suspect = list(dict.fromkeys(n for s in solutions for n in s.aliased if n not in constant))
        ill = worst > AUTO_SWITCH_CONDITION
        doubtful = solver == "auto" and (ill or bool(suspect))
        reason = (
            f"a scaled condition number of {worst:.1e}, too ill-conditioned to trust all its digits"
            if ill
            else f"{', '.join(repr(n) for n in suspect)} nearly collinear with other columns, "
            "too close to call with rounding"
        )
    except CollinearityError:
        if solver != "auto" or constant:
            raise
        doubtful, reason = True, "a nearly collinear column, too close to call with rounding"
    if doubtful and rank_deficient == "minimum_norm":
        # scikit-learn's rank decision, taken on this state, is the answer
        doubtful = not all(s.solver == "minimum_norm" for s in solutions)
    if doubtful:
        better = family(_second_pass_solver(spec))
        acc = _accumulate(plan, better, f"fit ({better.name})")
        acc, states, stats = _solvable(plan, acc)
        solutions = [solved(better, state) for state in states]
        notes.append(
            f"auto: the cholesky pass found {reason}; the data were read a second time and "
            f"solved with {better.name}."
        )
    for solution in solutions:
        solution.warnings[:0] = notes
    return _finish(plan, acc, solutions, after, stats=stats)


def _accumulate(plan: Plan, chosen, label: str) -> Accumulation:
    """One pass into the family's state: group sums or dense rows for an encoded design."""
    spec = plan.blocks.spec
    blocks = plan.blocks if not plan.encoded or spec.grouped_for(chosen.state) else plan.dense
    return plan.runner.map_reduce(blocks, accumulate_part, chosen.state, label=label)


def _solvable(plan: Plan, acc: Accumulation):
    """``(accumulation over the design's columns, one state per target, center/scale
    statistics)``: an encoded pass read raw columns of center/scale terms, mapped here."""
    if not plan.encoded:
        return acc, [acc.state], None
    spec = plan.blocks.spec
    state, stats = finish_state(spec.encoder, acc.state)
    acc = Accumulation(
        state, spec, acc.rows_read, acc.dropped, acc.rows_by_file, acc.log_weight_sum
    )
    m = len(spec.targets)
    if m == 1:
        return acc, [state], stats
    return acc, [select_target(state, k, n_targets=m) for k in range(m)], stats


def _second_pass_solver(spec) -> str:
    if not isinstance(spec, DesignSpec) and spec.plan.transformed:
        return "qr"  # center/scale terms are irrational in the raw columns: no exact sums
    return second_pass_solver(len(spec.features))


def _fit_gradient(plan: Plan, *, solver: str, options, drop_collinear: bool, after: _After):
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
        [result.solution],
        after,
        optimizer=result.record,
    )


def _fit_penalized(plan: Plan, *, solver: str, penalty: Penalty, after: _After) -> LinearModel:
    """One pass for the state of ``solver``, then the penalized solve (an encoded design is
    solved over its design columns, as least squares is); a second pass only for the residual
    diagnostics when asked (they describe any fit's residuals). The solver's SSR is kept: the
    SSR policy of least squares (:func:`ssr_plan`) is not applied."""
    chosen = penalized_family(solver)
    acc, (state,), stats = _solvable(plan, _accumulate(plan, chosen, "fit"))
    spec = plan.blocks.spec
    solution = chosen.solve(state, fit_intercept=spec.fit_intercept, penalty=penalty)
    solution.warnings[:0] = plan.notes
    design = None
    if plan.encoded:
        design = spec.design.with_stats(stats) if stats else spec.design
    diagnostics = None
    if after.diagnostics:
        pass_plan = PassPlan(diagnostics=True)
        blocks = replace(plan.dense, spec=spec.finished(stats)) if plan.encoded else plan.blocks
        merged = plan.runner.map_reduce(
            blocks, residual_part, state, solution, pass_plan, label="residual pass"
        )
        diagnostics = finish(merged, state, solution, blocks.spec, pass_plan).diagnostics
    return LinearModel.from_accumulation(
        acc, solution, design=design, columns=plan.columns, diagnostics=diagnostics
    )


def _finish(
    plan: Plan,
    acc,
    solutions: list,
    after: _After,
    *,
    optimizer: dict | None = None,
    stats: dict | None = None,
):
    """The model, complete: with the residual pass's robust covariance, diagnostics and SSR
    when one is asked for (or the first pass's SSR lost digits) — one model per target, from
    the shared state, for several targets."""
    spec = plan.blocks.spec
    for solution in solutions:
        solution.warnings[:0] = plan.notes
    if not plan.encoded:
        (solution,) = solutions
        solution, robust, diagnostics = _residual_pass(
            plan, plan.blocks, acc.state, solution, after, optimizer
        )
        return LinearModel.from_accumulation(
            acc,
            solution,
            robust=robust,
            optimizer=optimizer,
            columns=plan.columns,
            diagnostics=diagnostics,
            use_t=after.use_t,
        )
    design = spec.design.with_stats(stats) if stats else spec.design
    finished = spec.finished(stats)
    m = len(solutions)
    models = []
    for k, solution in enumerate(solutions):
        state = acc.state if m == 1 else select_target(acc.state, k, n_targets=m)
        target_acc = Accumulation(
            state, spec, acc.rows_read, acc.dropped, acc.rows_by_file, acc.log_weight_sum
        )
        target_spec = finished if m == 1 else finished.for_target(k)
        blocks = replace(plan.dense, spec=target_spec)
        where = f" ({target_spec.target})" if m > 1 else ""
        solution, robust, diagnostics = _residual_pass(
            plan, blocks, state, solution, after, optimizer, where
        )
        models.append(
            LinearModel.from_accumulation(
                target_acc,
                solution,
                robust=robust,
                optimizer=optimizer,
                design=design,
                columns=plan.columns,
                diagnostics=diagnostics,
                use_t=after.use_t,
            )
        )
    return models[0] if m == 1 else MultiTargetModel(models, acc.state)


def _residual_pass(plan: Plan, blocks, state, solution, after: _After, optimizer, where=""):
    """``(solution, robust, diagnostics)`` after the residual pass over ``blocks`` when one is
    needed: the robust covariance, the diagnostics asked for, an SSR that lost digits
    recomputed (:mod:`streamreg.model.residual_pass`)."""
    spec = blocks.spec
    recompute, compensated = ssr_plan(state, solution, spec.fit_intercept, in_memory=plan.in_memory)
    wanted = after.diagnostics
    if optimizer is not None and optimizer.get("holdout_rows"):
        # The pass would read the held-out rows too: no diagnostics with a holdout.
        wanted = recompute = compensated = False
    pass_plan = PassPlan(after.cov, wanted or recompute, recompute, compensated)
    if not pass_plan.needed:
        return solution, None, None
    label = (f"{after.cov.label} pass" if after.cov.robust else "residual pass") + where
    merged = plan.runner.map_reduce(blocks, residual_part, state, solution, pass_plan, label=label)
    results = finish(merged, state, solution, spec, pass_plan)
    if results.ssr is not None:
        solution = replace(solution, ssr=results.ssr, warnings=list(solution.warnings))
    solution.warnings.extend(results.notes)
    # Diagnostics computed only for the SSR are not attached: the model says what was asked.
    return solution, results.robust, results.diagnostics if wanted else None
