"""Online SGD: what ``partial_fit`` with ``solver="sgd"`` carries from one chunk to the next."""

from __future__ import annotations

import copy
import dataclasses

import numpy as np

from ...design import DesignSpec
from ...engine.blocks import Blocks
from ...engine.local import LocalRunner
from ...errors import InputError
from ...io.sources import InMemorySource
from ..moments import MomentState
from ..solution import Solution
from .options import ORDER_STREAM, GradientOptions, learning_rate_at
from .problem import Objective, Problem, automatic_learning_rate, reference
from .record import make_record, make_solution
from .runners import EpochMonitor, History, Passes, RunResult
from .steps import Carry


class OnlineSGD:
    """What ``StreamingLinearRegression(solver="sgd").partial_fit`` carries between calls.

    Each call takes one SGD pass (an "epoch" of the schedule) over its chunk. The
    standardization is frozen at the first call (the first chunk's means and scales,
    or the fitted model's after ``fit``), so the parameters keep one coordinate system;
    the intercept is therefore a parameter here (the chunks' means drift from the
    first one's). Loss, gradient and the model come from the moments of every row seen.
    """

    def __init__(
        self,
        options: GradientOptions,
        problem: Problem,
        learning_rate: float,
        carry: Carry,
        calls: int,
        history: History,
        monitor: EpochMonitor | None,
    ):
        self.options, self.problem, self.learning_rate = options, problem, learning_rate
        self.carry, self.calls, self.history, self.monitor = carry, calls, history, monitor

    @classmethod
    def first(cls, chunk_state: MomentState, options, *, fit_intercept: bool) -> OnlineSGD:
        opts = GradientOptions.coerce(options).checked()
        if opts.holdout:
            raise InputError("holdout applies to fit; partial_fit steps on every row it is given.")
        p = len(chunk_state.names) - 1
        variances = np.diagonal(chunk_state.comoment)[:p]
        if chunk_state.n_rows < 2 or (
            opts.standardize and fit_intercept and not (variances > 0).all()
        ):
            flat = [chunk_state.names[j] for j in range(p) if not variances[j] > 0]
            which = f"column '{flat[0]}' is constant in it" if flat else "it has fewer than 2 rows"
            raise InputError(
                f"partial_fit with solver='sgd' standardizes with the first chunk's means and "
                f"scales, but {which}; give a first chunk with varied values."
            )
        problem = dataclasses.replace(
            Problem.build(
                chunk_state, np.arange(p), fit_intercept=fit_intercept, standardize=opts.standardize
            ),
            free_intercept=fit_intercept,
        )
        objective = Objective(chunk_state, problem, opts.l2)
        rate = (
            opts.learning_rate
            if opts.learning_rate is not None
            else automatic_learning_rate(objective, opts)
        )
        theta = np.zeros(problem.n_params)
        return cls(
            opts, problem, rate, Carry.start(theta, opts), 0, History(False, rates=True), None
        )

    @classmethod
    def after_fit(cls, model, options) -> OnlineSGD:
        """Continue from a model fitted with ``solver="sgd"`` (the optimizer's moments restart)."""
        record = model.optimizer_
        if record is None or record["solver"] != "sgd":
            raise InputError(
                "partial_fit with solver='sgd' continues only a model fitted with solver='sgd'."
            )
        if model.aliased_:
            raise InputError(
                "partial_fit with solver='sgd' cannot continue a fit that dropped collinear "
                "columns."
            )
        saved = dict(record["options"])
        opts = GradientOptions.coerce(
            options if options is not None else {**saved, "tol": None}
        ).checked()
        state = model.state_
        p = len(state.names) - 1
        problem = dataclasses.replace(
            Problem.build(
                state, np.arange(p), fit_intercept=model.fit_intercept, standardize=opts.standardize
            ),
            free_intercept=model.fit_intercept,
        )
        theta = np.zeros(problem.n_params)
        theta[:p] = model.coef_ * problem.scale[:p] / problem.scale[p]
        if problem.free_intercept:
            center = problem.center_hi + problem.center_lo
            theta[p] = (model.intercept_ - center[p] + model.coef_ @ center[:p]) / problem.scale[p]
        rate = saved["learning_rate"] if opts.learning_rate is None else opts.learning_rate
        history = History(False, rates=True)
        for i, loss, g, lr in zip(
            record["history"]["iteration"],
            record["history"]["loss"],
            record["history"]["gradient_norm"],
            record["history"]["learning_rate"] or [None] * len(record["history"]["loss"]),
        ):
            history.add(i, loss, g, None, lr)
        losses = record["history"]["loss"]
        monitor = EpochMonitor(losses[0], opts.patience, "partial_fit call", losses=losses)
        return cls(
            opts,
            problem,
            float(rate),
            Carry.start(theta, opts),
            int(record["iterations"]),
            history,
            monitor,
        )

    def step(
        self,
        source: InMemorySource,
        spec: DesignSpec,
        state: MomentState,
        *,
        chunk_rows: int,
        batch_size: int,
    ) -> OnlineSGD:
        """One SGD pass over ``source``; returns the new carrier (this one is left as it was)."""
        online = copy.deepcopy(self)
        opts, problem = online.options, online.problem
        passes = Passes(LocalRunner(progress=False), Blocks.slices(source, spec, batch_size))
        objective = Objective(state, problem, opts.l2)
        if online.monitor is None:
            start = objective.loss(online.carry.theta)
            online.monitor = EpochMonitor(start, opts.patience, "partial_fit call")
            online.history.add(0, start, np.linalg.norm(objective.gradient(online.carry.theta)))
        epoch = online.calls
        lr = learning_rate_at(opts, online.learning_rate, epoch)
        order = np.random.default_rng([opts.seed, ORDER_STREAM, epoch]).permutation(len(passes))
        online.carry.begin_epoch(epoch)
        online.carry = passes.epoch(order, online.carry, problem, opts, lr, chunk_rows / 2.0)
        online.calls += 1
        online.monitor.check(online.carry, objective, lr, opts)
        theta = online.carry.average(opts.average)
        online.history.add(
            online.calls, objective.loss(theta), np.linalg.norm(objective.gradient(theta)), None, lr
        )
        online.theta = theta
        return online

    def solution(self, state: MomentState, *, fit_intercept: bool) -> tuple[Solution, dict]:
        """The solution of the parameters so far over every row seen, and the optimizer record
        (raises while the rows cannot be solved)."""
        ref = reference(state, fit_intercept=fit_intercept, drop_collinear=False)
        objective = Objective(state, self.problem, self.options.l2)
        theta = self.theta
        tol = self.options.resolved_tol("sgd")
        gnorm = float(np.linalg.norm(objective.gradient(theta)))
        converged = gnorm <= tol
        reason = (
            f"after {self.calls} partial_fit call{'s' if self.calls != 1 else ''} the gradient "
            "norm "
            f"{gnorm:.3g} is {'at most' if converged else 'above'} tol {tol:g}"
        )
        solution = make_solution(
            state,
            ref,
            self.problem,
            objective,
            theta,
            solver="sgd",
            options=self.options,
            converged=True,
            stop_reason=reason,
            fit_intercept=fit_intercept,
        )
        result = RunResult(
            theta,
            converged,
            reason,
            self.calls,
            self.carry.steps,
            self.calls,
            gnorm,
            objective.loss(theta),
            self.history.as_dict(),
            self.learning_rate,
            self.carry.step_loss,
        )
        return solution, make_record("sgd", self.options, result, self.problem)
