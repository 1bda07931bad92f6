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

from . import ops
from .machine import Machine
from .shapes import Shapes

# How each opcode reads its argument, as the C unpickler issues the reads: a fixed size, a count
# (its width, then that many bytes), or text lines. Opcodes missing here read nothing after their byte.
_FIXED = {ops.BINGET: 1, ops.BINPUT: 1, ops.BININT1: 1, ops.PROTO: 1, ops.EXT1: 1, ops.BININT2: 2, ops.EXT2: 2,
          ops.BININT: 4, ops.LONG_BINGET: 4, ops.LONG_BINPUT: 4, ops.EXT4: 4, ops.BINFLOAT: 8, ops.FRAME: 8}
_COUNTED = {ops.SHORT_BINSTRING: 1, ops.SHORT_BINBYTES: 1, ops.SHORT_BINUNICODE: 1, ops.LONG1: 1,
            ops.BINSTRING: 4, ops.BINBYTES: 4, ops.BINUNICODE: 4, ops.LONG4: 4, ops.BINUNICODE8: 8,
            ops.BINBYTES8: 8, ops.BYTEARRAY8: 8}
_LINES = {ops.INT: 1, ops.LONG: 1, ops.FLOAT: 1, ops.STRING: 1, ops.UNICODE: 1, ops.GET: 1, ops.PUT: 1,
          ops.PERSID: 1, ops.GLOBAL: 2, ops.INST: 2}


def _reads(data: bytes, at: int) -> list[tuple[int, int]]:
    """The ``(start, end)`` of each read the opcode at ``at`` makes after its own byte."""
    op, pos, out = data[at], at + 1, []
    if op in _FIXED:
        out.append((pos, pos + _FIXED[op]))
    elif op in _COUNTED:
        width = _COUNTED[op]
        count = int.from_bytes(data[pos:pos + width], "little", signed=width == 4 and op in (ops.BINSTRING, ops.LONG4))
        out += [(pos, pos + width), (pos + width, pos + width + max(count, 0))]
    for _ in range(_LINES.get(op, 0)):
        nl = data.find(b"\n", pos)
        end = len(data) if nl < 0 else nl + 1
        out.append((pos, end))
        pos = end
    return out


def first_crossing(data: bytes, at: int, frame_end: int) -> int:
    """Where the first read of the opcode at ``at`` that runs past ``frame_end`` starts (the bytes from
    there to the frame's end are what a stream reader drops)."""
    for start, end in _reads(data, at):
        if start < frame_end < end:
            return start
    return at


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
    """The bytes the C unpickler consumes when the opcode at ``at`` reads past ``frame_end`` on a stream:
    what is left of the frame when that read starts is dropped, and reading goes on after the frame."""
    cut = first_crossing(data, at, frame_end)
    return data[:cut] + data[frame_end:]
