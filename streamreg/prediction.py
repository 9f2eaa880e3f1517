"""Streaming prediction: Parquet in, Parquet out, with bounded memory.

Each batch of the input is read (the model's features plus any pass-through
columns), predicted, and appended to a Parquet file that only replaces the
target path once it is complete.

It runs at the speed of reading the feature columns: the prediction is one fused
column loop (:class:`~streamreg.model.predictor.Predictor`), and the prediction
column is written without Parquet's dictionary encoding — fitted values are almost
all distinct, so building a dictionary only to abandon it cost more than the rest
of the pass (pass-through columns keep it: an id or a category may repeat).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from .design.encoded import DesignRows
from .design.request import as_names
from .engine.scan import resolve_batch_size
from .errors import DataError, InputError, SchemaError, did_you_mean, parameter
from .io.atomic import atomic_path
from .io.footers import is_numeric_type
from .io.sources import Source
from .model.linear_model import LinearModel
from .model.predictor import Predictor


def predict_parquet(
    model: LinearModel,
    source,
    out: str | os.PathLike,
    *,
    keep: Sequence[str] | str | None = None,
    column: str = "prediction",
    batch_size: int | None = None,
    on_rows: Callable[[int], None] | None = None,
    unseen: str = "error",
    unseen_rows: dict | None = None,
) -> int:
    """Write ``column`` (plus the ``keep`` columns) for every input row to ``out``; return the
    row count.

    A row with a missing feature value gets a null prediction. A model with several
    targets writes ``{column}_{target}`` for each. A model with an encoded design codes
    each batch as the fit did; a level it does not know is an error naming the column,
    the level, the file and the row group, or with ``unseen="reference"`` is predicted
    with the reference level and counted into ``unseen_rows`` (column → rows).
    """
    src = source if isinstance(source, Source) else Source.resolve(source)
    if model.design_ is not None:
        return _predict_encoded(
            model, src, out, keep, column, batch_size, on_rows, unseen, unseen_rows
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
    predictor = Predictor.of(model)
    features = list(predictor.features)
    for name in features:
        _check_feature(src, name)
    for name in keep:
        src.column_type(name)
    read = list(dict.fromkeys([*features, *keep]))
    batch_size = resolve_batch_size(len(read), batch_size)
    rows = 0
    with atomic_path(out) as tmp:
        writer = None
        try:
            for chunk in src.batches(read, batch_size):
                batch = chunk.batch
                with np.errstate(over="ignore", invalid="ignore"):  # refused below, in words
                    pred = predictor.batch(batch)
                if np.isinf(pred).any():
                    where = chunk.describe_row(np.flatnonzero(np.isinf(pred))[0])
                    raise DataError(
                        f"the prediction for {where} overflows float64: the model's "
                        "coefficients are too large for these feature values; nothing was written."
                    )
                arrays = [batch.column(k) for k in keep]
                arrays.append(pa.array(pred, from_pandas=True))  # NaN (a null feature) → null
                table = pa.RecordBatch.from_arrays(arrays, names=[*keep, column])
                if writer is None:
                    writer = _writer(tmp, table.schema, keep)
                writer.write_batch(table)
                rows += batch.num_rows
                if on_rows is not None:
                    on_rows(batch.num_rows)
            if writer is None:
                fields = [src.schema.field(k) for k in keep] + [pa.field(column, pa.float64())]
                writer = _writer(tmp, pa.schema(fields), keep)
        finally:
            if writer is not None:
                writer.close()
    return rows


def _predict_encoded(model, src, out, keep, column, batch_size, on_rows, unseen, unseen_rows):
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
    rows = DesignRows(model.design_, unseen=unseen)
    for name in keep:
        src.column_type(name)
    read = list(dict.fromkeys([*rows.columns, *keep]))
    batch_size = resolve_batch_size(len(read) + len(model.design_.column_names), batch_size)
    count = 0
    with atomic_path(out) as tmp:
        writer = None
        try:
            for chunk in src.batches(read, batch_size, dictionary=rows.dictionary_columns):
                batch = chunk.batch
                x, _, positions, _ = rows.rows(chunk)
                values = np.full((batch.num_rows, len(targets)), np.nan)
                values[slice(None) if positions is None else positions] = model.predict_rows(x)
                arrays = [batch.column(k) for k in keep]
                arrays += [pa.array(v, mask=np.isnan(v)) for v in values.T]
                table = pa.RecordBatch.from_arrays(arrays, names=[*keep, *names])
                if writer is None:
                    writer = _writer(tmp, table.schema, keep)
                writer.write_batch(table)
                count += batch.num_rows
                if on_rows is not None:
                    on_rows(batch.num_rows)
            if writer is None:
                fields = [src.schema.field(k) for k in keep]
                fields += [pa.field(n, pa.float64()) for n in names]
                writer = _writer(tmp, pa.schema(fields), keep)
        finally:
            if writer is not None:
                writer.close()
    if unseen_rows is not None:
        unseen_rows.update(rows.unseen_rows)
    return count


def _writer(path, schema: pa.Schema, keep: Sequence[str]) -> pq.ParquetWriter:
    """A Parquet writer with dictionary encoding for the pass-through columns only."""
    return pq.ParquetWriter(path, schema, use_dictionary=list(keep) if keep else False)


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
