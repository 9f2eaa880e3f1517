"""Several targets from one state equal one fit per target (bit for bit with the exact
solver), and an affine map of a state equals the state of the mapped rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import statsmodels.formula.api as smf
from modellang import accumulate_design, assert_close, assert_matches_statsmodels

from streamreg.design.coding import DesignPlan
from streamreg.design.encoding import BatchEncoder
from streamreg.design.formula import parse_formula
from streamreg.design.levels import discover_levels
from streamreg.io.sources import InMemorySource
from streamreg.model import LinearModel
from streamreg.solvers import solve, solve_targets
from streamreg.solvers.exact import ExactState, solve_exact
from streamreg.solvers.moments import MomentState
from streamreg.solvers.qr import QRState
from streamreg.solvers.views import affine, select_columns, select_target


@pytest.fixture
def data(rng):
    n, p, m = 600, 4, 3
    x = rng.normal(size=(n, p)) * [1, 10, 0.1, 1e3] + [0, 5, -2, 1e6]
    y = x @ rng.normal(size=(p, m)) + rng.normal(size=(n, m)) * [1, 0.01, 100]
    names = [f"x{j}" for j in range(p)] + [f"y{k}" for k in range(m)]
    return np.column_stack([x, y]), names, p, m


def _pieces(z, parts=5):
    return np.array_split(np.arange(len(z)), parts)


def _state(kind, z, names, weights=None):
    pieces = _pieces(z)
    parts = [
        kind.from_arrays(z[p], None if weights is None else weights[p], names=names) for p in pieces
    ]
    state = parts[0]
    for part in parts[1:]:
        state = state + part
    return state


@pytest.mark.parametrize("weighted", [False, True])
def test_exact_state_selects_each_target_bit_for_bit(data, rng, weighted):
    z, names, p, m = data
    w = rng.uniform(0.1, 3.0, len(z)) if weighted else None
    shared = _state(ExactState, z, names, w)
    for k in range(m):
        columns = list(range(p)) + [p + k]
        alone = _state(ExactState, z[:, columns], [names[i] for i in columns], w)
        view = select_target(shared, k, n_targets=m)
        assert view == alone
        a, b = solve_exact(view), solve_exact(alone)
        assert np.array_equal(a.coef, b.coef) and a.intercept == b.intercept
        assert a.ssr == b.ssr and np.array_equal(a.xtx_inv, b.xtx_inv)
    solutions = solve_targets(shared, m)
    assert [s.ssr for s in solutions] == [
        solve_exact(select_target(shared, k, n_targets=m)).ssr for k in range(m)
    ]


@pytest.mark.parametrize("kind", [MomentState, QRState])
def test_moment_and_qr_states_select_each_target(data, kind):
    z, names, p, m = data
    shared = _state(kind, z, names)
    for k, solution in enumerate(solve_targets(shared, m)):
        columns = list(range(p)) + [p + k]
        alone = solve(_state(kind, z[:, columns], [names[i] for i in columns]))
        assert_close(solution.coef, alone.coef, 1e-10)
        assert_close(solution.ssr, alone.ssr, 1e-10)
        assert_close(solution.intercept, alone.intercept, 1e-10)
        view = select_target(shared, k, n_targets=m)
        direct = _state(kind, z[:, columns], [names[i] for i in columns])
        assert_close(view.comoment, direct.comoment, 1e-9)


def test_qr_select_keeps_the_residual_norm(data):
    """R of [x, y_k] from R of [x, Y]: the residual of y_k is the length of R_YY[:, k]."""
    z, names, p, m = data
    state = QRState.from_arrays(z, names=names)
    view = select_target(state, 2, n_targets=m)
    centered = z[:, list(range(p)) + [p + 2]] - z[:, list(range(p)) + [p + 2]].mean(axis=0)
    residual = np.linalg.lstsq(centered[:, :p], centered[:, p], rcond=None)[1][0]
    assert_close(view.r[p, p] ** 2, residual, 1e-9)
    assert_close(view.r.T @ view.r, centered.T @ centered, 1e-9)


@pytest.mark.parametrize("kind", [MomentState, QRState, ExactState])
def test_select_columns_any_order(data, kind):
    z, names, p, m = data
    state = _state(kind, z, names)
    view = select_columns(state, [3, 0, 5])
    direct = _state(kind, z[:, [3, 0, 5]], [names[i] for i in (3, 0, 5)])
    assert view.names == direct.names
    assert_close(view.comoment, direct.comoment, 1e-9)
    assert_close(view.mean + view.mean_lo, direct.mean + direct.mean_lo, 1e-14)


@pytest.mark.parametrize("kind", [MomentState, QRState])
def test_affine_map_equals_the_state_of_mapped_rows(data, rng, kind):
    z, names, p, m = data
    matrix = rng.normal(size=(p, 3))
    offset = rng.normal(size=3)
    mapped = np.column_stack([z[:, :p] @ matrix + offset, z[:, p:]])
    new_names = ["a", "b", "c"] + names[p:]
    view = affine(_state(kind, z, names), matrix, offset, new_names, keep_last=m)
    direct = _state(kind, mapped, new_names)
    assert view.names == direct.names
    scale = np.sqrt(np.outer(np.diagonal(direct.comoment), np.diagonal(direct.comoment)))
    assert np.max(np.abs(view.comoment - direct.comoment) / scale) < 1e-9
    assert_close(view.mean + view.mean_lo, direct.mean + direct.mean_lo, 1e-9)


def test_formula_with_two_targets_equals_two_statsmodels_fits(rng):
    n = 500
    frame = pd.DataFrame({"x": rng.normal(size=n), "g": rng.choice(list("abcd"), n).astype(object)})
    frame["y1"] = 2 * frame.x + (frame.g == "b") + rng.normal(size=n)
    frame["y2"] = -frame.x + 3 * (frame.g == "c") + rng.normal(size=n)
    table = pa.Table.from_pandas(frame, preserve_index=False)
    plan = DesignPlan.from_formula(parse_formula("y1 + y2 ~ x * C(g)"), table.schema)
    source = InMemorySource(table)
    design = plan.with_levels(discover_levels(source, plan.categorical_sources).levels)
    state = accumulate_design(source, BatchEncoder(design), batch_size=77).state
    assert state.names[-2:] == ("y1", "y2")
    for k, target in enumerate(("y1", "y2")):
        model = LinearModel.from_state(select_target(state, k, n_targets=2))
        assert_matches_statsmodels(model, smf.ols(f"{target} ~ x * C(g)", frame).fit())
