"""The NIST StRD linear-regression datasets as design matrices, with their certified values."""

from __future__ import annotations

import json
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

NIST_DIR = Path(__file__).resolve().parents[1] / "data" / "nist-strd"
NAMES = [
    "Norris",
    "Pontius",
    "NoInt1",
    "NoInt2",
    "Filip",
    "Longley",
    "Wampler1",
    "Wampler2",
    "Wampler3",
    "Wampler4",
    "Wampler5",
]
# Min LRE over the parameters of the exact solution of the float64-rounded data
# (nist-strd/README.md, "What float64 input allows").
CEILING = dict(zip(NAMES, [14.1, 13.5, 14.7, 15.0, 7.6, 14.6, 15.0, 13.2, 15.0, 15.0, 15.0]))
NUMPY_LSTSQ = dict(zip(NAMES, [12.3, 6.3, 14.7, 15.0, 0.0, 10.9, 9.6, 10.4, 9.5, 7.8, 5.8]))


@dataclass
class NistCase:
    name: str
    x: np.ndarray  # design columns without the intercept (n × p)
    y: np.ndarray
    x_text: list  # decimal strings, for exact arithmetic
    y_text: list
    feature_names: list
    fit_intercept: bool
    params: np.ndarray  # certified; intercept first when present
    param_sd: np.ndarray
    residual_sd: float
    r_squared: float


def load(name: str) -> NistCase:
    cert = json.loads((NIST_DIR / "certified.json").read_text())[name]
    lines = (NIST_DIR / cert["file"]).read_text().splitlines()
    first, last = cert["data_lines"]
    rows = [line.split() for line in lines[first - 1 : last]]
    y_text = [r[cert["y_column"]] for r in rows]
    raw_text = [[r[i] for i in cert["x_columns"]] for r in rows]
    powers = cert["x_powers"]
    if powers is not None:
        powers = [q for q in powers if q > 0]
        x = np.column_stack([np.array([float(t[0]) for t in raw_text]) ** q for q in powers])
        names = ["x" if q == 1 else f"x^{q}" for q in powers]
    else:
        x = np.array([[float(v) for v in t] for t in raw_text])
        names = list(cert["x_column_names"])
    return NistCase(
        name=name,
        x=x,
        y=np.array([float(v) for v in y_text]),
        x_text=raw_text,
        y_text=y_text,
        feature_names=names,
        fit_intercept=bool(cert["intercept"]),
        params=np.array(cert["params"]),
        param_sd=np.array(cert["param_sd"]),
        residual_sd=float(cert["residual_sd"]),
        r_squared=float(cert["r_squared"]),
    )


def lre(estimate, certified, cap: float = 15.0) -> float:
    """Min log relative error over entries (log absolute error where certified is 0)."""
    est = np.atleast_1d(np.asarray(estimate, dtype=float))
    cert = np.atleast_1d(np.asarray(certified, dtype=float))
    scores = []
    for e, c in zip(est, cert):
        if not np.isfinite(e):
            scores.append(0.0)
            continue
        err = abs(e - c) / abs(c) if c != 0 else abs(e - c)
        scores.append(cap if err == 0 else float(np.clip(-np.log10(err), 0.0, cap)))
    return min(scores)


def as_fraction(text: str) -> Fraction:
    return Fraction(text)
