"""How the scikit-learn estimators name the columns of in-memory inputs (X, y, weights)."""

from __future__ import annotations

import numpy as np


def _several_targets(y) -> bool:
    """A 2-D ``y`` with more than one column (``np.asarray``, not ``np.ndim``: array-likes that
    refuse numpy's function protocol still convert)."""
    shape = getattr(y, "shape", None)
    if shape is None:
        shape = np.asarray(y).shape
    return len(shape) == 2 and shape[1] > 1


def _string_columns(X):
    columns = getattr(X, "columns", None)
    if columns is None:
        return None
    names = list(columns)
    if names and all(isinstance(c, str) for c in names):
        return np.asarray(names, dtype=object)
    return None


def _engine_names(feature_names, p: int) -> tuple[str, ...]:
    """The DataFrame's column names when they are usable as distinct names, else x0, x1, …"""
    if feature_names is not None:
        names = [str(n) for n in feature_names]
        if len(set(names)) == p and all(names):
            return tuple(names)
    return tuple(f"x{j}" for j in range(p))


def _fresh(name: str, taken) -> str:
    taken = set(taken)
    while name in taken:
        name += "_"
    return name
