"""A conformance suite every streamreg state passes (river's ``checks``, scikit-learn's
``check_estimator``).

Each check takes a state class and some seeded data and asserts one law of the state contract
(:mod:`streamreg.solvers.base`): merge is associative and commutative (bit for bit when the
state is exact, up to rounding otherwise), the empty state is the identity, any chunking of the
rows gives the same state, ``update`` equals a merge, the plain JSON form round-trips exactly,
and states of another kind or over other columns are refused. A new state class is added to
``STATES`` in ``tests/test_state_conformance.py`` and must pass them all.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from streamreg import InputError, ModelFormatError
from streamreg.solvers import solve

NAMES = ("a", "b", "c", "y")


def data(seed: int, n: int = 60, weighted: bool = False):
    """Rows with offsets and mixed scales (the cases that break naive sums), optionally weighted."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3)) * [1.0, 1e3, 1e-2] + [0.0, 1e6, -3.0]
    y = x @ [1.5, -2e-3, 40.0] + rng.normal(size=n)
    w = rng.uniform(0.2, 3.0, size=n) if weighted else None
    return np.column_stack([x, y]), w


def is_exact(kind) -> bool:
    return kind.__name__ == "ExactState"


def assert_same(kind, s1, s2, rtol=1e-10):
    """Equal bit for bit for an exact state; equal up to rounding (scaled to the data) otherwise."""
    if is_exact(kind):
        assert s1 == s2
        return
    assert s1.n_rows == s2.n_rows
    assert s1.weight_sum == pytest.approx(s2.weight_sum, rel=1e-13)
    m1, m2 = s1.mean + s1.mean_lo, s2.mean + s2.mean_lo
    spread = np.sqrt(np.abs(np.diagonal(s1.comoment)) / max(s1.weight_sum, 1.0))
    np.testing.assert_allclose(m1, m2, rtol=0, atol=rtol * (np.abs(m1) + spread + 1e-300).max())
    scale = np.sqrt(np.outer(np.diagonal(s1.comoment), np.diagonal(s1.comoment))) + 1e-300
    np.testing.assert_array_less(np.abs(s1.comoment - s2.comoment), rtol * scale + 1e-300)


def state(kind, z, w=None):
    return kind.from_arrays(z, w, names=NAMES)


def pieces(kind, z, w, cuts):
    edges = [0, *cuts, len(z)]
    return [
        state(kind, z[a:b], None if w is None else w[a:b]) for a, b in zip(edges[:-1], edges[1:])
    ]


# ---------------------------------------------------------------------- the laws
def check_merge_is_associative(kind, seed, weighted):
    z, w = data(seed, weighted=weighted)
    a, b, c = pieces(kind, z, w, [17, 41])
    assert_same(kind, (a + b) + c, a + (b + c))


def check_merge_is_commutative(kind, seed, weighted):
    z, w = data(seed, weighted=weighted)
    a, b = pieces(kind, z, w, [23])
    assert_same(kind, a + b, b + a)


def check_empty_is_the_identity(kind, seed, weighted):
    z, w = data(seed, weighted=weighted)
    s = state(kind, z, w)
    empty = kind.empty(NAMES)
    assert empty.n_rows == 0 and empty.weight_sum == 0
    assert (s + empty) == s
    assert (empty + s) == s


def check_any_chunking_gives_the_same_state(kind, seed, weighted):
    z, w = data(seed, weighted=weighted)
    whole = state(kind, z, w)
    rng = np.random.default_rng(seed + 1)
    for _ in range(3):
        cuts = sorted(
            rng.choice(np.arange(1, len(z)), size=rng.integers(1, 8), replace=False).tolist()
        )
        parts = pieces(kind, z, w, cuts)
        merged = parts[0]
        for part in parts[1:]:
            merged = merged + part
        assert_same(kind, merged, whole)
        # ... and the fit does not move either
        got = solve(merged).coef
        want = solve(whole).coef
        np.testing.assert_allclose(got, want, rtol=1e-9)


def check_update_equals_merge(kind, seed, weighted):
    z, w = data(seed, weighted=weighted)
    grown = kind.empty(NAMES)
    for start in range(0, len(z), 13):
        rows = slice(start, start + 13)
        result = grown.update(z[rows], None if w is None else w[rows])
        assert result is grown  # update works in place and returns the state
    assert_same(kind, grown, state(kind, z, w))


def check_in_place_merge_leaves_the_other_state_alone(kind, seed, weighted):
    z, w = data(seed, weighted=weighted)
    a, b = pieces(kind, z, w, [30])
    b_before = b.copy()
    a_copy = a.copy()
    a += b
    assert b == b_before
    assert a_copy != a  # the copy is independent of the merged state


def check_plain_form_round_trips(kind, seed, weighted, tmp_path):
    z, w = data(seed, weighted=weighted)
    s = state(kind, z, w)
    text = json.dumps(s.to_dict())
    assert kind.from_dict(json.loads(text)) == s
    s.save(tmp_path / "state.json")
    assert kind.load(tmp_path / "state.json") == s


def check_foreign_states_are_refused(kind, other_kind):
    z, w = data(0)
    s = state(kind, z)
    with pytest.raises(InputError, match="cannot merge"):
        s + other_kind.from_arrays(z, names=NAMES)
    with pytest.raises(InputError, match="different columns"):
        s + kind.from_arrays(z, names=("a", "b", "c", "target"))
    foreign = other_kind.from_arrays(z, names=NAMES).to_dict()
    with pytest.raises(ModelFormatError):
        kind.from_dict(foreign)


LAWS = [
    check_merge_is_associative,
    check_merge_is_commutative,
    check_empty_is_the_identity,
    check_any_chunking_gives_the_same_state,
    check_update_equals_merge,
    check_in_place_merge_leaves_the_other_state_alone,
]
