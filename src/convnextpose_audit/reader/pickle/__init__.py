"""The restricted pickle reader: run a pickle as data, and name every global it references.

Two entry points share one machine (:mod:`.machine`), so they frame every opcode
exactly as CPython's C unpickler (what ``torch.load(weights_only=False)`` runs):

- :func:`read_pickle` builds the object (stand-ins for allowlisted globals, inert
  records for the rest) and lists every global reference. If it cannot reach
  STOP for any reason (a limit, a malformed structure, a bug), the independent
  :func:`scan_pickle` runs over the same bytes, so the list of globals never
  depends on the structure being readable.
- :func:`scan_pickle` is the linear safety scan: it builds nothing, hashes
  nothing and is bounded only by opcodes, stack and memo; it stops exactly where
  the C unpickler would stop.
"""

from __future__ import annotations

from typing import Any, Callable

from ...errors import AmbiguousContainerError, AuditError, CheckpointReadError
from ...plain import Plain
from ..limits import Limits
from ..meter import Meter
from .framing import discard_reading, straddles
from .machine import GlobalRef, Machine, Truncated
from .records import Global, Instance
from .shapes import Shapes
from .values import Values

__all__ = ["GlobalRef", "Global", "Instance", "PickleRead", "PickleReader", "PickleScan", "Truncated", "read_pickle",
           "scan_pickle"]


class PickleScan(Plain):
    """What the safety scan saw: every global reference, where the pickle ended, why it stopped early.

    ``end`` is the offset just past STOP, or None if the C unpickler would not reach STOP;
    ``error`` why it stopped before STOP (the C unpickler fails there too); ``truncated`` that
    it stopped because the bytes ran out; ``frames`` the (start, end) of every FRAME;
    ``ambiguous`` why loaders would read these bytes differently (a FRAME splits an opcode).
    """

    __slots__ = ("globals", "end", "error", "truncated", "frames", "ambiguous")

    def __init__(self, globals: list[GlobalRef], frames: list[tuple[int, int]]):
        self.globals, self.frames = globals, frames
        self.end: int | None = None
        self.error: str | None = None
        self.truncated = False
        self.ambiguous: str | None = None


class PickleRead(Plain):
    """A structured read: the object and end offset, or the error; plus every global reference.

    ``truncated``: the bytes ran out before STOP (in the structured read or in the fallback scan).
    """

    __slots__ = ("obj", "end", "globals", "error", "frames", "truncated")

    def __init__(self, obj: Any, end: int | None, globals: list[GlobalRef], error: CheckpointReadError | None = None,
                 frames: list[tuple[int, int]] | None = None, truncated: bool = False):
        self.obj, self.end, self.globals, self.error = obj, end, globals, error
        self.frames = [] if frames is None else frames
        self.truncated = truncated


_MAX_READINGS = 8  # each FRAME that splits an opcode doubles nothing: the dropped bytes are gone for good


def scan_pickle(data: bytes, *, member: str, limits: Limits, start: int = 0,
                persistent: bool = False) -> PickleScan:
    """Name every global the pickle at ``data[start:]`` references before the C unpickler would stop.

    ``persistent`` says whether the loader installs a persistent-id handler for
    this pickle (without one, a persistent id stops the C unpickler). Where a
    FRAME splits an opcode, the globals of the other reading are added (see
    :mod:`.framing`) and ``ambiguous`` says so. Never raises for bad input: the
    reason for stopping is in the result.
    """
    out = _scan_once(data, member, limits, start, persistent)
    reading, readings = data, 1
    split = straddles(reading, start, out.frames, member=member, limits=limits, persistent=persistent)
    while split and readings < _MAX_READINGS:
        at, frame_end = split[0]
        out.ambiguous = (f"{member}: a pickle FRAME ends inside the opcode at byte {at:,}; the C unpickler reads "
                         "such a pickle differently from a stream and from a file")
        reading = discard_reading(reading, at, frame_end)
        other = _scan_once(reading, member, limits, start, persistent)
        known = {(g.qualname, g.opcode) for g in out.globals}
        out.globals += [g for g in other.globals if (g.qualname, g.opcode) not in known]
        readings += 1
        split = straddles(reading, start, other.frames, member=member, limits=limits, persistent=persistent)
    if split:  # more splits than readings followed: what runs cannot be enumerated
        out.globals.append(GlobalRef("<ambiguous>", "<frame>", "FRAME", split[0][0]))
    return out


