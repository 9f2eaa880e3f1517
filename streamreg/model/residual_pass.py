r"""The residual pass: one more streaming pass at the fitted coefficients, one runner task.

After the first pass is solved, some results need the residuals ``eᵢ = yᵢ − ŷᵢ`` row by
row, which no sufficient statistic of the first pass holds. One task,
:func:`residual_part`, reads the used columns again and folds every batch into a
:class:`ResidualPass` — whichever of these the fit asked for:

* the meat of a robust covariance: HC0–HC3 and one-way clusters
  (:class:`~streamreg.model.robust.Sandwich`), Newey–West HAC
  (:class:`~streamreg.model.hac.NeweyWestMeat`), two-way clusters
  (:class:`~streamreg.model.twoway.TwoWayClusterMeat`);
* the residual diagnostics of statsmodels' summary — Omnibus, skew, kurtosis,
  Durbin–Watson, Jarque–Bera (:class:`~streamreg.model.diagnostics.ResidualDiagnostics`);
* the SSR recomputed from the residuals, ``Σ w e²``, a sum of squares that cannot cancel.

**Order.** Durbin–Watson and HAC depend on the order of the rows: it is the data's order —
files in the order they are listed (a directory's files sorted by path, several inputs in the
order given), rows in file order; for in-memory data the row order; for a Dask collection the
partitions in order. Blocks of rows are merged left to right in the runners' fixed pairwise
tree (``a + b`` is "a's rows, then b's"), so every runner gives the same figures.

**When the SSR is recomputed.** The first pass's SSR of the moment (and QR) solvers is
``M_yy − M_xyᵀβ``; its rounding error is bounded by :func:`ssr_rounding_bound` ≈
``ε·|β̃|ᵀ|M̃||β̃|`` with ``β̃ = (−β, 1)`` — large when the fit is close (SSR ≪ TSS) or the
features nearly collinear. When that bound exceeds :data:`SSR_RELATIVE_TOLERANCE` (1e-13, for
data in memory or of at most :data:`CHEAP_VALUES` values) or
:data:`SSR_RELATIVE_TOLERANCE_BIG` (1e-10, for bigger data, which a pass costs as much to read
again as the fit) the fit runs this pass (even if nothing else asked for it) and takes the SSR
from the residuals — compensated
ones (:func:`~streamreg.model.diagnostics.residuals.residuals`, double-double: each the exact
residual of β rounded once) when plain ones would lose digits too (:func:`ssr_plan`). The exact
solver's SSR is exact (rounded once) and is kept.

>>> import numpy as np, pyarrow as pa
>>> from streamreg.design import DesignSpec
>>> from streamreg.io.sources import InMemorySource
>>> from streamreg.solvers import solve
>>> from streamreg.solvers.moments import MomentState
>>> x = np.arange(20.0); y = 1 + 2 * x + np.sin(x)
>>> src = InMemorySource(pa.table({"x": x, "y": y}))
>>> spec = DesignSpec.resolve(src.schema, target="y")
>>> state = MomentState.from_arrays(np.column_stack([x, y]), names=["x", "y"])
>>> solution = solve(state)
>>> plan = PassPlan(diagnostics=True)
>>> whole = residual_part(src, 0, spec, 64, state, solution, plan)
>>> halves = [residual_part(InMemorySource(src.table.slice(s, 10)), 0, spec, 3, state,
...                         solution, plan) for s in (0, 10)]
>>> merged = halves[0] + halves[1]
>>> bool(np.isclose(merged.diagnostics.mapping()["durbin_watson"],
...                 whole.diagnostics.mapping()["durbin_watson"], rtol=1e-12))
True
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..design import batch_arrays, screen_values
from ..engine.merge import Mergeable
from .covariance import CovarianceRequest
from .diagnostics import ResidualDiagnostics
from .diagnostics.residuals import residuals, scores, whiten
from .hac import NeweyWestMeat, hac_covariance
from .robust import Sandwich, centered_residuals, robust_record
from .twoway import TwoWayClusterMeat, two_way_covariance

# Recompute the SSR from residuals when the first pass's SSR may be off by more than this,
# relatively (≈ 450 ε: the residual SD and the standard errors would keep fewer than ~13 of
# their digits; a fit with R² ≳ 0.999, or nearly collinear features) — when the data are cheap
# to read again (in memory, or at most CHEAP_VALUES values) ...
SSR_RELATIVE_TOLERANCE = 1e-13
CHEAP_VALUES = 1 << 24
# ... and for big data only when it may be off by more than this (fewer than ~10 digits left):
# re-reading them costs as much as the fit, for digits far below their sampling error.
SSR_RELATIVE_TOLERANCE_BIG = 1e-10
# ... and with compensated residuals (~10× the work of plain ones per batch) only when plain
# residuals would miss the tolerance that asked for the pass (this one for small data, the
# big data's own for big data: there plain residuals meeting 1e-10 are ~4× cheaper to take).
COMPENSATE_TOLERANCE = 1e-13
# Up to this many values (rows × columns) a recomputed SSR always takes compensated residuals.
COMPENSATE_ALWAYS_VALUES = 1 << 22


@dataclass(frozen=True)
class PassPlan:
    """What the residual pass accumulates (it travels to the workers with the task)."""

    cov: CovarianceRequest = field(default_factory=CovarianceRequest)
    diagnostics: bool = False
    recompute_ssr: bool = False  # the model's SSR from the residuals (implies diagnostics)
    compensated: bool = False  # the residuals of the diagnostics and SSR in double-double

    @property
    def needed(self) -> bool:
        return self.cov.robust or self.diagnostics


class ResidualPass(Mergeable):
    """Everything one block's rows contribute; ``a + b`` is a's rows followed by b's."""

    def __init__(self, plan: PassPlan, size: int):
        cov = plan.cov
        self.n_rows = 0
        self.diagnostics = ResidualDiagnostics() if plan.diagnostics else None
        one_way = cov.cov_type in ("HC0", "HC1", "HC2", "HC3") or (
            cov.cov_type == "cluster" and not cov.two_way
        )
        self.sandwich = Sandwich(cov.cov_type, size) if one_way else None
        self.hac = NeweyWestMeat(cov.maxlags, size, cov.kernel) if cov.cov_type == "HAC" else None
        self.two_way = TwoWayClusterMeat(size) if cov.two_way else None

    def copy(self) -> ResidualPass:
        out = object.__new__(ResidualPass)
        out.n_rows = self.n_rows
        out.diagnostics = None if self.diagnostics is None else self.diagnostics + _EMPTY
        out.sandwich = None if self.sandwich is None else self.sandwich.copy()
        out.hac = None if self.hac is None else self.hac.copy()
        out.two_way = None if self.two_way is None else self.two_way.copy()
        return out

    def __iadd__(self, later: ResidualPass) -> ResidualPass:
        self.n_rows += later.n_rows
        if self.diagnostics is not None:
            self.diagnostics = self.diagnostics + later.diagnostics
        if self.sandwich is not None:
            self.sandwich += later.sandwich
        if self.hac is not None:
            self.hac = self.hac + later.hac
        if self.two_way is not None:
            self.two_way = self.two_way + later.two_way
        return self


