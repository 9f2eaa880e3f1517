r"""Formulas (Wilkinson–Rogers / R / patsy syntax) → targets, terms and factors.

The text is tokenized and parsed into a syntax tree by `formulaic
<https://matthewwardrop.github.io/formulaic/>`_; the tree is then expanded into
terms with patsy's rules (which is what statsmodels uses, so terms come out in
statsmodels' order and coefficient names match)::

    a + b     terms of a, then those of b not already present
    a - b     terms of a without those of b;  "- 1", "+ 0", "0 +" drop the intercept
    a : b     every term of a joined with every term of b (factors in written order)
    a * b     a + b + a:b            a / b    a + (all factors of a):b
    (a + b)**2   a + b + a:b        y1 + y2 ~ x   two targets
    y ~ x | firm   absorb the factor `firm` (pyfixest/fixest syntax)

A term is a set of factors: ``a:b`` and ``b:a`` are the same term (the first
spelling wins). Each factor is one of

* ``C(col)``, ``C(col, Treatment('ref'))``, ``C(col, Treatment(reference='ref'))``
  — a category with treatment coding (the reference level defaults to the first
  sorted level); ``C(month(ts))`` takes a date part as the category;
* ``center(e)``, ``scale(e)``, ``standardize(e)`` — a stateless expression ``e``
  centered (and scaled to unit variance, ddof 0, as patsy does) with the
  statistics of the fitted rows themselves; see :mod:`streamreg.design.coding`;
* any other expression of :mod:`streamreg.design.expressions` — a number per row. A bare
  column name is a category when the column holds text, dictionary codes or
  booleans (as patsy treats them) and a number otherwise.

Refused in one sentence each: unknown operators (``%in%``, ``^``, ``.``), a term
that is a constant, an intercept inside an interaction, a formula with no terms,
three or more ``|`` parts.

>>> f = parse_formula("y ~ x1 + np.log(x2) + C(region) + x1:C(region)")
>>> f.targets, [t.factors for t in f.terms], f.intercept
(('y',), [('x1',), ('np.log(x2)',), ('C(region)',), ('x1', 'C(region)')], True)
>>> [t.factors for t in parse_formula("y ~ (a + b)**2 - 1").terms]
[('a',), ('b',), ('a', 'b')]
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

from ..errors import InputError
from .expressions import DATE_PARTS, STATEFUL, Expression, normalize_code, parse_expression

# Treatment coding is the one contrast streamreg encodes (as statsmodels' default does).
CONTRASTS = ("Treatment",)


@dataclass(frozen=True)
class Term:
    """A product of factors, named by their codes in written order."""

    factors: tuple[str, ...]

    @property
    def key(self) -> frozenset:
        return frozenset(self.factors)

    @property
    def name(self) -> str:
        return ":".join(self.factors)


@dataclass(frozen=True)
class FactorSpec:
    """One factor as written: how to evaluate it, before the data says what kind it is.

    ``kind`` is ``categorical`` (``C(...)``), ``numeric`` (an expression or a
    stateful transform), or ``name`` (a bare column: numeric or categorical by
    its type). ``transform`` is ``center``/``scale``/``standardize`` or None.
    """

    code: str
    kind: str
    expression: Expression
    transform: str | None = None
    reference: object = None  # explicit Treatment reference level, if given
    has_reference: bool = False


@dataclass(frozen=True)
class ParsedFormula:
    """Targets, terms (without the intercept) and absorbed factors of a formula."""

    text: str
    targets: tuple[str, ...]
    terms: tuple[Term, ...]
    intercept: bool
    absorb: tuple[str, ...]
    factors: dict  # code → FactorSpec, for every factor of the targets and terms

    def __hash__(self):
        return hash(self.text)


def parse_formula(text: str) -> ParsedFormula:
    """Parse ``text`` (``targets ~ terms [| absorbed]``) and check every factor's syntax."""
    from formulaic.errors import FormulaicError
    from formulaic.parser import DefaultFormulaParser

    if not isinstance(text, str) or "~" not in text:
        raise InputError(
            f"a formula needs a target and terms separated by '~', e.g. "
            f"'y ~ x1 + x2'; got {text!r}."
        )
    try:
        tree = DefaultFormulaParser(include_intercept=False).get_ast(text)
    except FormulaicError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"the formula {text!r} does not parse: {first}") from None
    if _symbol(tree) != "~" or len(tree.args) != 2:
        raise InputError(f"the formula {text!r} needs exactly one '~' with targets on its left.")
    lhs, rhs = tree.args
    absorb: tuple[str, ...] = ()
    if _symbol(rhs) == "|":
        parts = _split_bars(rhs)
        if len(parts) > 2:
            raise InputError(
                f"the formula {text!r} has {len(parts)} parts separated by '|'; "
                "streamreg reads 'y ~ x | fixed effects' (instrumental-variable parts "
                "are not supported)."
            )
        rhs, absorb = parts[0], _absorbed(parts[1], text)
    factors: dict[str, FactorSpec] = {}
    left = _Expansion.of(lhs, text, factors)
    if left.intercept or not left.terms or any(len(t.factors) != 1 for t in left.terms):
        raise InputError(
            f"the left side of {text!r} must name one or more target columns or "
            "expressions joined by '+', e.g. 'y ~ x' or 'y1 + y2 ~ x'."
        )
    targets = tuple(t.factors[0] for t in left.terms)
    for code in targets:
        if factors[code].kind == "categorical" or factors[code].transform:
            raise InputError(
                f"the target '{code}' must be a number per row; C(), center(), "
                "scale() and standardize() cannot be targets."
            )
    right = _Expansion.of(rhs, text, factors)
    intercept = not right.removed  # patsy: the right side has an intercept unless it was removed
    if not right.terms:
        what = "only an intercept" if intercept else "no terms"
        raise InputError(
            f"the formula {text!r} has {what}; name at least one feature on the right of '~'."
        )
    used = {f for t in right.terms for f in t.factors} | set(targets)
    clash = set(targets) & {f for t in right.terms for f in t.factors}
    if clash:
        raise InputError(f"'{sorted(clash)[0]}' is both a target and a term of {text!r}.")
    return ParsedFormula(
        text,
        targets,
        tuple(right.terms),
        intercept and not absorb,
        absorb,
        {code: spec for code, spec in factors.items() if code in used},
    )


