r"""A streaming QR factor of the centered data: least squares without squaring the condition number.

The state keeps the weighted row count ``n``, the mean ``μ`` of ``z = [x, y]``
(double-double, as in :mod:`streamreg.solvers.moments`) and an upper-triangular ``R``
with ``RᵀR = M = Σ w (z − μ)(z − μ)ᵀ``. A batch contributes the R factor of
its own centered (and √w-scaled) rows; two states merge by stacking
(TSQR; Demmel et al. 2012)::

    R = qr_r([Rₐ; R_b; √(nₐn_b/n)·δᵀ])      δ = μ_b − μₐ

so the merge is exact in exact arithmetic and backward stable in floating
point, in any merge order. Solving uses ``R`` directly — ``R_xx β = r_xy``
and ``SSR = r_yy²`` — so the error grows with ``cond(X)`` rather than with
``cond(X)²`` as in the normal equations. It costs about twice the flops of
the Gram route per batch.

>>> import numpy as np
>>> x = np.arange(8.0)
>>> state = QRState.from_arrays(np.column_stack([x, 4 - 0.25 * x]), names=["x", "y"])
>>> sol = solve_qr(state)
>>> round(float(sol.coef[0]), 12), round(sol.intercept, 12)
(-0.25, 4.0)
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np

from ..errors import CollinearityError, InputError
from .base import CenteredState
from .solution import (
    Solution,
    check_enough_rows,
    collinear_message,
    condition_warnings,
    intercept_from_means,
)

STATE_FORMAT = "streamreg.qr_state"
STATE_FORMAT_VERSION = 1
# Column j is aliased when |r_jj| ≤ tol · ‖x_j‖ (1 − R²ⱼ ≤ 1e-20): R's lm uses 1e-7, which
# would alias x^10 in NIST Filip although QR resolves it; exact dependence leaves ~1e-15.
QR_COLLINEAR_TOL = 1e-10
# cond(R) beyond which fewer than about 6 digits remain (error ≈ cond(R) · 2.2e-16).
WARN_CONDITION_R = 1e10
REFUSE_CONDITION_R = 1e14
# Up to this many columns merges are refactored in long double (see _merged_factor).
EXTENDED_MERGE_MAX = 64


@functools.cache
def _geqrf():
    """LAPACK's float64 ``dgeqrf`` (looked up on first use: scipy is not imported at start-up)."""
    from scipy.linalg import lapack

    return lapack.get_lapack_funcs("geqrf", dtype=np.float64)


