"""Exact accumulation of digit products: int64 lattice levels with carries, then Python integers.

The digit products of :mod:`streamreg.solvers.exact.products` are exact int64 numbers on a
lattice of powers of two; :class:`LatticeSums` adds them level by level and carries before int64
could overflow. :class:`IntegerMatrix` multiplies an exact integer matrix by float vectors
without rounding (exact residuals for the iterative refinement of the solve).
"""

from __future__ import annotations

import numpy as np

from .dyadic import zeros
from .slicing import digit_products, split, top_exponents

# Lattice levels above the top slice, so that carries out of level 0 have room.
_GUARD = 2


class _Levels:
    """Exact sums of integer-valued float blocks placed on a lattice of binary exponents.

    A block at level λ adds ``G · 2**(base_u[a] + base_v[b] − λ·D)`` to entry (a, b).
    Each level is an int64 plane; carries keep every plane below the top one in
    [0, 2**D), so Python integers are built only once, in :meth:`result`.
    """

    def __init__(self, base_u, base_v, digit_bits):
        self.base_u = np.asarray(base_u, dtype=np.int64)
        self.base_v = np.asarray(base_v, dtype=np.int64)
        self.bits = int(digit_bits)
        self.planes = np.zeros((_GUARD + 8, len(self.base_u), len(self.base_v)), dtype=np.int64)

    def add(self, g, blocks_u, blocks_v):
        """Add the int64 blocks ``g[positions_u, positions_v]`` (each entry below 2**59 in
        magnitude)."""
        if not blocks_u or not blocks_v:
            return
        deepest = _GUARD + max(b[0] for b in blocks_u) + max(b[0] for b in blocks_v)
        if deepest >= self.planes.shape[0]:
            extra = np.zeros(
                (deepest + 1 - self.planes.shape[0], *self.planes.shape[1:]), dtype=np.int64
            )
            self.planes = np.concatenate([self.planes, extra])
        # All of g's right-hand digit columns at once: their owners and lattice levels.
        columns = np.concatenate([_positions(where) for _, _, where in blocks_v])
        owners_v = np.concatenate([owners for _, owners, _ in blocks_v])
        levels_v = np.concatenate([np.full(len(owners), level) for level, owners, _ in blocks_v])
        size_u, size_v = self.planes.shape[1:]
        flat = self.planes.reshape(-1)
        for count, (level_u, owners_u, where_u) in enumerate(blocks_u, start=1):
            # One left slice: each target (level, a, b) is hit at most once, so += is exact.
            target = (
                (_GUARD + level_u + levels_v)[None, :] * size_u + owners_u[:, None]
            ) * size_v + owners_v[None, :]
            flat[target] += g[where_u][:, columns]
            if count % 8 == 0:  # 8 additions of < 2**59 each stay below 2**63
                self._carry()
        self._carry()

    def _carry(self):
        planes, bits = self.planes, self.bits
        for level in range(len(planes) - 1, 0, -1):
            carry = planes[level] >> bits
            planes[level] -= carry << bits
            planes[level - 1] += carry

    def result(self):
        """The sums as one dyadic matrix (object ints, common exponent)."""
        self._carry()
        planes, bits = self.planes, self.bits
        shape = planes.shape[1:]
        occupied = np.flatnonzero(planes.reshape(len(planes), -1).any(axis=1))
        if occupied.size == 0:
            return zeros(shape), 0
        first, last = int(occupied[0]), int(occupied[-1])
        acc = planes[first].astype(object)
        # Planes below the first are in [0, 2**bits): pack several per int64 word.
        per_word = max(1, 62 // bits)
        level = first + 1
        while level <= last:
            count = min(per_word, last + 1 - level)
            word = planes[level].copy()
            for i in range(1, count):
                word = (word << bits) | planes[level + i]
            acc = (acc << (count * bits)) + word.astype(object)
            level += count
        exponents = self.base_u[:, None] + self.base_v[None, :] - (last - _GUARD) * bits
        nonzero = acc != 0
        if not nonzero.any():
            return zeros(shape), 0
        low = int(exponents[nonzero].min())
        return acc << np.where(nonzero, exponents - low, 0), low


def _prefix(where):
    """Length of the leading run 0, 1, 2, … in ``where``."""
    run = np.flatnonzero(where != np.arange(where.size))
    return int(run[0]) if run.size else int(where.size)


def _positions(where):
    return np.arange(where.start, where.stop) if isinstance(where, slice) else where


class _Layout:
    """Positions of (slice, column) digit columns in a running accumulator, in order of first
    use."""

    def __init__(self, columns):
        self.columns = columns
        self.table: list[np.ndarray] = []
        self.steps: list[int] = []
        self.owners: list[int] = []

    def __len__(self):
        return len(self.steps)

    def positions(self, blocks):
        """Accumulator positions of the digit columns of ``blocks``; a slice when they are 0…m−1."""
        found = []
        for step, owners, _ in blocks:
            while len(self.table) <= step:
                self.table.append(np.full(self.columns, -1, dtype=np.int64))
            row = self.table[step]
            where = row[owners]
            new = where < 0
            if new.any():
                fresh = np.arange(len(self.steps), len(self.steps) + int(new.sum()))
                row[owners[new]] = fresh
                where[new] = fresh
                self.steps.extend([step] * fresh.size)
                self.owners.extend(owners[new].tolist())
            found.append(where)
        where = np.concatenate(found) if found else np.empty(0, dtype=np.int64)
        if (
            where.size
            and where[0] == 0
            and where[-1] == where.size - 1
            and (np.diff(where) == 1).all()
        ):
            return slice(0, where.size)
        return where

    def blocks(self):
        """The accumulator's columns grouped by slice, as blocks for :class:`_Levels`."""
        steps = np.array(self.steps, dtype=np.int64)
        owners = np.array(self.owners, dtype=np.int64)
        out = []
        for step in np.unique(steps):
            where = np.flatnonzero(steps == step)
            out.append((int(step), owners[where], where))
        return out


class LatticeSums:
    """Running exact sums of digit products ``SᵤᵀSᵥ`` over the sub-batches of one batch.

    Each product is added, as int64, at the positions of its (slice, column)
    digit columns — one vectorized addition per sub-batch; every 64 products the
    sums are moved to the lattice levels of a :class:`_Levels`.
    """

    _FLUSH_EVERY = 64  # 64 sums of entries ≤ 2**53 stay below 2**59

    def __init__(self, base_u, base_v, digit_bits, *, symmetric=False):
        self.levels = _Levels(base_u, base_v, digit_bits)
        self.layout_u = _Layout(len(base_u))
        self.layout_v = self.layout_u if symmetric else _Layout(len(base_v))
        self.acc = np.zeros((0, 0), dtype=np.int64)
        self.count = 0
        self._last = (None, None)  # the last sub-batch's blocks and where they went

    def _placement(self, blocks_u, blocks_v):
        """Accumulator positions of the blocks' digit columns and the lengths of their leading
        runs 0, 1, …; remembered, as consecutive sub-batches usually cut the same digit columns.
        """
        key = (
            tuple((step, owners.tobytes()) for step, owners, _ in blocks_u),
            tuple((step, owners.tobytes()) for step, owners, _ in blocks_v),
        )
        if key != self._last[0]:
            pu = _positions(self.layout_u.positions(blocks_u))
            pv = _positions(self.layout_v.positions(blocks_v))
            self._last = (key, (pu, pv, _prefix(pu), _prefix(pv)))
        return self._last[1]

    def add(self, g, blocks_u, blocks_v):
        pu, pv, a, b = self._placement(blocks_u, blocks_v)
        shape = (len(self.layout_u), len(self.layout_v))
        if self.acc.shape != shape:
            grown = np.zeros(shape, dtype=np.int64)
            grown[: self.acc.shape[0], : self.acc.shape[1]] = self.acc
            self.acc = grown
        g = g.astype(np.int64)  # exact: every entry is an integer ≤ 2**53
        # Sub-batches usually repeat the same dense digit columns (a prefix 0…p−1 of the
        # accumulator): add that block by slicing and only the sparse-tail part by index.
        self.acc[:a, :b] += g[:a, :b]
        if a < pu.size:
            self.acc[np.ix_(pu[a:], pv)] += g[a:]
        if b < pv.size:
            self.acc[np.ix_(pu[:a], pv[b:])] += g[:a, b:]
        self.count += 1
        if self.count >= self._FLUSH_EVERY:
            self._flush()

    def _flush(self):
        if self.count:
            self.levels.add(self.acc, self.layout_u.blocks(), self.layout_v.blocks())
            self.acc[:] = 0
            self.count = 0

    def result(self):
        self._flush()
        return self.levels.result()


class IntegerMatrix:
    """An integer matrix cut into float limbs, for exact products with float matrices."""

    def __init__(self, ints: np.ndarray):
        m = ints.shape[1]
        self.shape = ints.shape
        self.beta = (52 - max(m - 1, 0).bit_length()) // 2
        bits = self.beta + 1
        magnitude = np.abs(ints)
        negative = np.asarray(ints < 0, dtype=bool)
        width = max((int(v).bit_length() for v in magnitude.flat), default=0)
        count = max(1, -(-width // bits))
        mask = (1 << bits) - 1
        limbs = np.empty((m, count * ints.shape[0]), order="F")
        for t in range(count):
            limb = ((magnitude >> (t * bits)) & mask).astype(np.float64)
            limb[negative] *= -1.0
            limbs[:, t * ints.shape[0] : (t + 1) * ints.shape[0]] = limb.T
        self.limbs = limbs
        rows = np.arange(ints.shape[0])
        self.blocks = [
            (count - 1 - t, rows, slice(t * ints.shape[0], (t + 1) * ints.shape[0]))
            for t in range(count)
        ]
        self.base = np.full(ints.shape[0], (count - 1) * bits, dtype=np.int64)

    def times(self, y: np.ndarray):
        """The exact product with the float matrix ``y``, as a dyadic matrix."""
        y = np.array(y, dtype=np.float64, order="F")
        bound = np.abs(y).max(axis=0)
        top = top_exponents(bound)
        levels = _Levels(self.base, top - self.beta, self.beta + 1)
        digits, stop, blocks, tail = split(
            y,
            np.flatnonzero(bound > 0),
            top,
            self.beta,
            np.empty((y.shape[0], 4 * y.shape[1] + 1), order="F"),
            0,
            np.empty(y.shape, order="F"),
        )
        if blocks:
            g, blocks_u, blocks_v = digit_products(
                self.limbs,
                self.limbs.shape[1],
                self.blocks,
                None,
                digits,
                stop,
                blocks,
                tail,
                y.shape[0],
                False,
            )
            levels.add(g.astype(np.int64), blocks_u, blocks_v)
        return levels.result()
