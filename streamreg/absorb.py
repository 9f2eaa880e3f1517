r"""One absorbed fixed effect (``y ~ x | firm``): the within estimator from per-group sums.

For rows ``z = [x, y]`` in groups ``g`` with weights ``w`` the within (demeaned)
estimator regresses ``z − z̄_g`` on itself; it needs only

    W_g = Σ_g w ,   s_g = Σ_g w (z − a_g) ,   C = Σ_g Σ_{i∈g} w (zᵢ − z̄_g)(zᵢ − z̄_g)ᵀ

per group ``g`` (``z̄_g = a_g + s_g/W_g``) and the within co-moment ``C`` — memory
``O(groups × columns)``, never ``groups²``. ``a_g`` is the first row seen of the
group: shifting each group's rows by a value of that group keeps the digits
that a global shift would cancel (two firms at 1e6 and 1e-3). A batch adds its
own within co-moment ``Q − Sᵀ diag(1/W) S`` (``Q`` the Gram of the shifted rows,
one BLAS call; ``S`` the per-group sums, one ``bincount`` per column) and merges
group by group (Chan et al. 1979)::

    C = C_A + C_B + Σ_g (W_gA W_gB / W_g) δ_g δ_gᵀ ,   δ_g = z̄_gB − z̄_gA

Two states with different shifts for a group merge the same way, ``s_gB`` being
moved to ``a_gA`` first (``s_gB + W_gB (a_gB − a_gA)``).

**Inference, as pyfixest** (``feols``, default small-sample corrections ``ssc(k_adj=True,
k_fixef="nonnested", G_adj=True, G_df="min")``; fixest's ``"nested"`` rule). With ``N`` rows,
``G`` groups, ``k`` kept slopes and singleton groups (one row) dropped first, as pyfixest's
``fixef_rm="singleton"`` does (they carry no within variation, but would count in ``N`` and ``G``):

* iid: ``V = SSR/(N − k − G) · C_xx⁻¹``, t with ``N − k − G`` degrees of freedom;
* clustered (CRV1) by a column with ``H`` clusters: ``V = (N−1)/(N−k_df) · H/(H−1) ·
  C_xx⁻¹ (Σ_h s_h s_hᵀ) C_xx⁻¹`` with scores ``s_h = Σ_{i∈h} wᵢ x̃ᵢ eᵢ``; ``k_df = k + 1``
  when the fixed effect is nested in the clusters (always, when clustering by the absorbed
  factor itself) and ``k + G`` otherwise; t with ``H − 1`` degrees of freedom.

The scores need the residuals row by row: a second pass (:class:`ClusterScores`)
demeans each row with the group means of the first, memory ``O(clusters × k)``.

**Several absorbed factors** have no closed-form within transform; they need
alternating projections, one pass over the data per sweep, until convergence.
That is not implemented: :func:`check_absorb` refuses it in words (absorb the
largest factor and add the others as ``C(...)`` terms).

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> firm = rng.integers(0, 5, 40)
>>> x = rng.normal(size=40)
>>> y = 2.0 * x + firm * 10.0 + rng.normal(scale=0.1, size=40)
>>> state = AbsorbState.from_arrays(np.column_stack([x, y]), firm, names=["x", "y"])
>>> fit = solve_within(state)
>>> round(float(fit.coef[0]), 1), fit.n_groups
(2.0, 5)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from scipy import stats

from .errors import InputError
from .solve import Solution, solve_normal_equations
from .state import MomentState


def check_absorb(absorb: Sequence[str]) -> None:
    """One absorbed factor is supported; refuse more in one sentence."""
    if len(absorb) > 1:
        raise InputError(
            f"absorbing {len(absorb)} factors ({', '.join(absorb)}) needs alternating "
            "projections, one pass over the data per sweep, which streamreg does not do; absorb "
            f"the factor with the most levels and add the others as C(...) terms, e.g. "
            f"'y ~ x + C({absorb[1]}) | {absorb[0]}'.")


def factorize(groups) -> tuple[np.ndarray, np.ndarray]:
    """``(codes, uniques)`` of a batch of group labels (Arrow dictionary, Arrow or numpy)."""
    if isinstance(groups, pa.ChunkedArray):
        groups = groups.combine_chunks()
    if isinstance(groups, pa.Array):
        if groups.null_count:
            raise InputError("group labels must not be missing (drop those rows first).")
        if not pa.types.is_dictionary(groups.type):
            groups = pc.dictionary_encode(groups)
        codes = groups.indices.to_numpy(zero_copy_only=False).astype(np.int64)
        return codes, groups.dictionary.to_numpy(zero_copy_only=False)
    codes, uniques = pd.factorize(np.asarray(groups), use_na_sentinel=True)
    if (codes < 0).any():
        raise InputError("group labels must not be missing (drop those rows first).")
    return codes.astype(np.int64), np.asarray(uniques)


class _GroupIndex:
    """Group label → dense id, in order of first appearance; grows as labels arrive."""

    def __init__(self, keys=None):
        self.keys = np.asarray([] if keys is None else keys, dtype=object)
        self._index: pd.Index | None = None

    def __len__(self) -> int:
        return len(self.keys)

    def lookup(self, uniques: np.ndarray) -> np.ndarray:
        """Ids of known labels, −1 for unknown ones (nothing is added)."""
        if self._index is None:
            self._index = pd.Index(self.keys, dtype=object)
        return self._index.get_indexer(pd.Index(np.asarray(uniques, dtype=object), dtype=object))

    def ids(self, uniques: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Ids of ``uniques`` (new labels are appended) and a mask of the new ones."""
        if self._index is None:
            self._index = pd.Index(self.keys, dtype=object)
        found = self._index.get_indexer(pd.Index(np.asarray(uniques, dtype=object), dtype=object))
        new = found < 0
        if new.any():
            fresh = np.asarray(uniques, dtype=object)[new]
            found[new] = len(self.keys) + np.arange(len(fresh))
            self.keys = np.concatenate([self.keys, fresh])
            self._index = None
        return found, new


