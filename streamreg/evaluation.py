r"""Scoring a fitted model on held-out data, in one streaming pass.

For the rows with every used value present (the others are dropped and
counted), with residuals ``e = y − ŷ``:

* ``rmse = √(Σe²/n)``, ``mae = Σ|e|/n``, ``bias = Σe/n``;
* ``r2 = 1 − Σe² / Σ(y − ȳ)²`` with the held-out mean ``ȳ`` (the centered sum
  is merged across batches with Chan's formula, so it keeps its digits).

The pass runs at the speed of reading the columns: the features are shifted by
the training means on their way out of Arrow (:func:`~streamreg.design.batch_arrays`
with ``shift``) and predicted by one fused column loop
(:class:`~streamreg.model.predictor.Predictor`); the sums are a few vector passes
per batch. The target is shifted too, by its training mean ``c``, and compared with
``ŷ − c`` (computed as such, see the ``Predictor``): a target far from zero
(1e8 ± 1) then loses no digits to cancellation, neither in the residuals nor in
the sum of squares about the mean.

Reference: T. F. Chan, G. H. Golub and R. J. LeVeque, "Updating formulae and a
pairwise algorithm for computing sample variances" (1979).

>>> import tempfile, pathlib, numpy as np, pyarrow as pa, pyarrow.parquet as pq
>>> from streamreg import fit
>>> path = pathlib.Path(tempfile.mkdtemp()) / "d.parquet"
>>> x = np.arange(8.0)
>>> noise = 0.5 * np.array([1, -1, -1, 1, 1, -1, -1, 1])  # orthogonal to 1 and x
>>> pq.write_table(pa.table({"x": x, "y": 2 * x + 1 + noise}), path)
>>> scores = evaluate(fit(path, target="y"), path)
>>> scores["n"], round(scores["rmse"], 12), round(scores["bias"], 12)
(8, 0.5, 0.0)
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from .design import DesignSpec, batch_arrays, screen_values
from .design.encoded import DesignRows
from .engine.local import blas_beside_decoding
from .engine.scan import resolve_batch_size
from .errors import InputError
from .io.sources import Source
from .model.predictor import Predictor
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
    predictor = Predictor.of(model)
    features = list(predictor.features)
    spec = DesignSpec.resolve(src.schema, target=model.target, features=features)
    src.check_columns(spec.columns)
    # Features shifted by the training means as they are copied out of Arrow, the target by
    # its own (residuals are then differences of small numbers).
    center = predictor.base
    shift = np.append(predictor.shift, center)
    n = 0
    sum_sq = sum_abs = sum_err = 0.0
    y_mean = y_m2 = 0.0  # running mean and centered sum of squares of y − c (Chan)
    rows_read = 0
    dropped: dict[str, int] = {}
    size = resolve_batch_size(len(spec.columns), batch_size)
    with blas_beside_decoding():
        for chunk in src.batches(spec.columns, size):
            arrays = batch_arrays(chunk, spec, shift=shift)
            z = arrays.z
            if not np.isfinite(z).all():
                arrays = screen_values(arrays, chunk, spec)
                z = arrays.z
            y = z[:, -1]
            resid = y - predictor.matrix(z[:, :-1], centered=True, minus=center)
            m = len(resid)
            if m:
                sum_sq += float(resid @ resid)
                sum_err += float(resid.sum())
                sum_abs += float(np.abs(resid, out=resid).sum())
                y_mean, y_m2 = _merge_moments(n, y_mean, y_m2, y)
            n += m
            rows_read += arrays.rows_read
            for name, count in arrays.dropped.items():
                dropped[name] = dropped.get(name, 0) + count
            if on_rows is not None:
                on_rows(arrays.rows_read)
    if n == 0:
        raise InputError("no usable rows to evaluate: every row was dropped or the data are empty.")
    tss = y_m2
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


def _merge_moments(n: int, mean: float, m2: float, y: np.ndarray) -> tuple[float, float]:
    """Chan et al.'s update: the mean and centered sum of squares of ``n`` values merged with
    the values ``y``."""
    m = len(y)
    batch_mean = float(y.mean())
    centered = y - batch_mean
    batch_m2 = float(centered @ centered)
    total = n + m
    delta = batch_mean - mean
    return mean + delta * m / total, m2 + batch_m2 + delta * delta * n * m / total


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
        rows_read += chunk.batch.num_rows
        for name, count in missing.items():
            dropped[name] = dropped.get(name, 0) + count
        if on_rows is not None:
            on_rows(chunk.batch.num_rows)
    if n == 0:
        raise InputError("no usable rows to evaluate: every row was dropped or the data are empty.")
    scores = []
    for k in range(m):
        tss = float(states[k].comoment[0, 0])
        scores.append(
            {
                "n": n,
                "rows_read": rows_read,
                "rows_dropped": sum(dropped.values()),
                "rows_dropped_by_column": dict(dropped),
                "rmse": math.sqrt(sums[0, k] / n),
                "mae": sums[1, k] / n,
                "bias": sums[2, k] / n,
                "r2": 1.0 - sums[0, k] / tss if tss > 0 else None,
            }
        )
    extra = {"unseen_rows": rows.unseen_rows} if rows.unseen_rows else {}
    if m == 1:
        return {**scores[0], **extra}
    return {"targets": dict(zip(targets, scores)), **extra}
