r"""The cholesky family: the centered co-moment state and its scaled normal-equations solve.

For rows ``z = [x₁ … x_p, y]`` with weights ``w`` the state keeps

* ``n_rows`` — the number of rows seen,
* ``weight_sum`` — ``n = Σ w`` (the row count when unweighted),
* ``mean`` — ``μ = Σ w z / n``, held as the unevaluated sum ``mean + mean_lo``
  of two float64 vectors (double-double), because ``δ = μ_b − μₐ`` below must
  keep its digits when columns sit at 1e9 and vary by 1,
* ``comoment`` — ``M = Σ w (z − μ)(z − μ)ᵀ``.

Two states merge exactly (Chan, Golub & LeVeque 1979; Pébay 2008)::

    n = nₐ + n_b ;  δ = μ_b − μₐ ;  μ = μₐ + δ·n_b/n ;  M = Mₐ + M_b + δδᵀ·nₐn_b/n

so the state of a data set does not depend on how it was split into chunks,
up to rounding. Centering keeps the digits that raw ``ZᵀZ`` sums lose when
columns carry large offsets (timestamps, prices).

>>> import numpy as np
>>> z = np.array([[1.0, 2.0], [2.0, 4.1], [3.0, 5.9]])
>>> whole = MomentState.from_arrays(z, names=["x", "y"])
>>> parts = MomentState.from_arrays(z[:1], names=["x", "y"]) + MomentState.from_arrays(
...     z[1:], names=["x", "y"]
... )
>>> bool(np.allclose(whole.comoment, parts.comoment))
True

**The cholesky solve** (:func:`solve_normal_equations`). With an intercept the slopes solve the
centered system ``M_xx β = M_xy`` and the intercept is ``μ_y − μ_xᵀβ``; without one, the
uncentered moments
``M + n μμᵀ`` are used. The system is solved on its scaled form
``C = D⁻¹ A D⁻¹`` (``D = √diag A``, a correlation-like matrix with unit
diagonal) by a Cholesky factorization built one column at a time, in the
order the features were given. Column ``j`` is *aliased* (collinear) when

    1 − R²ⱼ = C_jj − ℓⱼᵀℓⱼ  ≤  COLLINEAR_TOL

where ``R²ⱼ`` is the fit of column ``j`` on the earlier, kept columns. That is
the pivot of the Cholesky step; like R's ``lm``, later columns are the ones
aliased. ``COLLINEAR_TOL = 1e-12`` sits a few orders above the rounding noise
of the accumulated moments (about 1e-15 relative), so an exact linear
combination is always caught and a genuine column is dropped only when the
normal equations cannot resolve it anyway.

>>> sol = solve_normal_equations(
...     MomentState.from_arrays(np.column_stack([z[:, 0], 3 * z[:, 0] + 2]), names=["x", "y"])
... )
>>> round(float(sol.coef[0]), 12), round(sol.intercept, 12)
(3.0, 2.0)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import CollinearityError, InputError
from .base import CenteredState
from .solution import (
    COLLINEAR_TOL,
    Solution,
    check_enough_rows,
    collinear_message,
    condition_warnings,
    intercept_from_means,
)

STATE_FORMAT = "streamreg.moment_state"
STATE_FORMAT_VERSION = 1
# If the shifted sums cancel by more than this factor, recentre on the batch mean.
_CANCELLATION_LIMIT = 5e-2
# Beyond this condition number of C the Cholesky route keeps fewer than about
# 6 significant digits (error ≈ cond · 2.2e-16): warn.
WARN_CONDITION = 1e10
# Beyond this it keeps none worth reporting: refuse.
REFUSE_CONDITION = 1e14


class MomentState(CenteredState):
    """Centered co-moments of ``[x, y]`` columns; see the module docstring."""

    __slots__ = ("comoment",)
    FORMAT, FORMAT_VERSION, LABEL, SPREAD = (
        STATE_FORMAT,
        STATE_FORMAT_VERSION,
        "moment state",
        "comoment",
    )
    # Encoded designs accumulate this state from group sums (streamreg.design.grouped): its
    # co-moments are sums over rows, so indicator columns never need to be materialized.
    accepts_group_sums = True

    def __init__(
        self,
        names: Sequence[str],
        n_rows: int,
        weight_sum: float,
        mean: np.ndarray,
        comoment: np.ndarray,
        mean_lo: np.ndarray | None = None,
    ):
        self._set_counts(names, n_rows, weight_sum, mean, mean_lo)
        self.comoment = np.asarray(comoment, dtype=np.float64)

    # ---------------------------------------------------------------- building
    @classmethod
    def from_arrays(
        cls,
        z: np.ndarray,
        weights: np.ndarray | None = None,
        *,
        names: Sequence[str],
        overwrite: bool = False,
        shift: np.ndarray | None = None,
        preshifted: bool = False,
    ) -> MomentState:
        """State of one batch ``z`` (rows × columns, target last) with optional weights.

        With ``overwrite=True`` the batch array is shifted in place (saves a copy
        on the hot path); NaN and ±inf stay where they were, so a caller can
        still locate them in ``z`` afterwards.
        """
        z = np.asarray(z, dtype=np.float64)
        if z.ndim != 2 or z.shape[1] != len(names):
            raise InputError(
                f"batch has shape {z.shape}; expected (rows, {len(names)}) for columns "
                f"{list(names)}."
            )
        if not overwrite or not z.flags.writeable:
            z = np.array(z, dtype=np.float64, order="F")
        n_rows = z.shape[0]
        if n_rows == 0:
            return cls.empty(names)
        sqrt_w = None
        if weights is not None:
            weights = np.asarray(weights, dtype=np.float64)
            sqrt_w = np.sqrt(weights)
        n, shift, mean_offset, comoment = _batch_moments(z, weights, sqrt_w, shift, preshifted)
        return cls(names, n_rows, n, shift, comoment, mean_lo=mean_offset)

    # ---------------------------------------------------------------- merging
    def _add_spread(self, other: MomentState, delta: np.ndarray, weight: float) -> None:
        self.comoment = self.comoment + other.comoment + np.outer(delta, delta) * weight

    def _take_spread(self, other: MomentState) -> None:
        self.comoment = other.comoment.copy()

    def shift_hint(self) -> np.ndarray | None:
        """The running mean: a free, good shift for the next batch (see :func:`_batch_moments`)."""
        if self.weight_sum > 0 and np.isfinite(self.mean).all():
            return self.mean.copy()
        return None

    def copy(self) -> MomentState:
        return type(self)(
            self.names,
            self.n_rows,
            self.weight_sum,
            self.mean.copy(),
            self.comoment.copy(),
            mean_lo=self.mean_lo.copy(),
        )

    # ---------------------------------------------------------------- views
    def is_finite(self) -> bool:
        return bool(np.isfinite(self.mean).all() and np.isfinite(np.diagonal(self.comoment)).all())

    def __repr__(self) -> str:
        return (
            f"MomentState(columns={len(self.names)}, n_rows={self.n_rows}, "
            f"weight_sum={self.weight_sum:g})"
        )


def _batch_moments(z: np.ndarray, weights, sqrt_w, shift=None, preshifted=False):
    """(n, shift, mean − shift, M) of one batch; shifts ``z`` in place.

    Sums are taken about a shift ``c`` — the caller's (the running mean of the
    rows so far, free) or else the batch mean from one plain pass — with one
    BLAS ``syrk`` on ``z − c``, and converted to central moments with
    ``M = S − s sᵀ/n``; ``s/n`` keeps the digits the shift rounded away. If
    that subtraction would cancel badly (the batch mean drifted far from the
    shift, as in sorted timestamps), the batch is recentred on ``c + s/n`` and
    summed again.
    """
    # A shift from a few leading rows would be free but lands ~σ/8 off, which trips
    # the cancellation check on almost every batch and doubles the syrk work; the
    # running mean lands ~σ/√n off for shuffled data.
    if shift is None:
        with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
            shift = z.mean(axis=0) if weights is None else (z.T @ weights) / weights.sum()
    # A column holding NaN or ±inf gets no shift; its sums are screened by the caller.
    if not preshifted:
        shift = np.where(np.isfinite(shift), shift, 0.0)
        z -= shift
    n, s, sums = _shifted_sums(z, weights, sqrt_w)
    if n == 0.0:
        k = z.shape[1]
        return 0.0, np.zeros(k), np.zeros(k), np.zeros((k, k))
    with np.errstate(invalid="ignore", divide="ignore"):
        correction = np.outer(s, s) / n
        cancels = np.diagonal(correction) > _CANCELLATION_LIMIT * np.diagonal(sums)
    if np.isfinite(sums).all() and cancels.any():
        recentre = s / n
        z -= recentre
        n, s, sums = _shifted_sums(z, weights, sqrt_w)
        correction = np.outer(s, s) / n
        return n, shift, recentre + s / n, sums - correction
    return n, shift, s / n, sums - correction


def _shifted_sums(z, weights, sqrt_w):
    if weights is None:
        with np.errstate(invalid="ignore", over="ignore"):
            return float(z.shape[0]), z.sum(axis=0), z.T @ z
    n = float(weights.sum())
    with np.errstate(invalid="ignore", over="ignore"):
        scaled = z * sqrt_w[:, None]
        return n, scaled.T @ sqrt_w, scaled.T @ scaled


# ---------------------------------------------------------------------- the cholesky solve
def solve_normal_equations(
    state: MomentState,
    *,
    fit_intercept: bool = True,
    drop_collinear: bool = False,
    collinear_tol: float = COLLINEAR_TOL,
) -> Solution:
    """Solve the state's normal equations by scaled, column-by-column Cholesky."""
    from scipy import linalg

    names = state.names[:-1]
    p = len(names)
    check_enough_rows(state, p, fit_intercept, aliasing=drop_collinear)
    moments = state.comoment if fit_intercept else state.raw_moments()
    a = moments[:p, :p]
    b = moments[:p, p]
    syy = float(moments[p, p])
    scale = np.sqrt(np.diagonal(a).clip(min=0.0))
    usable = scale > 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        c = a / np.outer(scale, scale)
        r = b / scale

    kept: list[int] = []
    aliased: list[int] = []
    pivots: list[float] = []
    earlier: list[list[int]] = []
    chol = np.zeros((p, p))
    for j in range(p):
        if not usable[j]:
            aliased.append(j)
            continue
        m = len(kept)
        ell = linalg.solve_triangular(chol[:m, :m], c[kept, j], lower=True) if m else np.empty(0)
        pivot = c[j, j] - ell @ ell
        if pivot <= collinear_tol:
            aliased.append(j)
            pivots.append(pivot)
            earlier.append(list(kept))
            continue
        chol[m, :m] = ell
        chol[m, m] = np.sqrt(pivot)
        kept.append(j)

    if aliased and not drop_collinear:
        raise CollinearityError(
            collinear_message(names, aliased, earlier, pivots, fit_intercept, usable)
        )

    m = len(kept)
    coef = np.full(p, np.nan)
    warnings: list[str] = []
    cond = 1.0
    if m:
        factor = chol[:m, :m]
        beta_scaled = linalg.cho_solve((factor, True), r[kept])
        coef[kept] = beta_scaled / scale[kept]
        scaled_inv = linalg.cho_solve((factor, True), np.eye(m))
        xtx_inv = scaled_inv / np.outer(scale[kept], scale[kept])
        eig = np.linalg.eigvalsh(c[np.ix_(kept, kept)])
        cond = float(eig[-1] / eig[0]) if eig[0] > 0 else float("inf")
        warnings += condition_warnings(
            cond,
            solver="cholesky",
            what="the scaled normal equations",
            warn=WARN_CONDITION,
            refuse=REFUSE_CONDITION,
        )
        explained = float(r[kept] @ beta_scaled)
    else:
        explained = 0.0
        xtx_inv = np.zeros((0, 0))
    intercept = intercept_from_means(state, coef) if fit_intercept else 0.0
    ssr = max(syy - explained, 0.0)
    if aliased:
        warnings.append(
            "dropped as collinear (no coefficient): " + ", ".join(names[j] for j in aliased) + "."
        )
    return Solution(
        coef=coef,
        intercept=intercept,
        aliased=[names[j] for j in aliased],
        rank=m + (1 if fit_intercept else 0),
        condition_number=cond,
        ssr=ssr,
        tss=syy,
        solver="cholesky",
        warnings=warnings,
        xtx_inv=xtx_inv,
    )
