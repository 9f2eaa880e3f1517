r"""Cross-validation folds: which fold a row belongs to, and one mergeable state per fold.

A row's fold depends only on the row, never on the batch, file order or partition
it arrived in, so a rerun, another chunking or a Dask cluster assigns it the same fold:

* **fold column** (:func:`fold_labels`): the user's labels, integers or strings. Fold
  ``k`` is the ``k``-th smallest label among all labels seen (glmnet's ``foldid``
  ``1..K`` and ids ``0..K−1`` both work); the labels are discovered in the pass.
* **key column** (:func:`key_folds`): ``fold = h(key) mod K`` with ``h`` pandas'
  ``pd.util.hash_array`` (SipHash with a fixed key for strings, a 64-bit mixer for
  numbers; deterministic across runs and machines). Integers of any width hash alike;
  dates, timestamps (as nanoseconds) and floats (as their bits) are accepted too.
  Equal keys share a fold (grouped folds).
* **position** (:func:`position_folds`): ``fold = h(row index within file ⊕ h(file id)) mod K``,
  where the file id is a string the caller chooses (the path relative to the data root).

:class:`FoldStates` keeps ``K`` states, updated from a batch by sorting its rows by
fold once; fold ``k``'s training state is the merge of the others, built from
prefix and suffix merges (``3K`` merges for all ``K``, no subtraction). The
validation error of any ``(β, b)`` on fold ``k`` comes from that fold's moments
(:func:`validation_mse`).

>>> import numpy as np
>>> from streamreg.state import MomentState
>>> z = np.column_stack([np.arange(10.0), 2 * np.arange(10.0) + 1])
>>> folds = FoldStates.empty(MomentState, ["x", "y"], n_folds=3)
>>> _ = folds.update(z[:6], None, position_folds("a.parquet", 0, 6, 3))
>>> _ = folds.update(z[6:], None, position_folds("a.parquet", 6, 4, 3))
>>> sum(s.n_rows for s in folds.states), folds.total().n_rows
(10, 10)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .errors import InputError, ModelFormatError

FOLDS_FORMAT = "streamreg.fold_states"
FOLDS_FORMAT_VERSION = 1
# A fold column with more distinct values than this is almost surely an id column.
MAX_FOLDS = 1000


def check_n_folds(n_folds, n_rows: int | None = None) -> int:
    """``folds`` is an integer from 2 to ``MAX_FOLDS`` and (if known) at most the row count."""
    if isinstance(n_folds, bool) or not isinstance(n_folds, (int, np.integer)) or n_folds < 2:
        raise InputError(f"folds must be an integer of at least 2; got {n_folds!r}.")
    if n_folds > MAX_FOLDS:
        raise InputError(f"folds must be at most {MAX_FOLDS}; got {n_folds}.")
    if n_rows is not None and n_folds > n_rows:
        raise InputError(f"folds={n_folds} exceeds the {n_rows} rows of the data.")
    return int(n_folds)


# --------------------------------------------------------------------------- assignment
def _as_arrow(values) -> pa.Array:
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    elif isinstance(values, pd.Series):
        values = pa.Array.from_pandas(values)
    elif not isinstance(values, pa.Array):
        values = pa.array(np.asarray(values) if not isinstance(values, list) else values)
    if pa.types.is_dictionary(values.type):
        values = values.dictionary_decode()
    return values


def _refuse_nulls(values: pa.Array, what: str) -> None:
    nulls = values.null_count
    if nulls == 0 and pa.types.is_floating(values.type):
        nulls = int(pc.sum(pc.is_nan(values)).as_py() or 0)
    if nulls:
        first = int(np.flatnonzero(np.asarray(pc.is_null(values, nan_is_null=True)))[0])
        raise InputError(f"{what} has {nulls} missing value(s) (first at row {first} of the batch); "
                         "every row needs a fold.")


def fold_labels(values, *, column: str = "fold") -> np.ndarray:
    """The labels of a user fold column as int64 or str values; refuses nulls and other types.

    Floats are accepted when every value is a whole number (a pandas integer column
    that went through NaN). Fold ``k`` is the ``k``-th smallest label; see the module.

    >>> fold_labels([3, 1, 2, 1]).tolist()
    [3, 1, 2, 1]
    """
    array = _as_arrow(values)
    what = f"fold column '{column}'"
    _refuse_nulls(array, what)
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


def _key_array(values, column: str) -> np.ndarray:
    """Canonical numpy values of a key column: equal keys give equal arrays across files."""
    array = _as_arrow(values)
    what = f"fold key '{column}'"
    _refuse_nulls(array, what)
    kind = array.type
    if pa.types.is_boolean(kind) or (pa.types.is_integer(kind) and kind != pa.uint64()):
        return np.asarray(pc.cast(array, pa.int64()).to_numpy(zero_copy_only=False))
    if kind == pa.uint64():
        return array.to_numpy(zero_copy_only=False)  # values < 2**63 hash as the same int64
    if pa.types.is_floating(kind):
        return array.to_numpy(zero_copy_only=False).astype(np.float64) + 0.0  # −0.0 → 0.0
    if pa.types.is_date(kind):
        return np.asarray(pc.cast(pc.cast(array, pa.date32()), pa.int32()).to_numpy(
            zero_copy_only=False), dtype=np.int64)
    if pa.types.is_timestamp(kind):
        try:
            nanos = pc.cast(array, pa.timestamp("ns", kind.tz))
        except pa.ArrowInvalid:
            raise InputError(f"{what} holds a timestamp outside the years 1677-2262.") from None
        return np.asarray(pc.cast(nanos, pa.int64()).to_numpy(zero_copy_only=False))
    if pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_binary(kind) \
            or pa.types.is_large_binary(kind):
        return array.to_numpy(zero_copy_only=False)
    raise InputError(f"{what} must hold integers, strings, booleans, dates, timestamps or floats; "
                     f"it is {kind}.")


def _mix(hashes: np.ndarray, seed: int) -> np.ndarray:
    if seed == 0:
        return hashes
    salt = pd.util.hash_array(np.array([seed], dtype=np.int64))[0]
    return pd.util.hash_array(hashes ^ salt)


def key_folds(values, n_folds: int, *, column: str = "key", seed: int = 0) -> np.ndarray:
    """Fold ids ``h(key) mod K`` (int64 in ``0..K−1``) of a key column; see the module.

    >>> a = key_folds(["u1", "u2", "u3", "u1"], 3)
    >>> bool(a[0] == a[3]), bool(((0 <= a) & (a < 3)).all())
    (True, True)
    """
    k = check_n_folds(n_folds)
    hashes = pd.util.hash_array(_key_array(values, column))
    return (_mix(hashes, seed) % np.uint64(k)).astype(np.int64)


def position_folds(file_id: str, row_start: int, n_rows: int, n_folds: int, *,
                   seed: int = 0) -> np.ndarray:
    """Fold ids of rows ``row_start … row_start + n_rows − 1`` of the file ``file_id``.

    Rows are numbered within the file before any row is dropped for missing values,
    so the ids of a batch are taken before filtering and filtered with the same mask.
    """
    k = check_n_folds(n_folds)
    if not isinstance(file_id, str):
        raise InputError(f"the file id for position folds must be a string; got {file_id!r}.")
    if row_start < 0 or n_rows < 0:
        raise InputError(f"row positions must be non-negative; got start {row_start}, count {n_rows}.")
    salt = pd.util.hash_array(np.array([file_id], dtype=object))[0]
    rows = np.arange(row_start, row_start + n_rows, dtype=np.uint64)
    return (_mix(pd.util.hash_array(rows ^ salt), seed) % np.uint64(k)).astype(np.int64)


# --------------------------------------------------------------------------- states
class FoldStates:
    """One state per fold (in label order) of any state class with ``from_arrays``,
    ``merge`` and ``empty``.

    ``FoldStates.empty(cls, names, n_folds=K)`` has the fixed labels ``0..K−1`` (the
    hashed assignments); ``n_folds=None`` discovers labels from a fold column.
    ``origin`` says where the folds came from, for messages.
    """

    __slots__ = ("names", "state_type", "n_folds", "origin", "_states")

    def __init__(self, state_type, names: Sequence[str], *, n_folds: int | None = None,
                 origin: str = "folds", states: dict | None = None):
        self.state_type = state_type
        self.names = tuple(names)
        self.n_folds = None if n_folds is None else check_n_folds(n_folds)
        self.origin = origin
        if states is None:
            states = {} if n_folds is None else {k: state_type.empty(names) for k in range(n_folds)}
        self._states = dict(sorted(states.items()))

    @classmethod
    def empty(cls, state_type, names: Sequence[str], *, n_folds: int | None = None,
              origin: str = "folds") -> FoldStates:
        return cls(state_type, names, n_folds=n_folds, origin=origin)

    # ------------------------------------------------------------ views
    @property
    def labels(self) -> tuple:
        return tuple(self._states)

    @property
    def states(self) -> tuple:
        return tuple(self._states.values())

    def total(self):
        """The state of all rows (the merge of every fold)."""
        out = self.state_type.empty(self.names)
        for state in self._states.values():
            out = out.merge(state)
        return out

    def training_states(self) -> list:
        """Fold ``k``'s training state (all other folds) for every ``k``, by prefix and suffix
        merges: ``prefix[k] + suffix[k+1]``, each a sum of states, never a difference."""
        states = self.states
        prefix = [self.state_type.empty(self.names)]
        for state in states[:-1]:
            prefix.append(prefix[-1].merge(state))
        suffix = [self.state_type.empty(self.names)]
        for state in reversed(states[1:]):
            suffix.append(state.merge(suffix[-1]))
        suffix.reverse()
        return [prefix[k].merge(suffix[k]) for k in range(len(states))]

    def check_complete(self, n_folds: int | None = None) -> None:
        """At least two folds, none without rows or weight, and ``n_folds`` of them if given."""
        labels = self.labels
        if n_folds is not None:
            check_n_folds(n_folds)
            if self.n_folds is None and len(labels) != n_folds:
                shown = ", ".join(map(str, labels[:10])) + (", …" if len(labels) > 10 else "")
                raise InputError(f"the {self.origin} has {len(labels)} distinct values ({shown}); "
                                 f"folds={n_folds} expects {n_folds}.")
        if len(labels) < 2:
            raise InputError(f"cross-validation needs at least 2 folds; the {self.origin} has "
                             f"{len(labels)} distinct value(s).")
        total_rows = sum(state.n_rows for state in self._states.values())
        if self.n_folds is not None and self.n_folds > total_rows:
            raise InputError(f"folds={self.n_folds} exceeds the {total_rows} rows of the data.")
        for label, state in self._states.items():
            if state.n_rows == 0 or not state.weight_sum > 0:
                raise InputError(f"fold {label!r} of the {self.origin} has no rows with positive "
                                 "weight; use fewer folds or another assignment.")

    # ------------------------------------------------------------ building
    def update(self, z: np.ndarray, weights: np.ndarray | None, folds: np.ndarray) -> FoldStates:
        """Add a batch (``z`` rows × columns, target last) whose row ``i`` is in fold ``folds[i]``.

        Rows are sorted by fold once (one column-major copy of the batch), then each
        fold's contiguous block becomes one batch state merged into that fold's state.
        """
        z = np.asarray(z, dtype=np.float64)
        folds = np.asarray(folds)
        if folds.ndim != 1 or z.ndim != 2 or len(folds) != z.shape[0]:
            raise InputError(f"got {folds.shape[0] if folds.ndim == 1 else folds.shape} fold ids "
                             f"for a batch of {z.shape[0] if z.ndim else 0} rows.")
        if weights is not None:
            weights = np.asarray(weights, dtype=np.float64)
            if weights.shape != (z.shape[0],):
                raise InputError(f"got {weights.shape} weights for a batch of {z.shape[0]} rows.")
        if len(folds) == 0:
            return self
        labels, inverse = self._batch_labels(folds)
        if len(labels) == 1:
            blocks = [(labels[0], z, weights, False)]
        else:
            order = np.argsort(inverse, kind="stable")
            ends = np.cumsum(np.bincount(inverse, minlength=len(labels)))
            starts = np.concatenate([[0], ends[:-1]])
            ordered = np.empty(z.shape, order="F")  # column by column: ~3× faster than z[order]
            for j in range(z.shape[1]):
                np.take(z[:, j], order, out=ordered[:, j])
            ordered_w = None if weights is None else weights[order]
            blocks = [(label, ordered[a:b], None if ordered_w is None else ordered_w[a:b], True)
                      for label, a, b in zip(labels, starts, ends)]
        for label, block, block_w, own in blocks:
            part = self.state_type.from_arrays(block, block_w, names=self.names, overwrite=own)
            current = self._states.get(label)
            self._states[label] = part if current is None else current.merge(part)
        if self.n_folds is None:
            self._states = dict(sorted(self._states.items()))
        return self

    def _batch_labels(self, folds: np.ndarray):
        """The batch's labels (sorted) and each row's index into them (a small unsigned int,
        so that the stable argsort is numpy's O(n) radix sort)."""
        if self.n_folds is not None:
            if folds.dtype.kind not in "iu":
                raise InputError(f"fold ids must be integers 0..{self.n_folds - 1}; got {folds.dtype}.")
            low, high = int(folds.min()), int(folds.max())
            if low < 0 or high >= self.n_folds:
                bad = low if low < 0 else high
                raise InputError(f"fold id {bad} is outside 0..{self.n_folds - 1}.")
            present = np.flatnonzero(np.bincount(folds, minlength=self.n_folds))
            if len(present) == self.n_folds:
                return list(range(self.n_folds)), folds.astype(_index_type(self.n_folds))
            lookup = np.zeros(self.n_folds, dtype=_index_type(self.n_folds))
            lookup[present] = np.arange(len(present))
            return present.tolist(), lookup[folds]
        labels, inverse = np.unique(folds, return_inverse=True)
        labels = [_plain_label(v) for v in labels]
        self._check_label_kind(labels)
        if len(set(self._states) | set(labels)) > MAX_FOLDS:
            raise InputError(f"the {self.origin} has more than {MAX_FOLDS} distinct values; "
                             "is it an id column? Use it as a fold key instead.")
        return labels, inverse.reshape(-1).astype(_index_type(len(labels)))

    def _check_label_kind(self, labels) -> None:
        kinds = {type(v) for v in labels} | {type(v) for v in list(self._states)[:1]}
        if len(kinds) > 1:
            raise InputError(f"the {self.origin} mixes integer and string labels.")

    # ------------------------------------------------------------ merging
    def merge(self, other: FoldStates) -> FoldStates:
        """The fold states of the union of both row sets (fold by fold)."""
        if not isinstance(other, FoldStates) or other.names != self.names \
                or other.state_type is not self.state_type or other.n_folds != self.n_folds:
            raise InputError("cannot merge fold states over different columns, state kinds or fold counts.")
        self._check_label_kind(list(other._states)[:1])
        states = dict(self._states)
        for label, state in other._states.items():
            states[label] = state.copy() if label not in states else states[label].merge(state)
        return FoldStates(self.state_type, self.names, n_folds=self.n_folds, origin=self.origin,
                          states=states)

    __add__ = merge

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, FoldStates):
            return NotImplemented
        return (self.names == other.names and self.n_folds == other.n_folds
                and self.labels == other.labels and self.states == other.states)

    __hash__ = None

    # ------------------------------------------------------------ plain form
    def to_dict(self) -> dict:
        """A JSON-ready dict: the labels and one plain state per fold."""
        return {
            "format": FOLDS_FORMAT,
            "format_version": FOLDS_FORMAT_VERSION,
            "origin": self.origin,
            "n_folds": self.n_folds,
            "state_format": self.state_type.empty(self.names).to_dict()["format"],
            "names": list(self.names),
            "labels": list(self.labels),
            "states": [state.to_dict() for state in self.states],
        }

    @classmethod
    def from_dict(cls, data: dict, *, where: str = "fold states") -> FoldStates:
        """Validate and rebuild fold states written by :meth:`to_dict`."""
        from .solvers import state_from_dict
        from .state import check_format

        check_format(data, FOLDS_FORMAT, FOLDS_FORMAT_VERSION, "fold-state file", where)
        try:
            names, labels, states = data["names"], data["labels"], data["states"]
            n_folds, origin, state_format = data["n_folds"], data["origin"], data["state_format"]
        except KeyError as exc:
            raise ModelFormatError(f"{where}: the field {exc.args[0]!r} is missing.") from exc
        if not isinstance(labels, list) or not isinstance(states, list) or len(labels) != len(states):
            raise ModelFormatError(f"{where}: 'labels' and 'states' must be lists of equal length.")
        if len({type(v) for v in labels}) > 1 or not all(
                isinstance(v, (int, str)) and not isinstance(v, bool) for v in labels):
            raise ModelFormatError(f"{where}: 'labels' must be all integers or all strings.")
        if n_folds is not None and labels != list(range(n_folds)):
            raise ModelFormatError(f"{where}: with n_folds={n_folds!r} the labels must be 0..n_folds-1.")
        state_type = _state_class(state_format, where)
        parsed = [state_from_dict(s, where=f"{where}, fold {label!r}") for label, s in zip(labels, states)]
        if any(type(s) is not state_type or s.names != tuple(names) for s in parsed):
            raise ModelFormatError(f"{where}: every fold state must be a {state_format} over {names}.")
        return cls(state_type, names, n_folds=n_folds, origin=str(origin),
                   states=dict(zip(labels, parsed)))