_EMPTY = ResidualDiagnostics()


def residual_part(
    source, index: int, spec, batch_size: int, state, solution, plan: PassPlan, *, on_rows=None
) -> ResidualPass:
    """A runner's task: one block's :class:`ResidualPass`, its batches in order.

    ``state`` and ``solution`` are the fit's: residuals are taken at its coefficients, in the
    centered coordinates of its double-double means (exactly as the robust pass takes them)."""
    p = len(spec.features)
    kept = ~np.isnan(solution.coef)
    beta = solution.coef[kept]
    xtx_inv = np.asarray(solution.xtx_inv, dtype=float)
    intercept = spec.fit_intercept
    out = ResidualPass(plan, int(kept.sum()) + int(intercept))
    inverse_n = 1.0 / state.weight_sum if intercept else None
    index_kept = np.r_[np.flatnonzero(kept), p]
    mean = state.mean[index_kept] if intercept else None
    mean_lo = state.mean_lo[index_kept] if intercept else None
    if out.sandwich is None and out.hac is None and out.two_way is None and not plan.compensated:
        return _diagnostics_only(source, spec, batch_size, state, solution, out, on_rows)
    # Scores (centred features and residuals) only for a robust meat; the compensated
    # residuals of the diagnostics and the SSR are taken apart.
    needs_scores = out.sandwich is not None or out.hac is not None or out.two_way is not None

    def compensated(z):
        x = z[:, :p][:, kept]
        return residuals(x, z[:, p], beta, mean=mean, mean_lo=mean_lo, compensated=True)

    for chunk in source.batches(spec.columns, batch_size):
        arrays = batch_arrays(chunk, spec)
        if needs_scores:
            x_centered, resid = centered_residuals(arrays.z, state, kept, beta, p, intercept)
            if not np.isfinite(resid).all():
                arrays = screen_values(arrays, chunk, spec)
                x_centered, resid = centered_residuals(arrays.z, state, kept, beta, p, intercept)
            e = compensated(arrays.z) if plan.compensated else resid
        else:  # compensated residuals for the diagnostics and the SSR, nothing else
            e = compensated(arrays.z)
            if not np.isfinite(e).all():
                arrays = screen_values(arrays, chunk, spec)
                e = compensated(arrays.z)
        weights = arrays.weights
        if out.diagnostics is not None:
            out.diagnostics.update(whiten(e, weights))
        if out.sandwich is not None:
            out.sandwich.update(x_centered, resid, weights, xtx_inv, inverse_n, arrays.groups)
        if out.hac is not None or out.two_way is not None:
            u = scores(x_centered, resid, weights, intercept)
            if out.hac is not None:
                out.hac.update(u)
            else:
                out.two_way.update(u, *arrays.groups)
        out.n_rows += len(e)
        if on_rows is not None:
            on_rows(arrays.rows_read)
    return out


