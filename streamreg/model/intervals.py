r"""Prediction standard errors and intervals, batch by batch, as statsmodels' ``get_prediction``.

For a new row ``x`` the fitted mean is ``ŷ = μ_y + (x − μ_x)ᵀβ`` (with an
intercept; ``xᵀβ`` without) and, with ``x̃ = [1, x − μ_x]`` and ``V_c`` the
covariance of (the fitted value at the mean, the slopes),

    var_pred_mean = x̃ᵀ V_c x̃ = ‖Lᵀx̃‖²        (V_c = L Lᵀ)
    var_resid     = scale / w                 (scale alone when no weight is given)
    mean_ci = ŷ ∓ q·√var_pred_mean,   obs_ci = ŷ ∓ q·√(var_pred_mean + var_resid)

with ``q`` the ``1 − α/2`` quantile of Student's t with ``df_resid`` degrees of
freedom when ``use_t``, else of the normal (statsmodels'
``regression._prediction.get_prediction``: ``df`` is ``df_resid`` even for
clustered covariances). Without robust errors ``V_c = scale·diag(1/Σw, M_xx⁻¹)``
is block diagonal. The quadratic form is a sum of squares of ``Lᵀx̃``, so it
does not cancel; statsmodels' ``x Σ xᵀ`` over the raw design does (measured on
Longley against exact rational arithmetic: statsmodels' ``mean_se`` is off by 1.6e-9,
ours by 5e-14 from the cholesky solver and 5e-15 from the exact one).

:class:`IntervalPredictor` is built once from a fit and then applied to any number of
batches (memory: one batch). The mean is the fast column loop of
:class:`~streamreg.model.predictor.Predictor` (so ``predict --interval`` predicts exactly as
``predict``), and :meth:`IntervalPredictor.columns` takes the feature columns as that loop
does, one vector per kept feature, so a Parquet pass hands it each batch's columns as they
come out of Arrow; the variance is one product of the centered columns with the factor.
:meth:`PredictionResults.summary_frame` has statsmodels' columns ``mean, mean_se,
mean_ci_lower, mean_ci_upper, obs_ci_lower, obs_ci_upper``.

>>> import numpy as np
>>> p = IntervalPredictor(coef=np.array([2.0]), mean=np.array([1.0, 3.0]),
...               cov_centered=np.diag([0.25, 0.04]), scale=1.0, df_resid=10, use_t=True)
>>> frame = p.predict(np.array([[1.0], [2.0]])).summary_frame()
>>> frame["mean"].tolist(), frame["mean_se"].round(12).tolist()
([3.0, 5.0], [0.5, 0.538516480713])
"""

from __future__ import annotations

import numpy as np

from ..distributions import norm_ppf, t_ppf
from ..errors import InputError
from .predictor import Predictor

SUMMARY_COLUMNS = (
    "mean",
    "mean_se",
    "mean_ci_lower",
    "mean_ci_upper",
    "obs_ci_lower",
    "obs_ci_upper",
)


class PredictionResults:
    """Predicted means and their variances, named as ``statsmodels`` ``PredictionResults``."""

    def __init__(
        self, predicted_mean, var_pred_mean, var_resid, *, df: float, use_t: bool, row_labels=None
    ):
        self.predicted = np.asarray(predicted_mean, dtype=np.float64)
        self.var_pred = np.asarray(var_pred_mean, dtype=np.float64)
        self.var_resid = var_resid
        self.df = df
        self.distribution = "t" if use_t else "norm"
        self.row_labels = row_labels

    @property
    def predicted_mean(self) -> np.ndarray:
        return self.predicted

    @property
    def var_pred_mean(self) -> np.ndarray:
        return self.var_pred

    @property
    def se_mean(self) -> np.ndarray:
        return np.sqrt(self.var_pred)

    se = se_mean

    @property
    def se_obs(self) -> np.ndarray:
        return np.sqrt(self.var_pred + self.var_resid)

    def _quantile(self, alpha: float) -> float:
        if not 0.0 < alpha < 1.0:
            raise InputError(f"alpha must be between 0 and 1; got {alpha}.")
        if self.distribution == "t":
            return float(t_ppf(1 - alpha / 2.0, self.df))
        return float(norm_ppf(1 - alpha / 2.0))

    def conf_int(self, obs: bool = False, alpha: float = 0.05) -> np.ndarray:
        """``(rows, 2)``: the interval for the mean, or for a new observation with ``obs``."""
        half = self._quantile(alpha) * (self.se_obs if obs else self.se_mean)
        return np.column_stack((self.predicted - half, self.predicted + half))

    def summary_frame(self, alpha: float = 0.05):
        import pandas as pd

        mean_ci, obs_ci = self.conf_int(alpha=alpha), self.conf_int(obs=True, alpha=alpha)
        columns = (
            self.predicted,
            self.se_mean,
            mean_ci[:, 0],
            mean_ci[:, 1],
            obs_ci[:, 0],
            obs_ci[:, 1],
        )
        return pd.DataFrame(
            dict(zip(SUMMARY_COLUMNS, columns)),
            index=self.row_labels,
            columns=list(SUMMARY_COLUMNS),
        )


