"""What ``streamreg.fit`` accepts, turned into one kind of source.

Paths, directories and globs become a :class:`~streamreg.io.sources.Source` of
Parquet files; a pandas DataFrame, a pyarrow Table or numpy arrays become an
:class:`~streamreg.io.sources.InMemorySource`, read in batches by the same
engine. (Dask collections are handled by :mod:`streamreg.engine.dask_runner`.)

>>> import numpy as np
>>> src, target, weight = to_source(np.arange(6.0).reshape(3, 2), np.array([1.0, 2.0, 3.0]))
>>> src.schema.names, target, weight
(['x0', 'x1', 'y'], 'y', None)
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from ..errors import InputError, parameter
from .sources import InMemorySource, Source

WEIGHT_COLUMN = "sample_weight"


def is_in_memory(source) -> bool:
    return (
        _is_pandas(source)
        or isinstance(source, (pa.Table, pa.RecordBatch, np.ndarray))
        or (
            hasattr(source, "__array__")
            and not isinstance(source, (str, bytes))
            and not _is_dask(source)
            and not isinstance(source, (list, tuple))
        )
    )


def to_source(source, y=None, *, target: str | None = None, weight=None, need_target=True):
    """``(source, target name(s), weight column name)`` for any accepted input (the target may
    be left to a formula with ``need_target=False``)."""
    if not need_target:
        return to_source(source, y, target=target or "", weight=weight)
    if isinstance(source, Source):
        return source, _need_target(target), _weight_name(weight, in_memory=False)
    if not is_in_memory(source):
        if y is not None:
            raise InputError(
                "y is only accepted with in-memory data (arrays or DataFrames); "
                "for Parquet files name the target column with target=."
            )
        return Source.resolve(source), _need_target(target), _weight_name(weight, in_memory=False)
    if isinstance(source, pa.RecordBatch):
        source = pa.Table.from_batches([source])
    if _is_pandas(source):
        table = pa.Table.from_pandas(source, preserve_index=False)
    elif isinstance(source, pa.Table):
        table = source
    else:
        x = np.asarray(source, dtype=np.float64)
        if x.ndim == 1:
            raise InputError(
                f"X must be 2-D (rows, features); got a 1-D array of shape {x.shape}. "
                "Use X.reshape(-1, 1) for a single feature."
            )
        if x.ndim != 2:
            raise InputError(f"X must be 2-D (rows, features); got shape {x.shape}.")
        table = pa.table({f"x{j}": x[:, j] for j in range(x.shape[1])})
    if y is not None:
        table, target = _with_targets(table, y, target)
    weight_name = None
    if weight is not None and not isinstance(weight, str):
        values = np.asarray(weight, dtype=np.float64).reshape(-1)
        if len(values) != table.num_rows:
            raise InputError(
                f"the data have {table.num_rows} rows but sample_weight has {len(values)}."
            )
        weight_name = WEIGHT_COLUMN
        table = table.append_column(weight_name, pa.array(values))
    elif isinstance(weight, str):
        weight_name = weight
    return InMemorySource(table, name="the in-memory data"), _need_target(target), weight_name


def _with_targets(table: pa.Table, y, target):
    """``table`` with the target column(s) of ``y`` appended: a vector is one target (named
    ``target``, its Series name, or ``y``); a 2-D ``y`` one target per column (named by
    ``target``, its DataFrame columns, or ``y0, y1, …``)."""
    import pandas as pd

    if isinstance(y, pd.DataFrame) or np.ndim(y) == 2:
        values = (
            y.to_numpy(dtype=np.float64)
            if isinstance(y, pd.DataFrame)
            else np.asarray(y, dtype=np.float64)
        )
        if values.shape[1] == 1:
            names = [target] if isinstance(target, str) else list(target or [])
            return _with_targets(table, values[:, 0], names[0] if names else None)
        if target is not None and not isinstance(target, str):
            names = list(target)
        elif isinstance(y, pd.DataFrame):
            names = [str(c) for c in y.columns]
        else:
            names = [f"y{k}" for k in range(values.shape[1])]
        if len(names) != values.shape[1]:
            raise InputError(f"y has {values.shape[1]} columns but {len(names)} target names.")
        columns = list(enumerate(names))
    else:
        if target is not None and not isinstance(target, str):
            target = list(target)
            if len(target) != 1:
                raise InputError(f"y is one column but {len(target)} target names were given.")
            target = target[0]
        name = target or (getattr(y, "name", None) if _is_pandas(y) else None) or "y"
        values = (
            np.asarray(y, dtype=np.float64).reshape(-1, 1)
            if not _is_pandas(y)
            else y.to_numpy(dtype=np.float64).reshape(-1, 1)
        )
        columns = [(0, name)]
    if len(values) != table.num_rows:
        raise InputError(f"X has {table.num_rows} rows but y has {len(values)}.")
    for k, name in columns:
        if name in table.column_names:
            raise InputError(f"y's name '{name}' is also a column of X.")
        table = table.append_column(name, pa.array(values[:, k]))
    names = [name for _, name in columns]
    return table, names[0] if len(names) == 1 else names


def _need_target(target):
    if target == "":  # a formula names the target
        return None
    if not target:
        raise InputError(f"a target column is required ({parameter('target')}).")
    return target


def _weight_name(weight, in_memory: bool):
    if weight is not None and not isinstance(weight, str):
        raise InputError(
            "weight must be a column name for Parquet data (arrays are accepted only "
            "with in-memory data)."
        )
    return weight


def _is_pandas(obj) -> bool:
    import pandas as pd

    return isinstance(obj, (pd.DataFrame, pd.Series))


def _is_dask(obj) -> bool:
    return type(obj).__module__.startswith("dask")
