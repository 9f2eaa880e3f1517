"""Every state class passes the same conformance suite (tests/state_checks.py)."""

from __future__ import annotations

import itertools

import pytest
import state_checks as checks

from streamreg.solvers import FAMILIES

# Every kind of state a solver accumulates: a new family's state joins this list by itself.
STATES = sorted({f.state for f in FAMILIES.values()}, key=lambda k: k.__name__)


def test_every_family_state_is_checked():
    assert {k.__name__ for k in STATES} >= {"MomentState", "QRState", "ExactState"}


@pytest.mark.parametrize("kind", STATES, ids=lambda k: k.__name__)
@pytest.mark.parametrize("law", checks.LAWS, ids=lambda f: f.__name__.removeprefix("check_"))
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("seed", [1, 2])
def test_state_laws(kind, law, weighted, seed):
    assert law(kind, seed, weighted) == []


@pytest.mark.parametrize("kind", STATES, ids=lambda k: k.__name__)
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_plain_form_round_trips(kind, weighted, tmp_path):
    assert checks.check_plain_form_round_trips(kind, 3, weighted, tmp_path) == []


@pytest.mark.parametrize(
    ("kind", "other"), list(itertools.permutations(STATES, 2)), ids=lambda k: k.__name__
)
def test_foreign_states_are_refused(kind, other):
    assert checks.check_foreign_states_are_refused(kind, other) == []


def test_the_checks_can_fail():
    """A state that mis-merges is caught by the laws (here: merging drops the other's rows)."""
    from streamreg.solvers.moments import MomentState

    class Forgetful(MomentState):
        __slots__ = ()

        def __iadd__(self, other):
            return self

    assert checks.check_any_chunking_gives_the_same_state(Forgetful, 1, False) != []
