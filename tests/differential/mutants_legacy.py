"""Legacy-stream mutants (torch < 1.6 format): five pickles, then int64 counts and storage bytes.

Facts the classes lean on: ``_legacy_load`` first tries ``tarfile`` and, on any
``TarError``, unpickles from byte 0 with the C unpickler (``weights_only=False``)
or torch's own unpickler (``weights_only=True``, which knows no FRAME and no text
opcodes). It checks only the magic number and the protocol version (``!=``),
ignores sys_info, reads each storage with ``_set_from_file`` in the order of the
key list, and ignores anything after the last storage. The C unpickler reads
``INT`` with ``strtol(s, 0)`` (so ``I010`` is 8 and ``I0x10`` is 16), falling
back to ``int(s, 0)`` rules, and resumes right after STOP even inside a FRAME.
"""

from __future__ import annotations

import struct

from . import pickles
from .registry import Ctx, mutant
from .seeds import legacy_bytes

MAGIC = 0x1950A86A20F9469CFC6C
NAMES = ("magic", "protocol", "sys_info", "main", "keys")


def _parts(ctx: Ctx) -> list[bytes]:
    return list(ctx.seeds.legacy_pickles)


def legacy_with_main(ctx: Ctx) -> bytes:
    """The legacy seed whose main pickle is the slot (payload, or the alternative clean main pickle)."""
    p = _parts(ctx)
    p[3] = ctx.slot(p[3], ctx.seeds.legacy_alt_main)
    return legacy_bytes(p, ctx.seeds.legacy_storages)


def _payload_main(ctx: Ctx, p: list[bytes]) -> list[bytes]:
    p[3] = ctx.slot(p[3])
    return p


@mutant("legacy")
def legacy_identity(ctx: Ctx) -> bytes:
    """The seed as torch wrote it; the payload (hostile) sits in the main pickle. A sanity baseline."""
    return legacy_bytes(_payload_main(ctx, _parts(ctx)), ctx.seeds.legacy_storages)


@mutant("legacy")
def legacy_payload_site(ctx: Ctx) -> bytes:
    """The payload in one of the five pickles (torch runs all five, in order)."""
    p = _parts(ctx)
    site = ctx.choice("pickle", NAMES)
    p[NAMES.index(site)] = ctx.slot(p[NAMES.index(site)])
    return legacy_bytes(p, ctx.seeds.legacy_storages)


def _framed(pkl: bytes, how: str, extra: int = 0) -> bytes:
    body = pkl[2:] if pkl[:1] == b"\x80" else pkl
    if how == "FRAME before PROTO":
        inner = b"\x80\x04" + body
        return b"\x95" + struct.pack("<Q", len(inner) + extra) + inner
    if how == "FRAME, no PROTO":
        return b"\x95" + struct.pack("<Q", len(body) + extra) + body
    return b"\x80\x04\x95" + struct.pack("<Q", len(body) + extra) + body


@mutant("legacy")
def legacy_frame_first(ctx: Ctx) -> bytes:
    """Pickles wrapped in protocol-4 FRAMEs; the stream may start with FRAME (0x95) instead of PROTO."""
    p = _payload_main(ctx, _parts(ctx))
    how = ctx.choice("framing", ["FRAME before PROTO", "FRAME, no PROTO", "PROTO 4 then FRAME"])
    which = ctx.choice("framed", ["magic", "all"])
    for i in range(5 if which == "all" else 1):
        p[i] = _framed(p[i], how)
    return legacy_bytes(p, ctx.seeds.legacy_storages)


def _text_sys_info(style: str) -> bytes:
    t = lambda v: pickles.text_int(v, style)  # noqa: E731
    return (b"(dp0\nVprotocol_version\np1\n" + t(1001) + b"sVlittle_endian\np2\nI01\nsVtype_sizes\np3\n(dp4\n"
            b"Vshort\np5\n" + t(2) + b"sVint\np6\n" + t(4) + b"sVlong\np7\n" + t(4) + b"ss.")


def _text_keys(keys: list[str]) -> bytes:
    return b"(lp0\n" + b"".join(b"V" + k.encode() + b"\np%d\na" % (n + 1) for n, k in enumerate(keys)) + b"."


def _ints_as_text(pkl: bytes, style: str, small_plain: bool = False) -> bytes:
    # small_plain keeps 0 and 1 in decimal: a 2-character INT line of 0 or 1 is a bool for the C unpickler.
    out = bytearray()
    for name, arg in pickles.ops(pkl):
        if name in ("BININT", "BININT1", "BININT2"):
            out += pickles.text_int(arg, "dec" if small_plain and arg in (0, 1) else style)
        else:
            out += pickles.emit([(name, arg)])
    return bytes(out)


