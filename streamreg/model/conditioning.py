r"""statsmodels' condition number, accurately, from a centered state and its solve.

statsmodels' ``condition_number`` is ``√(λmax/λmin)`` of ``G = XᵀWX`` over the
raw design *with* its constant column — the ratio of the extreme singular values
of ``√W·[1, X]``. Taking eigenvalues of a float64 ``G`` squares the condition:
``λmin`` drowns in rounding once ``cond ≳ 1e8`` (NIST Filip: 1.8e15 becomes ``inf``).

Here the two extremes come from two well-conditioned problems::

    cond² = λmax(G) · λmax(G⁻¹)

``λmax`` of a symmetric matrix moves by at most the norm of a perturbation
(Weyl), so each factor is as accurate as the matrix it is taken from is in norm.
``G`` is assembled from the centered state, ``[[n, nμᵀ], [nμ, M + nμμᵀ]]``; ``G⁻¹``
from the inverse ``M⁻¹`` that the solve already formed (``solution.xtx_inv``)::

    G⁻¹ = [[1/n + μᵀM⁻¹μ, −μᵀM⁻¹], [−M⁻¹μ, M⁻¹]]

(without an intercept ``G = Σwxxᵀ`` and ``G⁻¹`` is its inverse).

So the accuracy is that of ``M⁻¹``, which depends on the state (measured against
the exact value of the float64 data — eigenvalue bisection on the exact rational
Gram — over the 11 NIST StRD sets, ``tests/test_conditioning.py``):

* :class:`~streamreg.solvers.exact.ExactState` — ``M⁻¹`` is the exact inverse rounded once:
  within 3e-12 everywhere, Filip (1.8e15) included;
* :class:`~streamreg.solvers.qr.QRState` — ``M⁻¹ = R⁻¹R⁻ᵀ``: within 1.2e-8, Filip included
  (2e-13 on the others), streamed in 7-row batches;
* :class:`~streamreg.solvers.moments.MomentState` — ``M⁻¹`` from the scaled Cholesky factor:
  within 3.4e-11 on the ten others; not on Filip, whose scaled centered moments have
  condition 1.5e19 > 1/ε, so even correctly rounded float64 moments do not determine
  ``λmin`` (measured 0.86 relative; the cholesky solve refuses that state anyway).

For comparison, statsmodels itself (an SVD of the design) is within 2.5e-7 on
Filip and 6e-10 on Pontius.

>>> import numpy as np
>>> x = np.array([[1.0], [2.0], [4.0]])
>>> m = np.array([[((x - x.mean()) ** 2).sum()]])
>>> got = condition_number(3.0, x.mean(0), m, np.linalg.inv(m), fit_intercept=True)
>>> bool(np.isclose(got, np.linalg.cond(np.column_stack([np.ones(3), x]))))
True
"""

from __future__ import annotations

import math

import numpy as np

from ..solvers.exact import solve_exact


def condition_number(
    weight_sum: float,
    mean_x: np.ndarray,
    comoment_xx: np.ndarray,
    comoment_xx_inv: np.ndarray,
    *,
    fit_intercept: bool,
) -> float:
    """``√(λmax(G)·λmax(G⁻¹))`` from ``Σw``, the feature means, the centered co-moments
    ``M`` of the features and their inverse — or, without an intercept, from the raw
    moments ``Σwxxᵀ`` and their inverse (``mean_x`` is then unused)."""
    m = np.asarray(comoment_xx, dtype=np.float64)
    inverse = np.asarray(comoment_xx_inv, dtype=np.float64)
    if not (np.isfinite(m).all() and np.isfinite(inverse).all()):
        return math.inf
    if fit_intercept:
        n = float(weight_sum)
        mean = np.asarray(mean_x, dtype=np.float64)
        k = mean.shape[0]
        gram = np.empty((k + 1, k + 1))
        gram[0, 0] = n
        gram[0, 1:] = gram[1:, 0] = n * mean
        gram[1:, 1:] = m + n * np.outer(mean, mean)
        cross = inverse @ mean
        gram_inv = np.empty((k + 1, k + 1))
        gram_inv[0, 0] = 1.0 / n + mean @ cross
        gram_inv[0, 1:] = gram_inv[1:, 0] = -cross
        gram_inv[1:, 1:] = inverse
    else:
        gram, gram_inv = m, inverse
    if gram.shape[0] == 0:
        return math.nan
    largest = np.linalg.eigvalsh(gram)[-1]
    largest_inv = np.linalg.eigvalsh(gram_inv)[-1]
    if largest <= 0 or largest_inv <= 0:
        return math.inf
    return float(math.sqrt(largest * largest_inv))


def state_condition_number(
    state, coef: np.ndarray, *, fit_intercept: bool, xtx_inv: np.ndarray | None = None
) -> float:
    """statsmodels' condition number of a fit over its kept (non-NaN) coefficients.

    ``xtx_inv`` is the solve's inverse of the kept moment block (``solution.xtx_inv``);
    without it the inverse is formed here — by the exact solver for an exact state, from the
    triangular factor of a QR state, else from a scaled Cholesky factor of the moments —
    and a singular block gives ``inf``."""
    coef = np.asarray(coef, dtype=np.float64)
    p = coef.shape[0]
    kept = ~np.isnan(coef)
    moments = state.comoment if fit_intercept else state.raw_moments()
    block = moments[:p, :p][np.ix_(kept, kept)]
    if xtx_inv is None:
        xtx_inv = _inverse(state, block, kept, fit_intercept)
        if xtx_inv is None:
            return math.inf
    mean = (state.mean + state.mean_lo)[:p][kept]
    return condition_number(state.weight_sum, mean, block, xtx_inv, fit_intercept=fit_intercept)


def _inverse(state, block, kept, fit_intercept):
    from scipy import linalg

    if hasattr(state, "exact_moments"):  # an ExactState: its exact inverse, rounded once
        solution = solve_exact(state, fit_intercept=fit_intercept, drop_collinear=True)
        same = np.array_equal(~np.isnan(solution.coef), kept)
        return np.asarray(solution.xtx_inv, dtype=float) if same else None
    if hasattr(state, "r"):  # a QRState: invert the triangular factor of the kept columns
        factor = state.r if fit_intercept else state.raw_factor()
        p = kept.shape[0]
        r = np.linalg.qr(factor[:, :p][:, kept], mode="r")
        if not np.all(np.abs(np.diagonal(r)) > 0):
            return None
        r_inv = linalg.solve_triangular(r, np.eye(r.shape[0]))
        return r_inv @ r_inv.T
    scale = np.sqrt(np.diagonal(block))
    if not np.all(scale > 0):
        return None
    try:
        lower = np.linalg.cholesky(block / np.outer(scale, scale))
    except np.linalg.LinAlgError:
        return None
    scaled_inv = linalg.cho_solve((lower, True), np.eye(block.shape[0]))
    return scaled_inv / np.outer(scale, scale)
