r"""Ridge (``l1_ratio = 0``) in closed form and its generalized cross-validation score.

>>> import numpy as np
>>> from streamreg.solvers.moments import MomentState
>>> from streamreg.solvers.penalized.problem import GramProblem
>>> z = np.array([[0.0, 1.0], [1.0, 3.0], [2.0, 2.0]])
>>> problem = GramProblem.from_state(MomentState.from_arrays(z, names=["x", "y"]))
>>> ridge_solve(problem, 0.0).round(12).tolist()  # α = 0: least squares
[0.5]
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...errors import CollinearityError
from .problem import GramProblem, as_problem, checked_alphas


def ridge_solve(problem: GramProblem, alpha: float) -> np.ndarray:
    """Working coefficients ``(Q + αI)⁻¹ c`` by Cholesky (``α = 0`` is least squares)."""
    from scipy.linalg import LinAlgError, cho_factor, cho_solve

    m = problem.gram.shape[0]
    if m == 0:
        return np.zeros(0)
    try:
        factor = cho_factor(problem.gram + alpha * np.eye(m), lower=True, check_finite=False)
    except LinAlgError:
        raise CollinearityError(
            "the features are collinear, so alpha = 0 with l1_ratio = 0 has no unique solution; "
            "use a positive alpha."
        ) from None
    return cho_solve(factor, problem.cov, check_finite=False)


@dataclass(frozen=True)
class RidgeGCV:
    """Generalized cross-validation along a ridge path; ``best_alpha`` minimizes ``gcv``."""

    alphas: np.ndarray
    gcv: np.ndarray
    df: np.ndarray
    rss: np.ndarray

    @property
    def best_alpha(self) -> float:
        return float(self.alphas[int(np.argmin(self.gcv))])


def ridge_gcv(source, alphas, *, fit_intercept: bool = True, standardize: bool = False) -> RidgeGCV:
    r"""Exact GCV of ridge (``l1_ratio = 0``) at every alpha from one eigendecomposition.

    For ElasticNet's ``α`` the ridge fit minimizes ``Σwr² + nα‖γ‖²`` (``n = Σw``,
    ``γ = s⊙β``, scikit-learn's ``Ridge(alpha=n·α)``). Its hat matrix
    ``H = X(XᵀWX + nαS²)⁻¹XᵀW`` (plus the intercept's projection) has trace::

        df(α) = [1 if intercept] + Σ_j d_j / (d_j + α),

    ``d_j`` the eigenvalues of the working Gram ``Q`` (``M_xx/n``, standardized if
    asked; ``d_j/(d_j + α) = D_j/(D_j + nα)`` for the eigenvalues ``D = n·d`` of
    ``M_xx``). With ``RSS(α) = Σ wᵢ rᵢ²`` (Golub, Heath & Wahba 1979, weighted)::

        GCV(α) = n · RSS(α) / (n − df(α))²

    ``RSS/n = q − Σ z_j² (d_j + 2α)/(d_j + α)²`` with ``z = Vᵀc`` for ``Q = V diag(d) Vᵀ``.

    >>> from streamreg.solvers.moments import MomentState
    >>> rng = np.random.default_rng(1)
    >>> x = rng.normal(size=(50, 2)); y = x @ [1.0, 2.0] + rng.normal(size=50)
    >>> result = ridge_gcv(MomentState.from_arrays(np.column_stack([x, y]), names=["a", "b", "y"]),
    ...                    [10.0, 0.1, 0.0])
    >>> [round(float(v), 3) for v in result.df]
    [1.134, 2.751, 3.0]
    """
    grid = checked_alphas(alphas)
    problem = as_problem(source, fit_intercept, standardize)
    n = problem.weight_sum
    d, vectors = np.linalg.eigh(problem.gram)
    d = np.maximum(d, 0.0)
    z2 = (vectors.T @ problem.cov) ** 2
    with np.errstate(divide="ignore", invalid="ignore"):
        shrink = d[None, :] / (d[None, :] + grid[:, None])
        fitted = (
            z2[None, :] * (d[None, :] + 2.0 * grid[:, None]) / (d[None, :] + grid[:, None]) ** 2
        )
    shrink = np.where(np.isfinite(shrink), shrink, 0.0)  # d = α = 0: a direction with no data
    fitted = np.where(np.isfinite(fitted), fitted, 0.0)
    df = shrink.sum(axis=1) + (1.0 if fit_intercept else 0.0)
    rss = n * np.maximum(problem.target_square - fitted.sum(axis=1), 0.0)
    with np.errstate(divide="ignore"):
        gcv = np.where(n - df > 0, n * rss / (n - df) ** 2, np.inf)
    return RidgeGCV(grid, gcv, df, rss)
