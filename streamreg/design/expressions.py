r"""Factor expressions of the model language: parsed once, evaluated on every Arrow batch.

A formula factor such as ``np.log(value + 1)`` or ``I(x ** 2)`` is Python
syntax; it is parsed with :mod:`ast` and accepted only when every node is on a
short list — column names, numbers, ``+ - * / ** //``, unary minus, and the
functions below — so nothing in a formula is ever executed as code. Every
function here is *stateless*: a row's value depends on that row alone, which is
what lets a batch be encoded without seeing the others.

* numeric functions (also spelled ``np.f`` / ``numpy.f``): ``log log2 log10
  log1p exp exp2 expm1 sqrt cbrt abs absolute square sin cos tan arcsin arccos
  arctan sinh cosh tanh power`` and the identity ``I()``;
* date parts of a date or timestamp column: ``year month day hour minute second
  weekday`` (Monday = 0) ``dayofyear quarter`` (local time of a time-zone-aware
  column).

**Dates and timestamps as numbers.** A date column read as a number is *days
since 1970-01-01* (so a coefficient reads "per day" and every date is an exact
integer in float64); a timestamp column is *seconds since 1970-01-01T00:00:00
UTC* (Unix time, the SI unit; float64 keeps today's instants to about 0.2 µs).
Times of day and durations are seconds. The large offsets this gives are
harmless: states keep centered moments with double-double means.

The name of a factor is its source text with spaces normalized the way patsy
(and so statsmodels) prints it — ``np.log( value+1 )`` is ``np.log(value + 1)``,
quotes are kept as written — so coefficient names equal statsmodels'.

>>> import pyarrow as pa
>>> expr = parse_expression("np.log( value+1 )")
>>> expr.code, expr.columns
('np.log(value + 1)', ('value',))
>>> expr.evaluate(pa.record_batch({"value": [0.0, 1.718281828459045]})).round(12).tolist()
[0.0, 1.0]
"""

from __future__ import annotations

import ast
import io
import tokenize
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import InputError, SchemaError

NUMERIC_FUNCTIONS = {
    "log": np.log,
    "log2": np.log2,
    "log10": np.log10,
    "log1p": np.log1p,
    "exp": np.exp,
    "exp2": np.exp2,
    "expm1": np.expm1,
    "sqrt": np.sqrt,
    "cbrt": np.cbrt,
    "abs": np.abs,
    "absolute": np.abs,
    "square": np.square,
    "sin": np.sin,
    "cos": np.cos,
    "tan": np.tan,
    "arcsin": np.arcsin,
    "arccos": np.arccos,
    "arctan": np.arctan,
    "sinh": np.sinh,
    "cosh": np.cosh,
    "tanh": np.tanh,
}
DATE_PARTS = {
    "year": pc.year,
    "month": pc.month,
    "day": pc.day,
    "hour": pc.hour,
    "minute": pc.minute,
    "second": pc.second,
    "weekday": pc.day_of_week,
    "dayofyear": pc.day_of_year,
    "quarter": pc.quarter,
}
# Functions whose statistics come from the fit's own pass (see streamreg.design.coding); they are
# recognized here only to be refused where they cannot be honoured (inside other functions).
STATEFUL = ("center", "scale", "standardize")
# patsy/formulaic transforms whose basis, knots or bins come from the whole data set.
DATA_DEPENDENT = (
    "bs",
    "cr",
    "cc",
    "te",
    "poly",
    "hashed",
    "lag",
    "cut",
    "qcut",
    "rank",
    "splines",
    "scale_by",
    "demean",
)
NUMPY_MODULES = ("np", "numpy")
_BINARY = {
    ast.Add: np.add,
    ast.Sub: np.subtract,
    ast.Mult: np.multiply,
    ast.Div: np.true_divide,
    ast.Pow: np.power,
    ast.FloorDiv: np.floor_divide,
    ast.Mod: np.mod,
}
_SECONDS_PER = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}
_LAYOUT_TOKENS = (
    tokenize.NEWLINE,
    tokenize.NL,
    tokenize.ENDMARKER,
    tokenize.INDENT,
    tokenize.DEDENT,
)


