"""Pickle bytes built by hand: harmless payload fragments and an opcode-level re-emitter.

A payload fragment calls a file-creating function on :data:`SENTINEL` (a relative
name: the oracle runs each load in a fresh empty folder and looks for it there)
and then POPs the result, so the pickle it is spliced into still builds the same
object. Nothing here pickles a Python object: every byte is written out.
"""

from __future__ import annotations

import pickle
import pickletools
import struct

#: The file (or folder) a payload creates, relative to the loader's working directory.
SENTINEL = "cnxp-sentinel"

#: Ways to spell "call a function that creates SENTINEL" (module, name, extra args).
_CALLEES = {
    "builtins.open": ("builtins", "open", ("w",)),
    "io.open": ("io", "open", ("w",)),
    "_io.open": ("_io", "open", ("w",)),
    "__builtin__.open": ("__builtin__", "open", ("w",)),  # Python 2 name, mapped by fix_imports
    "os.mkdir": ("os", "mkdir", ()),
    "posix.mkdir": ("posix", "mkdir", ()),
}
SPELLINGS = ("reduce", "stack_global", "inst", "obj", "text")


def _bu(text: str) -> bytes:
    raw = text.encode()
    return b"X" + struct.pack("<I", len(raw)) + raw


def _vu(text: str) -> bytes:
    return b"V" + text.encode("raw-unicode-escape") + b"\n"


def payload(callee: str = "builtins.open", spelling: str = "reduce") -> bytes:
    """A fragment that calls ``callee(SENTINEL, ...)`` and leaves the stack as it found it."""
    module, name, extra = _CALLEES[callee]
    glob = b"c" + module.encode() + b"\n" + name.encode() + b"\n"
    if spelling == "text":  # protocol-0 opcodes only (fits a text pickle)
        return glob + b"(" + b"".join(_vu(a) for a in (SENTINEL, *extra)) + b"tR0"
    args = b"".join(_bu(a) for a in (SENTINEL, *extra))
    if spelling == "reduce":
        return glob + b"(" + args + b"tR0"
    if spelling == "stack_global":
        return _bu(module) + _bu(name) + b"\x93(" + args + b"tR0"
    if spelling == "inst":
        return b"(" + args + b"i" + module.encode() + b"\n" + name.encode() + b"\n0"
    if spelling == "obj":
        return b"(" + glob + args + b"o0"
    raise ValueError(spelling)


def splice(pkl: bytes, fragment: bytes) -> bytes:
    """Insert ``fragment`` right after a leading PROTO opcode (or at the start)."""
    at = 2 if pkl[:1] == b"\x80" else 0
    return pkl[:at] + fragment + pkl[at:]


# -- opcode-level re-emitter ------------------------------------------------------------
def ops(pkl: bytes, start: int = 0) -> list[tuple[str, object]]:
    """The opcodes of the pickle at ``pkl[start:]`` as ``(name, argument)``, up to and including STOP."""
    out = []
    for op, arg, _pos in pickletools.genops(pkl[start:]):
        out.append((op.name, arg))
        if op.name == "STOP":
            break
    return out


def end_of(pkl: bytes, start: int = 0) -> int:
    """Offset just past the STOP of the pickle starting at ``start``."""
    last = 0
    for op, _arg, pos in pickletools.genops(pkl[start:]):
        last = pos
        if op.name == "STOP":
            return start + pos + 1
    raise ValueError(f"no STOP after offset {start} (last opcode at {start + last})")


_BY_NAME = {op.name: op for op in pickletools.opcodes}


def emit(oplist: list[tuple[str, object]]) -> bytes:
    """Encode ``(name, argument)`` pairs back to bytes (FRAME arguments are recomputed by the caller)."""
    out = bytearray()
    for name, arg in oplist:
        op = _BY_NAME[name]
        out += op.code.encode("latin-1")
        out += _encode_arg(op.arg.name if op.arg else None, arg)
    return bytes(out)


def _encode_arg(kind: str | None, arg) -> bytes:
    if kind is None:
        return b""
    fixed = {"uint1": "<B", "uint2": "<H", "int4": "<i", "uint4": "<I", "uint8": "<Q", "float8": ">d"}
    if kind in fixed:
        return struct.pack(fixed[kind], arg)
    if kind in ("long1", "long4"):
        raw = pickle.encode_long(arg)
        return (bytes([len(raw)]) if kind == "long1" else struct.pack("<i", len(raw))) + raw
    if kind == "stringnl_noescape_pair":
        module, name = arg.split(" ", 1)
        return module.encode() + b"\n" + name.encode() + b"\n"
    if kind == "stringnl_noescape":
        return arg.encode() + b"\n"
    if kind == "stringnl":
        return repr(arg).encode("ascii") + b"\n"
    if kind == "unicodestringnl":
        return arg.encode("raw-unicode-escape") + b"\n"
    if kind == "decimalnl_short":
        return (b"00" if arg is False else b"01" if arg is True else str(arg).encode()) + b"\n"
    if kind == "decimalnl_long":
        return str(arg).encode() + b"L\n"
    if kind == "floatnl":
        return repr(arg).encode() + b"\n"
    sized = {"string1": ("<B", "latin-1"), "string4": ("<i", "latin-1"), "bytes1": ("<B", None),
             "bytes4": ("<I", None), "bytes8": ("<Q", None), "bytearray8": ("<Q", None),
             "unicodestring1": ("<B", "utf-8"), "unicodestring4": ("<I", "utf-8"),
             "unicodestring8": ("<Q", "utf-8")}
    fmt, enc = sized[kind]
    raw = arg.encode(enc, "surrogatepass") if enc else bytes(arg)
    return struct.pack(fmt, len(raw)) + raw


def rename_strings(pkl: bytes, mapping: dict[str, str]) -> bytes:
    """Re-emit a pickle with every unicode string found in ``mapping`` replaced."""
    out = []
    for name, arg in ops(pkl):
        if isinstance(arg, str) and arg in mapping and name in ("BINUNICODE", "SHORT_BINUNICODE", "UNICODE"):
            arg = mapping[arg]
        out.append((name, arg))
    return emit(out)


def text_int(value: int, style: str) -> bytes:
    """An INT opcode whose digits C's ``strtol(s, 0)`` (or its ``int(s, 0)`` fallback) reads as ``value``.

    Styles: ``dec``, ``hex`` (``I0x10``), ``oct`` (``I010``), ``plus`` (``I+16``), ``space``
    (leading blank, skipped by strtol), ``under`` (``I1_6``, via the fallback), ``trail``
    (trailing blank, via the fallback).
    """
    sign = "-" if value < 0 else ""
    v = abs(value)
    body = {"dec": f"{sign}{v}", "hex": f"{sign}0x{v:x}", "oct": f"{sign}0{v:o}" if v else "0",
            "plus": f"+{v}" if not sign else f"-{v}", "space": f" {sign}{v}",
            "under": f"{sign}{'_'.join(str(v))}" if v >= 10 else f"{sign}{v}", "trail": f"{sign}{v} "}[style]
    return b"I" + body.encode() + b"\n"


INT_STYLES = ("dec", "hex", "oct", "plus", "space", "under", "trail")
