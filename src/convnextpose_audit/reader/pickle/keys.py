"""Bounded hashing of dict keys and set members built from a pickle.

Python hashes a tuple by hashing every element, recursively and without caching,
so a tuple DAG shared through the memo (60 levels, 1.4 kB) costs 2**60 steps to
hash, and one nested 500,000 deep overflows the C stack. An int is hashed digit by
digit, uncached, so one memoized million-digit int used as a key a million times
costs 10**12 steps. Integers are hashed predictably, so crafted ones
(``k * (2**61 - 1)``) all collide and make every insert quadratic. Before anything
hashes a key, :class:`KeyGuard` measures its cost (an int by its digits; a tuple or
frozenset by its expanded size, shared nodes counted every time they are reached,
as hashing reaches them) and its depth, in one linear pass over distinct nodes,
and charges the cost to the file's meter; it also bounds how many distinct keys
of one container share a hash value.
"""

from __future__ import annotations

from typing import Any

from ...errors import LimitExceeded
from ..limits import Limits
from ..meter import Meter

_ATOMS = (str, int, float, bool, bytes, complex, type(None))
_DIGIT_BITS = 30  # CPython stores ints in 30-bit digits; hashing and comparing visit each one


def atom_cost(value: Any) -> int:
    """Steps to hash or compare an atom: one, or one per 30-bit digit of an int."""
    return 1 + value.bit_length() // _DIGIT_BITS if type(value) is int else 1


class KeyGuard:
    """Charges and bounds the hashing of keys for one pickle run."""

    __slots__ = ("member", "limits", "meter", "_measured", "_tracked")

    def __init__(self, member: str, limits: Limits, meter: Meter):
        self.member = member
        self.limits = limits
        self.meter = meter
        self._measured: dict[int, tuple[int, int, Any]] = {}  # id -> (cost, depth, the object kept alive)
        #: id(container) -> (container kept alive, {hash: distinct keys with it}); only containers holding at
        #: least max_equal_hashes keys, since a smaller one cannot exceed the bound (and real data has millions
        #: of small dicts, which must not each cost a table here)
        self._tracked: dict[int, tuple[Any, dict[int, int]]] = {}

    def admit(self, container: Any, key: Any, present: bool | None = None) -> None:
        """Account for inserting ``key`` into ``container`` (a dict or set being built).

        Raises :class:`LimitExceeded` when the key is nested deeper than
        ``max_nesting``, when hashing work exceeds the file's budget, or when more
        than ``max_equal_hashes`` distinct keys of the container share a hash.
        """
        kind = type(key)
        if kind is str or kind is bytes:
            return  # SipHash, cached on the object and randomised per process: no crafted collisions
        cost = self.cost(key)
        # A dict insert hashes the key for the lookup and again for the store; equal hashes also compare.
        self.meter.charge_hash(2 * cost, f"{self.member}: dict key or set member")
        if present is None:
            present = key in container
        if present:
            return
        counts = self._counts(container)
        if counts is None:  # a small container: charge as if every key in it shared this hash
            if cost > 1:
                self.meter.charge_hash(len(container) * cost, f"{self.member}: comparing keys")
            return
        h = hash(key)
        n = counts[h] = counts.get(h, 0) + 1
        if n == 1:
            self.meter.charge_elements(1, f"{self.member}: hash-collision bookkeeping")
        if n > self.limits.max_equal_hashes:
            raise LimitExceeded(f"{self.member}: more than max_equal_hashes={self.limits.max_equal_hashes} keys of one "
                                "dict or set share a hash value (a hash-collision attack?)")
        self.meter.charge_hash(n * cost, f"{self.member}: comparing colliding keys")

    def _counts(self, container: Any) -> dict[int, int] | None:
        """The container's hash counts, started once it holds ``max_equal_hashes`` keys (None before)."""
        entry = self._tracked.get(id(container))
        if entry is not None:
            return entry[1]
        if len(container) < self.limits.max_equal_hashes:
            return None  # too few keys to exceed the bound
        counts: dict[int, int] = {}
        for k in container:  # the keys already in it, once: each is hashed again, and charged again
            if type(k) is not str and type(k) is not bytes:
                self.meter.charge_hash(self.cost(k), f"{self.member}: dict key or set member")
                h = hash(k)
                counts[h] = counts.get(h, 0) + 1
        # The counts take memory like the keys themselves: one element per key, plus the table.
        self.meter.charge_elements(len(counts) + 4, f"{self.member}: hash-collision bookkeeping")
        self._tracked[id(container)] = (container, counts)
        return counts

    def new_run(self) -> None:
        """Forget what the last pickle built (its containers and keys cannot reach the next pickle)."""
        self._tracked.clear()
        self._measured.clear()

    def cost(self, key: Any) -> int:
        """Steps Python takes to hash ``key``: atoms by :func:`atom_cost`, composites expanded; bounded depth."""
        if isinstance(key, _ATOMS):
            return atom_cost(key)
        return self.expanded(key)

    def expanded(self, key: Any) -> int:
        """Steps Python takes to hash a composite ``key`` (shared substructures counted per visit); bounded depth."""
        known = self._measured.get(id(key))
        if known is not None:
            return known[0]
        # Iterative post-order over distinct nodes: linear in the DAG, whatever its expansion.
        stack: list[tuple[Any, bool]] = [(key, False)]
        while stack:
            node, children_done = stack.pop()
            if id(node) in self._measured:
                continue
            kids = node if isinstance(node, (tuple, frozenset)) else ()
            if not children_done:
                stack.append((node, True))
                stack.extend((k, False) for k in kids if not isinstance(k, _ATOMS) and id(k) not in self._measured)
                continue
            size, depth = 1, 1
            for k in kids:
                if isinstance(k, _ATOMS):
                    size += atom_cost(k)
                else:
                    s, d, _ = self._measured[id(k)]
                    size += s
                    depth = max(depth, d + 1)
            if depth > self.limits.max_nesting:
                raise LimitExceeded(f"{self.member}: dict key nested deeper than max_nesting={self.limits.max_nesting}")
            self._measured[id(node)] = (size, depth, node)
        return self._measured[id(key)][0]
