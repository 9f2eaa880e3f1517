"""One absorbed fixed effect: slopes and standard errors equal pyfixest.feols (1e-8), the
per-group state merges like any state, and its group shifts keep digits a global shift loses."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from modellang import assert_close, assert_p_close

from streamreg.design.coding import DesignPlan, check_absorb
from streamreg.design.encoding import BatchEncoder
from streamreg.design.formula import parse_formula
from streamreg.design.levels import discover_levels
from streamreg.errors import InputError
from streamreg.io.sources import InMemorySource
from streamreg.solvers.absorb import AbsorbState, solve_within
from streamreg.solvers.clusters import ClusterScores

pf = pytest.importorskip("pyfixest")


@pytest.fixture(scope="module")
def panel():
    rng = np.random.default_rng(11)
    n = 4000
    firm = rng.integers(0, 500, n)
    frame = pd.DataFrame(
        {
            "firm": firm,
            "region": firm // 25,
            "ind": rng.integers(0, 9, n),
            "x1": rng.normal(size=n) + 0.02 * firm,
            "x2": 3.0 * rng.normal(size=n) + 1e6,
            "g": rng.choice(list("abc"), n).astype(object),
            "w": rng.uniform(0.5, 2.0, n),
        }
    )
    frame["y"] = (
        1.5 * frame.x1
        - 0.3 * frame.x2
        + 5 * np.sin(firm)
        + (frame.g == "b") * 0.7
        + rng.normal(size=n)
    )
    return frame


def _fit(frame, columns, *, weights=None, cluster=None, drop_singletons=True, parts=7):
    z = frame[columns].to_numpy()
    firm = frame.firm.to_numpy()
    w = None if weights is None else frame[weights].to_numpy()
    pieces = np.array_split(np.arange(len(frame)), parts)
    states = [
        AbsorbState.from_arrays(z[p], firm[p], None if w is None else w[p], names=columns)
        for p in pieces
    ]
    state = states[0]
    for other in states[1:]:
        state = state + other
    fit = solve_within(state, drop_singletons=drop_singletons)
    if cluster is None:
        return fit
    scores = ClusterScores(state, fit, drop_singletons=drop_singletons)
    for p in pieces:
        clusters = None if cluster == "firm" else frame[cluster].to_numpy()[p]
        scores.update(z[p], firm[p], clusters, None if w is None else w[p])
    return scores.finish()


CASES = [
    ("singleton", "iid", None),
    ("none", "iid", None),
    ("singleton", "firm", None),
    ("singleton", "region", None),  # the fixed effect is nested in the clusters
    ("singleton", "ind", None),  # ... and here it is not
    ("none", "firm", "w"),
    ("singleton", "iid", "w"),
]


@pytest.mark.parametrize(("fixef_rm", "cluster", "weights"), CASES)
def test_within_fit_equals_pyfixest(panel, fixef_rm, cluster, weights):
    vcov = "iid" if cluster == "iid" else {"CRV1": cluster}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = pf.feols("y ~ x1 + x2 | firm", panel, vcov=vcov, fixef_rm=fixef_rm, weights=weights)
    fit = _fit(
        panel,
        ["x1", "x2", "y"],
        weights=weights,
        cluster=None if cluster == "iid" else cluster,
        drop_singletons=fixef_rm == "singleton",
    )
    assert fit.nobs == ref._N
    assert_close(fit.coef, ref.coef().to_numpy(), what="coef")
    assert_close(fit.bse, ref.se().to_numpy(), what="se")
    assert_close(fit.tvalues, ref.tstat().to_numpy(), what="t")
    assert_p_close(fit.pvalues, ref.pvalue().to_numpy())
    assert fit.df_resid == ref._df_t


def test_formula_with_categories_and_an_absorbed_factor(panel):
    """'y ~ x1 + x2 + C(g) | firm': the encoder's dense rows feed the within state."""
    frame = panel.astype({"firm": float})
    frame.loc[[3, 10], "firm"] = np.nan  # rows without a group are dropped, as pyfixest does
    table = pa.Table.from_pandas(frame, preserve_index=False)
    plan = DesignPlan.from_formula(parse_formula("y ~ x1 + x2 + C(g) | firm"), table.schema)
    assert plan.intercept is False and plan.absorb == ("firm",)
    source = InMemorySource(table)
    design = plan.with_levels(discover_levels(source, plan.categorical_sources).levels)
    assert design.column_names == ("C(g)[T.b]", "C(g)[T.c]", "x1", "x2")
    encoder = BatchEncoder(design)
    state = AbsorbState(encoder.state_names)
    dropped = 0
    for chunk in source.batches(encoder.columns_read, 613):
        prepared = encoder.prepare(chunk)
        dropped += sum(prepared.dropped.values())
        state.update(encoder.dense(prepared), encoder.absorbed(chunk, prepared))
    assert dropped == 2
    fit = solve_within(state)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = pf.feols("y ~ x1 + x2 + C(g) | firm", frame)
    # pyfixest keeps the written order; streamreg puts categories first, as patsy does.
    assert_close(fit.coef, ref.coef()[list(design.column_names)].to_numpy())
    assert_close(fit.bse, ref.se()[list(design.column_names)].to_numpy())


