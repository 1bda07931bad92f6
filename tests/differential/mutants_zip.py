"""Zip mutants of the torch.save seed: names, directories, ZIP64 records, headers, dispatch records.

Facts the classes lean on (torch 2.x ``PyTorchStreamReader`` over miniz 3, and
``torch/serialization.py``): torch sniffs a zip only by ``PK\\x03\\x04`` at byte 0;
the archive's name is the first central entry's top folder and every record must
sit under it (``get_all_records``); records are found with miniz's binary search
over a case-insensitively sorted directory; a ZIP64 locator right before the end
record switches miniz to the ZIP64 record's values whatever the 32-bit fields say;
``constants.pkl`` among the records sends the file to ``torch.jit.load``.
"""

from __future__ import annotations

import struct

from .registry import Ctx, mutant
from .zipfmt import (DEFLATED, FLAG_UTF8, Member, build, central_directory, end_record, end_record64,
                     local_records, locator64)

PKL = b"/data.pkl"


def _members(ctx: Ctx) -> list[Member]:
    return [m.but() for m in ctx.seeds.zip_members]


def _find(ms: list[Member], suffix: bytes) -> int:
    return next(i for i, m in enumerate(ms) if m.name.endswith(suffix))


def _with_payload(ctx: Ctx, ms: list[Member]) -> list[Member]:
    """The seed's own data.pkl carries the payload in the hostile flavour."""
    i = _find(ms, PKL)
    ms[i] = ms[i].but(data=ctx.slot(ms[i].data))
    return ms


def _case_variant(ctx: Ctx, text: bytes) -> bytes:
    while True:
        out = bytes(c ^ 0x20 if 97 <= (c | 0x20) <= 122 and ctx.rng.random() < 0.5 else c for c in text)
        if out != text:
            return out


def _twin(ctx: Ctx, name: bytes) -> Member:
    """An extra data.pkl-like member: payload (hostile) or the alternative clean pickle."""
    ctx.note(f"slot {name!r} holds the payload / the alternative clean pickle")
    return Member(name, ctx.slot(ctx.seeds.zip_pkl, ctx.seeds.zip_alt_pkl))


