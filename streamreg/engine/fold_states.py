r"""One mergeable state per cross-validation fold, accumulated in the one pass over the data.

:class:`FoldStates` keeps ``K`` states of any state class, updated from a batch by
sorting its rows by fold once; fold ``k``'s training state is the merge of the others,
built from prefix and suffix merges (``3K`` merges for all ``K``, never a subtraction).
Fold states merge fold by fold (``+``/``+=``), so a Dask cluster, another chunking or a
resumed job ends with the same states — bit-identical for the exact state.

The pass that fills them is :mod:`streamreg.engine.fold_scan`.

>>> import numpy as np
>>> from streamreg.solvers.moments import MomentState
>>> from streamreg.engine.fold_ids import position_folds
>>> z = np.column_stack([np.arange(10.0), 2 * np.arange(10.0) + 1])
>>> folds = FoldStates.empty(MomentState, ["x", "y"], n_folds=3)
>>> _ = folds.update(z[:6], None, position_folds("a.parquet", 0, 6, 3))
>>> _ = folds.update(z[6:], None, position_folds("a.parquet", 6, 4, 3))
>>> sum(s.n_rows for s in folds.states), folds.total().n_rows
(10, 10)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from ..errors import InputError, ModelFormatError, parameter
from .fold_ids import MAX_FOLDS, FoldAssignment, check_n_folds
from .merge import Mergeable

FOLDS_FORMAT = "streamreg.fold_states"
FOLDS_FORMAT_VERSION = 1


class FoldStates(Mergeable):
    """One state per fold (in label order) of a state class with ``from_arrays``, ``empty``,
    ``copy`` and ``+=``.

    ``FoldStates.empty(cls, names, n_folds=K)`` has the fixed labels ``0..K−1`` (the
    hashed assignments); ``n_folds=None`` finds the labels of a fold column.
    ``origin`` says where the folds came from, for messages.
    """

    __slots__ = ("names", "state_type", "n_folds", "origin", "_states")

    def __init__(
        self,
        state_type,
        names: Sequence[str],
        *,
        n_folds: int | None = None,
        origin: str = "folds",
        states: dict | None = None,
    ):
        self.state_type = state_type
        self.names = tuple(names)
        self.n_folds = None if n_folds is None else check_n_folds(n_folds)
        self.origin = origin
        if states is None:
            states = {} if n_folds is None else {k: state_type.empty(names) for k in range(n_folds)}
        self._states = dict(sorted(states.items()))

    @classmethod
    def empty(
        cls, state_type, names: Sequence[str], *, n_folds: int | None = None, origin: str = "folds"
    ) -> FoldStates:
        return cls(state_type, names, n_folds=n_folds, origin=origin)

    @classmethod
    def for_assignment(cls, state_type, names: Sequence[str], assignment: FoldAssignment):
        return cls(state_type, names, n_folds=assignment.n_folds, origin=assignment.describe())

    # ------------------------------------------------------------ views
    @property
    def labels(self) -> tuple:
        return tuple(self._states)

    @property
    def states(self) -> tuple:
        return tuple(self._states.values())

    @property
    def n_rows(self) -> int:
        return sum(state.n_rows for state in self._states.values())

    @property
    def weight_sum(self) -> float:
        return float(sum(state.weight_sum for state in self._states.values()))

    def total(self):
        """The state of all rows (the merge of every fold, in label order)."""
        out = self.state_type.empty(self.names)
        for state in self._states.values():
            out += state
        return out

    def training_states(self) -> list:
        """Fold ``k``'s training state (all other folds) for every ``k``, by prefix and suffix
        merges: ``prefix[k] + suffix[k+1]``, each a sum of states, never a difference."""
        states = self.states
        prefix = [self.state_type.empty(self.names)]
        for state in states[:-1]:
            prefix.append(prefix[-1] + state)
        suffix = [self.state_type.empty(self.names)]
        for state in reversed(states[1:]):
            suffix.append(state + suffix[-1])
        suffix.reverse()
        return [prefix[k] + suffix[k] for k in range(len(states))]

    def shift_hint(self):
        """A shift for the next batch shared by every fold: the mean of the fullest fold."""
        fullest = max(self._states.values(), key=lambda s: s.weight_sum, default=None)
        return None if fullest is None else fullest.shift_hint()

    def is_finite(self) -> bool:
        return all(state.is_finite() for state in self._states.values())

    def check_complete(self, n_folds: int | None = None) -> None:
        """At least two folds, none without rows or weight, and ``n_folds`` of them if given."""
        labels = self.labels
        if n_folds is not None:
            check_n_folds(n_folds)
            if self.n_folds is None and len(labels) != n_folds:
                shown = ", ".join(map(str, labels[:10])) + (", …" if len(labels) > 10 else "")
                raise InputError(
                    f"the {self.origin} has {len(labels)} distinct values ({shown}), but "
                    f"{parameter('folds', n_folds)} expects {n_folds}; give "
                    f"{parameter('folds', len(labels))} to use them all."
                )
        if len(labels) < 2:
            raise InputError(
                f"cross-validation needs at least 2 folds; the {self.origin} has "
                f"{len(labels)} distinct value(s)."
            )
        total_rows = sum(state.n_rows for state in self._states.values())
        if self.n_folds is not None and self.n_folds > total_rows:
            raise InputError(
                f"{parameter('folds', self.n_folds)} asks for more folds than the {total_rows} "
                "usable rows of the data."
            )
        for label, state in self._states.items():
            if state.n_rows == 0 or not state.weight_sum > 0:
                raise InputError(
                    f"fold {label!r} of the {self.origin} has no rows with positive weight; "
                    "use fewer folds or another assignment."
                )

    # ------------------------------------------------------------ building
    def update(
        self, z: np.ndarray, weights: np.ndarray | None, folds: np.ndarray, *, shift=None
    ) -> FoldStates:
        """Add a batch (``z`` rows × columns, target last) whose row ``i`` is in fold ``folds[i]``.

        Rows are sorted by fold once (one column-major copy of the batch), then each
        fold's contiguous block becomes one batch state merged into that fold's state.
        With ``shift``, ``z`` already holds the columns minus ``shift`` (as the engine
        copies them out of Arrow) and every fold's batch state is built on that shift.
        """
        z = np.asarray(z, dtype=np.float64)
        folds = np.asarray(folds)
        if folds.ndim != 1 or z.ndim != 2 or len(folds) != z.shape[0]:
            raise InputError(
                f"got {folds.shape[0] if folds.ndim == 1 else folds.shape} fold ids "
                f"for a batch of {z.shape[0] if z.ndim else 0} rows."
            )
        if weights is not None:
            weights = np.asarray(weights, dtype=np.float64)
            if weights.shape != (z.shape[0],):
                raise InputError(f"got {weights.shape} weights for a batch of {z.shape[0]} rows.")
        if len(folds) == 0:
            return self
        labels, order, starts, ends = self.batch_order(folds)
        if order is None:
            return self.add_sorted(z, weights, labels, starts, ends, shift=shift, own=False)
        ordered = np.empty(z.shape, order="F")  # column by column: ~3× faster than z[order]
        for j in range(z.shape[1]):
            np.take(z[:, j], order, out=ordered[:, j], mode="wrap")  # valid: no bounds checks
        ordered_w = None if weights is None else weights[order]
        return self.add_sorted(ordered, ordered_w, labels, starts, ends, shift=shift)

    def batch_order(self, folds: np.ndarray):
        """``(labels, order, starts, ends)``: the batch's labels and the row order that makes
        each label's rows contiguous (``order`` None when the batch has one label)."""
        labels, inverse = self._batch_labels(folds)
        if len(labels) == 1:
            return labels, None, [0], [len(folds)]
        order = np.argsort(inverse, kind="stable")
        ends = np.cumsum(np.bincount(inverse, minlength=len(labels)))
        starts = np.concatenate([[0], ends[:-1]])
        return labels, order, starts.tolist(), ends.tolist()

    def add_sorted(self, z, weights, labels, starts, ends, *, shift=None, own: bool = True):
        """Add a batch already in fold order: rows ``starts[i]:ends[i]`` are in ``labels[i]``
        (``own``: the arrays may be overwritten)."""
        extra = {} if shift is None else {"shift": shift, "preshifted": True}
        for label, a, b in zip(labels, starts, ends):
            part = self.state_type.from_arrays(
                z[a:b],
                None if weights is None else weights[a:b],
                names=self.names,
                overwrite=own,
                **extra,
            )
            current = self._states.get(label)
            if current is None:
                self._states[label] = part
            else:
                current += part
        if self.n_folds is None:
            self._states = dict(sorted(self._states.items()))
        return self

    def _batch_labels(self, folds: np.ndarray):
        """The batch's labels (sorted) and each row's index into them (a small unsigned int,
        so that the stable argsort is numpy's O(n) radix sort)."""
        if self.n_folds is not None:
            if folds.dtype.kind not in "iu":
                raise InputError(
                    f"fold ids must be integers 0..{self.n_folds - 1}; got {folds.dtype}."
                )
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
            raise InputError(
                f"the {self.origin} has more than {MAX_FOLDS} distinct values; "
                "is it an id column? Use it as a fold key instead."
            )
        return labels, inverse.reshape(-1).astype(_index_type(len(labels)))

    def _check_label_kind(self, labels) -> None:
        kinds = {type(v) for v in labels} | {type(v) for v in list(self._states)[:1]}
        if len(kinds) > 1:
            raise InputError(f"the {self.origin} mixes integer and string labels.")

    # ------------------------------------------------------------ merging
    def copy(self) -> FoldStates:
        return FoldStates(
            self.state_type,
            self.names,
            n_folds=self.n_folds,
            origin=self.origin,
            states={label: state.copy() for label, state in self._states.items()},
        )

    def __iadd__(self, other: FoldStates) -> FoldStates:
        """Fold ``other``'s rows in, fold by fold."""
        if (
            not isinstance(other, FoldStates)
            or other.names != self.names
            or other.state_type is not self.state_type
            or other.n_folds != self.n_folds
        ):
            raise InputError(
                "cannot merge fold states over different columns, state kinds or fold counts."
            )
        self._check_label_kind(list(other._states)[:1])
        for label, state in other._states.items():
            if label in self._states:
                self._states[label] += state
            else:
                self._states[label] = state.copy()
        if self.n_folds is None:
            self._states = dict(sorted(self._states.items()))
        return self

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, FoldStates):
            return NotImplemented
        return (
            self.names == other.names
            and self.n_folds == other.n_folds
            and self.labels == other.labels
            and self.states == other.states
        )

    __hash__ = None

    def __repr__(self) -> str:
        return (
            f"FoldStates({self.state_type.__name__}, folds={list(self.labels)}, "
            f"rows={[s.n_rows for s in self.states]})"
        )

    # ------------------------------------------------------------ plain form
    def to_dict(self) -> dict:
        """A JSON-ready dict: the labels and one plain state per fold."""
        return {
            "format": FOLDS_FORMAT,
            "format_version": FOLDS_FORMAT_VERSION,
            "origin": self.origin,
            "n_folds": self.n_folds,
            "state_format": self.state_type.FORMAT,
            "names": list(self.names),
            "labels": list(self.labels),
            "states": [state.to_dict() for state in self.states],
        }

    @classmethod
    def from_dict(
        cls, data: dict, *, parse_state: Callable, where: str = "fold states"
    ) -> FoldStates:
        """Validate and rebuild fold states written by :meth:`to_dict`; ``parse_state`` rebuilds
        one saved state (``streamreg.solvers.state_from_dict``)."""
        if not isinstance(data, dict) or data.get("format") != FOLDS_FORMAT:
            raise ModelFormatError(f"{where} is not a streamreg fold-state file.")
        if data.get("format_version") != FOLDS_FORMAT_VERSION:
            raise ModelFormatError(
                f"{where} has fold-state format version {data.get('format_version')!r}; "
                f"this streamreg reads version {FOLDS_FORMAT_VERSION}."
            )
        try:
            names, labels, states = data["names"], data["labels"], data["states"]
            n_folds, origin, state_format = data["n_folds"], data["origin"], data["state_format"]
        except KeyError as exc:
            raise ModelFormatError(f"{where}: the field {exc.args[0]!r} is missing.") from exc
        if not isinstance(labels, list) or not isinstance(states, list) or not states:
            raise ModelFormatError(f"{where}: 'labels' and 'states' must be non-empty lists.")
        if len(labels) != len(states):
            raise ModelFormatError(f"{where}: 'labels' and 'states' must have equal lengths.")
        if len({type(v) for v in labels}) > 1 or not all(
            isinstance(v, (int, str)) and not isinstance(v, bool) for v in labels
        ):
            raise ModelFormatError(f"{where}: 'labels' must be all integers or all strings.")
        if n_folds is not None and labels != list(range(n_folds)):
            raise ModelFormatError(
                f"{where}: with n_folds={n_folds!r} the labels must be 0..n_folds-1."
            )
        parsed = [
            parse_state(s, where=f"{where}, fold {label!r}") for label, s in zip(labels, states)
        ]
        state_type = type(parsed[0])
        if state_type.FORMAT != state_format or any(
            type(s) is not state_type or s.names != tuple(names) for s in parsed
        ):
            raise ModelFormatError(
                f"{where}: every fold state must be a {state_format} over {names}."
            )
        try:
            return cls(
                state_type,
                names,
                n_folds=n_folds,
                origin=str(origin),
                states=dict(zip(labels, parsed)),
            )
        except InputError as exc:
            raise ModelFormatError(f"{where}: {exc}") from None


def _index_type(count: int):
    return np.uint8 if count <= 256 else np.uint16


def _plain_label(value):
    return value.item() if isinstance(value, np.generic) else value
