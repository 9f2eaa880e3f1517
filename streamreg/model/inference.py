r"""Statistical inference for a fitted model, named as statsmodels names it.

Everything here comes from the solved state: no pass over the data, except for
robust covariances (:mod:`streamreg.model.robust`), which are computed in a second
streaming pass and handed in as a matrix. With ``k`` kept parameters
(intercept included), ``n`` rows and weights ``w``:

* ``scale = SSR / (n − k)``; ``cov_params() = scale · (XᵀWX)⁻¹``, where the
  inverse is assembled from the centered solve: ``V_ββ = M_xx⁻¹``,
  ``V_bb = 1/Σw + μᵀM_xx⁻¹μ``, ``V_bβ = −μᵀM_xx⁻¹``;
* ``tvalues = params / bse``; ``pvalues`` two-sided from Student's t with
  ``n − k`` degrees of freedom (the normal distribution for robust
  covariances, as statsmodels does);
* ``rsquared = 1 − SSR/TSS`` (uncentered TSS without an intercept),
  ``rsquared_adj = 1 − (n − k₀)/(n − k)·(1 − R²)`` with ``k₀`` = 1 if there is
  an intercept;
* ``fvalue = (ESS/df_model)/scale`` (a Wald F test of the slopes under a robust
  covariance);
* ``llf = −n/2·(1 + log(2π·SSR/n)) + ½ Σ log w``, ``aic = −2 llf + 2k``,
  ``bic = −2 llf + k log n``.

A design without an intercept whose categories span the constant (``y ~ C(g) - 1``)
has an *implicit* intercept: as statsmodels, R², F and the model's degrees of freedom
are then about the mean (``k_constant = 1``). A model with an absorbed fixed effect
(``absorbed_``: ``G`` groups, singleton groups dropped as pyfixest does) has
``n = N − singletons`` rows, ``df_resid = n − k − G``, no intercept parameter, R² the
*within* R², and Student's t for its p values and intervals also under clustered
errors (with ``H − 1`` degrees of freedom for ``H`` clusters, as pyfixest).

Aliased (collinear) columns have NaN in every per-parameter statistic.
"""

from __future__ import annotations

import math
from functools import cached_property

import numpy as np

from ..errors import InputError

COV_TYPES = ("nonrobust", "HC0", "HC1", "HC2", "HC3", "cluster")


