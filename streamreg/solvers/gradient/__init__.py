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
of the average. Budgets (tested on 1e5 rows of 10 independent features with offsets up
to 1e6, R² ≈ 0.99): the defaults, ``momentum=0.9`` and ``optimizer="adam"`` each land
within 1e-3 of the exact fit (|Δβⱼ|·sⱼ/s_y) in 5 epochs. A noise floor remains:
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
another. With a ``distributed`` client each task runs on a worker and reads its own
block, so only the parameters (a few p-vectors) move between workers; on the local
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

import copy
import csv
import dataclasses
import io
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from ...design import DesignSpec, batch_arrays
from ...errors import DivergenceError, IllConditionedError, InputError, ModelFormatError
from ...io.sources import InMemorySource, Source
from .. import GRADIENT_SOLVERS
from ..moments import MomentState

SCHEDULES = ("constant", "invscaling", "step")
OPTIMIZERS = ("sgd", "adam")
DEFAULT_TOL = {"sgd": 1e-4, "newton": 1e-6, "lbfgs": 1e-6}
ADAM_LEARNING_RATE = 0.01
# Averaging keeps at most this many half-epoch segments (the last 128 epochs).
MAX_SEGMENTS = 256
# A block's task is submitted this many blocks ahead of the one running (bounded memory).
LOOKAHEAD = 2
# Independent random streams, by their first key after the seed.
_ORDER, _SPLIT, _ROWS = 0, 1, 2


# ---------------------------------------------------------------------- options
@dataclass(frozen=True)
class SGDOptions:
    """Options of the gradient solvers (``sgd``; ``newton`` and ``lbfgs`` use ``l2``,
    ``standardize``, ``tol``, ``loss_rtol``, ``max_iter`` and ``holdout``).

    learning_rate: step size on the standardized problem (None: automatic, see the module).
    schedule: ``constant``, ``invscaling`` (``η/(1+epoch)^power_t``) or ``step``
    (``η·step_factor^⌊epoch/step_epochs⌋``). minibatch: rows per step. epochs: at most
    this many passes of steps. max_iter: L-BFGS iterations. seed: every random choice.
    momentum: heavy-ball momentum (0 ≤ momentum < 1). optimizer: ``sgd`` or ``adam``
    (``beta1``, ``beta2``, ``epsilon``). l2: ridge penalty on the standardized slopes.
    average: report the suffix average of the iterates (else the last one). standardize:
    step on standardized columns. tol: gradient-norm tolerance (None: 1e-4 for sgd, 1e-6
    otherwise). loss_rtol: stop when the loss changes by at most this, relatively.
    holdout: fraction of rows held out for early stopping; patience: epochs without
    improvement (also: epochs of growth that count as divergence). record_steps: keep
    the minibatch loss of every step.
    """

    learning_rate: float | None = None
    schedule: str = "constant"
    power_t: float = 0.5
    step_factor: float = 0.5
    step_epochs: int = 1
    minibatch: int = 256
    epochs: int = 10
    max_iter: int = 200
    seed: int = 0
    momentum: float = 0.0
    optimizer: str = "sgd"
    beta1: float = 0.9
    beta2: float = 0.999
    epsilon: float = 1e-8
    l2: float = 0.0
    average: bool = True
    standardize: bool = True
    tol: float | None = None
    loss_rtol: float | None = None
    holdout: float = 0.0
    patience: int = 3
    record_steps: bool = False

    @classmethod
    def coerce(cls, value) -> SGDOptions:
        """``None`` → the defaults; a dict → options (unknown names are an error)."""
        if value is None:
            return cls()
        if isinstance(value, cls):
            return value
        if isinstance(value, dict):
            names = {f.name for f in dataclasses.fields(cls)}
            unknown = sorted(set(value) - names)
            if unknown:
                raise InputError(f"unknown sgd option {unknown[0]!r}; the options are: {', '.join(sorted(names))}.")
            return cls(**value)
        raise InputError(f"sgd options must be an SGDOptions or a dict; got {type(value).__name__}.")

    def checked(self) -> SGDOptions:
        """Validate every option; the error names the option, its value and what is expected."""
        def need(ok: bool, name: str, expected: str):
            if not ok:
                raise InputError(f"{name} must be {expected}; got {getattr(self, name)!r}.")

        def number(name: str, low: float, high: float = math.inf, *, low_open=True, high_open=True,
                   optional=False):
            value = getattr(self, name)
            if optional and value is None:
                return
            ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
            ok = ok and (value > low if low_open else value >= low) and (value < high if high_open else value <= high)
            need(ok, name, _range_words(low, high, low_open, high_open))

        def integer(name: str, low: int):
            value = getattr(self, name)
            need(isinstance(value, int) and not isinstance(value, bool) and value >= low, name,
                 f"an integer ≥ {low}")

        number("learning_rate", 0.0, optional=True)
        need(self.schedule in SCHEDULES, "schedule", f"one of {', '.join(SCHEDULES)}")
        number("power_t", 0.0)
        number("step_factor", 0.0, 1.0, high_open=False)
        integer("step_epochs", 1)
        integer("minibatch", 1)
        integer("epochs", 1)
        integer("max_iter", 1)
        integer("seed", 0)
        number("momentum", 0.0, 1.0, low_open=False)
        need(self.optimizer in OPTIMIZERS, "optimizer", f"one of {', '.join(OPTIMIZERS)}")
        need(not (self.optimizer == "adam" and self.momentum), "momentum",
             "0 with optimizer='adam' (Adam has its own momentum, beta1)")
        number("beta1", 0.0, 1.0, low_open=False)
        number("beta2", 0.0, 1.0, low_open=False)
        number("epsilon", 0.0)
        number("l2", 0.0, low_open=False)
        need(isinstance(self.average, bool), "average", "True or False")
        need(isinstance(self.standardize, bool), "standardize", "True or False")
        number("tol", 0.0, low_open=False, optional=True)
        number("loss_rtol", 0.0, low_open=False, optional=True)
        number("holdout", 0.0, 1.0, low_open=False)
        integer("patience", 1)
        need(isinstance(self.record_steps, bool), "record_steps", "True or False")
        return self

    def resolved_tol(self, solver: str) -> float:
        return DEFAULT_TOL[solver] if self.tol is None else float(self.tol)


def _range_words(low, high, low_open, high_open) -> str:
    if high == math.inf:
        return f"a number {'>' if low_open else '≥'} {low:g}"
    return f"a number in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"


