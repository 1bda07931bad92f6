"""Bounded hashing of dict keys and set members built from a pickle.

Python hashes a tuple by hashing every element, recursively and without caching,
so a tuple DAG shared through the memo (60 levels, 1.4 kB) costs 2**60 steps to
hash, and one nested 500,000 deep overflows the C stack. Integers are hashed
predictably, so crafted ones (``k * (2**61 - 1)``) all collide and make every
insert quadratic. Before anything hashes a composite key, :class:`KeyGuard`
measures its expanded size (shared nodes counted every time they are reached,
as hashing reaches them) and its depth in one linear pass over distinct nodes,
and charges the expansion to the file's meter; it also bounds how many distinct
keys of one container share a hash value.
"""

from __future__ import annotations

from typing import Any

from ...errors import LimitExceeded
from ..limits import Limits
from ..meter import Meter

_ATOMS = (str, int, float, bool, bytes, complex, type(None))


class KeyGuard:
    """Charges and bounds the hashing of keys for one pickle run."""

    __slots__ = ("member", "limits", "meter", "_measured", "_shared")

    def __init__(self, member: str, limits: Limits, meter: Meter):
        self.member = member
        self.limits = limits
        self.meter = meter
        self._measured: dict[int, tuple[int, int, Any]] = {}  # id -> (expanded size, depth, the object kept alive)
        self._shared: dict[tuple[int, int], int] = {}  # (container id, hash) -> distinct keys with that hash

    def admit(self, container: Any, key: Any, present: bool | None = None) -> None:
        """Account for inserting ``key`` into ``container`` (a dict or set being built).

        Raises :class:`LimitExceeded` when the key is nested deeper than
        ``max_nesting``, when hashing work exceeds the file's budget, or when more
        than ``max_equal_hashes`` distinct keys of the container share a hash.
        """
        kind = type(key)
        if kind is str or kind is bytes:
            return  # SipHash, randomised per process: no crafted collisions
        cost = 1 if kind in _ATOMS else self.expanded(key)
        # A dict insert hashes the key for the lookup and again for the store; equal hashes also compare.
        self.meter.charge_hash(2 * cost, f"{self.member}: dict key or set member")
        if present is None:
            present = key in container
        if present:
            return
        slot = (id(container), hash(key))
        n = self._shared[slot] = self._shared.get(slot, 0) + 1
        if n > self.limits.max_equal_hashes:
            raise LimitExceeded(f"{self.member}: more than max_equal_hashes={self.limits.max_equal_hashes} keys of one "
                                "dict or set share a hash value (a hash-collision attack?)")
        self.meter.charge_hash(n * cost, f"{self.member}: comparing colliding keys")

    def new_run(self) -> None:
        """Forget per-container collision counts (containers of a finished pickle are gone)."""
        self._shared.clear()

    def expanded(self, key: Any) -> int:
        """Nodes Python visits to hash ``key`` (shared substructures counted per visit); bounded depth."""
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
                    size += 1
                else:
                    s, d, _ = self._measured[id(k)]
                    size += s
                    depth = max(depth, d + 1)
            if depth > self.limits.max_nesting:
                raise LimitExceeded(f"{self.member}: dict key nested deeper than max_nesting={self.limits.max_nesting}")
            self._measured[id(node)] = (size, depth, node)
        return self._measured[id(key)][0]
