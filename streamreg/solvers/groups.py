"""Group labels → dense ids, growing as labels arrive, fast for a million groups.

The within estimator (:mod:`streamreg.solvers.absorb`) keeps per-group sums in
arrays indexed by a dense id: the order in which groups were first seen. Every
batch maps its labels to those ids; a million groups over ten million rows
makes that mapping the hot spot, so :class:`GroupIndex` keeps

* for whole-number labels spanning a moderate range, a direct table
  (``id = table[label − low]``: one gather per batch);
* otherwise the known labels sorted, found with a binary search, new ones merged
  into the sorted arrays once per batch;

and the arrays of per-group statistics grow by doubling (:func:`grown`), so
appending groups costs amortized constant time.

>>> index = GroupIndex()
>>> index.ids(np.array([7, 3]))[0].tolist(), index.ids(np.array([3, 9]))[0].tolist()
([0, 1], [1, 2])
>>> index.lookup(np.array([9, 4])).tolist()
[2, -1]
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import InputError

# A direct table is used while the labels' range is at most this many entries, or four times
# the number of groups (int64 ids: 8 bytes per entry).
TABLE_RANGE = 1 << 22


def factorize(groups) -> tuple[np.ndarray, np.ndarray]:
    """``(codes, uniques)`` of a batch of group labels (Arrow array, dictionary or numpy)."""
    import pandas as pd

    if isinstance(groups, pa.ChunkedArray):
        groups = groups.combine_chunks()
    if isinstance(groups, pa.Array):
        if groups.null_count:
            raise InputError("group labels must not be missing (drop those rows first).")
        if pa.types.is_integer(groups.type):
            groups = groups.to_numpy(zero_copy_only=False)
        else:
            if not pa.types.is_dictionary(groups.type):
                groups = pc.dictionary_encode(groups)
            codes = groups.indices.to_numpy(zero_copy_only=False).astype(np.intp)
            return codes, groups.dictionary.to_numpy(zero_copy_only=False)
    codes, uniques = pd.factorize(np.asarray(groups), use_na_sentinel=True)
    if (codes < 0).any():
        raise InputError("group labels must not be missing (drop those rows first).")
    return codes.astype(np.intp, copy=False), np.asarray(uniques)


def grown(array: np.ndarray, size: int) -> np.ndarray:
    """``array`` with room for at least ``size`` rows (doubling; new rows are zero)."""
    if len(array) >= size:
        return array
    capacity = max(size, 2 * len(array), 16)
    order = (
        "F" if array.ndim > 1 and array.flags.f_contiguous and not array.flags.c_contiguous else "C"
    )
    out = np.zeros((capacity, *array.shape[1:]), dtype=array.dtype, order=order)
    out[: len(array)] = array
    return out


class GroupIndex:
    """Label → dense id in order of first appearance; see the module docstring."""

    def __init__(self, keys=None):
        self._keys = np.empty(0, dtype=object)
        self.n = 0
        self._low = None  # direct table: id of label v is _table[v - _low] (−1: unknown)
        self._table = None
        self._sorted_keys = None  # otherwise: the labels sorted, and their ids
        self._sorted_ids = None
        if keys is not None and len(keys):
            self.ids(np.asarray(keys))

    def __len__(self) -> int:
        return self.n

    @property
    def keys(self) -> np.ndarray:
        """The labels, by id."""
        return self._keys[: self.n]

    def copy(self) -> GroupIndex:
        return GroupIndex(self.keys.copy())

    @property
    def direct(self) -> bool:
        """Whether whole-number labels are found with the direct table (no hashing)."""
        return self._table is not None or self.n == 0

    def row_ids(self, labels: np.ndarray) -> np.ndarray:
        """The id of every row's label (new labels are appended first): for whole-number
        labels in the direct table, a few gathers per row and no hashing or sorting."""
        labels = np.asarray(labels)
        if (
            len(labels)
            and np.issubdtype(labels.dtype, np.integer)
            and self.direct
            and self._cover(int(labels.min()), int(labels.max()), len(labels))
        ):
            offset = labels.astype(np.int64) - self._low
            ids = self._table[offset]
            fresh = np.flatnonzero(ids < 0)
            if len(fresh):
                where = offset[fresh]
                # One row per new label: each writes its (encoded) row number, one write wins.
                self._table[where] = -2 - fresh
                firsts = fresh[-2 - self._table[where] == fresh]
                start = self.n
                self._append_keys(labels[firsts])
                self._table[offset[firsts]] = start + np.arange(len(firsts))
                ids[fresh] = self._table[where]
            return ids
        ids = self.lookup(labels)
        new = ids < 0
        if new.any():
            fresh = labels[new]
            self.ids(np.unique(fresh))
            ids[new] = self.lookup(fresh)
        return ids

    def _cover(self, low: int, high: int, rows: int) -> bool:
        """Widen the direct table to hold labels ``low … high``; False if it would be too
        wide (the index then keeps sorted labels)."""
        if self.n == 0 and self._table is None:
            self._low, self._table = low, np.full(0, -1, dtype=np.intp)
        if self._table is None:
            return False
        top = self._low + len(self._table) - 1
        new_low, new_high = min(low, self._low), max(high, top)
        span = new_high - new_low + 1
        if span > max(TABLE_RANGE, 4 * (self.n + rows)):
            if self.n == 0:
                self._table = None  # the labels go to the sorted index from the start
            return False
        if new_low < self._low or span > len(self._table):
            capacity = span if new_low < self._low else max(span, 2 * len(self._table))
            table = np.full(capacity, -1, dtype=np.intp)
            table[self._low - new_low : self._low - new_low + len(self._table)] = self._table
            self._table, self._low = table, new_low
        return True

    def _append_keys(self, fresh: np.ndarray) -> None:
        start = self.n
        if self.n == 0:
            self._keys = np.empty(max(16, len(fresh)), dtype=fresh.dtype)
        self._keys = grown(self._keys, start + len(fresh))
        self._keys[start : start + len(fresh)] = fresh
        self.n += len(fresh)

    # ------------------------------------------------------------------ lookups
    def lookup(self, uniques: np.ndarray) -> np.ndarray:
        """Ids of known labels, −1 for unknown ones (nothing is added)."""
        uniques = np.asarray(uniques)
        if self.n == 0 or len(uniques) == 0:
            return np.full(len(uniques), -1, dtype=np.intp)
        if self._table is not None:
            if not np.issubdtype(uniques.dtype, np.integer):
                return self._search(uniques)
            offset = uniques.astype(np.int64) - self._low
            inside = (offset >= 0) & (offset < len(self._table))
            out = np.full(len(uniques), -1, dtype=np.intp)
            out[inside] = self._table[offset[inside]]
            return out
        return self._search(uniques)

    def _search(self, uniques: np.ndarray) -> np.ndarray:
        if self._sorted_keys is None:
            self._build_sorted()
        keys = self._sorted_keys
        try:
            where = np.searchsorted(keys, uniques)
        except TypeError:  # labels of another type than the known ones
            where = np.searchsorted(keys.astype(object), uniques.astype(object))
        where = np.minimum(where, len(keys) - 1)
        found = keys[where] == uniques
        return np.where(found, self._sorted_ids[where], -1).astype(np.intp)

    def ids(self, uniques: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Ids of the distinct labels ``uniques`` (new ones are appended) and a mask of the new
        ones."""
        uniques = np.asarray(uniques)
        found = self.lookup(uniques)
        new = found < 0
        if new.any():
            fresh = uniques[new]
            found[new] = self.n + np.arange(len(fresh))
            self._append(fresh)
        return found, new

    # ------------------------------------------------------------------ growing
    def _append(self, fresh: np.ndarray) -> None:
        start = self.n
        if self.n == 0:
            self._keys = np.empty(max(16, len(fresh)), dtype=fresh.dtype)
        elif self._keys.dtype != fresh.dtype and self._keys.dtype != object:
            if not (
                np.issubdtype(fresh.dtype, np.integer)
                and np.issubdtype(self._keys.dtype, np.integer)
            ):
                self._keys = self._keys.astype(object)
        self._keys = grown(self._keys, start + len(fresh))
        self._keys[start : start + len(fresh)] = fresh
        self.n += len(fresh)
        ids = np.arange(start, self.n, dtype=np.intp)
        if start == 0 and np.issubdtype(fresh.dtype, np.integer):
            self._low = int(fresh.min())
            self._table = np.full(0, -1, dtype=np.intp)
        if self._table is not None and self._extend_table(fresh, ids):
            return
        self._table = None
        if self._sorted_keys is None:
            self._build_sorted()
            return
        order = np.argsort(fresh, kind="stable")
        where = np.searchsorted(self._sorted_keys, fresh[order])
        self._sorted_keys = np.insert(self._sorted_keys, where, fresh[order])
        self._sorted_ids = np.insert(self._sorted_ids, where, ids[order])

    def _extend_table(self, fresh: np.ndarray, ids: np.ndarray) -> bool:
        """Put integer labels in the direct table, widening it; False if it would be too wide."""
        if not np.issubdtype(fresh.dtype, np.integer):
            return False
        low = min(self._low, int(fresh.min()))
        high = max(self._low + len(self._table) - 1, int(fresh.max()))
        span = high - low + 1
        if span > max(TABLE_RANGE, 4 * self.n):
            return False
        if low < self._low or span > len(self._table):
            capacity = span if low < self._low else max(span, 2 * len(self._table))
            table = np.full(capacity, -1, dtype=np.intp)
            table[self._low - low : self._low - low + len(self._table)] = self._table
            self._table, self._low = table, low
        self._table[fresh.astype(np.int64) - self._low] = ids
        return True

    def _build_sorted(self) -> None:
        keys = self.keys
        order = np.argsort(keys, kind="stable")
        self._sorted_keys = keys[order]
        self._sorted_ids = order.astype(np.intp)