def learning_rate_at(options: SGDOptions, base: float, epoch: int) -> float:
    """The step size of ``epoch`` (0-based) under the options' schedule."""
    if options.schedule == "invscaling":
        return base / (1.0 + epoch) ** options.power_t
    if options.schedule == "step":
        return base * options.step_factor ** (epoch // options.step_epochs)
    return base


# ---------------------------------------------------------------------- the standardized problem
@dataclass(frozen=True)
class Problem:
    """The columns stepped on and their standardization; travels to every task.

    ``columns`` indexes the state's columns (kept features, then the target); a
    batch's values become ``(z − center_hi − center_lo) · inv_scale``.
    """

    columns: np.ndarray
    center_hi: np.ndarray
    center_lo: np.ndarray
    scale: np.ndarray
    free_intercept: bool
    weight_mean: float              # Σw / n over the training rows: weights are divided by it
    holdout: float = 0.0
    seed: int = 0

    @classmethod
    def build(cls, state: MomentState, kept: np.ndarray, *, fit_intercept: bool, standardize: bool,
              holdout: float = 0.0, seed: int = 0) -> Problem:
        p = len(state.names) - 1
        columns = np.r_[np.asarray(kept, dtype=np.intp), p]
        mean = state.mean[columns]
        mean_lo = state.mean_lo[columns]
        var = np.diagonal(state.comoment)[columns] / state.weight_sum
        if not standardize:
            center = np.zeros(len(columns))
            return cls(columns, center, center.copy(), np.ones(len(columns)), fit_intercept,
                       state.weight_sum / state.n_rows, holdout, seed)
        if fit_intercept:
            scale = np.sqrt(var.clip(min=0.0))
            center_hi, center_lo = mean.copy(), mean_lo.copy()
        else:
            full = mean + mean_lo
            scale = np.sqrt(var.clip(min=0.0) + full * full)
            center_hi = center_lo = np.zeros(len(columns))
        scale = np.where(scale > 0.0, scale, 1.0)
        return cls(columns, center_hi, center_lo, scale, False, state.weight_sum / state.n_rows,
                   holdout, seed)

    @property
    def n_slopes(self) -> int:
        return len(self.columns) - 1

    @property
    def n_params(self) -> int:
        return self.n_slopes + int(self.free_intercept)

    def standardized(self, z: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        """A Fortran-ordered copy of ``z[rows]`` over the problem's columns, standardized.

        Column by column: each column of a batch fits in cache, so it is gathered and
        standardized there (a row gather or a transposed copy costs a pass through memory).
        """
        n = len(z) if rows is None else len(rows)
        out = np.empty((n, len(self.columns)), order="F")
        inv = 1.0 / self.scale
        for j, c in enumerate(self.columns):
            column = out[:, j]
            if rows is None:
                column[...] = z[:, c]
            else:
                np.take(z[:, c], rows, out=column, mode="wrap")   # "raise" would buffer `out`
            column -= self.center_hi[j]
            if abs(self.center_lo[j] * inv[j]) > 1e-17:   # below that it moves no standardized value
                column -= self.center_lo[j]
            column *= inv[j]
        return out

    def read(self, source: Source, index: int, spec: DesignSpec, batch_size: int):
        """``(batch number, z, weights)`` of the training rows of one block, in stored order."""
        for number, chunk in enumerate(source.batches(spec.columns, batch_size)):
            arrays = batch_arrays(chunk, spec)
            z, w = arrays.z, arrays.weights
            keep = np.ones(len(z), dtype=bool)
            if not (np.isfinite(z.sum()) and (w is None or np.isfinite(w.sum()))):
                keep = np.isfinite(z).all(axis=1)   # rows with NaN (the first pass dropped them too)
                if w is not None:
                    keep &= np.isfinite(w)
            if self.holdout:
                held = held_out_rows(self.seed, index, number, chunk.batch.num_rows, self.holdout)
                keep &= ~(held if arrays.positions is None else held[arrays.positions])
            if not keep.all():
                z = z[keep]
                w = w[keep] if w is not None else None
            yield number, z, w


def held_out_rows(seed: int, block: int, batch: int, rows: int, fraction: float) -> np.ndarray:
    """The seeded held-out mask of one record batch (by position, so every pass agrees)."""
    return np.random.default_rng([seed, _SPLIT, block, batch]).random(rows) < fraction


class Objective:
    """The loss and gradient of the standardized problem over the rows of a state — exact, no pass.

    With ``u = [θ, −1]`` over the standardized columns and the state's standardized
    covariance ``Ŝ`` and mean offset ``m̂ = (μ − center)/s``, the residual has mean
    ``δ = uᵀm̂ + θ₀`` and ``E[r̃²] = uᵀŜu + δ²`` (a sum of non-negative terms, so it
    keeps its digits near the optimum).
    """

    def __init__(self, state: MomentState, problem: Problem, l2: float = 0.0):
        cols = problem.columns
        inv = 1.0 / problem.scale
        self.problem = problem
        self.l2 = float(l2)
        self.weight_sum = state.weight_sum
        self.n_rows = state.n_rows
        self.cov = state.comoment[np.ix_(cols, cols)] / state.weight_sum * np.outer(inv, inv)
        self.offset = ((state.mean[cols] - problem.center_hi) + (state.mean_lo[cols] - problem.center_lo)) * inv

    def _residual(self, theta: np.ndarray):
        p = self.problem.n_slopes
        u = np.r_[theta[:p], -1.0]
        delta = float(u @ self.offset) + (float(theta[p]) if self.problem.free_intercept else 0.0)
        return u, delta

    def loss(self, theta: np.ndarray, *, penalized: bool = True) -> float:
        p = self.problem.n_slopes
        u, delta = self._residual(theta)
        value = 0.5 * (max(float(u @ self.cov @ u), 0.0) + delta * delta)
        if penalized and self.l2:
            value += 0.5 * self.l2 * float(theta[:p] @ theta[:p])
        return value

    def gradient(self, theta: np.ndarray) -> np.ndarray:
        p = self.problem.n_slopes
        u, delta = self._residual(theta)
        grad = np.empty(self.problem.n_params)
        grad[:p] = (self.cov @ u)[:p] + delta * self.offset[:p] + self.l2 * theta[:p]
        if self.problem.free_intercept:
            grad[p] = delta
        return grad

    def hessian(self) -> tuple[np.ndarray, np.ndarray]:
        """``(A, b)`` with ``L(θ) = ½θᵀAθ − bᵀθ + const``: A = E[x̃x̃ᵀ] (+ l2 on the slopes)."""
        p = self.problem.n_slopes
        second = self.cov + np.outer(self.offset, self.offset)
        a, b = second[:p, :p], second[:p, p]
        if self.problem.free_intercept:
            a = np.block([[a, self.offset[:p, None]], [self.offset[None, :p], np.ones((1, 1))]])
            b = np.r_[b, self.offset[p]]
        a = a + self.l2 * np.diag(np.r_[np.ones(p), np.zeros(int(self.problem.free_intercept))])
        return a, b


def automatic_learning_rate(objective: Objective, options: SGDOptions) -> float:
    """``b/(tr A + (b − 1)λ_max)`` (times ``1 − momentum``); 0.01 for Adam."""
    if options.optimizer == "adam":
        return ADAM_LEARNING_RATE
    a, _ = objective.hessian()
    if a.size == 0:
        return 1.0
    top = float(np.linalg.eigvalsh(a)[-1])
    b = options.minibatch
    denominator = float(np.trace(a)) + (b - 1) * top
    rate = b / denominator if denominator > 0 else 1.0
    return rate * (1.0 - options.momentum)


# ---------------------------------------------------------------------- the parameters in flight
@dataclass
class Carry:
    """What one block's task hands to the next: parameters, optimizer state, averages."""

    theta: np.ndarray
    velocity: np.ndarray | None = None
    moment1: np.ndarray | None = None
    moment2: np.ndarray | None = None
    steps: int = 0
    epoch: int = 0
    epoch_rows: int = 0
    segments: dict = field(default_factory=dict)   # half-epoch id → [Σθ, count]
    step_loss: list | None = None
    failed: str | None = None

    @classmethod
    def start(cls, theta: np.ndarray, options: SGDOptions) -> Carry:
        theta = np.array(theta, dtype=np.float64)
        zeros = np.zeros_like(theta)
        adam = options.optimizer == "adam"
        return cls(theta, velocity=zeros.copy() if options.momentum else None,
                   moment1=zeros.copy() if adam else None, moment2=zeros.copy() if adam else None,
                   step_loss=[] if options.record_steps else None)

    def copy(self) -> Carry:
        return copy.deepcopy(self)

    def begin_epoch(self, epoch: int) -> None:
        """Open the two half-epoch segments of ``epoch`` and drop those no later average needs."""
        self.epoch, self.epoch_rows = epoch, 0
        keep = sorted(k for k in self.segments if k >= epoch + 1)[-(MAX_SEGMENTS - 2):]
        self.segments = {k: self.segments[k] for k in keep}
        for half in (0, 1):   # this epoch's halves (the first one is outside the window at epoch 0)
            self.segments.setdefault(2 * epoch + half, [np.zeros_like(self.theta), 0])

    def average(self, enabled: bool) -> np.ndarray:
        """The mean iterate over the latter half of the run so far, in half-epoch segments
        (after epoch e: segments e+1 … 2e+1), or the last iterate when averaging is off."""
        if not enabled:
            return self.theta.copy()
        total, count = np.zeros_like(self.theta), 0
        for key, (values, n) in self.segments.items():
            if key >= self.epoch + 1:
                total += values
                count += n
        return total / count if count else self.theta.copy()


def _sgd_block(part, index, make_source, spec, batch_size, carry: Carry, problem: Problem,
               options: SGDOptions, learning_rate: float, rows_half: float) -> Carry:
    """One block's share of an epoch: shuffle each batch's rows and step through its minibatches."""
    carry = carry.copy()
    if carry.failed:
        return carry
    source = make_source(part, index)
    for number, z, w in problem.read(source, index, spec, batch_size):
        n = len(z)
        if n == 0:
            continue
        rows = np.random.default_rng([options.seed, _ROWS, carry.epoch, index, number]).permutation(n)
        xs = problem.standardized(z, rows)
        ws = None if w is None else w[rows] / problem.weight_mean
        with np.errstate(all="ignore"):
            _steps(xs, ws, carry, options, learning_rate, rows_half)
        if not np.isfinite(carry.theta).all():
            carry.failed = f"the parameters became non-finite in epoch {carry.epoch + 1}"
            break
    return carry


def _steps(xs: np.ndarray, ws, carry: Carry, options: SGDOptions, lr: float, rows_half: float) -> None:
    """Minibatch steps over the rows of one shuffled, standardized batch (target last).

    Per step: ``r = X_bθ (+θ₀) − y_b`` (times the weights), ``g = X_bᵀr/m (+ l2·θ)``, then the
    update; the iterate is added to the current half-epoch's sum for the average.
    """
    p = xs.shape[1] - 1
    x, y = xs[:, :p], xs[:, p]
    theta = carry.theta
    slopes = theta[:p]
    free = theta.shape[0] > p
    m, n = options.minibatch, len(y)
    momentum, l2 = options.momentum, options.l2
    adam = options.optimizer == "adam"
    plain = not adam and not momentum
    b1, b2, eps = options.beta1, options.beta2, options.epsilon
    losses = carry.step_loss
    grad = np.empty_like(theta)
    grad_slopes = grad[:p]
    steps, rows_done = carry.steps, carry.epoch_rows
    half = int(rows_done >= rows_half)
    segment = carry.segments[2 * carry.epoch + half]
    total, counted = segment[0], 0
    for start in range(0, n, m):
        stop = min(start + m, n)
        size = stop - start
        xb = x[start:stop]
        r = xb @ slopes
        if free:
            r += theta[p]
        r -= y[start:stop]
        if ws is not None:
            wb = ws[start:stop]
            if losses is not None:
                losses.append(0.5 * float(r @ (wb * r)) / size)
            r *= wb
        elif losses is not None:
            losses.append(0.5 * float(r @ r) / size)
        np.dot(r, xb, out=grad_slopes)
        if free:
            grad[p] = r.sum()
        steps += 1
        if plain:                      # θ ← θ − η·(g + l2·θ), with one scaling of g
            grad *= lr / size
            if l2:
                grad_slopes += (lr * l2) * slopes
            theta -= grad
        else:
            grad *= 1.0 / size
            if l2:
                grad_slopes += l2 * slopes
            if adam:
                m1, m2 = carry.moment1, carry.moment2
                m1 *= b1
                m1 += (1.0 - b1) * grad
                m2 *= b2
                m2 += (1.0 - b2) * grad * grad
                theta -= (lr * math.sqrt(1.0 - b2 ** steps) / (1.0 - b1 ** steps)) * m1 / (np.sqrt(m2) + eps)
            else:
                velocity = carry.velocity
                velocity *= momentum
                velocity -= lr * grad
                theta += velocity
        total += theta
        counted += 1
        rows_done += size
        if not half and rows_done >= rows_half:
            segment[1] += counted
            half, counted = 1, 0
            segment = carry.segments[2 * carry.epoch + 1]
            total = segment[0]
    segment[1] += counted
    carry.steps, carry.epoch_rows = steps, rows_done


# ---------------------------------------------------------------------- passes over blocks
@dataclass
class LossSums:
    """Mergeable sums of one pass at fixed θ: Σw r̃², Σw r̃ x̃ (and Σw r̃), Σw."""

    loss: float
    grad: np.ndarray
    weight: float

    def merge(self, other: LossSums) -> LossSums:
        return LossSums(self.loss + other.loss, self.grad + other.grad, self.weight + other.weight)


def _block_loss(part, index, make_source, spec, batch_size, problem: Problem, theta: np.ndarray) -> LossSums:
    p = problem.n_slopes
    sums = LossSums(0.0, np.zeros(problem.n_params), 0.0)
    for _, z, w in problem.read(make_source(part, index), index, spec, batch_size):
        if len(z) == 0:
            continue
        xs = problem.standardized(z)
        x, y = xs[:, :p], xs[:, p]
        r = x @ theta[:p] - y
        if problem.free_intercept:
            r += theta[p]
        wr = r if w is None else r * w
        sums.loss += float(wr @ r)
        sums.grad[:p] += wr @ x
        if problem.free_intercept:
            sums.grad[p] += float(wr.sum())
        sums.weight += float(len(r) if w is None else w.sum())
    return sums


def _merge(a, b):
    from ...fitting import Accumulation, merge_accumulations

    return merge_accumulations(a, b) if isinstance(a, Accumulation) else a.merge(b)


class Blocks:
    """The blocks of the data and the two ways of visiting them: a chain (steps) and a tree (sums).

    ``parts`` are plain values (Parquet sources, in-memory slices), Dask delayed
    objects (partitions, array row blocks) or futures; ``make_source(part, i)`` turns
    a computed part into a :class:`~streamreg.io.sources.Source`, on whichever process
    runs the task.
    """

    def __init__(self, parts: list, make_source: Callable, spec: DesignSpec, batch_size: int,
                 client=None):
        if not parts:
            raise InputError("the data has no blocks to step through.")
        self.parts, self.make_source, self.spec = parts, make_source, spec
        self.batch_size, self.client = batch_size, client

    @classmethod
    def from_passes(cls, passes) -> Blocks:
        from ...engine.dask_runner import DaskPasses, _identity_source
        from ...fitting import default_batch_size

        spec = passes.spec
        batch_size = passes.batch_size or default_batch_size(len(spec.columns))
        if batch_size < 1:
            raise InputError(f"batch size must be a positive number of rows; got {batch_size}.")
        if not isinstance(passes, DaskPasses):
            if isinstance(passes.src, InMemorySource):
                return cls(local_parts(passes.src, batch_size), _identity_source, spec, batch_size)
            passes = DaskPasses.from_parquet(passes.src, spec)   # one block per file, run locally
        return cls(list(passes.partitions), passes.make_source, spec, batch_size, passes.client)

    def __len__(self) -> int:
        return len(self.parts)

    def map_reduce(self, fn: Callable, *args):
        """``fn(part, i, make_source, spec, batch_size, *args)`` per block, merged by a tree reduction."""
        from dask import delayed

        from ...engine.dask_runner import tree_reduce

        task = delayed(fn, pure=False)
        items = [task(part, i, self.make_source, self.spec, self.batch_size, *args)
                 for i, part in enumerate(self.parts)]
        graph = tree_reduce(items, _merge)
        if self.client is not None:
            return self.client.compute(graph).result()
        return graph.compute()

    def chain(self, order, fn: Callable, carry, *args):
        """``carry = fn(part, i, …, carry, *args)`` for the blocks in ``order``, one after another."""
        import dask

        from ...engine.dask_runner import is_dask_collection

        def lazy(part) -> bool:   # a partition, or the row blocks [X, y(, w)] of Dask arrays
            return is_dask_collection(part) or (
                isinstance(part, (list, tuple)) and any(is_dask_collection(p) for p in part))

        if self.client is None:
            for i in order:
                part = self.parts[i]
                if lazy(part):
                    (part,) = dask.compute(part)
                carry = fn(part, int(i), self.make_source, self.spec, self.batch_size, carry, *args)
            return carry
        pending = []
        for i in order:
            part = self.parts[i]
            if lazy(part):
                part = self.client.compute(part)
            carry = self.client.submit(fn, part, int(i), self.make_source, self.spec, self.batch_size,
                                       carry, *args, pure=False)
            pending.append(carry)
            if len(pending) > LOOKAHEAD:
                pending.pop(0).result()   # bounded: a few blocks in flight, never the whole data
        return carry.result()

    def first_pass(self, holdout: float, seed: int):
        """The training rows' accumulation and the held-out rows' state (None without a holdout)."""
        if not holdout:
            return self.map_reduce(_block_accumulation), None
        train, held = self.map_reduce(_block_split_accumulation, holdout, seed).pair
        return train, held

    def loss_and_gradient(self, problem: Problem, theta: np.ndarray, l2: float):
        """One pass: the loss and gradient of the standardized problem at ``theta``."""
        sums = self.map_reduce(_block_loss, problem, np.asarray(theta, dtype=np.float64))
        if sums.weight <= 0:
            raise InputError("no usable rows to evaluate the loss on.")
        p = problem.n_slopes
        loss = 0.5 * sums.loss / sums.weight + 0.5 * l2 * float(theta[:p] @ theta[:p])
        grad = sums.grad / sums.weight
        grad[:p] += l2 * theta[:p]
        return loss, grad


def local_parts(src: InMemorySource, batch_size: int) -> list:
    """Blocks of in-memory data: slices of ``batch_size`` rows."""
    table = src.table
    name = src.files[0].path
    starts = range(0, max(table.num_rows, 1), batch_size)
    return [InMemorySource(table.slice(s, batch_size), name=f"{name} (rows {s}–{s + batch_size - 1})")
            for s in starts]


def _block_accumulation(part, index, make_source, spec, batch_size):
    from ...fitting import accumulate

    return accumulate(make_source(part, index), spec, batch_size=batch_size)


class _Pair:
    """Training and held-out accumulations of some blocks (mergeable)."""

    def __init__(self, train, held):
        self.pair = (train, held)

    def merge(self, other: _Pair) -> _Pair:
        from ...fitting import merge_accumulations

        return _Pair(merge_accumulations(self.pair[0], other.pair[0]),
                     merge_accumulations(self.pair[1], other.pair[1]))


class _OneChunk:
    """A source of a single (filtered) chunk, so the engine's accumulate can fold it."""

    def __init__(self, source: Source, chunk):
        self.files, self.chunk = source.files, chunk

    def batches(self, columns, batch_size):
        yield self.chunk


def _block_split_accumulation(part, index, make_source, spec, batch_size, holdout, seed):
    from ...fitting import accumulate, merge_accumulations
    from ...io.sources import Chunk

    source = make_source(part, index)
    result = None
    for number, chunk in enumerate(source.batches(spec.columns, batch_size)):
        held = held_out_rows(seed, index, number, chunk.batch.num_rows, holdout)
        both = []
        for rows in (~held, held):
            piece = Chunk(chunk.batch.filter(pa.array(rows)), chunk.file, chunk.offset)
            both.append(accumulate(_OneChunk(source, piece), spec, batch_size=batch_size))
        result = _Pair(*both) if result is None else result.merge(_Pair(*both))
    if result is None:  # a block without rows
        from ...fitting import Accumulation

        empty = Accumulation(MomentState.empty(spec.state_names), spec,
                             rows_by_file={f.path: 0 for f in source.files})
        result = _Pair(empty, merge_accumulations(empty, empty))
    return result


# ---------------------------------------------------------------------- the fit
@dataclass
class Reference:
    """What the first pass's state says about the columns, whatever the solver: which are
    aliased, ``(XᵀWX)⁻¹`` for inference, the condition number and the total sum of squares."""

    kept: np.ndarray
    aliased: list[str]
    xtx_inv: np.ndarray
    condition_number: float
    tss: float
    rank: int
    warnings: list[str]


def reference(state: MomentState, *, fit_intercept: bool, drop_collinear: bool) -> Reference:
    """Collinear columns are refused (or dropped) exactly as by the exact solvers."""
    from ..moments import solve_normal_equations
    from ..solution import check_enough_rows

    p = len(state.names) - 1
    check_enough_rows(state, p, fit_intercept)
    try:
        sol = solve_normal_equations(state, fit_intercept=fit_intercept, drop_collinear=drop_collinear)
    except IllConditionedError:
        moments = state.comoment if fit_intercept else state.raw_moments()
        return Reference(np.arange(p), [], np.full((p, p), np.nan), float("inf"), float(moments[p, p]),
                         p + int(fit_intercept),
                         ["the scaled normal equations are too ill-conditioned to invert, so standard "
                          "errors, t and p values are not reported."])
    kept = np.flatnonzero(~np.isnan(sol.coef))
    notes = [w for w in sol.warnings if w.startswith("dropped as collinear")]
    return Reference(kept, list(sol.aliased), sol.xtx_inv, sol.condition_number, sol.tss, sol.rank, notes)


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


class _History:
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
            self.columns["validation_loss"].append(None if validation is None else float(validation))
        if self.rates:
            self.columns["learning_rate"].append(None if rate is None else float(rate))

    def as_dict(self) -> dict:
        out = {key: list(values) for key, values in self.columns.items()}
        out.setdefault("validation_loss", None)
        out.setdefault("learning_rate", None)
        return out


def fit_gradient(passes, *, solver: str, options=None, drop_collinear: bool = False,
                 cov_type: str = "nonrobust", on_epoch: Callable | None = None):
    """Fit with a gradient solver over any way of making passes (local or Dask).

    ``on_epoch(epoch, coef, intercept)`` (sgd only) is called after every epoch with the
    reported parameters in original units (NaN for aliased columns) — for progress or
    for measuring accuracy per epoch (``bench/bench_sgd.py``).
    """
    from ...fitting import merge_accumulations
    from ...model.linear_model import LinearModel
    from ..solution import intercept_from_means

    opts = SGDOptions.coerce(options).checked()
    if cov_type != "nonrobust" and (opts.holdout or opts.l2):
        raise InputError("robust standard errors (cov_type) are available with the gradient solvers "
                         "only without a holdout and without an l2 penalty.")
    spec = passes.spec
    blocks = Blocks.from_passes(passes)
    train, held = blocks.first_pass(opts.holdout, opts.seed)
    state = train.state
    ref = reference(state, fit_intercept=spec.fit_intercept, drop_collinear=drop_collinear)
    problem = Problem.build(state, ref.kept, fit_intercept=spec.fit_intercept,
                            standardize=opts.standardize, holdout=opts.holdout, seed=opts.seed)
    objective = Objective(state, problem, opts.l2)
    validation = None
    if held is not None:
        if held.state.weight_sum <= 0:
            raise InputError(f"holdout={opts.holdout:g} held out no usable rows; use a larger "
                             "fraction or more data.")
        validation = Objective(held.state, problem)
    runner = {"sgd": _run_sgd, "newton": _run_newton, "lbfgs": _run_lbfgs}[solver]
    report = None
    if on_epoch is not None:
        def report(epoch, theta):
            coef = np.full(len(spec.features), np.nan)
            coef[ref.kept], free_b = original_units(theta, problem)
            intercept = free_b if problem.free_intercept else (
                intercept_from_means(state, coef) if spec.fit_intercept else 0.0)
            on_epoch(epoch, coef, intercept)
    result = runner(blocks, problem, objective, validation, opts, report)
    solution = make_solution(state, ref, problem, objective, result.theta, solver=solver, options=opts,
                             converged=result.converged, stop_reason=result.stop_reason,
                             fit_intercept=spec.fit_intercept)
    everything = merge_accumulations(train, held) if held is not None else train
    model = LinearModel.from_state(state, fit_intercept=spec.fit_intercept, weight=spec.weight,
                                   drop_collinear=drop_collinear, rows_read=everything.rows_read,
                                   rows_dropped_by_column=everything.dropped, inputs=everything.inputs,
                                   solution=solution, log_weight_sum=train.log_weight_sum)
    model.optimizer_ = make_record(solver, opts, result, problem,
                                   holdout_rows=0 if held is None else held.state.n_rows)
    if cov_type != "nonrobust":
        model.robust_ = passes.robust(model, cov_type)
    return model


def _run_sgd(blocks: Blocks, problem: Problem, objective: Objective, validation, opts: SGDOptions,
             on_epoch=None) -> RunResult:
    tol = opts.resolved_tol("sgd")
    base = opts.learning_rate if opts.learning_rate is not None else automatic_learning_rate(objective, opts)
    carry = Carry.start(np.zeros(problem.n_params), opts)
    history = _History(validation is not None, rates=True)
    theta = carry.theta.copy()
    start = objective.loss(theta)
    gnorm = float(np.linalg.norm(objective.gradient(theta)))
    history.add(0, start, gnorm, validation.loss(theta) if validation else None)
    iterate_losses = [start]
    rows_half = objective.n_rows / 2.0
    best_loss, best_theta, best_epoch, since_best = math.inf, None, 0, 0
    converged, reason, epochs_run = False, "", 0
    for epoch in range(opts.epochs):
        lr = learning_rate_at(opts, base, epoch)
        order = np.random.default_rng([opts.seed, _ORDER, epoch]).permutation(len(blocks))
        carry.begin_epoch(epoch)
        carry = blocks.chain(order, _sgd_block, carry, problem, opts, lr, rows_half)
        epochs_run = epoch + 1
        if carry.failed:
            raise divergence(carry.failed, lr, opts, objective)
        current = objective.loss(carry.theta)
        if not math.isfinite(current):
            raise divergence(f"the training loss became non-finite in epoch {epochs_run}", lr, opts, objective)
        iterate_losses.append(current)
        recent = iterate_losses[-(opts.patience + 1):]
        if (len(recent) == opts.patience + 1 and all(b > a for a, b in zip(recent, recent[1:]))
                and recent[-1] > start):
            raise divergence(f"the training loss grew for {opts.patience} epochs in a row, from "
                             f"{recent[0]:.3g} to {recent[-1]:.3g}", lr, opts, objective)
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
                best_loss, best_theta, best_epoch, since_best = held_loss, theta.copy(), epochs_run, 0
            else:
                since_best += 1
        if gnorm <= tol:
            converged, reason = True, f"the gradient norm {gnorm:.3g} is at most tol {tol:g}"
            break
        if opts.loss_rtol is not None and abs(previous - loss) <= opts.loss_rtol * abs(loss):
            converged, reason = True, f"the loss changed by at most loss_rtol {opts.loss_rtol:g} (relative)"
            break
        if validation is not None and since_best >= opts.patience:
            theta = best_theta
            converged = True
            reason = (f"early stopping: the held-out loss has not improved for {opts.patience} epochs; "
                      f"the parameters of epoch {best_epoch} are kept")
            loss = objective.loss(theta)
            gnorm = float(np.linalg.norm(objective.gradient(theta)))
            break
    if not converged:
        reason = (f"the budget of {opts.epochs} epochs ran out with the gradient norm {gnorm:.3g} "
                  f"above tol {tol:g}")
    passes = 1 + epochs_run
    return RunResult(theta, converged, reason, epochs_run, carry.steps, passes, gnorm, loss,
                     history.as_dict(), base, carry.step_loss)


def divergence(what: str, lr: float, opts: SGDOptions, objective: Objective) -> DivergenceError:
    """The error for a diverged run, in words, with the step size that would have been used."""
    how = opts.schedule + " schedule"
    if opts.momentum:
        how += f", momentum {opts.momentum:g}"
    if opts.optimizer == "adam":
        how += ", adam"
    automatic = automatic_learning_rate(objective, opts)
    if opts.learning_rate is None:
        advice = (f"the automatic learning rate {automatic:.3g} was too large for these data; "
                  "pass a smaller learning rate.")
    else:
        advice = (f"pass a smaller learning rate (the automatic one for these data is {automatic:.3g}), "
                  "or leave it unset.")
    return DivergenceError(f"sgd diverged: {what} (learning rate {lr:.3g}, {how}); {advice}")


def _run_newton(blocks: Blocks, problem: Problem, objective: Objective, validation, opts: SGDOptions,
                on_epoch=None) -> RunResult:
    from scipy import linalg

    tol = opts.resolved_tol("newton")
    history = _History(validation is not None, rates=False)
    theta0 = np.zeros(problem.n_params)
    history.add(0, objective.loss(theta0), np.linalg.norm(objective.gradient(theta0)),
                validation.loss(theta0) if validation else None)
    a, b = objective.hessian()
    theta = theta0.copy()
    if a.size:
        try:
            theta = linalg.cho_solve(linalg.cho_factor(a, lower=True), b)
        except linalg.LinAlgError:
            raise IllConditionedError("the Hessian of the standardized problem is not positive definite "
                                      "to working precision, so the Newton step is undefined; the "
                                      "columns are nearly collinear.") from None
    loss, grad = blocks.loss_and_gradient(problem, theta, opts.l2)
    gnorm = float(np.linalg.norm(grad))
    history.add(1, loss, gnorm, validation.loss(theta) if validation else None)
    converged = gnorm <= tol
    reason = (f"one Newton step; the gradient norm after it (computed in a pass) is {gnorm:.3g}, "
              f"{'at most' if converged else 'above'} tol {tol:g}")
    return RunResult(theta, converged, reason, 1, 1, 2, gnorm, loss, history.as_dict())


def _run_lbfgs(blocks: Blocks, problem: Problem, objective: Objective, validation, opts: SGDOptions,
               on_epoch=None) -> RunResult:
    from scipy.optimize import minimize

    tol = opts.resolved_tol("lbfgs")
    history = _History(validation is not None, rates=False)
    cache: dict[bytes, tuple[float, np.ndarray]] = {}

    def evaluate(theta):
        key = np.asarray(theta, dtype=np.float64).tobytes()
        if key not in cache:
            cache[key] = blocks.loss_and_gradient(problem, np.asarray(theta, dtype=np.float64), opts.l2)
        loss, grad = cache[key]
        return loss, grad.copy()

    def record(theta):
        loss, grad = evaluate(theta)
        history.add(len(history.columns["iteration"]), loss, np.linalg.norm(grad),
                    validation.loss(theta) if validation else None)

    def callback(intermediate_result):
        record(intermediate_result.x)

    theta0 = np.zeros(problem.n_params)
    record(theta0)
    n = max(problem.n_params, 1)
    result = minimize(evaluate, theta0, jac=True, method="L-BFGS-B", callback=callback,
                      options={"maxiter": opts.max_iter, "gtol": tol / math.sqrt(n),
                               "ftol": 0.0 if opts.loss_rtol is None else opts.loss_rtol})
    theta = np.asarray(result.x, dtype=np.float64)
    loss, grad = evaluate(theta)
    gnorm = float(np.linalg.norm(grad))
    message = str(result.message)
    if gnorm <= tol:
        converged, reason = True, f"the gradient norm {gnorm:.3g} is at most tol {tol:g}"
    elif opts.loss_rtol is not None and "REL_REDUCTION_OF_F" in message:
        converged, reason = True, f"the loss changed by at most loss_rtol {opts.loss_rtol:g} (relative)"
    else:
        converged = False
        reason = f"L-BFGS-B stopped ({message}) with the gradient norm {gnorm:.3g} above tol {tol:g}"
    return RunResult(theta, converged, reason, int(result.nit), int(result.nfev), 1 + len(cache),
                     gnorm, loss, history.as_dict())


# ---------------------------------------------------------------------- the model
def original_units(theta: np.ndarray, problem: Problem) -> tuple[np.ndarray, float]:
    """Slopes ``θⱼ s_y/sⱼ`` and — for a free intercept — ``c_y + s_y θ₀ − Σ βⱼcⱼ``."""
    p = problem.n_slopes
    slopes = theta[:p] * problem.scale[p] / problem.scale[:p]
    if not problem.free_intercept:
        return slopes, 0.0
    center = problem.center_hi + problem.center_lo
    return slopes, float(center[p] + problem.scale[p] * theta[p] - slopes @ center[:p])


def make_solution(state: MomentState, ref: Reference, problem: Problem, objective: Objective,
                  theta: np.ndarray, *, solver: str, options: SGDOptions, converged: bool,
                  stop_reason: str, fit_intercept: bool):
    """The :class:`~streamreg.solvers.solution.Solution` of gradient-fitted parameters (see the module on inference)."""
    from ..solution import Solution, intercept_from_means

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
        warnings.append("standard errors, t and p values are not reported for a penalized fit (l2 > 0).")
    if not converged:
        warnings.append(f"{solver} did not converge: {stop_reason}.")
    return Solution(coef=coef, intercept=float(intercept), aliased=list(ref.aliased), rank=ref.rank,
                    condition_number=ref.condition_number, ssr=float(ssr), tss=float(ref.tss),
                    solver=solver, warnings=warnings, xtx_inv=xtx_inv)


def make_record(solver: str, opts: SGDOptions, result: RunResult, problem: Problem, *,
                holdout_rows: int = 0) -> dict:
    """The JSON-ready ``model.optimizer_`` record."""
    resolved = dataclasses.replace(opts, tol=opts.resolved_tol(solver),
                                   learning_rate=result.learning_rate if solver == "sgd" else opts.learning_rate)
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


_RECORD_FIELDS = {
    "solver": str, "options": dict, "converged": bool, "stop_reason": str, "iterations": int,
    "steps": int, "passes": int, "gradient_norm": (int, float), "loss": (int, float),
    "standardized": bool, "free_intercept": bool, "holdout_rows": int, "history": dict,
    "inference": str,
}


def validate_record(record, where: str = "model"):
    """Check a saved ``optimizer`` record (None is fine: a closed-form solver)."""
    if record is None:
        return None
    if not isinstance(record, dict):
        raise ModelFormatError(f"{where}: 'optimizer' must be an object or null.")
    for key, kind in _RECORD_FIELDS.items():
        value = record.get(key)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise ModelFormatError(f"{where}: the optimizer field '{key}' is missing or of the wrong type.")
    if record["solver"] not in GRADIENT_SOLVERS:
        raise ModelFormatError(f"{where}: the optimizer's solver {record['solver']!r} is not a gradient solver.")
    history = record["history"]
    base = history.get("iteration")
    if not isinstance(base, list) or not base:
        raise ModelFormatError(f"{where}: the optimizer history needs a non-empty 'iteration' list.")
    for key in ("iteration", "loss", "gradient_norm", "validation_loss", "learning_rate"):
        values = history.get(key)
        if values is None and key in ("validation_loss", "learning_rate"):
            continue
        if not isinstance(values, list) or len(values) != len(base) or not all(
                v is None or (isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v))
                for v in values):
            raise ModelFormatError(f"{where}: the optimizer history '{key}' must be a list of "
                                   f"{len(base)} finite numbers.")
    steps = record.get("step_loss")
    if steps is not None and not (isinstance(steps, list) and all(
            isinstance(v, (int, float)) and math.isfinite(v) for v in steps)):
        raise ModelFormatError(f"{where}: the optimizer's 'step_loss' must be a list of finite numbers or null.")
    return record


def describe(model) -> str | None:
    """One line about the optimization, for the CLI's report (None for closed-form solvers)."""
    record = getattr(model, "optimizer_", None)
    if not record:
        return None
    unit = "epoch" if record["solver"] == "sgd" else "iteration"
    n = record["iterations"]
    held = f", {record['holdout_rows']:,} rows held out" if record["holdout_rows"] else ""
    status = "converged" if record["converged"] else "NOT converged"
    steps = record["steps"]
    return (f"  {record['solver']}: {n} {unit}{'s' if n != 1 else ''}, {steps:,} step{'s' if steps != 1 else ''}, "
            f"{record['passes']} passes over the data{held}; {status}: {record['stop_reason']}")


def history_csv(model, *, steps: bool = False) -> str:
    """The per-epoch (or per-step) history as CSV text."""
    record = getattr(model, "optimizer_", None)
    if not record:
        raise InputError(f"the model was fitted with solver '{model.solver_}', which keeps no loss "
                         f"history; use --solver {', '.join(GRADIENT_SOLVERS)}.")
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    if steps:
        losses = record.get("step_loss")
        if losses is None:
            raise InputError("the per-step history was not recorded (record_steps / --step-history).")
        writer.writerow(["step", "minibatch_loss"])
        writer.writerows((i + 1, repr(v)) for i, v in enumerate(losses))
        return out.getvalue()
    history = record["history"]
    keys = [k for k in ("iteration", "loss", "gradient_norm", "validation_loss", "learning_rate")
            if history.get(k) is not None]
    writer.writerow(keys)
    for row in zip(*(history[k] for k in keys)):
        writer.writerow(["" if v is None else repr(v) for v in row])
    return out.getvalue()


# ---------------------------------------------------------------------- online (partial_fit)
class OnlineSGD:
    """What ``StreamingLinearRegression(solver="sgd").partial_fit`` carries between calls.

    Each call takes one SGD pass (an "epoch" of the schedule) over its chunk. The
    standardization is frozen at the first call (the first chunk's means and scales,
    or the fitted model's after ``fit``), so the parameters keep one coordinate system;
    the intercept is therefore a parameter here (the chunks' means drift from the
    first one's). Loss, gradient and the model come from the moments of every row seen.
    """

    def __init__(self, options: SGDOptions, problem: Problem, learning_rate: float, carry: Carry,
                 calls: int, history: _History, start_loss: float | None, iterate_losses: list):
        self.options, self.problem, self.learning_rate = options, problem, learning_rate
        self.carry, self.calls, self.history = carry, calls, history
        self.start_loss, self.iterate_losses = start_loss, iterate_losses

    @classmethod
    def first(cls, chunk_state: MomentState, options, *, fit_intercept: bool) -> OnlineSGD:
        opts = SGDOptions.coerce(options).checked()
        if opts.holdout:
            raise InputError("holdout applies to fit; partial_fit steps on every row it is given.")
        p = len(chunk_state.names) - 1
        variances = np.diagonal(chunk_state.comoment)[:p]
        if chunk_state.n_rows < 2 or (opts.standardize and fit_intercept and not (variances > 0).all()):
            flat = [chunk_state.names[j] for j in range(p) if not variances[j] > 0]
            which = f"column '{flat[0]}' is constant in it" if flat else "it has fewer than 2 rows"
            raise InputError(f"partial_fit with solver='sgd' standardizes with the first chunk's means and "
                             f"scales, but {which}; give a first chunk with varied values.")
        problem = dataclasses.replace(
            Problem.build(chunk_state, np.arange(p), fit_intercept=fit_intercept, standardize=opts.standardize),
            free_intercept=fit_intercept)
        objective = Objective(chunk_state, problem, opts.l2)
        rate = opts.learning_rate if opts.learning_rate is not None else automatic_learning_rate(objective, opts)
        theta = np.zeros(problem.n_params)
        return cls(opts, problem, rate, Carry.start(theta, opts), 0,
                   _History(False, rates=True), None, [])

    @classmethod
    def after_fit(cls, model, options) -> OnlineSGD:
        """Continue from a model fitted with ``solver="sgd"`` (the optimizer's moments restart)."""
        record = model.optimizer_
        if record is None or record["solver"] != "sgd":
            raise InputError("partial_fit with solver='sgd' continues only a model fitted with solver='sgd'.")
        if model.aliased_:
            raise InputError("partial_fit with solver='sgd' cannot continue a fit that dropped collinear columns.")
        saved = dict(record["options"])
        opts = SGDOptions.coerce(options if options is not None else {**saved, "tol": None}).checked()
        state = model.state_
        p = len(state.names) - 1
        problem = dataclasses.replace(
            Problem.build(state, np.arange(p), fit_intercept=model.fit_intercept, standardize=opts.standardize),
            free_intercept=model.fit_intercept)
        theta = np.zeros(problem.n_params)
        theta[:p] = model.coef_ * problem.scale[:p] / problem.scale[p]
        if problem.free_intercept:
            center = problem.center_hi + problem.center_lo
            theta[p] = (model.intercept_ - center[p] + model.coef_ @ center[:p]) / problem.scale[p]
        rate = saved["learning_rate"] if opts.learning_rate is None else opts.learning_rate
        history = _History(False, rates=True)
        for i, loss, g, lr in zip(record["history"]["iteration"], record["history"]["loss"],
                                  record["history"]["gradient_norm"],
                                  record["history"]["learning_rate"] or [None] * len(record["history"]["loss"])):
            history.add(i, loss, g, None, lr)
        return cls(opts, problem, float(rate), Carry.start(theta, opts), int(record["iterations"]),
                   history, record["history"]["loss"][0], list(record["history"]["loss"]))

    def step(self, source: InMemorySource, spec: DesignSpec, state: MomentState, *, chunk_rows: int,
             batch_size: int | None = None) -> OnlineSGD:
        """One SGD pass over ``source``; returns the new carrier (this one is left as it was)."""
        from ...engine.dask_runner import _identity_source
        from ...fitting import default_batch_size

        online = copy.deepcopy(self)
        opts, problem = online.options, online.problem
        batch_size = batch_size or default_batch_size(len(spec.columns))
        blocks = Blocks(local_parts(source, batch_size), _identity_source, spec, batch_size)
        objective = Objective(state, problem, opts.l2)
        if online.start_loss is None:
            online.start_loss = objective.loss(online.carry.theta)
            online.iterate_losses = [online.start_loss]
            online.history.add(0, online.start_loss, np.linalg.norm(objective.gradient(online.carry.theta)))
        epoch = online.calls
        lr = learning_rate_at(opts, online.learning_rate, epoch)
        order = np.random.default_rng([opts.seed, _ORDER, epoch]).permutation(len(blocks))
        online.carry.begin_epoch(epoch)
        online.carry = blocks.chain(order, _sgd_block, online.carry, problem, opts, lr, chunk_rows / 2.0)
        online.calls += 1
        if online.carry.failed:
            raise divergence(online.carry.failed.replace("epoch", "partial_fit call"), lr, opts, objective)
        current = objective.loss(online.carry.theta)
        if not math.isfinite(current):
            raise divergence(f"the training loss became non-finite in partial_fit call {online.calls}",
                             lr, opts, objective)
        online.iterate_losses.append(current)
        recent = online.iterate_losses[-(opts.patience + 1):]
        if (len(recent) == opts.patience + 1 and all(b > a for a, b in zip(recent, recent[1:]))
                and recent[-1] > online.start_loss):
            raise divergence(f"the training loss grew for {opts.patience} partial_fit calls in a row, "
                             f"from {recent[0]:.3g} to {recent[-1]:.3g}", lr, opts, objective)
        theta = online.carry.average(opts.average)
        online.history.add(online.calls, objective.loss(theta),
                           np.linalg.norm(objective.gradient(theta)), None, lr)
        online.theta = theta
        return online

    def model(self, state: MomentState, *, fit_intercept: bool, weight, rows_read: int, dropped: dict,
              log_weight_sum: float, drop_collinear: bool = False):
        """The model of the parameters so far, over every row seen (raises while unsolvable)."""
        from ...model.linear_model import LinearModel

        ref = reference(state, fit_intercept=fit_intercept, drop_collinear=False)
        objective = Objective(state, self.problem, self.options.l2)
        theta = self.theta
        tol = self.options.resolved_tol("sgd")
        gnorm = float(np.linalg.norm(objective.gradient(theta)))
        converged = gnorm <= tol
        reason = (f"after {self.calls} partial_fit call{'s' if self.calls != 1 else ''} the gradient norm "
                  f"{gnorm:.3g} is {'at most' if converged else 'above'} tol {tol:g}")
        solution = make_solution(state, ref, self.problem, objective, theta, solver="sgd",
                                 options=self.options, converged=True, stop_reason=reason,
                                 fit_intercept=fit_intercept)
        result = RunResult(theta, converged, reason, self.calls, self.carry.steps, self.calls, gnorm,
                           objective.loss(theta), self.history.as_dict(), self.learning_rate,
                           self.carry.step_loss)
        model = LinearModel.from_state(state, fit_intercept=fit_intercept, weight=weight,
                                       rows_read=rows_read, rows_dropped_by_column=dropped,
                                       solution=solution, log_weight_sum=log_weight_sum)
        model.optimizer_ = make_record("sgd", self.options, result, self.problem)
        return model
