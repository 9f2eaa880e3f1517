"""Error-free slicing of float64 columns into integer digits, and their exact products.

A column scaled by a power of two is cut into digits ``d_s = rint(remainder / u_s)`` on a lattice of
units until the remainder is zero; digit columns of at most β bits over r rows multiply in BLAS
without rounding (see :mod:`streamreg.solvers.exact`). Weighted columns are exact double-doubles
(Dekker's TwoProduct). Values that still have bits after a few slices are cut one by one (sparse
tails).
"""

from __future__ import annotations

import math

import numpy as np

# Once at most this fraction of values has bits left, the rest is cut value by value.
_SPARSE_TAIL = 0.05
# ... and only when a dense slice would cost at least this many multiply-adds (~1 ms of BLAS).
_TAIL_MIN_WORK = 1 << 25
# Products of at least 2^-950 leave a low part that cannot underflow.
_TINY_PRODUCT = 2.0**-950


def top_exponents(bound) -> np.ndarray:
    """``t`` with ``|value| ≤ bound < 2**t`` (0 for a zero bound)."""
    return np.frexp(np.asarray(bound, dtype=np.float64))[1].astype(np.int64)


def take(a, columns):
    """``a[:, columns]``, without a copy when that is every column."""
    return a if columns.size == a.shape[1] else a[:, columns]


def join_tails(a, b):
    if a is None or b is None:
        return a if b is None else b
    return tuple(np.concatenate(pair) for pair in zip(a, b))


def new_digit_buffer(rows, columns):
    buf = np.empty((rows, columns), order="F")
    buf[:, 0] = 1.0
    return buf


def _reserve(buf, used, needed):
    if needed <= buf.shape[1]:
        return buf
    bigger = np.empty((buf.shape[0], max(needed, 2 * buf.shape[1])), order="F")
    bigger[:, :used] = buf[:, :used]
    return bigger


def scale_to_lattice(x, top, beta, out):
    """``x · 2**(β − top)`` per column if every product is exact (IEEE flags no underflow), else
    None.

    Scaled so, column values lie in [−2**β, 2**β]; a nonzero value too small to
    scale exactly would raise the underflow flag, which sends the batch to the
    general path.
    """
    with np.errstate(over="ignore", under="ignore"):
        scale = np.ldexp(1.0, beta - top)
    if not np.isfinite(scale).all() or not scale.all():
        return None
    target = out[: x.shape[0], : x.shape[1]]
    try:
        with np.errstate(under="raise", over="raise"):
            np.multiply(x, scale, out=target)
    except FloatingPointError:
        return None
    return target


def split(x, columns, top, beta, buf, start, scratch, unchecked=0):
    """Error-free split of ``x[:, columns]`` into digit columns (see :func:`split_scaled`)."""
    scaled = scale_to_lattice(x, top, beta, scratch)
    if scaled is not None:
        return split_scaled(take(scaled, columns), columns, beta, buf, start, unchecked=unchecked)
    return split_general(np.array(x, order="F"), columns, top, beta, buf, start)


def split_scaled(scaled, columns, beta, buf, start, first_step=0, unchecked=0):
    """Cut columns already scaled to [−2**β, 2**β] into integer digits of at most β+1 bits.

    Digit s of a column is ``rint`` of what remains, scaled by 2**(s(β+1)); the
    remainder is then at most 1/2 and is scaled up by 2**(β+1), exactly. Columns
    leave as soon as their remainder is zero. Once few values have bits left
    (the smallest entries of a column), the rest is cut value by value into a
    sparse tail. ``scaled`` is overwritten. Returns ``(buf, stop, blocks, tail)``;
    a block ``(s, columns, positions)`` says which digit columns of ``buf`` hold
    digit s of which columns.

    The first ``unchecked`` slices skip those checks (a pass over the remainder each):
    a column that is already finished then gives a column of zero digits, which adds
    nothing to any product, so the sums are the same. :func:`checks_to_skip` learns the
    number from the previous rows of the batch.
    """
    n = scaled.shape[0]
    lift = math.ldexp(1.0, beta + 1)
    blocks = []
    stop = start
    step = first_step
    alive = np.ones(columns.size, dtype=bool) if unchecked else np.any(scaled, axis=0)
    while True:
        if not alive.all():
            scaled, columns = scaled[:, alive], columns[alive]
        if not columns.size:
            return buf, stop, blocks, None
        buf = _reserve(buf, stop, stop + columns.size)
        digits = buf[:n, stop : stop + columns.size]
        np.rint(scaled, out=digits)
        blocks.append((step, columns, slice(stop, stop + columns.size)))
        stop += columns.size
        step += 1
        if len(blocks) > unchecked:
            nonzero = scaled != digits  # one pass; counting and reducing booleans is cheap
            left = np.count_nonzero(nonzero)
            if not left:  # the usual last slice: no remainder to form
                return buf, stop, blocks, None
        scaled -= digits
        scaled *= lift
        if len(blocks) <= unchecked:
            continue
        if left <= _SPARSE_TAIL * scaled.size and _tail_pays(n, columns.size, stop):
            return buf, stop, blocks, _sparse_tail(scaled, None, columns, step, lift)
        alive = nonzero.any(axis=0)


