r"""One absorbed fixed effect (``y ~ x | firm``): the within estimator from per-group sums.

For rows ``z = [x, y]`` in groups ``g`` with weights ``w`` the within (demeaned)
estimator regresses ``z − z̄_g`` on itself; it needs only

    W_g = Σ_g w ,   s_g = Σ_g w (z − a_g) ,   C = Σ_g Σ_{i∈g} w (zᵢ − z̄_g)(zᵢ − z̄_g)ᵀ

per group ``g`` (``z̄_g = a_g + s_g/W_g``) and the within co-moment ``C`` — memory
``O(groups × columns)``, never ``groups²``. ``a_g`` is the first row seen of the
group: shifting each group's rows by a value of that group keeps the digits
that a global shift would cancel (two firms at 1e6 and 1e-3). The pass keeps the
Gram of the shifted rows ``Q = Σ w (z − a_g)(z − a_g)ᵀ`` (one BLAS call per batch)
and the per-group sums ``S`` (one ``bincount`` per column over the batch's groups,
added into the group's row), so that

    C = Q − Σ_g s_g s_gᵀ / W_g

— the shifted-data formula, exact in exact arithmetic and accurate because each
row is taken relative to a row of its own group. Two states merge exactly: a
group's sums and Gram move from one shift to the other
(``s_gB + W_gB δ_g`` and ``Q_gB + s_gB δ_gᵀ + δ_g s_gBᵀ + W_gB δ_g δ_gᵀ``,
``δ_g = a_gB − a_gA``).

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
import pyarrow as pa

from ..distributions import t_sf
from ..errors import InputError
from .groups import GroupIndex, factorize, grown
from .moments import MomentState, solve_normal_equations
from .solution import Solution


class AbsorbState:
    """Per-group counts, shifts and shifted sums, and the Gram of the shifted rows; see the
    module doc.

    Mergeable with ``+`` (and ``+=``). The per-group arrays grow by doubling; ``rows``,
    ``weight``, ``shift`` and ``sums`` are views of their first ``n_groups`` rows."""

    def __init__(self, names: Sequence[str]):
        k = len(names)
        self.names = tuple(names)
        self.index = GroupIndex()
        self._shift = np.zeros((0, k))  # row-major: a row's shift is one gather
        self._sums = np.zeros((0, k), order="F")  # column-major: a column's sums add at once
        self._weight = np.zeros(0)
        self._rows = np.zeros(0, dtype=np.int64)
        self.gram = np.zeros((k, k))
        self.n_rows = 0

    @classmethod
    def empty(cls, names: Sequence[str]) -> AbsorbState:
        return cls(names)

    @classmethod
    def from_arrays(cls, z, groups, weights=None, *, names: Sequence[str]) -> AbsorbState:
        return cls(names).update(z, groups, weights)

    @property
    def n_groups(self) -> int:
        return len(self.index)

    @property
    def _k(self) -> int:
        return len(self.names)

    shift = property(lambda self: self._shift[: self.n_groups])
    sums = property(lambda self: self._sums[: self.n_groups])
    weight = property(lambda self: self._weight[: self.n_groups])
    rows = property(lambda self: self._rows[: self.n_groups])

    @property
    def weight_sum(self) -> float:
        return float(self.weight.sum())

    @property
    def within(self) -> np.ndarray:
        """The within co-moment ``C = Q − Σ_g s_g s_gᵀ / W_g``."""
        return self.gram - self.group_offsets().T @ self.sums

    def _grow(self) -> None:
        size = self.n_groups
        self._shift = grown(self._shift, size)
        self._sums = grown(self._sums, size)
        self._weight = grown(self._weight, size)
        self._rows = grown(self._rows, size)

    def update(self, z, groups, weights=None) -> AbsorbState:
        """Fold a batch (rows × columns, group label per row) into the state; returns ``self``."""
        z = np.asarray(z, dtype=np.float64)
        if z.ndim != 2 or z.shape[1] != len(self.names):
            raise InputError(f"batch has shape {z.shape}; expected (rows, {len(self.names)}).")
        n = z.shape[0]
        if n == 0:
            return self
        w = None if weights is None else np.asarray(weights, dtype=np.float64)
        labels = _whole_numbers(groups)
        if labels is not None and self.index.direct and 8 * n >= self.n_groups:
            self._update_direct(z, labels, w)
        else:
            self._update_hashed(z, groups, w)
        self.n_rows += n
        return self

    def _update_direct(self, z, labels, w) -> None:
        """Whole-number labels in a moderate range, batches not much smaller than the number of
        groups: sums land in group-sized tables (one ``bincount`` per column), no hashing."""
        before = self.n_groups
        gid = self.index.row_ids(labels)
        self._grow()
        size = self.n_groups
        fresh = np.flatnonzero(gid >= before)
        if len(fresh):  # a new group is shifted by its first row (the last write wins)
            self._shift[gid[fresh[::-1]]] = z[fresh[::-1]]
        shifted = z - np.take(self._shift, gid, axis=0)
        scaled = shifted if w is None else shifted * w[:, None]
        self.gram += shifted.T @ scaled
        rows = np.bincount(gid, minlength=size)
        self._rows[:size] += rows
        self._weight[:size] += rows if w is None else np.bincount(gid, w, size)
        for j in range(z.shape[1]):
            self._sums[:size, j] += np.bincount(gid, scaled[:, j], size)

    def _update_hashed(self, z, groups, w) -> None:
        """Any labels: the batch's groups are found by hashing, their sums added group by
        group."""
        n = len(z)
        local, uniques = factorize(groups)
        ids, new = self.index.ids(uniques)
        self._grow()
        size = len(uniques)
        if new.any():  # a new group is shifted by its first row
            first = np.empty(size, dtype=np.intp)
            # any row of the group is a correct shift; in practice the last write, the first
            # row, wins
            first[local[::-1]] = np.arange(n - 1, -1, -1)
            self._shift[ids[new]] = z[first[new]]
        shifted = z - np.take(self._shift, ids[local], axis=0)
        scaled = shifted if w is None else shifted * w[:, None]
        self.gram += shifted.T @ scaled
        rows = np.bincount(local, minlength=size)
        self._rows[ids] += rows
        self._weight[ids] += rows if w is None else np.bincount(local, w, size)
        for j in range(z.shape[1]):
            self._sums[ids, j] += np.bincount(local, scaled[:, j], size)

    def __iadd__(self, other: AbsorbState) -> AbsorbState:
        """Fold ``other``'s rows in; a group's shift is kept from ``self``."""
        if other.names != self.names:
            raise InputError(
                f"cannot merge states over different columns: {list(self.names)} and "
                f"{list(other.names)}."
            )
        gram = other.gram.copy()
        if other.n_groups:
            ids, new = self.index.ids(other.index.keys)
            self._grow()
            self._shift[ids[new]] = other.shift[new]
            sums = other.sums.copy()
            common = ~new
            if common.any():
                delta = other.shift[common] - self._shift[ids[common]]
                moved = other.sums[common]
                cross = moved.T @ delta
                gram += cross + cross.T + (delta * other.weight[common, None]).T @ delta
                sums[common] = moved + other.weight[common, None] * delta
            self._sums[ids] += sums
            self._weight[ids] += other.weight
            self._rows[ids] += other.rows
        self.gram = self.gram + gram
        self.n_rows += other.n_rows
        return self

    def merge(self, other: AbsorbState) -> AbsorbState:
        """The state of the union of the rows (a new state)."""
        out = self.copy()
        out += other
        return out

    __add__ = merge

    def copy(self) -> AbsorbState:
        out = AbsorbState(self.names)
        out.index = self.index.copy()
        out._shift, out._sums = self.shift.copy(), np.asfortranarray(self.sums)
        out._weight, out._rows = self.weight.copy(), self.rows.copy()
        out.gram = self.gram.copy()
        out.n_rows = self.n_rows
        return out

    def select(self, columns: Sequence[int]) -> AbsorbState:
        """The state of some of the columns (one target of several), sharing nothing."""
        columns = list(columns)
        out = AbsorbState([self.names[j] for j in columns])
        out.index = self.index.copy()
        out._shift = self.shift[:, columns].copy()
        out._sums = np.asfortranarray(self.sums[:, columns])
        out._weight, out._rows = self.weight.copy(), self.rows.copy()
        out.gram = self.gram[np.ix_(columns, columns)].copy()
        out.n_rows = self.n_rows
        return out

    def group_offsets(self) -> np.ndarray:
        """``s_g / W_g``: group mean minus the group's shift (zero for weightless groups)."""
        weight = self.weight
        with np.errstate(invalid="ignore", divide="ignore"):
            out = self.sums / weight[:, None]
        if (weight > 0).all():
            return out
        return np.where(weight[:, None] > 0, out, 0.0)

    def moment_state(self) -> MomentState:
        """A moment state whose co-moment is the within one (what the slopes are solved from)."""
        total = self.weight_sum
        means = self.shift + self.group_offsets()
        grand = (self.weight @ means) / total if total > 0 else np.zeros(len(self.names))
        return MomentState(self.names, self.n_rows, total, grand, self.within)


def _whole_numbers(groups) -> np.ndarray | None:
    """The labels as a numpy integer array when they are whole numbers without nulls."""
    if isinstance(groups, pa.ChunkedArray):
        groups = groups.combine_chunks()
    if isinstance(groups, pa.Array):
        if not pa.types.is_integer(groups.type) or groups.null_count:
            return None
        return groups.to_numpy(zero_copy_only=False)
    values = np.asarray(groups)
    return values if np.issubdtype(values.dtype, np.integer) else None


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
        return 2.0 * t_sf(np.abs(self.tvalues), self.df_resid)

    @property
    def kept(self) -> np.ndarray:
        return ~np.isnan(self.coef)

    @property
    def ssr(self) -> float:
        return self.solution.ssr


def solve_within(
    state: AbsorbState, *, drop_singletons: bool = True, drop_collinear: bool = False
) -> WithinFit:
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
        raise InputError(
            f"{nobs} rows in {groups} groups leave no residual degrees of freedom for {k} slopes."
        )
    vcov = solution.ssr / df * np.asarray(solution.xtx_inv)
    return WithinFit(
        list(state.names[:-1]), solution.coef, solution, nobs, groups, singletons, vcov, float(df)
    )
