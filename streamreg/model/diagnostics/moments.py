r"""Mergeable central moments of the residuals, and the normality tests statsmodels prints.

statsmodels' ``summary()`` computes its bottom block from the *whitened*
residuals ``rᵢ = √wᵢ·eᵢ`` (``wresid``; ``rᵢ = eᵢ`` without weights), each row
counting once. :class:`ResidualMoments` keeps, for the rows seen so far, the
count ``n``, the mean ``r̄`` (double-double: ``mean + mean_lo``) and the central
sums ``M_q = Σ (rᵢ − r̄)^q`` for q = 2, 3, 4. A batch is summed about its rounded
mean ``c`` and the sums are moved to the exact mean ``c + δ`` (``δ = Σ(r − c)/n``;
e.g. ``M₃ = Σd³ − 3δΣd² + 2nδ³``), so an offset far larger than the spread (values
near 1e7 varying by 1) costs no digits. Two summaries merge exactly in exact
arithmetic (Pébay 2008, eqs. 3.1 and 3.3; Chan, Golub & LeVeque 1979), with
``δ = r̄_b − r̄_a`` and ``n = n_a + n_b``::

    M₂ = M₂ₐ + M₂ᵦ + δ² nₐn_b/n
    M₃ = M₃ₐ + M₃ᵦ + δ³ nₐn_b(nₐ − n_b)/n² + 3δ(nₐM₂ᵦ − n_bM₂ₐ)/n
    M₄ = M₄ₐ + M₄ᵦ + δ⁴ nₐn_b(nₐ² − nₐn_b + n_b²)/n³
         + 6δ²(nₐ²M₂ᵦ + n_b²M₂ₐ)/n² + 4δ(nₐM₃ᵦ − n_bM₃ₐ)/n

The statistics, exactly as ``scipy.stats`` and ``statsmodels.stats.stattools``
define them (biased moments ``m_q = M_q/n``):

* ``skew = m₃/m₂^{3/2}``, ``kurtosis = m₄/m₂²`` (not the excess);
* ``jarque_bera = n/6·(skew² + (kurtosis − 3)²/4)``, p from χ²₂;
* ``omnibus`` = D'Agostino–Pearson ``K² = Z(√b₁)² + Z(b₂)²`` (D'Agostino 1970;
  Anscombe & Glynn 1983; D'Agostino, Belanger & D'Agostino 1990), p from χ²₂;
  NaN below 8 rows, as statsmodels' ``omni_normtest``.

The sum of squared residuals ``SSR = Σ w e² = Σ r² = M₂ + n r̄²`` is a sum of two
non-negative terms: no cancellation, unlike ``M_yy − M_xyᵀβ`` from the first pass.

>>> import numpy as np
>>> r = np.array([0.5, -1.0, 2.0, -0.25, 0.75, -2.0, 1.5, -1.5, 0.0, 0.25])
>>> whole = ResidualMoments.from_array(r)
>>> parts = ResidualMoments.from_array(r[:3]) + ResidualMoments.from_array(r[3:])
>>> bool(np.isclose(whole.skew, parts.skew)), round(whole.ssr, 12)
(True, 14.4375)
"""

from __future__ import annotations

import math

import numpy as np

from ...distributions import chi2_sf
from ...errors import InputError, ModelFormatError
from ...solvers.base import check_format

FORMAT = "streamreg.residual_moments"
FORMAT_VERSION = 1
# statsmodels' omni_normtest returns NaN below this many rows.
OMNIBUS_MIN_ROWS = 8


