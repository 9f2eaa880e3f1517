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
>>> from streamreg.io.sources import InMemorySource
>>> from streamreg.design.expressions import parse_expression
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

from ..errors import DataError, InputError, parameter
from ..io.categories import DISCOVERY_BATCH_ROWS, category_batches
from ..io.sources import Chunk, Source
from .expressions import Expression

DEFAULT_MAX_LEVELS = 1000
UNSEEN_POLICIES = ("error", "reference")
MISSING = -1  # code of a row whose category is null (the row is dropped or refused)


class LevelSet:
    """The distinct values seen of each category source, mergeable with ``+`` (a runner's
    result): a source past ``max_levels`` keeps only its count, so memory stays bounded by
    ``max_levels`` values per source whatever the data."""

    def __init__(self, sources, max_levels: int = DEFAULT_MAX_LEVELS):
        self.max_levels = max_levels
        self.values: dict[str, set] = {code: set() for code in sources}
        self.too_many: dict[str, tuple[int, str]] = {}  # source → (values seen, where)

    def add(self, code: str, values: set, where: str) -> None:
        if code in self.too_many:
            return
        seen = self.values[code]
        seen |= values
        if len(seen) > self.max_levels:
            self.too_many[code] = (len(seen), where)
            seen.clear()

    def copy(self) -> LevelSet:
        out = LevelSet(self.values, self.max_levels)
        out.values = {code: set(v) for code, v in self.values.items()}
        out.too_many = dict(self.too_many)
        return out

    def __iadd__(self, other: LevelSet) -> LevelSet:
        for code, (count, where) in other.too_many.items():
            if code not in self.too_many:
                self.too_many[code] = (count, where)
                self.values[code].clear()
        for code, values in other.values.items():
            self.add(code, values, "the merged data")
        return self

    def __add__(self, other: LevelSet) -> LevelSet:
        out = self.copy()
        out += other
        return out

    def scan(self, optional=()) -> LevelScan:
        """Sorted levels; a required source past ``max_levels`` is refused in one sentence."""
        result = LevelScan()
        for code, values in self.values.items():
            if code in self.too_many:
                count, where = self.too_many[code]
                if code in optional:
                    result.too_many[code] = count
                    continue
                raise InputError(
                    f"the category '{code}' has more than {self.max_levels} levels (found "
                    f"{count} by {where}); a column per level would make the model {count:,}² "
                    f"wide. Absorb it as a fixed effect ({parameter('absorb', code)}, or "
                    f"'y ~ x | {code}' in a formula) or raise {parameter('max_levels')}."
                )
            result.levels[code] = sorted(values)
        return result


@dataclass
class LevelScan:
    """Sorted levels per category source, and the sources that had too many to keep."""

    levels: dict[str, list] = field(default_factory=dict)
    too_many: dict[str, int] = field(default_factory=dict)  # source → distinct values seen (> max)


def check_max_levels(max_levels) -> int:
    if isinstance(max_levels, bool) or not isinstance(max_levels, int) or max_levels < 1:
        raise InputError(
            f"{parameter('max_levels')} must be a positive whole number; got {max_levels!r}."
        )
    return max_levels


def level_set(
    source: Source,
    sources: dict[str, Expression],
    *,
    max_levels: int = DEFAULT_MAX_LEVELS,
    batch_size: int = DISCOVERY_BATCH_ROWS,
) -> LevelSet:
    """The distinct values of every category in ``sources`` (source code → expression) in
    ``source``, reading only the columns they use
    (:func:`streamreg.io.categories.category_batches`)."""
    found = LevelSet(sources, check_max_levels(max_levels))
    columns = [c for e in sources.values() for c in e.columns]
    for batch, where in category_batches(source, columns, batch_size):
        for code, expression in sources.items():
            if code not in found.too_many:
                found.add(code, _distinct(expression.evaluate_arrow(batch)), where)
    return found


def discover_levels(
    source: Source,
    sources: dict[str, Expression],
    *,
    max_levels: int = DEFAULT_MAX_LEVELS,
    optional: Iterable[str] = (),
    batch_size: int = DISCOVERY_BATCH_ROWS,
) -> LevelScan:
    """Every level of every category in ``sources`` (source code → expression), sorted.

    A source in ``optional`` (a column picked by default rather than named) with
    more than ``max_levels`` levels is reported in ``too_many`` instead of refused.
    """
    return level_set(source, sources, max_levels=max_levels, batch_size=batch_size).scan(
        set(optional)
    )


def levels_part(
    source: Source,
    index: int,
    spec,
    batch_size: int,
    sources: dict,
    max_levels: int,
    *,
    on_rows=None,
) -> LevelSet:
    """A runner's task: the level set of one block (merged with ``+``)."""
    return level_set(source, sources, max_levels=max_levels)


levels_part.task_name = "levels"


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


def check_unseen(unseen) -> str:
    if unseen not in UNSEEN_POLICIES:
        raise InputError(
            f"{parameter('unseen')} must be one of {', '.join(UNSEEN_POLICIES)}; got {unseen!r}."
        )
    return unseen


def _is_identity(lookup: np.ndarray) -> bool:
    """The dictionary holds the levels in level order: its indices are the codes."""
    return bool(lookup[0] == 0 and (len(lookup) == 1 or (np.diff(lookup) == 1).all()))


class CategoryCoder:
    """Level index per row for the categorical factors of a design.

    ``codes(chunk, factor)`` returns int32 codes, ``MISSING`` where the value is
    null. ``unseen="reference"`` codes values outside the levels as the factor's
    reference level and counts them in ``unseen_rows`` (by source).
    """

    def __init__(self, design, *, unseen: str = "error", hint: str | None = None):
        check_unseen(unseen)
        self.design = design
        self.unseen = unseen
        self.hint = hint
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
                codes = np.full(len(array), -2, dtype=np.int32)
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
        # int32 codes: half the memory traffic of int64 in the gathers of every batch
        return found.fill_null(-2).to_numpy(zero_copy_only=False).astype(np.int32)

    def _unseen(self, codes, unseen, array, chunk: Chunk, factor_code: str) -> np.ndarray:
        factor = self.design.plan.factors[factor_code]
        if self.unseen == "error":
            row = int(np.flatnonzero(unseen)[0])
            value = array[row].as_py()
            known = self.design.levels[factor.source]
            hint = self.hint or (
                f"pass {parameter('unseen', 'reference')} to predict such rows with the "
                "reference level and count them"
            )
            raise DataError(
                f"the category '{factor.source}' holds the level {value!r} in "
                f"{chunk.describe_row(row)}, which the model does not know (its "
                f"{len(known)} levels were fixed before); {hint}."
            )
        codes = codes.copy()
        codes[unseen] = self.design.references[factor_code]
        self.unseen_rows[factor.source] = self.unseen_rows.get(factor.source, 0) + int(unseen.sum())
        return codes
