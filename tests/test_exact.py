"""The exact state and solver: NIST at the float64 ceiling, bit-identical merges, exact
rationals."""

from __future__ import annotations

import json
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from oracles import nist
from oracles.rational import exact_lstsq

import streamreg.solvers.exact.lattice as exact_lattice
import streamreg.solvers.exact.products as exact_products
import streamreg.solvers.exact.slicing as exact_slicing
import streamreg.solvers.exact.solve as exact_solve
from streamreg import CollinearityError, InputError, ModelFormatError
from streamreg.solvers.exact import ExactState, solve_exact

NAMES = ("a", "b", "y")

# ---------------------------------------------------------------- NIST StRD
# Min LRE measured with batches of 7 rows (params, param SDs, residual SD, R²):
#   Norris   14.1 13.9 14.0 15.0   Pontius  13.5 13.8 13.8 15.0   NoInt1   14.7 15.0 15.0 15.0
#   NoInt2   15.0 14.9 15.0 15.0   Filip     7.6  7.6  9.6 11.8   Longley  14.6 14.9 15.0 15.0
#   Wampler1 15.0 15.0 15.0 15.0   Wampler2 13.2 15.0 15.0 15.0   Wampler3 15.0 12.2 14.8 15.0
#   Wampler4 15.0 12.2 14.8 15.0   Wampler5 15.0 12.2 14.8 13.7
# Parameters sit at the float64 ceiling. The 12.2 of Wampler3–5 is the intercept's SD only
# (slopes ≥ 14.5): it is rebuilt as σ²(1/n + μᵀ(X̃ᵀX̃)⁻¹μ) from the rounded inverse, a sum
# that cancels ~3 digits at cond ≈ 3e6 — the same formula the model's inference uses.
INTERCEPT_SD_FLOOR = {"Wampler3": 12.0, "Wampler4": 12.0, "Wampler5": 12.0}


def stream_nist(case, rows=7) -> ExactState:
    z = np.column_stack([case.x, case.y])
    state = ExactState.empty([*case.feature_names, "y"])
    for start in range(0, len(z), rows):
        assert state.update(z[start : start + rows]) is state
    return state


def nist_statistics(case, state, sol):
    n = state.n_rows
    sigma2 = sol.ssr / (n - sol.rank)
    sd = np.sqrt(sigma2 * np.diag(sol.xtx_inv))
    if case.fit_intercept:
        mean_x = state.mean[:-1]
        sd_intercept = np.sqrt(sigma2 * (1.0 / n + mean_x @ sol.xtx_inv @ mean_x))
        return (
            np.r_[sol.intercept, sol.coef],
            sd_intercept,
            sd,
            np.sqrt(sigma2),
            1.0 - sol.ssr / sol.tss,
        )
    return sol.coef, None, sd, np.sqrt(sigma2), 1.0 - sol.ssr / sol.tss


@pytest.mark.parametrize("name", nist.NAMES)
def test_nist_reaches_the_float64_ceiling(name):
    case = nist.load(name)
    state = stream_nist(case)
    sol = solve_exact(state, fit_intercept=case.fit_intercept)
    params, sd_intercept, sd, residual_sd, r2 = nist_statistics(case, state, sol)
    ceiling = nist.CEILING[name]
    digits = min(13.0, ceiling - 0.3)  # "≥ 13 where the ceiling allows"
    scores = {
        "params": nist.lre(params, case.params),
        "slope SD": nist.lre(sd, case.param_sd[1:] if case.fit_intercept else case.param_sd),
        "residual SD": nist.lre(residual_sd, case.residual_sd),
        "R²": nist.lre(r2, case.r_squared),
    }
    if case.fit_intercept:
        scores["intercept SD"] = nist.lre(sd_intercept, case.param_sd[0])
    print(name, {k: round(v, 1) for k, v in scores.items()})
    assert scores["params"] >= ceiling - 0.3, scores
    for key in ("slope SD", "residual SD", "R²"):
        assert scores[key] >= digits, (key, scores)
    if case.fit_intercept:
        assert scores["intercept SD"] >= INTERCEPT_SD_FLOOR.get(name, digits), scores
    assert sol.solver == "exact" and sol.aliased == []