class ResidualMoments:
    """Count, mean and central sums ``M₂, M₃, M₄`` of residuals; see the module docstring."""

    __slots__ = ("count", "mean", "mean_lo", "m2", "m3", "m4")

    def __init__(
        self,
        count: int = 0,
        mean: float = 0.0,
        m2: float = 0.0,
        m3: float = 0.0,
        m4: float = 0.0,
        mean_lo: float = 0.0,
    ):
        self.count = int(count)
        self.mean, self.mean_lo = _two_sum(float(mean), float(mean_lo))
        self.m2, self.m3, self.m4 = float(m2), float(m3), float(m4)

    @classmethod
    def empty(cls) -> ResidualMoments:
        """The identity of :meth:`merge`: no rows."""
        return cls()

    @classmethod
    def from_array(cls, wresid) -> ResidualMoments:
        """Moments of one batch of (whitened) residuals."""
        r = np.asarray(wresid, dtype=np.float64).reshape(-1)
        n = r.shape[0]
        if n == 0:
            return cls()
        if not np.isfinite(r).all():
            raise InputError("wresid holds NaN or ±inf; residual moments need finite residuals.")
        center = float(r.mean())
        d = r - center
        shift = float(d.sum()) / n  # the exact mean is center + shift, to about ε·|shift|
        d2 = d * d
        s2, s3, s4 = float(d2.sum()), float((d2 * d).sum()), float((d2 * d2).sum())
        # Sums about `center` moved to the mean; the shift is tiny, so nothing cancels.
        m2 = s2 - n * shift * shift
        m3 = s3 - 3.0 * shift * s2 + 2.0 * n * shift**3
        m4 = s4 - 4.0 * shift * s3 + 6.0 * shift * shift * s2 - 3.0 * n * shift**4
        return cls(n, center, m2, m3, m4, mean_lo=shift)

    def update(self, wresid) -> ResidualMoments:
        """Fold a batch in place and return ``self``."""
        self._absorb(ResidualMoments.from_array(wresid))
        return self

    def merge(self, other: ResidualMoments) -> ResidualMoments:
        """A new summary of the rows of both (order does not matter, up to rounding)."""
        out = self.copy()
        out._absorb(other)
        return out

    __add__ = merge

    def copy(self) -> ResidualMoments:
        return ResidualMoments(self.count, self.mean, self.m2, self.m3, self.m4, self.mean_lo)

    def _absorb(self, other: ResidualMoments) -> None:
        if other.count == 0:
            return
        if self.count == 0:
            self.count, self.mean, self.mean_lo = other.count, other.mean, other.mean_lo
            self.m2, self.m3, self.m4 = other.m2, other.m3, other.m4
            return
        na, nb = float(self.count), float(other.count)
        n = na + nb
        high, low = _two_sum(other.mean, -self.mean)  # exact
        delta = high + (low + (other.mean_lo - self.mean_lo))
        d_n = delta / n
        d_n2 = d_n * d_n
        term = delta * d_n * na * nb  # δ² nₐn_b/n
        m2a, m3a = self.m2, self.m3
        self.m4 = (
            self.m4
            + other.m4
            + term * d_n2 * (na * na - na * nb + nb * nb)
            + 6.0 * d_n2 * (na * na * other.m2 + nb * nb * m2a)
            + 4.0 * d_n * (na * other.m3 - nb * m3a)
        )
        self.m3 = m3a + other.m3 + term * d_n * (na - nb) + 3.0 * d_n * (na * other.m2 - nb * m2a)
        self.m2 = m2a + other.m2 + term
        self.mean, self.mean_lo = _two_sum(self.mean, self.mean_lo + d_n * nb)
        self.count += other.count

    # ---------------------------------------------------------------- statistics
    @property
    def ssr(self) -> float:
        """``Σ r² = M₂ + n·r̄²`` (the weighted sum of squared residuals ``Σ w e²``)."""
        mean = self.mean + self.mean_lo
        return self.m2 + self.count * mean * mean

    def _degenerate(self) -> bool:
        # scipy.stats.skew/kurtosis answer NaN when m₂ ≤ (ε·mean)²: the data are constant.
        mean = self.mean + self.mean_lo
        return self.count == 0 or self.m2 / self.count <= (np.finfo(float).eps * mean) ** 2

    @property
    def skew(self) -> float:
        """Biased sample skewness ``m₃/m₂^{3/2}`` (``scipy.stats.skew``)."""
        if self._degenerate():
            return math.nan
        n = self.count
        return (self.m3 / n) / (self.m2 / n) ** 1.5

    @property
    def kurtosis(self) -> float:
        """Biased sample kurtosis ``m₄/m₂²`` (3 for a normal distribution)."""
        if self._degenerate():
            return math.nan
        n = self.count
        return (self.m4 / n) / (self.m2 / n) ** 2

    @property
    def jarque_bera(self) -> float:
        """``n/6·(skew² + (kurtosis − 3)²/4)`` (``statsmodels.stats.stattools.jarque_bera``)."""
        if self.count < 2:
            return math.nan
        return self.count / 6.0 * (self.skew**2 + 0.25 * (self.kurtosis - 3.0) ** 2)

    @property
    def jarque_bera_pvalue(self) -> float:
        return float(chi2_sf(self.jarque_bera, 2))

    @property
    def omnibus(self) -> float:
        """D'Agostino–Pearson K² (``scipy.stats.normaltest``); NaN below 8 rows."""
        if self.count < OMNIBUS_MIN_ROWS:
            return math.nan
        return skew_z(self.skew, self.count) ** 2 + kurtosis_z(self.kurtosis, self.count) ** 2

    @property
    def omnibus_pvalue(self) -> float:
        return float(chi2_sf(self.omnibus, 2))

    # ---------------------------------------------------------------- plain form
    def to_dict(self) -> dict:
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "count": self.count,
            "mean": self.mean,
            "mean_lo": self.mean_lo,
            "m2": self.m2,
            "m3": self.m3,
            "m4": self.m4,
        }

    @classmethod
    def from_dict(cls, data: dict, *, where: str = "residual moments") -> ResidualMoments:
        check_format(data, FORMAT, FORMAT_VERSION, "residual-moment summary", where)
        count = data.get("count")
        if not isinstance(count, int) or isinstance(count, bool) or count < 0:
            raise ModelFormatError(
                f"{where}: 'count' must be a non-negative integer, got {count!r}."
            )
        values = [data.get(key) for key in ("mean", "m2", "m3", "m4", "mean_lo")]
        if not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
            for v in values
        ):
            raise ModelFormatError(
                f"{where}: 'mean', 'mean_lo', 'm2', 'm3' and 'm4' must be finite numbers."
            )
        return cls(count, *values)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ResidualMoments):
            return NotImplemented
        return (self.count, self.mean, self.mean_lo, self.m2, self.m3, self.m4) == (
            other.count,
            other.mean,
            other.mean_lo,
            other.m2,
            other.m3,
            other.m4,
        )

    __hash__ = None

    def __repr__(self) -> str:
        return f"ResidualMoments(count={self.count}, mean={self.mean:g}, m2={self.m2:g})"