residual_part.task_name = "residuals"  # how the task is named on a Dask dashboard


def _diagnostics_only(source, spec, batch_size, state, solution, out, on_rows) -> ResidualPass:
    """The pass when only the residuals matter (no robust meat): each batch is copied out of
    Arrow already centred on the high part of the means (fused, as the first pass copies it),
    then one matrix-vector product; the low parts of the means enter as one constant,
    ``e = (ỹ − x̃ᵀβ) − (lo_y − lo_xᵀβ)``."""
    p = len(spec.features)
    beta = np.where(np.isnan(solution.coef), 0.0, solution.coef)
    intercept = spec.fit_intercept
    shift = np.asarray(state.mean[: p + 1], dtype=float) if intercept else None
    constant = float(state.mean_lo[p] - state.mean_lo[:p] @ beta) if intercept else 0.0
    for chunk in source.batches(spec.columns, batch_size):
        arrays = batch_arrays(chunk, spec, shift=shift)
        with np.errstate(invalid="ignore", over="ignore"):
            resid = (arrays.z[:, p] - arrays.z[:, :p] @ beta) - constant
        if not np.isfinite(resid).all():
            arrays = screen_values(batch_arrays(chunk, spec, shift=shift), chunk, spec)
            resid = (arrays.z[:, p] - arrays.z[:, :p] @ beta) - constant
        out.diagnostics.update(whiten(resid, arrays.weights))
        out.n_rows += len(resid)
        if on_rows is not None:
            on_rows(arrays.rows_read)
    return out


# ---------------------------------------------------------------------- finishing
@dataclass
class PassResults:
    """What the merged pass gives the model: a robust record, diagnostics, a better SSR."""

    robust: dict | None = None
    diagnostics: dict | None = None
    ssr: float | None = None
    notes: list[str] = field(default_factory=list)


def finish(result: ResidualPass, state, solution, spec, plan: PassPlan) -> PassResults:
    """The robust covariance (in parameter coordinates), the diagnostics and, when the plan
    recomputed it, the SSR of the merged pass."""
    out = PassResults()
    if result.diagnostics is not None:
        out.diagnostics = result.diagnostics.mapping()
        if plan.recompute_ssr:
            out.ssr = float(result.diagnostics.ssr)
            bound = ssr_rounding_bound(state, solution, spec.fit_intercept)
            out.notes.append(
                "the sum of squared residuals was recomputed from the residuals in a second "
                f"pass (the first pass's M_yy − M_xyᵀβ keeps only about {_digits(bound):.0f} "
                "significant digits here: a close fit or nearly collinear features)."
            )
    cov = plan.cov
    if not cov.robust:
        return out
    rank, nobs = solution.rank, state.n_rows
    if result.sandwich is not None:
        if nobs <= rank and cov.cov_type in ("HC1", "cluster"):
            out.robust = _undefined_record(cov, spec, solution)
            out.notes.append(
                f"{cov.cov_type} standard errors need more rows than parameters "
                f"({nobs} rows, {rank} parameters): they are undefined."
            )
            return out
        out.robust = robust_record(result.sandwich, state, solution, spec)
        if out.robust["n_groups"] is not None and out.robust["n_groups"] < rank:
            out.notes.append(_few_clusters(out.robust["n_groups"], rank))
        return out
    kept = ~np.isnan(solution.coef)
    p = len(spec.features)
    xtx_inv = np.asarray(solution.xtx_inv, dtype=float)
    mean = (state.mean + state.mean_lo)[:p][kept] if spec.fit_intercept else None
    if result.hac is not None:
        cov_kept = hac_covariance(result.hac, xtx_inv, state.weight_sum, mean)
        out.robust = {
            **_record(cov, spec, cov_kept, kept, None),
            "maxlags": cov.maxlags,
            "kernel": cov.kernel,
        }
        return out
    cov_kept, df = two_way_covariance(result.two_way, xtx_inv, state.weight_sum, mean)
    g, h, pairs = result.two_way.n_groups
    out.robust = {**_record(cov, spec, cov_kept, kept, df + 1), "n_groups_each": [g, h, pairs]}
    if df + 1 < rank:
        out.notes.append(_few_clusters(df + 1, rank))
    return out