def test_nist_state_does_not_depend_on_the_batch_size():
    case = nist.load("Filip")
    states = [stream_nist(case, rows) for rows in (1, 7, 82)]
    assert states[0] == states[1] == states[2]
    coefs = [solve_exact(s).coef for s in states]
    assert np.array_equal(coefs[0], coefs[1]) and np.array_equal(coefs[1], coefs[2])


# ---------------------------------------------------------------- bit-identical merges
mixed = st.one_of(
    st.floats(min_value=-1e6, max_value=1e6, allow_nan=False),
    st.floats(allow_nan=False, allow_infinity=False),  # the whole float64 range, subnormals too
    st.integers(-3, 3).map(float),
)


@st.composite
def batches(draw, min_rows=1, max_rows=12):
    n = draw(st.integers(min_rows, max_rows))
    z = draw(arrays(np.float64, (n, 3), elements=mixed))
    weights = draw(
        st.one_of(
            st.none(),
            arrays(
                np.float64,
                n,
                elements=st.one_of(
                    st.floats(min_value=0.0, max_value=1e300),
                    st.floats(min_value=0.0, max_value=4.0),
                ),
            ),
        )
    )
    return z, weights


def state_of(z, w=None):
    return ExactState.from_arrays(z, w, names=NAMES)


def merge_tree(z, w, cuts):
    """Split the rows at ``cuts`` (a preorder list of split fractions) and merge recursively."""
    if len(z) <= 1 or not cuts:
        return state_of(z, w)
    at = max(1, min(len(z) - 1, int(cuts[0] * len(z))))
    left = merge_tree(z[:at], None if w is None else w[:at], cuts[1::2])
    right = merge_tree(z[at:], None if w is None else w[at:], cuts[2::2])
    return right + left if cuts[0] > 0.5 else left + right


def solve_or_error(state):
    try:
        sol = solve_exact(state, drop_collinear=True)
    except InputError as exc:
        return str(exc)
    return np.r_[sol.intercept, sol.coef, sol.ssr].tobytes()


@settings(max_examples=150, deadline=None)
@given(batches(), st.lists(st.floats(0.05, 0.95), max_size=6), st.randoms(use_true_random=False))
def test_any_chunking_order_or_merge_tree_gives_a_bit_identical_state(batch, cuts, random):
    z, w = batch
    whole = state_of(z, w)
    order = list(range(len(z)))
    random.shuffle(order)
    shuffled = state_of(z[order], None if w is None else w[order])
    tree = merge_tree(z, w, cuts)
    one_by_one = ExactState.empty(NAMES)
    for i in reversed(order):
        one_by_one.update(z[i : i + 1], None if w is None else w[i : i + 1])
    assert whole == shuffled == tree == one_by_one
    assert json.dumps(whole.to_dict()) == json.dumps(tree.to_dict())
    assert solve_or_error(whole) == solve_or_error(tree) == solve_or_error(shuffled)


@settings(max_examples=100, deadline=None)
@given(batches(max_rows=8))
def test_state_holds_the_exact_sums(batch):
    z, w = batch
    state = state_of(z, w)
    ws = [Fraction(1)] * len(z) if w is None else [Fraction(v) for v in w]
    columns = [[Fraction(v) for v in z[:, j]] for j in range(3)]
    weight_sum, sums, products = state.exact_moments()
    assert weight_sum == sum(ws)
    for i in range(3):
        assert sums[i] == sum(a * b for a, b in zip(ws, columns[i]))
        for j in range(3):
            assert products[i][j] == sum(a * b * c for a, b, c in zip(ws, columns[i], columns[j]))