def skew_z(skew: float, n: int) -> float:
    """D'Agostino's normal approximation of the sample skewness (``scipy.stats.skewtest``)."""
    if n < OMNIBUS_MIN_ROWS or not math.isfinite(skew):
        return math.nan
    y = skew * math.sqrt((n + 1) * (n + 3) / (6.0 * (n - 2)))
    beta2 = (
        3.0 * (n * n + 27 * n - 70) * (n + 1) * (n + 3) / ((n - 2.0) * (n + 5) * (n + 7) * (n + 9))
    )
    w2 = -1.0 + math.sqrt(2.0 * (beta2 - 1.0))
    delta = 1.0 / math.sqrt(0.5 * math.log(w2))
    alpha = math.sqrt(2.0 / (w2 - 1.0))
    if y == 0:
        y = 1.0  # scipy's convention, kept so that the figures agree
    return delta * math.log(y / alpha + math.sqrt((y / alpha) ** 2 + 1.0))


def kurtosis_z(kurtosis: float, n: int) -> float:
    """Anscombe & Glynn's normal approximation of the kurtosis (``scipy.stats.kurtosistest``)."""
    if n < 5 or not math.isfinite(kurtosis):
        return math.nan
    expected = 3.0 * (n - 1) / (n + 1)
    variance = 24.0 * n * (n - 2) * (n - 3) / ((n + 1) * (n + 1.0) * (n + 3) * (n + 5))
    x = (kurtosis - expected) / math.sqrt(variance)
    sqrt_beta1 = (
        6.0
        * (n * n - 5 * n + 2)
        / ((n + 7) * (n + 9))
        * math.sqrt(6.0 * (n + 3) * (n + 5) / (n * (n - 2) * (n - 3)))
    )
    a = 6.0 + 8.0 / sqrt_beta1 * (2.0 / sqrt_beta1 + math.sqrt(1.0 + 4.0 / sqrt_beta1**2))
    term1 = 1.0 - 2.0 / (9.0 * a)
    denom = 1.0 + x * math.sqrt(2.0 / (a - 4.0))
    if denom == 0.0:
        return math.nan
    term2 = math.copysign(((1.0 - 2.0 / a) / abs(denom)) ** (1.0 / 3.0), denom)
    return (term1 - term2) / math.sqrt(2.0 / (9.0 * a))


def _two_sum(a: float, b: float) -> tuple[float, float]:
    """``(s, e)`` with ``s = fl(a + b)`` and ``a + b = s + e`` exactly (Knuth)."""
    s = a + b
    b_virtual = s - a
    return s, (a - (s - b_virtual)) + (b - b_virtual)
