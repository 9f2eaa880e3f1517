"""Exact dyadic numbers: arrays of Python integers times a power of two.

An exact array is a pair (object array of Python ints, exponent): value = ints · 2**exponent.
The canonical form has the common power of two divided out, so equal values have equal pairs.
"""

from __future__ import annotations

import math
from fractions import Fraction
from functools import reduce
from operator import or_

import numpy as np

# An exact array is a pair (object array of Python ints, exponent): value = ints · 2**exponent.
# The canonical form has the common power of two divided out, so equal values have equal pairs.


def zeros(shape) -> np.ndarray:
    return np.zeros(shape, dtype=object)


def object_array(values) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


def canonical(ints: np.ndarray, exponent: int):
    ints = np.asarray(ints, dtype=object)
    bits = reduce(or_, ints.flat, 0)
    if bits == 0:
        return zeros(ints.shape), 0
    shift = (bits & -bits).bit_length() - 1
    return (ints >> shift if shift else ints), int(exponent) + shift


def canonical_scalar(value: int, exponent: int):
    value = int(value)
    if value == 0:
        return 0, 0
    shift = (value & -value).bit_length() - 1
    return value >> shift, int(exponent) + shift


def add(a, b):
    (ia, ea), (ib, eb) = a, b
    e = min(ea, eb)
    return canonical((ia << (ea - e)) + (ib << (eb - e)), e)


def add_scalar(a, b):
    (ia, ea), (ib, eb) = a, b
    e = min(ea, eb)
    return canonical_scalar((ia << (ea - e)) + (ib << (eb - e)), e)


def fraction(value: int, exponent: int) -> Fraction:
    return Fraction(value << exponent) if exponent >= 0 else Fraction(value, 1 << -exponent)


def to_float(value: int, exponent: int = 0, denominator: int = 1) -> float:
    """``value · 2**exponent / denominator`` rounded once (Python's int division rounds
    correctly)."""
    if value == 0:
        return 0.0
    if exponent >= 0:
        value <<= exponent
    else:
        denominator <<= -exponent
    try:
        return value / denominator
    except OverflowError:
        return math.inf if (value > 0) == (denominator > 0) else -math.inf


def rational_to_float(value: Fraction) -> float:
    """A fraction rounded once to float64, ±inf beyond its range."""
    return to_float(value.numerator, 0, value.denominator)


def matrix_to_floats(ints: np.ndarray, exponents, denominator: int = 1) -> np.ndarray:
    exponents = np.broadcast_to(np.asarray(exponents, dtype=np.int64), ints.shape)
    out = np.empty(ints.shape)
    for index, value in np.ndenumerate(ints):
        out[index] = to_float(value, int(exponents[index]), denominator)
    return out


_bit_length = np.frompyfunc(int.bit_length, 1, 1)


def approximate_floats(ints: np.ndarray, exponents) -> np.ndarray:
    """``ints · 2**exponents`` to within an ulp (not always correctly rounded), vectorized.

    For working values (scaled systems, residuals); results are rounded once with
    :func:`to_float` instead.
    """
    ints = np.asarray(ints, dtype=object)
    if ints.size == 0:
        return np.zeros(ints.shape)
    lengths = _bit_length(np.abs(ints)).astype(np.int64)
    shift = np.maximum(lengths - 62, 0)
    mantissas = (ints >> shift).astype(np.float64)
    with np.errstate(over="ignore", under="ignore"):
        return np.ldexp(mantissas, np.asarray(exponents, dtype=np.int64) + shift)


def parse_int(text) -> int:
    if not isinstance(text, str):
        raise TypeError(f"expected a string, got {text!r}")
    return int(text, 0)


def is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
