"""A scikit-learn estimator over the streaming engine: ``fit``, ``partial_fit``, ``predict``,
``score``.

:class:`StreamingLinearRegression` follows scikit-learn's conventions:
``__init__`` only stores its parameters, ``fit`` returns ``self``, learned
attributes end in ``_``, and it passes ``check_estimator`` (the checks it is
excused from are listed in ``tests/test_estimator.py``). ``fit`` hands the
data to :func:`streamreg.fit`, the same engine as the command line, so
coefficients, weights (exact weighted least squares) and the solvers are the
same; the fitted :class:`~streamreg.model.LinearModel` is kept as ``model_``
for statsmodels-style inference (``est.model_.bse``, ``est.model_.summary()``).

``partial_fit`` folds each chunk into one mergeable state of sufficient
statistics and re-solves it. The merge is exact up to rounding, so ``k``
calls on ``k`` chunks give the coefficients of one ``fit`` on all the rows.

>>> import numpy as np
>>> X = np.arange(12.0).reshape(6, 2) ** 1.5
>>> y = 1.0 + 2.0 * X[:, 0] - 0.5 * X[:, 1]
>>> est = StreamingLinearRegression().fit(X, y)
>>> est.coef_.round(10).tolist(), round(est.intercept_, 10)
([2.0, -0.5], 1.0)
>>> chunks = StreamingLinearRegression()
>>> for rows in (slice(0, 3), slice(3, 6)):
...     chunks = chunks.partial_fit(X[rows], y[rows])
>>> bool(np.allclose(chunks.coef_, est.coef_, rtol=1e-12))
True
"""

from __future__ import annotations

import warnings
from numbers import Integral

import numpy as np
import pyarrow as pa
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import (
    _check_sample_weight,
    check_consistent_length,
    check_is_fitted,
    column_or_1d,
    validate_data,
)

from . import fitting
from .design import NULL_POLICIES, DesignSpec, resolve_spec
from .engine.dask_runner import is_dask_collection
from .engine.scan import Accumulation, accumulate, resolve_batch_size
from .errors import InputError, StreamregError, UnsolvedWarning
from .io.sources import InMemorySource
from .model.linear_model import LinearModel
from .model.multi import MultiTargetModel
from .solvers import GRADIENT_SOLVERS, check_solver, solve, state_class
from .solvers.gradient import GradientOptions, OnlineSGD