class InferenceMixin:
    """Lazy, documented statistics; the host class provides ``solution_``, ``state_``,
    ``fit_intercept``, ``log_weight_sum_`` and ``robust_`` (a dict or None)."""

    # --------------------------------------------------------------- parameters
    @property
    def param_names(self) -> list[str]:
        """``Intercept`` (when fitted) then the features, in order."""
        return (["Intercept"] if self.fit_intercept else []) + [
            str(n) for n in self.feature_names_in_
        ]

    @cached_property
    def params(self) -> np.ndarray:
        """Intercept first (when fitted), then the coefficients; NaN for aliased columns."""
        coef = np.asarray(self.coef_, dtype=float)
        return np.r_[self.intercept_, coef] if self.fit_intercept else coef.copy()

    @cached_property
    def _kept(self) -> np.ndarray:
        return ~np.isnan(self.params)

    @property
    def _absorbed(self) -> dict:
        return getattr(self, "absorbed_", None) or {}

    @property
    def _implicit_intercept(self) -> bool:
        design = getattr(self, "design_", None)
        return bool(design is not None and design.implicit_intercept)

    @property
    def nobs(self) -> float:
        return float(self.state_.n_rows - self._absorbed.get("singletons", 0))

    @property
    def k_constant(self) -> int:
        return 1 if self.fit_intercept or self._implicit_intercept else 0

    @property
    def df_model(self) -> float:
        return float(self.solution_.rank - self.k_constant)

    @property
    def df_resid(self) -> float:
        return float(self.nobs - self.solution_.rank - self._absorbed.get("n_groups", 0))

    @property
    def _tss(self) -> float:
        """TSS: centered with an intercept (explicit or implicit), else uncentered."""
        if self._implicit_intercept:
            return float(self.state_.comoment[-1, -1])
        return float(self.solution_.tss)

    @property
    def ssr(self) -> float:
        return float(self.solution_.ssr)

    @property
    def centered_tss(self) -> float:
        return self._tss if self.k_constant else float("nan")

    @property
    def ess(self) -> float:
        """Explained sum of squares: TSS − SSR (uncentered TSS without an intercept)."""
        return float(self._tss - self.solution_.ssr)

    @property
    def scale(self) -> float:
        """Residual variance ``SSR / df_resid``."""
        return self.ssr / self.df_resid if self.df_resid > 0 else float("nan")

    @property
    def resid_std(self) -> float:
        """Residual standard error ``√scale``."""
        return math.sqrt(self.scale)

    @property
    def rsquared(self) -> float:
        tss = self._tss
        return 1.0 - self.ssr / tss if tss > 0 else float("nan")

    @property
    def rsquared_adj(self) -> float:
        return 1.0 - (self.nobs - self.k_constant) / self.df_resid * (1.0 - self.rsquared)

    # --------------------------------------------------------------- covariance
    @property
    def cov_type(self) -> str:
        return self.robust_["cov_type"] if self.robust_ else "nonrobust"

    @property
    def use_t(self) -> bool:
        """Student's t for p values and intervals (statsmodels' default: only without robust
        covariance; pyfixest's with an absorbed fixed effect)."""
        return self.cov_type == "nonrobust" or bool(self._absorbed)

    @cached_property
    def normalized_cov_params(self) -> np.ndarray:
        """``(XᵀWX)⁻¹`` over all parameters (NaN rows/columns for aliased ones)."""
        sol = self.solution_
        p = len(self.coef_)
        kept_x = ~np.isnan(np.asarray(self.coef_, dtype=float))
        intercept = int(self.fit_intercept)  # an implicit intercept has no parameter of its own
        size = p + intercept
        full = np.full((size, size), np.nan)
        if sol.xtx_inv is None:  # a penalized fit: no sampling covariance is claimed
            return full
        inv = np.asarray(sol.xtx_inv, dtype=float)
        idx = np.flatnonzero(kept_x) + intercept
        full[np.ix_(idx, idx)] = inv
        if self.fit_intercept:
            mean = (self.state_.mean + self.state_.mean_lo)[:p][kept_x]
            cross = -(mean @ inv)
            full[0, 0] = 1.0 / self.state_.weight_sum + mean @ inv @ mean
            full[0, idx] = cross
            full[idx, 0] = cross
        return full

    def cov_params(self) -> np.ndarray:
        """Covariance matrix of ``params`` (the robust one when ``cov_type`` is not nonrobust)."""
        if self.robust_:
            return np.array(self.robust_["cov"], dtype=float)
        return self.scale * self.normalized_cov_params

    @cached_property
    def bse(self) -> np.ndarray:
        """Standard errors of ``params``."""
        return np.sqrt(np.diagonal(self.cov_params()))

    @cached_property
    def tvalues(self) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):  # a perfect fit has bse 0: t is ±inf
            return self.params / self.bse

    @property
    def _df_inference(self) -> float:
        if self.robust_ and self.robust_.get("n_groups"):
            return float(self.robust_["n_groups"] - 1)
        return self.df_resid

    @cached_property
    def pvalues(self) -> np.ndarray:
        """Two-sided p values of the t (or, for robust covariance, z) statistics."""
        # scipy.stats is imported where it is used: the import costs ~0.5 s, a third of
        # the command line's start-up, and only p values and intervals need it.
        from scipy import stats

        t = np.abs(self.tvalues)
        if self.use_t:
            return 2.0 * stats.t.sf(t, self._df_inference)
        return 2.0 * stats.norm.sf(t)

    def conf_int(self, alpha: float = 0.05) -> np.ndarray:
        """``(k, 2)`` array of ``params ∓ q·bse`` with ``q`` the ``1 − alpha/2`` quantile."""
        if not 0.0 < alpha < 1.0:
            raise InputError(f"alpha must be between 0 and 1; got {alpha}.")
        from scipy import stats

        q = (
            stats.t.ppf(1 - alpha / 2, self._df_inference)
            if self.use_t
            else stats.norm.ppf(1 - alpha / 2)
        )
        return np.column_stack([self.params - q * self.bse, self.params + q * self.bse])

    # --------------------------------------------------------------- F and likelihood
    @cached_property
    def fvalue(self) -> float:
        """F statistic of the hypothesis that every slope is zero (none for a penalized fit)."""
        if self.df_model <= 0 or self.solution_.penalty is not None:
            return float("nan")
        if not self.robust_:
            if self.scale == 0:
                return float("inf")
            return (self.ess / self.df_model) / self.scale
        slopes = (
            np.flatnonzero(self._kept)[1:] if self.fit_intercept else np.flatnonzero(self._kept)
        )
        beta = self.params[slopes]
        cov = self.cov_params()[np.ix_(slopes, slopes)]
        return float(beta @ np.linalg.solve(cov, beta) / len(slopes))

    @property
    def f_pvalue(self) -> float:
        from scipy import stats

        return float(stats.f.sf(self.fvalue, self.df_model, self._df_inference))

    @property
    def llf(self) -> float:
        """Gaussian log-likelihood at the estimates (WLS: plus ½ Σ log w)."""
        half_n = self.nobs / 2.0
        if self.ssr <= 0:
            return float("inf")
        return (
            -half_n * (1.0 + math.log(2 * math.pi * self.ssr / self.nobs))
            + 0.5 * self.log_weight_sum_
        )

    @property
    def aic(self) -> float:
        return -2.0 * self.llf + 2.0 * (self.df_model + self.k_constant)

    @property
    def bic(self) -> float:
        return -2.0 * self.llf + math.log(self.nobs) * (self.df_model + self.k_constant)

    @property
    def condition_number(self) -> float:
        """statsmodels' condition number: √(λmax/λmin) of XᵀWX over the raw design
        (intercept column included). Large offsets make it large even when the
        centered problem is benign; see ``scaled_condition_number_`` for the scaled one."""
        p = len(self.coef_)
        kept_x = ~np.isnan(np.asarray(self.coef_, dtype=float))
        raw = self.state_.raw_moments()[:p, :p][np.ix_(kept_x, kept_x)]
        if self.fit_intercept:
            n = self.state_.weight_sum
            mean = (self.state_.mean + self.state_.mean_lo)[:p][kept_x]
            top = np.r_[n, n * mean]
            raw = np.block([[top[None, :]], [np.column_stack([n * mean, raw])]])
        eig = np.linalg.eigvalsh(raw)
        return float(math.sqrt(eig[-1] / eig[0])) if eig[0] > 0 else float("inf")

    def inference_dict(self) -> dict:
        """Every statistic, JSON-ready (NaN and ±inf become null)."""
        ci = self.conf_int()
        return {
            "cov_type": self.cov_type,
            "params": _clean(self.params),
            "bse": _clean(self.bse),
            "tvalues": _clean(self.tvalues),
            "pvalues": _clean(self.pvalues),
            "conf_int_95": [_clean(r) for r in ci],
            "nobs": self.nobs,
            "df_model": self.df_model,
            "df_resid": self.df_resid,
            "rsquared": _num(self.rsquared),
            "rsquared_adj": _num(self.rsquared_adj),
            "fvalue": _num(self.fvalue),
            "f_pvalue": _num(self.f_pvalue),
            "llf": _num(self.llf),
            "aic": _num(self.aic),
            "bic": _num(self.bic),
            "ssr": self.ssr,
            "scale": _num(self.scale),
            "resid_std": _num(math.sqrt(self.scale)) if self.scale == self.scale else None,
            "condition_number": _num(self.condition_number),
        }


def _num(value) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def _clean(values) -> list:
    return [_num(v) for v in np.asarray(values, dtype=float)]