def parse_factor(text: str) -> FactorSpec:
    """Classify one factor: ``C(...)``, a stateful transform, a bare name or an expression."""
    try:
        node = ast.parse(text.strip(), mode="eval").body
    except SyntaxError:
        node = None
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "C":
        return _categorical(node, text)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in STATEFUL:
        name = node.func.id
        if len(node.args) != 1 or node.keywords:
            raise InputError(
                f"the formula term '{normalize_code(text)}': {name}() takes one "
                "expression and no options."
            )
        inner = parse_expression(ast.get_source_segment(text.strip(), node.args[0]))
        return FactorSpec(normalize_code(text), "numeric", inner, transform=name)
    expression = parse_expression(text)
    kind = "name" if expression.column is not None else "numeric"
    return FactorSpec(expression.code, kind, expression)


def _categorical(node: ast.Call, text: str) -> FactorSpec:
    code = normalize_code(text)
    if node.keywords or not 1 <= len(node.args) <= 2:
        raise InputError(
            f"the formula term '{code}': C() takes a column and optionally a coding, "
            "e.g. C(region, Treatment('north'))."
        )
    source = ast.get_source_segment(text.strip(), node.args[0])
    expression = parse_expression(source)
    if expression.column is None and expression.date_part is None:
        raise InputError(
            f"the formula term '{code}': C() takes a column or a date part such as "
            "month(ts), not an expression."
        )
    if len(node.args) == 1:
        return FactorSpec(code, "categorical", expression)
    coding = node.args[1]
    if isinstance(coding, ast.Call) and isinstance(coding.func, ast.Name):
        name = coding.func.id
    else:
        name = coding.id if isinstance(coding, ast.Name) else None
    if name not in CONTRASTS:
        shown = ast.get_source_segment(text.strip(), coding)
        raise InputError(
            f"the formula term '{code}' asks for the coding '{shown}'; streamreg "
            "encodes categories with Treatment coding only (Treatment or "
            "Treatment('reference level'))."
        )
    if isinstance(coding, ast.Name):
        return FactorSpec(code, "categorical", expression)
    given = list(coding.args) + [k.value for k in coding.keywords if k.arg == "reference"]
    if len(given) != 1 or len(coding.args) + len(coding.keywords) != 1:
        raise InputError(
            f"the formula term '{code}': Treatment() takes one reference level, "
            "e.g. Treatment('north') or Treatment(reference='north')."
        )
    try:
        reference = ast.literal_eval(given[0])
    except ValueError:
        raise InputError(
            f"the formula term '{code}': the reference level must be a literal "
            "value such as 'north' or 3."
        ) from None
    return FactorSpec(code, "categorical", expression, reference=reference, has_reference=True)


# ---------------------------------------------------------------------------- patsy's term algebra
@dataclass
class _Expansion:
    """patsy's intermediate expression: terms, and whether the intercept was added or removed."""

    intercept: bool
    removed: bool
    terms: list[Term]

    @classmethod
    def of(cls, node, text: str, factors: dict) -> _Expansion:
        return _expand(node, text, factors)

    def check_interactable(self, text: str) -> None:
        if self.intercept:
            raise InputError(
                f"in the formula {text!r} the intercept (1) cannot interact with other terms."
            )


def _symbol(node) -> str | None:
    operator = getattr(node, "operator", None)
    return operator.symbol if operator is not None else None


def _split_bars(node) -> list:
    if _symbol(node) == "|":
        return [p for arg in node.args for p in _split_bars(arg)]
    return [node]