class StreamingLinearRegression(RegressorMixin, BaseEstimator):
    """Ordinary (or weighted) least squares by mergeable sufficient statistics.

    Parameters
    ----------
    fit_intercept : bool, default=True
        Whether to fit an intercept.
    solver : {"auto", "cholesky", "qr", "exact", "sgd", "newton", "lbfgs"}, default="auto"
        As in :func:`streamreg.fit`. ``fit`` with ``auto`` accumulates the
        centered moments and, when they are too ill-conditioned to trust,
        reads the data a second time with a more accurate state.
        ``partial_fit`` sees each chunk once and cannot read it again, so with
        ``auto`` it accumulates the ``cholesky`` (moment) state; use ``qr``
        for ill-conditioned data fed in chunks. With ``sgd``, ``partial_fit``
        takes one SGD pass over each chunk (online learning; see
        :class:`streamreg.solvers.gradient.OnlineSGD`); ``newton`` and ``lbfgs`` have no
        ``partial_fit``.
    sgd : streamreg.solvers.gradient.SGDOptions, dict or None, default=None
        Options of the gradient solvers (``None``: the defaults).
    batch_size : int or None, default=None
        Rows per batch folded into the state (``None``: about 16 MiB per batch).
    drop_collinear : bool, default=False
        When False a rank-deficient design raises
        :class:`~streamreg.CollinearityError` (a ``ValueError``) naming the
        columns. When True the aliased columns (later ones, as in R's ``lm``)
        get no coefficient: they are 0 in ``coef_`` (so ``X @ coef_ +
        intercept_`` is the prediction) and NaN in ``model_.coef_``; the fit is
        the same as with those columns removed.
    nulls : {"error", "drop"}, default="error"
        ``"error"``: NaN anywhere in ``X``, ``y`` or ``sample_weight`` raises
        ``ValueError``, as in any scikit-learn estimator (impute first).
        ``"drop"``: rows holding NaN are left out of the fit (counted in
        ``model_.rows_dropped_``), and ``predict`` returns NaN for such rows.
        ±inf always raises. The default differs from :func:`streamreg.fit` and
        ``streamreg fit`` (``"drop"``) on purpose: scikit-learn's estimators
        refuse missing values unless they are told otherwise (and its
        ``check_estimator`` holds them to it), while a folder of Parquet files
        usually has a few nulls, which the library drops, counts and reports.

    Attributes
    ----------
    coef_ : ndarray of shape (n_features,) or (n_targets, n_features)
        One row per target when ``y`` is 2-D: every target is fitted from the same pass
        (``model_`` is then a :class:`~streamreg.model.MultiTargetModel`; with
        ``solver="exact"`` each row equals, bit for bit, the fit of that target alone).
    intercept_ : float or ndarray of shape (n_targets,)
        0.0 when ``fit_intercept=False``.
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features,)
        Only when ``X`` had string column names (a DataFrame).
    n_samples_seen_ : int
        Rows used in the fit so far (after dropping rows with NaN).
    model_ : streamreg.LinearModel
        The solved model, with its merged state (``model_.state_``) and the
        statsmodels-named inference (``bse``, ``tvalues``, ``conf_int()``, …).
    """

    def __init__(
        self,
        *,
        fit_intercept=True,
        solver="auto",
        batch_size=None,
        drop_collinear=False,
        nulls="error",
        sgd=None,
    ):
        self.fit_intercept = fit_intercept
        self.solver = solver
        self.sgd = sgd
        self.batch_size = batch_size
        self.drop_collinear = drop_collinear
        self.nulls = nulls

    # ------------------------------------------------------------------ fitting
    def fit(self, X, y, sample_weight=None):
        """Fit on all of ``X, y`` (numpy, pandas, or Dask collections) in one streaming pass.

        Returns ``self``.
        """
        self._check_params()
        self._forget()
        options = dict(
            fit_intercept=bool(self.fit_intercept),
            nulls=self.nulls,
            batch_size=self.batch_size,
            solver=self.solver,
            drop_collinear=bool(self.drop_collinear),
            sgd=self.sgd,
        )
        if any(is_dask_collection(a) for a in (X, y, sample_weight)):
            model = self._fit_dask(fitting.fit, X, y, sample_weight, options)
        else:
            table, features, target, weight = self._validated_table(X, y, sample_weight, reset=True)
            self._check_enough_rows(table.num_rows, len(features))
            model = fitting.fit(
                table, target=target, features=list(features), weight=weight, **options
            )
        if isinstance(model, MultiTargetModel):
            self._stream = None  # partial_fit continues single-target fits only
        else:
            self._stream = Accumulation(
                model.state_,
                _spec_of(model),
                model.rows_read_,
                dict(model.rows_dropped_by_column_),
                {},
                model.log_weight_sum_,
            )
        self._set_model(model)
        return self

    def _fit_dask(self, engine_fit, X, y, sample_weight, options) -> LinearModel:
        """Dask inputs go to the engine as they are (one state per partition, never computed
        here): a DataFrame gets y and the weights as columns, arrays are passed through."""
        columns = getattr(X, "columns", None)
        if columns is None:  # Dask arrays
            model = engine_fit(X, y, weight=sample_weight, **options)
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
            model = engine_fit(frame, target=target, features=features, weight=weight, **options)
        self.n_features_in_ = model.n_features_in_
        names = _string_columns(X)
        if names is not None:
            self.feature_names_in_ = names
        return model

    def partial_fit(self, X, y, sample_weight=None):
        """Fold the rows of ``X, y`` into the accumulated state and re-solve; returns ``self``.

        The first call sets the features; later chunks must have the same
        columns. After ``fit``, ``partial_fit`` adds rows to the rows ``fit``
        saw, in the kind of state ``fit`` ended with (``auto`` may have moved
        to ``qr``); ``fit`` starts afresh. Chunks are in-memory data (numpy or
        pandas); for a Dask collection use :meth:`fit`. While the rows so far
        cannot be solved (fewer rows than coefficients, or collinear columns
        with ``drop_collinear=False``) they are kept, an
        :class:`UnsolvedWarning` says why, and the estimator is not fitted
        until a later chunk makes the rows solvable.
        """
        self._check_params()
        if self.solver in ("newton", "lbfgs"):
            raise InputError(
                f"partial_fit cannot use solver={self.solver!r}: it needs every earlier row "
                "again; use solver='sgd' for online steps, or an exact solver to merge states."
            )
        if any(is_dask_collection(a) for a in (X, y, sample_weight)):
            raise InputError(
                "partial_fit takes in-memory chunks (numpy or pandas); "
                "for a Dask collection call fit."
            )
        if (
            np.ndim(y) == 2
            and np.shape(y)[1] > 1
            or isinstance(getattr(self, "model_", None), MultiTargetModel)
        ):
            raise InputError(
                "partial_fit fits one target; fit several targets (a 2-D y) with fit, which "
                "reads them all in one pass."
            )
        stream = getattr(self, "_stream", None)
        first = stream is None
        names = None if first else stream.state.names
        table, features, target, weight = self._validated_table(
            X,
            y,
            sample_weight,
            reset=first,
            names=None if names is None else (names[:-1], names[-1]),
        )
        kind = state_class(self.solver) if first else type(stream.state)
        src = InMemorySource(table, name="the partial_fit chunk")
        spec = resolve_spec(
            src,
            target=target,
            features=list(features),
            weight=weight,
            fit_intercept=bool(self.fit_intercept),
            nulls=self.nulls,
        )
        acc = accumulate(
            src, spec, kind, batch_size=resolve_batch_size(len(spec.columns), self.batch_size)
        )
        acc.rows_by_file = {}  # chunks are not inputs to list in the model
        # A new record each call (copies of the estimator never share one); the latest chunk's
        # spec names the weight column if any chunk had one.
        stream = (
            acc
            if first
            else Accumulation(
                stream.state + acc.state,
                spec if weight else stream.spec,
                stream.rows_read + acc.rows_read,
                (stream + acc).dropped,
                {},
                stream.log_weight_sum + acc.log_weight_sum,
            )
        )
        if self.solver == "sgd":
            return self._partial_fit_sgd(src, spec, stream, acc)
        self._stream = stream
        try:
            solution = solve(
                stream.state,
                fit_intercept=bool(self.fit_intercept),
                drop_collinear=bool(self.drop_collinear),
            )
        except StreamregError as err:
            self._forget_model()
            warnings.warn(
                f"partial_fit kept the {stream.state.n_rows} rows seen so far but cannot "
                f"solve them yet: {err}",
                UnsolvedWarning,
                stacklevel=2,
            )
            return self
        self._set_model(LinearModel.from_accumulation(stream, solution))
        return self

    def _partial_fit_sgd(self, src, spec, stream, acc):
        """One SGD pass over the chunk, then the model over every row seen (see ``OnlineSGD``)."""
        online = getattr(self, "_sgd", None)
        if online is None:
            fitted = getattr(self, "model_", None)
            if fitted is not None and fitted.optimizer_ is not None:
                online = OnlineSGD.after_fit(fitted, self.sgd)
            else:
                online = OnlineSGD.first(
                    acc.state, self.sgd, fit_intercept=bool(self.fit_intercept)
                )
        online = online.step(
            src,
            spec,
            stream.state,
            chunk_rows=acc.state.n_rows,
            batch_size=resolve_batch_size(len(spec.columns), self.batch_size),
        )
        # (a DivergenceError above leaves self as it was)
        self._stream, self._sgd = stream, online
        try:
            solution, record = online.solution(stream.state, fit_intercept=bool(self.fit_intercept))
        except StreamregError as err:
            self._forget_model()
            warnings.warn(
                f"partial_fit took its SGD pass over the {stream.state.n_rows} rows seen so far "
                f"but cannot report a model yet: {err}",
                UnsolvedWarning,
                stacklevel=3,
            )
            return self
        self._set_model(LinearModel.from_accumulation(stream, solution, optimizer=record))
        return self

    # ------------------------------------------------------------------ using
    def predict(self, X):
        """``X @ coef_ + intercept_`` (NumPy in, NumPy out; Dask in, lazy Dask out)."""
        check_is_fitted(self)
        if is_dask_collection(X):
            return self.model_.predict(X)
        X = validate_data(self, X, reset=False, dtype=np.float64, ensure_all_finite=self._finite())
        if isinstance(self.model_, MultiTargetModel):
            names = self.model_.feature_names_in_
            return self.model_.predict(pa.table({n: X[:, j] for j, n in enumerate(names)}))
        return self.model_.predict(X)

    def __sklearn_is_fitted__(self):
        return hasattr(self, "model_")

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = self.nulls == "drop"
        tags.target_tags.single_output = True
        tags.target_tags.multi_output = True
        return tags

    # ------------------------------------------------------------------ helpers
    def _check_params(self) -> None:
        check_solver(self.solver)
        if self.nulls not in NULL_POLICIES:
            raise InputError(
                f"nulls must be one of {', '.join(NULL_POLICIES)}; got {self.nulls!r}."
            )
        if self.sgd is not None:
            if self.solver not in GRADIENT_SOLVERS:
                raise InputError(
                    f"sgd options apply to the gradient solvers ({', '.join(GRADIENT_SOLVERS)}); "
                    f"the solver is {self.solver!r}."
                )
            GradientOptions.coerce(self.sgd).checked()
        if self.batch_size is not None and (
            not isinstance(self.batch_size, Integral)
            or isinstance(self.batch_size, bool)
            or self.batch_size < 1
        ):
            raise InputError(
                f"batch_size must be a positive number of rows or None; got {self.batch_size!r}."
            )

    def _check_enough_rows(self, n: int, p: int) -> None:
        # The engine says the same later; scikit-learn's checks look for "n_samples = 1".
        needed = p + bool(self.fit_intercept)
        if n < needed:
            raise InputError(
                f"got n_samples = {n} for {needed} coefficients "
                f"({p} features{' and the intercept' if self.fit_intercept else ''}); "
                "a least-squares fit needs at least as many rows as coefficients."
            )

    def _finite(self):
        return "allow-nan" if self.nulls == "drop" else True

    def _validated_table(self, X, y, sample_weight, *, reset: bool, names=None):
        """Validate like any scikit-learn estimator, then name the columns for the engine.

        Returns ``(table, features, target, weight)``: an Arrow table of float64
        columns, the feature names, the target name and the weight column (or None).
        """
        finite = self._finite()
        y_name = getattr(y, "name", None)
        y_names = [str(c) for c in y.columns] if hasattr(y, "columns") else None
        if _several_targets(y):
            X, y = validate_data(
                self,
                X,
                y,
                reset=reset,
                dtype=np.float64,
                y_numeric=True,
                multi_output=True,
                ensure_all_finite=finite,
            )
        elif finite is True:
            X, y = validate_data(
                self, X, y, reset=reset, dtype=np.float64, y_numeric=True, multi_output=False
            )
        else:  # validate_data refuses NaN in y whatever it is told; check y on its own
            X, y = validate_data(
                self,
                X,
                y,
                reset=reset,
                validate_separately=(
                    {"dtype": np.float64, "ensure_all_finite": finite},
                    {"ensure_2d": False, "dtype": np.float64, "ensure_all_finite": finite},
                ),
            )
            y = column_or_1d(y, warn=True)
            check_consistent_length(X, y)
        p = X.shape[1]
        if names is None:
            features = _engine_names(getattr(self, "feature_names_in_", None), p)
            target = _fresh(y_name if isinstance(y_name, str) and y_name else "y", features)
        else:
            features, target = names
        columns = {name: X[:, j] for j, name in enumerate(features)}
        if y.ndim == 2:  # several targets: named by y's columns when usable, else y0, y1, …
            m = y.shape[1]
            usable = y_names and len(set(y_names)) == m and not set(y_names) & set(features)
            target = y_names if usable else [_fresh(f"y{k}", features) for k in range(m)]
            columns.update({t: y[:, k] for k, t in enumerate(target)})
        else:
            columns[target] = y
        weight = None
        if sample_weight is not None:
            sample_weight = _check_sample_weight(
                sample_weight, X, dtype=np.float64, ensure_non_negative=True
            )
            weight = _fresh("sample_weight", (*features, *np.atleast_1d(target)))
            columns[weight] = sample_weight
        return pa.table(columns), tuple(features), target, weight

    def _set_model(self, model: LinearModel) -> None:
        self.model_ = model
        self.coef_ = np.where(np.isnan(model.coef_), 0.0, model.coef_)
        self.intercept_ = (
            model.intercept_.copy()
            if isinstance(model, MultiTargetModel)
            else float(model.intercept_)
        )
        self.n_samples_seen_ = int(model.n_samples_)

    def _forget_model(self) -> None:
        for name in ("model_", "coef_", "intercept_", "n_samples_seen_"):
            self.__dict__.pop(name, None)

    def _forget(self) -> None:
        self._forget_model()
        for name in ("_stream", "_sgd", "n_features_in_", "feature_names_in_"):
            self.__dict__.pop(name, None)


