r"""Minimum-norm least squares from a state: scikit-learn's ``LinearRegression``, rank-deficient.

scikit-learn centers ``X`` and ``y`` by their (weighted) means, scales rows by
``√w`` and calls ``scipy.linalg.lstsq(X̃, ỹ, cond=tol)`` (``tol=1e-6`` by default,
scikit-learn ≥ 1.9): singular values ``σᵢ ≤ tol·σ_max`` of ``X̃ = √W(X − μ)`` count
as zero and the solution is the one of least norm, ``β = V Σ⁺ Uᵀỹ``; the intercept
is ``μ_y − μ_xᵀβ``. Without an intercept the same holds for the raw ``√W X``.

From a state:

* :class:`~streamreg.solvers.qr.QRState` — the SVD of the triangular factor ``R_xx``
  (same singular values as ``X̃``) and ``β = V Σ⁺ Uᵀ r_xy``: the singular values
  carry an absolute error of about ``ε·σ_max``, as in scikit-learn's own SVD;
* :class:`~streamreg.solvers.moments.MomentState` (and the exact state's rounded moments) — the
  eigen-decomposition ``M_xx = V Λ Vᵀ`` with ``σ = √λ``: ``λ`` carries an absolute
  error of about ``ε·λ_max``, so ``σ`` is resolved down to about ``√ε·σ_max ≈ 1.5e-8·σ_max``.

**Rank threshold and its limits.** Kept are ``σᵢ > rcond·σ_max`` (``rcond = 1e-6``,
scikit-learn's default; LAPACK's ``gelsd`` rule). The decision agrees with scikit-learn's
unless a singular value lies within the rounding of the threshold: within ~1e-10
relative of it from a QR state, within ~0.1 % from a moment state (where
``σ²/σ²_max`` is known to ~1e-15 against a threshold of 1e-12). Components kept near
the threshold are ill-determined in any method: the error of ``β`` along ``vᵢ`` grows
like ``ε·σ_max/σᵢ`` (QR, and scikit-learn) or ``ε·(σ_max/σᵢ)²`` (moments).

>>> import numpy as np
>>> from streamreg.solvers.moments import MomentState
>>> x = np.array([[1.0, 2.0], [2.0, 4.0], [3.0, 6.0]])   # second column = 2 × first
>>> z = np.column_stack([x, [1.0, 2.0, 3.0]])
>>> sol = minimum_norm_solve(MomentState.from_arrays(z, names=["a", "b", "y"]))
>>> np.round(sol.coef, 12).tolist(), sol.rank_
([0.2, 0.4], 1)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..choices import RANK_DEFICIENT
from ..errors import CollinearityError, IllConditionedError, InputError, parameter
from .solution import Solution, intercept_from_means

DEFAULT_RCOND = 1e-6


@dataclass
class MinimumNormSolution:
    """The minimum-norm solution and the facts scikit-learn reports (``rank_``, ``singular_``)."""

    coef: np.ndarray  # p coefficients, none aliased
    intercept: float
    rank_: int  # effective rank of the (centered) feature matrix
    singular_: np.ndarray  # its singular values, in decreasing order
    rcond: float
    ssr: float
    tss: float
    xtx_inv: np.ndarray  # pseudo-inverse of the moment matrix (V Λ⁺ Vᵀ)

    def to_solution(self, fit_intercept: bool = True) -> Solution:
        """As a :class:`~streamreg.solvers.solution.Solution` (``rank`` counts the intercept; the
        condition number is that of the kept part of the scaled-free system, ``(σ_max/σ_r)²``)."""
        kept = self.singular_[: self.rank_]
        cond = float((kept[0] / kept[-1]) ** 2) if self.rank_ else 1.0
        notes = []
        if self.rank_ < len(self.coef):
            notes.append(
                f"minimum-norm solution: the features have rank {self.rank_} of "
                f"{len(self.coef)} (singular values ≤ {self.rcond:g}·σ_max treated as zero)."
            )
        return Solution(
            coef=self.coef,
            intercept=self.intercept,
            aliased=[],
            rank=self.rank_ + int(fit_intercept),
            condition_number=cond,
            ssr=self.ssr,
            tss=self.tss,
            solver="minimum_norm",
            warnings=notes,
            xtx_inv=self.xtx_inv,
        )


def minimum_norm_solve(
    state, *, fit_intercept: bool = True, rcond: float = DEFAULT_RCOND
) -> MinimumNormSolution:
    """scikit-learn's ``LinearRegression`` answer from any state; see the module docstring."""
    p = len(state.names) - 1
    if hasattr(state, "r"):
        coef, singular, rank, ssr, tss, pinv = _from_factor(
            state.r if fit_intercept else state.raw_factor(), p, rcond
        )
    else:
        moments = state.comoment if fit_intercept else state.raw_moments()
        coef, singular, rank, ssr, tss, pinv = _from_moments(moments, p, rcond)
    intercept = intercept_from_means(state, coef) if fit_intercept else 0.0
    return MinimumNormSolution(
        coef=coef,
        intercept=float(intercept),
        rank_=rank,
        singular_=singular,
        rcond=rcond,
        ssr=ssr,
        tss=tss,
        xtx_inv=pinv,
    )


