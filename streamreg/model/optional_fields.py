"""The model file's optional fields of the residual pass and the inference options.

Written by :func:`streamreg.model.serialize.model_to_dict` only when the model has them, so a
plain least-squares fit keeps writing format version 1 byte for byte; a least-squares file
that holds any of them is version 2 (a penalized file is version 3 and may hold them too):

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

from ..errors import ModelFormatError

DIAGNOSTIC_FIELDS = (
    "omnibus",
    "omnibus_pvalue",
    "skew",
    "kurtosis",
    "durbin_watson",
    "jarque_bera",
    "jarque_bera_pvalue",
)
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
