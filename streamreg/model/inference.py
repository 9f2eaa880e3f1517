r"""Statistical inference for a fitted model, named as statsmodels names it.

Everything here comes from the solved state: no pass over the data, except for
robust covariances (:mod:`streamreg.model.robust`), which are computed in a second
streaming pass and handed in as a matrix. With ``k`` kept parameters
(intercept included), ``n`` rows and weights ``w``:

* ``scale = SSR / (n − k)``; ``cov_params() = scale · (XᵀWX)⁻¹``, where the
  inverse is assembled from the centered solve: ``V_ββ = M_xx⁻¹``,
  ``V_bb = 1/Σw + μᵀM_xx⁻¹μ``, ``V_bβ = −μᵀM_xx⁻¹``;
* ``tvalues = params / bse``; ``pvalues`` two-sided from Student's t with
  ``n − k`` degrees of freedom (``G − 1`` for ``G`` clusters) when ``use_t``, else from the
  normal distribution (statsmodels' default: t only without a robust covariance);
* ``rsquared = 1 − SSR/TSS`` (uncentered TSS without an intercept),
  ``rsquared_adj = 1 − (n − k₀)/(n − k)·(1 − R²)`` with ``k₀`` = 1 if there is
  an intercept;
* ``fvalue = (ESS/df_model)/scale`` (under a robust covariance the Wald F test of the
  slopes, with a generalized inverse when the covariance is singular — fewer clusters than
  parameters — as statsmodels does);
* ``llf = −n/2·(1 + log(2π·SSR/n)) + ½ Σ log w``, ``aic = −2 llf + 2k``,
  ``bic = −2 llf + k log n``.

* ``condition_number``: statsmodels' ``√(λmax/λmin)`` of the raw ``XᵀWX``, taken from the
  centered state and the solve's inverse (:mod:`streamreg.model.conditioning`).

``params``, ``bse``, ``tvalues`` and ``pvalues`` are pandas Series indexed by the term names
(``Intercept`` first), ``conf_int()`` a DataFrame, as statsmodels gives them for pandas data.
Aliased (collinear) columns have NaN in every per-parameter statistic; with no residual
degrees of freedom (``n = k``) the fit is exact and every statistic that divides by
``n − k`` is NaN (undefined), not an error. With the exact solver the intercept's row of
``(XᵀWX)⁻¹`` and R² are exact rationals rounded once (:mod:`streamreg.solvers.exact.extras`).

A design without an intercept whose categories span the constant (``y ~ C(g) - 1``)
has an *implicit* intercept: as statsmodels, R², F and the model's degrees of freedom
are then about the mean (``k_constant = 1``). A model with an absorbed fixed effect
(``absorbed_``: ``G`` groups, singleton groups dropped as pyfixest does) has
``n = N − singletons`` rows, ``df_resid = n − k − G``, no intercept parameter, R² the
*within* R², and Student's t for its p values and intervals also under clustered
errors (with ``H − 1`` degrees of freedom for ``H`` clusters, as pyfixest).
"""

from __future__ import annotations

import math
from functools import cached_property

import numpy as np

from ..distributions import f_sf, norm_ppf, norm_sf, t_ppf, t_sf
from ..errors import InputError
from ..solvers.exact import ExactState, exact_statistics
from .conditioning import state_condition_number
from .restrictions import wald_test

COV_TYPES = ("nonrobust", "HC0", "HC1", "HC2", "HC3", "cluster", "HAC")


