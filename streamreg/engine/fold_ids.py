r"""Cross-validation folds: which fold a row belongs to.

A row's fold depends only on the row, never on the batch, file order, worker or
partition it arrived in, so a rerun, another chunking or a Dask cluster assigns it
the same fold:

* **fold column** (:func:`fold_labels`): the user's labels, integers or strings (H2O's
  ``fold_column``, glmnet's ``foldid``). Fold ``k`` is the ``k``-th smallest label among
  all labels seen (``1..K`` and ``0..K−1`` both work); the labels are found in the pass.
* **key column** (:func:`key_folds`): ``fold = h(key) mod K`` with ``h`` pandas'
  ``pd.util.hash_array`` (SipHash with a fixed key for strings, a 64-bit mixer for
  numbers; deterministic across runs and machines). Integers of any width hash alike;
  dates, timestamps (as nanoseconds) and floats (as their bits) are accepted too.
  Equal keys share a fold (grouped folds: every row of a customer in one fold).
* **position** (:func:`position_folds`): ``fold = h(row index within file ⊕ h(file id)) mod K``.
  :class:`FoldAssignment` takes as file id the file's name with its Hive ``key=value``
  folders (``day=3/part-0.parquet``), so moving the data folder or adding files keeps
  every row's fold. In-memory data is one "file"; a Dask DataFrame partition is one
  too, so there the folds follow the partitioning — use a key or a fold column for
  folds that survive a repartition.

>>> a = FoldAssignment.by_key("user", 5)
>>> a.columns, a.describe()
(('user',), "hash of key column 'user'")
>>> position_folds("a.parquet", 0, 8, 3).tolist() == position_folds("a.parquet", 0, 8, 3).tolist()
True
"""

from __future__ import annotations

import functools
import posixpath
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import InputError, parameter
from ..io.sources import Chunk

# A fold column with more distinct values than this is almost surely an id column.
MAX_FOLDS = 1000
ASSIGNMENTS = ("position", "key", "column")


def check_n_folds(n_folds, n_rows: int | None = None) -> int:
    """``folds`` is an integer from 2 to ``MAX_FOLDS`` and (if known) at most the row count."""
    if isinstance(n_folds, bool) or not isinstance(n_folds, (int, np.integer)) or n_folds < 2:
        raise InputError(
            f"cross-validation needs at least 2 folds; got {parameter('folds', n_folds)}."
        )
    if n_folds > MAX_FOLDS:
        raise InputError(f"folds must be at most {MAX_FOLDS}; got {parameter('folds', n_folds)}.")
    if n_rows is not None and n_folds > n_rows:
        raise InputError(
            f"{parameter('folds', int(n_folds))} asks for more folds than the {n_rows} rows "
            "of the data."
        )
    return int(n_folds)


# --------------------------------------------------------------------------- assignment
def _as_arrow(values) -> pa.Array:
    import pandas as pd

    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    elif isinstance(values, pd.Series):
        values = pa.Array.from_pandas(values)
    elif not isinstance(values, pa.Array):
        values = pa.array(np.asarray(values) if not isinstance(values, list) else values)
    if pa.types.is_dictionary(values.type):
        values = values.dictionary_decode()
    return values


def _refuse_nulls(values: pa.Array, what: str, locate=None) -> None:
    """Every row needs a fold: a null (or NaN) is one sentence naming where the first is."""
    nulls = values.null_count
    if nulls == 0 and pa.types.is_floating(values.type):
        nulls = int(pc.sum(pc.is_nan(values)).as_py() or 0)
    if nulls:
        first = int(np.flatnonzero(np.asarray(pc.is_null(values, nan_is_null=True)))[0])
        where = locate(first) if locate is not None else f"row {first} of the batch"
        raise InputError(
            f"{what} has {nulls} missing value(s), the first in {where}; every row needs a fold."
        )


