r"""Heteroskedasticity- and cluster-robust covariances from a second streaming pass.

After the fit, a second pass re-reads the used columns and accumulates, in
the centered coordinates ``x̃ = [1, x − μ]`` (``x̃ = x`` without an
intercept), the scores ``uᵢ = wᵢ eᵢ x̃ᵢ`` of the residuals ``eᵢ = yᵢ − ŷᵢ``:

* ``HC0``: meat ``S = Σ uᵢuᵢᵀ``; ``HC1``: HC0 · n/(n − k);
* ``HC2``: ``S = Σ uᵢuᵢᵀ/(1 − hᵢ)``; ``HC3``: ``S = Σ uᵢuᵢᵀ/(1 − hᵢ)²``, with the
  leverage ``hᵢ = wᵢ x̃ᵢᵀ(X̃ᵀWX̃)⁻¹x̃ᵢ`` computed row by row from the solved state;
* ``cluster``: ``S = Σ_g s_g s_gᵀ`` with ``s_g = Σ_{i∈g} uᵢ``, times
  ``G/(G − 1) · (n − 1)/(n − k)`` (statsmodels' CRV1 correction).

The covariance is the sandwich ``B S B`` with the bread ``B = (X̃ᵀWX̃)⁻¹`` —
block-diagonal ``diag(1/Σw, M_xx⁻¹)`` in centered coordinates — mapped back to
the intercept-first parameters with ``T = [[1, −μᵀ], [0, I]]``. Memory is
``O(k²)``, or ``O(k·G)`` for ``G`` clusters. These match statsmodels'
``OLS/WLS(...).fit(cov_type=...)``.
"""

from __future__ import annotations

import numpy as np

from ..choices import ROBUST_TYPES
from ..engine.merge import Mergeable
from ..errors import InputError


def parse_cov_type(text: str | None, groups: str | None = None) -> tuple[str, str | None]:
    """``"HC3"`` → ("HC3", None); ``"cluster:firm"`` → ("cluster", "firm"); validated."""
    if text is None or text == "nonrobust":
        if groups is not None:
            raise InputError("groups was given but cov_type is not 'cluster'.")
        return "nonrobust", None
    name, _, column = str(text).partition(":")
    upper = name.upper() if name.lower().startswith("hc") else name.lower()
    if upper not in ROBUST_TYPES:
        raise InputError(
            f"cov_type must be one of nonrobust, {', '.join(ROBUST_TYPES)} (or cluster:COLUMN); "
            f"got {text!r}."
        )
    if upper == "cluster":
        column = column or groups
        if not column:
            raise InputError(
                "cov_type 'cluster' needs the column that names the clusters (cluster:COLUMN, or "
                "groups=)."
            )
        return upper, column
    if column or groups:
        raise InputError(f"cov_type {upper} takes no cluster column.")
    return upper, None


class Sandwich(Mergeable):
    """Mergeable meat of a robust covariance; see the module docstring."""

    def __init__(self, cov_type: str, size: int):
        self.cov_type = cov_type
        self.meat = np.zeros((size, size))
        self.cluster_sums: dict = {}
        self.n_rows = 0

    def update(
        self,
        x_centered: np.ndarray,
        resid: np.ndarray,
        weights: np.ndarray | None,
        bread_kept: np.ndarray,
        inverse_n: float | None,
        groups=None,
    ) -> None:
        """Fold one batch: ``x_centered`` holds the kept features (minus their means when there
        is an intercept); ``bread_kept`` is ``M_xx⁻¹``; ``inverse_n`` is ``1/Σw`` or None
        without an intercept."""
        import pandas as pd

        w = np.ones(len(resid)) if weights is None else weights
        design = (
            x_centered if inverse_n is None else np.column_stack([np.ones(len(resid)), x_centered])
        )
        scores = design * (w * resid)[:, None]
        if self.cov_type in ("HC2", "HC3"):
            leverage = np.einsum("ij,jk,ik->i", x_centered, bread_kept, x_centered)
            if inverse_n is not None:
                leverage = leverage + inverse_n
            leverage *= w
            power = 0.5 if self.cov_type == "HC2" else 1.0
            with np.errstate(divide="ignore"):
                scores = scores / ((1.0 - leverage) ** power)[:, None]
        if self.cov_type == "cluster":
            codes, uniques = pd.factorize(pd.Series(groups), use_na_sentinel=False)
            for key, total in zip(uniques.tolist(), _group_sums(codes, scores, len(uniques))):
                previous = self.cluster_sums.get(key)
                self.cluster_sums[key] = total if previous is None else previous + total
        else:
            self.meat += scores.T @ scores
        self.n_rows += len(resid)

    def copy(self) -> Sandwich:
        out = Sandwich(self.cov_type, self.meat.shape[0])
        out.meat = self.meat.copy()
        out.cluster_sums = dict(self.cluster_sums)
        out.n_rows = self.n_rows
        return out

    def __iadd__(self, other: Sandwich) -> Sandwich:
        self.meat = self.meat + other.meat
        for key, total in other.cluster_sums.items():
            self.cluster_sums[key] = (
                self.cluster_sums[key] + total if key in self.cluster_sums else total
            )
        self.n_rows += other.n_rows
        return self

    def covariance(
        self, bread: np.ndarray, nobs: float, rank: int
    ) -> tuple[np.ndarray, int | None]:
        """``B S B`` with the small-sample factor of the type; returns (cov, number of clusters)."""
        meat = self.meat
        n_groups = None
        factor = 1.0
        if self.cov_type == "cluster":
            sums = np.array(list(self.cluster_sums.values()))
            n_groups = len(sums)
            if n_groups < 2:
                raise InputError(
                    f"cluster-robust errors need at least two clusters; the data hold {n_groups}."
                )
            meat = sums.T @ sums
            factor = n_groups / (n_groups - 1.0) * (nobs - 1.0) / (nobs - rank)
        elif self.cov_type == "HC1":
            factor = nobs / (nobs - rank)
        return factor * (bread @ meat @ bread), n_groups