def _index_type(count: int):
    return np.uint8 if count <= 256 else np.uint16


def _plain_label(value):
    return value.item() if isinstance(value, np.generic) else value


def _state_class(state_format: str, where: str):
    from .qr import QRState
    from .state import MomentState

    if state_format == "streamreg.exact_state":
        from .exact import ExactState

        return ExactState
    kinds = {"streamreg.moment_state": MomentState, "streamreg.qr_state": QRState}
    if state_format not in kinds:
        raise ModelFormatError(f"{where}: unknown state format {state_format!r}.")
    return kinds[state_format]


# --------------------------------------------------------------------------- validation error
def validation_mse(state, coefs: np.ndarray, intercepts=None, *, train_mean=None) -> np.ndarray:
    r"""Weighted mean squared error ``Σw(y − xᵀβ − b)² / Σw`` of each ``(β, b)`` on ``state``'s rows.

    With ``u = [β; −1]`` over ``z = [x; y]`` and ``δ = μ_y − μ_xᵀβ − b`` the mean residual,
    ``Σw r² = uᵀMu + n·δ²`` (``M`` the centered co-moments, ``n = Σw``), so the error is
    exact from the fold's moments alone. ``coefs`` is ``(models, p)``. Give either the
    ``intercepts`` or ``train_mean`` (``(hi, lo)`` double-double means of the training
    columns): then ``b = μ̄_y − μ̄_xᵀβ`` is implied and ``δ`` is taken from mean
    differences, which keeps its digits when columns carry large offsets. Unweighted,
    ``n`` is the row count: scikit-learn's ``mse_path_`` entries (weighted: ``np.average``
    of squared residuals with the test weights).

    >>> from streamreg.state import MomentState
    >>> z = np.array([[0.0, 1.0], [1.0, 2.0], [2.0, 4.0]])
    >>> mse = validation_mse(MomentState.from_arrays(z, names=["x", "y"]), [[1.5]], [1.0])
    >>> round(float(mse[0]), 12)  # residuals 0, −0.5, 0
    0.083333333333
    """
    coefs = np.atleast_2d(np.asarray(coefs, dtype=np.float64))
    n = float(state.weight_sum)
    if not n > 0:
        raise InputError("a validation fold has no rows with positive weight.")
    moments = np.asarray(state.comoment, dtype=np.float64)
    p = moments.shape[0] - 1
    if coefs.shape[1] != p:
        raise InputError(f"got {coefs.shape[1]} coefficients for a fold with {p} features.")
    u = np.column_stack([coefs, -np.ones(len(coefs))])
    spread = np.einsum("ij,jk,ik->i", u, moments, u)
    hi, lo = np.asarray(state.mean), np.asarray(state.mean_lo)
    if train_mean is not None:
        diff = (hi - np.asarray(train_mean[0])) + (lo - np.asarray(train_mean[1]))
        delta = diff[p] - coefs @ diff[:p]
    else:
        if intercepts is None:
            raise InputError("give the intercepts or the training means.")
        intercepts = np.broadcast_to(np.asarray(intercepts, dtype=np.float64), (len(coefs),))
        mean = hi + lo
        delta = mean[p] - coefs @ mean[:p] - intercepts
    return np.maximum(spread, 0.0) / n + delta**2