@pytest.mark.parametrize("weighted", [False, True])
def test_sub_batches_and_sparse_tails_are_exact(monkeypatch, rng, weighted):
    # Small sub-batches, frequent flushes and sparse tails on every sub-batch: the paths a
    # big batch takes, at a size that exact fractions can check.
    monkeypatch.setattr(exact_products, "_rows_per_product", lambda columns: 16)
    monkeypatch.setattr(exact_slicing, "_TAIL_MIN_WORK", 0)
    monkeypatch.setattr(exact_lattice.LatticeSums, "_FLUSH_EVERY", 3)
    z = rng.normal(size=(300, 3)) * [1.0, 1e3, 1e-3]
    z[rng.random(z.shape) < 0.03] *= 1e-250  # a few values far below their column's top
    z[:, 0] = np.round(z[:, 0] * 8)  # small integers: one slice
    w = rng.uniform(0.1, 3.0, size=300) if weighted else None
    state = state_of(z, w)
    ws = [Fraction(1)] * 300 if w is None else [Fraction(v) for v in w]
    columns = [[Fraction(v) for v in z[:, j]] for j in range(3)]
    weight_sum, sums, products = state.exact_moments()
    assert weight_sum == sum(ws)
    assert sums == [sum(a * b for a, b in zip(ws, c)) for c in columns]
    assert products[1][2] == sum(a * b * c for a, b, c in zip(ws, columns[1], columns[2]))
    assert products[2][2] == sum(a * c * c for a, c in zip(ws, columns[2]))
    monkeypatch.undo()
    assert state_of(z, w) == state


def test_sub_batches_that_need_fewer_or_more_slices_than_the_last_are_exact(monkeypatch, rng):
    # A sub-batch cuts as many slices as the one before it without checking for finished
    # columns (split_scaled's `unchecked`): here later sub-batches of a column need fewer
    # slices (small integers, zeros) or more (values far below the column's top) than the
    # earlier ones, and every sum must still be exact.
    monkeypatch.setattr(exact_products, "_rows_per_product", lambda columns: 16)
    monkeypatch.setattr(exact_lattice.LatticeSums, "_FLUSH_EVERY", 5)
    z = rng.normal(size=(160, 3)) * [1.0, 1e3, 1e-3]
    z[48:96, 0] = np.round(z[48:96, 0] * 8)  # rows 48…95: one slice for column 0
    z[64:80, 1] = 0.0  # a sub-batch of zeros
    z[112:128, 2] *= 1e-9  # 30 bits further down: more slices than the sub-batches before
    z[140, 1] *= 1e-200  # one value far below its column's top
    state = state_of(z)
    columns = [[Fraction(v) for v in z[:, j]] for j in range(3)]
    weight_sum, sums, products = state.exact_moments()
    assert weight_sum == 160
    assert sums == [sum(c) for c in columns]
    for i in range(3):
        for j in range(3):
            assert products[i][j] == sum(a * b for a, b in zip(columns[i], columns[j]))
    monkeypatch.undo()
    assert state_of(z) == state


# ---------------------------------------------------------------- exact rationals
def mixed_problem(rng, n=12):
    x = np.column_stack(
        [
            1e9 + rng.uniform(0, 1, size=n),  # a timestamp-like offset
            rng.normal(size=n)
            * 10.0 ** rng.integers(-200, 201, size=n),  # 1e-200 … 1e200 in one column
            rng.normal(size=n) * 1e-3 + 5.0,
        ]
    )
    y = 3.0 + (x[:, 0] - 1e9) * 2.0 - x[:, 2] + rng.normal(size=n) * 1e-2
    return x, y, rng.uniform(0.2, 5.0, size=n)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_coefficients_are_the_exact_solution_rounded_once(seed, weighted, fit_intercept):
    x, y, w = mixed_problem(np.random.default_rng(seed))
    w = w if weighted else None
    z = np.column_stack([x, y])
    state = ExactState.empty(NAMES[:2] + ("c", "y"))
    for start in range(0, len(z), 5):
        state.update(z[start : start + 5], None if w is None else w[start : start + 5])
    sol = solve_exact(state, fit_intercept=fit_intercept)
    b0, beta = exact_lstsq(x, y, w, fit_intercept=fit_intercept)
    # Correct rounding of the exact rational solution: relative error ≤ 2^-53.
    assert list(sol.coef) == [float(b) for b in beta]
    assert sol.intercept == float(b0)


