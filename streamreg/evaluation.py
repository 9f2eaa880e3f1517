r"""Scoring a fitted model on held-out data, in one streaming pass.

For the rows with every used value present (the others are dropped and
counted), with residuals ``e = y − ŷ``:

* ``rmse = √(Σe²/n)``, ``mae = Σ|e|/n``, ``bias = Σe/n``;
* ``r2 = 1 − Σe² / Σ(y − ȳ)²`` with the held-out mean ``ȳ`` (the centered sum
  is merged across batches with Chan's formula, so it keeps its digits).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from .design import DesignSpec, batch_arrays, screen_values
from .engine.scan import resolve_batch_size
from .errors import InputError
from .io.sources import Source
from .solvers.moments import MomentState


def evaluate(
    model, source, *, batch_size: int | None = None, on_rows: Callable[[int], None] | None = None
) -> dict:
    """n, RMSE, MAE, bias and R² of ``model`` on ``source`` (which must hold the target)."""
    src = source if isinstance(source, Source) else Source.resolve(source)
    features = [str(f) for f, c in zip(model.feature_names_in_, model.coef_) if not np.isnan(c)]
    spec = DesignSpec.resolve(src.schema, target=model.target, features=features)
    src.check_columns(spec.columns)
    n = 0
    sum_sq = sum_abs = sum_err = 0.0
    target = MomentState.empty((model.target,))
    rows_read = 0
    dropped: dict[str, int] = {}
    for chunk in src.batches(spec.columns, resolve_batch_size(len(spec.columns), batch_size)):
        arrays = batch_arrays(chunk, spec)
        z = arrays.z
        if not np.isfinite(z).all():
            arrays = screen_values(arrays, chunk, spec)
            z = arrays.z
        resid = z[:, -1] - model.predict_kept(z[:, :-1])
        n += len(resid)
        sum_sq += float(resid @ resid)
        sum_abs += float(np.abs(resid).sum())
        sum_err += float(resid.sum())
        target += MomentState.from_arrays(z[:, -1:], names=(model.target,))
        rows_read += arrays.rows_read
        for name, count in arrays.dropped.items():
            dropped[name] = dropped.get(name, 0) + count
        if on_rows is not None:
            on_rows(arrays.rows_read)
    if n == 0:
        raise InputError("no usable rows to evaluate: every row was dropped or the data are empty.")
    tss = float(target.comoment[0, 0])
    return {
        "n": n,
        "rows_read": rows_read,
        "rows_dropped": sum(dropped.values()),
        "rows_dropped_by_column": dropped,
        "rmse": math.sqrt(sum_sq / n),
        "mae": sum_abs / n,
        "bias": sum_err / n,
        "r2": 1.0 - sum_sq / tss if tss > 0 else None,
    }
