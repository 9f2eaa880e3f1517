r"""center(), scale() and standardize() from the pass's own statistics: no second pass.

**center, scale, standardize.** ``center(x) = x − x̄``, ``standardize(x) =
scale(x) = (x − x̄)/s`` with ``s`` the population standard deviation (ddof 0, as
patsy), ``x̄`` and ``s`` taken over the rows of the fit. They are not evaluated
during the pass: every design column is a polynomial in the raw values, e.g.
``center(x):z = x·z − x̄·z``, so the pass accumulates the state of the *raw*
columns (``x·z``, ``z`` and ``x`` itself) and :func:`streamreg.solvers.views.affine`
maps it afterwards to the state of the design columns — ``μ' = Tᵀμ + b``,
``M' = TᵀMT`` — with ``x̄ = μ_x`` and ``s² = M_xx/n`` read from that same state.
One pass, exact in exact arithmetic. The statistics are unweighted in patsy, so
a weighted fit refuses these transforms rather than silently differ.

Only the raw columns are evaluated per batch (:class:`~streamreg.design.encoding.BatchEncoder`
with ``raw=True``); :func:`raw_expansion` lists them and how each design column is
made from them, :func:`transform_from` turns that into ``T`` and ``b`` once the state
is known, and :func:`streamreg.design.encoding.finish_state` applies them. Prediction
evaluates the design columns directly with the saved ``x̄`` and ``s``.

>>> import numpy as np, pyarrow as pa
>>> from streamreg.design.formula import parse_formula
>>> from streamreg.design.coding import DesignPlan
>>> schema = pa.schema([("y", pa.float64()), ("x", pa.float64()), ("z", pa.float64())])
>>> design = DesignPlan.from_formula(parse_formula("y ~ center(x):z"), schema).with_levels({})
>>> raw_expansion(design).names
['x:z', 'z', 'x']
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

import numpy as np

from ..errors import InputError
from .coding import Block
from .expressions import Expression


@dataclass
class RawExpansion:
    """The raw columns a pass accumulates when center/scale factors are present (see above).

    ``pieces[j]`` lists, for design column ``j``, ``(raw column or -1 for the constant,
    ((factor, 'slope'|'offset'), ...))``: the column is the sum over pieces of the raw
    column times the product of each factor's slope ``1/s`` or offset ``−x̄/s``."""

    blocks: list[Block]
    numeric: dict[str, Expression]  # raw numeric code → expression
    aux: dict[str, int]  # transformed factor → raw column of its inner value
    pieces: list[list[tuple[int, tuple]]]
    names: list[str] = field(default_factory=list)


def raw_expansion(design) -> RawExpansion:
    """Raw blocks and the map back to design columns; identity without transforms."""
    plan = design.plan
    numeric: dict[str, Expression] = {}
    for code, factor in plan.factors.items():
        if factor.kind == "numeric":
            numeric[factor.expression.code if factor.transform else code] = factor.expression
    if not plan.transformed:
        identity = [[(j, ())] for j in range(len(design.column_names))]
        return RawExpansion(list(plan.blocks), numeric, {}, identity, list(design.column_names))
    raw_index: dict[tuple, int] = {}
    blocks: list[Block] = []
    offsets: list[int] = []
    width = 0

    def raw_block(numeric_codes: tuple[str, ...], block: Block) -> int:
        nonlocal width
        key = (tuple(sorted(numeric_codes)), block.categorical, block.full_rank)
        if key not in raw_index:
            raw_index[key] = len(blocks)
            blocks.append(
                Block(
                    tuple(sorted(numeric_codes)) + block.categorical,
                    tuple(sorted(numeric_codes)),
                    block.categorical,
                    block.full_rank,
                )
            )
            offsets.append(width)
            width += len(design._cells(blocks[-1]))
        return raw_index[key]

    pieces: list[list[tuple[int, tuple]]] = []
    for block, cells in zip(plan.blocks, design.block_cells):
        moved = [f for f in block.numeric if plan.factors[f].transform]
        fixed = [f for f in block.numeric if not plan.factors[f].transform]
        per_column: list[list[tuple[int, tuple]]] = [[] for _ in cells]
        for size in range(len(moved) + 1):
            for offset_set in itertools.combinations(moved, size):
                kept = [plan.factors[f].expression.code for f in moved if f not in offset_set]
                coefficient = tuple((f, "offset" if f in offset_set else "slope") for f in moved)
                codes = tuple(fixed) + tuple(kept)
                if not codes and not block.categorical:
                    for column in per_column:
                        column.append((-1, coefficient))
                    continue
                b = raw_block(codes, block)
                for k, column in enumerate(per_column):
                    column.append((offsets[b] + k, coefficient))
        pieces.extend(per_column)
    aux = {}
    for code in plan.transformed:
        inner = plan.factors[code].expression.code
        b = raw_block((inner,), Block((), (), (), ()))
        aux[code] = offsets[b]
    names = [name for b in blocks for name in design._names(b, design._cells(b))]
    return RawExpansion(blocks, numeric, aux, pieces, names)


def transform_from(
    design, expansion: RawExpansion, mean: np.ndarray, comoment: np.ndarray, weight_sum: float
):
    """``(T, b, stats)``: design column ``j`` = Σᵢ T[i, j]·raw ``i`` + b[j] for the statistics of
    the raw state, and the statistics ``{factor: (x̄, s)}`` used."""
    stats = {}
    for code, column in expansion.aux.items():
        transform = design.plan.factors[code].transform
        center = float(mean[column])
        spread = math.sqrt(max(float(comoment[column, column]), 0.0) / weight_sum)
        if transform != "center" and spread == 0.0:
            raise InputError(
                f"the term '{code}' divides by the standard deviation of "
                f"'{design.plan.factors[code].expression.code}', which is zero."
            )
        stats[code] = (center, 1.0 if transform == "center" else spread)
    width = len(expansion.names)
    matrix = np.zeros((width, len(design.column_names)))
    offset = np.zeros(len(design.column_names))
    for j, column in enumerate(expansion.pieces):
        for raw, coefficient in column:
            value = 1.0
            for factor, part in coefficient:
                center, spread = stats[factor]
                value *= (1.0 / spread) if part == "slope" else (-center / spread)
            if raw < 0:
                offset[j] += value
            else:
                matrix[raw, j] += value
    return matrix, offset, stats
