"""The SGD hot loop: what one block's task does to the parameters in flight.

A :class:`Carry` (parameters, optimizer moments, half-epoch sums for the average)
travels from block to block; :func:`sgd_block` shuffles each record batch's rows
(seeded by position) and steps through its minibatches (:func:`_steps`).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field

import numpy as np

from .options import ROWS_STREAM, GradientOptions
from .problem import Problem

# Averaging keeps at most this many half-epoch segments (the last 128 epochs).
MAX_SEGMENTS = 256


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
    segments: dict = field(default_factory=dict)  # half-epoch id → [Σθ, count]
    step_loss: list | None = None
    failed: str | None = None

    @classmethod
    def start(cls, theta: np.ndarray, options: GradientOptions) -> Carry:
        theta = np.array(theta, dtype=np.float64)
        zeros = np.zeros_like(theta)
        adam = options.optimizer == "adam"
        return cls(
            theta,
            velocity=zeros.copy() if options.momentum else None,
            moment1=zeros.copy() if adam else None,
            moment2=zeros.copy() if adam else None,
            step_loss=[] if options.record_steps else None,
        )

    def copy(self) -> Carry:
        return copy.deepcopy(self)

    def begin_epoch(self, epoch: int) -> None:
        """Open the two half-epoch segments of ``epoch`` and drop those no later average needs."""
        self.epoch, self.epoch_rows = epoch, 0
        keep = sorted(k for k in self.segments if k >= epoch + 1)[-(MAX_SEGMENTS - 2) :]
        self.segments = {k: self.segments[k] for k in keep}
        for half in (0, 1):  # this epoch's halves (the first one is outside the window at epoch 0)
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


def sgd_block(
    source,
    index: int,
    spec,
    batch_size: int,
    carry: Carry,
    problem: Problem,
    options: GradientOptions,
    learning_rate: float,
    rows_half: float,
    *,
    on_rows=None,
) -> Carry:
    """A runner's step: one block's share of an epoch — shuffle each batch's rows and step
    through its minibatches."""
    carry = carry.copy()
    if carry.failed:
        return carry
    for number, z, w in problem.read(source, index, spec, batch_size, on_rows=on_rows):
        n = len(z)
        if n == 0:
            continue
        rows = np.random.default_rng(
            [options.seed, ROWS_STREAM, carry.epoch, index, number]
        ).permutation(n)
        xs = problem.standardized(z, rows)
        ws = None if w is None else w[rows] / problem.weight_mean
        with np.errstate(all="ignore"):
            _steps(xs, ws, carry, options, learning_rate, rows_half)
        if not np.isfinite(carry.theta).all():
            carry.failed = f"the parameters became non-finite in epoch {carry.epoch + 1}"
            break
    return carry


def _steps(
    xs: np.ndarray, ws, carry: Carry, options: GradientOptions, lr: float, rows_half: float
) -> None:
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
        if plain:  # θ ← θ − η·(g + l2·θ), with one scaling of g
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
                theta -= (
                    (lr * math.sqrt(1.0 - b2**steps) / (1.0 - b1**steps)) * m1 / (np.sqrt(m2) + eps)
                )
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
