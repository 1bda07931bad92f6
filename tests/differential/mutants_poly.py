"""Polyglots: files that two readers take for two different formats.

torch.load sniffs only ``PK\\x03\\x04`` at byte 0 and a readable tar header;
everything else is unpickled from byte 0, whatever the file's name or its
safetensors header says.
"""

from __future__ import annotations

import json
import struct

from .mutants_legacy import MAGIC, legacy_with_main
from .mutants_tar import ORDER, entry, finish, tar_parts, to_v7
from .registry import Ctx, mutant
from .seeds import legacy_bytes
from .zipfmt import build

#: Header length 0x0843: its low bytes b"C\x08" are SHORT_BINBYTES(8), which swallows bytes 2..9.
_HEADER_LEN = 0x0843
#: Lengths a SHORT_BINBYTES may use inside a JSON string: printable, not a quote or a backslash.
_OK_LEN = [n for n in range(32, 127) if n not in (0x22, 0x5C)]


def _chain(total: int) -> list[int]:
    """Lengths L_i of SHORT_BINBYTES ops (2 + L_i bytes each) that exactly cover ``total`` bytes."""
    out = []
    while total > 0:
        for length in sorted(_OK_LEN, reverse=True):
            rest = total - (2 + length)
            if rest == 0 or rest >= 2 + min(_OK_LEN):
                out.append(length)
                total = rest
                break
        else:
            raise ValueError(f"cannot cover {total} bytes")
    return out


def safetensors_pickle(continuation: bytes) -> bytes:
    """A valid safetensors file (one U8 tensor over ``continuation``) that is also a pickle from byte 0.

    Bytes 0..7 (the header length) start SHORT_BINBYTES(8); the pickle resumes in
    the first tensor name with POP, then a chain of SHORT_BINBYTES ops hidden in
    JSON strings swallows the rest of the header, and it continues with
    ``continuation``, the tensor's data.
    """
    n = len(continuation)
    entry_json = json.dumps({"dtype": "U8", "shape": [n], "data_offsets": [0, n]}, separators=(",", ":"))
    between = f'":{entry_json},"__metadata__":{{"p":"'.encode()
    final_len, after = 100, 50  # the last op swallows 50 filler bytes, '"}}' and the padding
    pad = final_len - after - 3
    first_len = next(x for x in _OK_LEN if x >= len(between))
    start_value = first_len - len(between)  # value bytes swallowed by the first op
    end = 8 + _HEADER_LEN
    chain_total = end - (13 + first_len) - 2 - final_len
    value = bytearray(b"a" * start_value)
    for length in _chain(chain_total):
        value += b"C" + bytes([length]) + b"a" * length
    value += b"C" + bytes([final_len]) + b"a" * after
    text = b'{"0C' + bytes([first_len]) + between + bytes(value) + b'"}}' + b" " * pad
    assert len(text) == _HEADER_LEN, len(text)
    json.loads(text)
    return struct.pack("<Q", _HEADER_LEN) + text + continuation


@mutant("poly")
def poly_safetensors_pickle(ctx: Ctx) -> bytes:
    """Valid safetensors whose bytes are also a pickle; its tensor data continue the pickle into a legacy stream."""
    ctx.suffix = ctx.choice("file name ends", [".bin", ".pth", ".safetensors"])
    p = list(ctx.seeds.legacy_pickles)
    p[3] = ctx.seeds.legacy_alt_main
    magic = b"\x8a\x0a" + MAGIC.to_bytes(10, "little") + b"."
    cont = ctx.fragment() + magic + legacy_bytes(p[1:], ctx.seeds.legacy_storages)
    ctx.note("pickle at byte 0 runs into the tensor data: [payload] magic number, then a legacy stream (alt main)")
    return safetensors_pickle(cont)


@mutant("poly")
def poly_pickle_then_zip(ctx: Ctx) -> bytes:
    """A legacy stream followed by a whole torch zip (or the reverse)."""
    order = ctx.choice("order", ["legacy then zip", "zip then legacy"])
    z = build([m.but() for m in ctx.seeds.zip_members])
    legacy = legacy_with_main(ctx)
    return legacy + z if order == "legacy then zip" else z + legacy


@mutant("poly")
def poly_tar_name_pickle(ctx: Ctx) -> bytes:
    """A valid torch tar whose first header's name field is a pickle (torch reads the tar)."""
    parts = tar_parts(ctx.seeds.tar)
    name = (ctx.fragment(text=True) + b"I7\n.").decode("latin-1")
    fmt = ctx.choice("headers", ["ustar", "v7"])
    entries = [entry(name, b"")] + [entry(n, parts[n]) for n in ORDER]
    if fmt == "v7":
        entries = [to_v7(e) for e in entries]
    ctx.note("hostile: the payload is in the first header's name")
    return finish(entries)


@mutant("poly")
def safetensors_identity(ctx: Ctx) -> bytes:
    """The safetensors seed, read by torch 2.13 only under a ``.safetensors`` name.

    The hostile flavour carries payload text in its metadata, which nothing ever runs.
    """
    from .seeds import safetensors_bytes

    ctx.suffix = ctx.choice("file name ends", [".safetensors", ".bin"])
    if not ctx.hostile:
        return ctx.seeds.safetensors
    return safetensors_bytes({"w": ("F32", [2], struct.pack("<2f", 1, 2))},
                             metadata={"note": ctx.fragment(text=True).decode("latin-1")})
