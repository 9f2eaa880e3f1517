"""Laws of the mergeable moment state: identity, associativity, commutativity, chunking, plain
form."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from streamreg import ModelFormatError, MomentState
from streamreg.solvers.moments import solve_normal_equations

NAMES = ("a", "b", "y")
finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)


def batches(min_rows=0):
    return arrays(np.float64, st.tuples(st.integers(min_rows, 12), st.just(3)), elements=finite)


def state_of(z, w=None):
    return MomentState.from_arrays(z, w, names=NAMES)


def assert_states_close(s1, s2, rtol=1e-9):
    assert s1.n_rows == s2.n_rows
    assert s1.weight_sum == pytest.approx(s2.weight_sum, rel=1e-12)
    scale = (
        np.abs(s1.mean).max()
        + np.sqrt(np.abs(np.diagonal(s1.comoment)).max() / max(s1.weight_sum, 1))
        + 1
    )
    np.testing.assert_allclose(s1.mean, s2.mean, rtol=0, atol=rtol * scale)
    m_scale = np.abs(s1.comoment).max() + 1e-300
    np.testing.assert_allclose(s1.comoment, s2.comoment, rtol=0, atol=rtol * m_scale + 1e-6)


@settings(max_examples=200, deadline=None)
@given(batches(), batches(), batches())
def test_merge_is_associative(za, zb, zc):
    a, b, c = state_of(za), state_of(zb), state_of(zc)
    assert_states_close((a + b) + c, a + (b + c))


@settings(max_examples=200, deadline=None)
@given(batches(), batches())
def test_merge_is_commutative(za, zb):
    a, b = state_of(za), state_of(zb)
    assert_states_close(a + b, b + a)


@settings(max_examples=100, deadline=None)
@given(batches())
def test_empty_state_is_the_identity(z):
    s = state_of(z)
    empty = MomentState.empty(NAMES)
    assert (s + empty) == s
    assert (empty + s) == s


@settings(max_examples=200, deadline=None)
@given(batches(min_rows=1), st.lists(st.integers(0, 12), max_size=5))
def test_any_chunking_gives_the_same_state(z, cuts):
    whole = state_of(z)
    edges = sorted({0, len(z), *[c for c in cuts if c < len(z)]})
    merged = MomentState.empty(NAMES)
    for lo, hi in zip(edges[:-1], edges[1:]):
        merged = merged + state_of(z[lo:hi])
    assert_states_close(whole, merged)


@settings(max_examples=100, deadline=None)
@given(batches(min_rows=1), st.integers(1, 5))
def test_update_one_row_at_a_time_equals_one_batch(z, step):
    s = MomentState.empty(NAMES)
    for lo in range(0, len(z), step):
        s.update(z[lo : lo + step])
    assert_states_close(s, state_of(z))


def test_state_equals_the_textbook_moments(rng):
    z = rng.normal(size=(500, 3)) * [1, 10, 100] + [5, -3, 1e4]
    w = rng.uniform(0.1, 3, size=500)
    s = state_of(z, w)
    mean = (w[:, None] * z).sum(0) / w.sum()
    centered = z - mean
    np.testing.assert_allclose(s.mean, mean, rtol=1e-13)
    np.testing.assert_allclose(s.comoment, (centered * w[:, None]).T @ centered, rtol=1e-11)
    assert s.weight_sum == pytest.approx(w.sum(), rel=1e-14)
    assert s.n_rows == 500


def test_weights_equal_repeated_rows(rng):
    z = rng.normal(size=(40, 3))
    counts = rng.integers(1, 4, size=40)
    weighted = state_of(z, counts.astype(float))
    repeated = state_of(np.repeat(z, counts, axis=0))
    np.testing.assert_allclose(weighted.mean, repeated.mean, rtol=1e-13)
    np.testing.assert_allclose(weighted.comoment, repeated.comoment, rtol=1e-11)


def test_outlying_first_row_does_not_cost_digits():
    # The shift is taken from the leading rows; a wild first row must trigger recentring.
    z = np.column_stack([np.r_[1e12, np.linspace(-1, 1, 999)], np.ones(1000), np.zeros(1000)])
    s = state_of(z)
    exact_mean = np.mean(z[:, 0], dtype=np.longdouble)
    exact_m = np.sum((z[:, 0].astype(np.longdouble) - exact_mean) ** 2)
    assert abs(s.comoment[0, 0] - float(exact_m)) / float(exact_m) < 1e-12


def test_plain_form_round_trips_bit_for_bit(tmp_path, rng):
    s = state_of(rng.normal(size=(100, 3)) * 1e3 + 7, rng.uniform(size=100))
    path = tmp_path / "state.json"
    s.save(path)
    text = path.read_text()
    assert "pickle" not in text and json.loads(text)["format"] == "streamreg.moment_state"
    assert MomentState.load(path) == s


@pytest.mark.parametrize(
    "mutate, words",
    [
        (lambda d: d.update(format_version=99), "version 99"),
        (lambda d: d.update(format="something"), "not a streamreg moment state"),
        (lambda d: d.update(mean=[1.0]), "'mean' and 'mean_lo' must have 3 entries"),
        (lambda d: d.update(n_rows=-1), "'n_rows' must be a non-negative integer"),
        (lambda d: d.pop("comoment"), "missing"),
    ],
)
def test_loading_a_bad_state_names_the_problem(tmp_path, mutate, words):
    data = state_of(np.ones((2, 3))).to_dict()
    mutate(data)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ModelFormatError, match=words):
        MomentState.load(path)


def test_truncated_state_file_is_refused(tmp_path):
    path = tmp_path / "cut.json"
    path.write_text(json.dumps(state_of(np.ones((2, 3))).to_dict())[:40])
    with pytest.raises(ModelFormatError, match="not a readable state file"):
        MomentState.load(path)


def test_merging_states_over_other_columns_is_refused():
    a = MomentState.empty(("x", "y"))
    b = MomentState.empty(("u", "y"))
    with pytest.raises(ValueError, match="different columns"):
        a + b


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 6), st.integers(0, 2**32 - 1))
def test_solution_does_not_depend_on_chunking(n_chunks, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(60, 2)) * [1, 50] + [3, 1e5]
    y = x @ [2.0, -0.5] + 4 + rng.normal(size=60)
    z = np.column_stack([x, y])
    cuts = (
        np.sort(rng.choice(np.arange(1, 60), size=n_chunks - 1, replace=False))
        if n_chunks > 1
        else []
    )
    merged = MomentState.empty(NAMES)
    for part in np.split(z, cuts):
        merged = merged + state_of(part)
    one = solve_normal_equations(state_of(z))
    many = solve_normal_equations(merged)
    np.testing.assert_allclose(many.coef, one.coef, rtol=1e-10)
    # The intercept μ_y − μ_xᵀβ cancels terms of size |μ_x||β|; judge it on that scale.
    terms = abs(z[:, 2].mean()) + np.abs(x.mean(0) * one.coef).sum()
    assert abs(many.intercept - one.intercept) <= 1e-12 * terms
