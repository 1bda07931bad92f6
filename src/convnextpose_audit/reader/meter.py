"""One budget per file: every value built from a file is charged here, whoever builds it.

The pickle machine, the stand-ins it calls, the walker, the fingerprint and the
renderers all charge the same :class:`Meter`, so no path (a set built from a big
list, a tuple key hashed a million times, a path string grown by nesting) can
escape the bound by being "a different case". Dimensions: elements (values and
container slots built), value bytes (text and bytes materialised), hash work
(tuple/frozenset nodes visited when Python hashes or compares a key, shared
substructures counted once per visit), and wall time. Depth is bounded where
structures nest (``Limits.max_nesting``), below the interpreter's recursion limit.
"""

from __future__ import annotations

import time

from ..errors import LimitExceeded
from .limits import Limits


#: Extra elements charged for building one object of these kinds, beyond the one its opcode already costs.
#: An element stands for about 48 bytes of interpreter memory (a value and its stack or container slot);
#: these objects are bigger (CPython 3.11, GC header included): an empty dict is 80 bytes, an empty set or
#: frozenset 232, an OrderedDict 144, a Counter 104, a tensor reference with its shape, stride and
#: attribute dict about 300, a record of a call with its argument, item and state lists about 400. A memo
#: entry costs one more (the pickle machine charges it). Charging objects by size keeps the memory of a
#: file within the budget whatever kind of object it repeats.
OBJECT_COST = {"dict": 1, "set": 4, "ordered_dict": 2, "counter": 1, "tensor": 5, "record": 7}


class Meter:
    """Counters and their limits for one file. ``charge_*`` raise :class:`LimitExceeded` past a bound."""

    __slots__ = ("limits", "label", "elements", "value_bytes", "hash_work", "deadline", "started", "_opcodes")

    def __init__(self, limits: Limits, label: str):
        self.limits = limits
        self.label = label
        self.elements = 0
        self.value_bytes = 0
        self.hash_work = 0
        self.started = time.monotonic()
        self.deadline = self.started + limits.max_seconds
        self._opcodes = 0  # byte i of this 256-byte little-endian int is 1 when opcode i ran

    def _where(self, what: str) -> str:
        # ``what`` usually names the member already ("file: data.pkl: ..."): never say the file twice.
        return what if what.startswith(self.label) else f"{self.label}: {what}"

    def charge_elements(self, n: int, what: str) -> None:
        """Count ``n`` more values or container slots built (``what`` names the builder)."""
        self.elements += n
        if self.elements > self.limits.max_elements:
            raise LimitExceeded(f"{self._where(what)}: more than max_elements={self.limits.max_elements:,} "
                                "values built from this file")

    def charge_object(self, kind: str, what: str) -> None:
        """Count one object of a heavy ``kind`` (see :data:`OBJECT_COST`) built by ``what``."""
        self.charge_elements(OBJECT_COST[kind], what)

    def charge_bytes(self, n: int, what: str) -> None:
        """Count ``n`` more bytes held in memory for this file: pickles and inflated members read, text and
        binary values built, paths walked."""
        self.value_bytes += n
        if self.value_bytes > self.limits.max_value_bytes:
            raise LimitExceeded(f"{self._where(what)}: more than max_value_bytes={self.limits.max_value_bytes:,} "
                                "bytes read into memory or built from this file")

    def charge_hash(self, n: int, what: str) -> None:
        """Count ``n`` more nodes visited by hashing or comparing composite keys."""
        self.hash_work += n
        if self.hash_work > self.limits.max_hash_work:
            raise LimitExceeded(f"{self._where(what)}: more than max_hash_work={self.limits.max_hash_work:,} "
                                "key nodes hashed (a shared-substructure key?)")

    def note_opcodes(self, seen: bytearray) -> None:
        """Record the opcodes a completed pickle executed (``seen[op]`` is 1 for each), for loader comparisons."""
        self._opcodes |= int.from_bytes(seen, "little")  # one C-level OR: streams of many small pickles stay linear

    @property
    def opcodes(self) -> frozenset[int]:
        """Every opcode byte executed by the pickles this file's structured reads took to their STOP."""
        seen = self._opcodes.to_bytes(256, "little")
        return frozenset(op for op in range(256) if seen[op])

    def tick(self, what: str) -> None:
        """Fail once the file's wall-time budget is spent (called every few thousand steps)."""
        if time.monotonic() > self.deadline:
            raise LimitExceeded(f"{self._where(what)}: over max_seconds={self.limits.max_seconds} "
                                "reading this file")

    def snapshot(self) -> dict[str, float]:
        """What this file cost so far, for reports and benchmarks."""
        return {"elements": self.elements, "value_bytes": self.value_bytes, "hash_work": self.hash_work,
                "seconds": round(time.monotonic() - self.started, 4)}
