r"""Cluster-robust (CRV1) standard errors of the within estimator, from a second pass.

The scores ``s_h = Σ_{i∈h} wᵢ x̃ᵢ eᵢ`` need each row's residual, so a second pass
demeans every row with the first pass's group means (``x̃``, ``ẽ``) and sums its
score into its cluster: memory ``O(clusters × k)``. Scores of disjoint rows merge
with ``+`` (a runner's tree). With ``H`` clusters, ``N`` rows and ``k`` kept slopes,
as pyfixest's ``feols`` (``ssc(k_adj=True, k_fixef="nonnested", G_adj=True)``)::

    V = (N−1)/(N−k_df) · H/(H−1) · C_xx⁻¹ (Σ_h s_h s_hᵀ) C_xx⁻¹

with ``k_df = k + 1`` when the fixed effect is nested in the clusters (always, when
clustering by the absorbed factor itself) and ``k + G`` otherwise; t with ``H − 1``
degrees of freedom. Singleton groups are dropped, as in the first pass.

>>> import numpy as np
>>> from streamreg.solvers.absorb import AbsorbState, solve_within
>>> rng = np.random.default_rng(1)
>>> firm = rng.integers(0, 6, 60)
>>> z = np.column_stack([rng.normal(size=60), rng.normal(size=60)])
>>> state = AbsorbState.from_arrays(z, firm, names=["x", "y"])
>>> fit = solve_within(state)
>>> halves = [ClusterScores(state, fit).update(z[s], firm[s])
...           for s in (slice(0, 30), slice(30, 60))]
>>> whole = ClusterScores(state, fit).update(z, firm)
>>> bool(np.allclose((halves[0] + halves[1]).finish().vcov, whole.finish().vcov))
True
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from .absorb import AbsorbState, WithinFit
from .groups import GroupIndex, factorize, grown


class ClusterScores:
    """Per-cluster sums of ``w x̃ e``; ``clusters=None`` in :meth:`update` clusters by the
    absorbed factor itself. A row of a group the first pass did not see is an error (the data
    changed between the passes)."""

    def __init__(self, state: AbsorbState, fit: WithinFit, *, drop_singletons: bool = True):
        self.state, self.fit = state, fit
        self.drop_singletons = drop_singletons
        self.kept = fit.kept
        self.beta = fit.coef[self.kept]
        self.clusters = GroupIndex()
        self.scores = np.zeros((0, int(self.kept.sum())))
        self.present = np.zeros(0, dtype=bool)
        self.cluster_of_group = np.full(state.n_groups, -1, dtype=np.intp)
        self.nested = True
        self.by_factor: bool | None = None
        self._offsets = None

    def update(self, z, groups, clusters=None, weights=None) -> ClusterScores:
        """Fold a batch: design rows ``z`` (target last), group labels, cluster labels."""
        z = np.asarray(z, dtype=np.float64)
        local, uniques = factorize(groups)
        ids = self.state.index.lookup(uniques)
        if (ids < 0).any():
            raise InputError(
                "a group appears in the second pass that the first pass did not see; "
                "the data changed between the passes."
            )
        gid = ids[local]
        keep = self.state.rows[gid] > 1 if self.drop_singletons else np.ones(len(gid), bool)
        if self._offsets is None:
            self._offsets = self.state.group_offsets()
        demeaned = (z - self.state.shift[gid]) - self._offsets[gid]
        x, y = demeaned[:, :-1][:, self.kept], demeaned[:, -1]
        score = x * (y - x @ self.beta)[:, None]
        if weights is not None:
            score = score * np.asarray(weights, dtype=np.float64)[:, None]
        by_factor = clusters is None
        if self.by_factor is not None and self.by_factor != by_factor:
            raise InputError("cluster scores of a batch mix two kinds of clusters.")
        self.by_factor = by_factor
        if by_factor:
            cluster_ids, size = gid, self.state.n_groups
        else:
            clocal, cuniques = factorize(clusters)
            cids, _ = self.clusters.ids(cuniques)
            cluster_ids, size = cids[clocal], len(self.clusters)
            self._note_nesting(gid[keep], cluster_ids[keep])
        self._grow(size)
        self.present[cluster_ids[keep]] = True
        for j in range(score.shape[1]):
            self.scores[:size, j] += np.bincount(cluster_ids[keep], score[keep, j], size)
        return self

    def _grow(self, size: int) -> None:
        self.scores = grown(self.scores, size)
        self.present = grown(self.present, size)

    def _note_nesting(self, gid, cid) -> None:
        """The fixed effect is nested in the clusters when each group sits in one cluster."""
        current = self.cluster_of_group[gid]
        unset = current < 0
        self.cluster_of_group[gid[unset]] = cid[unset]
        if (self.cluster_of_group[gid] != cid).any():
            self.nested = False

    # ------------------------------------------------------------------ merging
    def copy(self) -> ClusterScores:
        out = ClusterScores(self.state, self.fit, drop_singletons=self.drop_singletons)
        out.clusters = self.clusters.copy()
        out.scores, out.present = self.scores.copy(), self.present.copy()
        out.cluster_of_group = self.cluster_of_group.copy()
        out.nested, out.by_factor, out._offsets = self.nested, self.by_factor, self._offsets
        return out

    def __iadd__(self, other: ClusterScores) -> ClusterScores:
        if other.by_factor is None:
            return self
        if self.by_factor is None:
            self.by_factor = other.by_factor
        if self.by_factor != other.by_factor:
            raise InputError("cannot merge scores of two kinds of clusters.")
        if self.by_factor:  # cluster ids are group ids of the shared first-pass state
            size = max(len(self.scores), len(other.scores))
            self._grow(size)
            n = len(other.scores)
            self.scores[:n] += other.scores
            self.present[:n] |= other.present
        else:
            count = len(other.clusters)
            mapping, _ = self.clusters.ids(other.clusters.keys)
            self._grow(len(self.clusters))
            self.scores[mapping] += other.scores[:count]
            self.present[mapping] |= other.present[:count]
            theirs = other.cluster_of_group >= 0
            mapped = np.full(len(theirs), -1, dtype=np.intp)
            mapped[theirs] = mapping[other.cluster_of_group[theirs]]
            ours = self.cluster_of_group >= 0
            if (ours & theirs & (self.cluster_of_group != mapped)).any():
                self.nested = False
            self.cluster_of_group[~ours & theirs] = mapped[~ours & theirs]
        self.nested = self.nested and other.nested
        return self

    def __add__(self, other: ClusterScores) -> ClusterScores:
        out = self.copy()
        out += other
        return out

    # ------------------------------------------------------------------ the covariance
    def finish(self) -> WithinFit:
        """The fit with its CRV1 covariance (pyfixest's small-sample corrections)."""
        fit = self.fit
        present = self.present
        n_clusters = int(present.sum())
        if n_clusters < 2:
            raise InputError(
                f"clustered standard errors need at least two clusters; the data hold {n_clusters}."
            )
        used = self.scores[: len(present)][present]
        meat = used.T @ used
        bread = np.asarray(fit.solution.xtx_inv)
        k = int(self.kept.sum())
        k_df = k + 1 if (self.by_factor or self.nested) else k + fit.n_groups
        adjust = (fit.nobs - 1) / (fit.nobs - k_df) * n_clusters / (n_clusters - 1)
        vcov = adjust * bread @ meat @ bread
        return WithinFit(
            fit.names,
            fit.coef,
            fit.solution,
            fit.nobs,
            fit.n_groups,
            fit.singletons,
            vcov,
            float(n_clusters - 1),
            "CRV1",
            n_clusters,
        )
