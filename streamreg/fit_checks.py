"""A fit's options checked before its main pass: one sentence for each combination refused.

:func:`check_penalty` turns ``alpha``, ``l1_ratio``, ``standardize``, ``tol`` and
``max_iter`` into a :class:`~streamreg.solvers.Penalty` (or None without ``alpha``) and
refuses what a penalized fit cannot have; :func:`check_encoded_solver` refuses what an
encoded design (a formula, categories, an absorbed factor, several targets) cannot be
fitted with.

>>> check_penalty(0.1, 0.5, False, None, None, "auto", None, None).l1_ratio
0.5
>>> from streamreg.errors import InputError
>>> try:
...     check_penalty(None, 0.5, False, None, None, "auto", None, None)
... except InputError as error:
...     print(error)  # doctest: +NORMALIZE_WHITESPACE
l1_ratio=0.5 applies to a penalized fit; give a penalty too (alpha=; alpha=0 with
l1_ratio=0 is least squares).
"""

from __future__ import annotations

import numpy as np

from .design import DesignSpec
from .errors import InputError, parameter
from .solvers import GRADIENT_SOLVERS, Penalty, penalized_family


def check_penalty(alpha, l1_ratio, standardize, tol, max_iter, solver, options, cov_type):
    """The checked penalty of a penalized fit, or None; its options without alpha are refused."""
    if alpha is None:
        given = [
            (name, value)
            for name, value, default in (
                ("l1_ratio", l1_ratio, 1.0),
                ("standardize", standardize, False),
                ("tol", tol, None),
                ("max_iter", max_iter, None),
            )
            if value is not default and value != default
        ]
        if given:
            raise InputError(
                f"{parameter(*given[0])} applies to a penalized fit; give a penalty too "
                f"({parameter('alpha')}; alpha=0 with l1_ratio=0 is least squares)."
            )
        return None
    penalized_family(solver)  # a gradient solver is refused here, before anything is read
    if options is not None:
        raise InputError("gradient solver options do not apply to a penalized fit (alpha=).")
    if cov_type is not None:
        raise InputError(
            "robust standard errors (cov_type) are not available for a penalized fit: "
            "a penalized estimate has no standard errors in streamreg."
        )
    defaults = Penalty(0.0)
    return Penalty(
        alpha,
        l1_ratio,
        standardize,
        defaults.tol if tol is None else tol,
        defaults.max_iter if max_iter is None else max_iter,
    ).checked()


def check_encoded_solver(spec, solver: str, cov_type: str, *, penalized: bool = False) -> None:
    """What an encoded design cannot be fitted with (``penalized``: with a penalty), refused
    in words before the main pass."""
    if isinstance(spec, DesignSpec):
        return
    targets = len(spec.targets)
    if penalized and targets > 1:
        raise InputError(
            f"a penalized fit ({parameter('alpha')}) is for one target; fit the {targets} "
            "targets one at a time."
        )
    if penalized and spec.absorb:
        raise InputError(
            f"a penalized fit ({parameter('alpha')}) cannot absorb the fixed effect "
            f"'{spec.absorb[0]}'; fit without a penalty, or write C({spec.absorb[0]}) as a term "
            "(its levels are penalized then too)."
        )
    if solver in GRADIENT_SOLVERS and targets > 1:
        raise InputError(
            f"the gradient solvers fit one target; for {targets} targets use a closed-form "
            "solver (auto, cholesky, qr or exact), which fits them all from one pass."
        )
    if solver in GRADIENT_SOLVERS and spec.plan.transformed:
        raise InputError(
            f"the gradient solvers standardize the columns themselves; the term "
            f"'{spec.plan.transformed[0]}' (center/scale) needs a closed-form solver."
        )
    if spec.absorb:
        if solver not in ("auto", "cholesky"):
            raise InputError(
                f"an absorbed fixed effect is solved from per-group sums by the cholesky solver; "
                f"solver {solver!r} is not available with it (use auto or cholesky)."
            )
        if cov_type not in ("nonrobust", "cluster"):
            raise InputError(
                f"with an absorbed fixed effect the standard errors are iid or clustered "
                f"(cov_type='cluster:COLUMN'); {cov_type} is not available."
            )
        if cov_type == "cluster" and targets > 1:
            raise InputError(
                "clustered standard errors with an absorbed fixed effect are for one target; "
                "fit the targets one at a time."
            )
        if spec.plan.transformed:
            raise InputError(
                f"the term '{spec.plan.transformed[0]}' (center/scale) cannot be combined with "
                "an absorbed fixed effect: the within transform already centers every column."
            )


def refuse_with_penalty(use_t, rank_deficient: str) -> None:
    """The least-squares options that mean nothing for a penalized fit, refused in words."""
    if use_t is not None:
        raise InputError(
            f"{parameter('use_t', use_t)} chooses the distribution of t tests and intervals, "
            f"which a penalized fit ({parameter('alpha')}) does not have: its shrunk estimates "
            "are biased."
        )
    if rank_deficient == "minimum_norm":
        raise InputError(
            f"{parameter('rank_deficient', 'minimum_norm')} picks one of many least-squares "
            f"solutions; a penalized fit ({parameter('alpha')}) has a unique one of its own."
        )


def check_absorbed_options(spec, cov, rank_deficient: str, diagnostics) -> None:
    """What an absorbed fixed effect cannot be fitted with besides the solver and the
    covariance kind (:func:`check_encoded_solver`), refused in words before the main pass."""
    column = spec.absorb[0]
    if cov.two_way:
        raise InputError(
            f"with the absorbed fixed effect '{column}' the standard errors are iid or clustered "
            "by one column; two-way clusters are not available (write C(...) terms instead)."
        )
    if rank_deficient == "minimum_norm":
        raise InputError(
            f"{parameter('rank_deficient', 'minimum_norm')} is not available with the absorbed "
            f"fixed effect '{column}': its within solve aliases collinear columns "
            f"({parameter('drop_collinear', True)})."
        )
    if diagnostics:
        raise InputError(
            f"{parameter('diagnostics', True)} is not available with the absorbed fixed effect "
            f"'{column}': the model keeps no group effects, so it has no residuals to describe."
        )


# A deviation from a mean of at least this size is at least ~1e-116: its square cannot underflow.
_TRUSTED_MAGNITUDE = 1e-100


def constant_columns(state, p: int, fit_intercept: bool) -> set[str]:
    """Features (the first ``p`` columns) without variation in the rows used (all zero,
    without an intercept), read off a moment state's centered sums of squares; empty for other
    states."""
    comoment = getattr(state, "comoment", None)
    if comoment is None:
        return set()
    mean = np.abs(state.mean + state.mean_lo)[:p]
    spread = np.diagonal(comoment)[:p] == 0
    if fit_intercept:
        # Zero spread is trusted only where a real deviation could not have underflowed when
        # squared (values far from 1e-154); tiny columns go to the exact second pass instead.
        spread &= mean >= _TRUSTED_MAGNITUDE
    else:
        spread &= mean == 0
    return {name for name, flat in zip(state.names[:p], spread) if flat}
