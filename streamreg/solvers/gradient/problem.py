r"""The standardized least-squares problem the gradient solvers step on, and its exact loss.

``Problem`` holds the columns and their standardization (it travels to every task);
``Objective`` is the loss, gradient and Hessian of the training rows computed exactly
from the first pass's state (no pass needed); ``block_loss`` is the per-block task of a
pass that evaluates the loss and gradient at fixed parameters (L-BFGS, Newton's check).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...design import DesignSpec, batch_arrays
from ...engine.merge import Mergeable
from ...errors import IllConditionedError
from ...io.sources import Source
from ..moments import MomentState, solve_normal_equations
from ..solution import check_enough_rows
from .options import ADAM_LEARNING_RATE, SPLIT_STREAM, GradientOptions


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
    weight_mean: float  # Σw / n over the training rows: weights are divided by it
    holdout: float = 0.0
    seed: int = 0

    @classmethod
    def build(
        cls,
        state: MomentState,
        kept: np.ndarray,
        *,
        fit_intercept: bool,
        standardize: bool,
        holdout: float = 0.0,
        seed: int = 0,
    ) -> Problem:
        p = len(state.names) - 1
        columns = np.r_[np.asarray(kept, dtype=np.intp), p]
        mean = state.mean[columns]
        mean_lo = state.mean_lo[columns]
        var = np.diagonal(state.comoment)[columns] / state.weight_sum
        if not standardize:
            center = np.zeros(len(columns))
            return cls(
                columns,
                center,
                center.copy(),
                np.ones(len(columns)),
                fit_intercept,
                state.weight_sum / state.n_rows,
                holdout,
                seed,
            )
        if fit_intercept:
            scale = np.sqrt(var.clip(min=0.0))
            center_hi, center_lo = mean.copy(), mean_lo.copy()
        else:
            full = mean + mean_lo
            scale = np.sqrt(var.clip(min=0.0) + full * full)
            center_hi = center_lo = np.zeros(len(columns))
        scale = np.where(scale > 0.0, scale, 1.0)
        return cls(
            columns,
            center_hi,
            center_lo,
            scale,
            False,
            state.weight_sum / state.n_rows,
            holdout,
            seed,
        )

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
                np.take(z[:, c], rows, out=column, mode="wrap")  # "raise" would buffer `out`
            column -= self.center_hi[j]
            if abs(self.center_lo[j] * inv[j]) > 1e-17:  # below that it moves no standardized value
                column -= self.center_lo[j]
            column *= inv[j]
        return out

    def read(self, source: Source, index: int, spec: DesignSpec, batch_size: int, *, on_rows=None):
        """``(batch number, z, weights)`` of the training rows of one block, in stored order."""
        for number, chunk in enumerate(source.batches(spec.columns, batch_size)):
            if on_rows is not None:
                on_rows(chunk.batch.num_rows)
            arrays = batch_arrays(chunk, spec)
            z, w = arrays.z, arrays.weights
            keep = np.ones(len(z), dtype=bool)
            if not (np.isfinite(z.sum()) and (w is None or np.isfinite(w.sum()))):
                keep = np.isfinite(z).all(axis=1)  # rows with NaN (the first pass dropped them too)
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
    return np.random.default_rng([seed, SPLIT_STREAM, block, batch]).random(rows) < fraction


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
        self.offset = (
            (state.mean[cols] - problem.center_hi) + (state.mean_lo[cols] - problem.center_lo)
        ) * inv

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


def automatic_learning_rate(objective: Objective, options: GradientOptions) -> float:
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

    p = len(state.names) - 1
    check_enough_rows(state, p, fit_intercept)
    try:
        sol = solve_normal_equations(
            state, fit_intercept=fit_intercept, drop_collinear=drop_collinear
        )
    except IllConditionedError:
        moments = state.comoment if fit_intercept else state.raw_moments()
        return Reference(
            np.arange(p),
            [],
            np.full((p, p), np.nan),
            float("inf"),
            float(moments[p, p]),
            p + int(fit_intercept),
            [
                "the scaled normal equations are too ill-conditioned to invert, so standard "
                "errors, t and p values are not reported."
            ],
        )
    kept = np.flatnonzero(~np.isnan(sol.coef))
    notes = [w for w in sol.warnings if w.startswith("dropped as collinear")]
    return Reference(
        kept, list(sol.aliased), sol.xtx_inv, sol.condition_number, sol.tss, sol.rank, notes
    )


def original_units(theta: np.ndarray, problem: Problem) -> tuple[np.ndarray, float]:
    """Slopes ``θⱼ s_y/sⱼ`` and — for a free intercept — ``c_y + s_y θ₀ − Σ βⱼcⱼ``."""
    p = problem.n_slopes
    slopes = theta[:p] * problem.scale[p] / problem.scale[:p]
    if not problem.free_intercept:
        return slopes, 0.0
    center = problem.center_hi + problem.center_lo
    return slopes, float(center[p] + problem.scale[p] * theta[p] - slopes @ center[:p])


@dataclass
class LossSums(Mergeable):
    """Mergeable sums of one pass at fixed θ: Σw r̃², Σw r̃ x̃ (and Σw r̃), Σw."""

    loss: float
    grad: np.ndarray
    weight: float

    def copy(self) -> LossSums:
        return LossSums(self.loss, self.grad.copy(), self.weight)

    def __iadd__(self, other: LossSums) -> LossSums:
        self.loss = self.loss + other.loss
        self.grad = self.grad + other.grad
        self.weight = self.weight + other.weight
        return self


def block_loss(
    source, index: int, spec, batch_size: int, problem: Problem, theta: np.ndarray, *, on_rows=None
) -> LossSums:
    """A runner's task: one block's loss sums at ``theta``."""
    p = problem.n_slopes
    sums = LossSums(0.0, np.zeros(problem.n_params), 0.0)
    for _, z, w in problem.read(source, index, spec, batch_size, on_rows=on_rows):
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
