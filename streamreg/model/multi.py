r"""Several targets fitted from one pass: one coefficient vector per target, one shared state.

A state over ``[x₁ … x_p, y₁ … y_m]`` holds every target's sufficient statistics
(:func:`streamreg.solvers.views.select_target`), so one pass and one factorization
of the features' block serve all targets. :class:`MultiTargetModel` keeps one
:class:`~streamreg.model.LinearModel` per target (``model["y2"]``, ``model.models_``)
and answers as scikit-learn's multi-output regressors do: ``coef_`` is
``(targets, features)``, ``intercept_`` has one entry per target and ``predict``
returns ``(rows, targets)``. With the exact solver each target's model equals, bit
for bit, the model of a fit of that target alone.

Saved as one version-2 model file: the shared state, the design and the column
roles once, and one entry per target without them (``"targets"``); loading rebuilds
each target's state from the shared one.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

import numpy as np

from ..engine.dask_runner import is_dask_collection
from ..errors import InputError, ModelFormatError
from ..io.atomic import write_json_atomic
from ..solvers import state_from_dict
from ..solvers.views import select_target
from .encoded import design_matrix
from .serialize import MODEL_FORMAT, MODEL_FORMAT_VERSION_2

_SHARED = ("state", "design", "columns", "absorbed")


class MultiTargetModel:
    """One model per target from a shared state; see the module docstring."""

    def __init__(self, models: Sequence, state):
        if len(models) < 2:
            raise InputError("a multi-target model needs at least two targets.")
        self.models_ = list(models)
        self.state_ = state  # over the features and every target
        self._built = True

    def __setattr__(self, name, value):
        if getattr(self, "_built", False):
            raise AttributeError(f"a model does not change after it is built; cannot set {name!r}.")
        object.__setattr__(self, name, value)

    # ------------------------------------------------------------------ facts
    @property
    def targets_(self) -> list[str]:
        return [m.target for m in self.models_]

    @property
    def target(self) -> str:
        return ", ".join(self.targets_)

    def __getitem__(self, target: str):
        for model in self.models_:
            if model.target == target:
                return model
        raise KeyError(f"no target {target!r}; targets are {', '.join(self.targets_)}.")

    def __len__(self) -> int:
        return len(self.models_)

    def __getattr__(self, name):
        # Facts shared by every target (features, design, rows, weight, solver) are the first's.
        if name in _SAME_FOR_ALL:
            return getattr(self.models_[0], name)
        if not name.startswith("_") and hasattr(self.models_[0], name):
            # Per-target results (get_prediction, t_test, bse, ...) belong to one target's model.
            raise AttributeError(
                f"{name} is a result of one target's model; take it from "
                f"model[{self.targets_[0]!r}].{name} (targets: {', '.join(self.targets_)})."
            )
        raise AttributeError(f"'MultiTargetModel' object has no attribute {name!r}")

    @property
    def coef_(self) -> np.ndarray:
        return np.vstack([m.coef_ for m in self.models_])

    @property
    def intercept_(self) -> np.ndarray:
        return np.array([m.intercept_ for m in self.models_])

    @property
    def r2_(self) -> np.ndarray:
        return np.array([m.r2_ for m in self.models_])

    @property
    def warnings_(self) -> list[str]:
        return [f"{m.target}: {w}" for m in self.models_ for w in m.warnings_]

    def coefficients(self) -> dict:
        return {m.target: m.coefficients() for m in self.models_}

    def summary(self, format: str = "text"):
        """Each target's results table (``json``: a dict by target)."""
        parts = [m.summary(format) for m in self.models_]
        if format == "json":
            return {"targets": dict(zip(self.targets_, parts))}
        return "\n\n".join(parts)

    # ------------------------------------------------------------------ predict
    def predict(self, data, *, unseen: str = "error") -> np.ndarray:
        """``(rows, targets)`` predictions; the design is encoded once for every target."""
        first = self.models_[0]
        first._check_predictable()
        if is_dask_collection(data):
            import pandas as pd

            if not hasattr(data, "map_partitions"):
                raise InputError("a multi-target model predicts Dask DataFrames, not Dask arrays.")
            columns = {f"prediction_{t}": pd.Series(dtype="float64") for t in self.targets_}
            return data.map_partitions(_predict_frame, self, unseen, meta=pd.DataFrame(columns))
        x, _, positions, n = design_matrix(first.design_, data, unseen=unseen)
        out = np.full((n, len(self.models_)), np.nan)
        out[slice(None) if positions is None else positions] = self.predict_rows(x)
        return out

    def predict_rows(self, x: np.ndarray) -> np.ndarray:
        """``(rows, targets)`` predictions from design rows."""
        return np.column_stack([m.predict_rows(x)[:, 0] for m in self.models_])

    def _check_predictable(self) -> None:
        self.models_[0]._check_predictable()

    # ------------------------------------------------------------------ JSON
    def to_dict(self) -> dict:
        first = self.models_[0].to_dict()
        entries = []
        for model in self.models_:
            entry = model.to_dict()
            for key in _SHARED:
                entry.pop(key, None)
            entries.append(entry)
        return {
            "format": MODEL_FORMAT,
            "format_version": MODEL_FORMAT_VERSION_2,
            "targets": self.targets_,
            "models": entries,
            "state": self.state_.to_dict(),
            **{key: first.get(key) for key in _SHARED[1:]},
        }

    def save(self, path: str | os.PathLike) -> None:
        write_json_atomic(path, self.to_dict(), indent=1)

    @classmethod
    def from_dict(cls, data: dict, *, where: str = "model", build: Callable) -> MultiTargetModel:
        """Validate a saved multi-target model; ``build`` rebuilds one target's model from its
        entry completed with its state and the shared fields."""
        targets, entries = data.get("targets"), data.get("models")
        if (
            data.get("format_version") != MODEL_FORMAT_VERSION_2
            or not isinstance(targets, list)
            or not isinstance(entries, list)
            or len(targets) < 2
            or len(entries) != len(targets)
            or not all(isinstance(t, str) for t in targets)
            or not all(isinstance(e, dict) for e in entries)
        ):
            raise ModelFormatError(
                f"{where}: a multi-target model needs 'targets' and one entry per target in "
                "'models' (format version 2)."
            )
        shared = state_from_dict(data.get("state"), where=f"{where} (state)")
        if list(shared.names[-len(targets) :]) != targets:
            raise ModelFormatError(f"{where}: the saved state does not end with the targets.")
        models = []
        for k, entry in enumerate(entries):
            if entry.get("target") != targets[k]:
                raise ModelFormatError(f"{where}: entry {k} is not for the target {targets[k]!r}.")
            complete = {
                **entry,
                "state": select_target(shared, k, n_targets=len(targets)).to_dict(),
                **{key: data.get(key) for key in _SHARED[1:]},
            }
            models.append(build(complete, where=f"{where} (target {targets[k]})"))
        return cls(models, shared)

    def __repr__(self) -> str:
        return f"MultiTargetModel(targets={self.targets_}, n={self.models_[0].n_samples_})"


_SAME_FOR_ALL = {
    "feature_names_in_",
    "n_features_in_",
    "design_",
    "columns_",
    "absorbed_",
    "fit_intercept",
    "weight",
    "rows_read_",
    "rows_dropped_",
    "rows_dropped_by_column_",
    "n_samples_",
    "weight_sum_",
    "inputs_",
    "solver_",
    "cov_type",
    "robust_",
    "optimizer_",
    "streamreg_version",
}


def _predict_frame(frame, model, unseen):
    import pandas as pd

    values = model.predict(frame, unseen=unseen)
    return pd.DataFrame(
        values, index=frame.index, columns=[f"prediction_{t}" for t in model.targets_]
    )