def _scan_once(data: bytes, member: str, limits: Limits, start: int, persistent: bool) -> PickleScan:
    machine = Machine(data, member=member, limits=limits, meter=None, semantics=Shapes(member, persistent))
    out = PickleScan(globals=machine.globals, frames=machine.frames)
    try:
        _obj, out.end = machine.load(start)
    except Truncated as exc:
        out.error, out.truncated = str(exc), True
    except AuditError as exc:
        out.error = str(exc)
    return out


class PickleReader:
    """Structured reads of the pickles in one byte string; the machine is built once and reused."""

    def __init__(self, data: bytes, *, member: str, limits: Limits, meter: Meter,
                 module_mapping: dict[str, str] | None = None):
        self.data = data
        self.member = member
        self.limits = limits
        self.values = Values(member, limits, meter)
        self.machine = Machine(data, member=member, limits=limits, meter=meter, semantics=self.values,
                               module_mapping=module_mapping)

    def read(self, start: int = 0, persistent_load: Callable[[Any], Any] | None = None) -> PickleRead:
        """Build the pickle at ``start`` (see :func:`read_pickle`)."""
        machine, values = self.machine, self.values
        values.persistent_load = persistent_load
        values.keys.new_run()
        mark, frames_mark = len(machine.globals), len(machine.frames)
        try:
            obj, end = machine.load(start)
            frames = machine.frames[frames_mark:]
            if not frames:  # torch writes protocol 2: no frames, nothing to check
                return PickleRead(obj, end, machine.globals[mark:], frames=frames)
            scan = scan_pickle(self.data, member=self.member, limits=self.limits, start=start,
                               persistent=persistent_load is not None)
            if scan.ambiguous is None:
                return PickleRead(obj, end, machine.globals[mark:], frames=frames)
            return PickleRead(None, scan.end, scan.globals, AmbiguousContainerError(scan.ambiguous), scan.frames)
        except Truncated as exc:  # every opcode up to the end of the bytes ran: the list of globals is whole
            return PickleRead(None, None, machine.globals[mark:], exc, machine.frames[frames_mark:], truncated=True)
        except CheckpointReadError as exc:
            error = exc
        except AuditError as exc:  # not expected from the machine; kept fail-closed
            error = CheckpointReadError(str(exc))
        except (TypeError, ValueError, KeyError, IndexError, AttributeError, OverflowError, RecursionError) as exc:
            error = CheckpointReadError(f"{self.member}: malformed pickle ({type(exc).__name__}: {exc})")
        machine.stack.clear()  # what the failed read built is garbage now: never hold it and the scan at once
        machine.marks.clear()
        machine.memo.clear()
        values.keys.new_run()
        scan = scan_pickle(self.data, member=self.member, limits=self.limits, start=start,
                           persistent=persistent_load is not None)
        if scan.ambiguous:
            error = AmbiguousContainerError(scan.ambiguous)
        return PickleRead(None, scan.end, scan.globals, error, scan.frames, truncated=scan.truncated)


def read_pickle(data: bytes, *, member: str, limits: Limits, meter: Meter, start: int = 0,
                persistent_load: Callable[[Any], Any] | None = None,
                module_mapping: dict[str, str] | None = None) -> PickleRead:
    """Build the pickle's object with stand-ins and inert records; list every global it references.

    Never raises :class:`AuditError` for bad input: ``error`` holds it, and
    ``globals`` then comes from the independent safety scan of the same bytes
    (unless the bytes simply ran out, when the structured read already saw every opcode).
    """
    reader = PickleReader(data, member=member, limits=limits, meter=meter, module_mapping=module_mapping)
    return reader.read(start, persistent_load)
