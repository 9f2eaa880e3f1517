r"""Two-way cluster-robust covariance (Cameron, Gelbach & Miller 2011), as statsmodels computes it.

With score rows ``uᵢ = wᵢ eᵢ x̃ᵢ`` (:func:`streamreg.model.diagnostics.residuals.scores`) and two
cluster labels ``(gᵢ, hᵢ)`` per row, statsmodels'
``fit(cov_type="cluster", cov_kwds={"groups": two_columns})`` is

    V = V_g + V_h − V_{gh},    V_c = c_c · B (Σ_{clusters of c} s sᵀ) B,    s = Σ_{i in cluster} uᵢ

where ``gh`` clusters by the pair (the intersection), ``B = (X̃ᵀWX̃)⁻¹`` and each term
carries its own CRV1 factor ``c_c = G_c/(G_c − 1) · (n − 1)/(n − k)`` with ``G_c``
its number of clusters, ``n`` rows and ``k`` parameters
(``statsmodels.stats.sandwich_covariance.cov_cluster_2groups``). Inference then uses
``min(G_g, G_h) − 1`` degrees of freedom (``df_resid_inference``) and, by default,
the normal distribution.

:class:`TwoWayClusterMeat` keeps one score sum per observed pair; the sums per
``g`` and per ``h`` are sums of those, formed at the end. Memory is
``O(G_gh · k)`` for ``G_gh`` distinct observed pairs (between ``max(G_g, G_h)``
and ``min(n, G_g·G_h)``) — for a panel with one row per (firm, year) that is one
vector per row, which no exact method avoids without sorted data. Merging adds
the sums of shared pairs; it is commutative up to rounding (the order of the
pairs, and so of the final sums, follows first appearance).

>>> import numpy as np
>>> u = np.array([[1.0, 0.5], [-2.0, 1.0], [0.5, -1.0], [0.5, -0.5]])
>>> meat = TwoWayClusterMeat.from_scores(u, ["a", "a", "b", "b"], [1, 2, 1, 2])
>>> meat.n_groups
(2, 2, 4)
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError, ModelFormatError
from ..solvers.base import check_format
from .robust import centered_bread, to_parameter_coordinates

FORMAT = "streamreg.two_way_cluster_meat"
FORMAT_VERSION = 1


class TwoWayClusterMeat:
    """Score sums per observed pair of cluster labels; see the module docstring."""

    __slots__ = ("size", "n_rows", "pair_sums")

    def __init__(self, size: int):
        self.size = int(size)
        self.n_rows = 0
        self.pair_sums: dict[tuple, np.ndarray] = {}

    @classmethod
    def from_scores(cls, scores: np.ndarray, groups, groups2) -> TwoWayClusterMeat:
        """The sums of one batch: score rows (rows × k) and the two labels of each row."""
        u = np.asarray(scores, dtype=np.float64)
        if u.ndim != 2:
            raise InputError(
                f"scores must be a 2-D array (rows × parameters); got shape {u.shape}."
            )
        out = cls(u.shape[1])
        first, second = np.asarray(groups), np.asarray(groups2)
        if first.shape != (u.shape[0],) or second.shape != (u.shape[0],):
            raise InputError(
                f"groups and groups2 need one label per score row ({u.shape[0]}); got "
                f"{first.shape[0] if first.ndim else 0} and "
                f"{second.shape[0] if second.ndim else 0}."
            )
        if u.shape[0] == 0:
            return out
        if not np.isfinite(u).all():
            raise InputError(
                "scores hold NaN or ±inf; cluster-robust errors need finite residuals and features."
            )
        import pandas as pd

        codes_g, labels_g = pd.factorize(pd.Series(first), use_na_sentinel=False)
        codes_h, labels_h = pd.factorize(pd.Series(second), use_na_sentinel=False)
        pair_codes, pairs = pd.factorize(codes_g.astype(np.int64) * len(labels_h) + codes_h)
        sums = np.empty((len(pairs), u.shape[1]))
        for j in range(u.shape[1]):
            sums[:, j] = np.bincount(pair_codes, weights=u[:, j], minlength=len(pairs))
        labels_g, labels_h = labels_g.tolist(), labels_h.tolist()
        for code, total in zip(pairs.tolist(), sums):
            out.pair_sums[(labels_g[code // len(labels_h)], labels_h[code % len(labels_h)])] = total
        out.n_rows = u.shape[0]
        return out

    def update(self, scores: np.ndarray, groups, groups2) -> TwoWayClusterMeat:
        """Fold a batch in place and return ``self``."""
        self._absorb(TwoWayClusterMeat.from_scores(scores, groups, groups2))
        return self

    def merge(self, other: TwoWayClusterMeat) -> TwoWayClusterMeat:
        out = self.copy()
        out._absorb(other)
        return out

    __add__ = merge

    def copy(self) -> TwoWayClusterMeat:
        out = TwoWayClusterMeat(self.size)
        out.n_rows = self.n_rows
        out.pair_sums = {key: value.copy() for key, value in self.pair_sums.items()}
        return out

    def _absorb(self, other: TwoWayClusterMeat) -> None:
        if other.n_rows and self.size != other.size:
            raise InputError(
                f"cannot merge cluster sums over {other.size} parameters into sums over "
                f"{self.size}."
            )
        for key, total in other.pair_sums.items():
            previous = self.pair_sums.get(key)
            self.pair_sums[key] = total.copy() if previous is None else previous + total
        self.n_rows += other.n_rows

    @property
    def n_groups(self) -> tuple[int, int, int]:
        """``(G_g, G_h, G_gh)``: clusters of the first and second labels and observed pairs."""
        return (
            len({g for g, _ in self.pair_sums}),
            len({h for _, h in self.pair_sums}),
            len(self.pair_sums),
        )

    def meats(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``Σ s sᵀ`` over the clusters of g, of h, and of the pairs."""
        by_g: dict = {}
        by_h: dict = {}
        pair_meat = np.zeros((self.size, self.size))
        for (g, h), total in self.pair_sums.items():
            by_g[g] = by_g[g] + total if g in by_g else total.copy()
            by_h[h] = by_h[h] + total if h in by_h else total.copy()
            pair_meat += np.outer(total, total)
        return _outer_sum(by_g, self.size), _outer_sum(by_h, self.size), pair_meat

    def covariance(
        self, bread: np.ndarray, *, use_correction: bool = True
    ) -> tuple[np.ndarray, int]:
        """``(V_g + V_h − V_gh, min(G_g, G_h) − 1)`` in the bread's coordinates."""
        counts = self.n_groups
        if min(counts) < 2:
            raise InputError(
                "two-way cluster-robust errors need at least two clusters in each grouping; "
                "the data "
                f"hold {counts[0]} and {counts[1]} clusters ({counts[2]} pairs)."
            )
        n, k = float(self.n_rows), bread.shape[0]
        total = np.zeros_like(bread)
        for sign, meat, groups in zip((1.0, 1.0, -1.0), self.meats(), counts):
            factor = groups / (groups - 1.0) * (n - 1.0) / (n - k) if use_correction else 1.0
            total += sign * factor * (bread @ meat @ bread)
        return total, min(counts[0], counts[1]) - 1

    # ---------------------------------------------------------------- plain form
    def to_dict(self) -> dict:
        """JSON-ready: labels must be strings, numbers, booleans or None."""
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "size": self.size,
            "n_rows": self.n_rows,
            "pairs": [[g, h, total.tolist()] for (g, h), total in self.pair_sums.items()],
        }

    @classmethod
    def from_dict(cls, data: dict, *, where: str = "cluster sums") -> TwoWayClusterMeat:
        check_format(data, FORMAT, FORMAT_VERSION, "two-way cluster summary", where)
        size, n_rows, pairs = data.get("size"), data.get("n_rows"), data.get("pairs")
        if not all(
            isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in (size, n_rows)
        ):
            raise ModelFormatError(f"{where}: 'size' and 'n_rows' must be non-negative integers.")
        if not isinstance(pairs, list):
            raise ModelFormatError(f"{where}: 'pairs' must be a list of [label, label, sums].")
        out = cls(size)
        out.n_rows = n_rows
        for entry in pairs:
            if not (isinstance(entry, list) and len(entry) == 3 and len(entry[2]) == size):
                raise ModelFormatError(f"{where}: each pair must be [label, label, {size} sums].")
            total = np.array(entry[2], dtype=np.float64)
            if not np.isfinite(total).all():
                raise ModelFormatError(f"{where}: the sums contain non-finite numbers.")
            out.pair_sums[(entry[0], entry[1])] = total
        return out

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TwoWayClusterMeat):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    __hash__ = None


def _outer_sum(sums: dict, size: int) -> np.ndarray:
    if not sums:
        return np.zeros((size, size))
    stacked = np.array(list(sums.values()))
    return stacked.T @ stacked


def two_way_covariance(
    meat: TwoWayClusterMeat,
    xtx_inv: np.ndarray,
    weight_sum: float,
    mean_kept: np.ndarray | None,
    *,
    use_correction: bool = True,
):
    """``(cov, df_resid_inference)``: the two-way covariance of (intercept, kept coefficients)
    in parameter coordinates, from ``M_xx⁻¹``, ``Σw`` and the kept means (None without an
    intercept)."""
    bread = centered_bread(np.asarray(xtx_inv, dtype=float), weight_sum, mean_kept is not None)
    cov, df = meat.covariance(bread, use_correction=use_correction)
    return to_parameter_coordinates(cov, mean_kept), df
