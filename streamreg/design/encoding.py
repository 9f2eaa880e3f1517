r"""Arrow batches → the design's numbers, in two forms that give the same state.

:meth:`BatchEncoder.prepare` evaluates a batch once: the numeric factors, the
level codes of the categories, the targets and the weight, with rows holding a
null (or a NaN made by a transform such as ``log`` of a negative number)
dropped and counted, or refused under ``nulls="error"``; ±inf is refused.

* :meth:`BatchEncoder.dense` — float64 design rows (``rows × (columns +
  targets)``), every indicator column materialized: what the QR, exact and
  gradient solvers read. Memory is rows × columns, so the rows per batch must
  shrink as the design widens: :func:`dense_batch_rows` (16 MiB per batch, between
  1,024 and 131,072 rows — e.g. 3,800 rows for 550 columns).
* :meth:`BatchEncoder.moments` — the batch's :class:`~streamreg.solvers.moments.MomentState`
  over the same columns *without* materializing indicator blocks (see below),
  equal to ``MomentState.from_arrays`` of the dense rows up to rounding.

**Grouped moments.** A column of the design is ``u · [key = c]``: a product
``u`` of numeric factors (1 for a main effect) times the indicator that the
row's categories (the *key*, one or more factors) take the levels ``c``.
Every Gram entry involving such columns is a sum over the rows of one cell of a
contingency table::

    Σ w z̃ⱼ u [key = c]          = bincount(key, w z̃ⱼ u)[c]      (numeric × category)
    Σ w u v [key₁ = c₁][key₂ = c₂] = bincount(key₁∪key₂, w u v)[c₁, c₂]  (category × category)

so a batch costs one ``bincount`` per numeric column and per product of
numeric parts, over the joint codes of all the categories at once when their
table is small (``CELL_LIMIT`` cells), the smaller tables being its margins.
Numeric columns are shifted by the running mean before any product (as the
dense route does), indicator columns are not (their values are 0 and 1); the
sums then become central moments by ``M = S − s sᵀ/n``, ``μ = c + s/n``.

>>> import numpy as np, pyarrow as pa
>>> from streamreg.design.formula import parse_formula
>>> from streamreg.design.coding import DesignPlan
>>> from streamreg.io.sources import InMemorySource
>>> table = pa.table({"y": [1.0, 2.0, 4.0, 3.0], "x": [0.5, 1.0, 1.5, 3.0],
...                    "g": ["a", "b", "a", "b"]})
>>> plan = DesignPlan.from_formula(parse_formula("y ~ x + g"), table.schema)
>>> encoder = BatchEncoder(plan.with_levels({"g": ["a", "b"]}))
>>> chunk = next(InMemorySource(table).batches(encoder.columns_read, 10))
>>> prepared = encoder.prepare(chunk)
>>> from streamreg.solvers.moments import MomentState
>>> grouped = encoder.moments(prepared, state_kind=MomentState)
>>> dense = encoder.dense(prepared)
>>> dense.tolist()
[[0.0, 0.5, 1.0], [1.0, 1.0, 2.0], [0.0, 1.5, 4.0], [1.0, 3.0, 3.0]]
>>> bool(np.allclose(grouped.comoment, np.cov(dense.T, bias=True) * 4))
True
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import DataError, InputError
from ..io.sources import Chunk
from .grouped import grouped_moments
from .levels import CategoryCoder
from .reparam import raw_expansion

NULL_POLICIES = ("drop", "error")
# Categories whose joint table has at most this many cells share one bincount per weight.
CELL_LIMIT = 1 << 16
_DENSE_BATCH_BYTES = 1 << 24
_MAX_BATCH_ROWS = 1 << 17


def dense_batch_rows(n_columns: int) -> int:
    """Rows per batch for dense design rows of ``n_columns`` float64 columns (~16 MiB)."""
    return int(max(1024, min(_MAX_BATCH_ROWS, _DENSE_BATCH_BYTES // (8 * max(n_columns, 1)))))


@dataclass
class Prepared:
    """One batch, evaluated: numeric values and level codes of the kept rows."""

    numeric: dict[str, np.ndarray]
    codes: dict[str, np.ndarray]
    target_values: list[np.ndarray]  # one array per target
    weights: np.ndarray | None
    rows_read: int
    n_rows: int  # rows kept
    dropped: dict[str, int] = field(default_factory=dict)
    positions: np.ndarray | None = None  # batch row of each kept row, when rows were dropped
    screened: bool = False  # NaN and ±inf were looked for (not only nulls)
    keys: dict = field(default_factory=dict, repr=False)  # joint level codes, computed on demand

    @property
    def targets(self) -> np.ndarray:
        return np.column_stack(self.target_values)


class BatchEncoder:
    """Encodes batches for one design. ``raw=True`` (fitting) encodes the raw columns of
    center/scale factors (:func:`~streamreg.design.reparam.raw_expansion`); ``raw=False``
    (predicting) the design columns themselves with the saved statistics."""

    def __init__(
        self,
        design,
        *,
        nulls: str = "drop",
        unseen: str = "error",
        raw: bool = True,
        also_required: tuple[str, ...] = (),
        hint: str | None = None,
    ):
        if nulls not in NULL_POLICIES:
            raise InputError(f"nulls must be one of {', '.join(NULL_POLICIES)}; got {nulls!r}.")
        self.design = design
        self.plan = design.plan
        self.nulls = nulls
        # columns read besides the model's own (a cluster column): a null drops the row too
        self.also_required = tuple(c for c in also_required if c not in self.plan.columns_read)
        self.coder = CategoryCoder(design, unseen=unseen, hint=hint)
        if raw:
            self.expansion = raw_expansion(design)
            self.blocks = self.expansion.blocks
            self.numeric = self.expansion.numeric
            self.column_names = tuple(self.expansion.names)
        else:
            if self.plan.transformed and design.stats is None:
                raise InputError(
                    "the design's center/scale statistics are not known yet; they "
                    "come from the fit."
                )
            self.expansion = None
            self.blocks = list(self.plan.blocks)
            self.numeric = {
                c: f.expression for c, f in self.plan.factors.items() if f.kind == "numeric"
            }
            self.column_names = design.column_names
        self.targets = [self.plan.factors[c].expression for c in self.plan.targets]
        self._layout()

    @property
    def state_names(self) -> tuple[str, ...]:
        return self.column_names + self.plan.targets

    @property
    def columns_read(self) -> tuple[str, ...]:
        return self.plan.columns_read + self.also_required

    def _layout(self) -> None:
        """Column positions: the dense ones (no category) and, per category block, its cells."""
        design = self.design
        self.categorical = list(dict.fromkeys(f for b in self.blocks for f in b.categorical))
        self.level_counts = {
            f: len(design.levels[design.plan.factors[f].source]) for f in self.categorical
        }
        self.dense_columns: list[tuple[int, tuple[str, ...]]] = []
        self.sparse_blocks: list[_SparseBlock] = []
        position = 0
        for block in self.blocks:
            cells = design._cells(block)
            if not cells:
                continue  # a category with a single level: no column (as in patsy)
            if not block.categorical:
                self.dense_columns.append((position, block.numeric))
            else:
                # the key lists its factors in the canonical order
                key = tuple(f for f in self.categorical if f in block.categorical)
                shape = tuple(self.level_counts[f] for f in key)
                order = [block.categorical.index(f) for f in key]
                levels = tuple(np.array([c[i] for c in cells]) for i in order)
                flat = np.ravel_multi_index(levels, shape)
                column_of_cell = np.full(int(np.prod(shape)), -1, dtype=np.int64)
                column_of_cell[flat] = position + np.arange(len(cells))
                self.sparse_blocks.append(_SparseBlock(block.numeric, key, shape, column_of_cell))
            position += len(cells)
        self.n_design = position
        self.dense_positions = np.array(
            [p for p, _ in self.dense_columns]
            + list(range(position, position + len(self.targets))),
            dtype=np.int64,
        )

    # ------------------------------------------------------------------ evaluate
    def prepare(self, chunk: Chunk, *, screen: bool = False) -> Prepared:
        """Evaluate a batch; drop (or refuse) rows with a null.

        With ``screen=True`` NaN values (data or a transform's) are treated as
        missing too and ±inf is refused, row by row; the fast path leaves that to
        the caller, who re-prepares with screening when a batch's sums come out
        non-finite (as :func:`streamreg.engine.scan.accumulate` does).
        """
        batch = chunk.batch
        n = batch.num_rows
        missing = None
        dropped: dict[str, int] = {}

        def note(name: str, mask: np.ndarray) -> None:
            nonlocal missing
            fresh = mask if missing is None else mask & ~missing
            if fresh.any():
                if self.nulls == "error":
                    row = int(np.flatnonzero(fresh)[0])
                    raise DataError(
                        f"'{name}' has a missing value in {chunk.describe_row(row)} "
                        "and nulls is 'error'."
                    )
                dropped[name] = dropped.get(name, 0) + int(fresh.sum())
                missing = fresh if missing is None else missing | fresh

        for column in self.columns_read:
            values = batch.column(column)
            if values.null_count:
                note(column, np.asarray(pc.is_null(values)))
        numeric = {code: _rows(e.evaluate(batch), n) for code, e in self.numeric.items()}
        targets = [_rows(e.evaluate(batch), n) for e in self.targets]
        weights = _weights(batch, self.plan.weight) if self.plan.weight else None
        # A null category is a null in its column, already noted above.
        codes = {f: self.coder.codes(chunk, f) for f in self.categorical}
        if screen:
            named = [*numeric.items(), *zip(self.plan.targets, targets)]
            if weights is not None:
                named.append((self.plan.weight, weights))
            for name, values in named:
                self._screen(values, name, chunk, note)
        if weights is not None:
            negative = weights < 0
            if negative.any():
                row = int(np.flatnonzero(negative)[0])
                raise DataError(
                    f"weight column '{self.plan.weight}' holds a negative weight "
                    f"({weights[row]:g}) in {chunk.describe_row(row)}; weights must be "
                    "zero or positive."
                )
        positions = None
        if missing is not None and missing.any():
            positions = np.flatnonzero(~missing)
            numeric = {c: v[positions] for c, v in numeric.items()}
            codes = {c: v[positions] for c, v in codes.items()}
            targets = [v[positions] for v in targets]
            weights = None if weights is None else weights[positions]
        kept = n if positions is None else len(positions)
        return Prepared(numeric, codes, targets, weights, n, kept, dropped, positions, screen)

    def absorbed(self, chunk: Chunk, prepared: Prepared) -> pa.Array:
        """Labels of the absorbed factor for the kept rows (see :mod:`streamreg.solvers.absorb`)."""
        (column,) = self.plan.absorb
        labels = chunk.batch.column(column)
        return labels if prepared.positions is None else labels.take(prepared.positions)

    def _screen(self, values, name, chunk, note) -> None:
        infinite = np.isinf(values)
        if infinite.any():
            row = int(np.flatnonzero(infinite)[0])
            raise DataError(
                f"'{name}' is infinite in {chunk.describe_row(row)}; ±inf is never a "
                "usable value (log of zero?)."
            )
        note(name, np.isnan(values))

    def _product(self, prepared: Prepared, codes: tuple[str, ...]) -> np.ndarray | None:
        """The product of numeric factors for the kept rows (None for an empty product)."""
        if not codes:
            return None
        out = self._factor_values(prepared, codes[0])
        for code in codes[1:]:
            out = out * self._factor_values(prepared, code)
        return out

    def _factor_values(self, prepared: Prepared, code: str) -> np.ndarray:
        if (
            self.expansion is not None
            or code not in self.plan.factors
            or not self.plan.factors[code].transform
        ):
            return prepared.numeric[code]
        center, spread = self.design.stats[code]
        return (prepared.numeric[code] - center) / spread

    # ------------------------------------------------------------------ dense rows
    def dense(self, prepared: Prepared, shift: np.ndarray | None = None) -> np.ndarray:
        """Design rows then targets, Fortran order, minus ``shift`` if given."""
        n = prepared.n_rows
        z = np.zeros((n, self.n_design + len(self.targets)), order="F")
        for position, numeric in self.dense_columns:
            z[:, position] = self._product(prepared, numeric)
        for j, values in enumerate(prepared.target_values):
            z[:, self.n_design + j] = values
        rows = np.arange(n)
        for block in self.sparse_blocks:
            columns = block.column_of_cell[self._key_codes(prepared, block.key)]
            kept = columns >= 0
            values = self._product(prepared, block.numeric)
            z[rows[kept], columns[kept]] = 1.0 if values is None else values[kept]
        if shift is not None:
            z -= shift
        return z

    def _key_codes(self, prepared: Prepared, key: tuple[str, ...]) -> np.ndarray:
        """Joint level codes of the factors of ``key`` (mixed radix, last factor fastest)."""
        cache = prepared.keys
        if key not in cache:
            first = prepared.codes[key[0]]
            # bincount wants intp: a single key is converted (no copy if it is already),
            # a joint key is built in a fresh intp array
            codes = np.asarray(first, dtype=np.intp) if len(key) == 1 else first.astype(np.intp)
            for f in key[1:]:
                codes *= self.level_counts[f]
                codes += prepared.codes[f]
            cache[key] = codes
        return cache[key]

    # ------------------------------------------------------------------ grouped moments
    def moments(self, prepared: Prepared, shift: np.ndarray | None = None, *, state_kind):
        """The batch's moment state (of ``state_kind``) over :attr:`state_names`, indicator
        blocks never built.

        ``shift`` (one entry per state column; only the numeric columns' entries
        are used) is subtracted from the numeric columns before any product — the
        running mean of the state so far, as in :func:`streamreg.engine.scan.accumulate`."""
        return grouped_moments(self, prepared, shift, state_kind=state_kind)


@dataclass
class _SparseBlock:
    numeric: tuple[str, ...]
    key: tuple[str, ...]  # categorical factors, canonical order
    shape: tuple[int, ...]  # level counts of the key
    column_of_cell: np.ndarray  # flat cell → design column (−1 if the cell has no column)


def _rows(values, n: int) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    return np.full(n, float(values)) if values.ndim == 0 else values


def _weights(batch, name: str) -> np.ndarray:
    column = batch.column(name)
    if not pa.types.is_float64(column.type):
        column = column.cast(pa.float64(), safe=False)
    return column.to_numpy(zero_copy_only=False)
