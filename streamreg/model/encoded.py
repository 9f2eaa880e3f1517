"""Predicting with an encoded design: new data's columns coded as the fit coded them.

The model's :class:`~streamreg.design.coding.Design` holds the levels, the coding
and the reference of every category and the statistics of center/scale terms, so
new data — in any order of levels, with any subset of them — get the same columns.
A level the model does not know is refused in words (column, level, where), or with
``unseen="reference"`` coded as the reference level; the rows so coded are counted
in a :class:`~streamreg.errors.UnseenLevelWarning`.
"""

from __future__ import annotations

import warnings

import numpy as np
import pyarrow as pa

from ..design.encoded import DesignRows
from ..engine.scan import resolve_batch_size
from ..errors import InputError, UnseenLevelWarning
from ..io.sources import InMemorySource


def as_table(data) -> pa.Table:
    """An Arrow table of named columns (pandas, Arrow); arrays have no names to encode by."""
    if isinstance(data, pa.RecordBatch):
        return pa.Table.from_batches([data])
    if isinstance(data, pa.Table):
        return data
    if hasattr(data, "columns") and hasattr(data, "loc"):  # pandas
        return pa.Table.from_pandas(data, preserve_index=False)
    raise InputError(
        "a model with categories, a formula or dates predicts from named columns: pass a pandas "
        "DataFrame or a pyarrow Table, not an array."
    )


def design_matrix(design, data, *, unseen: str = "error", targets=()):
    """``(x, y, positions, rows)``: design rows and target values of the usable rows of
    ``data``, their positions (None: every row) and the number of rows; warns with the count
    of rows coded with the reference level under ``unseen="reference"``."""
    table = as_table(data)
    rows = DesignRows(design, targets=targets, unseen=unseen)
    source = InMemorySource(table, name="the data")
    xs, ys, where = [], [], []
    offset = 0
    size = resolve_batch_size(len(design.column_names) + 1)
    for chunk in source.batches(rows.columns, size):
        x, y, positions, _ = rows.rows(chunk)
        xs.append(x)
        ys.append(y)
        n = chunk.batch.num_rows
        where.append(offset + (np.arange(n) if positions is None else positions))
        offset += n
    unseen_rows = rows.unseen_rows
    if unseen_rows:
        detail = ", ".join(f"{rows_:,} in '{name}'" for name, rows_ in unseen_rows.items())
        warnings.warn(
            f"rows with a level the model does not know were predicted with the reference "
            f"level ({detail}).",
            UnseenLevelWarning,
            stacklevel=3,
        )
    width = len(design.column_names)
    x = np.vstack(xs) if xs else np.zeros((0, width))
    y = np.vstack(ys) if ys else np.zeros((0, len(targets)))
    positions = np.concatenate(where) if where else np.zeros(0, dtype=np.intp)
    return x, y, (None if len(positions) == table.num_rows else positions), table.num_rows


def encoded_predictions(model, data, *, unseen: str = "error") -> np.ndarray:
    """Predictions of a model with a design (NaN for rows with a missing value)."""
    x, _, positions, n = design_matrix(model.design_, data, unseen=unseen)
    kept = ~np.isnan(model.coef_)
    values = model.predict_kept(x[:, kept])
    if positions is None:
        return values
    out = np.full(n, np.nan)
    out[positions] = values
    return out