def _insert(ctx: Ctx, ms: list[Member], member: Member, where: str) -> list[Member]:
    i = _find(ms, PKL)
    at = {"start": 0, "before data.pkl": i, "after data.pkl": i + 1, "end": len(ms),
          "middle": max(1, len(ms) // 2)}[where]
    return ms[:at] + [member] + ms[at:]


@mutant("zip")
def zip_identity(ctx: Ctx) -> bytes:
    """The seed rebuilt by our writer; the payload (hostile) sits in data.pkl. A sanity baseline.

    Named ``.safetensors`` one time in four: torch >= 2.13 then reads it with the safetensors library.
    """
    ctx.suffix = ".safetensors" if ctx.rng.random() < 0.25 else ".bin"
    ctx.note(f"file name ends {ctx.suffix}")
    return build(_with_payload(ctx, _members(ctx)))


@mutant("zip")
def zip_case_twin(ctx: Ctx) -> bytes:
    """A case variant of data.pkl beside the real one (miniz looks names up case-insensitively)."""
    ms = _members(ctx)
    twin = _twin(ctx, b"archive/" + _case_variant(ctx, b"data.pkl"))
    return build(_insert(ctx, ms, twin, ctx.choice("twin at", ["before data.pkl", "after data.pkl", "end", "middle"])))


@mutant("zip")
def zip_case_only(ctx: Ctx) -> bytes:
    """One record renamed to a case variant, with no exact-case original left."""
    ms = _with_payload(ctx, _members(ctx))
    target = ctx.choice("renamed", [b"data.pkl", b"data/0", b"byteorder", b"version", b"data/1"])
    i = _find(ms, b"/" + target)
    new = b"archive/" + _case_variant(ctx, target)
    ctx.note(f"archive/{target.decode()} -> {new!r}")
    ms[i] = ms[i].but(name=new)
    return build(ms)


@mutant("zip")
def zip_duplicate(ctx: Ctx) -> bytes:
    """Two entries with the very same name; which one a reader takes is up to it."""
    ms = _members(ctx)
    target = ctx.choice("duplicated", [b"data.pkl", b"data/0", b"version", b"byteorder"])
    first = ctx.choice("copy", ["first", "second"])
    i = _find(ms, b"/" + target)
    if target == b"data.pkl":
        extra = _twin(ctx, ms[i].name)
    else:
        ms = _with_payload(ctx, ms)
        alt = {b"data/0": ms[i].data[::-1], b"version": b"2\n", b"byteorder": b"big"}[target]
        extra = ms[i].but(data=alt)
        ctx.note(f"other copy of {target!r} holds {alt[:12]!r}")
    at = i if first == "first" else i + 1
    return build(ms[:at] + [extra] + ms[at:])


@mutant("zip")
def zip_nul_name(ctx: Ctx) -> bytes:
    """A member name with a NUL inside (Python's zipfile cuts names at NUL; miniz compares full lengths)."""
    ms = _members(ctx)
    how = ctx.choice("how", ["twin", "only"])
    name = b"archive/data.pkl\x00" + ctx.choice("after NUL", [b"", b"x", b".bak", b"/../evil"])
    if how == "twin":
        return build(_insert(ctx, ms, _twin(ctx, name), ctx.choice("twin at", ["before data.pkl", "end"])))
    ms = _with_payload(ctx, ms)
    ms[_find(ms, PKL)] = ms[_find(ms, PKL)].but(name=name)
    return build(ms)


@mutant("zip")
def zip_outside_top(ctx: Ctx) -> bytes:
    """A member outside the archive's top folder (not first): torch's get_all_records refuses it."""
    ms = _members(ctx)
    name = ctx.choice("outside name", [b"data.pkl", b"other/data.pkl", b"archive2/data.pkl", b"Archive/data.pkl",
                                       b"/archive/data.pkl", b"archive", b"archive\\data.pkl"])
    return build(_insert(ctx, ms, _twin(ctx, name), ctx.choice("at", ["after data.pkl", "middle", "end"])))


@mutant("zip")
def zip_first_other_folder(ctx: Ctx) -> bytes:
    """The first central entry lies in another folder, which names the archive for torch."""
    ms = _members(ctx)
    how = ctx.choice("how", ["one entry first", "whole second tree first", "whole second tree last"])
    if how == "one entry first":
        return build([_twin(ctx, b"evil/data.pkl")] + ms)
    tree = [m.but(name=b"evil/" + m.name.split(b"/", 1)[1]) for m in ms]
    i = _find(tree, PKL)
    tree[i] = _twin(ctx, tree[i].name)
    return build(tree + ms if how == "whole second tree first" else ms + tree)


@mutant("zip")
def zip_top_folder(ctx: Ctx) -> bytes:
    """The top folder renamed (torch accepts any name; the record names follow it)."""
    ms = _with_payload(ctx, _members(ctx))
    top = ctx.choice("top folder", [b"x", b"a b", b"\xc3\xbcber", b"archive.pth", b"x/y", b".", b"..", b"",
                                    b"ARCHIVE", b"snapshot_83.pth"])
    utf8 = ctx.choice("utf-8 flag", [False, True])
    return build([m.but(name=top + b"/" + m.name.split(b"/", 1)[1], flags=FLAG_UTF8 if utf8 else 0) for m in ms])


@mutant("zip")
def zip_root_layout(ctx: Ctx) -> bytes:
    """Every record at the zip's root, no top folder at all."""
    ms = _with_payload(ctx, _members(ctx))
    return build([m.but(name=m.name.split(b"/", 1)[1]) for m in ms])


_CLIPPED_END = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0)


@mutant("zip")
def zip64_records(ctx: Ctx) -> bytes:
    """A consistent ZIP64 end record and locator, with or without 0xFFFF.. markers and ZIP64 extras."""
    ms = _with_payload(ctx, _members(ctx))
    clip = ctx.choice("32-bit fields", ["real", "0xFFFF markers"]) != "real"
    extra = ctx.choice("zip64 extra in central entries", [False, True])
    w = local_records(ms)
    cd = central_directory(ms, w.offsets, zip64_extra=extra)
    cd_off = len(w.blob)
    rec = cd_off + len(cd)
    return (w.blob + cd + end_record64(len(ms), len(cd), cd_off) + locator64(rec)
            + (_CLIPPED_END if clip else end_record(len(ms), len(cd), cd_off)))


def _two_directories(ctx: Ctx) -> tuple[bytes, dict[str, tuple[int, int]], int]:
    """Locals for the seed plus one extra data.pkl local (the slot); central directory "orig" and "alt".

    Returns the body so far, ``{which: (offset, size)}`` and the member count; "alt"
    differs from "orig" only in pointing data.pkl at the slot.
    """
    ms = _members(ctx)
    i = _find(ms, PKL)
    w = local_records(ms)
    slot = _twin(ctx, ms[i].name)
    extra = local_records([slot], len(w.blob))
    body = w.blob + extra.blob
    alt_ms, alt_offs = list(ms), list(w.offsets)
    alt_ms[i], alt_offs[i] = slot, extra.offsets[0]
    return body, {"orig": central_directory(ms, w.offsets), "alt": central_directory(alt_ms, alt_offs)}, len(ms)


@mutant("zip")
def zip64_second_directory(ctx: Ctx) -> bytes:
    """The 32-bit end record and the ZIP64 records point at two different central directories."""
    body, cds, n = _two_directories(ctx)
    t64 = ctx.choice("ZIP64 record points at", ["alt", "orig"])
    t32 = ctx.choice("32-bit end record points at", ["alt", "orig", "0xFFFF markers"])
    layout = ctx.choice("layout", ["adjacent", "remote (locator offset)", "both (adjacent and remote disagree)"])
    other = "orig" if t64 == "alt" else "alt"
    where: dict[str, tuple[int, int]] = {}
    remote_at = None
    if layout != "adjacent":  # a ZIP64 record before the directories, reached only through the locator
        remote_at = len(body)
        body += b"\0" * 56  # patched below, once the directories' offsets are known
    for which in (other, t64):  # t64's directory last, so miniz computes no archive offset
        where[which] = (len(body), len(cds[which]))
        body += cds[which]
    if remote_at is not None:
        target = t64 if layout.startswith("remote") else other
        body = body[:remote_at] + end_record64(n, where[target][1], where[target][0]) + body[remote_at + 56:]
    if layout.startswith("remote"):
        body += b"\x00" * 56 + locator64(remote_at)
    else:
        adjacent = len(body)
        body += end_record64(n, where[t64][1], where[t64][0]) + locator64(remote_at if remote_at is not None
                                                                           else adjacent)
    if t32 == "0xFFFF markers":
        return body + _CLIPPED_END
    return body + end_record(n, where[t32][1], where[t32][0])


@mutant("zip")
def zip64_disagree(ctx: Ctx) -> bytes:
    """ZIP64 and 32-bit end records disagree on the entry count; the last entry is a data.pkl twin."""
    ms = _members(ctx) + [_twin(ctx, b"archive/data.pkl")]
    w = local_records(ms)
    cd = central_directory(ms, w.offsets)
    n = len(ms)
    n64, n32 = ctx.choice("entries (zip64, 32-bit)", [(n - 1, n), (n, n - 1), (n - 1, n - 1), (n, 0xFFFF)])
    rec = len(w.blob) + len(cd)
    tail = struct.pack("<4sQ2H2L4Q", b"PK\x06\x06", 44, 45, 45, 0, 0, n64, n64, len(cd), len(w.blob))
    return (w.blob + cd + tail + locator64(rec)
            + struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, n32, n32, len(cd), len(w.blob), 0))