def test_ssr_tss_and_inverse_are_exact_rationals_rounded_once(rng):
    x, y, w = mixed_problem(rng, n=10)
    x = x[:, [0, 2]]
    state = ExactState.from_arrays(np.column_stack([x, y]), w, names=["a", "c", "y"])
    sol = solve_exact(state)
    ws = [Fraction(v) for v in w]
    cols = [[Fraction(v) for v in col] for col in (*x.T, y)]
    total = sum(ws)
    means = [sum(a * b for a, b in zip(ws, c)) / total for c in cols]
    m = [
        [
            sum(a * (u - means[i]) * (v - means[j]) for a, u, v in zip(ws, cols[i], cols[j]))
            for j in range(3)
        ]
        for i in range(3)
    ]
    det = m[0][0] * m[1][1] - m[0][1] * m[1][0]
    inverse = [[m[1][1] / det, -m[0][1] / det], [-m[1][0] / det, m[0][0] / det]]
    beta = [
        inverse[0][0] * m[0][2] + inverse[0][1] * m[1][2],
        inverse[1][0] * m[0][2] + inverse[1][1] * m[1][2],
    ]
    ssr = m[2][2] - beta[0] * m[0][2] - beta[1] * m[1][2]
    assert sol.ssr == float(ssr) and sol.tss == float(m[2][2])
    assert sol.xtx_inv.tolist() == [[float(v) for v in row] for row in inverse]
    assert list(state.mean) == [float(v) for v in means]
    assert sol.rank == 3 and sol.condition_number >= 1.0


def test_refinement_path_matches_exact_elimination_bit_for_bit(monkeypatch, rng):
    p, n = 24, 400
    x = rng.normal(size=(n, p)) * rng.uniform(0.5, 20, size=p) + rng.uniform(-1e4, 1e4, size=p)
    x[:, 7] = x[:, 3] + 1e-4 * rng.normal(size=n)  # condition number ~1e10
    y = 7.5 + x @ rng.uniform(1, 3, size=p) + rng.normal(scale=2.0, size=n)
    state = ExactState.from_arrays(
        np.column_stack([x, y]),
        rng.uniform(0.5, 2, size=n),
        names=[f"x{j}" for j in range(p)] + ["y"],
    )
    calls = []
    refine = exact_solve._refined_fit
    monkeypatch.setattr(exact_solve, "_refined_fit", lambda *a: calls.append(1) or refine(*a))
    monkeypatch.setattr(exact_solve, "BAREISS_MAX_FEATURES", 4)
    refined = solve_exact(state)
    monkeypatch.setattr(exact_solve, "BAREISS_MAX_FEATURES", 100)
    eliminated = solve_exact(state)
    assert calls == [1]  # refinement ran, and converged
    assert (
        np.array_equal(refined.coef, eliminated.coef) and refined.intercept == eliminated.intercept
    )
    assert refined.ssr == eliminated.ssr
    np.testing.assert_allclose(refined.xtx_inv, eliminated.xtx_inv, rtol=2.0**-52, atol=0)


# ---------------------------------------------------------------- collinearity
def collinear_data(rng, n=40):
    a = np.round(rng.normal(size=n) * 1e3) / 64  # few significant bits: 2a − b is exact
    b = np.round(rng.normal(size=n) * 1e3) / 64 + 1e6
    y = a - 0.5 * b + rng.normal(size=n)
    return a, b, y


