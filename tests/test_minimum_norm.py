"""Minimum-norm least squares from streamed states equals scikit-learn's LinearRegression.

The cases re-create the rank-deficient and under-determined ones of scikit-learn's own
``sklearn/linear_model/tests/test_base.py`` (degenerate one-row data, the 2×2 and 2×3
intercept-shape checks, the sparse identity, ``make_regression``'s 100 × 100, the
sample-weight consistency checks on 10 × 20 and 100 × 100, the 10 × 12 in-place check),
each streamed in 1, 3 and 7 batches into every state kind and compared with
``LinearRegression`` on the same data to 1e-8.
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import make_regression
from sklearn.linear_model import LinearRegression

from streamreg.solvers.exact import ExactState
from streamreg.solvers.minimum_norm import minimum_norm_solve
from streamreg.solvers.moments import MomentState
from streamreg.solvers.qr import QRState

STATES = [MomentState, QRState, ExactState]


def streamed(cls, x, y, weights=None, count=1):
    names = [f"x{j}" for j in range(x.shape[1])] + ["y"]
    z = np.column_stack([x, y])
    state = cls.empty(names)
    for rows in np.array_split(np.arange(len(y)), count):
        if len(rows):
            state = state + cls.from_arrays(
                z[rows], None if weights is None else weights[rows], names=names
            )
    return state


def ours(cls, x, y, weights=None, fit_intercept=True, count=1):
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    if weights is not None:
        weights = np.broadcast_to(np.asarray(weights, dtype=float), y.shape).copy()
    return minimum_norm_solve(streamed(cls, x, y, weights, count), fit_intercept=fit_intercept)


def assert_like_sklearn(solution, reference, y, rtol=1e-8):
    coef_scale = max(np.max(np.abs(reference.coef_)), 1e-300)
    assert np.max(np.abs(solution.coef - reference.coef_)) <= rtol * coef_scale
    assert abs(solution.intercept - reference.intercept_) <= rtol * max(
        abs(reference.intercept_), np.max(np.abs(y)), 1e-300
    )
    if hasattr(reference, "rank_"):
        assert solution.rank_ == reference.rank_


CASES = {
    # name: (X, y, fit_intercept)
    "two rows, one feature": ([[1.0], [2.0]], [1.0, 2.0], True),
    "one row (degenerate)": ([[1.0]], [0.0], True),
    "2x2 with intercept": ([[0.38349978, 0.61650022], [0.58853682, 0.41146318]], [1.0, 1.0], True),
    "2x2 without intercept": (
        [[0.38349978, 0.61650022], [0.58853682, 0.41146318]],
        [1.0, 1.0],
        False,
    ),
    "2x3 with intercept": (
        [[0.27677969, 0.70693172, 0.01628859], [0.08385139, 0.20692515, 0.70922346]],
        [1.0, 1.0],
        True,
    ),
    "2x3 without intercept": (
        [[0.27677969, 0.70693172, 0.01628859], [0.08385139, 0.20692515, 0.70922346]],
        [1.0, 1.0],
        False,
    ),
}


@pytest.mark.parametrize("cls", STATES, ids=lambda c: c.__name__)
@pytest.mark.parametrize("name", sorted(CASES))
def test_small_shape_cases(cls, name):
    x, y, intercept = CASES[name]
    reference = LinearRegression(fit_intercept=intercept).fit(x, y)
    for count in (1, 2):
        got = ours(cls, x, y, fit_intercept=intercept, count=min(count, len(y)))
        assert got.coef.shape == reference.coef_.shape
        assert_like_sklearn(got, reference, np.asarray(y))


@pytest.mark.parametrize("cls", STATES, ids=lambda c: c.__name__)
def test_identity_design_recovers_coef_plus_intercept(cls):
    rng = np.random.RandomState(0)
    x, beta = np.eye(100), rng.rand(100)
    y = x @ beta
    got = ours(cls, x, y, count=7)
    np.testing.assert_allclose(got.coef + got.intercept, beta, atol=1e-10)
    assert_like_sklearn(got, LinearRegression().fit(x, y), y)


@pytest.mark.parametrize("cls", STATES, ids=lambda c: c.__name__)
@pytest.mark.parametrize("count", [1, 7])
def test_make_regression_square_with_intercept(cls, count):
    x, y = make_regression(random_state=np.random.RandomState(0))  # 100 × 100
    assert_like_sklearn(ours(cls, x, y, count=count), LinearRegression().fit(x, y), y)


# The exact state's 100 × 100 products cost seconds per merge; its moments are those of
# MomentState rounded once, so the square case runs on the two float states only.
WEIGHT_CASES = [
    (cls, shape)
    for shape in [(10, 20), (100, 100)]
    for cls in STATES
    if not (cls is ExactState and shape == (100, 100))
]


@pytest.mark.parametrize("cls, shape", WEIGHT_CASES, ids=lambda v: getattr(v, "__name__", str(v)))
@pytest.mark.parametrize("intercept", [False, True])
def test_sample_weight_consistency(cls, shape, intercept):
    """The five properties scikit-learn checks, each also compared with scikit-learn itself."""
    rng = np.random.RandomState(42)
    n, p = shape
    x, y = rng.rand(n, p), rng.rand(n)

    def both(xx, yy, w):
        got = ours(cls, xx, yy, w, intercept, count=3)
        assert_like_sklearn(
            got, LinearRegression(fit_intercept=intercept).fit(xx, yy, sample_weight=w), yy
        )
        return got

    base = both(x, y, None)
    for same in (np.ones(n), 123.0):  # 1) and 2): unit or constant weights change nothing
        np.testing.assert_allclose(both(x, y, same).coef, base.coef, rtol=1e-6)
    w = rng.uniform(0.01, 2.0, size=n)
    weighted = both(x, y, w)
    np.testing.assert_allclose(both(x, y, np.pi * w).coef, weighted.coef, rtol=1e-6)  # 3) scaling
    zeroed = w.copy()
    zeroed[-5:] = 0.0
    y_far = y.copy()
    y_far[-5:] *= 1000
    dropped = both(x, y_far, zeroed)  # 4) zero weight = row removed
    np.testing.assert_allclose(both(x[:-5], y_far[:-5], w[:-5]).coef, dropped.coef, rtol=1e-5)
    doubled = w.copy()
    doubled[: n // 2] *= 2  # 5) weight 2 = the row twice
    repeated = both(np.vstack([x, x[: n // 2]]), np.r_[y, y[: n // 2]], np.r_[w, w[: n // 2]])
    np.testing.assert_allclose(both(x, y, doubled).coef, repeated.coef, rtol=1e-6)


@pytest.mark.parametrize("cls", STATES, ids=lambda c: c.__name__)
@pytest.mark.parametrize("weighted", [False, True])
def test_wide_ten_by_twelve(cls, weighted):
    rng = np.random.RandomState(7)
    x, y = rng.randn(10, 12), rng.randn(10)
    w = rng.rand(10) if weighted else None
    assert_like_sklearn(
        ours(cls, x, y, w, count=3), LinearRegression().fit(x, y, sample_weight=w), y
    )


def test_rank_threshold_follows_rcond():
    rng = np.random.RandomState(3)
    base = rng.randn(200, 3)
    # A fourth column that differs from a combination of the others by 1e-7 of its size:
    # kept at rcond 1e-9, dropped at scikit-learn's default 1e-6, both like scikit-learn.
    x = np.column_stack([base, base @ [1.0, -2.0, 0.5] + 1e-7 * rng.randn(200)])
    y = x @ [1.0, 2.0, 3.0, 4.0] + rng.randn(200)
    for rcond in (1e-6, 1e-9):
        reference = LinearRegression(tol=rcond).fit(x, y)
        for cls in (QRState, MomentState):
            got = minimum_norm_solve(streamed(cls, x, y, count=3), rcond=rcond)
            assert got.rank_ == reference.rank_ == (3 if rcond == 1e-6 else 4)
            if rcond == 1e-6 or cls is QRState:
                assert_like_sklearn(got, reference, y, rtol=1e-7)


def test_to_solution_carries_pseudo_inverse_and_notes():
    rng = np.random.RandomState(1)
    x = rng.randn(30, 2)
    x = np.column_stack([x, x[:, 0] + x[:, 1]])
    y = rng.randn(30)
    mn = minimum_norm_solve(streamed(MomentState, x, y))
    sol = mn.to_solution()
    assert sol.rank == 3 and sol.solver == "minimum_norm" and "rank 2 of 3" in sol.warnings[0]
    centered = x - x.mean(axis=0)
    np.testing.assert_allclose(
        sol.xtx_inv, np.linalg.pinv(centered.T @ centered), rtol=1e-9, atol=1e-12
    )
    np.testing.assert_allclose(mn.ssr, np.sum((y - y.mean() - centered @ mn.coef) ** 2), rtol=1e-10)
