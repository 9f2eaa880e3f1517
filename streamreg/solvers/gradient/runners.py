"""The three gradient solvers, one signature each: ``run(passes, problem, objective, validation,
options, on_epoch) -> RunResult``.

``passes`` knows how to run an SGD epoch over the blocks (a seeded chain) and how to
evaluate the loss and gradient in one pass; the runners know nothing of where the
blocks are.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ...errors import DivergenceError, IllConditionedError, InputError
from .options import ORDER_STREAM, GradientOptions, learning_rate_at
from .problem import Objective, Problem, automatic_learning_rate, block_loss
from .steps import Carry, sgd_block


@dataclass
class RunResult:
    theta: np.ndarray
    converged: bool
    stop_reason: str
    iterations: int
    steps: int
    passes: int
    gradient_norm: float
    loss: float
    history: dict
    learning_rate: float | None = None
    step_loss: list | None = None


class History:
    def __init__(self, validation: bool, rates: bool):
        self.columns = {"iteration": [], "loss": [], "gradient_norm": []}
        self.validation, self.rates = validation, rates
        if validation:
            self.columns["validation_loss"] = []
        if rates:
            self.columns["learning_rate"] = []

    def add(self, iteration: int, loss: float, gradient_norm: float, validation=None, rate=None):
        self.columns["iteration"].append(int(iteration))
        self.columns["loss"].append(float(loss))
        self.columns["gradient_norm"].append(float(gradient_norm))
        if self.validation:
            self.columns["validation_loss"].append(
                None if validation is None else float(validation)
            )
        if self.rates:
            self.columns["learning_rate"].append(None if rate is None else float(rate))

    def as_dict(self) -> dict:
        out = {key: list(values) for key, values in self.columns.items()}
        out.setdefault("validation_loss", None)
        out.setdefault("learning_rate", None)
        return out


class Passes:
    """The two kinds of pass the gradient solvers make over the blocks, through any runner."""

    def __init__(self, runner, blocks):
        self.runner, self.blocks = runner, blocks

    def __len__(self) -> int:
        return len(self.blocks)

    def epoch(
        self,
        order,
        carry: Carry,
        problem: Problem,
        opts: GradientOptions,
        lr: float,
        rows_half: float,
        *,
        label: str = "sgd epoch",
    ) -> Carry:
        """One SGD epoch: the blocks in ``order``, the parameters carried from one to the next."""
        return self.runner.fold(
            self.blocks, order, sgd_block, carry, problem, opts, lr, rows_half, label=label
        )

    def loss_and_gradient(self, problem: Problem, theta: np.ndarray, l2: float):
        """One pass: the loss and gradient of the standardized problem at ``theta``."""
        sums = self.runner.map_reduce(
            self.blocks,
            block_loss,
            problem,
            np.asarray(theta, dtype=np.float64),
            label="loss and gradient",
        )
        if sums.weight <= 0:
            raise InputError("no usable rows to evaluate the loss on.")
        p = problem.n_slopes
        loss = 0.5 * sums.loss / sums.weight + 0.5 * l2 * float(theta[:p] @ theta[:p])
        grad = sums.grad / sums.weight
        grad[:p] += l2 * theta[:p]
        return loss, grad


class EpochMonitor:
    """Divergence after an epoch (or a partial_fit call): the iterate's training loss is not
    finite, or it grew for ``patience`` epochs in a row and now exceeds its starting value."""

    def __init__(self, start_loss: float, patience: int, unit: str = "epoch", losses=None):
        self.start, self.patience, self.unit = start_loss, patience, unit
        self.losses = list(losses) if losses is not None else [start_loss]

    def check(self, carry: Carry, objective: Objective, lr: float, opts: GradientOptions) -> None:
        if carry.failed:
            raise divergence(carry.failed.replace("epoch", self.unit), lr, opts, objective)
        current = objective.loss(carry.theta)
        if not math.isfinite(current):
            raise divergence(
                f"the training loss became non-finite in {self.unit} {len(self.losses)}",
                lr,
                opts,
                objective,
            )
        self.losses.append(current)
        recent = self.losses[-(self.patience + 1) :]
        if (
            len(recent) == self.patience + 1
            and all(b > a for a, b in zip(recent, recent[1:]))
            and recent[-1] > self.start
        ):
            raise divergence(
                f"the training loss grew for {self.patience} {self.unit}s in a row, from "
                f"{recent[0]:.3g} to {recent[-1]:.3g}",
                lr,
                opts,
                objective,
            )


def run_sgd(
    passes: Passes,
    problem: Problem,
    objective: Objective,
    validation,
    opts: GradientOptions,
    on_epoch=None,
) -> RunResult:
    tol = opts.resolved_tol("sgd")
    base = (
        opts.learning_rate
        if opts.learning_rate is not None
        else automatic_learning_rate(objective, opts)
    )
    carry = Carry.start(np.zeros(problem.n_params), opts)
    history = History(validation is not None, rates=True)
    theta = carry.theta.copy()
    start = objective.loss(theta)
    gnorm = float(np.linalg.norm(objective.gradient(theta)))
    history.add(0, start, gnorm, validation.loss(theta) if validation else None)
    monitor = EpochMonitor(start, opts.patience)
    rows_half = objective.n_rows / 2.0
    best_loss, best_theta, best_epoch, since_best = math.inf, None, 0, 0
    converged, reason, epochs_run = False, "", 0
    for epoch in range(opts.epochs):
        lr = learning_rate_at(opts, base, epoch)
        order = np.random.default_rng([opts.seed, ORDER_STREAM, epoch]).permutation(len(passes))
        carry.begin_epoch(epoch)
        carry = passes.epoch(
            order, carry, problem, opts, lr, rows_half, label=f"sgd epoch {epoch + 1}/{opts.epochs}"
        )
        epochs_run = epoch + 1
        monitor.check(carry, objective, lr, opts)
        theta = carry.average(opts.average)
        previous = history.columns["loss"][-1]
        loss = objective.loss(theta)
        gnorm = float(np.linalg.norm(objective.gradient(theta)))
        held_loss = validation.loss(theta) if validation else None
        history.add(epochs_run, loss, gnorm, held_loss, lr)
        if on_epoch is not None:
            on_epoch(epochs_run, theta)
        if validation is not None:
            if held_loss < best_loss:
                best_loss, best_theta, best_epoch, since_best = (
                    held_loss,
                    theta.copy(),
                    epochs_run,
                    0,
                )
            else:
                since_best += 1
        if gnorm <= tol:
            converged, reason = True, f"the gradient norm {gnorm:.3g} is at most tol {tol:g}"
            break
        if opts.loss_rtol is not None and abs(previous - loss) <= opts.loss_rtol * abs(loss):
            converged, reason = (
                True,
                f"the loss changed by at most loss_rtol {opts.loss_rtol:g} (relative)",
            )
            break
        if validation is not None and since_best >= opts.patience:
            theta = best_theta
            converged = True
            reason = (
                f"early stopping: the held-out loss has not improved for {opts.patience} epochs; "
                f"the parameters of epoch {best_epoch} are kept"
            )
            loss = objective.loss(theta)
            gnorm = float(np.linalg.norm(objective.gradient(theta)))
            break
    if not converged:
        reason = (
            f"the budget of {opts.epochs} epochs ran out with the gradient norm {gnorm:.3g} "
            f"above tol {tol:g}"
        )
    passes = 1 + epochs_run
    return RunResult(
        theta,
        converged,
        reason,
        epochs_run,
        carry.steps,
        passes,
        gnorm,
        loss,
        history.as_dict(),
        base,
        carry.step_loss,
    )


def divergence(
    what: str, lr: float, opts: GradientOptions, objective: Objective
) -> DivergenceError:
    """The error for a diverged run, in words, with the step size that would have been used."""
    how = opts.schedule + " schedule"
    if opts.momentum:
        how += f", momentum {opts.momentum:g}"
    if opts.optimizer == "adam":
        how += ", adam"
    automatic = automatic_learning_rate(objective, opts)
    if opts.learning_rate is None:
        advice = (
            f"the automatic learning rate {automatic:.3g} was too large for these data; "
            "pass a smaller learning rate."
        )
    else:
        advice = (
            f"pass a smaller learning rate (the automatic one for these data is {automatic:.3g}), "
            "or leave it unset."
        )
    return DivergenceError(f"sgd diverged: {what} (learning rate {lr:.3g}, {how}); {advice}")


def run_newton(
    passes: Passes,
    problem: Problem,
    objective: Objective,
    validation,
    opts: GradientOptions,
    on_epoch=None,
) -> RunResult:
    from scipy import linalg

    tol = opts.resolved_tol("newton")
    history = History(validation is not None, rates=False)
    theta0 = np.zeros(problem.n_params)
    history.add(
        0,
        objective.loss(theta0),
        np.linalg.norm(objective.gradient(theta0)),
        validation.loss(theta0) if validation else None,
    )
    a, b = objective.hessian()
    theta = theta0.copy()
    if a.size:
        try:
            theta = linalg.cho_solve(linalg.cho_factor(a, lower=True), b)
        except linalg.LinAlgError:
            raise IllConditionedError(
                "the Hessian of the standardized problem is not positive definite "
                "to working precision, so the Newton step is undefined; the "
                "columns are nearly collinear."
            ) from None
    loss, grad = passes.loss_and_gradient(problem, theta, opts.l2)
    gnorm = float(np.linalg.norm(grad))
    history.add(1, loss, gnorm, validation.loss(theta) if validation else None)
    converged = gnorm <= tol
    reason = (
        f"one Newton step; the gradient norm after it (computed in a pass) is {gnorm:.3g}, "
        f"{'at most' if converged else 'above'} tol {tol:g}"
    )
    return RunResult(theta, converged, reason, 1, 1, 2, gnorm, loss, history.as_dict())


def run_lbfgs(
    passes: Passes,
    problem: Problem,
    objective: Objective,
    validation,
    opts: GradientOptions,
    on_epoch=None,
) -> RunResult:
    from scipy.optimize import minimize

    tol = opts.resolved_tol("lbfgs")
    history = History(validation is not None, rates=False)
    cache: dict[bytes, tuple[float, np.ndarray]] = {}

    def evaluate(theta):
        key = np.asarray(theta, dtype=np.float64).tobytes()
        if key not in cache:
            cache[key] = passes.loss_and_gradient(
                problem, np.asarray(theta, dtype=np.float64), opts.l2
            )
        loss, grad = cache[key]
        return loss, grad.copy()

    def record(theta):
        loss, grad = evaluate(theta)
        history.add(
            len(history.columns["iteration"]),
            loss,
            np.linalg.norm(grad),
            validation.loss(theta) if validation else None,
        )

    def callback(intermediate_result):
        record(intermediate_result.x)

    theta0 = np.zeros(problem.n_params)
    record(theta0)
    n = max(problem.n_params, 1)
    result = minimize(
        evaluate,
        theta0,
        jac=True,
        method="L-BFGS-B",
        callback=callback,
        options={
            "maxiter": opts.max_iter,
            "gtol": tol / math.sqrt(n),
            "ftol": 0.0 if opts.loss_rtol is None else opts.loss_rtol,
        },
    )
    theta = np.asarray(result.x, dtype=np.float64)
    loss, grad = evaluate(theta)
    gnorm = float(np.linalg.norm(grad))
    message = str(result.message)
    if gnorm <= tol:
        converged, reason = True, f"the gradient norm {gnorm:.3g} is at most tol {tol:g}"
    elif opts.loss_rtol is not None and "REL_REDUCTION_OF_F" in message:
        converged, reason = (
            True,
            f"the loss changed by at most loss_rtol {opts.loss_rtol:g} (relative)",
        )
    else:
        converged = False
        reason = (
            f"L-BFGS-B stopped ({message}) with the gradient norm {gnorm:.3g} above tol {tol:g}"
        )
    return RunResult(
        theta,
        converged,
        reason,
        int(result.nit),
        int(result.nfev),
        1 + len(cache),
        gnorm,
        loss,
        history.as_dict(),
    )


# The solvers of this family by name, one signature each.
RUNNERS = {"sgd": run_sgd, "newton": run_newton, "lbfgs": run_lbfgs}
