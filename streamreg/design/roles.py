r"""What every column of the data is in a fit: a stated role, never a silent drop.

Each column of the data gets one role, with the reason in words:

``feature``    read as a number (dates as days, timestamps and times as seconds since
               1970-01-01 UTC, booleans as 0/1);
``category``   treatment-coded: one column per level but the reference;
``target``, ``weight``, ``cluster`` (the groups of cluster-robust errors), ``absorbed``
               (a fixed effect absorbed by the within estimator);
``skipped``    not used, and why — excluded, not among the named features or not in the
               formula, or not a *default* feature: text, dates and timestamps (name them
               to use them), Hive partition keys, ID-like columns and types that cannot be
               features.

**Default features** (no ``features=`` and no formula) are the numeric columns (integer,
real, boolean, decimal) other than the target, weight and cluster column, except

* *Hive partition keys* (``month=3/`` folders): a folder layout is not a measurement;
* *ID-like columns*: integer columns whose name says they identify rows — ``id``,
  ``index``, ``__index_level_0__`` (a pandas index written to Parquet), or a name ending
  in ``_id``, ``-id``, `` id``, ``Id`` or ``ID`` (``user_id``, ``orderId``). Deciding by
  the values (all distinct?) would cost a pass over the data before the fit and would
  change the model with the data; the name is known from the footer and is stable.

Either is used when named in ``features``; the report says which columns were skipped.

>>> import pyarrow as pa
>>> schema = pa.schema([("y", pa.float64()), ("x", pa.float64()), ("user_id", pa.int64()),
...                     ("city", pa.string())])
>>> features, skipped = default_features(schema, skip={"y"})
>>> features, sorted(skipped)
(['x'], ['city', 'user_id'])
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

import pyarrow as pa

from ..io.footers import is_numeric_type
from .expressions import is_temporal, is_text_like

ROLES = ("feature", "category", "target", "weight", "cluster", "absorbed", "skipped")
_ID_NAMES = {"id", "index", "__index_level_0__"}
_ID_SUFFIX = re.compile(r"(?:[_\-\s]id|[a-z0-9]Id|[a-z0-9]ID)$")


def is_id_like(name: str, dtype: pa.DataType) -> bool:
    """An integer column named like a row identifier (see the module docstring)."""
    if not pa.types.is_integer(dtype):
        return False
    return name.lower() in _ID_NAMES or bool(_ID_SUFFIX.search(name))


def why_not_default(name: str, dtype: pa.DataType, partition_keys: Iterable[str] = ()) -> str:
    """Why a column is not a default feature (or "" if it is one)."""
    if name in set(partition_keys):
        if is_text_like(dtype):
            return (
                "a Hive partition key holding text (name=value folders): name it in the "
                "features or as categorical to use it as a category"
            )
        return (
            f"a Hive partition key ({name}=… folders), not a measurement: name it in the "
            "features to use it as a number"
        )
    if is_text_like(dtype):
        return f"text ({dtype}): name it in the features or as categorical to use it as a category"
    if is_temporal(dtype):
        unit = "days" if pa.types.is_date(dtype) else "seconds"
        return f"{dtype}: name it in the features to use it as {unit} since 1970-01-01"
    if is_id_like(name, dtype):
        return (
            "ID-like (an integer column named as an identifier): name it in the features to use it"
        )
    if not is_numeric_type(dtype):
        return f"of type {dtype}, which cannot be a feature"
    return ""


def default_features(
    schema: pa.Schema, *, skip: Iterable[str] = (), partition_keys: Iterable[str] = ()
) -> tuple[list[str], dict[str, str]]:
    """``(default features, {skipped column: why})`` among the columns not in ``skip``."""
    skip, keys = set(skip), set(partition_keys)
    features, skipped = [], {}
    for f in schema:
        if f.name in skip:
            continue
        why = why_not_default(f.name, f.type, keys)
        if why:
            skipped[f.name] = why
        else:
            features.append(f.name)
    return features, skipped


def feature_why(dtype: pa.DataType) -> str:
    """How a feature column is read, in a few words."""
    if pa.types.is_date(dtype):
        return f"{dtype}, as days since 1970-01-01"
    if pa.types.is_timestamp(dtype):
        return f"{dtype}, as seconds since 1970-01-01 UTC"
    if is_temporal(dtype):
        return f"{dtype}, as seconds"
    if pa.types.is_boolean(dtype):
        return "bool, as 0/1"
    return str(dtype)


def column_roles(
    schema: pa.Schema,
    *,
    targets: Sequence[str],
    features: dict[str, str],
    categories: dict[str, str] | None = None,
    weight: str | None = None,
    groups: str | None = None,
    absorb: Sequence[str] = (),
    exclude: Iterable[str] = (),
    named: bool = False,
    formula: bool = False,
    partition_keys: Iterable[str] = (),
    partial: Iterable[str] = (),
) -> dict[str, dict]:
    """Column → ``{"role", "why"}`` for every column of ``schema``, in schema order.

    ``features`` and ``categories`` map the columns the fit reads as numbers or as
    categories to how (a column used both ways, e.g. ``x + C(x)``, is a category);
    ``named``/``formula`` say whether the features were named or given by a formula
    (a column left out is then "not among the features" / "not in the formula").
    """
    categories = categories or {}
    exclude, keys, partial = set(exclude), set(partition_keys), set(partial)
    roles: dict[str, dict] = {}
    for f in schema:
        name = f.name
        if name in targets:
            role = {"role": "target", "why": str(f.type)}
        elif name == weight:
            role = {"role": "weight", "why": str(f.type)}
        elif name in absorb:
            role = {"role": "absorbed", "why": "fixed effect, absorbed by the within estimator"}
        elif name in categories:
            role = {"role": "category", "why": categories[name]}
        elif name in features:
            role = {"role": "feature", "why": features[name]}
        elif name == groups:
            role = {"role": "cluster", "why": "groups of the cluster-robust standard errors"}
        elif name in exclude:
            role = {"role": "skipped", "why": "excluded"}
        elif formula:
            role = {"role": "skipped", "why": "not in the formula"}
        elif named:
            role = {"role": "skipped", "why": "not among the features"}
        elif name in partial:
            role = {"role": "skipped", "why": "only in some of the files: name it to use it"}
        else:
            role = {"role": "skipped", "why": why_not_default(name, f.type, keys) or "not used"}
        roles[name] = role
    return roles
