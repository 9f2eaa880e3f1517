r"""Gradient solvers: minibatch SGD over the blocks of a Dask collection, one Newton step, L-BFGS.

**The problem.** All three minimize the weighted mean squared error of the
*standardized* problem (plus an optional ridge penalty)

    L(θ) = ½ Σ wᵢ (x̃ᵢᵀθ − ỹᵢ)² / Σ wᵢ  +  ½ l2 ‖θ‖² ,
    x̃ⱼ = (xⱼ − μⱼ)/sⱼ ,  ỹ = (y − μ_y)/s_y ,

with the means ``μ`` and standard deviations ``s`` of a first streaming pass (the
:class:`~streamreg.solvers.moments.MomentState` every solver accumulates). Offsets (columns near
1e6) and scales (1e-2 … 1e2) then cost nothing: the Hessian ``A = E[x̃x̃ᵀ]`` is the
correlation matrix of the features. With an intercept, centering at the training
means makes the optimal standardized intercept exactly 0 whatever θ is, so it is not
stepped (nor penalized): ``b = μ_y − μ_xᵀβ``, as the exact solvers compute it. The
model is reported in original units, ``βⱼ = θⱼ s_y/sⱼ``. Without an intercept the
columns are scaled by their root mean square and not centered. ``standardize=False``
steps on the raw columns, with the intercept as a parameter — for comparison: the
offsets and scales then decide the speed. ``l2`` penalizes the standardized slopes
(glmnet's ``standardize=TRUE``), so it does not depend on the columns' units.

**SGD** (``solver="sgd"``). Each epoch visits the blocks — Parquet files, Dask
partitions or row blocks, slices of in-memory data — in a seeded random order, reads
each in record batches, shuffles the rows of each batch (seeded by seed, epoch, block
and batch) and takes one step per minibatch of ``minibatch`` rows:
``θ ← θ − η g`` with ``g = X̃_bᵀ(X̃_bθ − ỹ_b)/m`` (heavy-ball ``momentum``, or Adam).
The step size defaults to ``η = b/(tr A + (b − 1) λ_max(A))`` for minibatch size ``b``
— the largest step for which minibatch SGD on least squares is stable, up to a
constant (Jain, Kakade, Kidambi, Netrapalli & Sidford 2018) — computed from the first
pass's state; ``(1 − momentum)·η`` with momentum; ``0.01`` for Adam. Schedules:
``constant``, ``invscaling`` (``η/(1 + e)^power_t`` in epoch ``e``) and ``step``
(``η·step_factor^⌊e/step_epochs⌋``). A constant step leaves the iterate jittering
around the optimum at a distance of order ``√(η σ²/b)``; so by default the model
reports the *suffix average* of the iterates over the latter half of the run, counted
in half epochs (Rakhlin, Shamir & Sridharan 2012; for least squares averaging reaches
the ``σ²p/n`` rate, Bach & Moulines 2013), which keeps the bias of early iterates out
of the average. A noise floor remains:
about ``√((1 − R²)/(kn))`` per standardized coefficient after ``k`` epochs of ``n``
rows, so 1e-6 takes many epochs on noisy data; ``newton`` gets there in one step.

**Newton** (``solver="newton"``). The loss is quadratic, so one Newton step from 0
with the Hessian ``A`` of the first pass's state solves it exactly (the normal
equations, on the standardized scale); a second pass computes the gradient at the
result, which is what ``gradient_norm`` reports. **L-BFGS** (``solver="lbfgs"``):
scipy's L-BFGS-B, where each loss-and-gradient evaluation is one pass over the blocks
(per-block sums merged by a tree reduction); it needs no p×p solve.

**Convergence** is checked after every epoch (iteration) on the model's parameters,
with the loss and gradient of the training rows computed *exactly* from the first
pass's state (the loss is quadratic in θ, so no pass is needed): converged when the
gradient norm ≤ ``tol`` (default 1e-4 for sgd, 1e-6 for newton and lbfgs) or, if
``loss_rtol`` is given, when the loss changed by at most ``loss_rtol`` relatively.
``holdout`` keeps a seeded fraction of the rows out of the steps; their loss (from a
state of their own) stops the run when it has not improved for ``patience`` epochs,
and the best epoch's parameters are kept. A learning rate that diverges — the loss of
the iterate becomes non-finite, or grows for ``patience`` epochs in a row and exceeds
its starting value — raises :class:`DivergenceError` in words; NaN coefficients are
never returned.

**Reproducibility.** The parameters travel through a chain of tasks, one block after
another (a runner's ``fold``, :mod:`streamreg.engine`). With a ``distributed`` client each task
runs on a worker and reads its own block, so only the parameters (a few p-vectors) move between
workers; on the local
scheduler the chain runs in this process, each block computed by Dask in turn. Every
random choice is seeded by position (seed, epoch, block, batch), never by time or by
worker, and sums over blocks are merged in a fixed tree, so a seed gives bit-identical
results on one worker or two. (The alternative — many workers stepping on their own
blocks and averaging — changes the answer with the number of workers.)

**Recorded** in ``model.optimizer_`` (and the model's JSON): the solver, its resolved
options, ``converged`` and why it stopped, iterations (epochs), steps, passes over the
data, the final gradient norm and the per-epoch history (loss, gradient norm,
validation loss, learning rate), with per-step minibatch losses if ``record_steps``.
**Inference**: standard errors, t and p values are those of OLS *at the fitted
coefficients* — ``(XᵀWX)⁻¹`` from the first pass's state (it does not depend on the
coefficients) and σ² from the exact residual sum of squares at them — so they match
OLS to the accuracy of the fit. With ``l2 > 0`` they are not available (NaN).

>>> import numpy as np
>>> from streamreg import fit
>>> x = np.linspace(0.0, 10.0, 50).reshape(-1, 1)
>>> model = fit(x, 0.5 * x[:, 0] + 8, solver="newton")
>>> round(float(model.coef_[0]), 10), round(model.intercept_, 10), model.optimizer_["iterations"]
(0.5, 8.0, 1)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import numpy as np

from ...engine.scan import Accumulation, accumulate_part, accumulate_split_part
from ...errors import InputError
from ..moments import MomentState
from ..solution import Solution, intercept_from_means
from .online import OnlineSGD
from .options import GradientOptions, SGDOptions
from .problem import Objective, Problem, held_out_rows, original_units, reference
from .record import make_record, make_solution
from .runners import RUNNERS, Passes

GRADIENT_SOLVERS = tuple(RUNNERS)

__all__ = [
    "GRADIENT_SOLVERS",
    "GradientFit",
    "GradientOptions",
    "OnlineSGD",
    "SGDOptions",
    "solve_gradient",
]


@dataclass
class GradientFit:
    """What a gradient fit hands back: the training rows' accumulation (the state the model
    reports), the accumulation of every row read (training and held out), the solution and
    the optimizer record."""

    train: Accumulation
    everything: Accumulation
    solution: Solution
    record: dict


def solve_gradient(
    runner,
    blocks,
    *,
    solver: str,
    options=None,
    drop_collinear: bool = False,
    on_epoch: Callable | None = None,
) -> GradientFit:
    """Fit with the gradient solver ``solver`` over ``blocks``, with any runner (local or Dask).

    ``on_epoch(epoch, coef, intercept)`` (sgd only) is called after every epoch with the
    reported parameters in original units (NaN for aliased columns) — for progress or
    for measuring accuracy per epoch (``bench/bench_sgd.py``).
    """
    opts = GradientOptions.coerce(options).checked()
    spec = blocks.spec
    if opts.holdout:
        mask = partial(held_out_rows, opts.seed, fraction=opts.holdout)
        split = runner.map_reduce(
            blocks, accumulate_split_part, MomentState, mask, label="first pass"
        )
        train, held = split.train, split.held
    else:
        train, held = (
            runner.map_reduce(blocks, accumulate_part, MomentState, label="first pass"),
            None,
        )
    state = train.state
    ref = reference(state, fit_intercept=spec.fit_intercept, drop_collinear=drop_collinear)
    problem = Problem.build(
        state,
        ref.kept,
        fit_intercept=spec.fit_intercept,
        standardize=opts.standardize,
        holdout=opts.holdout,
        seed=opts.seed,
    )
    objective = Objective(state, problem, opts.l2)
    validation = None
    if held is not None:
        if held.state.weight_sum <= 0:
            raise InputError(
                f"holdout={opts.holdout:g} held out no usable rows; use a larger "
                "fraction or more data."
            )
        validation = Objective(held.state, problem)
    report = None
    if on_epoch is not None:

        def report(epoch, theta):
            coef = np.full(len(spec.features), np.nan)
            coef[ref.kept], free_b = original_units(theta, problem)
            intercept = (
                free_b
                if problem.free_intercept
                else (intercept_from_means(state, coef) if spec.fit_intercept else 0.0)
            )
            on_epoch(epoch, coef, intercept)

    result = RUNNERS[solver](Passes(runner, blocks), problem, objective, validation, opts, report)
    solution = make_solution(
        state,
        ref,
        problem,
        objective,
        result.theta,
        solver=solver,
        options=opts,
        converged=result.converged,
        stop_reason=result.stop_reason,
        fit_intercept=spec.fit_intercept,
    )
    record = make_record(
        solver, opts, result, problem, holdout_rows=0 if held is None else held.state.n_rows
    )
    everything = train + held if held is not None else train
    return GradientFit(train, everything, solution, record)
