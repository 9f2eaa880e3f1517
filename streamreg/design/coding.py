r"""Terms → design columns: kinds of factors, patsy's order and contrasts, names, the saved form.

**Kinds.** A factor is *categorical* when written ``C(...)``, or when it is a bare
column holding text, dictionary codes or booleans (or, in a feature list, a
column named in ``categorical=``); every other factor is *numeric* (dates count
as days since 1970-01-01, timestamps as seconds: :mod:`streamreg.design.expressions`).

**Order and coding** (patsy's, so names and columns equal statsmodels'). Terms are
grouped by the set of numeric factors they hold; the group without numeric
factors comes first, the others in order of first appearance; within a group
terms go by their number of factors. Each term is split into *subterms* whose
categorical factors are coded either reduced (treatment: one column per level
but the reference) or full rank (one column per level), chosen so that no
column is implied by the columns of earlier terms of the same group (patsy's
``pick_contrasts_for_term``): ``C(g)`` after the intercept is reduced, ``x:C(g)``
with no ``x`` term is full rank. The columns of a subterm run over the levels
of its categorical factors with the left-most factor varying fastest, named
``x1:C(g)[T.b]`` (reduced) or ``C(g)[b]`` (full rank).

**Levels** are sorted (numbers by value, text by code point, False before True);
the reference is the first level unless ``Treatment('ref')`` names one.

**center, scale, standardize** are evaluated after the pass from the state's own
statistics; see :mod:`streamreg.design.reparam`.

>>> import pyarrow as pa
>>> from streamreg.design.formula import parse_formula
>>> schema = pa.schema([("y", pa.float64()), ("x", pa.float64()), ("g", pa.string())])
>>> plan = DesignPlan.from_formula(parse_formula("y ~ x:g + g"), schema)
>>> plan.with_levels({"g": ["a", "b", "c"]}).column_names
('g[T.b]', 'g[T.c]', 'x:g[a]', 'x:g[b]', 'x:g[c]')
"""

from __future__ import annotations

import ast
import itertools
from collections.abc import Sequence

import numpy as np
import pyarrow as pa

from ..errors import InputError, ModelFormatError, SchemaError
from .expressions import Expression, parse_expression
from .formula import ParsedFormula, Term
from .terms import (
    Block,
    Factor,
    check_absorb,
    check_weight,
    code_terms,
    column_kind,
    resolve_factor,
)

DESIGN_FORMAT = "streamreg.design"
DESIGN_FORMAT_VERSION = 1