def _digits(relative_error: float) -> float:
    return max(0.0, -math.log10(relative_error)) if relative_error > 0 else 16.0


def _record(cov: CovarianceRequest, spec, cov_kept, kept, n_groups) -> dict:
    intercept = spec.fit_intercept
    size = len(kept) + int(intercept)
    full = np.full((size, size), np.nan)
    index = np.r_[[0] if intercept else [], np.flatnonzero(kept) + int(intercept)].astype(int)
    full[np.ix_(index, index)] = cov_kept
    groups = list(spec.group_columns) if cov.two_way else spec.groups
    return {"cov_type": cov.cov_type, "cov": full.tolist(), "n_groups": n_groups, "groups": groups}


def _undefined_record(cov: CovarianceRequest, spec, solution) -> dict:
    size = len(solution.coef) + int(spec.fit_intercept)
    return {
        "cov_type": cov.cov_type,
        "cov": np.full((size, size), np.nan).tolist(),
        "n_groups": None,
        "groups": spec.groups,
    }


def _few_clusters(groups: int, rank: int) -> str:
    return (
        f"only {groups} clusters for {rank} parameters: the cluster-robust covariance has rank "
        f"at most {groups - 1}, so joint tests of more than {groups - 1} restrictions (the "
        "F statistic among them) use a generalized inverse, as statsmodels does."
    )


# ---------------------------------------------------------------------- the SSR policy
def ssr_rounding_bound(state, solution, fit_intercept: bool) -> float:
    """A bound (up to a small constant) on the relative rounding error of the first pass's SSR.

    ``SSR = β̃ᵀM̃β̃`` over the (centered) moment matrix of ``[x, y]`` with ``β̃ = (−β, 1)``;
    each moment carries a relative error of a few ε, so the SSR's absolute error is about
    ``ε·S`` with ``S = |β̃|ᵀ|M̃||β̃|`` (for a QR factor ``2ε·Σ|β̃ⱼ|‖x̃ⱼ‖/√SSR``: its
    backward error never squares). The exact solver's SSR is exact: 0."""
    if solution.solver == "exact":
        return 0.0
    ratio = _spread_ratio(state, solution, fit_intercept)
    eps = float(np.finfo(float).eps)
    if hasattr(state, "r"):
        return 2.0 * eps * math.sqrt(ratio)
    return eps * ratio


def residual_rounding_bound(state, solution, fit_intercept: bool) -> float:
    """The same bound for ``Σ e²`` over plainly computed residuals: each ``e = ỹ − x̃ᵀβ`` is off
    by about ``ε·(|ỹ| + |x̃|ᵀ|β|)``, so the sum is off by about ``2ε·√(S/SSR)``, relatively."""
    return (
        2.0 * float(np.finfo(float).eps) * math.sqrt(_spread_ratio(state, solution, fit_intercept))
    )


def ssr_plan(state, solution, fit_intercept: bool, *, in_memory: bool = False) -> tuple[bool, bool]:
    """``(recompute, compensated)``: whether the SSR should come from a residual pass, and
    whether that pass takes compensated residuals — always for small data (where they cost
    little and a few rows' rounding errors do not average out), else when plain residuals
    could be off by more than the tolerance that asked for the pass
    (:data:`COMPENSATE_TOLERANCE` for data cheap to read again, else
    :data:`SSR_RELATIVE_TOLERANCE_BIG`)."""
    cheap = in_memory or state.n_rows * len(state.names) <= CHEAP_VALUES
    tolerance = SSR_RELATIVE_TOLERANCE if cheap else SSR_RELATIVE_TOLERANCE_BIG
    if ssr_rounding_bound(state, solution, fit_intercept) <= tolerance:
        return False, False
    small = state.n_rows * len(state.names) <= COMPENSATE_ALWAYS_VALUES
    plain = residual_rounding_bound(state, solution, fit_intercept)
    return True, small or plain > (COMPENSATE_TOLERANCE if cheap else tolerance)


def _spread_ratio(state, solution, fit_intercept: bool) -> float:
    """``S/SSR`` with ``S = |β̃|ᵀ|M̃||β̃|`` (∞ for a perfect fit of non-constant data)."""
    moments = state.comoment if fit_intercept else state.raw_moments()
    kept = np.r_[~np.isnan(solution.coef), True]
    block = np.abs(np.asarray(moments, dtype=float)[np.ix_(kept, kept)])
    weights = np.abs(np.r_[solution.coef[kept[:-1]], 1.0])
    scale = float(weights @ block @ weights)
    if not solution.ssr > 0:
        return math.inf if scale > 0 else 0.0
    return scale / float(solution.ssr)
