r"""Moment states from group sums: indicator columns are never materialized.

See :mod:`streamreg.design.encoding` for the formulas. Here a *signature* names one
vector of per-row weights — ``w`` times a product of numeric factors, times one
shifted numeric column or not — and a *key* a set of categorical factors (in
the encoder's canonical order). Every Gram entry that involves an indicator
column is a cell of ``bincount(key codes, signature vector)``. All keys asked
of one signature are served by one ``bincount`` over their union when the
union has at most ``CELL_LIMIT`` cells (a few hundred KiB, cache-resident), the
smaller tables being its margins; otherwise each key gets its own, and a key
too large for a dense table (more than ``DENSE_CELLS`` cells) is aggregated by
sorting. Where each cell lands in the Gram is worked out once per design
(:class:`_Plan`), so a batch costs one pass per signature over its rows — ``d + 1``
passes for ``d`` numeric columns when every category enters as a main effect —
plus work proportional to the number of cells, never to rows × levels.

:class:`GroupedSums` accumulates a whole pass (or a stretch of it) about one
fixed shift — the first batch's means of the numeric columns — so a batch adds
into the sums in place and the ``O(columns²)`` conversion to central moments
happens once, in :meth:`GroupedSums.flush`. When the rows' mean drifts so far
from that shift that converting the sums would cancel digits (``S > 16 M`` for a
numeric column), the sums so far are set aside as a
:class:`~streamreg.solvers.moments.MomentState` and the next batch's mean becomes the shift,
as :func:`streamreg.solvers.moments._batch_moments` recentres.

>>> import numpy as np, pyarrow as pa
>>> from streamreg.design.coding import DesignPlan
>>> from streamreg.design.encoding import BatchEncoder
>>> from streamreg.design.formula import parse_formula
>>> from streamreg.io.sources import InMemorySource
>>> table = pa.table({"y": [1.0, 3.0, 2.0, 5.0, 4.0], "g": ["a", "b", "a", "b", "c"]})
>>> plan = DesignPlan.from_formula(parse_formula("y ~ g"), table.schema)
>>> encoder = BatchEncoder(plan.with_levels({"g": ["a", "b", "c"]}))
>>> from streamreg.solvers.moments import MomentState
>>> sums = GroupedSums(encoder, state_kind=MomentState)
>>> for chunk in InMemorySource(table).batches(encoder.columns_read, 2):
...     assert sums.add(encoder.prepare(chunk))
>>> state = sums.flush()
>>> state.names, state.n_rows
(('g[T.b]', 'g[T.c]', 'y'), 5)
>>> bool(np.allclose(state.comoment[:2, :2], [[1.2, -0.4], [-0.4, 0.8]]))
True
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import DataError

CELL_LIMIT = 1 << 16
DENSE_CELLS = 1 << 22
# Set the sums aside and re-shift when converting them would keep less than 1/16 of the
# co-moment's digits' worth (about 1.2 decimal digits lost at most).
_CANCELLATION = 1.0 / 16.0


@dataclass
class _Job:
    kind: str  # "sums", "dense" or "pair"
    signature: tuple
    key: tuple
    first: int
    second: int | None
    cells: np.ndarray | None = None  # cells of the key's table that land in the state
    places: np.ndarray | None = None  # where: index into s ("sums") or flat upper-triangle index


@dataclass
class _Plan:
    """Which tables each batch computes and where their cells go (fixed per design)."""

    jobs: list[_Job]
    tables: dict = field(default_factory=dict)  # signature → (union key or None, [keys])


def _plan(enc) -> _Plan:
    if getattr(enc, "_grouped_plan", None) is not None:
        return enc._grouped_plan
    order = {f: i for i, f in enumerate(enc.categorical)}
    size = len(enc.state_names)

    def union(*keys):
        return tuple(sorted(set().union(*keys), key=order.__getitem__))

    def shape(key):
        return tuple(enc.level_counts[f] for f in key)

    blocks = enc.sparse_blocks
    jobs: list[_Job] = []
    for a, block in enumerate(blocks):
        own = tuple(sorted(block.numeric))
        jobs.append(_Job("sums", (own, None), block.key, a, None))
        for j in range(len(enc.dense_positions)):
            jobs.append(_Job("dense", (own, j), block.key, a, j))
        for b in range(a, len(blocks)):
            numeric = tuple(sorted(block.numeric + blocks[b].numeric))
            jobs.append(_Job("pair", (numeric, None), union(block.key, blocks[b].key), a, b))
    requested: dict[tuple, list] = {}
    for job in jobs:
        requested.setdefault(job.signature, [])
        if job.key not in requested[job.signature]:
            requested[job.signature].append(job.key)
    plan = _Plan(jobs)
    for signature, keys in requested.items():
        joint = union(*keys)
        shared = len(keys) > 1 and int(np.prod(shape(joint))) <= CELL_LIMIT
        plan.tables[signature] = (joint if shared else None, keys)
    for job in jobs:
        if int(np.prod(shape(job.key))) > DENSE_CELLS:
            continue  # placed batch by batch from the cells present (see _place)
        cells = np.arange(int(np.prod(shape(job.key))))
        kept, job.places = _places(enc, job, cells, shape, size)
        job.cells = cells[kept]
    enc._grouped_plan = plan
    return plan


def _places(enc, job: _Job, cells: np.ndarray, shape, size: int):
    """(mask of the cells that land in the state, their places) for cells of ``job.key``'s table:
    an index into the sums for a "sums" job, else a flat index into the upper triangle."""
    block = enc.sparse_blocks[job.first]
    if job.kind in ("sums", "dense"):
        columns = block.column_of_cell[cells]
        kept = columns >= 0
        if job.kind == "sums":
            return kept, columns[kept]
        row = enc.dense_positions[job.second]
        low, high = np.minimum(row, columns[kept]), np.maximum(row, columns[kept])
        return kept, low * size + high
    other = enc.sparse_blocks[job.second]
    levels = np.unravel_index(cells, shape(job.key))
    position = {f: i for i, f in enumerate(job.key)}

    def project(b):
        codes = levels[position[b.key[0]]]
        for f in b.key[1:]:
            codes = codes * enc.level_counts[f] + levels[position[f]]
        return codes

    rows = block.column_of_cell[project(block)]
    columns = other.column_of_cell[project(other)]
    kept = (rows >= 0) & (columns >= 0)
    low, high = np.minimum(rows[kept], columns[kept]), np.maximum(rows[kept], columns[kept])
    return kept, low * size + high


class GroupedSums:
    """Shifted sums of a run of batches over the encoder's state columns; see the module doc."""

    def __init__(self, enc, shift: np.ndarray | None = None, *, state_kind):
        self.enc = enc
        self.state_kind = state_kind  # a centered state built from (n, Σw, mean, M, mean_lo)
        self.plan = _plan(enc)
        self.names = enc.state_names
        self.size = len(self.names)
        self.center = None
        if shift is not None:
            center = np.asarray(shift, dtype=np.float64)[enc.dense_positions]
            self.center = center if np.isfinite(center).all() else None
        self._pending = None  # rows summed about an earlier shift
        # A table whose cells cover every row, per numeric column, to read its sum from.
        self._totals = {
            job.second: (job.signature, job.key)
            for job in self.plan.jobs
            if job.kind == "dense" and not job.signature[0]
        }
        self._reset()

    def _reset(self) -> None:
        d = len(self.enc.dense_positions)
        self.upper = np.zeros((self.size, self.size))  # sparse entries, upper triangle only
        self.dense_gram = np.zeros((d, d))
        self.sums = np.zeros(self.size)
        self.weight = 0.0
        self.n_rows = 0

    def add(self, prep) -> bool:
        """Add a prepared batch; False (nothing added) if its sums are not finite."""
        enc = self.enc
        n = prep.n_rows
        if n == 0:
            return True
        w = prep.weights
        columns = [enc._product(prep, numeric) for _, numeric in enc.dense_columns]
        columns += prep.target_values
        weight = float(n) if w is None else float(w.sum())
        center = self.center
        if center is None:
            center = np.array(
                [
                    np.dot(c, w) / weight if w is not None and weight > 0 else c.mean()
                    for c in columns
                ]
            )
        for attempt in range(2):
            shifted, gram = self._dense(columns, w, center)
            tables = self._tables(prep, shifted, w)
            if tables is None or not np.isfinite(gram).all():
                return False
            sums = self._dense_sums(tables, shifted, w)
            if attempt or not self._would_cancel(gram, sums, weight):
                break
            # The rows sit far from the shift: set aside what was summed so far, re-shift on
            # this batch's mean.
            self._set_aside()
            center = center + sums / weight
        self.center = center
        self.dense_gram += gram
        self.sums[enc.dense_positions] += sums
        flat_upper = self.upper.reshape(-1)
        for job in self.plan.jobs:
            table = tables[(job.signature, job.key)]
            if job.places is None:  # a table too large to place in advance: its present cells
                shape = lambda key: tuple(enc.level_counts[f] for f in key)  # noqa: E731
                kept, places = _places(enc, job, table[0], shape, self.size)
                values = table[1][kept]
            else:
                places, values = job.places, table[job.cells]
            if job.kind == "sums":
                self.sums[places] += values
            else:
                flat_upper[places] += values
        self.weight += weight
        self.n_rows += n
        return True

    @staticmethod
    def _dense(columns, w, center):
        """The numeric columns minus ``center`` (one fused pass) and their weighted Gram."""
        shifted = np.empty((len(columns[0]), len(columns)), order="F")
        for k, values in enumerate(columns):
            np.subtract(values, center[k], out=shifted[:, k])
        with np.errstate(all="ignore"):
            if w is None:
                return shifted, shifted.T @ shifted
            scaled = shifted * np.sqrt(w)[:, None]
            return shifted, scaled.T @ scaled

    def _dense_sums(self, tables, shifted, w) -> np.ndarray:
        """``Σ w z̃ⱼ`` per numeric column: the total of a table of signature ``((), j)`` where a
        category enters without numeric factors (its cells cover every row), else one pass."""
        sums = np.empty(shifted.shape[1])
        for j in range(shifted.shape[1]):
            table = self._totals.get(j)
            if table is not None:
                values = tables[table]
                sums[j] = (values[1] if isinstance(values, tuple) else values).sum()
            else:
                with np.errstate(all="ignore"):
                    sums[j] = shifted[:, j].sum() if w is None else shifted[:, j] @ w
        return sums

    def _tables(self, prep, shifted, w):
        """Every table this batch contributes, by (signature, key); None if one is not finite."""
        enc = self.enc
        out = {}
        with np.errstate(all="ignore"):
            for signature, (joint, keys) in self.plan.tables.items():
                vector = self._vector(prep, signature, shifted, w)
                if joint is not None:
                    full = self._bincount(prep, joint, vector).reshape(
                        tuple(enc.level_counts[f] for f in joint)
                    )
                    for key in keys:
                        drop = tuple(i for i, f in enumerate(joint) if f not in key)
                        margin = full.sum(axis=drop) if drop else full
                        out[(signature, key)] = margin.ravel()
                    continue
                for key in keys:
                    cells = int(np.prod([enc.level_counts[f] for f in key]))
                    if cells <= DENSE_CELLS:
                        out[(signature, key)] = self._bincount(prep, key, vector)
                    else:
                        out[(signature, key)] = self._sorted_sums(prep, key, vector)
        for table in out.values():
            values = table[1] if isinstance(table, tuple) else table
            if not np.isfinite(values).all():
                return None
        return out

    def _vector(self, prep, signature, shifted, w):
        numeric, j = signature
        vector = w
        for code in numeric:
            values = self.enc._factor_values(prep, code)
            vector = values if vector is None else vector * values
        if j is not None:
            vector = shifted[:, j] if vector is None else vector * shifted[:, j]
        return vector

    def _bincount(self, prep, key, vector) -> np.ndarray:
        length = int(np.prod([self.enc.level_counts[f] for f in key]))
        out = np.bincount(self.enc._key_codes(prep, key), weights=vector, minlength=length)
        return out.astype(np.float64, copy=False)

    def _sorted_sums(self, prep, key, vector):
        cells, inverse = np.unique(self.enc._key_codes(prep, key), return_inverse=True)
        values = np.bincount(inverse, weights=vector, minlength=len(cells))
        return cells, values.astype(np.float64, copy=False)

    def _would_cancel(self, gram, sums, weight) -> bool:
        """Whether ``M = S − s²/n`` of a numeric column, once this batch is added, would keep
        fewer digits than the data (``S > M / CANCELLATION``): the shift is then too far from
        the rows' mean. Stationary data never trigger it; a drifting mean (sorted timestamps)
        may, and then costs one conversion of the sums so far."""
        total = self.weight + weight
        if total <= 0:
            return False
        square = np.diagonal(self.dense_gram) + np.diagonal(gram)
        sums = self.sums[self.enc.dense_positions] + sums
        central = square - np.square(sums) / total
        return bool((square * _CANCELLATION > central).any())

    def _set_aside(self) -> None:
        if self.n_rows:
            part = self._sums_state()
            self._pending = part if self._pending is None else self._pending.merge(part)

    def flush(self):
        """The moment state of every row added since the last flush (and start afresh)."""
        state = self._sums_state()
        if self._pending is not None:
            state = self._pending.merge(state)
            self._pending = None
        return state

    def _sums_state(self):
        enc = self.enc
        if self.n_rows == 0 or self.weight == 0.0:
            state = self.state_kind.empty(self.names)
            state.n_rows = self.n_rows
            self._reset()
            return state
        full = self.upper + self.upper.T
        full[np.diag_indices(self.size)] = np.diagonal(self.upper)
        full[np.ix_(enc.dense_positions, enc.dense_positions)] = self.dense_gram
        comoment = full - np.outer(self.sums, self.sums) / self.weight
        mean = np.zeros(self.size)
        mean[enc.dense_positions] = self.center
        state = self.state_kind(
            self.names, self.n_rows, self.weight, mean, comoment, mean_lo=self.sums / self.weight
        )
        self._reset()
        return state


def grouped_moments(enc, prep, shift=None, *, state_kind):
    """The moment state (of ``state_kind``) of one prepared batch (``shift``: the running mean,
    or None)."""
    sums = GroupedSums(enc, shift, state_kind=state_kind)
    if not sums.add(prep):
        raise DataError(
            "a batch's sums are not finite (NaN or ±inf in the data?); prepare it with screen=True."
        )
    return sums.flush()
