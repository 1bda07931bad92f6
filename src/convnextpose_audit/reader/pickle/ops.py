"""Pickle opcodes and their arguments, parsed exactly as CPython's C unpickler (``_pickle.c``) parses them.

``torch.load(weights_only=False)`` runs the C unpickler, so every argument here
is framed and decoded the way it does: text lines must end in ``\\n``; ``INT``
goes through ``strtol`` with base 0 (``I010`` is 8, ``I0x10`` is 16) and falls
back to ``int(text, 0)``; ``FLOAT`` rejects whitespace, underscores and overflow;
lengths are signed or unsigned as C reads them. Any divergence here would be a
parser differential: the safety scan and the structured read would walk
different opcodes from the ones torch executes.
"""

from __future__ import annotations

import codecs
import re
import struct

from ...errors import MalformedPickleError

# Opcode bytes (pickle protocols 0-5).
MARK, STOP, POP, POP_MARK, DUP = 0x28, 0x2E, 0x30, 0x31, 0x32
FLOAT, INT, BININT, BININT1, LONG, BININT2, NONE = 0x46, 0x49, 0x4A, 0x4B, 0x4C, 0x4D, 0x4E
PERSID, BINPERSID, REDUCE, STRING, BINSTRING, SHORT_BINSTRING = 0x50, 0x51, 0x52, 0x53, 0x54, 0x55
UNICODE, BINUNICODE, APPEND, BUILD, GLOBAL, DICT, EMPTY_DICT = 0x56, 0x58, 0x61, 0x62, 0x63, 0x64, 0x7D
APPENDS, GET, BINGET, INST, LONG_BINGET, LIST, EMPTY_LIST = 0x65, 0x67, 0x68, 0x69, 0x6A, 0x6C, 0x5D
OBJ, PUT, BINPUT, LONG_BINPUT, SETITEM, TUPLE, EMPTY_TUPLE = 0x6F, 0x70, 0x71, 0x72, 0x73, 0x74, 0x29
SETITEMS, BINFLOAT = 0x75, 0x47
PROTO, NEWOBJ, EXT1, EXT2, EXT4, TUPLE1, TUPLE2, TUPLE3 = 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87
NEWTRUE, NEWFALSE, LONG1, LONG4 = 0x88, 0x89, 0x8A, 0x8B
BINBYTES, SHORT_BINBYTES = 0x42, 0x43
SHORT_BINUNICODE, BINUNICODE8, BINBYTES8, EMPTY_SET, ADDITEMS, FROZENSET = 0x8C, 0x8D, 0x8E, 0x8F, 0x90, 0x91
NEWOBJ_EX, STACK_GLOBAL, MEMOIZE, FRAME, BYTEARRAY8, NEXT_BUFFER, READONLY_BUFFER = (
    0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98)

HIGHEST_PROTOCOL = 5

#: opcode byte -> name, for ``where`` records and messages.
NAMES = {v: k for k, v in globals().items() if k.isupper() and isinstance(v, int) and k != "HIGHEST_PROTOCOL"}

u8 = struct.Struct("<B").unpack_from
u16 = struct.Struct("<H").unpack_from
i32 = struct.Struct("<i").unpack_from
u32 = struct.Struct("<I").unpack_from
u64 = struct.Struct("<Q").unpack_from
f64be = struct.Struct(">d").unpack_from

SSIZE_MAX = (1 << 63) - 1


def malformed(member: str, what: str) -> MalformedPickleError:
    """The one-line error for a pickle that the C unpickler would also reject."""
    return MalformedPickleError(f"{member}: malformed pickle: {what}")


# -- text arguments ---------------------------------------------------------------------------
# glibc strtol with base 0: optional whitespace and sign, then 0x-hex, 0-octal or decimal.
_STRTOL = re.compile(rb"[ \t\n\v\f\r]*([+-]?)(?:0[xX]([0-9a-fA-F]+)|(0[0-7]*)|([1-9][0-9]*))")
# PyOS_string_to_double: no whitespace, no underscores; decimal floats, inf/infinity/nan.
_FLOAT = re.compile(rb"[+-]?(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|(?i:inf(?:inity)?|nan))")
_LONG_MIN, _LONG_MAX = -(1 << 63), (1 << 63) - 1


def _c_string(line: bytes | memoryview) -> bytes:
    # C hands these parsers a NUL-terminated copy of the line: parsing stops at the first NUL.
    line = bytes(line)  # a long line arrives as a view of the pickle; numbers need bytes
    nul = line.find(b"\0")
    return line if nul < 0 else line[:nul]