@dataclass(frozen=True)
class Expression:
    """A parsed, checked factor expression: ``code`` (its normalized text) and the columns it
    reads."""

    code: str
    columns: tuple[str, ...]
    node: ast.AST = field(compare=False, repr=False)

    @property
    def column(self) -> str | None:
        """The column name when the expression is a bare column, else None."""
        return self.node.id if isinstance(self.node, ast.Name) else None

    @property
    def date_part(self) -> str | None:
        """``'month'`` for ``month(d)``: a date part of one column (usable as a category)."""
        node = self.node
        if isinstance(node, ast.Call) and _function_name(node.func) in DATE_PARTS:
            return _function_name(node.func)
        return None

    def check(self, schema: pa.Schema, factor: str | None = None) -> None:
        """Every column exists and has a type the expression can use."""
        factor = factor or self.code
        for name in self.columns:
            if name not in schema.names:
                raise SchemaError(
                    f"the formula term '{factor}' uses column '{name}', which is not "
                    f"in the data; columns are: {', '.join(schema.names)}."
                )
        _check_types(self.node, schema, factor)

    def evaluate(self, batch) -> np.ndarray:
        """Float64 values for the rows of ``batch`` (a record batch or a name → array mapping);
        a null input gives NaN."""
        return as_float(_eval(self.node, batch), self.code)

    def evaluate_arrow(self, batch) -> pa.Array:
        """The raw Arrow values of a bare column or a date part (for categories)."""
        value = _eval(self.node, batch)
        if not isinstance(value, (pa.Array, pa.ChunkedArray)):
            raise InputError(f"the term '{self.code}' does not name a column or a date part.")
        return value


def parse_expression(text: str) -> Expression:
    """Parse one factor expression; refuse anything outside the model language in one sentence."""
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise InputError(
            f"the formula term '{text.strip()}' is not a valid expression ({exc.msg})."
        ) from None
    code = normalize_code(text)
    body = _QuotedNames().visit(tree).body
    columns: list[str] = []
    _check_node(body, code, columns, inside_function=False)
    return Expression(code, tuple(dict.fromkeys(columns)), body)


