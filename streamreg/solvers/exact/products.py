"""Error-free batch sums: slicing a float64 batch into digits whose BLAS products cannot round.

See :mod:`streamreg.solvers.exact` for the method (Ozaki, Ogita, Oishi & Rump 2012).
"""

from __future__ import annotations

import math

import numpy as np

from .lattice import LatticeSums
from .slicing import (
    checks_to_skip,
    digit_products,
    join_tails,
    new_digit_buffer,
    scale_to_lattice,
    split,
    split_general,
    split_scaled,
    split_scaled_pair,
    take,
    top_exponents,
    weighted_columns,
    weighted_scaled,
)

# Rows per error-free product: few enough that β (the bits per slice) stays large and the
# digit matrix stays in cache, enough that BLAS and numpy calls are not dominated by overhead.
_MIN_ROWS, _MAX_ROWS = 1 << 11, 1 << 13
_DIGITS_PER_PRODUCT = 1 << 19


def _digit_bits(rows: int) -> int:
    """β: digits of β+1 bits keep any sum of ``rows`` digit products below 2^53."""
    return (53 - max(rows - 1, 0).bit_length()) // 2


def _rows_per_product(digit_columns: int) -> int:
    rows = max(1, _DIGITS_PER_PRODUCT // max(digit_columns, 1))
    return int(min(_MAX_ROWS, max(_MIN_ROWS, 1 << (rows.bit_length() - 1))))


def batch_sums(z, w, column_max):
    """Exact (Σw, Σwz, Σwzzᵀ) of a finite batch, each as a dyadic (ints, exponent)."""
    n, k = z.shape
    rows = _rows_per_product(k)
    beta = _digit_bits(min(n, rows))
    top_z = top_exponents(column_max)
    live_z = np.flatnonzero(column_max > 0)
    base = np.append(top_z - beta, 0)  # the last column is ones: unit 1 at level 0
    ones_block = (0, np.array([k]), slice(0, 1))
    chunk = min(n, rows)
    right = new_digit_buffer(chunk, 4 * k + 1)
    scratch = np.empty((chunk, k), order="F")
    if w is None:
        sums = LatticeSums(base, base, beta + 1, symmetric=True)
        unchecked = 0
        for start in range(0, n, rows):
            zs = z[start : start + rows]
            right, stop, blocks, tail = split(zs, live_z, top_z, beta, right, 1, scratch, unchecked)
            unchecked = checks_to_skip(blocks)
            blocks = [ones_block, *blocks]
            sums.add(
                *digit_products(
                    right, stop, blocks, tail, right, stop, blocks, tail, zs.shape[0], True
                )
            )
        r, e = sums.result()
        return (r[k, k], e), (r[:k, k], e), (r[:k, :k], e)

    # Left factor: w·z and w; right factor: z and 1. Owners of the left factor are
    # w·z (0…k−1, one lattice per column), w (k), and — on the general path only,
    # where the low parts of w·z are split on their own lattice — those low parts (k+1…2k).
    w_max = float(w.max())
    top_w = int(top_exponents(w_max))
    top_wz = top_z + top_w  # |w·z| < 2**(top_w + top_z)
    top_u = np.concatenate([top_wz, [top_w], top_wz - 53])
    live_w = np.array([k] if w_max > 0 else [], dtype=np.int64)
    sums = LatticeSums(top_u - beta, base, beta + 1)
    left = new_digit_buffer(chunk, 6 * k + 2)
    w_buffer = np.empty((chunk, 1), order="F")
    for start in range(0, n, rows):
        zs, ws = z[start : start + rows], w[start : start + rows]
        m = zs.shape[0]
        scaled = scale_to_lattice(zs, top_z, beta, scratch)
        w_scaled = (
            None
            if scaled is None
            else scale_to_lattice(ws[:, None], np.array([top_w]), 0, w_buffer)
        )
        product = None if w_scaled is None else weighted_scaled(w_scaled[:, 0], scaled)
        if product is not None:
            high, low_part = product
            w_scaled *= math.ldexp(1.0, beta)
            left, stop_u, blocks_u, tail_w = split_scaled(
                w_scaled[:, : live_w.size], live_w, beta, left, 0
            )
            left, stop_u, blocks_wz, tail_u = split_scaled_pair(
                take(high, live_z), take(low_part, live_z), live_z, beta, left, stop_u
            )
            blocks_u += blocks_wz
            tail_u = join_tails(tail_w, tail_u)
            right, stop_v, blocks_v, tail_v = split_scaled(
                take(scaled, live_z), live_z, beta, right, 1
            )
        else:
            u, expo = weighted_columns(ws, zs)
            columns = np.concatenate([live_z, live_w, live_z + k + 1])
            left, stop_u, blocks_u, tail_u = split_general(u, columns, top_u, beta, left, 0, expo)
            right, stop_v, blocks_v, tail_v = split_general(
                np.array(zs, order="F"), live_z, top_z, beta, right, 1
            )
        sums.add(
            *digit_products(
                left,
                stop_u,
                blocks_u,
                tail_u,
                right,
                stop_v,
                [ones_block, *blocks_v],
                tail_v,
                m,
                False,
            )
        )
    r, e = sums.result()
    products = r[:k, :k] + r[k + 1 :, :k]
    column_sums = r[:k, k] + r[k + 1 :, k]
    return (r[k, k], e), (column_sums, e), (products, e)
