r"""Coordinate descent for the elastic net on a Gram matrix (covariance updates).

Minimizes, over ``β``, for a symmetric positive semi-definite ``Q`` (``gram``),
``c`` (``cov``) and ``q`` (the target's second moment)::

    ½ βᵀQβ − cᵀβ + ½ q  +  l1·‖β‖₁ + ½·l2·‖β‖²        (l1 = αρ, l2 = α(1 − ρ))

— the objective of :mod:`streamreg.solvers.penalized` in working coordinates, where the
algorithm (strong rules, KKT checks, the Newton step on the support, the duality
gap) is described. Everything here works on arrays; nothing knows about states.

>>> import numpy as np
>>> grid = np.array([0.5])
>>> coefs, sweeps, gaps = cd_path(np.eye(2), np.array([1.0, 0.2]), 1.0, grid, 1.0, 1e-12, 100)
>>> coefs.tolist(), float(gaps[0]) < 1e-15
([[0.5, 0.0]], True)
"""

from __future__ import annotations

import warnings

import numpy as np

from ...errors import ConvergenceWarning

# A feature outside the support may exceed the L1 threshold by this much (relative) and
# still count as satisfying the KKT conditions: the gradient itself is only that accurate.
_KKT_SLACK = 1e-10


def cd_path(
    gram: np.ndarray,
    cov: np.ndarray,
    q: float,
    grid: np.ndarray,
    ratio: float,
    tol: float,
    max_iter: int,
    screening: bool = True,
):
    """Warm-started solutions at each alpha of the decreasing ``grid`` for ``l1_ratio = ratio``.

    Returns the coefficients (one row per alpha), the sweeps and the duality gaps.
    """
    m = len(cov)
    working = np.zeros((len(grid), m))
    n_iter = np.zeros(len(grid), dtype=np.int64)
    gaps = np.zeros(len(grid))
    beta = np.zeros(m)
    gradient = cov.copy()  # c − Qβ at the previous solution (β = 0 at α_max)
    previous_l1 = float(np.max(np.abs(cov), initial=0.0))
    for i, alpha in enumerate(grid):
        l1, l2 = float(alpha) * ratio, float(alpha) * (1.0 - ratio)
        if screening:
            strong = (np.abs(gradient) >= 2.0 * l1 - previous_l1) | (beta != 0.0)
        else:
            strong = np.ones(m, dtype=bool)
        beta, gradient, sweeps, gap, converged = solve_alpha(
            gram, cov, q, l1, l2, beta, strong, tol, max_iter
        )
        if not converged:
            warnings.warn(
                f"coordinate descent stopped after {max_iter} sweeps at alpha={alpha:g} with "
                f"duality gap {gap:.3g} > tol·q = {tol * q:.3g}; raise max_iter or tol.",
                ConvergenceWarning,
                stacklevel=3,
            )
        working[i], n_iter[i], gaps[i] = beta, sweeps, gap
        previous_l1 = l1
    return working, n_iter, gaps


def solve_alpha(gram, cov, q, l1, l2, beta, work, tol, max_iter):
    """Solve one alpha from the warm start ``beta`` on the working set ``work`` (a mask),
    grown by KKT checks until no feature outside it violates them.

    Returns ``(β, c − Qβ, sweeps, duality gap, converged)``; converged means the gap met
    ``tol·q`` or the KKT conditions hold exactly (the Newton step on the support).
    """
    beta = beta.copy()
    sweeps = 0
    inner_tol = tol
    while True:
        idx = np.flatnonzero(work)
        sub = np.ascontiguousarray(gram[np.ix_(idx, idx)])
        beta[idx], used, exact = _solve_working_set(
            sub, cov[idx], l1, l2, beta[idx], inner_tol, max_iter - sweeps
        )
        sweeps += used
        gradient = cov - gram @ beta
        violators = ~work & (np.abs(gradient) > l1 * (1.0 + _KKT_SLACK))
        if violators.any() and sweeps < max_iter:
            work = work | violators
            continue
        gap = duality_gap(beta, gradient, cov, q, l1, l2)
        # An exact solve on the working set with no violator outside is the optimum: its
        # gap is rounding, and sweeping on could not lower it.
        if exact or gap <= tol * q or sweeps >= max_iter:
            return beta, gradient, sweeps, gap, exact or gap <= tol * q
        # The sweep criterion was met but the gap was not: sweep on, more strictly.
        inner_tol = inner_tol / 16.0


def _solve_working_set(gram, cov, l1, l2, beta, tol, budget):
    """Coordinate descent on a small problem, each sweep followed by a Newton step on the
    support (:func:`_support_step`).

    Returns the coefficients, the sweeps used and whether the KKT conditions hold exactly.
    """
    sweeps = 0
    failed_support = None
    while True:
        support = tuple(np.flatnonzero(beta))
        if support != failed_support:
            beta, exact = _support_step(gram, cov, l1, l2, beta)
            if exact:
                return beta, sweeps, True
            failed_support = support
        if sweeps >= budget:
            return beta, sweeps, False
        beta, max_change, max_coef = _sweep(gram, cov, l1, l2, beta)
        sweeps += 1
        if max_coef == 0.0 or max_change <= tol * max_coef:
            return beta, sweeps, False


