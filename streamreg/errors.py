"""One exception family for every failure a user can cause or see.

The CLI turns a :class:`StreamregError` into one sentence on stderr and its
``exit_code``; anything else is an internal failure (exit 1).
"""

from __future__ import annotations

import contextlib
import contextvars
import difflib
from collections.abc import Iterable

_UNSET = object()


class StreamregError(Exception):
    """Base class: ``str(err)`` is a complete sentence meant for the user."""

    exit_code = 1


class InputError(StreamregError, ValueError):
    """The data, a column, a file or an option is not what was expected (exit 2)."""

    exit_code = 2


class SchemaError(InputError):
    """Files disagree on a column, or a column is missing or not numeric."""


class DataError(InputError):
    """A value in the data is not usable (null/NaN under ``nulls="error"``, ±inf, bad weight)."""


class CollinearityError(InputError):
    """The design matrix is rank deficient; the message names the aliased columns."""


class IllConditionedError(InputError):
    """The system is too ill-conditioned for the chosen solver to return trustworthy digits."""


class ModelFormatError(InputError):
    """A saved model or state file is unreadable, of another version, or fails validation."""


class LockError(StreamregError):
    """Another run of the same job holds its lock (exit 3: try again later)."""

    exit_code = 3


class DivergenceError(InputError):
    """The gradient steps diverged (the loss became non-finite or kept growing); exit code 2."""


class UnsolvedWarning(UserWarning):
    """``partial_fit`` kept the rows but cannot solve them yet (too few rows, collinear columns)."""


class UnseenLevelWarning(UserWarning):
    """Rows holding a level the model does not know were predicted with the reference level
    (``unseen="reference"``); the message counts them."""


class ConvergenceWarning(UserWarning):
    """A gradient solver stopped before it met its tolerance (also recorded in
    ``model.warnings_``)."""


# ---------------------------------------------------------------------- near misses
def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """`` (did you mean 'y'?)`` for the candidate nearest a name not among them, or ``''``.

    A candidate equal but for case or surrounding spaces wins; otherwise the closest by
    :func:`difflib.get_close_matches` (similarity ratio at least 0.6, as difflib's default).

    >>> did_you_mean("prise", ["price", "rooms"]), did_you_mean("Price ", ["price", "rooms"])
    (" (did you mean 'price'?)", " (did you mean 'price'?)")
    >>> did_you_mean("zzz", ["price", "rooms"])
    ''
    """
    candidates = [str(c) for c in candidates]
    key = str(name).strip().casefold()
    same = [c for c in candidates if c.strip().casefold() == key and c != name]
    close = same or difflib.get_close_matches(str(name), candidates, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


# ---------------------------------------------------------------------- naming parameters
# Library messages name the Python parameter (``nulls='error'``); inside the command line
# the same message names the flag (``--nulls error``). Flags are the parameter's name with
# dashes, except these.
_FLAG_NAMES = {
    "record_steps": "--step-history",
    "cov_type": "--cov",
    "fit_intercept": "--no-intercept",
    "optimizer": "--adam",
    "average": "--no-average",
    "standardize": "--no-standardize",
    "n_features": "--features",
}
_wording: contextvars.ContextVar[str] = contextvars.ContextVar(
    "streamreg_wording", default="python"
)


def parameter(name: str, value=_UNSET) -> str:
    """How a message names a parameter (and its value): ``nulls='error'`` in Python,
    ``--nulls error`` under :func:`command_line_wording`.

    >>> parameter("nulls", "error"), parameter("drop_collinear", True)
    ("nulls='error'", 'drop_collinear=True')
    >>> with command_line_wording():
    ...     parameter("nulls", "error"), parameter("drop_collinear", True)
    ('--nulls error', '--drop-collinear')
    """
    if _wording.get() == "cli":
        flag = _FLAG_NAMES.get(name, "--" + name.replace("_", "-"))
        if value is _UNSET or isinstance(value, bool) or name in _FLAG_NAMES:
            return flag
        return f"{flag} {value}"
    return f"{name}=" if value is _UNSET else f"{name}={value!r}"


@contextlib.contextmanager
def command_line_wording():
    """Messages raised inside name command-line flags instead of Python parameters."""
    token = _wording.set("cli")
    try:
        yield
    finally:
        _wording.reset(token)