def _spec_of(model: LinearModel) -> DesignSpec:
    """The design a fitted model was solved over (what ``partial_fit`` continues)."""
    return DesignSpec(
        target=model.target,
        features=tuple(model.feature_names_in_),
        weight=model.weight,
        fit_intercept=model.fit_intercept,
    )


def _several_targets(y) -> bool:
    """A 2-D ``y`` with more than one column (``np.asarray``, not ``np.ndim``: array-likes that
    refuse numpy's function protocol still convert)."""
    shape = getattr(y, "shape", None)
    if shape is None:
        shape = np.asarray(y).shape
    return len(shape) == 2 and shape[1] > 1


def _string_columns(X):
    columns = getattr(X, "columns", None)
    if columns is None:
        return None
    names = list(columns)
    if names and all(isinstance(c, str) for c in names):
        return np.asarray(names, dtype=object)
    return None


def _engine_names(feature_names, p: int) -> tuple[str, ...]:
    """The DataFrame's column names when they are usable as distinct names, else x0, x1, …"""
    if feature_names is not None:
        names = [str(n) for n in feature_names]
        if len(set(names)) == p and all(names):
            return tuple(names)
    return tuple(f"x{j}" for j in range(p))


def _fresh(name: str, taken) -> str:
    taken = set(taken)
    while name in taken:
        name += "_"
    return name
