r"""The fitted model: coefficients, fit statistics, prediction, and its JSON form.

``predict`` computes ``ŷ = b + Σⱼ βⱼ xⱼ`` over the kept features (aliased
columns have no coefficient and are ignored). Fit statistics:

* ``r2_ = 1 − SSR/TSS`` — TSS is centered with an intercept and the
  uncentered ``Σ w y²`` without one (as statsmodels and NIST do);
* ``rmse_ = √(SSR / Σ w)`` — the root mean squared (weighted) residual on the
  training rows.

The model is saved as plain JSON (never pickle) together with the moment
state it was solved from, so later steps (inference, merging with new data)
need nothing else. Loading validates the format version and every field.

>>> import numpy as np, pandas as pd
>>> from streamreg.solvers.moments import MomentState
>>> x = np.arange(10.0)
>>> state = MomentState.from_arrays(np.column_stack([x, 2 * x + 1]), names=["x", "y"])
>>> model = LinearModel.from_state(state, fit_intercept=True)
>>> model.predict(pd.DataFrame({"x": [20.0]})).round(9).tolist()
[41.0]
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence

import numpy as np

from .. import penalty_report, report
from .._version import __version__
from ..engine.dask_runner import is_dask_collection, predict_dask
from ..errors import InputError, did_you_mean
from ..io.atomic import read_json, write_json_atomic
from ..solvers import solve
from ..solvers.moments import MomentState
from ..solvers.solution import Solution, check_finite_solution
from .encoded import encoded_predictions
from .inference import InferenceMixin
from .multi import MultiTargetModel
from .predictor import Predictor
from .serialize import model_fields, model_to_dict


class LinearModel(InferenceMixin):
    """A least-squares fit. Learned attributes end in ``_`` (scikit-learn style)."""

    def __init__(
        self,
        *,
        target: str,
        feature_names: Sequence[str],
        coef: np.ndarray,
        intercept: float,
        fit_intercept: bool,
        weight: str | None,
        state: MomentState,
        solution: Solution,
        rows_read: int,
        rows_dropped_by_column: dict[str, int] | None = None,
        inputs: list[dict] | None = None,
        streamreg_version: str = __version__,
        log_weight_sum: float = 0.0,
        robust: dict | None = None,
        optimizer: dict | None = None,
        design=None,
        columns: dict | None = None,
        absorbed: dict | None = None,
        cv: dict | None = None,
    ):
        self.target = target
        self.feature_names_in_ = np.array(list(feature_names), dtype=object)
        self.coef_ = np.asarray(coef, dtype=np.float64)
        self.intercept_ = float(intercept)
        self.fit_intercept = bool(fit_intercept)
        self.weight = weight
        self.state_ = state
        self.solution_ = solution
        self.rows_read_ = int(rows_read)
        self.rows_dropped_by_column_ = dict(rows_dropped_by_column or {})
        self.inputs_ = list(inputs or [])
        self.streamreg_version = streamreg_version
        self.log_weight_sum_ = float(log_weight_sum)  # Σ log w, for the WLS likelihood
        self.robust_ = robust  # {"cov_type", "cov", "n_groups", "groups"} from a second pass
        self.optimizer_ = (
            optimizer  # the gradient solvers' record (streamreg.solvers.gradient), else None
        )
        # The encoded design (streamreg.design.coding.Design: levels, coding, references) when
        # the features are not plain numeric columns; predict and evaluate encode with it.
        self.design_ = design
        # What every column of the data was in the fit: {column: {"role", "why"}}
        # (streamreg.design.roles); None for a model loaded from a file that did not record it.
        self.columns_ = columns
        # The absorbed fixed effect: {"column", "n_groups", "singletons"}, else None.
        self.absorbed_ = absorbed
        self.cv_ = cv  # a cross-validated path (streamreg.cv) that chose this penalty, else None
        self._built = True

    def __setattr__(self, name, value):
        # Results are built complete and never change: the statistics below are cached.
        if getattr(self, "_built", False):
            raise AttributeError(
                f"a LinearModel does not change after it is built; cannot set {name!r}."
            )
        object.__setattr__(self, name, value)

    @classmethod
    def from_accumulation(
        cls,
        acc,
        solution: Solution,
        *,
        robust: dict | None = None,
        optimizer: dict | None = None,
        design=None,
        columns: dict | None = None,
        absorbed: dict | None = None,
        cv: dict | None = None,
    ) -> LinearModel:
        """The model of an :class:`~streamreg.engine.scan.Accumulation` solved into ``solution``,
        with its robust covariance, optimizer record, design, column roles, absorbed factor and
        cross-validated path if any: complete, once."""
        spec = acc.spec
        state = acc.state
        check_finite_solution(solution, state)
        return cls(
            target=state.names[-1],
            feature_names=state.names[:-1],
            coef=solution.coef,
            intercept=solution.intercept,
            fit_intercept=spec.fit_intercept,
            weight=spec.weight,
            state=state,
            solution=solution,
            rows_read=acc.rows_read,
            rows_dropped_by_column=acc.dropped,
            inputs=acc.inputs,
            log_weight_sum=acc.log_weight_sum,
            robust=robust,
            optimizer=optimizer,
            design=design,
            columns=columns,
            absorbed=absorbed,
            cv=cv,
        )

    @classmethod
    def from_state(
        cls,
        state,
        *,
        fit_intercept: bool = True,
        weight: str | None = None,
        drop_collinear: bool = False,
        rows_read: int | None = None,
        rows_dropped_by_column: dict[str, int] | None = None,
        inputs: list[dict] | None = None,
        solution: Solution | None = None,
        log_weight_sum: float = 0.0,
        robust: dict | None = None,
        optimizer: dict | None = None,
    ) -> LinearModel:
        """Solve ``state`` (any solver's state; the target is its last column) and wrap the
        result."""
        if solution is None:
            solution = solve(state, fit_intercept=fit_intercept, drop_collinear=drop_collinear)
        check_finite_solution(solution, state)
        dropped = dict(rows_dropped_by_column or {})
        return cls(
            target=state.names[-1],
            feature_names=state.names[:-1],
            coef=solution.coef,
            intercept=solution.intercept,
            fit_intercept=fit_intercept,
            weight=weight,
            state=state,
            solution=solution,
            rows_read=rows_read if rows_read is not None else state.n_rows + sum(dropped.values()),
            rows_dropped_by_column=dropped,
            inputs=inputs,
            log_weight_sum=log_weight_sum,
            robust=robust,
            optimizer=optimizer,
        )

    # ------------------------------------------------------------------ facts
    @property
    def n_features_in_(self) -> int:
        return len(self.feature_names_in_)

    @property
    def n_samples_(self) -> int:
        """Rows used in the fit (after dropping rows with missing values)."""
        return self.state_.n_rows

    @property
    def weight_sum_(self) -> float:
        """Σ w over the rows used (equals ``n_samples_`` when unweighted)."""
        return self.state_.weight_sum

    @property
    def rows_dropped_(self) -> int:
        return sum(self.rows_dropped_by_column_.values())

    @property
    def aliased_(self) -> list[str]:
        return list(self.solution_.aliased)

    @property
    def ssr_(self) -> float:
        return self.solution_.ssr

    @property
    def r2_(self) -> float:
        tss = self._tss
        return 1.0 - self.solution_.ssr / tss if tss > 0 else float("nan")

    @property
    def rmse_(self) -> float:
        return math.sqrt(self.solution_.ssr / self.state_.weight_sum)

    @property
    def scaled_condition_number_(self) -> float:
        """Condition number of the system the solver solved (the scaled normal equations for
        cholesky, the scaled design for qr) — how much rounding the coefficients can suffer.
        Not statsmodels' ``condition_number`` of the raw design (see that property)."""
        return self.solution_.condition_number

    @property
    def condition_number_(self) -> float:
        """The older name of :attr:`scaled_condition_number_`."""
        return self.scaled_condition_number_

    @property
    def solver_(self) -> str:
        return self.solution_.solver

    @property
    def warnings_(self) -> list[str]:
        return list(self.solution_.warnings)

    @property
    def converged_(self) -> bool | None:
        """Whether a gradient solver met its tolerance (None for the closed-form solvers)."""
        return None if self.optimizer_ is None else self.optimizer_["converged"]

    @property
    def n_iter_(self) -> int | None:
        """Epochs (sgd) or iterations (newton, lbfgs) run; None for the closed-form solvers."""
        return None if self.optimizer_ is None else self.optimizer_["iterations"]

    @property
    def penalty_(self) -> dict | None:
        """The penalty of a penalized fit (alpha, l1_ratio, standardize, sweeps, duality gap);
        None for least squares. A penalized model has no standard errors or p values."""
        return self.solution_.penalty

    def summary(self, format: str = "text"):
        """The results table: ``text`` (statsmodels' layout), ``markdown`` or ``json`` (a dict).

        A penalized model's table shows its coefficients, penalty and cross-validation
        figures, and says why it has no p values."""
        formats = {
            "text": report.summary_text,
            "markdown": report.summary_markdown,
            "json": report.summary_json,
        }
        if self.penalty_ is not None:
            formats = {
                "text": penalty_report.penalized_summary_text,
                "markdown": penalty_report.penalized_summary_markdown,
                "json": penalty_report.penalized_summary_json,
            }
        if format not in formats:
            raise InputError(f"format must be one of {', '.join(formats)}; got {format!r}.")
        return formats[format](self)

    def coefficients(self) -> dict[str, float | None]:
        """Feature name → coefficient (``None`` for an aliased column)."""
        return {
            name: (None if np.isnan(c) else float(c))
            for name, c in zip(self.feature_names_in_, self.coef_)
        }

    # ------------------------------------------------------------------ predict
    def predict(self, data, *, unseen: str = "error") -> np.ndarray:
        """Predictions for a 2-D numpy array (columns in ``feature_names_in_`` order), a pandas
        DataFrame, or a pyarrow Table/RecordBatch (columns by name), or — lazily — a
        Dask DataFrame (a Dask Series) or Dask array. Rows with a missing feature value
        get NaN.

        With an intercept this evaluates ``μ_y + (x − μ_x)ᵀβ`` with the training means
        (equal to ``b + xᵀβ`` in exact arithmetic), so columns with large offsets do not
        cost the prediction its digits.

        A model with an encoded design (categories, a formula, dates) encodes the data's
        columns with the levels, coding and references it was fitted with; a level it does
        not know is an error naming the column and the level — or, with
        ``unseen="reference"``, the row is predicted with the reference level (a warning
        counts such rows)."""
        self._check_predictable()
        if is_dask_collection(data):
            return predict_dask(self, data, unseen=unseen)
        if self.design_ is not None:
            return encoded_predictions(self, data, unseen=unseen)
        kept = ~np.isnan(self.coef_)
        return self.predict_kept(self._feature_matrix(data, kept)[:, kept])

    def _check_predictable(self) -> None:
        if self.absorbed_:
            raise InputError(
                f"the model absorbed the fixed effect '{self.absorbed_['column']}', whose "
                f"{self.absorbed_['n_groups']:,} group effects it does not keep; it has slopes "
                "but no predictions. Fit with the factor as C(...) terms to predict."
            )

    def predict_rows(self, x: np.ndarray) -> np.ndarray:
        """``(rows, 1)`` predictions from design rows (every feature column, in order)."""
        kept = ~np.isnan(self.coef_)
        return self.predict_kept(x[:, kept])[:, None]

    def predict_kept(self, x_kept: np.ndarray) -> np.ndarray:
        """Predictions from a float64 matrix of the kept (non-aliased) features, in order
        (see :class:`~streamreg.model.predictor.Predictor`)."""
        return Predictor.of(self).matrix(np.asarray(x_kept, dtype=np.float64))

    def _feature_matrix(self, data, kept: np.ndarray) -> np.ndarray:
        names = list(self.feature_names_in_)
        if hasattr(data, "schema") and hasattr(data, "column") and hasattr(data, "num_rows"):
            import pyarrow as pa

            x = np.zeros((data.num_rows, len(names)))
            for j, name in enumerate(names):
                if not kept[j]:
                    continue
                if name not in data.schema.names:
                    raise InputError(
                        f"the data has no column '{name}', which the model was fitted with"
                        f"{did_you_mean(name, data.schema.names)}."
                    )
                column = data.column(name)
                if not pa.types.is_float64(column.type):
                    column = column.cast(pa.float64(), safe=False)
                x[:, j] = column.to_numpy(zero_copy_only=False)
            return x
        if hasattr(data, "columns") and hasattr(data, "loc"):  # pandas
            missing = [n for n, k in zip(names, kept) if k and n not in data.columns]
            if missing:
                raise InputError(
                    f"the data has no column '{missing[0]}', which the model was fitted with"
                    f"{did_you_mean(missing[0], [str(c) for c in data.columns])}."
                )
            x = np.zeros((len(data), len(names)))
            for j, name in enumerate(names):
                if kept[j]:
                    x[:, j] = data[name].to_numpy(dtype=np.float64, na_value=np.nan)
            return x
        x = np.asarray(data, dtype=np.float64)
        if x.ndim != 2:
            raise InputError(
                f"expected a 2-D array of shape (rows, {len(names)}); got an array of shape "
                f"{x.shape}."
            )
        if x.shape[1] != len(names):
            raise InputError(
                f"the data has {x.shape[1]} columns; the model was fitted with {len(names)}."
            )
        return x

    # ------------------------------------------------------------------ JSON
    def to_dict(self) -> dict:
        """The model as a JSON-ready dict (see :mod:`streamreg.model.serialize`)."""
        return model_to_dict(self)

    def save(self, path: str | os.PathLike) -> None:
        """Write the model as JSON, atomically (no partial file is ever left)."""
        write_json_atomic(path, self.to_dict(), indent=1)

    @classmethod
    def from_dict(cls, data: dict, *, where: str = "model") -> LinearModel:
        """Validate a dict written by :meth:`to_dict` and rebuild the model."""
        return cls(**model_fields(data, where))

    def __repr__(self) -> str:
        terms = ", ".join(f"{n}={c:.6g}" for n, c in zip(self.feature_names_in_, self.coef_))
        penalty = self.penalty_
        shown = (
            ""
            if penalty is None
            else f", alpha={penalty['alpha']:.6g}, l1_ratio={penalty['l1_ratio']:g}"
        )
        return (
            f"LinearModel({self.target} ~ {terms}; intercept={self.intercept_:.6g}, "
            f"n={self.n_samples_}{shown})"
        )


def load(path: str | os.PathLike) -> LinearModel | MultiTargetModel:
    """Read a model written by :meth:`LinearModel.save` (or a multi-target model's ``save``),
    validating it."""
    data = read_json(path, "model")
    if isinstance(data, dict) and "targets" in data:
        return MultiTargetModel.from_dict(data, where=str(path), build=LinearModel.from_dict)
    return LinearModel.from_dict(data, where=str(path))
