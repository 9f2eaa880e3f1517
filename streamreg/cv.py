r"""K-fold cross-validation of ridge, lasso and elastic-net paths in one pass over the data.

:func:`cv` reads the data once. Every row goes to its fold (a fold column, a hash of a
key column, or a hash of its file and row position — :mod:`streamreg.engine.fold_ids`),
and each fold's rows into that fold's own mergeable state
(:mod:`streamreg.engine.fold_states`); nothing else is kept. Then, for every
``l1_ratio``:

* the alpha grid comes from the total state (every fold merged), as ``ElasticNetCV``
  computes it from all the data (or ``alphas`` is the grid);
* fold ``k``'s training state is the merge of the other folds; its path is solved by
  warm-started coordinate descent on the Gram (:mod:`streamreg.solvers.penalized`);
* fold ``k``'s validation error at every alpha comes from its own moments, exactly;
* for ridge (``l1_ratio`` 0) the exact generalized cross-validation score along the
  path comes from one eigendecomposition of the total Gram.

The chosen alpha is the smallest mean CV error (``select="min"``, scikit-learn's choice)
or the largest alpha within one standard error of it (``select="1se"``, glmnet's
``lambda.1se``); the model is the path on the total state at that alpha — the refit on
all rows costs no pass. The result is a :class:`~streamreg.model.penalty.CVResult`.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> X = rng.normal(size=(500, 4))
>>> y = X @ [2.0, 0.0, -1.0, 0.0] + rng.normal(size=500)
>>> result = cv(X, y, l1_ratio=1.0, folds=5, alphas=30)
>>> result.mse_path_.shape, result.alphas_.shape, result.coef_path_.shape
((30, 5), (30,), (4, 30))
>>> bool(result.alpha_1se_ >= result.alpha_), result.best_model_.penalty_["n_nonzero"] >= 2
(True, True)
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from .design.levels import DEFAULT_MAX_LEVELS
from .design.request import Request
from .engine.fold_ids import FoldAssignment
from .engine.fold_scan import accumulate_folds_part, total_accumulation
from .errors import ConvergenceWarning, InputError, parameter
from .model.linear_model import LinearModel
from .model.penalty import SELECTIONS, CVResult
from .planning import plan_fit
from .solvers import Penalty, penalized_family
from .solvers.penalized import (
    check_l1_ratio,
    checked_alphas,
    cross_validate_path,
    penalized_solution,
    ridge_gcv,
)

__all__ = ["CVResult", "cv", "fold_assignment", "cv_model"]


def cv(
    source,
    y=None,
    *,
    target: str | None = None,
    features: Sequence[str] | str | None = None,
    exclude: Sequence[str] | str | None = None,
    weight=None,
    fit_intercept: bool = True,
    l1_ratio=1.0,
    folds: int | None = 5,
    alphas=100,
    eps: float = 1e-3,
    fold_column: str | None = None,
    fold_key: str | None = None,
    seed: int = 0,
    standardize: bool = False,
    select: str = "min",
    nulls: str = "drop",
    batch_size: int | None = None,
    solver: str = "auto",
    tol: float = 1e-10,
    max_iter: int = 100_000,
    progress: bool | None = False,
    client=None,
    stall_timeout: float | None = None,
    formula: str | None = None,
    categorical: Sequence[str] | str | None = None,
    reference: dict | None = None,
    max_levels: int = DEFAULT_MAX_LEVELS,
) -> CVResult:
    """Cross-validate elastic-net paths in one streaming pass; see the module docstring.

    Parameters
    ----------
    source, y, target, features, exclude, weight, fit_intercept, nulls, batch_size, progress,
    client, stall_timeout
        As in :func:`streamreg.fit` (Parquet paths, in-memory data, Dask collections).
    l1_ratio : float or sequence of floats, default 1.0
        0 ridge, 1 lasso (the default, as ``LassoCV`` and ``cv.glmnet``); several values
        are cross-validated from the same pass and the best pair is chosen.
    folds : int or None, default 5
        The number of folds. With ``fold_column`` it must equal the number of distinct
        labels (None: whatever labels there are).
    alphas : int or sequence of floats, default 100
        A count of alphas (log-spaced from the smallest alpha that zeroes every
        coefficient down to ``eps`` times it) or the grid itself.
    fold_column, fold_key : column names, optional
        A column holding each row's fold label (integers or strings), or a key column
        whose hash decides the fold (equal keys share a fold). Neither: a hash of each
        row's file and position. Rows never need to be shuffled.
    seed : int, default 0
        Changes the hashed assignment (a key or the position), for repeated CV.
    standardize : bool
        Penalize the standardized coefficients (glmnet's default), reported in original units.
    select : {"min", "1se"}
        The alpha of the smallest mean CV error, or the largest within one standard error.
    solver : {"auto", "cholesky", "qr", "exact"}
        The kind of fold states (``exact``: bit-identical however the data are split).
    tol, max_iter
        Coordinate descent's duality-gap tolerance and sweep limit per alpha.
    formula, categorical, reference, max_levels
        As in :func:`streamreg.fit`: a formula or categories (one-hot columns, the reference
        level dropped), each fold's state over the design columns. One target, no absorbed
        fixed effect and no center/scale terms (``standardize`` scales the columns instead).

    Returns
    -------
    CVResult
        ``alpha_``, ``l1_ratio_``, ``alphas_``, ``mse_path_``, ``coef_path_``,
        ``mse_mean_``, ``mse_se_``, ``alpha_1se_``, ``n_nonzero_``, ``gcv_`` and
        ``best_model_`` (a :class:`~streamreg.model.LinearModel`; ``result.save(path)``).
    """
    ratios = _l1_ratios(l1_ratio)
    grid = _alphas(alphas)
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not 0 < eps < 1:
        raise InputError(f"eps must be a number between 0 and 1; got {parameter('eps', eps)}.")
    if select not in SELECTIONS:
        raise InputError(f"select must be 'min' or '1se'; got {parameter('select', select)}.")
    if not isinstance(standardize, (bool, np.bool_)):
        raise InputError(f"standardize must be True or False; got {standardize!r}.")
    penalty = Penalty(0.0, 1.0, bool(standardize), tol, max_iter).checked()
    kind = penalized_family(solver).state
    assignment = fold_assignment(folds, fold_column=fold_column, fold_key=fold_key, seed=seed)
    request = Request.of(
        target=target,
        features=features,
        exclude=exclude,
        weight=weight if isinstance(weight, str) else None,
        fit_intercept=fit_intercept,
        nulls=nulls,
        formula=formula,
        categorical=categorical,
        reference=reference,
        max_levels=max_levels,
    )
    if features is None and formula is None and assignment.column and request.needs_encoding:
        # a fold label is not a predictor (nor a category)
        request = replace(request, exclude=(*request.exclude, assignment.column))
    plan = plan_fit(
        source,
        y,
        request,
        weight=weight,
        batch_size=batch_size,
        progress=progress,
        client=client,
        stall_timeout=stall_timeout,
        grouped=False,  # every fold's state reads dense rows
    )
    if plan.encoded:
        _check_encoded(plan.blocks.spec)
    elif features is None and assignment.column in plan.blocks.spec.features:
        plan = _without_feature(plan, assignment.column)  # a fold label is not a predictor
    acc = plan.runner.map_reduce(
        plan.blocks, accumulate_folds_part, kind, assignment, label="cv (fold states)"
    )
    model = cv_model(
        acc,
        assignment,
        l1_ratios=ratios,
        alphas=grid,
        eps=float(eps),
        penalty=penalty,
        select=select,
        n_folds=folds,
    )
    return CVResult(model)


def cv_model(
    acc,
    assignment: FoldAssignment,
    *,
    l1_ratios,
    alphas,
    eps: float,
    penalty: Penalty,
    select: str,
    n_folds: int | None,
) -> LinearModel:
    """The model chosen by cross-validation from a fold accumulation (``acc.state`` is the
    :class:`~streamreg.engine.fold_states.FoldStates`); also what a scheduled job refits."""
    fold_states = acc.state
    fold_states.check_complete(n_folds)
    fit_intercept = acc.spec.fit_intercept
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        path = cross_validate_path(
            fold_states,
            l1_ratio=l1_ratios,
            alphas=alphas,
            eps=eps,
            fit_intercept=fit_intercept,
            standardize=penalty.standardize,
            tol=penalty.tol,
            max_iter=penalty.max_iter,
        )
    notes = list(dict.fromkeys(str(w.message) for w in caught))
    for note in notes:
        warnings.warn(note, ConvergenceWarning, stacklevel=3)
    total = total_accumulation(acc)
    gcv = [
        _gcv(total.state, path.alphas[r], fit_intercept, penalty.standardize)
        if ratio == 0.0
        else None
        for r, ratio in enumerate(path.l1_ratios)
    ]
    record = path.record(
        selection=select,
        assignment={**assignment.to_dict(), "description": fold_states.origin},
        fold_rows=[state.n_rows for state in fold_states.states],
        gcv=gcv,
    )
    r, a = path.chosen_index(select)
    chosen = path.paths[r].fit_at(a)
    solution = penalized_solution(
        total.state,
        chosen,
        Penalty(chosen.alpha, chosen.l1_ratio, penalty.standardize, penalty.tol, penalty.max_iter),
        warnings=notes,
    )
    design = getattr(acc.spec, "design", None)  # an encoded design (categories, a formula)
    return LinearModel.from_accumulation(total, solution, cv=record, design=design)


def fold_assignment(folds=5, *, fold_column=None, fold_key=None, seed=0) -> FoldAssignment:
    """The fold assignment these parameters ask for (checked; one sentence per mistake)."""
    if fold_column is not None and fold_key is not None:
        raise InputError(
            f"give {parameter('fold_column')} or {parameter('fold_key')}, not both: a fold "
            "column names each row's fold, a key is hashed into one."
        )
    for name, value in (("fold_column", fold_column), ("fold_key", fold_key)):
        if value is not None and (not isinstance(value, str) or not value):
            raise InputError(f"{name} must be a column name; got {parameter(name, value)}.")
    if fold_column is not None:
        if folds is not None:
            FoldAssignment.by_position(folds)  # checks the count: at least 2
        return FoldAssignment.by_column(fold_column)
    if folds is None:
        raise InputError(
            f"give the number of folds ({parameter('folds')}), or a fold column whose labels "
            "are the folds."
        )
    if fold_key is not None:
        return FoldAssignment.by_key(fold_key, folds, seed)
    return FoldAssignment.by_position(folds, seed)


def _l1_ratios(l1_ratio) -> list[float]:
    values = l1_ratio if isinstance(l1_ratio, (list, tuple, np.ndarray)) else [l1_ratio]
    if len(values) == 0:
        raise InputError("l1_ratio must be a number or a non-empty list of numbers in [0, 1].")
    return [check_l1_ratio(v) for v in values]


def _alphas(alphas):
    if isinstance(alphas, (int, np.integer)) and not isinstance(alphas, bool):
        if alphas < 1:
            got = parameter("alphas", alphas)
            raise InputError(f"the number of alphas must be a positive integer; got {got}.")
        return int(alphas)
    return checked_alphas(alphas)


def _gcv(state, grid, fit_intercept: bool, standardize: bool):
    result = ridge_gcv(state, grid, fit_intercept=fit_intercept, standardize=standardize)
    return result.gcv, result.df


def _check_encoded(spec) -> None:
    """What cross-validation cannot do with an encoded design, refused in one sentence."""
    if len(spec.targets) > 1:
        raise InputError(
            f"cross-validation is for one target; validate the {len(spec.targets)} targets "
            "one at a time."
        )
    if spec.absorb:
        raise InputError(
            f"cross-validation cannot absorb the fixed effect '{spec.absorb[0]}'; write "
            f"C({spec.absorb[0]}) as a term (its levels are penalized then too)."
        )
    if spec.plan.transformed:
        raise InputError(
            f"cross-validation cannot use the center/scale term '{spec.plan.transformed[0]}' "
            f"(its statistics would differ by fold); use {parameter('standardize', True)}."
        )


def _without_feature(plan, column: str):
    spec = plan.blocks.spec
    kept = tuple(f for f in spec.features if f != column)
    if not kept:
        raise InputError(
            f"no feature columns are left besides the target '{spec.target}' and the fold "
            f"column '{column}'; name the features ({parameter('features')})."
        )
    blocks = replace(plan.blocks, spec=replace(spec, features=kept))
    return replace(plan, blocks=blocks, step_blocks=blocks)
