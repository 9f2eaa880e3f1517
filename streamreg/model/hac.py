r"""Newey–West (HAC) covariance over ordered data, from blocks that merge in order.

For score rows ``uₜ = wₜ eₜ x̃ₜ`` in the data's order (see
:func:`streamreg.model.diagnostics.residuals.scores`), a maximum lag ``L`` and kernel weights
``k_l`` (Bartlett ``1 − l/(L + 1)``, or uniform 1), the meat is

    S = Σₜ uₜuₜᵀ + Σ_{l=1..L} k_l (Γ_l + Γ_lᵀ),     Γ_l = Σₜ u_{t+l} uₜᵀ

and the covariance ``B S B`` with the bread ``B = (X̃ᵀWX̃)⁻¹``, times
``n/(n − k)`` with ``use_correction=True`` (Newey & West 1987; statsmodels'
``S_hac_simple`` / ``cov_hac_simple``). ``fit(cov_type="HAC",
cov_kwds={"maxlags": L})`` in statsmodels uses **no** small-sample correction
(``use_correction=False``), Bartlett weights, and the normal distribution
(``use_t=False``); so does :func:`hac_covariance` by default.

**Blocks.** :class:`NeweyWestMeat` keeps ``S`` of its own rows plus its first
and last ``L`` score rows. Block ``a`` followed by block ``b`` adds the lag
pairs that straddle the seam: the row ``m`` places before the end of ``a`` and
the row ``j`` places after the start of ``b`` are ``m + j`` apart (1 ≤ m, 0 ≤ j),
so with ``H[j, m−1] = k_{m+j}`` (zero beyond ``L``)

    S = Sₐ + S_b + X + Xᵀ,      X = headᵦᵀ · H · reversed(tailₐ)

The merge is associative, not commutative (``a + b`` is "a, then b"); blocks
shorter than ``L`` are handled (their head and tail are all their rows).
Memory: ``k²`` for ``S`` and ``2·L·k`` for the edges, whatever the number of rows.

>>> import numpy as np
>>> u = np.arange(12.0).reshape(6, 2) ** 0.5
>>> parts = NeweyWestMeat.from_scores(u[:1], 2) + NeweyWestMeat.from_scores(u[1:], 2)
>>> bool(np.allclose(parts.meat, NeweyWestMeat.from_scores(u, 2).meat))
True
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError, ModelFormatError
from ..solvers.base import check_format
from .robust import centered_bread, to_parameter_coordinates

FORMAT = "streamreg.newey_west_meat"
FORMAT_VERSION = 1
KERNELS = ("bartlett", "uniform")


def kernel_weights(maxlags: int, kernel: str = "bartlett") -> np.ndarray:
    """``k_0 … k_L``, as statsmodels' ``weights_bartlett`` / ``weights_uniform``."""
    if kernel == "bartlett":
        return 1.0 - np.arange(maxlags + 1) / (maxlags + 1.0)
    if kernel == "uniform":
        return np.ones(maxlags + 1)
    raise InputError(f"kernel must be one of {', '.join(KERNELS)}; got {kernel!r}.")


def check_maxlags(maxlags) -> int:
    if isinstance(maxlags, bool) or not isinstance(maxlags, (int, np.integer)) or maxlags < 0:
        raise InputError(f"maxlags must be a non-negative whole number of rows; got {maxlags!r}.")
    return int(maxlags)