def _group_sums(codes: np.ndarray, scores: np.ndarray, n_groups: int) -> np.ndarray:
    out = np.empty((n_groups, scores.shape[1]))
    for j in range(scores.shape[1]):
        out[:, j] = np.bincount(codes, weights=scores[:, j], minlength=n_groups)
    return out


def centered_bread(xtx_inv: np.ndarray, weight_sum: float, fit_intercept: bool) -> np.ndarray:
    """``(X̃ᵀWX̃)⁻¹`` in centered coordinates: ``diag(1/Σw, M_xx⁻¹)`` (just ``M⁻¹`` without
    intercept)."""
    if not fit_intercept:
        return xtx_inv
    m = xtx_inv.shape[0]
    bread = np.zeros((m + 1, m + 1))
    bread[0, 0] = 1.0 / weight_sum
    bread[1:, 1:] = xtx_inv
    return bread


def to_parameter_coordinates(cov_centered: np.ndarray, mean_kept: np.ndarray | None) -> np.ndarray:
    """Map a covariance of (intercept at the mean, slopes) to (intercept, slopes)."""
    if mean_kept is None:
        return cov_centered
    m = len(mean_kept)
    transform = np.eye(m + 1)
    transform[0, 1:] = -mean_kept
    return transform @ cov_centered @ transform.T


def robust_record(sandwich: Sandwich, state, solution, spec) -> dict:
    """The covariance of the parameters from the merged meat (NaN rows for aliased columns)."""
    p = len(spec.features)
    kept = ~np.isnan(solution.coef)
    intercept = spec.fit_intercept
    xtx_inv = np.asarray(solution.xtx_inv, dtype=float)
    cov_centered, n_groups = sandwich.covariance(
        centered_bread(xtx_inv, state.weight_sum, intercept), nobs=state.n_rows, rank=solution.rank
    )
    mean = (state.mean + state.mean_lo)[:p][kept] if intercept else None
    cov_kept = to_parameter_coordinates(cov_centered, mean)
    size = p + int(intercept)
    full = np.full((size, size), np.nan)
    index = np.r_[[0] if intercept else [], np.flatnonzero(kept) + int(intercept)].astype(int)
    full[np.ix_(index, index)] = cov_kept
    return {
        "cov_type": sandwich.cov_type,
        "cov": full.tolist(),
        "n_groups": n_groups,
        "groups": spec.groups,
    }


def centered_residuals(z, state, kept, beta, p, intercept):
    """``(x̃, e)``: a batch's kept feature columns (centred on the fit's means when it has an
    intercept) and its residuals ``ỹ − x̃ᵀβ`` at the fit's coefficients."""
    x = z[:, :p][:, kept]
    y = z[:, p]
    with np.errstate(invalid="ignore", over="ignore"):
        if not intercept:
            return x, y - x @ beta
        # Centre with both halves of the double-double means: offsets of 1e9 keep their digits.
        x_centered = (x - state.mean[:p][kept]) - state.mean_lo[:p][kept]
        y_centered = (y - state.mean[p]) - state.mean_lo[p]
        return x_centered, y_centered - x_centered @ beta
