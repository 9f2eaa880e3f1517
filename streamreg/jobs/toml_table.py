"""Typed access to the tables of a job's TOML file: every mistake one sentence naming the key.

>>> table = TomlTable({"folds": 5, "seed": "x"}, "job.toml", "cv")
>>> table.integer("folds", None, minimum=2)
5
>>> try:
...     table.integer("seed", 0, minimum=0)
... except InputError as error:
...     print(error)
job.toml: 'cv.seed' must be an integer, got a string ('x').
>>> parse_duration("15m", "run.interval")
900.0
"""

from __future__ import annotations

import re

from ..errors import InputError

_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 7 * 86400.0}


def parse_duration(text, where: str) -> float:
    """Seconds in ``"90s"``, ``"15m"``, ``"12h"``, ``"30d"``, ``"2w"`` (a bare number is
    seconds)."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        seconds = float(text)
    else:
        match = re.fullmatch(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([smhdw]?)\s*", str(text))
        if match is None:
            raise InputError(
                f"{where} must be a duration such as 90s, 15m, 12h, 30d or 2w; got {text!r}."
            )
        seconds = float(match.group(1)) * _UNITS[match.group(2) or "s"]
    if not seconds > 0:
        raise InputError(f"{where} must be a positive duration; got {text!r}.")
    return seconds


def check_choice(value, allowed, where: str) -> str:
    if value not in allowed:
        raise InputError(f"{where} must be one of {', '.join(allowed)}; got {value!r}.")
    return value


def _kind(value) -> str:
    names = {
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "a table",
    }
    return names.get(type(value), type(value).__name__)


class TomlTable:
    """Typed access to one TOML table; unknown keys are reported by :meth:`done`."""

    def __init__(self, table, path: str, prefix: str = ""):
        self.data, self.path, self.prefix, self.used = table, path, prefix, set()

    def _name(self, key: str) -> str:
        return f"{self.prefix}.{key}" if self.prefix else key

    def _get(self, key: str, required: bool):
        self.used.add(key)
        if key not in self.data:
            if required:
                raise InputError(f"{self.path}: the key '{self._name(key)}' is required.")
            return None
        return self.data[key]

    def _wrong(self, key: str, expected: str, value):
        return InputError(
            f"{self.path}: '{self._name(key)}' must be {expected}, got {_kind(value)} ({value!r})."
        )

    def string(self, key: str, required: bool = False):
        value = self._get(key, required)
        if value is None:
            return None
        if not isinstance(value, str) or not value:
            raise self._wrong(key, "a non-empty string", value)
        return value

    def strings(self, key: str, required: bool = False):
        value = self._get(key, required)
        if value is None:
            return None
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise self._wrong(key, "a list of strings", value)
        return value

    def get_raw(self, key: str):
        return self._get(key, False)

    def number(self, key: str):
        value = self._get(key, False)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise self._wrong(key, "a number", value)
        return None if value is None else float(value)

    def numbers(self, key: str):
        value = self._get(key, False)
        if value is None:
            return None
        values = value if isinstance(value, list) else [value]
        if not values or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in values
        ):
            raise self._wrong(key, "a number or a list of numbers", value)
        return [float(v) for v in values]

    def boolean(self, key: str, default: bool) -> bool:
        value = self._get(key, False)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise self._wrong(key, "true or false", value)
        return value

    def integer(self, key: str, default, minimum: int):
        value = self._get(key, False)
        if value is None:
            return default
        if not isinstance(value, int) or isinstance(value, bool):
            raise self._wrong(key, "an integer", value)
        if value < minimum:
            raise InputError(
                f"{self.path}: '{self._name(key)}' must be at least {minimum}, got {value}."
            )
        return value

    def choice(self, key: str, allowed, default: str) -> str:
        value = self._get(key, False)
        if value is None:
            return default
        if not isinstance(value, str):
            raise self._wrong(key, f"a string, one of {', '.join(allowed)}", value)
        return check_choice(value, allowed, f"{self.path}: '{self._name(key)}'")

    def duration(self, key: str, default: float) -> float:
        value = self._get(key, False)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise self._wrong(key, 'a duration such as "60s"', value)
        return parse_duration(value, f"{self.path}: '{self._name(key)}'")

    def table(self, key: str, required: bool = False):
        value = self._get(key, required)
        if value is None:
            return None
        if not isinstance(value, dict):
            raise self._wrong(key, f"a table ([{self._name(key)}])", value)
        return value

    def done(self) -> None:
        unknown = [k for k in self.data if k not in self.used]
        if unknown:
            known = ", ".join(sorted(self.used))
            raise InputError(
                f"{self.path}: unknown key '{self._name(unknown[0])}' (known here: {known})."
            )
