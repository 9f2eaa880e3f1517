r"""The residual pass's summary: normality tests, Durbin–Watson and the SSR, mergeable in order.

:class:`ResidualDiagnostics` bundles :class:`~streamreg.model.diagnostics.moments.ResidualMoments`
(order-free) and :class:`~streamreg.model.diagnostics.durbin_watson.DurbinWatson` (ordered), so a
pass feeds one object per batch with the whitened residuals ``r = √w·e`` in the
data's order (files in sorted order, rows in file order) and partitions merge
left to right. :meth:`ResidualDiagnostics.mapping` gives the figures under the
names ``model.diagnostics`` carries; :func:`bottom_block` lays them out as
statsmodels' ``summary()`` does (its third table)::

    Omnibus:   Prob(Omnibus):   Skew:   Kurtosis:     (left column)
    Durbin-Watson:   Jarque-Bera (JB):   Prob(JB):   Cond. No.   (right column)

>>> import numpy as np
>>> r = np.sin(np.arange(40.0))
>>> d = ResidualDiagnostics.from_array(r[:25]) + ResidualDiagnostics.from_array(r[25:])
>>> sorted(d.mapping())[:3]
['durbin_watson', 'jarque_bera', 'jarque_bera_pvalue']
"""

from __future__ import annotations

from ...errors import ModelFormatError
from ...report import bottom_block  # noqa: F401 - laid out with the rest of the summary
from ...solvers.base import check_format
from .durbin_watson import DurbinWatson
from .moments import ResidualMoments

FORMAT = "streamreg.residual_diagnostics"
FORMAT_VERSION = 1


class ResidualDiagnostics:
    """Moments and Durbin–Watson sums of ordered residuals; ``a + b`` means a's rows, then b's."""

    __slots__ = ("moments", "durbin_watson")

    def __init__(
        self, moments: ResidualMoments | None = None, durbin_watson: DurbinWatson | None = None
    ):
        self.moments = moments if moments is not None else ResidualMoments()
        self.durbin_watson = durbin_watson if durbin_watson is not None else DurbinWatson()

    @classmethod
    def empty(cls) -> ResidualDiagnostics:
        return cls()

    @classmethod
    def from_array(cls, wresid) -> ResidualDiagnostics:
        return cls(ResidualMoments.from_array(wresid), DurbinWatson.from_array(wresid))

    def update(self, wresid) -> ResidualDiagnostics:
        """Append a batch of whitened residuals that follows the rows seen so far."""
        self.moments.update(wresid)
        self.durbin_watson.update(wresid)
        return self

    def merge(self, later: ResidualDiagnostics) -> ResidualDiagnostics:
        return ResidualDiagnostics(
            self.moments + later.moments, self.durbin_watson + later.durbin_watson
        )

    __add__ = merge

    @property
    def ssr(self) -> float:
        """``Σ w e²`` recomputed from the residuals (no cancellation)."""
        return self.moments.ssr

    def mapping(self) -> dict[str, float]:
        """The figures of statsmodels' bottom block, by the names of ``model.diagnostics``."""
        m = self.moments
        return {
            "omnibus": m.omnibus,
            "omnibus_pvalue": m.omnibus_pvalue,
            "skew": m.skew,
            "kurtosis": m.kurtosis,
            "durbin_watson": self.durbin_watson.statistic,
            "jarque_bera": m.jarque_bera,
            "jarque_bera_pvalue": m.jarque_bera_pvalue,
        }

    def to_dict(self) -> dict:
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "moments": self.moments.to_dict(),
            "durbin_watson": self.durbin_watson.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: dict, *, where: str = "residual diagnostics") -> ResidualDiagnostics:
        check_format(data, FORMAT, FORMAT_VERSION, "residual-diagnostics summary", where)
        moments = ResidualMoments.from_dict(data.get("moments"), where=f"{where}: moments")
        dw = DurbinWatson.from_dict(data.get("durbin_watson"), where=f"{where}: durbin_watson")
        if moments.count != dw.count:
            raise ModelFormatError(
                f"{where}: the moments count {moments.count} rows but the "
                f"Durbin-Watson sums {dw.count}."
            )
        return cls(moments, dw)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ResidualDiagnostics):
            return NotImplemented
        return self.moments == other.moments and self.durbin_watson == other.durbin_watson

    __hash__ = None