@mutant("legacy")
def legacy_text_ints(ctx: Ctx) -> bytes:
    """Protocol-0 INT opcodes in base-0 spellings (``I0x3e9``, ``I01751``, ``I 1001``, ``I1_001``...)."""
    p = _parts(ctx)
    style = ctx.choice("INT style", pickles.INT_STYLES)
    which = ctx.choice("rewritten", ["magic+protocol", "sys_info", "main", "keys", "all"])
    keys = [k for k, _s, _b in ctx.seeds.legacy_storages]
    if which in ("magic+protocol", "all"):
        p[0] = pickles.text_int(MAGIC, style) + b"."
        p[1] = pickles.text_int(1001, style) + b"."
    if which in ("sys_info", "all"):
        p[2] = _text_sys_info(style)
    if which in ("main", "all"):
        small = ctx.choice("0 and 1 in main", ["same style", "decimal"]) == "decimal"
        p[3] = _ints_as_text(p[3], style, small)
    if which in ("keys", "all"):
        p[4] = _text_keys(keys)
    site = ctx.choice("payload in", ["magic", "main"])
    i = NAMES.index(site)
    p[i] = p[i][:2] + ctx.fragment(text=True) + p[i][2:] if p[i][:1] == b"\x80" else ctx.fragment(text=True) + p[i]
    return legacy_bytes(p, ctx.seeds.legacy_storages)


@mutant("legacy")
def legacy_extra_pickle(ctx: Ctx) -> bytes:
    """One more pickle somewhere in the stream (torch reads pickles strictly in sequence)."""
    p = _parts(ctx)
    where = ctx.choice("inserted", ["at the start", "after magic", "after sys_info", "after keys", "at the end"])
    extra = ctx.slot(b"\x80\x02K\x01.")
    idx = {"at the start": 0, "after magic": 1, "after sys_info": 3, "after keys": 5}.get(where)
    if idx is None:
        return legacy_bytes(p, ctx.seeds.legacy_storages) + extra
    if idx == 5:
        blob = legacy_bytes(p, ctx.seeds.legacy_storages)
        cut = len(b"".join(p))
        return blob[:cut] + extra + blob[cut:]
    p.insert(idx, extra)
    return legacy_bytes(p, ctx.seeds.legacy_storages)


_SYS_INFOS = {
    "empty dict": b"\x80\x02}.", "list": b"\x80\x02].", "int": b"\x80\x02K\x07.", "None": b"\x80\x02N.",
    "big endian": b"\x80\x02}(X\x0d\x00\x00\x00little_endian\x89u.",
    "no little_endian": b"\x80\x02}(X\x10\x00\x00\x00protocol_versionM\xe9\x03u.",
    "protocol 1000": b"\x80\x02}(X\x10\x00\x00\x00protocol_versionM\xe8\x03X\x0d\x00\x00\x00little_endian\x88u.",
}


@mutant("legacy")
def legacy_sys_info(ctx: Ctx) -> bytes:
    """sys_info replaced (torch unpickles it and then ignores it)."""
    p = _payload_main(ctx, _parts(ctx))
    p[2] = _SYS_INFOS[ctx.choice("sys_info", list(_SYS_INFOS))]
    return legacy_bytes(p, ctx.seeds.legacy_storages)


@mutant("legacy")
def legacy_frame_past_stop(ctx: Ctx) -> bytes:
    """A FRAME that declares more bytes than its pickle: they belong to the next pickle, which torch reads."""
    p = _parts(ctx)
    i = NAMES.index(ctx.choice("framed pickle", ["magic", "protocol", "sys_info", "main"]))
    p[i + 1] = ctx.slot(p[i + 1])
    k = ctx.choice("frame overshoot (bytes)", [1, 2, 8, 40])
    p[i] = _framed(p[i], "PROTO 4 then FRAME", extra=k)
    ctx.note("the payload (hostile) is in the pickle after the framed one")
    return legacy_bytes(p, ctx.seeds.legacy_storages)