def parse_int(line: bytes, member: str) -> tuple[int | bool, bool]:
    """The ``INT`` opcode's argument (``line`` ends with ``\\n``): strtol base 0, bools for ``00``/``01``.

    Returns ``(value, platform_dependent)``: an octal literal beyond 32 bits is read
    this way where C ``long`` has 64 bits, and is an error where it has 32 (Windows).
    """
    text = _c_string(line)
    if text == b"":
        # strtol converts nothing and leaves its end pointer on the NUL, which C accepts: the value is 0.
        return (False if len(line) == 3 else 0), False
    m = _STRTOL.match(text)
    if m is not None and text[m.end():] in (b"\n", b""):
        sign, hexa, octal, dec = m.groups()
        value = int(hexa, 16) if hexa is not None else int(octal, 8) if octal is not None else int(dec)
        value = -value if sign == b"-" else value
        if _LONG_MIN <= value <= _LONG_MAX:
            odd = octal is not None and len(octal) > 1 and not -(1 << 31) <= value < (1 << 31)
            return (bool(value) if len(line) == 3 and value in (0, 1) else value), odd
    try:
        return int(text, 0), False  # PyLong_FromString(s, NULL, 0): whitespace, underscores, big values
    except ValueError:
        raise malformed(member, "could not convert string to int") from None


def parse_long(line: bytes, member: str) -> int:
    """The ``LONG`` opcode's argument: an optional trailing ``L`` dropped, then ``int(text, 0)``."""
    if len(line) >= 2 and line[-2] == ord("L"):
        line = bytes(line[:-2]) + b"\0"
    try:
        return int(_c_string(line), 0)
    except ValueError:
        raise malformed(member, "LONG argument is not an integer") from None


def parse_float(line: bytes, member: str) -> float:
    """The ``FLOAT`` opcode's argument, as ``PyOS_string_to_double`` with OverflowError."""
    text = _c_string(line)
    m = _FLOAT.match(text)
    if m is None or text[m.end():] not in (b"\n", b""):
        raise malformed(member, "could not convert string to float")
    value = float(m.group())
    if value in (float("inf"), float("-inf")) and b"inf" not in m.group().lower():
        raise malformed(member, "FLOAT value too large to convert")
    return value


def parse_string(line: bytes, member: str) -> bytes:
    """The ``STRING`` opcode's argument: quoted, backslash escapes decoded; raw bytes (callers decode)."""
    body = line[:-1]
    if len(body) < 2 or body[0] != body[-1] or body[:1] not in (b"'", b'"'):
        raise malformed(member, "the STRING opcode argument must be quoted")
    try:
        return codecs.escape_decode(body[1:-1])[0]
    except ValueError as exc:
        raise malformed(member, f"STRING escape: {exc}") from None


def parse_memo_key(line: bytes, member: str, what: str) -> int:
    """The ``GET``/``PUT`` argument: ``int(text, 10)`` that must fit a C ``Py_ssize_t``."""
    try:
        key = int(_c_string(line), 10)
    except ValueError:
        raise malformed(member, f"{what} argument is not an integer") from None
    if key > SSIZE_MAX or key < -SSIZE_MAX - 1:
        raise malformed(member, f"{what} argument overflows")
    return key


def decode_text(raw: bytes | memoryview, member: str, encoding: str = "utf-8") -> str:
    """A Python-2 ``str`` (STRING/BINSTRING/SHORT_BINSTRING) as torch decodes it: strict UTF-8."""
    try:
        return str(raw, encoding, "strict")
    except UnicodeDecodeError as exc:
        raise malformed(member, f"8-bit string is not UTF-8 ({exc.reason})") from None


def decode_raw_unicode(raw: bytes | memoryview, member: str) -> str:
    """The ``UNICODE`` opcode's argument (protocol 0): raw-unicode-escape, as the C unpickler decodes it."""
    try:
        return codecs.raw_unicode_escape_decode(raw)[0]
    except UnicodeDecodeError as exc:
        raise malformed(member, f"UNICODE argument: {exc.reason}") from None


def decode_unicode(raw: bytes | memoryview, member: str) -> str:
    """BINUNICODE payloads: UTF-8 with surrogates passed through, as the C unpickler does."""
    try:
        return str(raw, "utf-8", "surrogatepass")
    except UnicodeDecodeError as exc:
        raise malformed(member, f"unicode string is not UTF-8 ({exc.reason})") from None


def decode_name(raw: bytes | memoryview, member: str, ascii_only: bool) -> str:
    """A GLOBAL (UTF-8) or INST (ASCII) module or name line, without its newline."""
    try:
        return str(raw, "ascii" if ascii_only else "utf-8", "strict")
    except UnicodeDecodeError:
        raise malformed(member, "global name is not valid text") from None