class DesignPlan:
    """Targets, factors and coded subterms of a model; data enter only through column types."""

    def __init__(
        self,
        *,
        targets: Sequence[str],
        factors: dict[str, Factor],
        blocks: Sequence[Block],
        intercept: bool,
        weight: str | None = None,
        absorb: Sequence[str] = (),
        formula: str | None = None,
    ):
        self.targets = tuple(targets)
        self.factors = dict(factors)
        self.blocks = tuple(blocks)
        self.intercept = bool(intercept)
        self.weight = weight
        self.absorb = tuple(absorb)
        self.formula = formula

    # ------------------------------------------------------------------ building
    @classmethod
    def from_formula(
        cls,
        parsed: ParsedFormula,
        schema: pa.Schema,
        *,
        weight: str | None = None,
        categorical: Sequence[str] = (),
    ) -> DesignPlan:
        """Resolve a parsed formula against the data's columns."""
        check_absorb(parsed.absorb)
        factors = {
            code: resolve_factor(spec, schema, marked=set(categorical))
            for code, spec in parsed.factors.items()
        }
        for code in parsed.targets:
            if factors[code].kind != "numeric":
                raise SchemaError(
                    f"the target '{code}' holds categories; a target must be numeric."
                )
        for column in parsed.absorb:
            if column not in schema.names:
                raise SchemaError(
                    f"the fixed effect '{column}' is not in the data; columns are: "
                    f"{', '.join(schema.names)}."
                )
        check_weight(weight, schema, factors)
        kinds = {code: f.kind for code, f in factors.items()}
        blocks = code_terms(parsed.terms, kinds, parsed.intercept or bool(parsed.absorb))
        return cls(
            targets=parsed.targets,
            factors=factors,
            blocks=blocks,
            intercept=parsed.intercept,
            weight=weight,
            absorb=parsed.absorb,
            formula=parsed.text,
        )

    @classmethod
    def from_features(
        cls,
        schema: pa.Schema,
        *,
        targets: Sequence[str] | str,
        features: Sequence[str],
        categorical: Sequence[str] = (),
        reference: dict | None = None,
        fit_intercept: bool = True,
        weight: str | None = None,
        absorb: Sequence[str] = (),
    ) -> DesignPlan:
        """A main-effects model over named columns, in the order given (no formula).

        Text and dictionary columns and those in ``categorical`` or ``reference``
        become treatment-coded categories, the reference being ``reference[col]`` or
        the first sorted level; dates and timestamps become numbers; a boolean column
        is the number 0/1 (the same column as its treatment coding with reference
        False) unless it is marked categorical.
        """
        targets = [targets] if isinstance(targets, str) else list(targets)
        reference = dict(reference or {})
        marked = {*categorical, *reference}
        check_absorb(tuple(absorb))
        factors: dict[str, Factor] = {}
        for name in [*targets, *features]:
            if name not in schema.names:
                raise SchemaError(
                    f"column '{name}' is not in the data; columns are: {', '.join(schema.names)}."
                )
            dtype = schema.field(name).type
            kind = column_kind(dtype, marked=name in marked)
            if kind == "categorical" and pa.types.is_boolean(dtype) and name not in marked:
                kind = "numeric"
            if name in marked and kind != "categorical":
                raise SchemaError(
                    f"column '{name}' has type {dtype}, which cannot be a category "
                    "(text, booleans and whole or real numbers can); for dates use "
                    "a date part in a formula, e.g. C(month(d))."
                )
            if kind is None:
                raise SchemaError(
                    f"column '{name}' has type {schema.field(name).type}; expected "
                    "numbers, text, booleans, dates or timestamps."
                )
            if name in targets and kind != "numeric":
                raise SchemaError(
                    f"the target '{name}' has type {schema.field(name).type}; a "
                    "target must be numeric."
                )
            expression = Expression(name, (name,), ast.Name(id=name))
            factors[name] = Factor(
                name,
                kind,
                expression,
                reference=reference.get(name),
                has_reference=name in reference,
            )
        for name in [*categorical, *reference]:
            if name not in features:
                raise InputError(
                    f"column '{name}' is marked categorical but is not among the features."
                )
        for column in absorb:
            if column not in schema.names:
                raise SchemaError(
                    f"the fixed effect '{column}' is not in the data; columns are: "
                    f"{', '.join(schema.names)}."
                )
            if column in features or column in targets:
                raise InputError(
                    f"column '{column}' cannot be both absorbed and a feature or target."
                )
        check_weight(weight, schema, factors)
        kinds = {code: f.kind for code, f in factors.items()}
        intercept = bool(fit_intercept) and not absorb
        blocks = code_terms(
            [Term((f,)) for f in features], kinds, intercept or bool(absorb), reorder=False
        )
        return cls(
            targets=targets,
            factors=factors,
            blocks=blocks,
            intercept=intercept,
            weight=weight,
            absorb=absorb,
        )

    # ------------------------------------------------------------------ facts
    @property
    def categorical_sources(self) -> dict[str, Expression]:
        """Source code → expression for every category whose levels must be known."""
        return {f.source: f.expression for f in self.factors.values() if f.kind == "categorical"}

    @property
    def transformed(self) -> tuple[str, ...]:
        return tuple(c for c, f in self.factors.items() if f.transform)

    @property
    def columns_read(self) -> tuple[str, ...]:
        """Every data column the model reads (targets, factors, weight, absorbed factor), in
        first-use order; a null in any of them drops the row."""
        names: list[str] = []
        for factor in self.factors.values():
            names.extend(factor.expression.columns)
        if self.weight:
            names.append(self.weight)
        names.extend(self.absorb)
        return tuple(dict.fromkeys(names))

    def with_levels(self, levels: dict[str, Sequence], stats: dict | None = None) -> Design:
        """The design once the levels of every category are known."""
        return Design(self, levels, stats)

    def restricted(
        self,
        *,
        targets: Sequence[str] | None = None,
        keep_weight: bool = True,
        keep_absorb: bool = True,
    ) -> DesignPlan:
        """The same design columns with other targets (``()``: none, for predicting), and
        without the weight or the absorbed factor if asked: what predicting, evaluating or one
        target's pass reads."""
        targets = self.targets if targets is None else tuple(targets)
        dropped = set(self.targets) - set(targets)
        used = {f for b in self.blocks for f in b.factors}
        factors = {c: f for c, f in self.factors.items() if c not in dropped or c in used}
        return DesignPlan(
            targets=targets,
            factors=factors,
            blocks=self.blocks,
            intercept=self.intercept,
            weight=self.weight if keep_weight else None,
            absorb=self.absorb if keep_absorb else (),
            formula=self.formula,
        )