@mutant("legacy")
def legacy_storage_counts(ctx: Ctx) -> bytes:
    """A storage's int64 element count disagrees with its persistent id (bytes following it or not)."""
    p = _payload_main(ctx, _parts(ctx))
    st = list(ctx.seeds.legacy_storages)
    n = ctx.rng.randrange(len(st))
    key, size, raw = st[n]
    true = len(raw) // size
    lie = ctx.choice("count", ["+1", "-1", "x2", "0", "-5", "2**40"])
    count = {"+1": true + 1, "-1": true - 1, "x2": true * 2, "0": 0, "-5": -5, "2**40": 1 << 40}[lie]
    follow = ctx.choice("bytes follow the count", [True, False])
    if follow and 0 <= count <= true * 2:
        st[n] = (key, size, (raw + b"\x11" * len(raw))[:count * size])
    ctx.note(f"storage {key}")
    counts = [len(r) // s for _k, s, r in st]
    counts[n] = count
    return legacy_bytes(p, st, counts)


def _keys_pickle(keys: list[str]) -> bytes:
    return b"\x80\x02](" + b"".join(b"X" + struct.pack("<I", len(k)) + k.encode() for k in keys) + b"e."


@mutant("legacy")
def legacy_keys(ctx: Ctx) -> bytes:
    """The storage-key list reordered, duplicated, short, or naming a storage that does not exist."""
    p = _payload_main(ctx, _parts(ctx))
    st = list(ctx.seeds.legacy_storages)
    keys = [k for k, _s, _r in st]
    trick = ctx.choice("trick", ["reversed, bytes too", "reversed, bytes not", "duplicate key", "missing key",
                                 "unknown key", "empty"])
    if trick == "reversed, bytes too":
        st, keys = st[::-1], keys[::-1]
    elif trick == "reversed, bytes not":
        keys = keys[::-1]
    elif trick == "duplicate key":
        keys, st = keys + keys[:1], st + [(st[0][0], st[0][1], st[0][2][::-1])]
    elif trick == "missing key":
        keys, st = keys[:-1], st[:-1]
    elif trick == "unknown key":
        keys, st = keys + ["999"], st + [("999", 1, b"\x00" * 4)]
    else:
        keys, st = [], []
    p[4] = _keys_pickle(keys)
    return legacy_bytes(p, st)


@mutant("legacy")
def legacy_trailing(ctx: Ctx) -> bytes:
    """Data after the last storage (torch never reads it); the payload is there, or in the main pickle."""
    kind = ctx.choice("trailing", ["junk", "pickle", "zip"])
    p = _parts(ctx) if kind == "pickle" else _payload_main(ctx, _parts(ctx))
    tail = {"junk": b"\x00JUNK" * 3, "pickle": ctx.slot(b"\x80\x02K\x01."), "zip": b"PK\x03\x04" + b"\x00" * 40}[kind]
    return legacy_bytes(p, ctx.seeds.legacy_storages) + tail


_MAGIC_RAW = MAGIC.to_bytes(10, "little")
_VALUES = {
    "protocol BINFLOAT 1001.0": (1, b"\x80\x02G" + struct.pack(">d", 1001.0) + b"."),
    "protocol LONG1 1001": (1, b"\x80\x02\x8a\x02\xe9\x03."),
    "protocol as text '1001'": (1, b"\x80\x02X\x04\x00\x00\x001001."),
    "protocol FLOAT text": (1, b"F1001.0\n."),
    "magic LONG4": (0, b"\x80\x02\x8b\x0a\x00\x00\x00" + _MAGIC_RAW + b"."),
    "magic LONG text": (0, b"L" + str(MAGIC).encode() + b"L\n."),
    "magic LONG hex": (0, b"L0x" + f"{MAGIC:x}".encode() + b"L\n."),
    "magic + 1": (0, b"\x80\x02\x8a\x0a" + (MAGIC + 1).to_bytes(10, "little") + b"."),
}


@mutant("legacy")
def legacy_header_values(ctx: Ctx) -> bytes:
    """The magic number and protocol version spelled with other opcodes (torch compares with ``!=``)."""
    p = _payload_main(ctx, _parts(ctx))
    i, blob = _VALUES[ctx.choice("value", list(_VALUES))]
    p[i] = blob
    return legacy_bytes(p, ctx.seeds.legacy_storages)


@mutant("legacy")
def legacy_beside_tree(ctx: Ctx) -> bytes:
    """A checkpoint file in a folder that also holds an extracted archive (``data.pkl``, ``data/``...).

    torch.load(path) reads the file it is given; the folder around it never matters.
    The extracted tree holds the alternative clean object.
    """
    kind = ctx.choice("file", ["legacy stream", "torch zip"])
    layout = ctx.choice("tree", ["beside the file", "in archive/ beside the file"])
    top = "" if layout == "beside the file" else "archive/"
    for m in ctx.seeds.zip_members:
        rel = m.name.decode().split("/", 1)[1]
        ctx.siblings[top + rel] = ctx.seeds.zip_alt_pkl if rel == "data.pkl" else m.data
    if kind == "legacy stream":
        return legacy_bytes(_payload_main(ctx, _parts(ctx)), ctx.seeds.legacy_storages)
    from .zipfmt import build
    ms = [m.but() for m in ctx.seeds.zip_members]
    i = next(n for n, m in enumerate(ms) if m.name.endswith(b"/data.pkl"))
    ms[i] = ms[i].but(data=ctx.slot(ms[i].data))
    return build(ms)
