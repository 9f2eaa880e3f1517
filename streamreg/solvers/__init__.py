"""The solvers by name: one family per ``solver=`` value, each its state and its solve.

============  ================================================  ====================================
solver        state (one streaming pass)                        solve
============  ================================================  ====================================
``cholesky``  :class:`~streamreg.solvers.moments.MomentState`   scaled normal equations, column by
                                                                column
``qr``        :class:`~streamreg.solvers.qr.QRState`            triangular factor (TSQR), no
                                                                squaring
``exact``     :class:`~streamreg.solvers.exact.ExactState`      exact sums, solved in exact
                                                                arithmetic
``auto``      cholesky first; if its condition number leaves fewer than ~10 digits (or a column
              looks collinear), a second pass with ``exact`` (p ≤ 64) or ``qr``
``sgd``       :class:`~streamreg.solvers.moments.MomentState`   minibatch gradient steps over the
              (means and scales for standardization)            blocks
                                                                (:mod:`streamreg.solvers.gradient`)
``newton``    :class:`~streamreg.solvers.moments.MomentState`   one Newton step from its Hessian, +
                                                                a pass
``lbfgs``     :class:`~streamreg.solvers.moments.MomentState`   L-BFGS-B, one pass per evaluation
============  ================================================  ====================================

A penalty (``alpha=``) is solved by the ``elastic_net`` family
(:mod:`streamreg.solvers.penalized`: ridge, lasso, elastic net by coordinate descent on the
Gram) over the state of ``cholesky`` (also for ``auto``), ``qr`` or ``exact``; it is chosen
by giving ``alpha``, never by name.

Adding a solver is one module (its state, or a solve over an existing state) and one
line in :data:`FAMILIES` (and its name in :mod:`streamreg.choices`, which the command line
reads without importing the solvers; a test checks that the two agree); every name check in
streamreg goes through :func:`check_solver`.

>>> family("qr").state.__name__, check_solver("exact")
('QRState', 'exact')
>>> from streamreg.errors import InputError
>>> try:
...     check_solver("ridge")
... except InputError as error:
...     print(error)
solver must be one of auto, cholesky, qr, exact, sgd, newton, lbfgs; got 'ridge'.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..errors import InputError, ModelFormatError
from .exact import ExactState, solve_exact
from .gradient import GRADIENT_SOLVERS
from .moments import MomentState, solve_normal_equations
from .penalized import Penalty, solve_penalized
from .qr import QRState, solve_qr
from .views import select_target


@dataclass(frozen=True)
class Family:
    """A ``solver=`` value: the state its first pass accumulates and, for a closed form, its solve
    ``solve(state, *, fit_intercept, drop_collinear) -> Solution`` (None: a gradient solver,
    fitted by :func:`streamreg.solvers.gradient.solve_gradient`)."""

    name: str
    state: type
    solve: Callable | None
    penalized: bool = False  # solve(..., penalty=Penalty): chosen by alpha=, not by solver=


FAMILIES: dict[str, Family] = {
    "cholesky": Family("cholesky", MomentState, solve_normal_equations),
    "qr": Family("qr", QRState, solve_qr),
    "exact": Family("exact", ExactState, solve_exact),
    **{name: Family(name, MomentState, None) for name in GRADIENT_SOLVERS},
    "elastic_net": Family("elastic_net", MomentState, solve_penalized, penalized=True),
}
CLOSED_FORM_SOLVERS = tuple(
    name for name, f in FAMILIES.items() if f.solve is not None and not f.penalized
)
SOLVER_NAMES = ("auto", *(name for name, f in FAMILIES.items() if not f.penalized))
# The least-squares solve of each kind of state (the gradient solvers' state is MomentState's).
_SOLVE_BY_STATE = {
    f.state: f.solve for f in FAMILIES.values() if f.solve is not None and not f.penalized
}
# The solvers whose state a penalized fit may be solved over (auto: cholesky's).
PENALIZED_STATE_SOLVERS = ("auto", *CLOSED_FORM_SOLVERS)

# Beyond this condition number of the scaled normal equations, auto does not trust
# the cholesky pass (≈ 16 − 5 − 1 = 10 digits left) and reads the data again.
AUTO_SWITCH_CONDITION = 1e5
# Up to this many features the exact solver is cheap enough for auto's second pass.
AUTO_EXACT_MAX_FEATURES = 64

__all__ = [
    "AUTO_EXACT_MAX_FEATURES",
    "AUTO_SWITCH_CONDITION",
    "CLOSED_FORM_SOLVERS",
    "FAMILIES",
    "Family",
    "GRADIENT_SOLVERS",
    "PENALIZED_STATE_SOLVERS",
    "Penalty",
    "SOLVER_NAMES",
    "check_solver",
    "family",
    "penalized_family",
    "second_pass_solver",
    "solve",
    "solve_targets",
    "solve_penalized",
    "state_class",
    "state_from_dict",
]


def check_solver(solver) -> str:
    """The solver's name, if it is one; otherwise one sentence listing the names."""
    if solver not in SOLVER_NAMES:
        raise InputError(f"solver must be one of {', '.join(SOLVER_NAMES)}; got {solver!r}.")
    return solver


def family(solver: str) -> Family:
    """The family of a solver name (``auto`` starts as cholesky)."""
    return FAMILIES["cholesky" if check_solver(solver) == "auto" else solver]


def penalized_family(solver: str) -> Family:
    """The family solving a penalty over the state of ``solver`` (auto, cholesky, qr, exact)."""
    check_solver(solver)
    if solver not in PENALIZED_STATE_SOLVERS:
        raise InputError(
            f"a penalty (alpha) is solved over the state of {', '.join(PENALIZED_STATE_SOLVERS)}; "
            f"solver {solver!r} is a gradient solver (its ridge penalty is the l2 option)."
        )
    base = FAMILIES["cholesky" if solver == "auto" else solver]
    return Family("elastic_net", base.state, solve_penalized, penalized=True)


def state_class(solver: str) -> type:
    """The state a solver accumulates."""
    return family(solver).state


def solve(state, *, fit_intercept: bool = True, drop_collinear: bool = False):
    """Solve any state with the closed-form solver it belongs to."""
    solver = _SOLVE_BY_STATE.get(type(state))
    if solver is None:
        raise TypeError(f"not a streamreg state: {type(state).__name__}")
    return solver(state, fit_intercept=fit_intercept, drop_collinear=drop_collinear)


def solve_targets(state, n_targets: int, *, fit_intercept: bool = True, drop_collinear=False):
    """One solution per target of a state over ``[x, y₁ … y_m]``, all from the shared state
    (:func:`streamreg.solvers.views.select_target`)."""
    return [
        solve(
            select_target(state, k, n_targets=n_targets),
            fit_intercept=fit_intercept,
            drop_collinear=drop_collinear,
        )
        for k in range(n_targets)
    ]


def state_from_dict(data: dict, *, where: str = "state"):
    """Rebuild a saved state of any kind, by its ``format`` field."""
    kinds = {cls.FORMAT: cls for cls in _SOLVE_BY_STATE}
    fmt = data.get("format") if isinstance(data, dict) else None
    if fmt not in kinds:
        raise ModelFormatError(f"{where} is not a streamreg state (format {fmt!r}).")
    return kinds[fmt].from_dict(data, where=where)


def second_pass_solver(n_features: int) -> str:
    """auto's solver for a second pass: exact while cheap, qr beyond."""
    return "exact" if n_features <= AUTO_EXACT_MAX_FEATURES else "qr"
