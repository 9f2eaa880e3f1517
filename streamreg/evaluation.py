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
from .design.encoded import DesignRows
from .engine.scan import resolve_batch_size
from .errors import InputError
from .io.sources import Source
from .solvers.moments import MomentState


def evaluate(
    model,
    source,
    *,
    batch_size: int | None = None,
    on_rows: Callable[[int], None] | None = None,
    unseen: str = "error",
) -> dict:
    """n, RMSE, MAE, bias and R² of ``model`` on ``source`` (which must hold the target).

    A model with an encoded design codes the data as the fit did (``unseen`` as in
    :func:`streamreg.prediction.predict_parquet`; the rows coded with the reference level are
    counted in ``unseen_rows``); a model with several targets gives one such dict per target
    under ``targets``."""
    src = source if isinstance(source, Source) else Source.resolve(source)
    if model.design_ is not None:
        return _evaluate_encoded(model, src, batch_size, on_rows, unseen)
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
    return _scores(n, rows_read, dropped, sum_sq, sum_abs, sum_err, target)


def _scores(n, rows_read, dropped, sum_sq, sum_abs, sum_err, target) -> dict:
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


def _evaluate_encoded(model, src: Source, batch_size, on_rows, unseen) -> dict:
    """:func:`evaluate` for a model with a design: per target when there are several."""
    model._check_predictable()
    targets = list(getattr(model, "targets_", [model.target]))
    rows = DesignRows(model.design_, targets=targets, unseen=unseen)
    m = len(targets)
    n, rows_read, dropped = 0, 0, {}
    sums = np.zeros((3, m))
    states = [MomentState.empty((t,)) for t in targets]
    size = resolve_batch_size(len(rows.columns) + len(model.design_.column_names), batch_size)
    for chunk in src.batches(rows.columns, size, dictionary=rows.dictionary_columns):
        x, y, _, missing = rows.rows(chunk)
        resid = y - model.predict_rows(x)
        n += len(resid)
        sums += [(resid * resid).sum(axis=0), np.abs(resid).sum(axis=0), resid.sum(axis=0)]
        for k in range(m):
            states[k] += MomentState.from_arrays(y[:, k : k + 1], names=(targets[k],))
        read = chunk.batch.num_rows
        rows_read += read
        for name, count in missing.items():
            dropped[name] = dropped.get(name, 0) + count
        if on_rows is not None:
            on_rows(read)
    scores = [_scores(n, rows_read, dropped, *sums[:, k], states[k]) for k in range(m)]
    extra = {"unseen_rows": rows.unseen_rows} if rows.unseen_rows else {}
    if m == 1:
        return {**scores[0], **extra}
    return {"targets": dict(zip(targets, scores)), **extra}
