"""Which columns mean what, and how an Arrow batch becomes float64 arrays.

A :class:`DesignSpec` names the target, the features, an optional weight
column, whether there is an intercept, and what to do with missing values.
:func:`batch_arrays` turns a record batch into ``z`` — a Fortran-ordered
``rows × (p + 1)`` float64 array, features first and the target last — and the
weights. Integer, boolean and decimal columns become float64; a null in any
used column drops the row (or is an error with ``nulls="error"``).

>>> import pyarrow as pa
>>> schema = pa.schema([("hours", pa.int64()), ("score", pa.float64()), ("name", pa.string())])
>>> DesignSpec.resolve(schema, target="score").features
('hours',)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..choices import NULL_POLICIES
from ..errors import DataError, InputError, SchemaError, did_you_mean, parameter
from ..io.footers import is_numeric_type
from ..io.sources import Chunk, Source
from .roles import default_features


@dataclass(frozen=True)
class DesignSpec:
    target: str
    features: tuple[str, ...]
    weight: str | None = None
    fit_intercept: bool = True
    nulls: str = "drop"
    # Cluster labels for cluster-robust errors (columns of any type): one column, or two for
    # two-way clustering.
    groups: str | tuple[str, ...] | None = None

    @classmethod
    def resolve(
        cls,
        schema: pa.Schema,
        *,
        target: str,
        features: Sequence[str] | str | None = None,
        exclude: Sequence[str] | str | None = None,
        weight: str | None = None,
        fit_intercept: bool = True,
        nulls: str = "drop",
        groups: str | Sequence[str] | None = None,
        partition_keys: Sequence[str] = (),
    ) -> DesignSpec:
        """Check the names against ``schema`` and pick default features.

        Default features: every numeric column except the target, the weight,
        the cluster column and the excluded ones, in schema order — and except Hive
        partition keys (``partition_keys``) and ID-like columns
        (:func:`streamreg.design.roles.default_features`).
        """
        if nulls not in NULL_POLICIES:
            raise InputError(f"nulls must be one of {', '.join(NULL_POLICIES)}; got {nulls!r}.")
        if not target:
            raise InputError(f"a target column is required ({parameter('target')}).")
        names = schema.names
        features = _as_list(features)
        exclude = _as_list(exclude) or []
        groups = _as_groups(groups)
        group_columns = groups if isinstance(groups, tuple) else (groups,)
        named = [("target", target), ("weight", weight)]
        named += [("cluster column", g) for g in group_columns]
        for label, col in [*named, *[("excluded column", e) for e in exclude]]:
            if col is not None and col not in names:
                raise SchemaError(
                    f"{label} '{col}' is not in the data{did_you_mean(col, names)}; columns are: "
                    f"{', '.join(names)}."
                )
        if features is None:
            skip = {target, weight, *group_columns, *exclude}
            features, skipped = default_features(schema, skip=skip, partition_keys=partition_keys)
            if not features:
                left = "; ".join(f"{name}: {why}" for name, why in skipped.items())
                raise SchemaError(
                    f"no numeric feature columns besides the target '{target}'; columns are: "
                    f"{', '.join(names)}" + (f" (not default features — {left})." if left else ".")
                )
        else:
            if not features:
                raise InputError(f"{parameter('features')} names no column.")
            dupes = sorted({f for f in features if features.count(f) > 1})
            if dupes:
                raise InputError(
                    f"feature {dupes[0]!r} is listed twice in {parameter('features')}."
                )
            features = [f for f in features if f not in exclude]
            for f in features:
                if f not in names:
                    raise SchemaError(
                        f"feature '{f}' is not in the data{did_you_mean(f, names)}; columns "
                        f"are: {', '.join(names)}."
                    )
                if f == target:
                    raise InputError(f"column '{f}' cannot be both the target and a feature.")
                if f == weight:
                    raise InputError(f"column '{f}' cannot be both the weight and a feature.")
        if weight is not None and weight == target:
            raise InputError(f"column '{weight}' cannot be both the target and the weight.")
        for column in group_columns:
            if column is not None and column in (target, weight):
                raise InputError(
                    f"column '{column}' cannot be the cluster column and the target or weight."
                )
        spec = cls(
            target=target,
            features=tuple(features),
            weight=weight,
            fit_intercept=bool(fit_intercept),
            nulls=nulls,
            groups=groups,
        )
        for col in spec.numeric_columns:
            dtype = schema.field(col).type
            if not is_numeric_type(dtype):
                raise SchemaError(
                    f"column '{col}' has type {dtype}; expected a numeric column (integer, float, "
                    "boolean or decimal)."
                )
        return spec

    @property
    def numeric_columns(self) -> tuple[str, ...]:
        """Features, target, then the weight: the columns read as float64."""
        return (*self.features, self.target) + ((self.weight,) if self.weight else ())

    @property
    def group_columns(self) -> tuple[str, ...]:
        """The cluster columns: none, one, or two (two-way clustering)."""
        if not self.groups:
            return ()
        return self.groups if isinstance(self.groups, tuple) else (self.groups,)

    @property
    def columns(self) -> tuple[str, ...]:
        """Every column read: the numeric ones, then the cluster columns if any."""
        extra = tuple(g for g in self.group_columns if g not in self.numeric_columns)
        return self.numeric_columns + tuple(dict.fromkeys(extra))

    @property
    def state_names(self) -> tuple[str, ...]:
        return (*self.features, self.target)


@dataclass
class DesignBatch:
    z: np.ndarray  # rows × (p+1), Fortran order, target last
    weights: np.ndarray | None
    rows_read: int
    dropped: dict[str, int]  # rows dropped, by the first used column that was missing
    positions: np.ndarray | None = None  # batch row of each kept row, when rows were dropped
    # Cluster label of each kept row when asked for (a tuple of two arrays for two-way clusters).
    groups: np.ndarray | tuple[np.ndarray, ...] | None = None


def resolve_spec(
    source: Source,
    *,
    target,
    features=None,
    exclude=None,
    weight=None,
    fit_intercept=True,
    nulls="drop",
    groups=None,
) -> DesignSpec:
    """The design of a fit over ``source``: names checked against every file's columns."""
    # Files that disagree on a named column are reported (naming both files) before its type is.
    cluster = _as_groups(groups)
    named = [target, weight, *(cluster if isinstance(cluster, tuple) else (cluster,))]
    named += _as_list(features) or []
    source.check_columns([c for c in named if c is not None and c in source.schema.names])
    if features is None:  # a column only some files have is not a default feature (Source.notes)
        partial = [c for c in source.partial_columns() if c not in named]
        exclude = [*(_as_list(exclude) or []), *partial] if partial else exclude
    spec = DesignSpec.resolve(
        source.schema,
        target=target,
        features=features,
        exclude=exclude,
        weight=weight,
        fit_intercept=fit_intercept,
        nulls=nulls,
        groups=groups,
        partition_keys=list(source.partition_types),
    )
    source.check_columns(spec.columns)
    return spec


