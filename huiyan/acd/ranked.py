"""A sorted set with rank queries (how many keys are smaller), for callers' exact positions in line."""

from __future__ import annotations

from bisect import bisect_left, insort
from typing import Any

__all__ = ["RankedSet"]

_LOAD = 512  # keys per block, at most 2 * _LOAD


class RankedSet:
    """Unique, mutually comparable keys kept sorted in blocks (the layout of `sortedcontainers.SortedList`).

    With n keys and the block size B = 512 fixed:
      - `add`, `remove`: O(log n) to find the block and the slot, plus an O(B) shift inside one block
        (a C memmove of at most 1024 pointers, i.e. a constant);
      - `first`, `pop_first`: O(B) at worst (same shift), usually a few pointer moves;
      - `rank`: O(log n): a Fenwick tree over block sizes gives the keys in the blocks before the one
        holding ``key``, then a bisect inside that block. Splitting or emptying a block discards the
        Fenwick tree; the next `rank` rebuilds it in O(n / B), at most once per B insertions or removals.
    """

    __slots__ = ("_blocks", "_maxes", "_len", "_tree")

    def __init__(self) -> None:
        self._blocks: list[list[Any]] = []
        self._maxes: list[Any] = []
        self._len = 0
        self._tree: list[int] | None = None

    def __len__(self) -> int:
        return self._len

    def __bool__(self) -> bool:
        return self._len > 0

    def __iter__(self):  # type: ignore[no-untyped-def]
        for block in self._blocks:
            yield from block

    def first(self) -> Any:
        """The smallest key; IndexError when empty."""
        return self._blocks[0][0]

    def add(self, key: Any) -> None:
        blocks = self._blocks
        maxes = self._maxes
        self._len += 1
        if not blocks:
            blocks.append([key])
            maxes.append(key)
            self._tree = None
            return
        i = bisect_left(maxes, key)
        if i == len(maxes):  # larger than everything: the common case, a new arrival
            i -= 1
            block = blocks[i]
            block.append(key)
            maxes[i] = key
        else:
            block = blocks[i]
            insort(block, key)
        if len(block) > 2 * _LOAD:
            blocks.insert(i + 1, block[_LOAD:])
            del block[_LOAD:]
            maxes[i] = block[-1]
            maxes.insert(i + 1, blocks[i + 1][-1])
            self._tree = None
        elif self._tree is not None:
            self._tree_add(i, 1)

    def remove(self, key: Any) -> None:
        """Remove ``key``; KeyError if absent."""
        maxes = self._maxes
        i = bisect_left(maxes, key)
        if i == len(maxes):
            raise KeyError(key)
        block = self._blocks[i]
        j = bisect_left(block, key)
        if block[j] != key:
            raise KeyError(key)
        del block[j]
        self._len -= 1
        if not block:
            del self._blocks[i]
            del maxes[i]
            self._tree = None
            return
        if j == len(block):
            maxes[i] = block[-1]
        tree = self._tree
        if tree is not None:  # inlined _tree_add(i, -1): this is on every decision's path
            k = i + 1
            n = len(tree)
            while k < n:
                tree[k] -= 1
                k += k & -k

    def pop_first(self) -> Any:
        block = self._blocks[0]
        key = block[0]
        del block[0]
        self._len -= 1
        if not block:
            del self._blocks[0]
            del self._maxes[0]
            self._tree = None
        elif self._tree is not None:
            self._tree_add(0, -1)
        return key

    def rank(self, key: Any) -> int:
        """How many keys are smaller than ``key`` (``key`` itself need not be present)."""
        maxes = self._maxes
        i = bisect_left(maxes, key)
        if i == len(maxes):
            return self._len
        return self._prefix(i) + bisect_left(self._blocks[i], key)

    # Fenwick tree over block sizes: tree[k] covers blocks (k - lowbit(k), k], 1-based.
    def _build(self) -> list[int]:
        n = len(self._blocks)
        tree = [0] * (n + 1)
        for k, block in enumerate(self._blocks, 1):
            tree[k] += len(block)
            parent = k + (k & -k)
            if parent <= n:
                tree[parent] += tree[k]
        self._tree = tree
        return tree

    def _tree_add(self, i: int, delta: int) -> None:
        tree = self._tree
        assert tree is not None
        k = i + 1
        n = len(tree) - 1
        while k <= n:
            tree[k] += delta
            k += k & -k

    def _prefix(self, i: int) -> int:
        """Keys in blocks 0..i-1."""
        tree = self._tree if self._tree is not None else self._build()
        total = 0
        k = i
        while k > 0:
            total += tree[k]
            k -= k & -k
        return total
