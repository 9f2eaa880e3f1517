r"""The encoded design of a fit, read by the engine exactly like a :class:`DesignSpec`.

A fit with categories, a formula, dates, several targets or an absorbed factor
reads its batches through an :class:`EncodedSpec`: the same names the engine,
the solvers and the robust pass ask of a plain spec (``columns``,
``state_names``, ``features``, ``fit_intercept``, ``weight``, ``groups``) and a
:meth:`EncodedSpec.batch_arrays` that returns the batch's *dense design rows*
(every indicator column materialized, targets last) — what the QR, exact and
gradient solvers and the robust pass read. A moment state is instead built from
group sums, indicator blocks never materialized (:meth:`EncodedSpec.group_sums`,
:mod:`streamreg.design.grouped`).

Dense rows cost ``rows × columns`` floats, so their batches shrink as the design
widens (:func:`dense_batch_rows`: about 16 MiB per batch); the grouped form reads
only the numeric columns and the level codes, and keeps the usual batch size.

>>> import numpy as np, pyarrow as pa
>>> from streamreg.design.coding import DesignPlan
>>> from streamreg.design.formula import parse_formula
>>> from streamreg.io.sources import InMemorySource
>>> table = pa.table({"y": [1.0, 2.0, 4.0], "g": ["a", "b", "a"]})
>>> plan = DesignPlan.from_formula(parse_formula("y ~ g"), table.schema)
>>> spec = EncodedSpec(plan.with_levels({"g": ["a", "b"]}))
>>> chunk = next(InMemorySource(table).batches(spec.columns, 10))
>>> spec.state_names, spec.batch_arrays(chunk).z.tolist()
(('g[T.b]', 'y'), [[0.0, 1.0], [1.0, 2.0], [0.0, 4.0]])
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa

from ..errors import DataError
from ..io.sources import Chunk
from .coding import Design
from .encoding import BatchEncoder, dense_batch_rows
from .grouped import GroupedSums
from .spec import DesignBatch

FORMS = ("auto", "dense")
ABSORB_BYTES = 1 << 26
ABSORB_MAX_ROWS = 1 << 20


class EncodedSpec:
    """An encoded design and how to read it; see the module docstring.

    ``raw=True`` (the fit's pass) reads the raw columns of center/scale terms, which
    :func:`streamreg.solvers.views.affine` maps to the design's columns afterwards;
    ``raw=False`` reads the design's columns with the fit's statistics (robust pass,
    prediction). ``form="dense"`` builds even a moment state from dense rows (tests and
    benchmarks compare the two forms). ``hint`` ends the message about a level the design
    does not know.
    """

    encoded = True

    def __init__(
        self,
        design: Design,
        *,
        nulls: str = "drop",
        groups: str | None = None,
        unseen: str = "error",
        raw: bool = True,
        form: str = "auto",
        hint: str | None = None,
    ):
        if form not in FORMS:
            raise ValueError(f"form must be one of {', '.join(FORMS)}; got {form!r}.")
        self.design = design
        self.nulls = nulls
        self.groups = groups
        self.unseen = unseen
        self.raw = raw
        self.form = form
        self.hint = hint
        self._encoder = None
        self.encoder  # noqa: B018 - build it once here, so a bad option fails before any pass

    # ------------------------------------------------------------------ what the engine asks
    @property
    def encoder(self) -> BatchEncoder:
        if self._encoder is None:
            also = (self.groups,) if self.groups else ()
            self._encoder = BatchEncoder(
                self.design,
                nulls=self.nulls,
                unseen=self.unseen,
                raw=self.raw,
                also_required=also,
                hint=self.hint,
            )
        return self._encoder

    def __getstate__(self):  # the encoder's caches are rebuilt where the spec is used
        return {**self.__dict__, "_encoder": None}

    @property
    def plan(self):
        return self.design.plan

    @property
    def targets(self) -> tuple[str, ...]:
        return self.plan.targets

    @property
    def target(self) -> str:
        """The last target (the one a single-target state ends with)."""
        return self.plan.targets[-1]

    @property
    def features(self) -> tuple[str, ...]:
        """The columns the pass accumulates besides the targets."""
        return tuple(self.encoder.column_names)

    @property
    def weight(self) -> str | None:
        return self.plan.weight

    @property
    def fit_intercept(self) -> bool:
        return self.plan.intercept

    @property
    def absorb(self) -> tuple[str, ...]:
        return self.plan.absorb

    @property
    def columns(self) -> tuple[str, ...]:
        """Every data column read."""
        return self.encoder.columns_read

    @property
    def state_names(self) -> tuple[str, ...]:
        return self.encoder.state_names

    @property
    def dictionary_columns(self) -> tuple[str, ...]:
        """The columns categories read: text ones are best read as dictionary arrays."""
        return dictionary_columns(self.design)

    @property
    def dense_width(self) -> int:
        """Floats per row of the dense form (design columns, targets, weight)."""
        return len(self.state_names) + (1 if self.weight else 0)

    @property
    def grouped_width(self) -> int:
        """Floats per row of the grouped form: numeric columns, plus a code per column read."""
        return len(self.encoder.dense_positions) + len(self.columns)

    def batch_rows(self, *, grouped: bool, given: int | None = None) -> int:
        """Rows per batch: ``given``, else about 16 MiB per batch of the form read."""
        if given is not None:
            return int(given)
        if self.absorb:
            # An absorbed factor's per-batch cost grows with the groups a batch touches, not
            # its rows: batches of up to 1 Mi rows (about 64 MiB of dense rows) pay it less
            # often.
            return int(max(1024, min(ABSORB_MAX_ROWS, ABSORB_BYTES // (8 * self.dense_width))))
        return dense_batch_rows(self.grouped_width if grouped else self.dense_width)

    def grouped_for(self, state_kind) -> bool:
        """Whether a pass into ``state_kind`` reads group sums rather than dense rows."""
        return self.form == "auto" and bool(getattr(state_kind, "accepts_group_sums", False))

    # ------------------------------------------------------------------ reading
    def prepare(self, chunk: Chunk, *, screen: bool = False):
        return self.encoder.prepare(chunk, screen=screen)

    def group_sums(self, state_kind, shift: np.ndarray | None = None) -> GroupedSums:
        return GroupedSums(self.encoder, shift, state_kind=state_kind)

    def batch_arrays(self, chunk: Chunk, shift: np.ndarray | None = None) -> DesignBatch:
        """Dense design rows of a batch (minus ``shift``), as
        :func:`streamreg.design.batch_arrays` gives a plain design's."""
        return self._batch(chunk, self.prepare(chunk), shift)

    def screen_values(self, batch: DesignBatch, chunk: Chunk) -> DesignBatch:
        """The batch again, rows with NaN dropped (or refused) and ±inf refused."""
        return self._batch(chunk, self.prepare(chunk, screen=True), None)

    def _batch(self, chunk: Chunk, prepared, shift) -> DesignBatch:
        z = self.encoder.dense(prepared, shift)
        return DesignBatch(
            z,
            prepared.weights,
            prepared.rows_read,
            prepared.dropped,
            prepared.positions,
            self.labels(chunk, prepared, self.groups) if self.groups else None,
        )

    def labels(self, chunk: Chunk, prepared, column: str) -> np.ndarray:
        """The values of ``column`` (cluster or absorbed labels) for the kept rows."""
        values = chunk.batch.column(column)
        if prepared.positions is not None:
            values = values.take(pa.array(prepared.positions))
        return values.to_numpy(zero_copy_only=False)

    # ------------------------------------------------------------------ derived specs
    def finished(self, stats: dict | None) -> EncodedSpec:
        """The spec of the design's own columns, with the fit's center/scale statistics (for the
        robust pass)."""
        if not self.raw:
            return self
        design = self.design.with_stats(stats) if self.plan.transformed else self.design
        return self._with(design, raw=False)

    def for_target(self, k: int) -> EncodedSpec:
        """The same columns with only the ``k``-th target (one target's robust pass)."""
        return self._with(self.design.restricted(targets=(self.targets[k],)), raw=self.raw)

    def _with(self, design: Design, *, raw: bool) -> EncodedSpec:
        return EncodedSpec(
            design,
            nulls=self.nulls,
            groups=self.groups,
            unseen=self.unseen,
            raw=raw,
            form=self.form,
            hint=self.hint,
        )


class DesignRows:
    """Design rows of new data, for predicting or evaluating with a saved design.

    Rows with a missing value are left out (their positions are returned); a level
    the design does not know is an error naming the column, the level, the file and
    the row group, or with ``unseen="reference"`` is coded as the reference level and
    counted in :attr:`unseen_rows`.
    """

    def __init__(self, design: Design, *, targets: Sequence[str] = (), unseen: str = "error"):
        restricted = design.restricted(targets=tuple(targets), keep_weight=False, keep_absorb=False)
        self.encoder = BatchEncoder(restricted, nulls="drop", unseen=unseen, raw=False)

    @property
    def columns(self) -> tuple[str, ...]:
        return self.encoder.columns_read

    @property
    def dictionary_columns(self) -> tuple[str, ...]:
        return dictionary_columns(self.encoder.design)

    @property
    def unseen_rows(self) -> dict[str, int]:
        return dict(self.encoder.coder.unseen_rows)

    def rows(self, chunk: Chunk, *, screen: bool = True):
        """``(x, targets, positions, dropped)``: design rows and target values of the usable
        rows of the batch, their positions in it (None when every row is usable) and the rows
        left out, by the first column that was missing."""
        prepared = self.encoder.prepare(chunk, screen=screen)
        z = self.encoder.dense(prepared)
        width = self.encoder.n_design
        return z[:, :width], z[:, width:], prepared.positions, prepared.dropped


def dictionary_columns(design: Design) -> tuple[str, ...]:
    """Columns read by the design's categories (see :meth:`streamreg.io.sources.Source.batches`)."""
    sources = design.plan.categorical_sources.values()
    return tuple(dict.fromkeys(c for e in sources for c in e.columns))


def reading(spec) -> dict:
    """Keyword arguments of ``Source.batches`` for ``spec``: category columns as dictionaries."""
    return {"dictionary": spec.dictionary_columns} if getattr(spec, "encoded", False) else {}


def overflow(chunk: Chunk) -> DataError:
    return DataError(f"the sums over {chunk.file.path} overflow float64; rescale the columns.")