def fold_labels(values, *, column: str = "fold", locate=None) -> np.ndarray:
    """The labels of a user fold column as int64 or str values; refuses nulls and other types.

    Floats are accepted when every value is a whole number (a pandas integer column
    that went through NaN). Fold ``k`` is the ``k``-th smallest label; see the module.

    >>> fold_labels([3, 1, 2, 1]).tolist()
    [3, 1, 2, 1]
    """
    array = _as_arrow(values)
    what = f"fold column '{column}'"
    _refuse_nulls(array, what, locate)
    kind = array.type
    if pa.types.is_integer(kind):
        return np.asarray(pc.cast(array, pa.int64()).to_numpy(zero_copy_only=False))
    if pa.types.is_floating(kind):
        numbers = array.to_numpy(zero_copy_only=False).astype(np.float64)
        if not np.all(np.isfinite(numbers) & (numbers == np.round(numbers))):
            bad = numbers[~(np.isfinite(numbers) & (numbers == np.round(numbers)))][0]
            raise InputError(f"{what} must hold whole numbers or strings; found {bad!r}.")
        return numbers.astype(np.int64)
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return array.to_numpy(zero_copy_only=False)
    raise InputError(f"{what} must hold integers or strings; it is {kind}.")


def _key_array(values, column: str, locate=None) -> np.ndarray:
    """Canonical numpy values of a key column: equal keys give equal arrays across files."""
    array = _as_arrow(values)
    what = f"fold key '{column}'"
    _refuse_nulls(array, what, locate)
    kind = array.type
    if pa.types.is_boolean(kind) or (pa.types.is_integer(kind) and kind != pa.uint64()):
        return np.asarray(pc.cast(array, pa.int64()).to_numpy(zero_copy_only=False))
    if kind == pa.uint64():
        return array.to_numpy(zero_copy_only=False)  # values < 2**63 hash as the same int64
    if pa.types.is_floating(kind):
        return array.to_numpy(zero_copy_only=False).astype(np.float64) + 0.0  # −0.0 → 0.0
    if pa.types.is_date(kind):
        return np.asarray(
            pc.cast(pc.cast(array, pa.date32()), pa.int32()).to_numpy(zero_copy_only=False),
            dtype=np.int64,
        )
    if pa.types.is_timestamp(kind):
        try:
            nanos = pc.cast(array, pa.timestamp("ns", kind.tz))
        except pa.ArrowInvalid:
            raise InputError(f"{what} holds a timestamp outside the years 1677-2262.") from None
        return np.asarray(pc.cast(nanos, pa.int64()).to_numpy(zero_copy_only=False))
    if (
        pa.types.is_string(kind)
        or pa.types.is_large_string(kind)
        or pa.types.is_binary(kind)
        or pa.types.is_large_binary(kind)
    ):
        return array.to_numpy(zero_copy_only=False)
    raise InputError(
        f"{what} must hold integers, strings, booleans, dates, timestamps or floats; it is {kind}."
    )


def _mix64(values: np.ndarray) -> np.ndarray:
    """The 64-bit finalizer of splitmix64, in place on a uint64 array — what
    ``pd.util.hash_array`` does to numbers (their bits as uint64), at numpy's speed."""
    values ^= values >> np.uint64(30)
    values *= np.uint64(0xBF58476D1CE4E5B9)
    values ^= values >> np.uint64(27)
    values *= np.uint64(0x94D049BB133111EB)
    values ^= values >> np.uint64(31)
    return values


def _hash_values(values: np.ndarray) -> np.ndarray:
    """``pd.util.hash_array(values)``: numbers by their bits (numpy), strings by SipHash."""
    import pandas as pd

    if values.dtype.kind in "iuf" and values.dtype.itemsize == 8:
        return _mix64(np.array(values, copy=True).view(np.uint64))
    return pd.util.hash_array(values)


def _mix(hashes: np.ndarray, seed: int) -> np.ndarray:
    if seed == 0:
        return hashes
    salt = _mix64(np.array([seed], dtype=np.int64).view(np.uint64))[0]
    return _mix64(hashes ^ salt)


@functools.lru_cache(maxsize=4096)
def _file_salt(file_id: str) -> np.uint64:
    import pandas as pd

    return pd.util.hash_array(np.array([file_id], dtype=object))[0]


def key_folds(
    values, n_folds: int, *, column: str = "key", seed: int = 0, locate=None
) -> np.ndarray:
    """Fold ids ``h(key) mod K`` (int64 in ``0..K−1``) of a key column; see the module.

    >>> a = key_folds(["u1", "u2", "u3", "u1"], 3)
    >>> bool(a[0] == a[3]), bool(((0 <= a) & (a < 3)).all())
    (True, True)
    """
    k = check_n_folds(n_folds)
    hashes = _hash_values(_key_array(values, column, locate))
    return (_mix(hashes, seed) % np.uint64(k)).astype(np.int64)


