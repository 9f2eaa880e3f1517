"""Streaming prediction: Parquet in, Parquet out, with bounded memory.

Each batch of the input is read (the model's features plus any pass-through
columns), predicted, and appended to a Parquet file that only replaces the
target path once it is complete.

It runs at the speed of reading the feature columns: the prediction is one fused
column loop (:class:`~streamreg.model.predictor.Predictor`), and the prediction
column is written without Parquet's dictionary encoding — fitted values are almost
all distinct, so building a dictionary only to abandon it cost more than the rest
of the pass (pass-through columns keep it: an id or a category may repeat).

With ``interval`` (a confidence level such as 0.95) each row also gets statsmodels'
``get_prediction().summary_frame()`` columns ``mean_se, mean_ci_lower, mean_ci_upper,
obs_ci_lower, obs_ci_upper`` (:mod:`streamreg.model.intervals`): the interval of the mean and
of a new observation (of weight 1, as statsmodels takes new rows), batch by batch, from the
same feature columns as the fast prediction loop (the prediction is computed once). A
penalized fit has no intervals and is refused.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from contextlib import nullcontext

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from .design.encoded import DesignRows
from .design.request import as_names
from .engine.local import blas_beside_decoding
from .engine.scan import resolve_batch_size
from .errors import DataError, InputError, SchemaError, did_you_mean, parameter
from .io.atomic import atomic_path
from .io.footers import is_numeric_type
from .io.sources import Source
from .model.intervals import SUMMARY_COLUMNS
from .model.linear_model import LinearModel
from .model.predictor import Predictor

INTERVAL_COLUMNS = SUMMARY_COLUMNS[1:]  # mean_se, mean_ci_lower, … (the mean is `column`)


def predict_parquet(
    model: LinearModel,
    source,
    out: str | os.PathLike,
    *,
    keep: Sequence[str] | str | None = None,
    column: str = "prediction",
    batch_size: int | None = None,
    on_rows: Callable[[int], None] | None = None,
    interval: float | None = None,
    unseen: str = "error",
    unseen_rows: dict | None = None,
) -> int:
    """Write ``column`` (plus the ``keep`` columns, and the interval columns with
    ``interval``) for every input row to ``out``; return the row count.

    A row with a missing feature value gets a null prediction (and null bounds). A model
    with several targets writes ``{column}_{target}`` for each. A model with an encoded
    design codes each batch as the fit did; a level it does not know is an error naming the
    column, the level, the file and the row group, or with ``unseen="reference"`` is
    predicted with the reference level and counted into ``unseen_rows`` (column → rows).
    """
    src = source if isinstance(source, Source) else Source.resolve(source)
    if model.design_ is not None:
        return _predict_encoded(
            model, src, out, keep, column, batch_size, on_rows, unseen, unseen_rows, interval
        )
    keep = (
        [k.strip() for k in keep.split(",") if k.strip()]
        if isinstance(keep, str)
        else list(keep or [])
    )
    if column in keep:
        raise InputError(
            f"the prediction column '{column}' is also in {parameter('keep')}; "
            f"pick another {parameter('column')} name."
        )
    extra = _interval_columns(interval, keep, column)
    predictor = Predictor.of(model)
    features = list(predictor.features)
    intervals = None
    if extra:
        model.require_sampling_covariance(f"prediction intervals ({_named('interval')})")
        intervals = model.interval_predictor
    for name in features:
        _check_feature(src, name)
    for name in keep:
        src.column_type(name)
    read = list(dict.fromkeys([*features, *keep]))
    batch_size = resolve_batch_size(len(read), batch_size)

    def tables():
        for chunk in src.batches(read, batch_size):
            batch = chunk.batch
            with np.errstate(over="ignore", invalid="ignore"):  # refused below, in words
                columns = predictor.feature_columns(batch)
                pred = predictor.columns(columns, rows=batch.num_rows)
            if np.isinf(pred).any():
                where = chunk.describe_row(np.flatnonzero(np.isinf(pred))[0])
                raise DataError(
                    f"the prediction for {where} overflows float64: the model's "
                    "coefficients are too large for these feature values; nothing was written."
                )
            arrays = [batch.column(k) for k in keep]
            arrays.append(pa.array(pred, from_pandas=True))  # NaN (a null feature) → null
            if intervals is not None:
                arrays += _interval_arrays(intervals, columns, pred, 1.0 - interval)
            yield pa.RecordBatch.from_arrays(arrays, names=[*keep, column, *extra])

    # The intervals' one product per batch is BLAS's; let it leave a core to Arrow's decoding.
    with blas_beside_decoding() if extra else nullcontext():
        return _write_batches(out, tables(), src, keep, [column, *extra], on_rows)


def _predict_encoded(
    model, src, out, keep, column, batch_size, on_rows, unseen, unseen_rows, interval=None
):
    """:func:`predict_parquet` for a model with a design (categories, formula, dates)."""
    model._check_predictable()
    keep = as_names(keep)
    targets = list(getattr(model, "targets_", [model.target]))
    names = [column] if len(targets) == 1 else [f"{column}_{t}" for t in targets]
    clash = sorted(set(names) & set(keep))
    if clash:
        raise InputError(
            f"the prediction column '{clash[0]}' is also in {parameter('keep')}; "
            f"pick another {parameter('column')} name."
        )
    extra = _interval_columns(interval, keep, column)
    intervals = None
    if extra:
        if len(targets) > 1:
            raise InputError(
                f"{_named('interval')} needs a model of one target; this one has "
                f"{len(targets)} ({', '.join(targets)}): predict with one target's model."
            )
        model.require_sampling_covariance(f"prediction intervals ({_named('interval')})")
        intervals = model.interval_predictor
    kept = np.flatnonzero(~np.isnan(model.coef_)) if intervals is not None else None
    rows = DesignRows(model.design_, unseen=unseen)
    for name in keep:
        src.column_type(name)
    read = list(dict.fromkeys([*rows.columns, *keep]))
    batch_size = resolve_batch_size(len(read) + len(model.design_.column_names), batch_size)

    def tables():
        for chunk in src.batches(read, batch_size, dictionary=rows.dictionary_columns):
            batch = chunk.batch
            x, _, positions, _ = rows.rows(chunk)
            where = slice(None) if positions is None else positions
            fitted = model.predict_rows(x)
            if intervals is not None:
                bounds = _interval_values(
                    intervals, [x[:, j] for j in kept], fitted[:, 0], 1.0 - interval
                )
                fitted = np.column_stack([fitted, *bounds])
            values = np.full((batch.num_rows, fitted.shape[1]), np.nan)
            values[where] = fitted
            arrays = [batch.column(k) for k in keep]
            arrays += [pa.array(v, mask=np.isnan(v)) for v in values.T]
            yield pa.RecordBatch.from_arrays(arrays, names=[*keep, *names, *extra])

    count = _write_batches(out, tables(), src, keep, [*names, *extra], on_rows)
    if unseen_rows is not None:
        unseen_rows.update(rows.unseen_rows)
    return count


def _write_batches(out, tables, src, keep, computed, on_rows) -> int:
    """Write every record batch of ``tables`` to ``out`` as one Parquet file, atomically (an
    error leaves nothing); with no batch at all, an empty file of the kept columns of ``src``
    and the ``computed`` float64 columns. Returns the rows written."""
    rows = 0
    with atomic_path(out) as tmp:
        writer = None
        try:
            for table in tables:
                if writer is None:
                    writer = _writer(tmp, table.schema, keep)
                writer.write_batch(table)
                rows += table.num_rows
                if on_rows is not None:
                    on_rows(table.num_rows)
            if writer is None:
                fields = [src.schema.field(k) for k in keep]
                fields += [pa.field(name, pa.float64()) for name in computed]
                writer = _writer(tmp, pa.schema(fields), keep)
        finally:
            if writer is not None:
                writer.close()
    return rows


def _writer(path, schema: pa.Schema, keep: Sequence[str]) -> pq.ParquetWriter:
    """A Parquet writer with dictionary encoding for the pass-through columns only."""
    return pq.ParquetWriter(path, schema, use_dictionary=list(keep) if keep else False)


def _interval_columns(interval, keep, column) -> tuple[str, ...]:
    if interval is None:
        return ()
    if (
        isinstance(interval, bool)
        or not isinstance(interval, (int, float))
        or not (0.0 < interval < 1.0)
    ):
        raise InputError(
            f"{_named('interval')} is a confidence level between 0 and 1, such as 0.95; "
            f"got {interval!r}."
        )
    clash = [c for c in INTERVAL_COLUMNS if c in keep or c == column]
    if clash:
        raise InputError(
            f"the interval column '{clash[0]}' is also the prediction column or in "
            f"{parameter('keep')}; rename that column."
        )
    return INTERVAL_COLUMNS


def _interval_values(intervals, columns, pred, alpha: float) -> list[np.ndarray]:
    """The standard error of the mean and the two intervals of one batch, from its kept
    feature columns and predictions (NaN where a feature is missing)."""
    result = intervals.columns(columns, mean=pred, rows=len(pred))
    mean_ci = result.conf_int(alpha=alpha)
    obs_ci = result.conf_int(obs=True, alpha=alpha)
    return [result.se_mean, mean_ci[:, 0], mean_ci[:, 1], obs_ci[:, 0], obs_ci[:, 1]]


def _interval_arrays(intervals, columns, pred, alpha: float) -> list[pa.Array]:
    """:func:`_interval_values` as Arrow arrays (null where a feature is missing)."""
    values = _interval_values(intervals, columns, pred, alpha)
    return [pa.array(v, from_pandas=True) for v in values]


def _check_feature(src: Source, name: str) -> None:
    """A feature the model was fitted with must be in the data, and numeric."""
    if name not in src.schema.names:
        where = (
            src.files[0].path if len(src.files) == 1 else f"any of the {len(src.files)} input files"
        )
        raise SchemaError(
            f"the model was fitted with feature '{name}', which is not in {where}"
            f"{did_you_mean(name, src.schema.names)}; "
            f"columns are: {', '.join(src.schema.names)}."
        )
    dtype = src.column_type(name)
    if not is_numeric_type(dtype):
        holder = next((f.path for f in src.files if name in f.schema.names), "the directory names")
        raise SchemaError(
            f"feature '{name}' has type {dtype} in {holder}; the model needs a numeric column "
            "(integer, float, boolean or decimal)."
        )


def _named(name: str) -> str:
    """A parameter's name in messages: ``use_t`` in Python, ``--use-t`` on the command line."""
    return parameter(name).rstrip("=")