class QRState(CenteredState):
    """Mean and triangular factor of the centered ``[x, y]`` rows; see the module docstring."""

    __slots__ = ("r",)
    FORMAT, FORMAT_VERSION, LABEL, SPREAD = STATE_FORMAT, STATE_FORMAT_VERSION, "QR state", "r"

    def __init__(
        self,
        names: Sequence[str],
        n_rows: int,
        weight_sum: float,
        mean: np.ndarray,
        r: np.ndarray,
        mean_lo: np.ndarray | None = None,
    ):
        self._set_counts(names, n_rows, weight_sum, mean, mean_lo)
        self.r = np.asarray(r, dtype=np.float64)

    @classmethod
    def from_arrays(
        cls,
        z: np.ndarray,
        weights: np.ndarray | None = None,
        *,
        names: Sequence[str],
        overwrite: bool = False,
    ) -> QRState:
        """State of one batch (target last). ``overwrite=True`` lets it shift ``z`` in place;
        NaN and ±inf stay where they were."""
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
        with np.errstate(all="ignore"):
            head = z[:64]
            shift = np.nanmean(head, axis=0) if np.isnan(head).any() else head.mean(axis=0)
            shift = np.where(np.isfinite(shift), shift, 0.0)
            z -= shift
            if weights is None:
                n = float(n_rows)
                offset = z.sum(axis=0) / n
                z -= offset
                rows = z
            else:
                weights = np.asarray(weights, dtype=np.float64)
                n = float(weights.sum())
                if n == 0.0:
                    k = len(names)
                    return cls(names, n_rows, 0.0, np.zeros(k), np.zeros((k, k)))
                offset = (weights @ z) / n
                z -= offset
                rows = z * np.sqrt(weights)[:, None]
            if not np.isfinite(offset).all():
                k = len(names)
                return cls(names, n_rows, n, np.full(k, np.nan), np.full((k, k), np.nan))
            # rows is this call's own array (a copy, √w·z, or z lent with overwrite=True).
            r = _triangular_factor(rows, overwrite=True)
        return cls(names, n_rows, n, shift, r, mean_lo=offset)

    def _add_spread(self, other: QRState, delta: np.ndarray, weight: float) -> None:
        stacked = np.vstack([self.r, other.r, np.sqrt(weight) * delta[None, :]])
        self.r = _merged_factor(stacked)

    def _take_spread(self, other: QRState) -> None:
        self.r = other.r.copy()

    def copy(self) -> QRState:
        return type(self)(
            self.names,
            self.n_rows,
            self.weight_sum,
            self.mean.copy(),
            self.r.copy(),
            mean_lo=self.mean_lo.copy(),
        )

    def is_finite(self) -> bool:
        return bool(np.isfinite(self.mean).all() and np.isfinite(self.r).all())

    @property
    def comoment(self) -> np.ndarray:
        """``M = RᵀR`` (for callers that want the moments; the solve does not form it)."""
        return self.r.T @ self.r

    def raw_factor(self) -> np.ndarray:
        """R of the uncentered rows: ``qr_r([R; √n·μᵀ])`` (for models without an intercept)."""
        mean = self.mean + self.mean_lo
        return _triangular_factor(np.vstack([self.r, np.sqrt(self.weight_sum) * mean[None, :]]))

    def __repr__(self) -> str:
        return (
            f"QRState(columns={len(self.names)}, n_rows={self.n_rows}, "
            f"weight_sum={self.weight_sum:g})"
        )


def _triangular_factor(rows: np.ndarray, *, overwrite: bool = False) -> np.ndarray:
    """R of ``rows`` (k columns) with a non-negative diagonal, always k × k.

    LAPACK's Householder QR (``dgeqrf``) called directly: ``np.linalg.qr(mode="r")`` runs
    the same factorization but copies and converts the batch first, which cost more than the
    factorization itself on tall batches. ``overwrite`` lets it factor a Fortran-ordered
    ``rows`` in place. The workspace is room for LAPACK's blocked algorithm (block size
    32 or 64), which it uses beyond ~128 columns; scipy's default workspace is too small
    for it and halves the speed of wide batches.
    """
    m, k = rows.shape
    if m == 0:
        return np.zeros((k, k))
    factored, _, _, info = _geqrf()(rows, lwork=64 * k, overwrite_a=overwrite)
    if info != 0:  # only for an invalid argument, which the shapes above rule out
        raise RuntimeError(f"LAPACK dgeqrf failed (info = {info}).")
    r = np.triu(factored[: min(m, k)])
    if r.shape[0] < k:
        r = np.vstack([r, np.zeros((k - r.shape[0], k))])
    signs = np.where(np.diagonal(r) < 0, -1.0, 1.0)
    return r * signs[:, None]


