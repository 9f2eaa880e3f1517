r"""Prediction as one fused loop over the columns: ``ŷ = c + Σⱼ (xⱼ − mⱼ)·βⱼ``.

A fitted model with an intercept predicts ``μ_y + (x − μ_x)ᵀβ`` with the training
means, so that columns with large offsets (timestamps) do not cost the prediction
its digits. :class:`Predictor` holds that form once per model — the kept (not
aliased) features, their slopes ``β``, the shifts ``m = μ_x`` (hi part of the
double-double means) and the constant ``c = b₀ + b₁`` in two parts, ``b₀ = hi(μ_y)``
and ``b₁ = lo(μ_y) − Σⱼ lo(μ_xⱼ)·βⱼ`` (so that ``ŷ − b₀`` keeps every digit) — and evaluates
it a column at a time: ``acc += (xⱼ − mⱼ)·βⱼ`` with numpy's in-place ufuncs, on
vectors of one batch's rows that stay in cache. Nothing is gathered into a
``rows × p`` matrix and no BLAS thread is woken (a multithreaded ``gemv`` whose
partner thread has lost its core to Arrow's decoding stalls; see
:func:`streamreg.engine.local.blas_beside_decoding`), which keeps ``predict`` and
``evaluate`` at the speed of reading the columns.

Without an intercept ``m = 0, c = 0``; a gradient solver's stepped intercept is
``b₀`` itself (it is not ``μ_y − μ_xᵀβ``), with ``b₁ = 0``.

>>> import numpy as np
>>> from streamreg.solvers.moments import MomentState
>>> from streamreg.model.linear_model import LinearModel
>>> x = np.arange(10.0) + 1e9
>>> state = MomentState.from_arrays(np.column_stack([x, 2 * (x - 1e9) + 1]), names=["t", "y"])
>>> predictor = Predictor.of(LinearModel.from_state(state))
>>> predictor.features, predictor.columns([np.array([1e9 + 20.0])]).round(9).tolist()
(('t',), [41.0])
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa


@dataclass(frozen=True)
class Predictor:
    """``ŷ = base + offset + Σⱼ (xⱼ − shift[j])·coef[j]`` over the model's kept ``features``."""

    features: tuple[str, ...]
    coef: np.ndarray
    shift: np.ndarray
    base: float  # the constant's large part: the training mean of the target (its hi part)
    offset: float  # its small part

    @classmethod
    def of(cls, model) -> Predictor:
        """The prediction form of a fitted :class:`~streamreg.model.LinearModel`."""
        coef_all = np.asarray(model.coef_, dtype=np.float64)
        kept = ~np.isnan(coef_all)
        coef = coef_all[kept]
        features = tuple(str(n) for n, k in zip(model.feature_names_in_, kept) if k)
        optimizer = getattr(model, "optimizer_", None) or {}
        if not model.fit_intercept:
            shift, base, offset = np.zeros(len(coef)), 0.0, 0.0
        elif optimizer.get("free_intercept"):
            shift, base, offset = np.zeros(len(coef)), float(model.intercept_), 0.0
        else:
            p = len(coef_all)
            state = model.state_
            shift = np.asarray(state.mean[:p][kept], dtype=np.float64)
            low = np.asarray(state.mean_lo[:p][kept], dtype=np.float64)
            base = float(state.mean[p])
            offset = float(state.mean_lo[p]) - float(low @ coef)
        return cls(features, coef, shift, base, offset)

    def columns(
        self, columns: Sequence[np.ndarray], *, centered: bool = False, minus: float = 0.0
    ) -> np.ndarray:
        """Predictions (minus the constant ``minus``; ``minus=base`` keeps every digit of
        ``ŷ − base``) from one float64 vector per kept feature, in order. ``centered``: the
        vectors already hold ``xⱼ − shift[j]`` (e.g. shifted on their way out of Arrow)."""
        if len(columns) != len(self.coef):
            raise ValueError(f"expected {len(self.coef)} columns, got {len(columns)}")
        rows = len(columns[0]) if len(columns) else 0
        acc = np.full(rows, (self.base - minus) + self.offset)
        term = np.empty(rows)
        for j, column in enumerate(columns):
            if centered:
                np.multiply(column, self.coef[j], out=term)
            else:
                np.subtract(column, self.shift[j], out=term)
                term *= self.coef[j]
            acc += term
        return acc

    def matrix(
        self, x_kept: np.ndarray, *, centered: bool = False, minus: float = 0.0
    ) -> np.ndarray:
        """Predictions from a ``rows × k`` float64 matrix of the kept features (Fortran order
        reads each column contiguously)."""
        columns = [x_kept[:, j] for j in range(x_kept.shape[1])]
        return self.columns(columns, centered=centered, minus=minus)

    def batch(self, batch: pa.RecordBatch | pa.Table) -> np.ndarray:
        """Predictions for an Arrow batch (columns by name; a null feature gives NaN)."""
        return self.columns([_float_column(batch.column(name)) for name in self.features])


def _float_column(column) -> np.ndarray:
    if not pa.types.is_float64(column.type):
        column = column.cast(pa.float64(), safe=False)
    # Nulls become NaN (pyarrow's conversion of a float array with nulls), so their
    # predictions are NaN.
    return column.to_numpy(zero_copy_only=False)
