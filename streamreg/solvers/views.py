r"""Views of a state without another pass: a subset of its columns, one target, an affine map.

**Several targets from one pass.** A state over ``[x₁ … x_p, y₁ … y_m]`` holds
every target's sufficient statistics, since the normal equations of target
``k`` need only the blocks ``M_xx``, ``M_xyₖ`` and ``M_yₖyₖ``:

* :class:`~streamreg.solvers.moments.MomentState` and :class:`~streamreg.solvers.exact.ExactState`:
  the sub-matrix of ``[x, yₖ]`` (means, co-moments; exact sums) — bit for bit the
  state a pass over ``[x, yₖ]`` alone would build for the exact state, equal up
  to rounding for the moment state;
* :class:`~streamreg.solvers.qr.QRState`: with ``R = [[R_xx, R_xY], [0, R_YY]]``, the R
  factor of ``[x, yₖ]`` is ``[[R_xx, R_xY[:, k]], [0, ‖R_YY[:, k]‖]]`` — the part of
  ``yₖ`` that ``x`` does not explain lies in the rows of ``R_YY``, and only its
  length matters (Golub & Van Loan, §5.3).

So one pass and one factorization of ``M_xx`` (or ``R_xx``) serve every target:
:func:`select_target` is cheap, and the solvers run unchanged on each view.

**Re-parametrizing** (:func:`affine`): for new columns ``z' = Tᵀz + b`` (per
row), ``n' = n``, ``μ' = Tᵀμ + b`` and ``M' = TᵀMT`` (``R' = qr_r(R T)``), exact
in exact arithmetic; :mod:`streamreg.design.coding` uses it for ``center``/``scale``.

>>> import numpy as np
>>> from streamreg.solvers.moments import MomentState
>>> z = np.array([[1.0, 2.0, 5.0], [2.0, 4.1, 3.0], [3.0, 5.9, 2.0], [4.0, 8.2, 0.5]])
>>> both = MomentState.from_arrays(z, names=["x", "y1", "y2"])
>>> select_target(both, 1, n_targets=2).names
('x', 'y2')
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..design.reparam import transform_from
from ..errors import InputError
from .exact import ExactState
from .moments import MomentState
from .qr import QRState, _triangular_factor


def select_columns(state, indices: Sequence[int]):
    """The state of the given columns only, in the given order (a new state of the same kind)."""
    indices = list(indices)
    names = [state.names[i] for i in indices]
    if isinstance(state, MomentState):
        return MomentState(
            names,
            state.n_rows,
            state.weight_sum,
            state.mean[indices].copy(),
            state.comoment[np.ix_(indices, indices)].copy(),
            mean_lo=state.mean_lo[indices].copy(),
        )
    if isinstance(state, QRState):
        factor = _triangular_factor(state.r[:, indices])
        return QRState(
            names,
            state.n_rows,
            state.weight_sum,
            state.mean[indices].copy(),
            factor,
            mean_lo=state.mean_lo[indices].copy(),
        )
    if isinstance(state, ExactState):
        return _select_exact(state, indices, names)
    raise TypeError(f"not a streamreg state: {type(state).__name__}")


def select_target(state, k: int, *, n_targets: int):
    """The state over the features and the ``k``-th of the last ``n_targets`` columns."""
    p = state.n_columns - n_targets
    if not 0 <= k < n_targets or p < 0:
        raise InputError(f"target index {k} is out of range for {n_targets} targets.")
    if isinstance(state, QRState):
        r = state.r
        factor = np.zeros((p + 1, p + 1))
        factor[:p, :p] = r[:p, :p]
        factor[:p, p] = r[:p, p + k]
        factor[p, p] = np.linalg.norm(r[p:, p + k])
        columns = list(range(p)) + [p + k]
        return QRState(
            [state.names[i] for i in columns],
            state.n_rows,
            state.weight_sum,
            state.mean[columns].copy(),
            factor,
            mean_lo=state.mean_lo[columns].copy(),
        )
    return select_columns(state, list(range(p)) + [p + k])


def affine(state, matrix: np.ndarray, offset: np.ndarray, names: Sequence[str], keep_last: int = 0):
    """The state of ``z' = matrixᵀ z + offset``, the last ``keep_last`` columns passed through.

    ``matrix`` maps the first ``k − keep_last`` columns of the state to the new
    ones (``(k − keep_last) × q``); the result has ``q + keep_last`` columns named
    ``names``.
    """
    k = state.n_columns
    head = k - keep_last
    matrix = np.asarray(matrix, dtype=np.float64)
    if matrix.shape[0] != head or len(names) != matrix.shape[1] + keep_last:
        raise InputError(
            f"the affine map has shape {matrix.shape}; expected ({head}, {len(names) - keep_last})."
        )
    q = matrix.shape[1]
    full = np.zeros((k, q + keep_last))
    full[:head, :q] = matrix
    full[head:, q:] = np.eye(keep_last)
    shift = np.concatenate([np.asarray(offset, dtype=np.float64), np.zeros(keep_last)])
    # The means move as whole double-double pairs: the offset and the pass-through columns
    # keep their low parts exactly.
    mean_hi = full.T @ state.mean + shift
    mean_lo = full.T @ state.mean_lo
    if isinstance(state, MomentState):
        return MomentState(
            names,
            state.n_rows,
            state.weight_sum,
            mean_hi,
            full.T @ state.comoment @ full,
            mean_lo=mean_lo,
        )
    if isinstance(state, QRState):
        return QRState(
            names,
            state.n_rows,
            state.weight_sum,
            mean_hi,
            _triangular_factor(state.r @ full),
            mean_lo=mean_lo,
        )
    raise InputError(
        f"center(), scale() and standardize() need the cholesky or qr solver; the "
        f"{type(state).__name__} keeps exact sums, which the irrational scale of "
        "these terms would leave inexact."
    )


def _select_exact(state, indices, names):
    if not state.is_finite():
        return ExactState(names, state.n_rows, None, None, None, finite=False)
    (sums, sums_exp), (products, products_exp) = state._sums, state._products
    return ExactState(
        names,
        state.n_rows,
        state._weight,
        (sums[indices], sums_exp),
        (products[np.ix_(indices, indices)], products_exp),
    )


def finish_state(encoder, state):
    """``(state over the design columns, center/scale statistics or None)`` of a pass that read
    ``encoder``'s raw columns.

    Without center/scale factors the raw columns are the design columns and the
    state is returned as is; otherwise it is mapped by :func:`affine` with the
    statistics of the state itself (see :mod:`streamreg.design.reparam`)."""
    design = encoder.design
    if not design.plan.transformed:
        return state, None
    mean = state.mean + state.mean_lo
    matrix, offset, stats = transform_from(
        design, encoder.expansion, mean, state.comoment, state.weight_sum
    )
    targets = len(design.plan.targets)
    return affine(state, matrix, offset, design.state_names, keep_last=targets), stats