@mutant("zip")
def zip_two_end_records(ctx: Ctx) -> bytes:
    """Two central directories, each with its own end record; the later record points at "alt"."""
    body, cds, n = _two_directories(ctx)
    how = ctx.choice("second end record", ["after the first", "inside the first's comment", "comment too long"])
    a_off = len(body)
    body += cds["orig"]
    b_off = len(body) + 22
    second = cds["alt"] + end_record(n, len(cds["alt"]), b_off)
    if how == "after the first":
        return body + end_record(n, len(cds["orig"]), a_off) + second
    clen = len(second) if how == "inside the first's comment" else len(second) + 100
    return body + end_record(n, len(cds["orig"]), a_off, comment_len=clen) + second


@mutant("zip")
def zip_eocd_in_tail(ctx: Ctx) -> bytes:
    """An end-of-central-directory signature within the last 21 bytes (too short to be a record)."""
    ms = _with_payload(ctx, _members(ctx))
    k = ctx.choice("bytes after the signature", [0, 1, 5, 17])
    tail = b"PK\x05\x06" + bytes(ctx.rng.randrange(256) for _ in range(k))
    as_comment = ctx.choice("as", ["comment", "trailing data"]) == "comment"
    return build(ms, comment=tail) if as_comment else build(ms) + tail