@pytest.mark.parametrize("elimination", ["bareiss", "modular"])
def test_an_exact_linear_combination_is_aliased_and_named(monkeypatch, rng, elimination):
    if elimination == "modular":
        monkeypatch.setattr(exact_solve, "BAREISS_MAX_FEATURES", 1)
    a, b, y = collinear_data(rng)
    c = 2 * a - b + 7.0
    assert all(Fraction(ci) == 2 * Fraction(ai) - Fraction(bi) + 7 for ai, bi, ci in zip(a, b, c))
    state = ExactState.from_arrays(np.column_stack([a, b, c, y]), names=["a", "b", "c", "y"])
    with pytest.raises(
        CollinearityError, match="column 'c' is a linear combination of .*the intercept.*'a'.*'b'"
    ):
        solve_exact(state)
    sol = solve_exact(state, drop_collinear=True)
    assert sol.aliased == ["c"] and np.isnan(sol.coef[2]) and sol.rank == 3
    assert sol.xtx_inv.shape == (2, 2) and any("collinear" in w for w in sol.warnings)
    reference = solve_exact(
        ExactState.from_arrays(np.column_stack([a, b, y]), names=["a", "b", "y"])
    )
    assert np.array_equal(sol.coef[:2], reference.coef) and sol.intercept == reference.intercept


def test_a_combination_rounded_in_float64_is_aliased(rng):
    # 2a − 0.5b + 3 computed in float64 is not an exact combination (1 − R² ≈ 1e-32),
    # but no data can tell it from one: like R's lm, it is aliased.
    a = rng.normal(size=40) * 3.7
    b = rng.normal(size=40) * 11.3 + 5
    y = a - b + rng.normal(size=40)
    c = 2 * a - 0.5 * b + 3.1
    assert any(
        Fraction(ci) != 2 * Fraction(ai) - Fraction(bi) / 2 + Fraction(3.1)
        for ai, bi, ci in zip(a, b, c)
    )
    state = ExactState.from_arrays(np.column_stack([a, b, c, y]), names=["a", "b", "c", "y"])
    with pytest.raises(CollinearityError, match="up to the rounding of float64 data"):
        solve_exact(state)
    assert solve_exact(state, drop_collinear=True).aliased == ["c"]


@pytest.mark.parametrize("elimination", ["bareiss", "modular"])
def test_a_nearly_collinear_column_is_not_aliased(monkeypatch, rng, elimination):
    if elimination == "modular":
        monkeypatch.setattr(exact_solve, "BAREISS_MAX_FEATURES", 1)
    a, b, y = collinear_data(rng)
    c = 2 * a - b
    c[3] += 2.0**-20  # one row off by 1e-6 (relative 1e-12)
    sol = solve_exact(
        ExactState.from_arrays(np.column_stack([a, b, c, y]), names=["a", "b", "c", "y"])
    )
    assert sol.aliased == [] and np.isfinite(sol.coef).all() and sol.rank == 4
    assert sol.condition_number > 1e10


def test_constant_and_zero_columns_are_named():
    z = np.column_stack([np.arange(6.0), np.full(6, 3.0), np.arange(6.0) ** 2])
    state = ExactState.from_arrays(z, names=["x", "k", "y"])
    with pytest.raises(CollinearityError, match="column 'k' is constant"):
        solve_exact(state)
    zero = ExactState.from_arrays(z * [1, 0, 1], names=["x", "k", "y"])
    with pytest.raises(CollinearityError, match="column 'k' is all zeros"):
        solve_exact(zero, fit_intercept=False)


def test_too_few_rows_are_refused_like_the_other_solvers():
    state = ExactState.from_arrays(np.ones((2, 3)), names=NAMES)
    with pytest.raises(InputError, match="only 2 usable rows for 3 coefficients"):
        solve_exact(state)
    with pytest.raises(InputError, match="no usable rows"):
        solve_exact(ExactState.empty(NAMES))