class IntervalPredictor:
    """Predictions with standard errors from a fit; see the module docstring.

    ``coef`` are the kept coefficients (m), ``mean``/``mean_lo`` the m + 1 means of the
    kept features and the target (double-double; None without an intercept) and
    ``cov_centered`` the covariance in centered coordinates: (m + 1)² with an
    intercept (the fitted value at the mean first), m² without."""

    def __init__(
        self,
        *,
        coef,
        mean=None,
        mean_lo=None,
        cov_centered,
        scale: float,
        df_resid: float,
        use_t: bool,
        mean_predictor: Predictor | None = None,
    ):
        self.coef = np.asarray(coef, dtype=np.float64).reshape(-1)
        m = self.coef.shape[0]
        self.fit_intercept = mean is not None
        if self.fit_intercept:
            self.mean = np.asarray(mean, dtype=np.float64)
            self.mean_lo = (
                np.zeros(m + 1) if mean_lo is None else np.asarray(mean_lo, dtype=np.float64)
            )
        size = m + int(self.fit_intercept)
        cov = np.asarray(cov_centered, dtype=np.float64)
        if cov.shape != (size, size) or (self.fit_intercept and self.mean.shape != (m + 1,)):
            raise InputError(
                f"cov_centered must be {size}×{size} and mean hold {m + 1} entries for "
                f"{m} kept coefficients{' and an intercept' if self.fit_intercept else ''}."
            )
        self.cov_centered = cov
        self.scale, self.df_resid, self.use_t = float(scale), float(df_resid), bool(use_t)
        try:  # a factor makes the variance a sum of squares; a singular covariance has none
            self._factor = np.linalg.cholesky(cov)
        except np.linalg.LinAlgError:
            self._factor = None
        self.mean_predictor = mean_predictor or self._mean_predictor()

    def _mean_predictor(self) -> Predictor:
        """The fast prediction form of the coefficients and means given (names are positions)."""
        m = self.coef.shape[0]
        names = tuple(str(j) for j in range(m))
        if not self.fit_intercept:
            return Predictor(names, self.coef, np.zeros(m), 0.0, 0.0)
        offset = float(self.mean_lo[m]) - float(self.mean_lo[:m] @ self.coef)
        return Predictor(names, self.coef, self.mean[:m].copy(), float(self.mean[m]), offset)

    @classmethod
    def from_model(cls, model, *, cov_centered: np.ndarray | None = None) -> IntervalPredictor:
        """From a fitted :class:`~streamreg.model.LinearModel`. Without ``cov_centered`` a robust
        model's covariance is moved from parameter to centered coordinates (which costs digits
        when features have large offsets; the robust pass can hand its centered one in)."""
        kept = ~np.isnan(np.asarray(model.coef_, dtype=float))
        p = len(model.coef_)
        state = model.state_
        index = np.r_[np.flatnonzero(kept), p]
        mean = state.mean[index] if model.fit_intercept else None
        mean_lo = state.mean_lo[index] if model.fit_intercept else None
        if cov_centered is None:
            if model.robust_:
                keep = np.r_[[True] * model.fit_intercept, kept]
                cov = np.asarray(model.robust_["cov"], dtype=float)[np.ix_(keep, keep)]
                cov_centered = centered_covariance(
                    cov, None if mean is None else (mean + mean_lo)[:-1]
                )
            else:
                inverse = np.asarray(model.solution_.xtx_inv, dtype=float)
                if model.fit_intercept:
                    inverse = _block_diagonal(1.0 / state.weight_sum, inverse)
                cov_centered = model.scale * inverse
        return cls(
            coef=np.asarray(model.coef_, dtype=float)[kept],
            mean=mean,
            mean_lo=mean_lo,
            cov_centered=cov_centered,
            scale=model.scale,
            df_resid=model.df_resid,
            use_t=model.use_t,
            mean_predictor=Predictor.of(model),
        )

    def predict(self, x_kept, weights=None, row_labels=None) -> PredictionResults:
        """Predictions for a batch of the kept features (rows × m), in order; ``weights`` are
        the rows' WLS weights for the observation interval (``scale/w``)."""
        x = np.atleast_2d(np.asarray(x_kept, dtype=np.float64))
        m = self.coef.shape[0]
        if x.shape[1] != m:
            raise InputError(
                f"the batch has {x.shape[1]} feature columns; the model has {m} kept features."
            )
        columns = [x[:, j] for j in range(m)]
        return self.columns(columns, weights=weights, row_labels=row_labels, rows=x.shape[0])

    def columns(
        self, columns, weights=None, row_labels=None, mean=None, rows: int | None = None
    ) -> PredictionResults:
        """Predictions from one float64 vector per kept feature, in order (as
        :meth:`Predictor.columns <streamreg.model.predictor.Predictor.columns>` takes them);
        ``mean``: that loop's predictions of these rows when the caller has them already;
        ``rows``: the row count, needed when no feature is kept."""
        if rows is None:
            rows = len(mean) if mean is not None else len(columns[0]) if len(columns) else 0
        if mean is None:
            mean = self.mean_predictor.columns(columns, rows=rows)
        size = self.cov_centered.shape[0]
        design = np.empty((rows, size), order="F")  # column by column: contiguous writes
        start = 0
        if self.fit_intercept:
            design[:, 0] = 1.0
            start = 1
        for j, column in enumerate(columns):
            target = design[:, start + j]
            if self.fit_intercept:
                np.subtract(column, self.mean[j], out=target)
                target -= self.mean_lo[j]
            else:
                target[:] = column
        if self._factor is not None:
            projected = design @ self._factor
            var_mean = np.einsum("ij,ij->i", projected, projected)
        else:
            var_mean = np.einsum("ij,jk,ik->i", design, self.cov_centered, design)
        var_resid = self.scale
        if weights is not None:
            w = np.asarray(weights, dtype=np.float64)
            if w.shape not in ((), (rows,)):
                raise InputError(
                    f"weights must be one number or one per row ({rows}); got shape {w.shape}."
                )
            with np.errstate(divide="ignore"):
                var_resid = self.scale / w
        return PredictionResults(
            mean, var_mean, var_resid, df=self.df_resid, use_t=self.use_t, row_labels=row_labels
        )


def centered_covariance(cov_params: np.ndarray, mean_x: np.ndarray | None) -> np.ndarray:
    """Covariance of (intercept, slopes) moved to (fitted value at the mean, slopes):
    ``S V Sᵀ`` with ``S = [[1, μᵀ], [0, I]]`` (the inverse of
    :func:`streamreg.model.robust.to_parameter_coordinates`). Identity without an intercept."""
    if mean_x is None:
        return np.asarray(cov_params, dtype=float)
    m = len(mean_x)
    transform = np.eye(m + 1)
    transform[0, 1:] = mean_x
    return transform @ np.asarray(cov_params, dtype=float) @ transform.T


def _block_diagonal(corner: float, block: np.ndarray) -> np.ndarray:
    m = block.shape[0]
    out = np.zeros((m + 1, m + 1))
    out[0, 0] = corner
    out[1:, 1:] = block
    return out
