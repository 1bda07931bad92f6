"""Consecutive pickles in one byte source, read the way torch's loaders read them one after another.

torch's legacy formats call ``pickle.load(f)`` repeatedly on one file: the next
pickle starts where the previous one's STOP ended. :class:`PickleStream` serves
those pickles from a cached window of the source (grown only while a pickle runs
past it), so a stream of a million small pickles costs one pass, and records
every global reference with the member it was in.
"""

from __future__ import annotations

from typing import Any, Callable

from ..errors import LimitExceeded
from .limits import Limits
from .meter import Meter
from .pickle import GlobalRef, PickleRead, PickleReader
from .source import ByteSource

_WINDOW = 64 * 1024


class PickleStream:
    """Reads pickles at increasing offsets of ``source``; ``refs`` collects ``(member, GlobalRef)``."""

    def __init__(self, source: ByteSource, limits: Limits, meter: Meter, refs: list[tuple[str, GlobalRef]]):
        self.source = source
        self.limits = limits
        self.meter = meter
        self.refs = refs
        self._base = 0
        self._data = b""
        self._reader: PickleReader | None = None

    def _window(self, pos: int, size: int, member: str) -> None:
        n = max(min(size, self.source.size - pos, self.limits.max_pickle_bytes), 0)
        self.meter.charge_bytes(n, member)  # bytes held while the pickle is read: part of the file's budget
        self._base, self._data = pos, self.source.pread(pos, n)
        self._reader = PickleReader(self._data, member=member, limits=self.limits, meter=self.meter)

    def read(self, pos: int, member: str, persistent_load: Callable[[Any], Any] | None = None) -> PickleRead:
        """The pickle at absolute offset ``pos``; offsets in the result are absolute too.

        Never raises for bad input: the result's ``error`` says why it did not
        reach STOP, and its globals are whole either way (see :func:`read_pickle`).
        """
        size = _WINDOW
        if self._reader is None or self._reader.member != member or not self._base <= pos < self._base + len(self._data):
            self._window(pos, size, member)
        while True:
            start = pos - self._base
            result = self._reader.read(start, persistent_load)
            more = len(self._data) < min(self.source.size - self._base, self.limits.max_pickle_bytes)
            if result.truncated and more:
                size = max(size, len(self._data) - start) * 4
                self._window(pos, size, member)
                continue
            if result.truncated and self.source.size - self._base > self.limits.max_pickle_bytes:
                result.error = LimitExceeded(f"{member}: pickle larger than max_pickle_bytes="
                                             f"{self.limits.max_pickle_bytes:,}")
            self.refs.extend((member, ref) for ref in result.globals)
            shift = self._base
            if result.end is not None:
                result.end += shift
            result.frames = [(a + shift, b + shift) for a, b in result.frames]
            return result


def frame_past_stop(result: PickleRead) -> bool:
    """Whether a FRAME of this pickle extends past its STOP.

    The C unpickler reads a large frame in one call, so after such a pickle the file
    position (where torch reads the next pickle or the storages) depends on the
    frame size and the file object: the next read is ambiguous.
    """
    return result.end is not None and any(end > result.end for _start, end in result.frames)
