"""One merge for everything that merges: states, accumulations, sandwiches, loss sums.

A mergeable object defines ``__iadd__`` (fold ``other``'s rows into ``self``) and
``copy``; :class:`Mergeable` builds ``merge`` and ``+`` on them once, as river's
statistics do. Partial results of a pass are combined in one fixed binary tree —
pairs of neighbours, level by level (depth ⌈log₂ n⌉) — whatever runs the pass, so a
local fit, a Dask cluster and a recomputed partition all add the same numbers in the
same order and give the same bits.

>>> class Count(Mergeable):
...     def __init__(self, n): self.n = n
...     def copy(self): return Count(self.n)
...     def __iadd__(self, other): self.n += other.n; return self
>>> (Count(2) + Count(3)).n
5
>>> tree_shape = tree_reduce(["a", "b", "c", "d", "e"], lambda x, y: f"({x}{y})")
>>> tree_shape
'(((ab)(cd))e)'
>>> reduce_in_order(iter("abcde"), lambda x, y: f"({x}{y})") == tree_shape
True
"""

from __future__ import annotations

from collections.abc import Callable, Iterable


class Mergeable:
    """``merge``/``+`` from ``copy`` and ``__iadd__`` (define those two)."""

    __slots__ = ()

    def merge(self, other):
        """A new object for the union of the rows of ``self`` and ``other``."""
        out = self.copy()
        out += other
        return out

    def __add__(self, other):
        return self.merge(other)


def tree_reduce(items: list, combine: Callable):
    """``combine`` neighbours pairwise, level by level: the fixed merge tree of every pass."""
    if not items:
        raise ValueError("nothing to reduce")
    while len(items) > 1:
        items = [
            combine(items[i], items[i + 1]) if i + 1 < len(items) else items[i]
            for i in range(0, len(items), 2)
        ]
    return items[0]


def reduce_in_order(items: Iterable, combine: Callable):
    """The same tree as :func:`tree_reduce`, built as the items arrive.

    Subtrees of equal size are combined as soon as both exist (a binary counter),
    so at most ⌈log₂ n⌉ partial results are held at once; the leftovers are then
    combined from the right, which is exactly the level-by-level tree.
    """
    stack: list[tuple[int, object]] = []
    for item in items:
        size, tree = 1, item
        while stack and stack[-1][0] == size:
            left_size, left = stack.pop()
            tree, size = combine(left, tree), size + left_size
        stack.append((size, tree))
    if not stack:
        raise ValueError("nothing to reduce")
    tree = stack.pop()[1]
    while stack:
        tree = combine(stack.pop()[1], tree)
    return tree