class _QuotedNames(ast.NodeTransformer):
    """patsy's ``Q("odd name")`` is the column of that name."""

    def visit_Call(self, node):
        self.generic_visit(node)
        if (
            isinstance(node.func, ast.Name)
            and node.func.id == "Q"
            and len(node.args) == 1
            and not node.keywords
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            return ast.copy_location(ast.Name(id=node.args[0].value, ctx=ast.Load()), node)
        return node


def normalize_code(text: str) -> str:
    """Source text with patsy's spacing: binary operators spaced, ``f(a, b=1)``, ``-1`` kept tight.

    >>> normalize_code("I(x**-1)"), normalize_code('C( g ,Treatment( "b"))')
    ('I(x ** -1)', 'C(g, Treatment("b"))')
    """
    try:
        lines = io.StringIO(text.strip()).readline
        tokens = [(t.type, t.string) for t in tokenize.generate_tokens(lines)]
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return text.strip()
    out: list[str] = []
    space_next = False  # the previous token asked for a space after it
    prev_word = False  # the previous token was a name, number or string
    prev_object = False  # ... or a closing bracket: a following + or - is binary
    prev_open_or_comma = False
    brackets: list[str] = []
    for kind, tok in tokens:
        if kind in _LAYOUT_TOKENS:
            continue
        if kind in (tokenize.NAME, tokenize.NUMBER, tokenize.STRING):
            if space_next or prev_word:
                out.append(" ")
            out.append(tok)
            space_next, prev_word = False, True
        else:
            if tok in "([{":
                brackets.append(tok)
            elif tok in ")]}" and brackets:
                brackets.pop()
            before = after = tok in (
                "+",
                "-",
                "*",
                "/",
                "//",
                "%",
                "**",
                "==",
                "!=",
                "<",
                ">",
                "<=",
                ">=",
                "=",
                "&",
                "|",
                "^",
                "<<",
                ">>",
                "@",
            )
            if tok in (",", ":"):
                after = not (tok == ":" and brackets and brackets[-1] == "[")
            if tok == "=" and brackets:
                before = after = False  # keyword argument
            if tok in ("*", "**") and prev_open_or_comma:
                before = after = False  # f(*args)
            if tok in ("+", "-") and not prev_object:
                before = after = False  # unary
            if space_next or before:
                out.append(" ")
            out.append(tok)
            space_next, prev_word = after, False
        prev_object = kind in (tokenize.NAME, tokenize.NUMBER, tokenize.STRING) or tok in (")", "]")
        prev_open_or_comma = tok in ("(", ",")
    return "".join(out)


def as_float(value, what: str = "value") -> np.ndarray:
    """Float64 numpy values of an Arrow array (dates → days, timestamps → seconds) or numbers."""
    if isinstance(value, (pa.Array, pa.ChunkedArray)):
        return arrow_to_float(value, what)
    return np.asarray(value, dtype=np.float64)


def arrow_to_float(column, what: str = "column") -> np.ndarray:
    """Float64 values of a numeric, boolean, decimal or temporal Arrow array; nulls become NaN."""
    dtype = column.type
    if pa.types.is_dictionary(dtype):
        if isinstance(column, pa.ChunkedArray):
            column = pa.chunked_array(
                [c.cast(dtype.value_type) for c in column.chunks], dtype.value_type
            )
        else:
            column = column.cast(dtype.value_type)
        dtype = dtype.value_type
    if pa.types.is_date32(dtype):
        return column.cast(pa.int32()).cast(pa.float64()).to_numpy(zero_copy_only=False)
    if pa.types.is_date64(dtype):
        millis = column.cast(pa.int64()).to_numpy(zero_copy_only=False).astype(np.float64)
        return millis / 86_400_000.0
    if pa.types.is_timestamp(dtype) or pa.types.is_duration(dtype) or pa.types.is_time(dtype):
        counts = column.cast(pa.int64()).cast(pa.float64()).to_numpy(zero_copy_only=False)
        return counts * _SECONDS_PER[dtype.unit]
    if not (
        pa.types.is_integer(dtype)
        or pa.types.is_floating(dtype)
        or pa.types.is_boolean(dtype)
        or pa.types.is_decimal(dtype)
        or pa.types.is_null(dtype)
    ):
        raise SchemaError(f"'{what}' has type {dtype}; expected numbers, dates or timestamps.")
    if not pa.types.is_float64(dtype):
        column = column.cast(pa.float64(), safe=False)
    return column.to_numpy(zero_copy_only=False)


def is_temporal(dtype: pa.DataType) -> bool:
    return (
        pa.types.is_date(dtype)
        or pa.types.is_timestamp(dtype)
        or pa.types.is_time(dtype)
        or pa.types.is_duration(dtype)
    )


def is_text_like(dtype: pa.DataType) -> bool:
    """String and dictionary columns: always categories."""
    return (
        pa.types.is_string(dtype)
        or pa.types.is_large_string(dtype)
        or pa.types.is_dictionary(dtype)
        or getattr(pa.types, "is_string_view", lambda _: False)(dtype)
    )


# ---------------------------------------------------------------------------- checking
def _function_name(func: ast.AST) -> str | None:
    if isinstance(func, ast.Name):
        return func.id
    if (
        isinstance(func, ast.Attribute)
        and isinstance(func.value, ast.Name)
        and func.value.id in NUMPY_MODULES
    ):
        return func.attr
    return None


def _check_node(node: ast.AST, code: str, columns: list[str], inside_function: bool) -> None:
    if isinstance(node, ast.Name):
        columns.append(node.id)
        return
    if isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, (int, float)):
            raise InputError(
                f"the formula term '{code}' holds the constant {node.value!r}; only "
                "numbers may appear in an expression."
            )
        return
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        _check_node(node.operand, code, columns, inside_function)
        return
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        _check_node(node.left, code, columns, inside_function)
        _check_node(node.right, code, columns, inside_function)
        return
    if isinstance(node, ast.Call):
        name = _function_name(node.func)
        if name in DATA_DEPENDENT:
            raise InputError(
                f"the formula term '{code}' calls '{name}', a transform whose basis, "
                "knots or bins come from the whole data set, which one streaming pass "
                "cannot compute; use a stateless expression or center()/scale()."
            )
        if node.keywords:
            raise InputError(
                f"the formula term '{code}' passes keyword arguments to "
                f"'{name or ast.unparse(node.func)}'; none are accepted."
            )
        if name in STATEFUL:
            raise InputError(
                f"the formula term '{code}' uses {name}() inside another expression; "
                f"{name}() is accepted only as a whole term, because its statistics "
                "come from the fit's own pass."
            )
        if name == "C" or name == "Treatment":
            raise InputError(
                f"the formula term '{code}' uses {name}() inside an expression; "
                "C(...) must be a whole factor, e.g. C(region) or x:C(region)."
            )
        arity = 2 if name == "power" else 1
        plain_i = name == "I" and isinstance(node.func, ast.Name)
        if plain_i or name in NUMERIC_FUNCTIONS or name == "power":
            if len(node.args) != arity:
                raise InputError(
                    f"the formula term '{code}' calls {name}() with {len(node.args)} "
                    f"arguments; it takes {arity}."
                )
            for arg in node.args:
                _check_node(arg, code, columns, True)
            return
        if name in DATE_PARTS and isinstance(node.func, ast.Name):
            if len(node.args) != 1 or not isinstance(node.args[0], ast.Name):
                raise InputError(
                    f"the formula term '{code}': {name}() takes one date or timestamp "
                    "column, e.g. month(ts)."
                )
            columns.append(node.args[0].id)
            return
        shown = ast.unparse(node.func)
        known = ", ".join(sorted({*NUMERIC_FUNCTIONS, "I", "power", *DATE_PARTS, *STATEFUL, "C"}))
        raise InputError(
            f"the formula term '{code}' calls '{shown}', which is not a function of "
            f"the model language; known: {known} (numeric ones also as np.<name>)."
        )
    raise InputError(
        f"the formula term '{code}' holds '{ast.unparse(node)}', which the model "
        "language does not evaluate (only columns, numbers, + - * / ** and "
        "functions)."
    )