def checks_to_skip(blocks) -> int:
    """How many slices the next rows of a batch may cut without checks (see
    :func:`split_scaled`): all but the last, when every column took as many slices here."""
    if len(blocks) < 2 or any(b[1].size != blocks[0][1].size for b in blocks):
        return 0
    return len(blocks) - 1


def split_scaled_pair(high, low, columns, beta, buf, start):
    """:func:`split_scaled` for columns held exactly as ``high + low`` (a double-double).

    The digit is ``rint(high)``; ``high − digit`` is exact and at most 1/2, and
    Knuth's TwoSum renormalizes it with ``low`` without error. ``low`` is below
    half an ulp of ``high``, so even a tie broken the wrong way leaves every later
    digit within 2**β. Once every remainder fits in one double the plain split
    takes over. Both arrays are overwritten.
    """
    n = high.shape[0]
    lift = math.ldexp(1.0, beta + 1)
    blocks = []
    stop = start
    step = 0
    alive = np.any(high, axis=0)  # high = fl(high + low) is 0 only if both are
    total, back = np.empty_like(high), np.empty_like(high)
    while True:
        if not alive.all():
            high, low, columns = high[:, alive], low[:, alive], columns[alive]
            total, back = total[:, alive], back[:, alive]
        if not columns.size:
            return buf, stop, blocks, None
        buf = _reserve(buf, stop, stop + columns.size)
        digits = buf[:n, stop : stop + columns.size]
        np.rint(high, out=digits)
        high -= digits
        # TwoSum in place: total + (high − (total − back)) + (low − back) = high + low.
        np.add(high, low, out=total)
        np.subtract(total, high, out=back)
        low -= back
        np.subtract(total, back, out=back)
        high -= back
        low += high
        high, total = total, high
        high *= lift
        low *= lift
        blocks.append((step, columns, slice(stop, stop + columns.size)))
        stop += columns.size
        step += 1
        if not np.count_nonzero(low.T):
            buf, stop, more, tail = split_scaled(high, columns, beta, buf, stop, first_step=step)
            return buf, stop, blocks + more, tail
        left = np.count_nonzero(high.T)
        if left <= _SPARSE_TAIL * high.size and _tail_pays(n, columns.size, stop):
            return buf, stop, blocks, _sparse_tail(high, low, columns, step, lift)
        alive = np.any(high, axis=0)


def _tail_pays(rows, columns, digit_columns):
    """Whether another dense slice would cost more BLAS time than a sparse tail's fixed overhead."""
    return rows * columns * digit_columns >= _TAIL_MIN_WORK


def two_sum(a, b):
    """``(s, e)`` with ``s = fl(a + b)`` and ``a + b = s + e`` exactly (Knuth)."""
    s = a + b
    back = s - a
    return s, (a - (s - back)) + (b - back)


def _sparse_tail(high, low, columns, step, lift):
    """Cut the few values still nonzero, one by one: ``(steps, owners, rows, digits)``."""
    cols, rows = np.divmod(np.flatnonzero(high.T), high.shape[0])  # high is column-major
    values = high[rows, cols]
    lows = None if low is None else low[rows, cols]
    owners = columns[cols]
    parts = []
    while values.size:
        digits = np.rint(values)
        values = values - digits
        if lows is not None:
            values, lows = two_sum(values, lows)
            lows = lows * lift
        values = values * lift
        used = digits != 0
        parts.append((np.full(int(used.sum()), step), owners[used], rows[used], digits[used]))
        alive = values != 0
        if not alive.all():
            values, owners, rows = values[alive], owners[alive], rows[alive]
            lows = None if lows is None else lows[alive]
        step += 1
    return tuple(np.concatenate(p) for p in zip(*parts))


def digit_products(
    left, stop_u, blocks_u, tail_u, right, stop_v, blocks_v, tail_v, rows, symmetric
):
    """``[Sᵤ Lᵤ]ᵀ[Sᵥ Lᵥ]`` for dense digit columns S and sparse tails L, and its blocks.

    A tail touches few rows, so its products are dense BLAS products over those
    rows only; like every digit product they are exact.
    """
    su = left[:rows, :stop_u]
    sv = su if symmetric else right[:rows, :stop_v]
    g = su.T @ sv
    if tail_u is None and tail_v is None:
        return g, blocks_u, blocks_v
    lu, at_u, more_u = _tail_matrix(tail_u, stop_u)
    lv, at_v, more_v = (lu, at_u, more_u) if symmetric else _tail_matrix(tail_v, stop_v)
    bottom_left = lu.T @ sv[at_u]
    top_right = bottom_left.T if symmetric else (lv.T @ su[at_v]).T
    corner = lu.T @ (lu if symmetric else _tail_rows(tail_v, lv.shape[1], at_u))
    full = np.block([[g, top_right], [bottom_left, corner]])
    return full, [*blocks_u, *more_u], [*blocks_v, *more_v]