class AbsorbState:
    """Per-group counts, shifts and shifted sums, and the within co-moment; see the module doc."""

    def __init__(self, names: Sequence[str]):
        k = len(names)
        self.names = tuple(names)
        self.index = _GroupIndex()
        self.rows = np.zeros(0, dtype=np.int64)
        self.weight = np.zeros(0)
        self.shift = np.zeros((0, k))
        self.sums = np.zeros((0, k))
        self.within = np.zeros((k, k))
        self.n_rows = 0

    empty = classmethod(lambda cls, names: cls(names))

    @classmethod
    def from_arrays(cls, z, groups, weights=None, *, names: Sequence[str]) -> AbsorbState:
        return cls(names).update(z, groups, weights)

    @property
    def n_groups(self) -> int:
        return len(self.index)

    @property
    def weight_sum(self) -> float:
        return float(self.weight.sum())

    def _grow(self, size: int) -> None:
        extra = size - len(self.rows)
        if extra > 0:
            k = len(self.names)
            self.rows = np.concatenate([self.rows, np.zeros(extra, dtype=np.int64)])
            self.weight = np.concatenate([self.weight, np.zeros(extra)])
            self.shift = np.vstack([self.shift, np.zeros((extra, k))])
            self.sums = np.vstack([self.sums, np.zeros((extra, k))])

    def update(self, z, groups, weights=None) -> AbsorbState:
        """Fold a batch (rows × columns, group label per row) into the state; returns ``self``."""
        z = np.asarray(z, dtype=np.float64)
        if z.ndim != 2 or z.shape[1] != len(self.names):
            raise InputError(f"batch has shape {z.shape}; expected (rows, {len(self.names)}).")
        if z.shape[0] == 0:
            return self
        local, uniques = factorize(groups)
        ids, new = self.index.ids(uniques)
        self._grow(len(self.index))
        rows = np.bincount(local, minlength=len(uniques))
        first = np.zeros(len(uniques), dtype=np.int64)
        present, where = np.unique(local, return_index=True)  # the first row of each group
        first[present] = where
        fresh = ids[new]
        self.shift[fresh] = z[first[new]]
        shifted = z - self.shift[ids[local]]
        w = None if weights is None else np.asarray(weights, dtype=np.float64)
        weight = rows.astype(np.float64) if w is None else np.bincount(local, w, len(uniques))
        scaled = shifted if w is None else shifted * w[:, None]
        sums = np.column_stack([np.bincount(local, scaled[:, j], len(uniques))
                                for j in range(z.shape[1])])
        gram = shifted.T @ scaled
        has = weight > 0
        within = gram - (sums[has] / weight[has, None]).T @ sums[has]
        self._merge_groups(ids, rows, weight, sums, within, offset=None)
        self.n_rows += z.shape[0]
        return self

    def _merge_groups(self, ids, rows, weight, sums, within, offset) -> None:
        """Add groups ``ids`` with these statistics (about ``self.shift[ids]`` + ``offset``)."""
        old_w = self.weight[ids]
        if offset is not None:
            sums = sums + weight[:, None] * offset
        both = (old_w > 0) & (weight > 0)
        extra = np.zeros_like(self.within)
        if both.any():
            delta = sums[both] / weight[both, None] - self.sums[ids[both]] / old_w[both, None]
            factor = old_w[both] * weight[both] / (old_w[both] + weight[both])
            extra = (delta * factor[:, None]).T @ delta
        self.within = self.within + within + extra
        self.sums[ids] += sums
        self.weight[ids] += weight
        self.rows[ids] += rows

    def merge(self, other: AbsorbState) -> AbsorbState:
        """The state of the union of the rows; a group's shift is kept from ``self``."""
        if other.names != self.names:
            raise InputError(f"cannot merge states over different columns: {list(self.names)} and "
                             f"{list(other.names)}.")
        out = self.copy()
        ids, new = out.index.ids(other.index.keys)
        out._grow(len(out.index))
        out.shift[ids[new]] = other.shift[new]
        offset = other.shift - out.shift[ids]  # zero for the new groups
        out._merge_groups(ids, other.rows, other.weight, other.sums, other.within, offset)
        out.n_rows += other.n_rows
        return out

    __add__ = merge

    def copy(self) -> AbsorbState:
        out = AbsorbState(self.names)
        out.index = _GroupIndex(self.index.keys.copy())
        out.rows, out.weight = self.rows.copy(), self.weight.copy()
        out.shift, out.sums, out.within = self.shift.copy(), self.sums.copy(), self.within.copy()
        out.n_rows = self.n_rows
        return out

    def group_offsets(self) -> np.ndarray:
        """``s_g / W_g``: group mean minus the group's shift (zero for weightless groups)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            out = self.sums / self.weight[:, None]
        return np.where(self.weight[:, None] > 0, out, 0.0)

    def moment_state(self) -> MomentState:
        """A moment state whose co-moment is the within one (what the slopes are solved from)."""
        total = self.weight_sum
        means = self.shift + self.group_offsets()
        grand = (self.weight @ means) / total if total > 0 else np.zeros(len(self.names))
        return MomentState(self.names, self.n_rows, total, grand, self.within)


@dataclass
class WithinFit:
    """Slopes of the within estimator and pyfixest's iid inference (clustered on request)."""

    names: list[str]
    coef: np.ndarray
    solution: Solution
    nobs: int
    n_groups: int
    singletons: int
    vcov: np.ndarray
    df_resid: float
    vcov_type: str = "iid"
    n_clusters: int | None = None
    extra: dict = field(default_factory=dict)

    @property
    def bse(self) -> np.ndarray:
        return np.sqrt(np.diagonal(self.vcov))

    @property
    def tvalues(self) -> np.ndarray:
        return self.coef[self.kept] / self.bse

    @property
    def pvalues(self) -> np.ndarray:
        return 2.0 * stats.t.sf(np.abs(self.tvalues), self.df_resid)

    @property
    def kept(self) -> np.ndarray:
        return ~np.isnan(self.coef)

    @property
    def ssr(self) -> float:
        return self.solution.ssr


