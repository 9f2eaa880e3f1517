"""Penalized and cross-validated jobs: which model a run publishes from the merged states.

A job publishes least squares from its merged state (with ``solver = "auto"``, a warning
when the condition number would have sent a fit to a second pass); with ``model.alpha``,
the penalized fit. A job with a
``[cv]`` table keeps, for every file, one state per fold beside the file's plain state
(``"folds"`` in the file's state document; the fold of a row depends only on the row, so
a file's fold states never change); after every run the merged fold states are
cross-validated again (:func:`streamreg.cv.cv_model`) and the model at the chosen alpha is
published, with its CV path. The folds are part of the job's identity: a state store
built with other folds (or none) is refused.
"""

from __future__ import annotations

from ..cv import cv_model, fold_assignment
from ..engine.fold_ids import FoldAssignment
from ..engine.fold_states import FoldStates
from ..engine.scan import Accumulation
from ..model.linear_model import LinearModel
from ..solvers import AUTO_SWITCH_CONDITION, Penalty, solve, solve_penalized
from .spec import JobSpec


def job_fold_assignment(job: JobSpec) -> FoldAssignment | None:
    """The fold assignment of a cross-validating job (None without [cv])."""
    if job.cv is None:
        return None
    return fold_assignment(
        job.cv["folds"],
        fold_column=job.cv["fold_column"],
        fold_key=job.cv["fold_key"],
        seed=job.cv["seed"],
    )


def empty_state(kind: type, names, folds: FoldAssignment | None):
    """No rows yet: a state of ``kind``, or one per fold with ``folds``."""
    return kind.empty(names) if folds is None else FoldStates.for_assignment(kind, names, folds)


def job_model(job: JobSpec, total: Accumulation) -> LinearModel:
    """The model a run publishes: least squares, a penalized fit, or the CV-chosen one."""
    if job.cv is not None:
        return cv_model(
            total,
            job_fold_assignment(job),
            l1_ratios=job.cv["l1_ratios"],
            alphas=job.cv["alphas"],
            eps=job.cv["eps"],
            penalty=Penalty(0.0, 1.0, job.standardize),
            select=job.cv["select"],
            n_folds=job.cv["folds"],
        )
    if job.alpha is not None:
        penalty = Penalty(job.alpha, job.l1_ratio, job.standardize)
        solution = solve_penalized(total.state, fit_intercept=job.fit_intercept, penalty=penalty)
    else:
        solution = solve(
            total.state, fit_intercept=job.fit_intercept, drop_collinear=job.drop_collinear
        )
        if job.solver == "auto" and solution.condition_number > AUTO_SWITCH_CONDITION:
            solution.warnings.append(
                f"auto: the condition number of the scaled normal equations is "
                f"{solution.condition_number:.1e}, above auto's threshold "
                f"({AUTO_SWITCH_CONDITION:.0e}); a fit would read the data again with a more "
                "accurate solver, which a job cannot do from its saved states: for more "
                'digits run the job with model.solver = "exact" (or "qr") in a new state '
                "location."
            )
    design = getattr(total.spec, "design", None)  # an encoded job's levels and coding
    return LinearModel.from_accumulation(total, solution, design=design)