def batch_arrays(
    chunk: Chunk,
    spec: DesignSpec,
    shift: np.ndarray | None = None,
    out: np.ndarray | None = None,
) -> DesignBatch:
    """Float64 arrays for one batch, with rows holding a null dropped (or refused).

    With ``shift`` (finite, one entry per column of ``z``) the columns are
    stored minus it, fused with the copy out of Arrow (one pass instead of two).
    ``out`` (a flat float64 buffer of at least rows × columns entries) is reused
    for ``z``, so a pass allocates no batch-sized memory per batch. That matters
    where the allocator hands every large block back to the OS (Dask workers set
    ``MALLOC_TRIM_THRESHOLD_``): each fresh ``z`` was a fresh set of page faults.
    An encoded design (:class:`streamreg.design.encoded.EncodedSpec`) returns its dense
    design rows.
    """
    if not isinstance(spec, DesignSpec):
        return spec.batch_arrays(chunk, shift)
    batch = chunk.batch
    n = batch.num_rows
    names = spec.state_names
    if out is not None and out.size >= n * len(names):
        z = out[: n * len(names)].reshape((n, len(names)), order="F")
    else:
        z = np.empty((n, len(names)), dtype=np.float64, order="F")
    missing = None
    dropped: dict[str, int] = {}
    for j, name in enumerate(names):
        column = batch.column(name)
        missing = _note_nulls(column, name, chunk, spec, missing, dropped)
        if shift is None:
            z[:, j] = _to_float(column)
        else:
            np.subtract(_to_float(column), shift[j], out=z[:, j])
    weights = None
    if spec.weight:
        column = batch.column(spec.weight)
        missing = _note_nulls(column, spec.weight, chunk, spec, missing, dropped)
        weights = _to_float(column)
    labels = []
    for name in spec.group_columns:
        column = batch.column(name)
        missing = _note_nulls(column, name, chunk, spec, missing, dropped)
        labels.append(column.to_numpy(zero_copy_only=False))
    groups = None if not labels else labels[0] if len(labels) == 1 else tuple(labels)
    positions = None
    if missing is not None:
        positions = np.flatnonzero(~missing)
        z = np.asfortranarray(z[positions])
        weights = weights[positions] if weights is not None else None
        groups = _take(groups, positions)
    result = DesignBatch(z, weights, n, dropped, positions, groups)
    if weights is not None and weights.size and weights.min() < 0:
        row = int(np.flatnonzero(weights < 0)[0])
        raise DataError(
            f"weight column '{spec.weight}' holds a negative weight ({weights[row]:g}) in "
            f"{_where(chunk, result, row)}; weights must be zero or positive."
        )
    return result