@mutant("zip")
def zip_comment(ctx: Ctx) -> bytes:
    """An archive comment, possibly holding zip signatures, possibly with a lying length."""
    ms = _with_payload(ctx, _members(ctx))
    body = ctx.choice("comment", [b"hello", b"PK\x01\x02" * 5, b"PK\x03\x04junk", bytes(range(256)) * 2,
                                  b"\x80\x02K\x01."])
    length = ctx.choice("declared length", ["exact", "short", "long"])
    data = build(ms, comment=body)
    if length == "exact":
        return data
    declared = len(body) - 3 if length == "short" else len(body) + 50
    at = len(data) - len(body) - 2
    return data[:at] + struct.pack("<H", declared) + data[at + 2:]


def _prefix_blob(ctx: Ctx, kind: str) -> bytes:
    if kind == "junk":
        return b"JUNK" + bytes(ctx.rng.randrange(256) for _ in range(ctx.rng.randrange(1, 60)))
    if kind == "pickle":
        return ctx.slot(b"\x80\x02K\x01.")
    from .mutants_legacy import legacy_with_main
    return legacy_with_main(ctx)


@mutant("zip")
def zip_prefix(ctx: Ctx) -> bytes:
    """Bytes before the zip: torch then never sees a zip (it checks byte 0) and unpickles from byte 0.

    The payload (hostile) is in the prefix, or in data.pkl when the prefix is junk.
    """
    kind = ctx.choice("prefix", ["junk", "pickle", "legacy stream"])
    ms = _with_payload(ctx, _members(ctx)) if kind == "junk" else _members(ctx)
    from_file = ctx.choice("offsets counted from", ["file start", "zip start"]) == "file start"
    return build(ms, prefix=_prefix_blob(ctx, kind), offsets_from_prefix=from_file)


@mutant("zip")
def zip_trailing(ctx: Ctx) -> bytes:
    """Bytes after the end record: junk, a pickle, or a whole legacy checkpoint (payload there, or in data.pkl)."""
    kind = ctx.choice("trailing", ["junk", "pickle", "legacy stream"])
    ms = _with_payload(ctx, _members(ctx)) if kind == "junk" else _members(ctx)
    return build(ms) + _prefix_blob(ctx, kind)


@mutant("zip")
def zip_data_descriptor(ctx: Ctx) -> bytes:
    """Sizes and CRC only in data descriptors (flag bit 3), with or without their signature."""
    ms = _with_payload(ctx, _members(ctx))
    sig = ctx.choice("descriptor signature", [True, False])
    picked = [i for i in range(len(ms)) if ctx.rng.random() < 0.6] or [0]
    ctx.note(f"descriptors on {[ms[i].name.decode(errors='replace') for i in picked]}")
    for i in picked:
        ms[i] = ms[i].but(descriptor=True, descriptor_sig=sig)
    return build(ms)


@mutant("zip")
def zip_local_name_mismatch(ctx: Ctx) -> bytes:
    """The local header names a member differently from the central directory."""
    ms = _with_payload(ctx, _members(ctx))
    i = ctx.rng.randrange(len(ms))
    local = ctx.choice("local name", [b"", b"x", ms[(i + 1) % len(ms)].name, ms[i].name.upper(),
                                      ms[i].name + b"-longer-than-the-central-name"])
    ctx.note(f"member {ms[i].name!r}")
    ms[i] = ms[i].but(local_name=local)
    return build(ms)


@mutant("zip")
def zip_bad_crc(ctx: Ctx) -> bytes:
    """A wrong CRC-32 in both headers of one member."""
    ms = _with_payload(ctx, _members(ctx))
    i = _find(ms, b"/" + ctx.choice("member", [b"data.pkl", b"data/0", b"version", b"byteorder"]))
    ms[i] = ms[i].but(crc=ms[i].checksum() ^ 0x5A5A)
    return build(ms)


@mutant("zip")
def zip_deflated(ctx: Ctx) -> bytes:
    """Some members deflated instead of stored."""
    ms = _with_payload(ctx, _members(ctx))
    picked = [i for i in range(len(ms)) if ctx.rng.random() < 0.5] or [_find(ms, PKL)]
    ctx.note(f"deflated {[ms[i].name.decode() for i in picked]}")
    for i in picked:
        ms[i] = ms[i].but(method=DEFLATED)
    return build(ms)


