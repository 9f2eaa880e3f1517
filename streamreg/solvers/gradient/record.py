"""What a gradient fit returns: the :class:`~streamreg.solvers.solution.Solution` of its
parameters (OLS inference at them) and the JSON-ready optimizer record."""

from __future__ import annotations

import dataclasses

import numpy as np

from ..moments import MomentState
from ..solution import Solution, intercept_from_means
from .options import GradientOptions
from .problem import Objective, Problem, Reference, original_units
from .runners import RunResult


def make_solution(
    state: MomentState,
    ref: Reference,
    problem: Problem,
    objective: Objective,
    theta: np.ndarray,
    *,
    solver: str,
    options: GradientOptions,
    converged: bool,
    stop_reason: str,
    fit_intercept: bool,
):
    """The :class:`~streamreg.solvers.solution.Solution` of gradient-fitted parameters (see the
    module on inference)."""
    p = len(state.names) - 1
    slopes, free_b = original_units(theta, problem)
    coef = np.full(p, np.nan)
    coef[ref.kept] = slopes
    if problem.free_intercept:
        intercept = free_b
    elif fit_intercept:
        intercept = intercept_from_means(state, coef)
    else:
        intercept = 0.0
    ssr = 2.0 * objective.loss(theta, penalized=False) * state.weight_sum * problem.scale[-1] ** 2
    warnings = list(ref.warnings)
    xtx_inv = ref.xtx_inv
    if options.l2:
        xtx_inv = np.full_like(np.asarray(xtx_inv, dtype=float), np.nan)
        warnings.append(
            "standard errors, t and p values are not reported for a penalized fit (l2 > 0)."
        )
    if not converged:
        warnings.append(f"{solver} did not converge: {stop_reason}.")
    return Solution(
        coef=coef,
        intercept=float(intercept),
        aliased=list(ref.aliased),
        rank=ref.rank,
        condition_number=ref.condition_number,
        ssr=float(ssr),
        tss=float(ref.tss),
        solver=solver,
        warnings=warnings,
        xtx_inv=xtx_inv,
    )


def make_record(
    solver: str,
    opts: GradientOptions,
    result: RunResult,
    problem: Problem,
    *,
    holdout_rows: int = 0,
) -> dict:
    """The JSON-ready ``model.optimizer_`` record."""
    resolved = dataclasses.replace(
        opts,
        tol=opts.resolved_tol(solver),
        learning_rate=result.learning_rate if solver == "sgd" else opts.learning_rate,
    )
    return {
        "solver": solver,
        "options": dataclasses.asdict(resolved),
        "converged": bool(result.converged),
        "stop_reason": result.stop_reason,
        "iterations": int(result.iterations),
        "steps": int(result.steps),
        "passes": int(result.passes),
        "gradient_norm": float(result.gradient_norm),
        "loss": float(result.loss),
        "standardized": bool(opts.standardize),
        "free_intercept": bool(problem.free_intercept),
        "holdout_rows": int(holdout_rows),
        "history": result.history,
        "step_loss": None if result.step_loss is None else [float(v) for v in result.step_loss],
        "inference": "unavailable (l2 penalty)" if opts.l2 else "ols_at_estimate",
    }