def test_merge_is_chunking_invariant_and_empty_is_identity(panel, rng):
    columns = ["x1", "x2", "y"]
    z, firm = panel[columns].to_numpy(), panel.firm.to_numpy()
    whole = AbsorbState.from_arrays(z, firm, names=columns)
    order = rng.permutation(len(panel))
    pieces = [
        AbsorbState.from_arrays(z[p], firm[p], names=columns) for p in np.array_split(order, 5)
    ]
    left = pieces[0] + (pieces[1] + (pieces[2] + (pieces[3] + pieces[4])))
    right = (((pieces[4] + pieces[3]) + pieces[2]) + pieces[1]) + pieces[0]
    empty = AbsorbState(columns)
    for merged in (left, right, empty + whole, whole + empty):
        scale = np.sqrt(np.outer(np.diagonal(whole.within), np.diagonal(whole.within)))
        assert np.max(np.abs(merged.within - whole.within) / scale) < 1e-12
        assert merged.n_rows == whole.n_rows and merged.n_groups == whole.n_groups
        means = merged.shift + merged.group_offsets()
        index = merged.index.lookup(whole.index.keys)
        assert_close(means[index], whole.shift + whole.group_offsets(), 1e-12)
    # the two orders put different first rows as the shifts of a group
    assert not np.array_equal(right.shift[right.index.lookup(left.index.keys)], left.shift)


def test_group_shifts_keep_digits_that_a_global_shift_cancels(rng):
    """Two groups around 1e9 and -1e9 whose rows vary by ~1: the within co-moment is exact
    when each group is shifted by one of its own values."""
    n = 2000
    group = rng.integers(0, 2, n)
    base = np.where(group == 0, 1e9, -1e9)
    x = base + rng.integers(-50, 50, n).astype(float)
    y = 2 * (x - base) + rng.integers(-10, 10, n).astype(float)
    state = AbsorbState.from_arrays(np.column_stack([x, y]), group, names=["x", "y"])
    exact = np.zeros((2, 2))
    for g in (0, 1):
        rows = np.column_stack([x[group == g], y[group == g]]) - [base[group == g][0], 0]
        centered = rows - rows.mean(axis=0)  # small integers: exact in float64 up to the mean
        exact += centered.T @ centered
    assert_close(state.within, exact, 1e-12)
    # about the global mean the between-group part is 1e15 times the within part: subtracting
    # it would leave about one digit of the within co-moment
    pooled = np.cov(np.column_stack([x, y]).T, bias=True)[0, 0] * n
    assert pooled / exact[0, 0] > 1e14


def test_several_absorbed_factors_are_refused_in_words(panel):
    with pytest.raises(InputError, match="alternating projections.*C\\(year\\)"):
        check_absorb(("firm", "year"))
    schema = pa.Schema.from_pandas(panel, preserve_index=False)
    with pytest.raises(InputError, match="absorbing 2 factors"):
        DesignPlan.from_formula(parse_formula("y ~ x1 | firm + region"), schema)


def test_second_pass_refuses_a_group_the_first_did_not_see(panel):
    columns = ["x1", "x2", "y"]
    z, firm = panel[columns].to_numpy(), panel.firm.to_numpy()
    state = AbsorbState.from_arrays(z[firm != 3], firm[firm != 3], names=columns)
    scores = ClusterScores(state, solve_within(state))
    with pytest.raises(InputError, match="did not see"):
        scores.update(z, firm)
