"""A conformance suite every streamreg state passes (river's ``checks``, scikit-learn's
``check_estimator``).

Each check takes a state class and some seeded data and returns what the state breaks of one
law of the state contract (:mod:`streamreg.solvers.base`): merge is associative and
commutative (bit for bit when the state is exact, up to rounding otherwise), the empty state
is the identity, any chunking of the rows gives the same state, ``update`` equals a merge, the
plain JSON form round-trips exactly, and states of another kind or over other columns are
refused. A new state class is added to ``STATES`` in ``tests/test_state_conformance.py`` and
must pass them all.
"""

from __future__ import annotations

import json

import numpy as np

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


def same(kind, s1, s2, rtol=1e-10) -> bool:
    """Equal bit for bit for an exact state; equal up to rounding (scaled to the data) otherwise."""
    if is_exact(kind):
        return s1 == s2
    m1, m2 = s1.mean + s1.mean_lo, s2.mean + s2.mean_lo
    spread = np.sqrt(np.abs(np.diagonal(s1.comoment)) / max(s1.weight_sum, 1.0))
    scale = np.sqrt(np.outer(np.diagonal(s1.comoment), np.diagonal(s1.comoment))) + 1e-300
    return bool(
        s1.n_rows == s2.n_rows
        and abs(s1.weight_sum - s2.weight_sum) <= 1e-13 * abs(s2.weight_sum)
        and np.all(np.abs(m1 - m2) <= rtol * (np.abs(m1) + spread + 1e-300).max())
        and np.all(np.abs(s1.comoment - s2.comoment) < rtol * scale + 1e-300)
    )


def refused(action, error, match: str = "") -> bool:
    """Whether ``action()`` raises ``error`` with ``match`` in its message."""
    try:
        action()
    except error as refusal:
        return match in str(refusal)
    return False


def state(kind, z, w=None):
    return kind.from_arrays(z, w, names=NAMES)


def pieces(kind, z, w, cuts):
    edges = [0, *cuts, len(z)]
    return [
        state(kind, z[a:b], None if w is None else w[a:b]) for a, b in zip(edges[:-1], edges[1:])
    ]


# ---------------------------------------------------------------------- the laws
# Each check returns the parts of its law the state breaks: an empty list when it holds.
def check_merge_is_associative(kind, seed, weighted) -> list[str]:
    z, w = data(seed, weighted=weighted)
    a, b, c = pieces(kind, z, w, [17, 41])
    return [] if same(kind, (a + b) + c, a + (b + c)) else ["(a + b) + c != a + (b + c)"]


def check_merge_is_commutative(kind, seed, weighted) -> list[str]:
    z, w = data(seed, weighted=weighted)
    a, b = pieces(kind, z, w, [23])
    return [] if same(kind, a + b, b + a) else ["a + b != b + a"]


def check_empty_is_the_identity(kind, seed, weighted) -> list[str]:
    z, w = data(seed, weighted=weighted)
    s = state(kind, z, w)
    empty = kind.empty(NAMES)
    broken = [] if empty.n_rows == 0 and empty.weight_sum == 0 else ["the empty state has rows"]
    broken += [] if (s + empty) == s else ["s + empty != s"]
    broken += [] if (empty + s) == s else ["empty + s != s"]
    return broken


def check_any_chunking_gives_the_same_state(kind, seed, weighted) -> list[str]:
    z, w = data(seed, weighted=weighted)
    whole = state(kind, z, w)
    rng = np.random.default_rng(seed + 1)
    broken = []
    for _ in range(3):
        cuts = sorted(
            rng.choice(np.arange(1, len(z)), size=rng.integers(1, 8), replace=False).tolist()
        )
        parts = pieces(kind, z, w, cuts)
        merged = parts[0]
        for part in parts[1:]:
            merged = merged + part
        if not same(kind, merged, whole):
            broken.append(f"the state of chunks cut at {cuts}")
            continue
        # ... and the fit does not move either
        got, want = solve(merged).coef, solve(whole).coef
        if not np.allclose(got, want, rtol=1e-9, atol=0):
            broken.append(f"the coefficients of chunks cut at {cuts}")
    return broken


def check_update_equals_merge(kind, seed, weighted) -> list[str]:
    z, w = data(seed, weighted=weighted)
    grown = kind.empty(NAMES)
    broken = []
    for start in range(0, len(z), 13):
        rows = slice(start, start + 13)
        if grown.update(z[rows], None if w is None else w[rows]) is not grown:
            broken.append("update did not return the state it grew in place")
    return broken + ([] if same(kind, grown, state(kind, z, w)) else ["updates != one state"])


def check_in_place_merge_leaves_the_other_state_alone(kind, seed, weighted) -> list[str]:
    z, w = data(seed, weighted=weighted)
    a, b = pieces(kind, z, w, [30])
    b_before = b.copy()
    a_copy = a.copy()
    a += b
    broken = [] if b == b_before else ["a += b changed b"]
    return broken + ([] if a_copy != a else ["a copy followed the merged state"])


def check_plain_form_round_trips(kind, seed, weighted, tmp_path) -> list[str]:
    z, w = data(seed, weighted=weighted)
    s = state(kind, z, w)
    text = json.dumps(s.to_dict())
    broken = [] if kind.from_dict(json.loads(text)) == s else ["to_dict / from_dict"]
    s.save(tmp_path / "state.json")
    return broken + ([] if kind.load(tmp_path / "state.json") == s else ["save / load"])


def check_foreign_states_are_refused(kind, other_kind) -> list[str]:
    z, w = data(0)
    s = state(kind, z)
    foreign = other_kind.from_arrays(z, names=NAMES)
    renamed = kind.from_arrays(z, names=("a", "b", "c", "target"))
    refusals = {
        "a state of another kind merged": refused(lambda: s + foreign, InputError, "cannot merge"),
        "a state of other columns merged": refused(
            lambda: s + renamed, InputError, "different columns"
        ),
        "another kind's file loaded": refused(
            lambda: kind.from_dict(foreign.to_dict()), ModelFormatError
        ),
    }
    return [what for what, ok in refusals.items() if not ok]


LAWS = [
    check_merge_is_associative,
    check_merge_is_commutative,
    check_empty_is_the_identity,
    check_any_chunking_gives_the_same_state,
    check_update_equals_merge,
    check_in_place_merge_leaves_the_other_state_alone,
]
