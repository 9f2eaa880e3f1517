"""Large matrices in JSON files, compactly: float64 bytes in base64 instead of lists of numbers.

A matrix written as a JSON list costs ~25 bytes a number as text, and ~32 bytes a number as
Python objects while it is built: a model of p = 2000 features was 203 MB on disk and took
1.7 GB of memory to save. A *packed* matrix is an object

``{"encoding": "float64-le-base64", "shape": [k, k], "layout": L, "data": "..."}``

with the little-endian float64 bytes in base64 (~10.7 bytes a number) — exact, NaN and ±inf
included — and, when the matrix is exactly symmetric (``layout: "symmetric"``) or upper
triangular (``layout: "upper"``), only its upper triangle, row by row. It is built straight
from the array, with no Python list in between.

Small matrices stay lists (:func:`should_pack`), so the files of ordinary fits do not change;
a file holding a packed matrix says so with a higher format version (see
:mod:`streamreg.model.serialize`).

>>> import numpy as np
>>> m = np.array([[2.0, 0.5], [0.5, 1.0]])
>>> packed = pack_matrix(m)
>>> packed["layout"], packed["shape"]
('symmetric', [2, 2])
>>> bool(np.array_equal(unpack_matrix(packed, (2, 2), "model", "xtx_inv"), m))
True
"""

from __future__ import annotations

import base64
import binascii

import numpy as np

from ..errors import ModelFormatError

ENCODING = "float64-le-base64"
LAYOUTS = ("full", "symmetric", "upper")
# Matrices with at least this many entries are packed (a 100 × 100 matrix and up).
PACK_MIN_ENTRIES = 10_000


def should_pack(matrix: np.ndarray) -> bool:
    """Whether a matrix is large enough to be written packed."""
    return np.asarray(matrix).size >= PACK_MIN_ENTRIES


def is_packed(value) -> bool:
    return isinstance(value, dict) and value.get("encoding") == ENCODING


def pack_matrix(matrix: np.ndarray) -> dict:
    """The packed form of a 2-D float64 matrix (see the module docstring)."""
    m = np.asarray(matrix, dtype=np.float64)
    if m.ndim != 2:
        raise ValueError(f"expected a 2-D matrix, got shape {m.shape}")
    layout = "full"
    if m.shape[0] == m.shape[1] and m.shape[0] > 1:
        if _equal_with_nan(m, m.T):
            layout = "symmetric"
        elif not np.tril(m, -1).any():
            layout = "upper"
    values = m[np.triu_indices(m.shape[0])] if layout != "full" else m.ravel()
    data = np.ascontiguousarray(values, dtype="<f8").tobytes()
    return {
        "encoding": ENCODING,
        "shape": [int(m.shape[0]), int(m.shape[1])],
        "layout": layout,
        "data": base64.b64encode(data).decode("ascii"),
    }


def unpack_matrix(value, shape: tuple[int, int], where: str, key: str) -> np.ndarray:
    """The matrix of a packed object, checked to have ``shape``; anything else is a
    :class:`ModelFormatError` naming ``key``."""
    bad = ModelFormatError(
        f"{where}: '{key}' is not a packed {shape[0]}×{shape[1]} matrix (encoding {ENCODING})."
    )
    if not is_packed(value) or value.get("layout") not in LAYOUTS:
        raise bad
    if value.get("shape") != [shape[0], shape[1]] or not isinstance(value.get("data"), str):
        raise bad
    try:
        raw = base64.b64decode(value["data"].encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise bad from None
    layout = value["layout"]
    rows, cols = shape
    if layout != "full" and rows != cols:
        raise bad
    count = rows * cols if layout == "full" else rows * (rows + 1) // 2
    if len(raw) != 8 * count:
        raise bad
    values = np.frombuffer(raw, dtype="<f8").astype(np.float64)
    if layout == "full":
        return values.reshape(rows, cols)
    out = np.zeros((rows, rows))
    upper = np.triu_indices(rows)
    out[upper] = values
    if layout == "symmetric":
        out.T[upper] = values
    return out


def _equal_with_nan(a: np.ndarray, b: np.ndarray) -> bool:
    return bool(np.array_equal(a, b, equal_nan=True))