@mutant("zip")
def zip_constants_pkl(ctx: Ctx) -> bytes:
    """A constants.pkl record (exact case: torch hands the file to torch.jit.load)."""
    ms = _members(ctx)
    name = ctx.choice("record", [b"constants.pkl", b"CONSTANTS.PKL", b"Constants.pkl", b"constants.pkl.bak"])
    member = Member(b"archive/" + name, ctx.slot(b"\x80\x02)."))
    ctx.note(f"archive/{name.decode()} holds the payload (hostile) or an empty tuple")
    return build(_insert(ctx, ms, member, ctx.choice("at", ["start", "after data.pkl", "end"])))


_RECORD_VALUES = {
    b"version": [b"3", b"1", b"0", b"99", b"junk", b" 3", b"-1", b"", b"3junk", b"0x3", None],
    b".data/version": [b"3", b"0", b"99", b"junk"],
    b"byteorder": [b"big", b"little\n", b"LITTLE", b"", b"middle", None],
    b".format_version": [b"0", b"2", b"junk", None],
    b".storage_alignment": [b"1", b"4096", b"junk", b"0", None],
}


@mutant("zip")
def zip_records(ctx: Ctx) -> bytes:
    """The small records torch reads besides data.pkl: version, byteorder, format version, alignment."""
    ms = _with_payload(ctx, _members(ctx))
    record = ctx.choice("record", list(_RECORD_VALUES))
    value = ctx.choice("value (None: removed)", _RECORD_VALUES[record])
    try:
        i = _find(ms, b"/" + record)
    except StopIteration:
        ms.append(Member(b"archive/" + record, b""))
        i = len(ms) - 1
    if value is None:
        del ms[i]
    else:
        ms[i] = ms[i].but(data=value)
    return build(ms)


@mutant("zip")
def zip_storage_records(ctx: Ctx) -> bytes:
    """Storage records that are longer, shorter, missing, extra, or named through odd keys."""
    from . import pickles

    ms = _with_payload(ctx, _members(ctx))
    trick = ctx.choice("trick", ["longer", "shorter", "missing", "extra", "key '00'", "key with a slash"])
    i = _find(ms, b"/data/1")
    if trick == "longer":
        ms[i] = ms[i].but(data=ms[i].data + b"\x01" * 8)
    elif trick == "shorter":
        ms[i] = ms[i].but(data=ms[i].data[:-2])
    elif trick == "missing":
        del ms[i]
    elif trick == "extra":
        ms.append(Member(b"archive/data/99", b"\x07" * 16))
    else:
        key = "00" if trick == "key '00'" else "sub/1"
        p = _find(ms, PKL)
        ms[p] = ms[p].but(data=pickles.rename_strings(ms[p].data, {"1": key}))
        ms[i] = ms[i].but(name=b"archive/data/" + key.encode())
    return build(ms)


@mutant("zip")
def zip_member_flags(ctx: Ctx) -> bytes:
    """A member marked encrypted or compressed with a method miniz cannot read (harmless unless torch reads it)."""
    ms = _with_payload(ctx, _members(ctx))
    target = ctx.choice("member", [b"data.pkl", b"data/0", b".data/serialization_id", b".format_version"])
    trick = ctx.choice("trick", ["encrypted bit", "method 12 (bzip2)", "method 14 (lzma)", "method 99 (AES)"])
    i = _find(ms, b"/" + target)
    if trick == "encrypted bit":
        ms[i] = ms[i].but(flags=ms[i].flags | 0x1)
    else:
        ms[i] = ms[i].but(method=int(trick.split()[1]))  # stored bytes, mislabelled
    return build(ms)


@mutant("zip")
def zip_local_fields(ctx: Ctx) -> bytes:
    """The local header disagrees with the central directory on method, flags or its extra field."""
    ms = _with_payload(ctx, _members(ctx))
    i = _find(ms, b"/" + ctx.choice("member", [b"data.pkl", b"data/0", b"version"]))
    trick = ctx.choice("local header", ["method 8", "descriptor flag", "12-byte extra", "extra of 0xFF padding"])
    if trick == "method 8":
        ms[i] = ms[i].but(local_method=8)
    elif trick == "descriptor flag":
        ms[i] = ms[i].but(local_flags=0x8)
    elif trick == "12-byte extra":
        ms[i] = ms[i].but(local_extra=struct.pack("<HH", 0xCAFE, 8) + b"\x00" * 8)
    else:
        ms[i] = ms[i].but(local_extra=struct.pack("<HH", 0x4246, 60) + b"\xff" * 60)
    return build(ms)