def _merged_factor(stacked: np.ndarray) -> np.ndarray:
    """R of two stacked factors and the means' row, in extended precision where it is cheap.

    A merge refactors ``2k + 1`` rows, so its cost does not grow with the data; rounding
    it in ``long double`` (64-bit mantissa on x86-64, 113 on aarch64) keeps the merges of
    many small batches from adding up to more error than one big batch: on NIST Norris in
    7-row batches the coefficients keep 12.8 digits (12.1 with float64 merges; numpy's
    in-memory lstsq 12.3). Beyond ``EXTENDED_MERGE_MAX`` columns the O(k³) unblocked
    ``long double`` arithmetic would cost more than the batches themselves.
    """
    k = stacked.shape[1]
    if k > EXTENDED_MERGE_MAX or np.finfo(np.longdouble).eps >= np.finfo(np.float64).eps:
        return _triangular_factor(stacked)
    a = np.array(stacked, dtype=np.longdouble)
    for j in range(min(a.shape[0], k)):
        column = a[j:, j]
        norm = np.sqrt((column * column).sum())
        if norm == 0:
            continue
        v = column.copy()
        v[0] += norm if column[0] >= 0 else -norm  # Householder vector, no cancellation
        a[j:, j:] -= np.outer(v, (2 / (v @ v)) * (v @ a[j:, j:]))
    r = np.triu(a[:k]).astype(np.float64)
    if r.shape[0] < k:
        r = np.vstack([r, np.zeros((k - r.shape[0], k))])
    signs = np.where(np.diagonal(r) < 0, -1.0, 1.0)
    return r * signs[:, None]


def solve_qr(
    state: QRState,
    *,
    fit_intercept: bool = True,
    drop_collinear: bool = False,
    collinear_tol: float = QR_COLLINEAR_TOL,
) -> Solution:
    """Least squares from the triangular factor, with R-style detection of aliased columns."""
    from scipy import linalg

    names = state.names[:-1]
    p = len(names)
    check_enough_rows(state, p, fit_intercept, aliasing=drop_collinear)
    factor = state.r if fit_intercept else state.raw_factor()
    norms = np.sqrt((factor**2).sum(axis=0))
    scale = np.where(norms[:p] > 0, norms[:p], 1.0)
    scaled = factor.copy()
    scaled[:, :p] /= scale

    kept: list[int] = []
    aliased: list[int] = []
    pivots: list[float] = []
    earlier: list[list[int]] = []
    # `current` is the R factor of the kept columns so far, then the untested ones and y:
    # its diagonal entry at column j's position is √(1 − R²ⱼ) on the earlier kept columns.
    current = scaled
    for j in range(p):
        position = len(kept)
        ratio = abs(current[position, position]) if norms[j] > 0 else 0.0
        if ratio <= collinear_tol:
            aliased.append(j)
            pivots.append(ratio**2)
            earlier.append(list(kept))
            current = _triangular_factor(np.delete(current, position, axis=1))
            continue
        kept.append(j)
    if aliased and not drop_collinear:
        raise CollinearityError(
            collinear_message(
                names, aliased, earlier, pivots, fit_intercept, norms[:p] > 0, tol=collinear_tol**2
            )
        )
    final = current
    m = len(kept)
    r_xx, r_xy, r_yy = final[:m, :m], final[:m, m], final[m, m]
    coef = np.full(p, np.nan)
    warnings: list[str] = []
    cond = 1.0
    xtx_inv = np.zeros((0, 0))
    if m:
        beta_scaled = linalg.solve_triangular(r_xx, r_xy)
        coef[kept] = beta_scaled / scale[kept]
        cond_r = float(np.linalg.cond(r_xx))
        cond = cond_r**2
        warnings += condition_warnings(
            cond_r,
            solver="qr",
            what="the centered, scaled design",
            warn=WARN_CONDITION_R,
            refuse=REFUSE_CONDITION_R,
        )
        r_inv = linalg.solve_triangular(r_xx, np.eye(m))
        xtx_inv = (r_inv @ r_inv.T) / np.outer(scale[kept], scale[kept])
    if aliased:
        warnings.append(
            "dropped as collinear (no coefficient): " + ", ".join(names[j] for j in aliased) + "."
        )
    intercept = intercept_from_means(state, coef) if fit_intercept else 0.0
    return Solution(
        coef=coef,
        intercept=intercept,
        aliased=[names[j] for j in aliased],
        rank=m + (1 if fit_intercept else 0),
        condition_number=cond,
        ssr=float(r_yy**2),
        tss=float(norms[p] ** 2),
        solver="qr",
        warnings=warnings,
        xtx_inv=xtx_inv,
    )