def solve_within(state: AbsorbState, *, drop_singletons: bool = True,
                 drop_collinear: bool = False) -> WithinFit:
    """Solve the slopes from the within co-moment (the target is the last column); iid errors."""
    moments = state.moment_state()
    solution = solve_normal_equations(moments, fit_intercept=True, drop_collinear=drop_collinear)
    singletons = int((state.rows == 1).sum()) if drop_singletons else 0
    nobs = state.n_rows - singletons
    groups = int((state.rows > 0).sum()) - singletons
    kept = ~np.isnan(solution.coef)
    k = int(kept.sum())
    df = nobs - k - groups
    if df <= 0:
        raise InputError(f"{nobs} rows in {groups} groups leave no residual degrees of freedom for "
                         f"{k} slopes.")
    vcov = solution.ssr / df * np.asarray(solution.xtx_inv)
    return WithinFit(list(state.names[:-1]), solution.coef, solution, nobs, groups, singletons,
                     vcov, float(df))


class ClusterScores:
    """Second pass for clustered standard errors: per-cluster sums of ``w x̃ e``.

    Rows are demeaned with the first pass's group means (a row of a group the
    first pass did not see is an error: the data changed between the passes).
    ``clusters=None`` in :meth:`update` clusters by the absorbed factor itself.
    """

    def __init__(self, state: AbsorbState, fit: WithinFit, *, drop_singletons: bool = True):
        self.state, self.fit = state, fit
        self.drop_singletons = drop_singletons
        self.kept = fit.kept
        self.beta = fit.coef[self.kept]
        self.clusters = _GroupIndex()
        self.scores = np.zeros((0, int(self.kept.sum())))
        self.cluster_of_group = np.full(state.n_groups, -1, dtype=np.int64)
        self.nested = True
        self.by_factor = None

    def update(self, z, groups, clusters=None, weights=None) -> ClusterScores:
        z = np.asarray(z, dtype=np.float64)
        local, uniques = factorize(groups)
        ids = self.state.index.lookup(uniques)
        if (ids < 0).any():
            raise InputError("a group appears in the second pass that the first pass did not see; "
                             "the data changed between the passes.")
        gid = ids[local]
        keep = np.ones(len(gid), dtype=bool)
        if self.drop_singletons:
            keep = self.state.rows[gid] > 1
        demeaned = (z - self.state.shift[gid]) - self.state.group_offsets()[gid]
        x, y = demeaned[:, :-1][:, self.kept], demeaned[:, -1]
        resid = y - x @ self.beta
        score = x * resid[:, None]
        if weights is not None:
            score = score * np.asarray(weights, dtype=np.float64)[:, None]
        if clusters is None:
            self.by_factor = True
            cluster_ids = gid
            size = self.state.n_groups
        else:
            self.by_factor = False
            clocal, cuniques = factorize(clusters)
            cids, _ = self.clusters.ids(cuniques)
            cluster_ids = cids[clocal]
            size = len(self.clusters)
            self._note_nesting(gid[keep], cluster_ids[keep])
        if len(self.scores) < size:
            extra = np.zeros((size - len(self.scores), self.scores.shape[1]))
            self.scores = np.vstack([self.scores, extra])
        self._present = getattr(self, "_present", np.zeros(0, dtype=bool))
        if len(self._present) < size:
            extra = np.zeros(size - len(self._present), bool)
            self._present = np.concatenate([self._present, extra])
        self._present[cluster_ids[keep]] = True
        for j in range(score.shape[1]):
            self.scores[:, j] += np.bincount(cluster_ids[keep], score[keep, j], size)
        return self

    def _note_nesting(self, gid, cid) -> None:
        """The fixed effect is nested in the clusters when each group sits in one cluster."""
        current = self.cluster_of_group[gid]
        unset = current < 0
        self.cluster_of_group[gid[unset]] = cid[unset]
        if (self.cluster_of_group[gid] != cid).any():
            self.nested = False

    def finish(self) -> WithinFit:
        """The fit with its CRV1 covariance (pyfixest's small-sample corrections)."""
        fit = self.fit
        present = self._present
        n_clusters = int(present.sum())
        if n_clusters < 2:
            raise InputError("clustered standard errors need at least two clusters.")
        meat = self.scores[present].T @ self.scores[present]
        bread = np.asarray(fit.solution.xtx_inv)
        k = int(self.kept.sum())
        k_df = k + 1 if (self.by_factor or self.nested) else k + fit.n_groups
        adjust = (fit.nobs - 1) / (fit.nobs - k_df) * n_clusters / (n_clusters - 1)
        vcov = adjust * bread @ meat @ bread
        return WithinFit(fit.names, fit.coef, fit.solution, fit.nobs, fit.n_groups, fit.singletons,
                         vcov, float(n_clusters - 1), "CRV1", n_clusters)
