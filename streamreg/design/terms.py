r"""Terms → coded blocks: the kinds of factors and patsy's choice of contrasts.

A factor is *categorical* when written ``C(...)``, or when it is a bare column
holding text or dictionary codes (or booleans, in a formula), or a column marked
categorical; every other factor is *numeric*. :func:`code_terms` orders the terms
as patsy does and splits each into *blocks* (subterms) whose categorical factors
are coded reduced (treatment) or full rank so that no column is implied by the
columns of earlier terms (patsy's ``pick_contrasts_for_term``); see
:mod:`streamreg.design.coding`.

>>> from streamreg.design.formula import Term
>>> [b.full_rank for b in code_terms([Term(("x", "g"))], {"x": "numeric", "g": "categorical"},
...                                   intercept=True)]
[(True,)]
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import pyarrow as pa

from ..errors import InputError, SchemaError
from .expressions import Expression, is_temporal, is_text_like
from .formula import FactorSpec, Term


@dataclass(frozen=True)
class Factor:
    """A resolved factor. ``expression`` is what is evaluated per row: the number (the inner
    expression of a transform) or the category's source column or date part."""

    code: str
    kind: str  # "numeric" or "categorical"
    expression: Expression
    transform: str | None = None  # center / scale / standardize
    reference: object = None
    has_reference: bool = False

    @property
    def source(self) -> str:
        """The key of the category's levels (two factors on one column share them)."""
        return self.expression.code


@dataclass(frozen=True)
class Block:
    """One subterm: numeric factors times the coded categorical factors."""

    factors: tuple[str, ...]  # term order (names join these)
    numeric: tuple[str, ...]
    categorical: tuple[str, ...]
    full_rank: tuple[bool, ...]  # per categorical factor


def column_kind(dtype: pa.DataType, *, marked: bool = False) -> str | None:
    """``categorical``, ``numeric`` or None (unusable) for a column used as a bare factor."""
    if is_text_like(dtype) or pa.types.is_boolean(dtype):
        return "categorical"
    if marked and (pa.types.is_integer(dtype) or pa.types.is_floating(dtype)):
        return "categorical"
    if (
        pa.types.is_integer(dtype)
        or pa.types.is_floating(dtype)
        or pa.types.is_decimal(dtype)
        or is_temporal(dtype)
    ):
        return "numeric"
    return None


def check_absorb(absorb: Sequence[str]) -> None:
    """One absorbed factor is supported; refuse more in one sentence."""
    if len(absorb) > 1:
        raise InputError(
            f"absorbing {len(absorb)} factors ({', '.join(absorb)}) needs alternating "
            "projections, one pass over the data per sweep, which streamreg does not do; absorb "
            f"the factor with the most levels and add the others as C(...) terms, e.g. "
            f"'y ~ x + C({absorb[1]}) | {absorb[0]}'."
        )


def resolve_factor(spec: FactorSpec, schema: pa.Schema, marked: set) -> Factor:
    spec.expression.check(schema, spec.code)
    if spec.kind == "name":
        column = spec.expression.column
        kind = column_kind(schema.field(column).type, marked=column in marked)
        if kind is None:
            raise SchemaError(
                f"column '{column}' has type {schema.field(column).type}; a formula "
                "term must be numbers, text, booleans, dates or timestamps."
            )
        return Factor(spec.code, kind, spec.expression)
    if spec.kind == "categorical":
        column = spec.expression.column
        if (
            column is not None
            and column_kind(schema.field(column).type, marked=True) != "categorical"
        ):
            raise SchemaError(
                f"the formula term '{spec.code}' uses column '{column}' of type "
                f"{schema.field(column).type} as a category; categories are text, "
                "booleans or whole or real numbers (for dates use a date part, "
                "e.g. C(month(d)))."
            )
        return Factor(
            spec.code,
            "categorical",
            spec.expression,
            reference=spec.reference,
            has_reference=spec.has_reference,
        )
    for column in spec.expression.columns:
        dtype = schema.field(column).type
        if column_kind(dtype) != "numeric" and not pa.types.is_boolean(dtype):
            raise SchemaError(
                f"the formula term '{spec.code}' computes with column '{column}' of "
                f"type {dtype}; expected numbers, dates or timestamps."
            )
    return Factor(spec.code, "numeric", spec.expression, transform=spec.transform)


def check_weight(weight, schema, factors) -> None:
    if weight is None:
        return
    if weight not in schema.names:
        raise SchemaError(
            f"weight column '{weight}' is not in the data; columns are: {', '.join(schema.names)}."
        )
    transformed = [c for c, f in factors.items() if f.transform]
    if transformed:
        raise InputError(
            f"the term '{transformed[0]}' centers or scales with the unweighted "
            "statistics (as patsy and statsmodels do), which a weighted fit does not "
            "hold; center the column before fitting, or fit without weight."
        )


# ---------------------------------------------------------------------------- patsy's contrasts
def code_terms(
    terms: Sequence[Term], kinds: dict[str, str], intercept: bool, *, reorder: bool = True
) -> list[Block]:
    """Subterms (blocks) of ``terms`` in patsy's order with patsy's choice of full-rank coding.

    With ``reorder=False`` (a feature list) the terms keep their given order; the
    choice of coding is the same.
    """
    all_terms = ([Term(())] if intercept else []) + list(terms)
    buckets: dict[frozenset, list[Term]] = {}
    for term in all_terms:
        bucket = frozenset(f for f in term.factors if kinds[f] == "numeric")
        buckets.setdefault(bucket, []).append(term)
    order = sorted(buckets, key=lambda b: (len(b) > 0, list(buckets).index(b)))
    sequence: list[Term] = []
    coded: dict[frozenset, list[Block]] = {}
    for bucket in order:
        used: set = set()
        members = buckets[bucket]
        if reorder:
            members = sorted(members, key=lambda t: len(t.factors))
        sequence.extend(members)
        for term in members:
            blocks = []
            categorical = [f for f in term.factors if kinds[f] == "categorical"]
            for coding in _pick_contrasts(categorical, used):
                numeric = tuple(f for f in term.factors if kinds[f] == "numeric")
                cats = tuple(f for f in term.factors if f in coding)
                factors = tuple(f for f in term.factors if kinds[f] == "numeric" or f in coding)
                if factors:  # the intercept's subterm is implicit in a centered state
                    blocks.append(Block(factors, numeric, cats, tuple(coding[f] for f in cats)))
            coded[term.key] = blocks
    if not reorder:
        sequence = all_terms
    return [b for term in sequence for b in coded[term.key]]


def _pick_contrasts(categorical: Sequence[str], used: set) -> list[dict[str, bool]]:
    """patsy's rule: the subsets of the term's categorical factors not spanned yet, merged."""
    subterms = []
    for size in range(len(categorical) + 1):
        for subset in itertools.combinations(categorical, size):
            key = frozenset((f, False) for f in subset)
            if key not in used:
                subterms.append(key)
    used.update(subterms)
    merged = True
    while merged:
        merged = False
        for i, short in enumerate(subterms):
            for j in range(i + 1, len(subterms)):
                long = subterms[j]
                if len(long) - len(short) == 1 and long >= short:
                    (extra,) = long - short
                    subterms[j] = short | {(extra[0], True)}
                    subterms.pop(i)
                    merged = True
                    break
            if merged:
                break
    return [dict(s) for s in subterms]


# ---------------------------------------------------------------------------- with levels
