"""Pickle FRAMEs that split an opcode: one pickle, two readings.

Framing is meant to be invisible: ``pickle.dumps`` never lets an opcode or its
argument run past the end of a frame. A crafted pickle can. The C unpickler then
reads two different byte streams depending on the file object: from a stream
without ``peek`` (torch reads ``data.pkl`` from a BytesIO), or once a frame is
128 KiB or more, it drops the rest of the frame from its buffer and reads on
from after the frame; from a peekable file with a small frame it reads straight
on. The structured read refuses such a pickle as ambiguous, and the safety scan
follows both readings (:func:`discard_reading` gives the second one).
"""

from __future__ import annotations

from .machine import Machine
from .shapes import Shapes


def straddles(data: bytes, start: int, frames: list[tuple[int, int]], *, member: str, limits,
              persistent: bool = False) -> list[tuple[int, int]]:
    """``(opcode offset, frame end)`` for every opcode whose bytes run past the end of a frame."""
    if not frames:
        return []
    machine = Machine(data, member=member, limits=limits, meter=None, semantics=Shapes(member, persistent))
    machine.trace = []
    try:
        _obj, tail = machine.load(start)  # STOP's end bounds the last opcode
    except Exception:  # noqa: BLE001 - only the offsets reached so far matter here
        tail = len(data)
    ops = machine.trace + [tail]
    ends = sorted({e for _s, e in machine.frames})
    out = []
    for here, after in zip(ops, ops[1:]):
        out += [(here, e) for e in ends if here < e < after]
    return out


def discard_reading(data: bytes, at: int, frame_end: int) -> bytes:
    """The bytes the C unpickler consumes when the opcode at ``at`` runs past ``frame_end`` on a stream:
    what is left of the frame is dropped, and reading goes on after it."""
    return data[:at] + data[frame_end:]