# ---------------------------------------------------------------- plain form
def test_plain_form_round_trips_exactly(tmp_path, rng):
    z = rng.normal(size=(50, 3)) * [1e-300, 1.0, 1e300]
    state = state_of(z, rng.uniform(size=50))
    path = tmp_path / "state.json"
    state.save(path)
    text = path.read_text()
    data = json.loads(text)
    assert data["format"] == "streamreg.exact_state" and "pickle" not in text
    assert all(isinstance(v, str) for v in data["sums"])
    loaded = ExactState.load(path)
    assert loaded == state and loaded.to_dict() == data
    assert np.array_equal(solve_exact(loaded).coef, solve_exact(state).coef)


@pytest.mark.parametrize(
    "mutate, words",
    [
        (lambda d: d.update(format_version=2), "version 2"),
        (lambda d: d.update(format="streamreg.moment_state"), "not a streamreg exact state"),
        (lambda d: d.update(names="abc"), "'names' must be a non-empty list"),
        (lambda d: d.update(n_rows=-1), "'n_rows' must be a non-negative integer"),
        (lambda d: d.update(n_rows=True), "'n_rows' must be a non-negative integer"),
        (lambda d: d.pop("products"), "'products' is missing"),
        (lambda d: d.update(sums=["0x1"]), "'sums' must have 3 entries"),
        (lambda d: d["products"].pop(), "'products' 3 rows"),
        (lambda d: d["sums"].__setitem__(0, 1.5), "integers written as strings"),
        (lambda d: d["products"][0].__setitem__(0, "0xZZ"), "integers written as strings"),
        (lambda d: d.update(weight_sum=7), "'weight_sum' must be an integer written as a string"),
        (lambda d: d.update(sums_exponent=0.5), "'\\*_exponent' fields must be integers"),
        (lambda d: d.update(weight_sum="-0x3"), "negative"),
    ],
)
def test_loading_a_bad_state_names_the_problem(tmp_path, mutate, words):
    data = state_of(np.arange(6.0).reshape(2, 3)).to_dict()
    mutate(data)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ModelFormatError, match=words):
        ExactState.load(path)


def test_unreadable_state_files_are_refused(tmp_path):
    path = tmp_path / "cut.json"
    path.write_text(json.dumps(state_of(np.ones((2, 3))).to_dict())[:50])
    with pytest.raises(ModelFormatError, match="not a readable state file"):
        ExactState.load(path)
    with pytest.raises(ModelFormatError, match="does not exist"):
        ExactState.load(tmp_path / "missing.json")


# ---------------------------------------------------------------- non-finite batches
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("where", ["value", "weight"])
def test_a_non_finite_batch_gives_a_non_finite_state(bad, where):
    z = np.asfortranarray(np.arange(12.0).reshape(4, 3))
    w = np.ones(4)
    if where == "value":
        z[2, 1] = bad
    else:
        w[1] = bad
    before = z.copy()
    state = ExactState.from_arrays(z, w, names=NAMES, overwrite=True)
    assert not state.is_finite() and state.n_rows == 4
    np.testing.assert_array_equal(z, before)  # NaN/inf positions (and all else) untouched
    assert np.isnan(state.mean).all() and np.isnan(state.weight_sum)
    merged = state_of(np.ones((2, 3))) + state
    assert not merged.is_finite() and merged.n_rows == 6
    with pytest.raises(InputError, match="NaN or ±inf"):
        solve_exact(merged)
    with pytest.raises(InputError, match="cannot save"):
        merged.to_dict()


def test_batches_and_merges_are_checked():
    with pytest.raises(InputError, match=r"expected \(rows, 3\)"):
        ExactState.from_arrays(np.ones((4, 2)), names=NAMES)
    with pytest.raises(InputError, match="weights must be zero or positive; got -1"):
        ExactState.from_arrays(np.ones((2, 3)), np.array([1.0, -1.0]), names=NAMES)
    with pytest.raises(InputError, match="different columns"):
        ExactState.empty(("x", "y")) + ExactState.empty(("u", "y"))
    empty = ExactState.empty(NAMES)
    s = state_of(np.arange(9.0).reshape(3, 3))
    assert s + empty == s == empty + s and state_of(np.empty((0, 3))) == empty
