"""Option values as people type them: choices in any case, lists of column names.

Choices (``--solver``, ``--nulls``, ``--cov``, ``--log-format``, ``--format``, …) are
listed in the help as ``[a|b|c]`` and matched case-insensitively; anything else is a
usage error that names the choices (and the near miss).

Column lists (``--features``, ``--exclude``, ``--keep``, ``generate --names``) may be
given as repeated options, comma-separated, or both; a name in double quotes is taken
verbatim, commas and surrounding spaces included (``""`` inside quotes is one ``"``),
as in a CSV field:

>>> column_names(['a, b', 'c', '"net, price"', '" padded "'], "--features")
['a', 'b', 'c', 'net, price', ' padded ']
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import typer

from ..errors import InputError, did_you_mean

COLUMN_LIST_HELP = (
    "Repeat the option or separate names with commas; put a name in double quotes to keep "
    "commas or surrounding spaces in it."
)


def choice_metavar(choices: Sequence[str]) -> str:
    """``[a|b|c]``: how the help lists the values of a choice option."""
    return "[" + "|".join(choices) + "]"


def choice(choices: Sequence[str]) -> Callable[[str | None], str | None]:
    """A typer callback: the value matched to one of ``choices`` ignoring case, or a usage error.

    >>> choice(["drop", "error"])("DROP")
    'drop'
    """
    by_key = {c.casefold(): c for c in choices}

    def check(value: str | None) -> str | None:
        if value is None or isinstance(value, bool):
            return value
        found = by_key.get(str(value).strip().casefold())
        if found is None:
            raise typer.BadParameter(
                f"{value!r} is not one of {', '.join(choices)}{did_you_mean(value, choices)}"
            )
        return found

    return check


def cov_type(choices: Sequence[str]) -> Callable[[str | None], str | None]:
    """The ``--cov`` callback: ``HC0``…``HC3`` in any case, ``cluster:COLUMN`` (or two columns;
    their case kept) or ``HAC:LAGS``; ``choices`` as the help lists them.

    >>> check = cov_type(["HC0", "HC1", "cluster:COLUMN"])
    >>> check("hc1"), check("Cluster:Firm")
    ('HC1', 'cluster:Firm')
    """
    names = [c.partition(":")[0] for c in choices]
    plain = choice(names)

    def check(value: str | None) -> str | None:
        if value is None:
            return None
        name, colon, column = str(value).partition(":")
        try:
            kind = plain(name)
        except typer.BadParameter:
            raise typer.BadParameter(
                f"{value!r} is not one of {', '.join(choices)}{did_you_mean(name, names)}"
            ) from None
        if kind == "cluster" and not column:
            raise typer.BadParameter("'cluster' needs the column of cluster labels: cluster:COLUMN")
        if kind == "HAC" and not column:
            raise typer.BadParameter("'HAC' needs the number of lags: HAC:LAGS")
        return f"{kind}{colon}{column}"

    return check


def column_names(values: Sequence[str] | str | None, option: str) -> list[str] | None:
    """The column names in the values of a repeatable, comma-separated option (None if none)."""
    if values is None:
        return None
    if isinstance(values, str):
        values = [values]
    names: list[str] = []
    for value in values:
        names.extend(_split(value, option))
    return names or None


def _split(text: str, option: str) -> list[str]:
    """One value: names between commas outside double quotes; unquoted names are stripped."""
    names: list[tuple[str, bool]] = []  # (name, was quoted)
    field: list[str] = []
    quoted = closed = False  # inside quotes; after a closing quote
    i = 0
    while i < len(text):
        char = text[i]
        if quoted:
            if char == '"' and text[i + 1 : i + 2] == '"':
                field.append('"')
                i += 1
            elif char == '"':
                quoted, closed = False, True
            else:
                field.append(char)
        elif char == ",":
            names.append(("".join(field), True) if closed else ("".join(field).strip(), False))
            field, closed = [], False
        elif closed:
            if not char.isspace():
                raise InputError(
                    f"{option} {text!r}: a quoted name must end at a comma; put the whole name "
                    "in double quotes."
                )
        elif char == '"' and not "".join(field).strip():
            quoted, field = True, []
        else:
            field.append(char)
        i += 1
    if quoted:
        raise InputError(f"{option} {text!r} has an unclosed double quote.")
    names.append(("".join(field), True) if closed else ("".join(field).strip(), False))
    # An empty unquoted name (``a,,b``, a trailing comma) names nothing; ``""`` is kept.
    return [name for name, was_quoted in names if name or was_quoted]


def _references(values: list[str] | None) -> dict | None:
    """``--reference region=north`` (repeatable) → {"region": "north"}."""
    if not values:
        return None
    out = {}
    for value in values:
        column, sep, level = value.partition("=")
        if not sep or not column.strip():
            raise InputError(f"--reference expects COLUMN=LEVEL, e.g. region=north; got {value!r}.")
        if column.strip() in out:
            raise InputError(f"--reference names column '{column.strip()}' twice.")
        out[column.strip()] = level
    return out


def _gradient_options(solver: str, **given) -> dict | None:
    """The gradient solvers' options that were given on the command line (None if none were)."""
    from ..solvers import GRADIENT_SOLVERS

    given = {name: value for name, value in given.items() if value is not None}
    if not given:
        return None
    if solver not in GRADIENT_SOLVERS:
        flag = {
            "optimizer": "adam",
            "average": "no-average",
            "standardize": "no-standardize",
            "record_steps": "step-history",
        }.get(next(iter(given)), next(iter(given)).replace("_", "-"))
        raise InputError(
            f"--{flag} applies to the gradient solvers (--solver {', '.join(GRADIENT_SOLVERS)}); "
            f"the solver is {solver!r}."
        )
    return given


def _check_history_paths(solver: str, history: Path | None, step_history: Path | None) -> None:
    from ..solvers import GRADIENT_SOLVERS

    if history is not None and solver not in GRADIENT_SOLVERS:
        raise InputError(
            f"--history needs a gradient solver (--solver {', '.join(GRADIENT_SOLVERS)}); "
            f"solver {solver!r} keeps no loss history."
        )
    if step_history is not None and solver != "sgd":
        raise InputError(
            f"--step-history needs --solver sgd; solver {solver!r} takes no minibatch steps."
        )
    from ..io.atomic import check_writable

    for path in (history, step_history):
        if path is not None:
            check_writable(path, "the loss history")