def _sweep(gram, cov, l1, l2, beta):
    """One cyclic pass of covariance-update coordinate descent.

    Only coordinates that are non-zero or whose gradient exceeds the L1 threshold at
    the start of the pass are visited (the others would stay at zero); the KKT check
    after the solve catches any that cross the threshold during the pass.
    """
    g = cov - gram @ beta
    visit = np.flatnonzero((beta != 0.0) | (np.abs(g) > l1)).tolist()
    diag = np.diagonal(gram)
    b = beta.copy()
    max_change = 0.0
    for j in visit:
        old = b[j]
        d = diag[j]
        t = g[j] + d * old
        if t > l1:
            new = (t - l1) / (d + l2)
        elif t < -l1:
            new = (t + l1) / (d + l2)
        else:
            new = 0.0
        if new != old:
            change = new - old
            g -= change * gram[j]
            b[j] = new
            max_change = max(max_change, abs(change))
    return b, float(max_change), float(np.max(np.abs(b), initial=0.0))


def _support_step(gram, cov, l1, l2, beta):
    """A Newton step on the support of ``beta``; ``(new beta, is it the optimum)``.

    On the support ``S`` with signs ``σ`` the objective is the quadratic minimized by
    ``x``: ``(Q_SS + l2·I) x = c_S − l1·σ``. If ``x`` keeps the signs ``σ`` and every
    feature off the support has ``|c_j − Q_jS x| ≤ l1``, the KKT conditions hold and
    ``x`` is the minimizer (to rounding). If some sign flips, the step stops where the
    first coefficient reaches zero (feature-sign search, Lee et al. 2007): the objective
    falls along the way, as it is that same quadratic on the segment.
    """
    from scipy.linalg import LinAlgError, cho_factor, cho_solve

    support = np.flatnonzero(beta)
    x = np.zeros_like(beta)
    if support.size:
        signs = np.sign(beta[support])
        system = gram[np.ix_(support, support)] + l2 * np.eye(support.size)
        try:
            factor = cho_factor(system, lower=True, check_finite=False)
        except LinAlgError:
            return beta, False
        solution = cho_solve(factor, cov[support] - l1 * signs, check_finite=False)
        crossing = signs * solution <= 0.0
        if crossing.any():
            old = beta[support]
            fractions = old[crossing] / (old[crossing] - solution[crossing])
            first = int(np.argmin(fractions))
            step = old + fractions[first] * (solution - old)
            step[np.flatnonzero(crossing)[first]] = 0.0
            step[signs * step < 0.0] = 0.0  # rounding at the boundary
            x[support] = step
            if _objective(gram, cov, l1, l2, x) > _objective(gram, cov, l1, l2, beta):
                return beta, False
            return x, False
        x[support] = solution
    off = np.ones(len(beta), dtype=bool)
    off[support] = False
    if off.any():
        gradient = cov[off] - gram[np.ix_(off, support)] @ x[support]
        if np.any(np.abs(gradient) > l1 * (1.0 + _KKT_SLACK)):
            better = _objective(gram, cov, l1, l2, x) <= _objective(gram, cov, l1, l2, beta)
            return (x if better else beta), False
    return x, True


def _objective(gram, cov, l1, l2, beta) -> float:
    """``½βᵀQβ − cᵀβ + l1‖β‖₁ + ½l2‖β‖²`` (the objective less its constant ``½q``)."""
    return float(
        0.5 * beta @ (gram @ beta) - cov @ beta + l1 * np.abs(beta).sum() + 0.5 * l2 * beta @ beta
    )


def duality_gap(beta, gradient, cov, q, l1, l2) -> float:
    """Primal minus dual objective at ``beta`` (``gradient = c − Qβ``).

    With ``R = ‖r‖²/n = q − 2cᵀβ + βᵀQβ``, ``G = c − Qβ − l2·β`` and
    ``κ = min(1, l1/‖G‖∞)`` (the residual scaled into the dual feasible set)::

        gap = ½(1 + κ²)(R + l2‖β‖²) − κ(q − cᵀβ) + l1‖β‖₁

    (the elastic net as a lasso on augmented data; scikit-learn's gram gap over n).
    """
    q_beta = cov - gradient
    residual = max(q - 2.0 * cov @ beta + beta @ q_beta, 0.0)
    dual_norm = float(np.max(np.abs(gradient - l2 * beta), initial=0.0))
    kappa = min(1.0, l1 / dual_norm) if dual_norm > 0 else 1.0
    norm2 = float(beta @ beta)
    gap = (
        0.5 * (1.0 + kappa**2) * (residual + l2 * norm2)
        - kappa * (q - cov @ beta)
        + l1 * float(np.abs(beta).sum())
    )
    return float(gap)