def _absorbed(node, text: str) -> tuple[str, ...]:
    if _symbol(node) == "+":
        return tuple(n for arg in node.args for n in _absorbed(arg, text))
    token = node if _symbol(node) is None else None
    kind = getattr(getattr(token, "kind", None), "value", None)
    if token is None or kind != "name":
        shown = _source(node) or str(node)
        raise InputError(
            f"the fixed-effect part of {text!r} must name columns joined by '+' "
            f"(e.g. '| firm'); '{shown}' is not a column name."
        )
    return (token.token,)


def _source(token) -> str | None:
    start, end = getattr(token, "source_start", None), getattr(token, "source_end", None)
    if token is None or start is None or end is None or token.source is None:
        return None
    return token.source[start : end + 1]


def _dedup(terms) -> list[Term]:
    seen: dict[frozenset, Term] = {}
    for term in terms:
        seen.setdefault(term.key, term)
    return list(seen.values())


def _join(left: Term, right: Term) -> Term:
    return Term(left.factors + tuple(f for f in right.factors if f not in left.factors))


def _interact(left: list[Term], right: list[Term]) -> list[Term]:
    return _dedup(_join(a, b) for a in left for b in right)


def _expand(node, text: str, factors: dict) -> _Expansion:
    symbol = _symbol(node)
    if symbol is None:
        return _leaf(node, text, factors)
    args = [_expand(a, text, factors) for a in node.args] if symbol != "**" else None
    arity = len(node.args)
    if symbol == "+" and arity == 2:
        left, right = args
        terms = _dedup(left.terms + right.terms)
        if right.intercept:
            return _Expansion(True, False, terms)
        if right.removed:
            return _Expansion(False, True, terms)
        return _Expansion(left.intercept, left.removed, terms)
    if symbol == "-" and arity == 2:
        left, right = args
        drop = {t.key for t in right.terms}
        terms = [t for t in left.terms if t.key not in drop]
        if right.intercept:
            return _Expansion(False, True, terms)
        return _Expansion(left.intercept, left.removed, terms)
    if symbol == "+" and arity == 1:
        return args[0]
    if symbol == "-" and arity == 1:
        (inner,) = args
        if inner.intercept and not inner.terms:
            return _Expansion(False, True, [])
        if inner.removed and not inner.terms:
            return _Expansion(True, False, [])
        raise InputError(
            f"in the formula {text!r} a leading '-' applies only to 1 or 0 "
            "(to drop or keep the intercept)."
        )
    if symbol in (":", "*", "/"):
        left, right = args
        left.check_interactable(text)
        right.check_interactable(text)
        if symbol == ":":
            return _Expansion(False, False, _interact(left.terms, right.terms))
        if symbol == "*":
            return _Expansion(
                False, False, _dedup(left.terms + right.terms + _interact(left.terms, right.terms))
            )
        everything = Term(tuple(dict.fromkeys(f for t in left.terms for f in t.factors)))
        return _Expansion(False, False, _dedup(left.terms + _interact([everything], right.terms)))
    if symbol == "**":
        base = _expand(node.args[0], text, factors)
        base.check_interactable(text)
        power = node.args[1]
        value = getattr(power, "token", None)
        if _symbol(power) is not None or not str(value).isdigit() or int(value) < 1:
            raise InputError(
                f"in the formula {text!r} '**' needs a positive whole number on its "
                "right, as in (a + b)**2."
            )
        terms, current = list(base.terms), list(base.terms)
        for _ in range(int(value) - 1):
            current = _interact(base.terms, current)
            terms = _dedup(terms + current)
        return _Expansion(False, False, terms)
    raise InputError(
        f"the formula {text!r} uses the operator '{symbol}', which streamreg does not "
        "support (use + - : * / ** and parentheses)."
    )


def _leaf(token, text: str, factors: dict) -> _Expansion:
    kind = getattr(getattr(token, "kind", None), "value", None)
    if kind == "value":
        if token.token == "1":
            return _Expansion(True, False, [])
        if token.token == "0":
            return _Expansion(False, True, [])
        raise InputError(
            f"the formula {text!r} holds the constant {token.token}, which is not a "
            "term; write I(...) for arithmetic, e.g. I(2 * x)."
        )
    if kind not in ("name", "python"):
        raise InputError(f"the formula {text!r} holds '{token.token}', which is not a term.")
    if kind == "name":
        original = token.token
        column = Expression(original, (original,), ast.Name(id=original))
        spec = FactorSpec(original, "name", column)
    else:
        original = _source(token) or token.token
        if original.startswith("{"):
            original = original.strip("{}")
        spec = parse_factor(original)
    spec = factors.setdefault(spec.code, spec)
    return _Expansion(False, False, [Term((spec.code,))])


__all__ = ["DATE_PARTS", "FactorSpec", "ParsedFormula", "Term", "parse_factor", "parse_formula"]