def position_folds(
    file_id: str, row_start: int, n_rows: int, n_folds: int, *, seed: int = 0
) -> np.ndarray:
    """Fold ids of rows ``row_start … row_start + n_rows − 1`` of the file ``file_id``.

    Rows are numbered within the file before any row is dropped for missing values,
    so the ids of a batch are taken before filtering and filtered with the same mask.
    """
    k = check_n_folds(n_folds)
    if not isinstance(file_id, str):
        raise InputError(f"the file id for position folds must be a string; got {file_id!r}.")
    if row_start < 0 or n_rows < 0:
        raise InputError(
            f"row positions must be non-negative; got start {row_start}, count {n_rows}."
        )
    rows = np.arange(row_start, row_start + n_rows, dtype=np.uint64)
    rows ^= _file_salt(file_id)
    return (_mix(_mix64(rows), seed) % np.uint64(k)).astype(np.int64)


# --------------------------------------------------------------------------- the assignment
@dataclass(frozen=True)
class FoldAssignment:
    """How a pass assigns rows to folds: ``by`` one of ``position``, ``key``, ``column``.

    ``n_folds`` is ``None`` for a fold column (its labels are found in the pass).
    Plain data, so it pickles to Dask workers; :meth:`ids` is called on each raw
    record batch (before rows with missing values are dropped).
    """

    by: str
    n_folds: int | None
    column: str | None = None
    seed: int = 0

    @classmethod
    def by_position(cls, n_folds: int, seed: int = 0) -> FoldAssignment:
        return cls("position", check_n_folds(n_folds), None, _seed(seed))

    @classmethod
    def by_key(cls, column: str, n_folds: int, seed: int = 0) -> FoldAssignment:
        return cls("key", check_n_folds(n_folds), column, _seed(seed))

    @classmethod
    def by_column(cls, column: str) -> FoldAssignment:
        return cls("column", None, column, 0)

    @property
    def columns(self) -> tuple[str, ...]:
        """The columns the assignment reads (besides the design's)."""
        return (self.column,) if self.column else ()

    def ids(self, chunk: Chunk) -> np.ndarray:
        """The fold of every row of a raw record batch: int ids ``0..K−1``, or the fold
        column's labels (``chunk.offset`` is its first row's index within its file)."""
        batch = chunk.batch
        if self.by == "column":
            return fold_labels(
                batch.column(self.column), column=self.column, locate=chunk.describe_row
            )
        if self.by == "key":
            return key_folds(
                batch.column(self.column),
                self.n_folds,
                column=self.column,
                seed=self.seed,
                locate=chunk.describe_row,
            )
        name = file_id(chunk.file.path, chunk.file.partition)
        return position_folds(name, chunk.offset, batch.num_rows, self.n_folds, seed=self.seed)

    def describe(self) -> str:
        if self.by == "column":
            return f"fold column '{self.column}'"
        seeded = f" (seed {self.seed})" if self.seed else ""
        if self.by == "key":
            return f"hash of key column '{self.column}'{seeded}"
        return f"hash of file and row position{seeded}"

    def to_dict(self) -> dict:
        return {"by": self.by, "folds": self.n_folds, "column": self.column, "seed": self.seed}

    @classmethod
    def from_dict(cls, data: dict) -> FoldAssignment:
        by = data.get("by")
        if by == "column":
            return cls.by_column(str(data["column"]))
        if by == "key":
            return cls.by_key(str(data["column"]), data["folds"], data.get("seed", 0))
        if by == "position":
            return cls.by_position(data["folds"], data.get("seed", 0))
        raise InputError(f"unknown fold assignment {by!r}; expected one of {ASSIGNMENTS}.")


def file_id(path: str, partition: dict) -> str:
    """A file's id for position folds: its name under its Hive ``key=value`` folders.

    >>> file_id("/data/day=3/part-0.parquet", {"day": "3"})
    'day=3/part-0.parquet'
    """
    name = posixpath.basename(str(path).replace("\\", "/"))
    folders = [f"{key}={value}" for key, value in sorted(partition.items())]
    return "/".join([*folders, name])


def _seed(seed) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InputError(f"the fold seed must be a non-negative integer; got {seed!r}.")
    return int(seed)