def level_label(value) -> str:
    """How a level is printed in a column name (as patsy prints it)."""
    return str(value)


class Design:
    """A plan with its levels: column names, cells per block, and the saved form."""

    def __init__(self, plan: DesignPlan, levels: dict[str, Sequence], stats: dict | None = None):
        self.plan = plan
        self.levels = {source: tuple(values) for source, values in levels.items()}
        self.stats = (
            None if stats is None else {k: (float(a), float(b)) for k, (a, b) in stats.items()}
        )
        self.references: dict[str, int] = {}
        for code, factor in plan.factors.items():
            if factor.kind != "categorical":
                continue
            if factor.source not in self.levels:
                raise InputError(f"no levels are known for the category '{factor.source}'.")
            values = self.levels[factor.source]
            if not values:
                raise InputError(
                    f"the category '{factor.source}' has no values in the data (every "
                    "row is missing)."
                )
            if factor.has_reference:
                matches = _matching(values, factor.reference)
                if not matches:
                    raise InputError(
                        f"the reference level {factor.reference!r} of '{code}' is "
                        f"not a level of '{factor.source}'; levels are: "
                        f"{', '.join(map(level_label, values[:20]))}"
                        f"{' …' if len(values) > 20 else ''}."
                    )
                self.references[code] = matches[0]
            else:
                self.references[code] = 0
        self.block_cells = [self._cells(b) for b in plan.blocks]
        self.column_names = tuple(
            name
            for b, cells in zip(plan.blocks, self.block_cells)
            for name in self._names(b, cells)
        )
        if len(set(self.column_names)) != len(self.column_names):
            dupes = sorted({n for n in self.column_names if self.column_names.count(n) > 1})
            raise InputError(f"the design has two columns named '{dupes[0]}'.")

    @property
    def state_names(self) -> tuple[str, ...]:
        """Design columns then targets: the columns of the state a pass accumulates."""
        return self.column_names + self.plan.targets

    def restricted(self, **kwargs) -> Design:
        """The design of :meth:`DesignPlan.restricted` (same columns, levels and statistics)."""
        return Design(self.plan.restricted(**kwargs), self.levels, self.stats)

    def with_stats(self, stats: dict | None) -> Design:
        """The same design with the center/scale statistics of a fit (for predicting)."""
        return Design(self.plan, self.levels, stats)

    @property
    def implicit_intercept(self) -> bool:
        """True when a model without an intercept still spans the constant column: a block of
        categories only, all coded full rank (``y ~ C(g) - 1``), whose columns sum to one.

        statsmodels detects this numerically and then reports R² and F about the mean
        (``k_constant = 1``); the model must do the same to agree with it."""
        if self.plan.intercept:
            return False
        return any(not b.numeric and b.categorical and all(b.full_rank) for b in self.plan.blocks)

    def coded_levels(self, code: str, full_rank: bool) -> list[int]:
        values = self.levels[self.plan.factors[code].source]
        if full_rank:
            return list(range(len(values)))
        return [i for i in range(len(values)) if i != self.references[code]]

    def _cells(self, block: Block) -> list[tuple[int, ...]]:
        lists = [self.coded_levels(f, full) for f, full in zip(block.categorical, block.full_rank)]
        # itertools.product varies the last fastest; patsy varies the left-most fastest.
        return [cell[::-1] for cell in itertools.product(*lists[::-1])]

    def _names(self, block: Block, cells) -> list[str]:
        names = []
        for cell in cells:
            level = dict(zip(block.categorical, cell))
            full = dict(zip(block.categorical, block.full_rank))
            parts = []
            for f in block.factors:
                if f in level:
                    label = level_label(self.levels[self.plan.factors[f].source][level[f]])
                    parts.append(f"{f}[{label}]" if full[f] else f"{f}[T.{label}]")
                else:
                    parts.append(f)
            names.append(":".join(parts))
        return names

    # ------------------------------------------------------------------ saved form
    def to_dict(self) -> dict:
        """Plain JSON: the factors, their levels and references, the coded blocks, the names."""
        plan = self.plan
        factors = []
        for code, f in plan.factors.items():
            entry = {
                "code": code,
                "kind": f.kind,
                "expression": f.expression.code,
                "bare_column": f.expression.column == f.expression.code
                and isinstance(f.expression.node, ast.Name),
            }
            if f.transform:
                entry["transform"] = f.transform
            if f.kind == "categorical":
                entry["reference"] = _plain(self.levels[f.source][self.references[code]])
            factors.append(entry)
        return {
            "format": DESIGN_FORMAT,
            "format_version": DESIGN_FORMAT_VERSION,
            "formula": plan.formula,
            "targets": list(plan.targets),
            "intercept": plan.intercept,
            "weight": plan.weight,
            "absorb": list(plan.absorb),
            "factors": factors,
            "levels": {s: [_plain(v) for v in values] for s, values in self.levels.items()},
            "blocks": [
                {
                    "factors": list(b.factors),
                    "numeric": list(b.numeric),
                    "categorical": list(b.categorical),
                    "full_rank": list(b.full_rank),
                }
                for b in plan.blocks
            ],
            "stats": None if self.stats is None else {k: list(v) for k, v in self.stats.items()},
            "columns": list(self.column_names),
        }

    @classmethod
    def from_dict(cls, data: dict, *, where: str = "design") -> Design:
        """Rebuild and validate a design saved by :meth:`to_dict` (the names must come out
        equal)."""
        if not isinstance(data, dict) or data.get("format") != DESIGN_FORMAT:
            raise ModelFormatError(f"{where} is not a streamreg design.")
        if data.get("format_version") != DESIGN_FORMAT_VERSION:
            raise ModelFormatError(
                f"{where} has design format version "
                f"{data.get('format_version')!r}; this streamreg reads version "
                f"{DESIGN_FORMAT_VERSION}."
            )
        try:
            factors = {}
            for entry in data["factors"]:
                code = entry["code"]
                if entry["bare_column"]:
                    name = entry["expression"]
                    expression = Expression(name, (name,), ast.Name(id=name))
                else:
                    expression = parse_expression(entry["expression"])
                has_reference = entry["kind"] == "categorical"
                factors[code] = Factor(
                    code,
                    entry["kind"],
                    expression,
                    entry.get("transform"),
                    entry.get("reference"),
                    has_reference,
                )
            blocks = [
                Block(
                    tuple(b["factors"]),
                    tuple(b["numeric"]),
                    tuple(b["categorical"]),
                    tuple(bool(x) for x in b["full_rank"]),
                )
                for b in data["blocks"]
            ]
            plan = DesignPlan(
                targets=data["targets"],
                factors=factors,
                blocks=blocks,
                intercept=bool(data["intercept"]),
                weight=data["weight"],
                absorb=data["absorb"],
                formula=data["formula"],
            )
            stats = data.get("stats")
            design = cls(plan, {s: list(v) for s, v in data["levels"].items()}, stats)
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelFormatError(f"{where}: the design is malformed ({exc}).") from exc
        if list(design.column_names) != list(data["columns"]):
            raise ModelFormatError(
                f"{where}: the saved column names do not match the design they were saved with."
            )
        return design


def _matching(values, reference) -> list[int]:
    """Positions of ``reference`` among the levels: by value and type, else (a level given as
    text on the command line, ``--reference k=3``) by its printed form."""
    exact = [i for i, v in enumerate(values) if v == reference and type(v) is type(reference)]
    if exact or not isinstance(reference, str):
        return exact or [i for i, v in enumerate(values) if v == reference]
    return [i for i, v in enumerate(values) if level_label(v) == reference]


def _plain(value):
    """A JSON-ready level: numpy scalars become Python ones."""
    return value.item() if isinstance(value, np.generic) else value


__all__ = ["Block", "Design", "DesignPlan", "Factor", "code_terms", "column_kind", "level_label"]