def _tail_keys(tail):
    steps, owners, _, _ = tail
    width = int(owners.max()) + 1
    keys, column = np.unique(steps * width + owners, return_inverse=True)
    return keys, column.reshape(-1), width


def _tail_matrix(tail, offset):
    """A tail as a dense matrix over the rows it touches: ``(matrix, rows, blocks)``.

    One column per (slice, owner), ordered by slice, so each slice is a block of
    positions starting at ``offset``.
    """
    if tail is None:
        return np.zeros((0, 0)), np.zeros(0, dtype=np.int64), []
    steps, owners, where, digits = tail
    keys, column, width = _tail_keys(tail)
    rows, row = np.unique(where, return_inverse=True)
    matrix = np.zeros((rows.size, keys.size))
    matrix[row.reshape(-1), column] = digits
    key_steps, key_owners = np.divmod(keys, width)
    blocks = []
    for s in np.unique(key_steps):
        at = np.flatnonzero(key_steps == s)
        blocks.append(
            (int(s), key_owners[at], slice(offset + int(at[0]), offset + int(at[-1]) + 1))
        )
    return matrix, rows, blocks


def _tail_rows(tail, columns, rows):
    """The tail's matrix restricted to (and ordered by) the given rows."""
    out = np.zeros((rows.size, columns))
    if tail is None or not rows.size:
        return out
    _, _, where, digits = tail
    _, column, _ = _tail_keys(tail)
    place = np.searchsorted(rows, where)
    hit = (place < rows.size) & (rows[np.minimum(place, rows.size - 1)] == where)
    out[place[hit], column[hit]] = digits[hit]
    return out


def split_general(x, columns, top, beta, buf, start, expo=None):
    """The split of :func:`split_scaled` for values ``x · 2**expo`` of any magnitude.

    Column j is cut on units 2**(top[j] − β − s(β+1)) by scaling each value with
    ``ldexp`` on its own mantissa and exponent, which is exact for every finite
    double; slower, and used only when a single scaling per column would not be
    exact. ``x`` (and ``expo``) are overwritten.
    """
    n = x.shape[0]
    if columns.size < x.shape[1]:
        x = x[:, columns]
        expo = None if expo is None else expo[:, columns]
    if expo is None:
        x, expo = np.frexp(x)
    expo = expo.astype(np.int64)
    blocks = []
    stop = start
    step = 0
    while columns.size:
        unit = top[columns] - beta - step * (beta + 1)
        buf = _reserve(buf, stop, stop + columns.size)
        digits = buf[:n, stop : stop + columns.size]
        shift = expo - unit
        np.ldexp(x, shift, out=digits)
        np.rint(digits, out=digits)
        x -= np.ldexp(digits, -shift)
        blocks.append((step, columns, slice(stop, stop + columns.size)))
        stop += columns.size
        alive = np.any(x, axis=0)
        if not alive.all():
            x, columns, expo = x[:, alive], columns[alive], expo[:, alive]
        step += 1
    return buf, stop, blocks, None


def _veltkamp(a):
    c = 134217729.0 * a  # 2^27 + 1
    high = c - (c - a)
    return high, a - high


def _two_product(a, b):
    """``(p, e)`` with ``p = fl(a·b)`` and ``a·b = p + e`` exactly (Dekker 1971; no FMA)."""
    p = a * b
    a_high, a_low = _veltkamp(a)
    b_high, b_low = _veltkamp(b)
    e = ((a_high * b_high - p) + a_high * b_low + a_low * b_high) + a_low * b_low
    return p, e


def weighted_scaled(w_scaled, z_scaled):
    """``(high, low)`` with ``high + low = w'·z'`` exactly, or None if a low part could underflow.

    ``w' = w·2**-top_w ≤ 1`` and ``z'`` are the scaled columns (≤ 2**β), so the
    product is ``w·z`` on the lattice of ``top_w + top_z`` and cannot overflow;
    Dekker's product is exact unless a nonzero product is below about 2**-950.
    """
    n, k = z_scaled.shape
    high, low = _two_product(w_scaled[:, None], z_scaled)
    tiny = np.abs(high) < _TINY_PRODUCT
    if tiny.any() and (tiny & (w_scaled[:, None] != 0) & (z_scaled != 0)).any():
        return None
    return high, low


def weighted_columns(w, z):
    """``[h | w | e]`` with ``h + e = w·z``, as mantissas with per-value exponents (exact for any
    input)."""
    n, k = z.shape
    u = np.empty((n, 2 * k + 1), order="F")
    mw, ew = np.frexp(w)
    mz, ez = np.frexp(z)
    high, low = _two_product(mw[:, None], mz)
    expo = np.empty((n, 2 * k + 1), dtype=np.int64)
    expo[:, :k] = ew[:, None] + ez
    expo[:, k] = ew
    expo[:, k + 1 :] = expo[:, :k]
    u[:, :k], u[:, k], u[:, k + 1 :] = high, mw, low
    return u, expo