def _from_moments(moments: np.ndarray, p: int, rcond: float):
    a, b, syy = moments[:p, :p], moments[:p, p], float(moments[p, p])
    eigenvalues, vectors = np.linalg.eigh(a)
    order = np.argsort(eigenvalues)[::-1]
    eigenvalues, vectors = eigenvalues[order], vectors[:, order]
    singular = np.sqrt(np.clip(eigenvalues, 0.0, None))
    rank = int(np.sum(singular > rcond * singular[0])) if p and singular[0] > 0 else 0
    kept = vectors[:, :rank]
    projected = kept.T @ b
    inverse_values = 1.0 / eigenvalues[:rank]
    coef = kept @ (inverse_values * projected)
    ssr = max(syy - float(projected @ (inverse_values * projected)), 0.0)
    pinv = (kept * inverse_values) @ kept.T
    return coef, singular, rank, ssr, syy, pinv


def _from_factor(factor: np.ndarray, p: int, rcond: float):
    r_xx, r_xy = factor[:p, :p], factor[:p, p]
    # What R does not reach of y: the last column below the feature rows.
    rest = float(factor[p:, p] @ factor[p:, p])
    u, singular, vt = np.linalg.svd(r_xx)
    rank = int(np.sum(singular > rcond * singular[0])) if p and singular[0] > 0 else 0
    projected = u.T @ r_xy
    coef = vt[:rank].T @ (projected[:rank] / singular[:rank])
    ssr = rest + float(projected[rank:] @ projected[rank:])
    tss = rest + float(r_xy @ r_xy)
    inverse_values = 1.0 / singular[:rank] ** 2
    pinv = (vt[:rank].T * inverse_values) @ vt[:rank]
    return coef, singular, rank, ssr, tss, pinv


def check_rank_deficient(rank_deficient, drop_collinear: bool = False) -> str:
    """The policy for a rank-deficient design: ``error``, ``alias`` (R's ``NA``, what
    ``drop_collinear=True`` asks for) or ``minimum_norm`` (scikit-learn's answer)."""
    if rank_deficient is None:
        return "alias" if drop_collinear else "error"
    if rank_deficient not in RANK_DEFICIENT:
        raise InputError(
            f"{_named('rank_deficient')} must be one of {', '.join(RANK_DEFICIENT)}; "
            f"got {rank_deficient!r}."
        )
    if drop_collinear and rank_deficient != "alias":
        raise InputError(
            f"{parameter('drop_collinear', True)} asks for aliased columns, but "
            f"{parameter('rank_deficient', rank_deficient)} for something else; give one."
        )
    return rank_deficient


def solve_least_norm(
    state, solve, *, fit_intercept: bool = True, rcond: float = DEFAULT_RCOND
) -> Solution:
    """scikit-learn's answer with this solver's accuracy where the two agree.

    If the (centered) features have full rank in scikit-learn's sense (every singular value
    above ``rcond·σ_max``) the unique least-squares solution is the minimum-norm one, and
    ``solve`` (the family's own solve, more accurate than an eigen-decomposition of the
    moments) gives it; otherwise :func:`minimum_norm_solve`.

    >>> import numpy as np
    >>> from streamreg.solvers.moments import MomentState, solve_normal_equations
    >>> x = np.array([[1.0, 2.0], [2.0, 4.0], [3.0, 6.0], [4.0, 8.5]])
    >>> z = np.column_stack([x, [1.0, 2.0, 3.0, 4.0]])
    >>> state = MomentState.from_arrays(z, names=["a", "b", "y"])
    >>> solve_least_norm(state, solve_normal_equations).solver
    'cholesky'
    >>> state = MomentState.from_arrays(z[:3], names=["a", "b", "y"])
    >>> solve_least_norm(state, solve_normal_equations).solver
    'minimum_norm'
    """
    least = minimum_norm_solve(state, fit_intercept=fit_intercept, rcond=rcond)
    if least.rank_ == len(least.coef):
        try:
            return solve(state, fit_intercept=fit_intercept, drop_collinear=False)
        except (CollinearityError, IllConditionedError):
            pass  # full rank by scikit-learn's threshold, but not by this solver's: its answer
    return least.to_solution(fit_intercept)


def _named(name: str) -> str:
    """A parameter's name in messages: ``use_t`` in Python, ``--use-t`` on the command line."""
    return parameter(name).rstrip("=")