def screen_values(batch: DesignBatch, chunk: Chunk, spec: DesignSpec) -> DesignBatch:
    """Drop rows with NaN; refuse ±inf. Called only when a batch's sums were not finite.

    ``batch.z`` may have been shifted in place: NaN and ±inf are where they were.
    """
    if not isinstance(spec, DesignSpec):
        return spec.screen_values(batch, chunk)
    z, w = batch.z, batch.weights
    names = spec.state_names
    bad_inf = np.isinf(z)
    if bad_inf.any():
        row, col = np.argwhere(bad_inf)[0]
        raise DataError(
            f"column '{names[col]}' holds an infinite value in {_where(chunk, batch, row)}; "
            "±inf is never a usable value."
        )
    nan = np.isnan(z)
    if w is not None:
        nan_w = np.isnan(w)
        if np.isinf(w).any():
            row = int(np.flatnonzero(np.isinf(w))[0])
            raise DataError(
                f"weight column '{spec.weight}' holds an infinite value in "
                f"{_where(chunk, batch, row)}."
            )
    else:
        nan_w = np.zeros(z.shape[0], dtype=bool)
    rows = nan.any(axis=1) | nan_w
    if not rows.any():
        big = names[int(np.argmax(np.abs(z).max(axis=0)))]
        raise DataError(
            f"column '{big}' in {chunk.file.path} has values too large to square in float64 "
            "(|value| > 1e154); rescale it."
        )
    if spec.nulls == "error":
        row, col = np.argwhere(nan)[0] if nan.any() else (int(np.flatnonzero(nan_w)[0]), None)
        name = names[col] if col is not None else spec.weight
        raise DataError(
            f"column '{name}' holds NaN in {_where(chunk, batch, row)} "
            f"({parameter('nulls', 'error')})."
        )
    dropped = dict(batch.dropped)
    first_bad = np.where(nan.any(axis=0))[0]
    for col in first_bad:
        fresh = nan[:, col] & ~nan[:, :col].any(axis=1)
        if fresh.any():
            dropped[names[col]] = dropped.get(names[col], 0) + int(fresh.sum())
    if w is not None and nan_w.any():
        fresh = nan_w & ~nan.any(axis=1)
        if fresh.any():
            dropped[spec.weight] = dropped.get(spec.weight, 0) + int(fresh.sum())
    keep = np.flatnonzero(~rows)
    positions = keep if batch.positions is None else batch.positions[keep]
    return DesignBatch(
        np.asfortranarray(z[keep]),
        w[keep] if w is not None else None,
        batch.rows_read,
        dropped,
        positions,
        _take(batch.groups, keep),
    )


def _take(groups, rows):
    """The cluster labels of ``rows`` (one array, or a tuple of arrays, or None)."""
    if groups is None:
        return None
    if isinstance(groups, tuple):
        return tuple(g[rows] for g in groups)
    return groups[rows]


def _where(chunk: Chunk, batch: DesignBatch, row: int) -> str:
    position = int(row) if batch.positions is None else int(batch.positions[row])
    return chunk.describe_row(position)


def _note_nulls(column: pa.Array, name: str, chunk: Chunk, spec: DesignSpec, missing, dropped):
    if column.null_count == 0:
        return missing
    if spec.nulls == "error":
        row = int(pc.index(pc.is_null(column), True).as_py())
        raise DataError(
            f"column '{name}' has a missing value in {chunk.describe_row(row)} "
            f"({parameter('nulls', 'error')})."
        )
    nulls = np.asarray(pc.is_null(column))
    fresh = nulls if missing is None else nulls & ~missing
    count = int(fresh.sum())
    if count:
        dropped[name] = dropped.get(name, 0) + count
    return nulls if missing is None else (missing | nulls)


def _to_float(column: pa.Array) -> np.ndarray:
    if not pa.types.is_float64(column.type):
        column = column.cast(pa.float64(), safe=False)
    return column.to_numpy(zero_copy_only=False)


def _as_groups(value) -> str | tuple[str, ...] | None:
    """One cluster column as a string; two (two-way clustering) as a tuple."""
    if value is None or isinstance(value, str):
        return value or None
    names = tuple(str(v) for v in value)
    if not 1 <= len(names) <= 2 or len(set(names)) != len(names):
        raise InputError(
            f"{_named('groups')} names one cluster column, or two different ones for two-way "
            f"clustering; got {list(names)!r}."
        )
    return names[0] if len(names) == 1 else names


def _as_list(value) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return [str(v) for v in value]


def _named(name: str) -> str:
    """A parameter's name in messages: ``use_t`` in Python, ``--use-t`` on the command line."""
    return parameter(name).rstrip("=")
