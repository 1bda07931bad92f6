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

    def charge_elements(self, n: int, what: str) -> None:
        """Count ``n`` more values or container slots built (``what`` names the builder)."""
        self.elements += n
        if self.elements > self.limits.max_elements:
            raise LimitExceeded(f"{self.label}: {what}: more than max_elements={self.limits.max_elements:,} "
                                "values built from this file")

    def charge_bytes(self, n: int, what: str) -> None:
        """Count ``n`` more bytes of text or binary values materialised."""
        self.value_bytes += n
        if self.value_bytes > self.limits.max_value_bytes:
            raise LimitExceeded(f"{self.label}: {what}: more than max_value_bytes={self.limits.max_value_bytes:,} "
                                "bytes of values built from this file")

    def charge_hash(self, n: int, what: str) -> None:
        """Count ``n`` more nodes visited by hashing or comparing composite keys."""
        self.hash_work += n
        if self.hash_work > self.limits.max_hash_work:
            raise LimitExceeded(f"{self.label}: {what}: more than max_hash_work={self.limits.max_hash_work:,} "
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
            raise LimitExceeded(f"{self.label}: {what}: over max_seconds={self.limits.max_seconds} "
                                "reading this file")

    def snapshot(self) -> dict[str, float]:
        """What this file cost so far, for reports and benchmarks."""
        return {"elements": self.elements, "value_bytes": self.value_bytes, "hash_work": self.hash_work,
                "seconds": round(time.monotonic() - self.started, 4)}