class InferenceMixin:
    """Lazy, documented statistics; the host class provides ``solution_``, ``state_``,
    ``fit_intercept``, ``log_weight_sum_``, ``robust_`` (a dict or None) and ``_use_t``."""

    def _labelled(self, values):
        import pandas as pd  # pandas is imported on first use (start-up time of the CLI)

        return pd.Series(np.array(values, dtype=float), index=self.param_names)

    # --------------------------------------------------------------- parameters
    @property
    def param_names(self) -> list[str]:
        """``Intercept`` (when fitted) then the features, in order."""
        return (["Intercept"] if self.fit_intercept else []) + [
            str(n) for n in self.feature_names_in_
        ]

    @cached_property
    def _params(self) -> np.ndarray:
        coef = np.asarray(self.coef_, dtype=float)
        return np.r_[self.intercept_, coef] if self.fit_intercept else coef.copy()

    @property
    def params(self):
        """Intercept first (when fitted), then the coefficients; NaN for aliased columns
        (a Series indexed by term name)."""
        return self._labelled(self._params)

    @cached_property
    def _kept(self) -> np.ndarray:
        return ~np.isnan(self._params)

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
        exact = self._exact
        if exact is not None and exact.get("rsquared") is not None and not self._implicit_intercept:
            return float(exact["rsquared"])
        tss = self._tss
        return 1.0 - self.ssr / tss if tss > 0 else float("nan")

    @property
    def rsquared_adj(self) -> float:
        if self.df_resid <= 0:
            return float("nan")
        return 1.0 - (self.nobs - self.k_constant) / self.df_resid * (1.0 - self.rsquared)

    @cached_property
    def _exact(self) -> dict | None:
        """The exact solver's exact R² and intercept row (recomputed from a loaded state)."""
        if self.solution_.exact is not None:
            return self.solution_.exact
        if self.solution_.solver != "exact" or not isinstance(self.state_, ExactState):
            return None
        if self.solution_.ssr != self.solution_.ssr:  # pragma: no cover - a NaN SSR
            return None
        return exact_statistics(self.state_, self.coef_, fit_intercept=self.fit_intercept)

    # --------------------------------------------------------------- covariance
    @property
    def cov_type(self) -> str:
        return self.robust_["cov_type"] if self.robust_ else "nonrobust"

    @property
    def use_t(self) -> bool:
        """Student's t for p values, intervals and tests: as the fit asked (``use_t=``), else
        statsmodels' default — only without a robust covariance — or pyfixest's with an
        absorbed fixed effect (always)."""
        given = getattr(self, "_use_t", None)
        if given is None:
            return self.cov_type == "nonrobust" or bool(self._absorbed)
        return bool(given)

    def require_sampling_covariance(self, what: str) -> None:
        """Refuse ``what`` (a test or an interval) for a penalized fit, in one sentence: its
        estimates are shrunk, so the sampling covariance of least squares does not describe
        them and a t statistic or interval built on it would be wrong."""
        penalty = self.solution_.penalty
        if penalty is not None:
            raise InputError(
                f"cannot compute {what} for a penalized fit (alpha={penalty['alpha']:.6g}): its "
                "shrunk estimates are biased and have no least-squares sampling covariance, so "
                "t statistics and intervals around them would be wrong."
            )

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
            exact = self._exact
            if exact is not None and exact.get("intercept_variance") is not None:
                corner, cross = exact["intercept_variance"], exact["intercept_cross"]
            else:
                mean = (self.state_.mean + self.state_.mean_lo)[:p][kept_x]
                cross = -(mean @ inv)
                corner = 1.0 / self.state_.weight_sum + mean @ inv @ mean
            full[0, 0] = corner
            full[0, idx] = cross
            full[idx, 0] = cross
        return full

    def cov_params(self) -> np.ndarray:
        """Covariance matrix of ``params`` (the robust one when ``cov_type`` is not nonrobust)."""
        if self.robust_:
            return np.array(self.robust_["cov"], dtype=float)
        return self.scale * self.normalized_cov_params

    @cached_property
    def _bse(self) -> np.ndarray:
        with np.errstate(invalid="ignore"):
            return np.sqrt(np.diagonal(self.cov_params()))

    @property
    def bse(self):
        """Standard errors of ``params`` (a Series)."""
        return self._labelled(self._bse)

    @cached_property
    def _tvalues(self) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):  # a perfect fit has bse 0: t is ±inf
            return self._params / self._bse

    @property
    def tvalues(self):
        """``params / bse`` (a Series)."""
        return self._labelled(self._tvalues)

    @property
    def _df_inference(self) -> float:
        """statsmodels' ``df_resid_inference``: ``G − 1`` for ``G`` clusters, else df_resid."""
        if self.robust_ and self.robust_.get("n_groups"):
            return float(self.robust_["n_groups"] - 1)
        return self.df_resid

    @property
    def df_resid_inference(self) -> float:
        return self._df_inference

    def _quantile(self, alpha: float) -> float:
        if not 0.0 < alpha < 1.0:
            raise InputError(f"alpha must be between 0 and 1; got {alpha}.")
        if not self.use_t:
            return float(norm_ppf(1 - alpha / 2))
        if self._df_inference <= 0:
            return float("nan")
        return float(t_ppf(1 - alpha / 2, self._df_inference))

    @cached_property
    def _pvalues(self) -> np.ndarray:
        t = np.abs(self._tvalues)
        if not self.use_t:
            return 2.0 * norm_sf(t)
        if self._df_inference <= 0:
            return np.full_like(t, np.nan)
        return 2.0 * t_sf(t, self._df_inference)

    @property
    def pvalues(self):
        """Two-sided p values of the t (or, without ``use_t``, z) statistics (a Series)."""
        return self._labelled(self._pvalues)

    def _conf_int(self, alpha: float = 0.05) -> np.ndarray:
        q = self._quantile(alpha)
        return np.column_stack([self._params - q * self._bse, self._params + q * self._bse])

    def conf_int(self, alpha: float = 0.05):
        """``params ∓ q·bse`` with ``q`` the ``1 − alpha/2`` quantile: a DataFrame with columns
        0 and 1 (lower, upper), indexed by term name, as statsmodels returns it."""
        import pandas as pd

        return pd.DataFrame(self._conf_int(alpha), index=self.param_names)

    # --------------------------------------------------------------- F and likelihood
    @cached_property
    def fvalue(self) -> float:
        """F statistic of the hypothesis that every slope is zero (none for a penalized fit)."""
        if self.df_model <= 0 or self.solution_.penalty is not None:
            return float("nan")
        if not self.robust_:
            if self.df_resid <= 0:
                return float("nan")
            if self.scale == 0:
                return float("inf")
            return (self.ess / self.df_model) / self.scale
        test = self._robust_f_test
        return float("nan") if test is None else float(np.squeeze(test.fvalue))

    @cached_property
    def _robust_f_test(self):
        """statsmodels' ``f_test`` of the kept slopes under the robust covariance."""
        # An implicit intercept (y ~ C(g) - 1) has no parameter of its own to leave out.
        slopes = np.flatnonzero(self._kept)[int(self.fit_intercept) :]
        cov = self.cov_params()
        if not np.isfinite(cov[np.ix_(self._kept, self._kept)]).all():
            return None
        restriction = np.eye(len(self._params))[slopes]
        return wald_test(self._params, cov, self.param_names, self._df_inference, True, restriction)

    @property
    def f_pvalue(self) -> float:
        if self.robust_:
            test = self._robust_f_test
            return float("nan") if test is None else float(np.squeeze(test.pvalue))
        if self.df_resid <= 0:
            return float("nan")
        return float(f_sf(self.fvalue, self.df_model, self._df_inference))

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

    @cached_property
    def condition_number(self) -> float:
        """statsmodels' condition number: √(λmax/λmin) of XᵀWX over the raw design
        (intercept column included), as ``√(λmax(G)·λmax(G⁻¹))`` from the centered state and
        the solve's inverse, so it does not square the condition (:mod:`.conditioning`).
        Large offsets make it large even when the centered problem is benign; see
        ``scaled_condition_number_`` for the scaled one. ∞ for a rank-deficient design."""
        kept = int((~np.isnan(np.asarray(self.coef_, dtype=float))).sum())
        if self.solution_.rank < kept + self.k_constant:  # a minimum-norm fit: singular
            return float("inf")
        inverse = self.solution_.xtx_inv
        if inverse is not None and not np.isfinite(inverse).all():
            inverse = None  # a penalized fit keeps no inverse: the condition needs one of M
        return state_condition_number(
            self.state_, self.coef_, fit_intercept=self.fit_intercept, xtx_inv=inverse
        )

    def inference_dict(self) -> dict:
        """Every statistic, JSON-ready (NaN and ±inf become null)."""
        ci = self._conf_int()
        return {
            "cov_type": self.cov_type,
            "params": _clean(self._params),
            "bse": _clean(self._bse),
            "tvalues": _clean(self._tvalues),
            "pvalues": _clean(self._pvalues),
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
            "resid_std": _num(math.sqrt(self.scale)) if self.scale >= 0 else None,
            "condition_number": _num(self.condition_number),
        }


def _num(value) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def _clean(values) -> list:
    return [_num(v) for v in np.asarray(values, dtype=float)]
