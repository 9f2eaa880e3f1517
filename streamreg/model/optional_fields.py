"""The model file's optional fields: the model language's, the residual pass's and the
inference options'.

Written by :func:`streamreg.model.serialize.model_to_dict` only when the model has them, so a
plain least-squares fit keeps writing format version 1 byte for byte; a least-squares file
that holds any of them is version 2 (a penalized file is version 3 and may hold them too):

- ``design`` (levels, coding, references, center/scale statistics), ``columns`` (the role of
  every column of the data) and ``absorbed`` (the absorbed fixed effect), from the model
  language (:mod:`streamreg.design`);
- ``diagnostics``: statsmodels' bottom block from the residual pass (omnibus, skew,
  kurtosis, Durbin–Watson, Jarque–Bera), each a number or null;
- ``use_t``: when the fit chose the distribution of its tests (t or normal);
- robust records of the HAC kind (``maxlags``, ``kernel``) and of two-way clusters
  (``groups`` a list of two columns, ``n_groups_each``).

>>> fields = optional_fields({"skew": 0.5, **dict.fromkeys(DIAGNOSTIC_FIELDS[3:], 1.0),
...     "omnibus": 1.0, "omnibus_pvalue": 0.5}, None)
>>> sorted(fields)
['diagnostics']
>>> validated_diagnostics(fields["diagnostics"], "model")["skew"]
0.5
"""

from __future__ import annotations

import math

from ..choices import DIAGNOSTIC_NAMES
from ..design.coding import Design
from ..design.roles import ROLES
from ..errors import ModelFormatError

DIAGNOSTIC_FIELDS = DIAGNOSTIC_NAMES
_NUMBER = (int, float)


def _finite_or_none(value: float):
    return float(value) if math.isfinite(value) else None


def optional_fields(diagnostics, use_t) -> dict:
    """The optional fields a model has, ready for JSON (NaN becomes null)."""
    data = {}
    if diagnostics is not None:
        data["diagnostics"] = {name: _finite_or_none(v) for name, v in diagnostics.items()}
    if use_t is not None:
        data["use_t"] = bool(use_t)
    return data


def model_language_fields(model) -> dict:
    """The model language's fields (``design``, ``columns``, ``absorbed``), all three when the
    model has a design or an absorbed fixed effect, else none."""
    if model.design_ is None and model.absorbed_ is None:
        return {}
    return {
        "design": None if model.design_ is None else model.design_.to_dict(),
        "columns": model.columns_,
        "absorbed": model.absorbed_,
    }


def robust_needs_version_2(robust) -> bool:
    """Whether a robust record is of a kind version 1 did not know (HAC, two-way clusters)."""
    return bool(robust) and (robust["cov_type"] == "HAC" or isinstance(robust["groups"], list))


def validated_diagnostics(diagnostics, where: str):
    """The saved ``diagnostics`` (None when absent); null values become NaN."""
    if diagnostics is None:
        return None
    if not isinstance(diagnostics, dict) or set(diagnostics) != set(DIAGNOSTIC_FIELDS):
        raise ModelFormatError(
            f"{where}: 'diagnostics' must map exactly {', '.join(DIAGNOSTIC_FIELDS)} to numbers."
        )
    out = {}
    for name in DIAGNOSTIC_FIELDS:
        value = diagnostics[name]
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, _NUMBER) or not math.isfinite(value)
        ):
            raise ModelFormatError(
                f"{where}: the diagnostic '{name}' must be a finite number or null."
            )
        out[name] = math.nan if value is None else float(value)
    return out


def validated_use_t(use_t, where: str):
    """The saved ``use_t``: true, false or None when absent."""
    if use_t is not None and not isinstance(use_t, bool):
        raise ModelFormatError(f"{where}: 'use_t' must be true, false or absent.")
    return use_t


def check_robust_extras(robust: dict, where: str) -> None:
    """A HAC record names its lags, a whole number."""
    if robust["cov_type"] == "HAC":
        lags = robust.get("maxlags")
        if isinstance(lags, bool) or not isinstance(lags, int) or lags < 0:
            raise ModelFormatError(f"{where}: a HAC covariance needs 'maxlags', a whole number.")


def validated_model_language(data: dict, names: list[str], where: str) -> dict:
    """The model language's optional fields of a version-2 or -3 file, validated (none in a
    version-1 file)."""
    if data["format_version"] == 1:  # a plain fit's file holds none of them
        return {}
    design = data.get("design")
    if design is not None:
        if not isinstance(design, dict):
            raise ModelFormatError(f"{where}: 'design' must be an object or null.")
        design = Design.from_dict(design, where=f"{where} (design)")
        if list(design.column_names) != names:
            raise ModelFormatError(
                f"{where}: the design's columns do not match the model's features."
            )
    columns = data.get("columns")
    if columns is not None and not (
        isinstance(columns, dict)
        and all(
            isinstance(k, str)
            and isinstance(v, dict)
            and v.get("role") in ROLES
            and isinstance(v.get("why"), str)
            for k, v in columns.items()
        )
    ):
        raise ModelFormatError(
            f"{where}: 'columns' must map column names to a role ({', '.join(ROLES)}) and a reason."
        )
    absorbed = data.get("absorbed")
    if absorbed is not None and not (
        isinstance(absorbed, dict)
        and isinstance(absorbed.get("column"), str)
        and all(
            isinstance(absorbed.get(k), int)
            and not isinstance(absorbed.get(k), bool)
            and absorbed[k] >= 0
            for k in ("n_groups", "singletons")
        )
    ):
        raise ModelFormatError(
            f"{where}: 'absorbed' must name the column and count its groups and singletons."
        )
    return {"design": design, "columns": columns, "absorbed": absorbed}
