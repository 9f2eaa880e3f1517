"""Test helpers: fit with streamreg, then walk the rows in blocks as the second pass will.

Each block yields what a residual pass computes per batch — the kept features minus
their means (with an intercept), the residuals, the whitened residuals ``√w·e`` and the
weights — so accumulators are tested on exactly the inputs the pass will feed them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import statsmodels.api as sm

import streamreg
from streamreg.model.diagnostics.residuals import residuals, whiten


@dataclass
class Block:
    rows: slice
    x_centered: np.ndarray  # kept features, minus their means with an intercept
    resid: np.ndarray
    wresid: np.ndarray
    weights: np.ndarray | None


def fit(x, y, weights=None, fit_intercept=True, solver="cholesky", **kwargs):
    """A streamreg model of numpy data (features x0, x1, …)."""
    return streamreg.fit(
        np.asarray(x, dtype=float),
        np.asarray(y, dtype=float),
        weight=weights,
        fit_intercept=fit_intercept,
        solver=solver,
        **kwargs,
    )


def statsmodels_fit(x, y, weights=None, fit_intercept=True, names=None, **fit_kw):
    """The same regression in statsmodels (columns named as streamreg names its parameters)."""
    x = pd.DataFrame(
        np.asarray(x, dtype=float), columns=names or [f"x{j}" for j in range(np.shape(x)[1])]
    )
    if fit_intercept:
        x.insert(0, "Intercept", 1.0)
    y = np.asarray(y, dtype=float)
    model = (
        sm.OLS(y, x) if weights is None else sm.WLS(y, x, weights=np.asarray(weights, dtype=float))
    )
    return model.fit(**fit_kw)


def split_points(n: int, count: int) -> list[slice]:
    """``count`` contiguous blocks of unequal sizes covering ``range(n)`` (some may be tiny)."""
    cuts = np.unique(np.round(n * (np.arange(count + 1) / count) ** 1.5).astype(int))
    return [slice(int(a), int(b)) for a, b in zip(cuts[:-1], cuts[1:])]


def blocks(model, x, y, weights=None, count=1, compensated=False):
    """The residual pass over ``count`` ordered blocks of the data."""
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    kept = ~np.isnan(model.coef_)
    beta = model.coef_[kept]
    p = len(model.coef_)
    state = model.state_
    if model.fit_intercept:
        index = np.r_[np.flatnonzero(kept), p]
        mean, mean_lo = state.mean[index], state.mean_lo[index]
    else:
        mean = mean_lo = None
    out = []
    for rows in split_points(len(y), count):
        xb = x[rows][:, kept]
        w = None if weights is None else np.asarray(weights, dtype=float)[rows]
        e = residuals(xb, y[rows], beta, mean=mean, mean_lo=mean_lo, compensated=compensated)
        xc = xb if mean is None else (xb - mean[:-1]) - mean_lo[:-1]
        out.append(Block(rows, xc, e, whiten(e, w), w))
    return out


def fold(parts, how: str):
    """Merge accumulators in order: a left fold, or a balanced pairwise tree."""
    parts = list(parts)
    if how == "left":
        total = parts[0]
        for part in parts[1:]:
            total = total + part
        return total
    while len(parts) > 1:
        paired = [parts[i] + parts[i + 1] for i in range(0, len(parts) - 1, 2)]
        if len(parts) % 2:
            paired.append(parts[-1])
        parts = paired
    return parts[0]