def _check_types(node: ast.AST, schema: pa.Schema, factor: str) -> None:
    for sub in ast.walk(node):
        if isinstance(sub, ast.Call) and _function_name(sub.func) in DATE_PARTS:
            column = sub.args[0].id
            dtype = schema.field(column).type
            part = _function_name(sub.func)
            time_only = part in ("hour", "minute", "second")
            if not (pa.types.is_timestamp(dtype) or (pa.types.is_date(dtype) and not time_only)):
                wanted = "a timestamp" if time_only else "a date or timestamp"
                raise SchemaError(
                    f"the formula term '{factor}' takes {part}() of column "
                    f"'{column}', which has type {dtype}; expected {wanted} column."
                )
    if isinstance(node, ast.Name):
        return  # a bare column: numeric or categorical, decided by the caller
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name) and sub.id in schema.names:
            dtype = schema.field(sub.id).type
            if is_text_like(dtype):
                raise SchemaError(
                    f"the formula term '{factor}' computes with column '{sub.id}', "
                    f"which holds text ({dtype}); wrap it as C({sub.id}) to use it "
                    "as a category."
                )


# ---------------------------------------------------------------------------- evaluating
def _lookup(batch, name: str):
    if isinstance(batch, (pa.RecordBatch, pa.Table)):
        return batch.column(name)
    return batch[name]


def _eval(node: ast.AST, batch):
    if isinstance(node, ast.Name):
        return _lookup(batch, node.id)
    if isinstance(node, ast.Constant):
        return float(node.value)
    if isinstance(node, ast.UnaryOp):
        value = as_float(_eval(node.operand, batch))
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.BinOp):
        left = as_float(_eval(node.left, batch))
        right = as_float(_eval(node.right, batch))
        with np.errstate(all="ignore"):  # NaN and ±inf are screened by the encoder, row by row
            return _BINARY[type(node.op)](left, right)
    name = _function_name(node.func)
    if name in DATE_PARTS:
        return DATE_PARTS[name](_lookup(batch, node.args[0].id))
    args = [as_float(_eval(a, batch)) for a in node.args]
    with np.errstate(all="ignore"):
        if name == "I":
            return args[0]
        if name == "power":
            return np.power(args[0], args[1])
        return NUMERIC_FUNCTIONS[name](args[0])
