r"""Levels of categorical columns: found before the pass, applied to every batch.

**Discovery** (:func:`discover_levels`) reads only the categorical columns of
every file, in bounded batches, before the main pass: text columns are read as
dictionary arrays (``ParquetFile(..., read_dictionary=...)``), so a batch costs
the unique codes of its dictionary indices rather than hashing every string;
Hive partition columns cost nothing (their values are in the paths). Levels are
sorted, so a level first seen in the last file still gets its column and the
columns do not depend on the order of the files. A category with more than
``max_levels`` distinct values (default 1000) is refused — a column per level
would make the state ``levels²`` wide — with a pointer to absorbing it instead.

**Coding a batch** (:class:`CategoryCoder`) maps each row to the index of its
level. A value outside the known levels (new data at predict time, or a file
that arrived after the levels were fixed) is an error naming the column, the
value, the file and the row group — or, with ``unseen="reference"``, the row
is coded as the reference level and counted.

>>> import pyarrow as pa
>>> from streamreg.sources import InMemorySource
>>> from streamreg.expressions import parse_expression
>>> table = pa.table({"g": ["b", "a", None, "c", "a"]})
>>> discover_levels(InMemorySource(table), {"g": parse_expression("g")}).levels
{'g': ['a', 'b', 'c']}
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .errors import DataError, InputError
from .expressions import Expression, is_text_like
from .sources import Chunk, InMemorySource, Source

DEFAULT_MAX_LEVELS = 1000
UNSEEN_POLICIES = ("error", "reference")
_DISCOVERY_BATCH = 1 << 16
MISSING = -1  # code of a row whose category is null (the row is dropped or refused)


@dataclass
class LevelScan:
    """Sorted levels per category source, and the sources that had too many to keep."""

    levels: dict[str, list] = field(default_factory=dict)
    too_many: dict[str, int] = field(default_factory=dict)  # source → distinct values seen (> max)


def discover_levels(source: Source, sources: dict[str, Expression], *,
                    max_levels: int = DEFAULT_MAX_LEVELS, optional: Iterable[str] = (),
                    batch_size: int = _DISCOVERY_BATCH) -> LevelScan:
    """Every level of every category in ``sources`` (source code → expression), sorted.

    A source in ``optional`` (a column picked by default rather than named) with
    more than ``max_levels`` levels is reported in ``too_many`` instead of refused.
    """
    if not isinstance(max_levels, int) or max_levels < 1:
        raise InputError(f"max_levels must be a positive whole number; got {max_levels!r}.")
    optional = set(optional)
    seen: dict[str, set] = {code: set() for code in sources}
    scan = LevelScan()
    for batch, where in _category_batches(source, sources, batch_size):
        for code, expression in sources.items():
            if code in scan.too_many:
                continue
            values = seen[code]
            values.update(_distinct(expression.evaluate_arrow(batch)))
            if len(values) > max_levels:
                if code in optional:
                    scan.too_many[code] = len(values)
                    values.clear()
                    continue
                raise InputError(
                    f"the category '{code}' has more than {max_levels} levels (found "
                    f"{len(values)} by {where}); a column per level would make the model "
                    f"{len(values)}² wide. Absorb it as a fixed effect ('y ~ x | {code}', "
                    "absorb=...) or raise max_levels.")
    for code, values in seen.items():
        if code not in scan.too_many:
            scan.levels[code] = sorted(values)
    return scan


def _distinct(array) -> set:
    """The distinct non-null values of an Arrow array as Python objects (NaN is missing)."""
    if isinstance(array, pa.ChunkedArray):
        return set().union(*(_distinct(c) for c in array.chunks)) if array.num_chunks else set()
    if pa.types.is_dictionary(array.type):
        used = pc.unique(array.indices.drop_null())
        values = array.dictionary.take(used)
    else:
        values = pc.unique(array.drop_null())
    out = set(values.to_pylist())
    return {v for v in out if v == v}  # drop NaN


def _category_batches(source: Source, sources: dict[str, Expression], batch_size: int):
    """(batch, where) over the columns the categories read; text columns as dictionaries."""
    columns = list(dict.fromkeys(c for e in sources.values() for c in e.columns))
    if isinstance(source, InMemorySource):
        for batch in source.table.select(columns).to_batches(max_chunksize=batch_size):
            yield batch, source.files[0].path
        return
    partition = [c for c in columns if c in source.partition_types]
    data = [c for c in columns if c not in source.partition_types]
    for info in source.files:
        if not data:
            arrays = {c: pa.array([info.partition.get(c)], source.partition_types[c])
                      for c in partition}
            yield pa.record_batch(arrays), info.path
            continue
        text = [c for c in data if is_text_like(info.schema.field(c).type)]
        try:
            handle = pq.ParquetFile(info.location, filesystem=info.filesystem, read_dictionary=text)
            for batch in handle.iter_batches(columns=data, batch_size=batch_size):
                for c in partition:
                    value = info.partition.get(c)
                    batch = batch.append_column(c, pa.array([value] * batch.num_rows,
                                                            source.partition_types[c]))
                yield batch, info.path
        except (pa.ArrowInvalid, OSError) as exc:
            raise DataError(f"could not read the categories of {info.path}: {exc}") from exc


def _is_identity(lookup: np.ndarray) -> bool:
    """The dictionary holds the levels in level order: its indices are the codes."""
    return bool(lookup[0] == 0 and (len(lookup) == 1 or (np.diff(lookup) == 1).all()))


class CategoryCoder:
    """Level index per row for the categorical factors of a design.

    ``codes(chunk, factor)`` returns int64 codes, ``MISSING`` where the value is
    null. ``unseen="reference"`` codes values outside the levels as the factor's
    reference level and counts them in ``unseen_rows`` (by source).
    """

    def __init__(self, design, *, unseen: str = "error"):
        if unseen not in UNSEEN_POLICIES:
            raise InputError(f"unseen must be one of {', '.join(UNSEEN_POLICIES)}; got {unseen!r}.")
        self.design = design
        self.unseen = unseen
        self.unseen_rows: dict[str, int] = {}
        self._value_sets: dict[tuple, pa.Array] = {}
        self._dictionaries: dict[str, tuple] = {}

    def codes(self, chunk: Chunk, factor_code: str, batch=None) -> np.ndarray:
        factor = self.design.plan.factors[factor_code]
        batch = chunk.batch if batch is None else batch
        array = factor.expression.evaluate_arrow(batch)
        if isinstance(array, pa.ChunkedArray):
            array = array.combine_chunks()
        if pa.types.is_dictionary(array.type):
            # Map the batch's dictionary once, then gather: no value of the batch is hashed.
            lookup = self._dictionary_lookup(factor.source, array.dictionary)
            indices = array.indices
            if indices.null_count:
                indices = indices.fill_null(0)
            indices = indices.to_numpy(zero_copy_only=False)
            if not len(lookup):
                codes = np.full(len(array), -2, dtype=np.int64)
            elif _is_identity(lookup):
                # the indices are the codes (int32 as stored; joint keys widen them)
                codes = indices.copy() if array.null_count else indices
            else:
                codes = lookup[indices]
            unseen_possible = bool((lookup == -2).any())
        else:
            codes = self._index(factor.source, array)
            unseen_possible = True
        if array.null_count:
            codes[array.is_null().to_numpy(zero_copy_only=False)] = MISSING
        if unseen_possible:
            unseen = codes == -2
            if unseen.any():
                codes = self._unseen(codes, unseen, array, chunk, factor_code)
        return codes

    def _dictionary_lookup(self, source: str, dictionary: pa.Array) -> np.ndarray:
        """Level index of each dictionary entry; batches of one row group share their dictionary,
        so the last one is remembered."""
        cached = self._dictionaries.get(source)
        if cached is not None and (cached[0] is dictionary or cached[0].equals(dictionary)):
            return cached[1]
        lookup = self._index(source, dictionary)
        self._dictionaries[source] = (dictionary, lookup)
        return lookup

    def _index(self, source: str, values: pa.Array) -> np.ndarray:
        """Level index of each value; -2 for a value that is not a level (nulls: anything)."""
        key = (source, str(values.type))
        if key not in self._value_sets:
            levels = self.design.levels[source]
            try:
                self._value_sets[key] = pa.array(levels, type=values.type)
            except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
                self._value_sets[key] = pa.array(levels)
        found = pc.index_in(values, value_set=self._value_sets[key])
        return found.fill_null(-2).to_numpy(zero_copy_only=False).astype(np.int64)

    def _unseen(self, codes, unseen, array, chunk: Chunk, factor_code: str) -> np.ndarray:
        factor = self.design.plan.factors[factor_code]
        if self.unseen == "error":
            row = int(np.flatnonzero(unseen)[0])
            value = array[row].as_py()
            known = self.design.levels[factor.source]
            raise DataError(
                f"the category '{factor.source}' holds the level {value!r} in "
                f"{chunk.describe_row(row)}, which the model does not know (its "
                f"{len(known)} levels were fixed before); pass unseen='reference' to code such "
                "rows as the reference level and count them.")
        codes = codes.copy()
        codes[unseen] = self.design.references[factor_code]
        self.unseen_rows[factor.source] = self.unseen_rows.get(factor.source, 0) + int(unseen.sum())
        return codes
