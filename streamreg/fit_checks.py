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
