"""What covariance a fit asks for: ``cov_type``, its cluster columns, its lags, and ``use_t``.

:func:`parse_covariance` reads the one spelling the library and the command line share:

=========================  ====================================================================
``cov_type``               meaning
=========================  ====================================================================
``None``/``"nonrobust"``   ``scale · (XᵀWX)⁻¹``
``"HC0"`` … ``"HC3"``      heteroskedasticity-robust (:mod:`streamreg.model.robust`)
``"cluster:firm"``         one-way cluster-robust (or ``"cluster"`` with ``groups="firm"``)
``"cluster:firm,year"``    two-way cluster-robust, Cameron–Gelbach–Miller
                           (:mod:`streamreg.model.twoway`); ``groups=["firm", "year"]`` too
``"HAC:2"``                Newey–West over the data's order with 2 lags (or ``"HAC"`` with
                           ``maxlags=2``; :mod:`streamreg.model.hac`)
=========================  ====================================================================

Robust covariances take statsmodels' defaults: HAC with Bartlett weights and no small-sample
correction, clusters with the CRV1 correction and ``G − 1`` degrees of freedom for inference.
``use_t`` (None: Student's t only without robust covariance, statsmodels' default) chooses the
distribution of p values, intervals and tests.

>>> parse_covariance("cluster:firm,year").groups
('firm', 'year')
>>> request = parse_covariance("HAC:2")
>>> request.cov_type, request.maxlags
('HAC', 2)
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import InputError, parameter

ROBUST_KINDS = ("HC0", "HC1", "HC2", "HC3", "cluster", "HAC")


@dataclass(frozen=True)
class CovarianceRequest:
    """A parsed ``cov_type``: its kind, cluster columns (one or two) and HAC lags."""

    cov_type: str = "nonrobust"
    groups: str | tuple[str, str] | None = None
    maxlags: int | None = None
    kernel: str = "bartlett"

    @property
    def robust(self) -> bool:
        return self.cov_type != "nonrobust"

    @property
    def two_way(self) -> bool:
        return isinstance(self.groups, tuple)

    @property
    def label(self) -> str:
        """How the report names it: ``HC3``, ``cluster``, ``HAC(2)``."""
        return f"HAC({self.maxlags})" if self.cov_type == "HAC" else self.cov_type


def parse_covariance(cov_type=None, groups=None, maxlags=None) -> CovarianceRequest:
    """Validate ``cov_type`` with ``groups`` and ``maxlags``; see the module docstring."""
    if cov_type is None or cov_type == "nonrobust":
        for name, value in (("groups", groups), ("maxlags", maxlags)):
            if value is not None:
                raise InputError(
                    f"{_named(name)} was given but the covariance is not robust; ask for "
                    "'cluster:COLUMN' or 'HAC:LAGS'."
                )
        return CovarianceRequest()
    if not isinstance(cov_type, str):
        raise InputError(f"cov_type must be a string; got {cov_type!r}.")
    name, _, detail = cov_type.partition(":")
    kind = {k.lower(): k for k in ROBUST_KINDS}.get(name.strip().lower())
    if kind is None:
        raise InputError(
            "cov_type must be one of nonrobust, HC0, HC1, HC2, HC3, "
            f"cluster:COLUMN[,COLUMN] or HAC:LAGS; got {cov_type!r}."
        )
    detail = detail.strip()
    if kind == "cluster":
        return CovarianceRequest("cluster", _cluster_columns(detail, groups))
    if groups is not None:
        raise InputError(f"covariance {kind} takes no cluster column ({groups!r}).")
    if kind == "HAC":
        return CovarianceRequest("HAC", maxlags=_lags(detail, maxlags))
    if detail or maxlags is not None:
        raise InputError(f"covariance {kind} takes no column and no lags.")
    return CovarianceRequest(kind)


def _cluster_columns(detail: str, groups) -> str | tuple[str, str]:
    if detail and groups is not None:
        raise InputError(
            f"give the cluster columns once: as 'cluster:COLUMN' or in {_named('groups')}."
        )
    if detail:
        names = [c.strip() for c in detail.split(",")]
    elif isinstance(groups, str):
        names = [groups]
    elif groups is not None:
        names = [str(g) for g in groups]
    else:
        names = []
    if not names or not all(names) or len(names) > 2 or len(set(names)) != len(names):
        raise InputError(
            "cov_type 'cluster' needs the column that names the clusters ('cluster:firm'), or "
            "two different columns for two-way clustering ('cluster:firm,year'); got "
            f"{detail or groups!r}."
        )
    return names[0] if len(names) == 1 else (names[0], names[1])


def _lags(detail: str, maxlags) -> int:
    if detail and maxlags is not None:
        raise InputError(f"give the HAC lags once: as 'HAC:2' or in {_named('maxlags')}.")
    if detail:
        try:
            maxlags = int(detail)
        except ValueError:
            raise InputError(
                f"HAC lags must be a whole number of rows, as in 'HAC:2'; got {detail!r}."
            ) from None
    if maxlags is None:
        raise InputError("HAC (Newey-West) needs the number of lags, as in 'HAC:2'.")
    if isinstance(maxlags, bool) or not isinstance(maxlags, int) or maxlags < 0:
        raise InputError(
            f"{_named('maxlags')} must be a non-negative whole number of rows; got {maxlags!r}."
        )
    return maxlags


def check_use_t(use_t) -> bool | None:
    if use_t is not None and not isinstance(use_t, bool):
        raise InputError(f"{_named('use_t')} must be True, False or None; got {use_t!r}.")
    return use_t


def _named(name: str) -> str:
    """A parameter's name in messages: ``use_t`` in Python, ``--use-t`` on the command line."""
    return parameter(name).rstrip("=")
