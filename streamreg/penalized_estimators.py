"""scikit-learn estimators for penalized least squares: ``StreamingElasticNet`` and
``StreamingElasticNetCV``.

They take scikit-learn's parameter names and meanings (``ElasticNet(alpha, l1_ratio)``,
``ElasticNetCV(l1_ratio, eps, alphas, cv)``, ``sample_weight``) and hand the data to the
streaming engine: :func:`streamreg.fit` with ``alpha=`` and :func:`streamreg.cv`. They
pass ``check_estimator`` (``tests/test_penalized_estimators.py``). Differences, on purpose:

* ``tol`` bounds the duality gap relative to the target's mean square (``gap ≤ tol·q``;
  default 1e-10, so the answer is the optimum to about 10 digits, not scikit-learn's
  1e-4), and ``max_iter`` counts sweeps per alpha;
* ``standardize=True`` penalizes the standardized coefficients (glmnet's default);
* ``StreamingElasticNetCV(cv=k)`` uses scikit-learn's ``KFold(k)`` folds on in-memory data
  (so its ``mse_path_`` is ``ElasticNetCV``'s); any splitter whose test sets partition
  the rows works too (``KFold(shuffle=True)``, ``GroupKFold`` through
  ``fit(..., groups=)``, ``PredefinedSplit``). Dask inputs get the engine's hashed
  folds instead (a hash of partition and row). ``select="1se"`` refits at glmnet's
  one-standard-error alpha;
* the fitted ``model_`` (a :class:`~streamreg.model.LinearModel`) saves, loads and
  summarizes; it has no standard errors (a penalized estimate has none here).

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> X = rng.normal(size=(200, 3)); y = X @ [1.0, 0.0, -2.0] + 0.1 * rng.normal(size=200)
>>> StreamingElasticNet(alpha=0.1, l1_ratio=1.0).fit(X, y).coef_.round(3).tolist()
[0.903, 0.0, -1.898]
>>> cv = StreamingElasticNetCV(l1_ratio=1.0, cv=4, alphas=20).fit(X, y)
>>> cv.mse_path_.shape, bool(cv.alpha_ > 0)
((20, 4), True)
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.model_selection import check_cv
from sklearn.utils.validation import (
    _check_sample_weight,
    check_is_fitted,
    validate_data,
)

from . import fitting
from .cv import cv as cross_validate
from .engine.dask_runner import is_dask_collection
from .errors import InputError
from .estimator import _engine_names, _fresh, _string_columns
from .model.linear_model import LinearModel

FOLD_COLUMN = "cv_fold"


class _Penalized(RegressorMixin, BaseEstimator):
    """What both estimators share: validation into an Arrow table, predict, tags."""

    def _table(self, X, y, sample_weight, *, extra=None):
        """``(table, features, target, weight, extra name)`` of validated in-memory data."""
        y_name = getattr(y, "name", None)
        X, y = validate_data(
            self, X, y, reset=True, dtype=np.float64, y_numeric=True, multi_output=False
        )
        features = _engine_names(getattr(self, "feature_names_in_", None), X.shape[1])
        target = _fresh(y_name if isinstance(y_name, str) and y_name else "y", features)
        columns = {name: X[:, j] for j, name in enumerate(features)}
        columns[target] = y
        weight = None
        if sample_weight is not None:
            sample_weight = _check_sample_weight(
                sample_weight, X, dtype=np.float64, ensure_non_negative=True
            )
            weight = _fresh("sample_weight", (*features, target))
            columns[weight] = sample_weight
        name = None
        if extra is not None:
            name = _fresh(FOLD_COLUMN, columns)
            columns[name] = extra(X, y)
        return pa.table(columns), list(features), target, weight, name

    def _dask_inputs(self, X, y, sample_weight) -> dict:
        """Dask collections go to the engine as they are (one state per partition)."""
        columns = getattr(X, "columns", None)
        if columns is None:
            inputs = {"source": X, "y": y, "weight": sample_weight}
        else:
            features = [str(c) for c in columns]
            y_name = getattr(y, "name", None)
            target = _fresh(y_name if isinstance(y_name, str) and y_name else "y", features)
            extra = {target: y}
            weight = None
            if sample_weight is not None:
                weight = _fresh("sample_weight", (*features, target))
                extra[weight] = sample_weight
            frame = X.rename(columns=dict(zip(columns, features))).assign(**extra)
            inputs = {"source": frame, "target": target, "features": features, "weight": weight}
        self.n_features_in_ = int(X.shape[1])
        names = _string_columns(X)
        if names is not None:
            self.feature_names_in_ = names
        return inputs

    def _set_model(self, model: LinearModel) -> None:
        self.model_ = model
        self.coef_ = np.asarray(model.coef_, dtype=np.float64).copy()
        self.intercept_ = float(model.intercept_)
        # Sweeps of coordinate descent, or 1 for a direct solve (ridge's Cholesky, or the Newton
        # step on a support the warm start already had): scikit-learn wants n_iter_ ≥ 1.
        self.n_iter_ = max(1, int(model.penalty_["n_iter"]))
        self.dual_gap_ = float(model.penalty_["dual_gap"])

    def _forget(self) -> None:
        for name in ("model_", "coef_", "intercept_", "n_features_in_", "feature_names_in_"):
            self.__dict__.pop(name, None)

    def predict(self, X):
        """``X @ coef_ + intercept_`` (NumPy in, NumPy out; Dask in, lazy Dask out)."""
        check_is_fitted(self)
        if is_dask_collection(X):
            return self.model_.predict(X)
        X = validate_data(self, X, reset=False, dtype=np.float64)
        return self.model_.predict(X)

    def __sklearn_is_fitted__(self):
        return hasattr(self, "model_")

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.single_output = True
        tags.target_tags.multi_output = False
        return tags

    def _common(self) -> dict:
        return dict(
            fit_intercept=bool(self.fit_intercept),
            standardize=self.standardize,
            tol=self.tol,
            max_iter=self.max_iter,
            solver=self.solver,
            batch_size=self.batch_size,
            nulls="error",
        )


class StreamingElasticNet(_Penalized):
    """Elastic net (ridge at ``l1_ratio=0``, lasso at 1) over the streaming engine.

    Minimizes scikit-learn's ``ElasticNet`` objective
    ``1/(2Σw)·Σw(y − Xβ − b)² + α·ρ·‖β‖₁ + ½·α·(1 − ρ)·‖β‖²`` (``ρ = l1_ratio``) from one
    pass's mergeable state; see :mod:`streamreg.solvers.penalized`.

    Parameters
    ----------
    alpha : float, default=1.0
    l1_ratio : float, default=0.5
    fit_intercept : bool, default=True
    standardize : bool, default=False
        Penalize the standardized coefficients; ``coef_`` stays in the original units.
    tol : float, default=1e-10
        Duality-gap tolerance relative to the target's mean square.
    max_iter : int, default=100000
        Coordinate-descent sweeps, at most.
    solver : {"auto", "cholesky", "qr", "exact"}, default="auto"
        The state the pass accumulates (``exact``: bit-identical however split).
    batch_size : int or None, default=None

    Attributes
    ----------
    coef_, intercept_, n_features_in_, feature_names_in_ (DataFrame input), n_iter_,
    dual_gap_, model_ (the :class:`~streamreg.model.LinearModel`: ``save``, ``summary``).
    """

    def __init__(
        self,
        alpha=1.0,
        *,
        l1_ratio=0.5,
        fit_intercept=True,
        standardize=False,
        tol=1e-10,
        max_iter=100_000,
        solver="auto",
        batch_size=None,
    ):
        self.alpha = alpha
        self.l1_ratio = l1_ratio
        self.fit_intercept = fit_intercept
        self.standardize = standardize
        self.tol = tol
        self.max_iter = max_iter
        self.solver = solver
        self.batch_size = batch_size

    def fit(self, X, y, sample_weight=None):
        """Fit on ``X, y`` (numpy, pandas or Dask collections) in one streaming pass."""
        self._forget()
        options = dict(alpha=self.alpha, l1_ratio=self.l1_ratio, **self._common())
        if any(is_dask_collection(a) for a in (X, y, sample_weight)):
            inputs = self._dask_inputs(X, y, sample_weight)
            model = fitting.fit(inputs.pop("source"), **inputs, **options)
        else:
            table, features, target, weight, _ = self._table(X, y, sample_weight)
            model = fitting.fit(table, target=target, features=features, weight=weight, **options)
        self._set_model(model)
        return self


class StreamingElasticNetCV(_Penalized):
    """Cross-validated elastic net: every fold's path from one pass's fold states.

    Parameters
    ----------
    l1_ratio : float or list of floats, default=0.5
    eps : float, default=1e-3
    alphas : int or array-like, default=100
        How many alphas (a grid from the data) or the grid itself.
    cv : int or cross-validation splitter, default=5
        ``k``: scikit-learn's ``KFold(k)``. A splitter must put every row in exactly one
        test set. Dask inputs: ``k`` hashed folds.
    select : {"min", "1se"}, default="min"
    fit_intercept, standardize, tol, max_iter, solver, batch_size
        As in :class:`StreamingElasticNet`.

    Attributes
    ----------
    alpha_, l1_ratio_, alphas_, mse_path_ (as ``ElasticNetCV``), coef_path_, mse_mean_,
    mse_se_, alpha_1se_, coef_, intercept_, n_iter_, dual_gap_, model_, cv_result_
    (the :class:`~streamreg.model.penalty.CVResult`).
    """

    def __init__(
        self,
        *,
        l1_ratio=0.5,
        eps=1e-3,
        alphas=100,
        cv=5,
        select="min",
        fit_intercept=True,
        standardize=False,
        tol=1e-10,
        max_iter=100_000,
        solver="auto",
        batch_size=None,
    ):
        self.l1_ratio = l1_ratio
        self.eps = eps
        self.alphas = alphas
        self.cv = cv
        self.select = select
        self.fit_intercept = fit_intercept
        self.standardize = standardize
        self.tol = tol
        self.max_iter = max_iter
        self.solver = solver
        self.batch_size = batch_size

    def fit(self, X, y, sample_weight=None, groups=None):
        """Cross-validate the path on ``X, y`` in one pass and refit at the chosen alpha."""
        self._forget()
        options = dict(l1_ratio=self.l1_ratio, alphas=self.alphas, eps=self.eps, select=self.select)
        options.update(self._common())
        if any(is_dask_collection(a) for a in (X, y, sample_weight)):
            if not isinstance(self.cv, (int, np.integer)) or isinstance(self.cv, bool):
                raise InputError("with Dask inputs, cv must be a number of (hashed) folds.")
            inputs = self._dask_inputs(X, y, sample_weight)
            result = cross_validate(inputs.pop("source"), **inputs, folds=self.cv, **options)
        else:

            def labels(x, target):
                return _test_fold_labels(self.cv, x, target, groups)

            table, features, target, weight, fold = self._table(X, y, sample_weight, extra=labels)
            n_folds = len(np.unique(table.column(fold).to_numpy()))
            result = cross_validate(
                table,
                target=target,
                features=features,
                weight=weight,
                fold_column=fold,
                folds=n_folds,
                **options,
            )
        self.cv_result_ = result
        self.alpha_ = result.alpha_
        self.l1_ratio_ = result.l1_ratio_
        self.alphas_ = result.alphas_
        self.mse_path_ = result.mse_path_
        self.coef_path_ = result.coef_path_
        self.mse_mean_ = result.mse_mean_
        self.mse_se_ = result.mse_se_
        self.alpha_1se_ = result.alpha_1se_
        self._set_model(result.best_model_)
        return self

    def _forget(self) -> None:
        super()._forget()
        self.__dict__.pop("cv_result_", None)


def _test_fold_labels(cv, X, y, groups) -> np.ndarray:
    """Each row's test fold under scikit-learn's splitter ``cv`` (an int: ``KFold(cv)``)."""
    n = X.shape[0]
    if isinstance(cv, (int, np.integer)) and not isinstance(cv, bool):
        if cv < 2:
            raise InputError(f"cv must be at least 2 folds; got cv={cv}.")
        if n < cv:
            raise InputError(
                f"got n_samples = {n} for cv={cv} folds; cross-validation needs at least as "
                "many rows as folds."
            )
    splitter = check_cv(cv, y, classifier=False)
    labels = np.full(n, -1, dtype=np.int64)
    for k, (_, test) in enumerate(splitter.split(X, y, groups)):
        if np.any(labels[test] >= 0):
            raise InputError(
                "the cv splitter puts a row in two test sets; streamreg needs folds that "
                "partition the rows (KFold, GroupKFold, PredefinedSplit, …)."
            )
        labels[test] = k
    if np.any(labels < 0):
        raise InputError(
            f"the cv splitter leaves {int(np.sum(labels < 0))} rows in no test set; streamreg "
            "needs folds that partition the rows."
        )
    return labels