class NeweyWestMeat:
    """HAC meat of ordered score rows; see the module docstring."""

    __slots__ = ("maxlags", "kernel", "n_rows", "meat", "head", "tail")

    def __init__(self, maxlags: int, size: int, kernel: str = "bartlett"):
        self.maxlags = check_maxlags(maxlags)
        kernel_weights(0, kernel)  # validates the name
        self.kernel = kernel
        self.n_rows = 0
        self.meat = np.zeros((size, size))
        self.head = np.zeros((0, size))
        self.tail = np.zeros((0, size))

    @classmethod
    def from_scores(
        cls, scores: np.ndarray, maxlags: int, kernel: str = "bartlett"
    ) -> NeweyWestMeat:
        """The meat of one ordered block of score rows (rows × k)."""
        u = np.asarray(scores, dtype=np.float64)
        if u.ndim != 2:
            raise InputError(
                f"scores must be a 2-D array (rows × parameters); got shape {u.shape}."
            )
        out = cls(maxlags, u.shape[1], kernel)
        if u.shape[0] == 0:
            return out
        if not np.isfinite(u).all():
            raise InputError(
                "scores hold NaN or ±inf; the HAC covariance needs finite residuals and features."
            )
        weights = kernel_weights(out.maxlags, kernel)
        meat = u.T @ u
        for lag in range(1, min(out.maxlags, u.shape[0] - 1) + 1):
            gamma = u[lag:].T @ u[:-lag]
            meat += weights[lag] * (gamma + gamma.T)
        out.meat = meat
        out.n_rows = u.shape[0]
        out.head = u[: out.maxlags].copy()
        out.tail = u[max(u.shape[0] - out.maxlags, 0) :].copy()
        return out

    def update(self, scores: np.ndarray) -> NeweyWestMeat:
        """Append a block of score rows that follows the rows seen so far (in place)."""
        self._append(NeweyWestMeat.from_scores(scores, self.maxlags, self.kernel))
        return self

    def merge(self, later: NeweyWestMeat) -> NeweyWestMeat:
        """The meat of ``self``'s rows followed by ``later``'s rows."""
        out = self.copy()
        out._append(later)
        return out

    __add__ = merge

    def copy(self) -> NeweyWestMeat:
        out = NeweyWestMeat(self.maxlags, self.meat.shape[0], self.kernel)
        out.n_rows, out.meat = self.n_rows, self.meat.copy()
        out.head, out.tail = self.head.copy(), self.tail.copy()
        return out

    def _append(self, later: NeweyWestMeat) -> None:
        if (later.maxlags, later.kernel, later.meat.shape) != (
            self.maxlags,
            self.kernel,
            self.meat.shape,
        ):
            raise InputError(
                f"cannot merge HAC sums with maxlags={later.maxlags}, kernel={later.kernel!r}, "
                f"{later.meat.shape[0]} parameters into ones with maxlags={self.maxlags}, "
                f"kernel={self.kernel!r}, {self.meat.shape[0]} parameters."
            )
        if later.n_rows == 0:
            return
        lags = self.maxlags
        if self.n_rows and lags:
            weights = kernel_weights(lags, self.kernel)
            j = np.arange(later.head.shape[0])[:, None]
            m = np.arange(1, self.tail.shape[0] + 1)[None, :]
            hankel = np.where(j + m <= lags, weights[np.minimum(j + m, lags)], 0.0)
            seam = later.head.T @ hankel @ self.tail[::-1]
            self.meat = self.meat + later.meat + seam + seam.T
        else:
            self.meat = self.meat + later.meat
        self.head = np.vstack([self.head, later.head])[:lags]
        self.tail = np.vstack([self.tail, later.tail])[
            max(self.tail.shape[0] + later.tail.shape[0] - lags, 0) :
        ]
        self.n_rows += later.n_rows

    def covariance(self, bread: np.ndarray, *, use_correction: bool = False) -> np.ndarray:
        """``B S B`` (times ``n/(n − k)`` with ``use_correction``), in the bread's coordinates."""
        cov = bread @ self.meat @ bread
        if use_correction:
            k = self.meat.shape[0]
            cov = cov * (self.n_rows / float(self.n_rows - k))
        return cov

    # ---------------------------------------------------------------- plain form
    def to_dict(self) -> dict:
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "maxlags": self.maxlags,
            "kernel": self.kernel,
            "n_rows": self.n_rows,
            "meat": self.meat.tolist(),
            "head": self.head.tolist(),
            "tail": self.tail.tolist(),
        }

    @classmethod
    def from_dict(cls, data: dict, *, where: str = "HAC sums") -> NeweyWestMeat:
        check_format(data, FORMAT, FORMAT_VERSION, "HAC summary", where)
        try:
            meat = np.array(data["meat"], dtype=np.float64)
            out = cls(data["maxlags"], meat.shape[0], data["kernel"])
            head = np.array(data["head"], dtype=np.float64).reshape(-1, meat.shape[0])
            tail = np.array(data["tail"], dtype=np.float64).reshape(-1, meat.shape[0])
            n_rows = data["n_rows"]
        except (KeyError, TypeError, ValueError, InputError) as exc:
            raise ModelFormatError(f"{where}: a field is missing or malformed ({exc}).") from exc
        edge = min(out.maxlags, n_rows) if isinstance(n_rows, int) else -1
        if (
            meat.ndim != 2
            or meat.shape[0] != meat.shape[1]
            or isinstance(n_rows, bool)
            or edge < 0
            or head.shape[0] != edge
            or tail.shape[0] != edge
        ):
            raise ModelFormatError(
                f"{where}: 'meat' must be square and 'head'/'tail' hold "
                "min(maxlags, n_rows) rows each."
            )
        if not all(np.isfinite(v).all() for v in (meat, head, tail)):
            raise ModelFormatError(f"{where}: the sums contain non-finite numbers.")
        out.n_rows, out.meat, out.head, out.tail = n_rows, meat, head, tail
        return out

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, NeweyWestMeat):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    __hash__ = None


def hac_covariance(
    meat: NeweyWestMeat,
    xtx_inv: np.ndarray,
    weight_sum: float,
    mean_kept: np.ndarray | None,
    *,
    use_correction: bool = False,
) -> np.ndarray:
    """The HAC covariance of (intercept, kept coefficients) in parameter coordinates, from the
    merged meat, ``M_xx⁻¹`` of the kept features, ``Σw``, and their means (None without an
    intercept)."""
    bread = centered_bread(np.asarray(xtx_inv, dtype=float), weight_sum, mean_kept is not None)
    return to_parameter_coordinates(
        meat.covariance(bread, use_correction=use_correction), mean_kept
    )
