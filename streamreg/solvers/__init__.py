"""The solvers by name: which state each one accumulates and how it is solved.

============  ===================================  ===========================================
solver        state (one streaming pass)           solve
============  ===================================  ===========================================
``cholesky``  :class:`~streamreg.solvers.moments.MomentState`  scaled normal equations, column by column
``qr``        :class:`~streamreg.solvers.qr.QRState`         triangular factor (TSQR), no squaring
``exact``     :class:`~streamreg.solvers.exact.ExactState`   exact sums, solved in exact arithmetic
``auto``      cholesky first; if its condition number leaves fewer than ~10 digits (or a column
              looks collinear), a second pass with ``exact`` (p ≤ 64) or ``qr``
``sgd``       :class:`~streamreg.solvers.moments.MomentState`  minibatch gradient steps over the blocks
              (means and scales for standardization)  (:mod:`streamreg.solvers.gradient`), further passes
``newton``    :class:`~streamreg.solvers.moments.MomentState`  one Newton step from its Hessian, + a pass
``lbfgs``     :class:`~streamreg.solvers.moments.MomentState`  L-BFGS-B, one pass per evaluation
============  ===================================  ===========================================
"""

from __future__ import annotations

from ..errors import InputError, ModelFormatError
from .moments import MomentState, solve_normal_equations
from .qr import QRState, solve_qr

# The gradient solvers of streamreg.sgd: fitted by streamreg.solvers.gradient.fit_gradient, not by solve().
GRADIENT_SOLVERS = ("sgd", "newton", "lbfgs")
SOLVER_NAMES = ("auto", "cholesky", "qr", "exact", *GRADIENT_SOLVERS)
# Beyond this condition number of the scaled normal equations, auto does not trust
# the cholesky pass (≈ 16 − 5 − 1 = 10 digits left) and reads the data again.
AUTO_SWITCH_CONDITION = 1e5
# Up to this many features the exact solver is cheap enough for auto's second pass.
AUTO_EXACT_MAX_FEATURES = 64


def _exact():
    from .exact import ExactState, solve_exact

    return ExactState, solve_exact


def state_class(solver: str):
    """The state a solver accumulates."""
    check_solver(solver)
    if solver in ("auto", "cholesky", *GRADIENT_SOLVERS):
        return MomentState
    if solver == "qr":
        return QRState
    return _exact()[0]


def solve(state, *, fit_intercept: bool = True, drop_collinear: bool = False):
    """Solve any state with the solver it belongs to."""
    if isinstance(state, MomentState):
        return solve_normal_equations(state, fit_intercept=fit_intercept, drop_collinear=drop_collinear)
    if isinstance(state, QRState):
        return solve_qr(state, fit_intercept=fit_intercept, drop_collinear=drop_collinear)
    exact_state, solve_exact = _exact()
    if isinstance(state, exact_state):
        return solve_exact(state, fit_intercept=fit_intercept, drop_collinear=drop_collinear)
    raise TypeError(f"not a streamreg state: {type(state).__name__}")


def state_from_dict(data: dict, *, where: str = "state"):
    """Rebuild a saved state of any kind, by its ``format`` field."""
    kinds = {"streamreg.moment_state": MomentState, "streamreg.qr_state": QRState}
    fmt = data.get("format") if isinstance(data, dict) else None
    if fmt == "streamreg.exact_state":
        return _exact()[0].from_dict(data, where=where)
    if fmt not in kinds:
        raise ModelFormatError(f"{where} is not a streamreg state (format {fmt!r}).")
    return kinds[fmt].from_dict(data, where=where)


def check_solver(solver: str) -> None:
    if solver not in SOLVER_NAMES:
        raise InputError(f"solver must be one of {', '.join(SOLVER_NAMES)}; got {solver!r}.")


def second_pass_solver(n_features: int) -> str:
    return "exact" if n_features <= AUTO_EXACT_MAX_FEATURES else "qr"
