"""Tar mutants of the torch <= 0.3 seed (members sys_info, pickle, storages, tensors).

Facts the classes lean on: torch opens any non-zip file with ``tarfile.open(mode="r:")``;
a readable first header is enough (no ``ustar`` magic needed). It then takes
``storages``, ``tensors`` and ``pickle`` with ``getmember``/``extractfile``,
which return the LAST member of that name and follow hard and symbolic links to
other members; it never reads ``sys_info``. A ``TarError`` at any point (a broken
header after a PAX header, for instance) makes torch start over and unpickle the
file from byte 0, i.e. the first header's name field.
"""

from __future__ import annotations

import io
import tarfile

from . import pickles
from .registry import Ctx, mutant

ORDER = ("sys_info", "pickle", "storages", "tensors")


def tar_parts(blob: bytes) -> dict[str, bytes]:
    """The seed tar's members by name."""
    with tarfile.open(fileobj=io.BytesIO(blob)) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers()}


def entry(name: str | bytes, data: bytes = b"", *, kind: bytes = tarfile.REGTYPE, link: str = "",
          fmt: int = tarfile.USTAR_FORMAT) -> bytes:
    """One header (plus data, padded to 512) written by :mod:`tarfile` in the given format."""
    info = tarfile.TarInfo(name if isinstance(name, str) else name.decode("utf-8", "surrogateescape"))
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    info.type, info.linkname, info.mtime = kind, link, 0
    head = info.tobuf(fmt, "utf-8", "surrogateescape")
    body = data if kind == tarfile.REGTYPE else b""
    return head + body + b"\0" * (-len(body) % 512)


def finish(entries: list[bytes]) -> bytes:
    """Concatenate entries and the two zero blocks that end an archive."""
    return b"".join(entries) + b"\0" * 1024


def to_v7(header: bytes) -> bytes:
    """Rewrite a ustar header as a pre-POSIX (v7) one: no magic, no version, no user names, fresh checksum."""
    h = bytearray(header[:512])
    h[257:500] = b"\0" * 243
    h[148:156] = b" " * 8
    h[148:156] = b"%06o\0 " % sum(h)
    return bytes(h) + header[512:]


def _alt_pickle(parts: dict[str, bytes]) -> bytes:
    names = [a for n, a in pickles.ops(parts["pickle"]) if n == "BINUNICODE" and "." in a]
    return pickles.rename_strings(parts["pickle"], {n: f"alt.{n}" for n in names})


def _seed(ctx: Ctx) -> dict[str, bytes]:
    return tar_parts(ctx.seeds.tar)


@mutant("tar")
def tar_identity(ctx: Ctx) -> bytes:
    """The seed; the payload (hostile) is in the ``pickle`` member. A sanity baseline."""
    parts = _seed(ctx)
    parts["pickle"] = ctx.slot(parts["pickle"])
    return finish([entry(n, parts[n]) for n in ORDER])


@mutant("tar")
def tar_payload_site(ctx: Ctx) -> bytes:
    """The payload in the first pickle of another member (storages and tensors are read before pickle)."""
    parts = _seed(ctx)
    site = ctx.choice("member", ["sys_info", "storages", "tensors"])
    parts[site] = ctx.slot(parts[site])
    return finish([entry(n, parts[n]) for n in ORDER])


@mutant("tar")
def tar_duplicate(ctx: Ctx) -> bytes:
    """A member name twice; tarfile's getmember returns the last."""
    parts = _seed(ctx)
    name = ctx.choice("duplicated", ["pickle", "storages", "tensors"])
    if name == "pickle":
        other = ctx.slot(parts["pickle"], _alt_pickle(parts))
        ctx.note("slot: the duplicate holds the payload / the alternative clean pickle")
    else:
        parts["pickle"] = ctx.slot(parts["pickle"])
        other = parts[name][:-8] + b"\x00" * 8 if name == "storages" else parts[name]
    later = ctx.choice("duplicate comes", ["after", "before", "at the end"])
    entries = []
    for n in ORDER:
        if n == name and later == "before":
            entries.append(entry(n, other))
        entries.append(entry(n, parts[n]))
        if n == name and later == "after":
            entries.append(entry(n, other))
    if later == "at the end":
        entries.append(entry(name, other))
    return finish(entries)


@mutant("tar")
def tar_missing(ctx: Ctx) -> bytes:
    """One member left out (torch never reads sys_info)."""
    parts = _seed(ctx)
    parts["pickle"] = ctx.slot(parts["pickle"])
    if ctx.hostile:
        parts["storages"] = ctx.slot(parts["storages"])
        ctx.note("hostile: the payload is in both pickle and storages")
    drop = ctx.choice("missing", list(ORDER))
    return finish([entry(n, parts[n]) for n in ORDER if n != drop])


@mutant("tar")
def tar_header_format(ctx: Ctx) -> bytes:
    """Headers in pre-POSIX (v7, no ``ustar`` magic), GNU, PAX or ustar format."""
    parts = _seed(ctx)
    parts["pickle"] = ctx.slot(parts["pickle"])
    fmt = ctx.choice("format", ["v7", "gnu", "pax", "ustar"])
    tf = {"gnu": tarfile.GNU_FORMAT, "pax": tarfile.PAX_FORMAT}.get(fmt, tarfile.USTAR_FORMAT)
    entries = [entry(n, parts[n], fmt=tf) for n in ORDER]
    return finish([to_v7(e) for e in entries] if fmt == "v7" else entries)


def _name_pickle(ctx: Ctx) -> str:
    # A protocol-0 pickle as the first member's name: NUL-free, so tarfile keeps it whole.
    text = b"I7\n." if not ctx.hostile else ctx.fragment(text=True) + b"I7\n."
    return text.decode("latin-1")


@mutant("tar")
def tar_broken_later(ctx: Ctx) -> bytes:
    """A first member named by a pickle, then a header that breaks later on.

    A bad checksum ends the member list quietly; a broken header right after a PAX
    header raises ReadError, and torch falls back to unpickling from byte 0.
    """
    parts = _seed(ctx)
    first = entry(_name_pickle(ctx), b"", fmt=tarfile.GNU_FORMAT)
    if ctx.hostile:
        ctx.note("hostile: the payload is in the first header's name only")
    kind = ctx.choice("break", ["bad checksum", "PAX header then garbage", "none"])
    at = ctx.choice("break before member", list(ORDER) + ["end"])
    entries = [first]
    for n in ORDER + ("end",):
        if n == at and kind != "none":
            if kind == "bad checksum":
                bad = bytearray(entry("junk", b"x" * 10))
                bad[148:156] = b"0000000\0"
                entries.append(bytes(bad))
            else:
                entries.append(_pax_record(b"comment", b"x") + b"\xff" * 512)
        if n != "end":
            entries.append(entry(n, parts[n]))
    return finish(entries)


def _pax_record(key: bytes, value: bytes) -> bytes:
    rec = b" " + key + b"=" + value + b"\n"
    n = len(rec) + 2
    while len(str(n).encode() + rec) != n:
        n = len(str(n).encode() + rec)
    body = str(n).encode() + rec
    info = tarfile.TarInfo("././@PaxHeader")
    info.type, info.size, info.mtime = tarfile.XHDTYPE, len(body), 0
    return info.tobuf(tarfile.USTAR_FORMAT) + body + b"\0" * (-len(body) % 512)


@mutant("tar")
def tar_links(ctx: Ctx) -> bytes:
    """``pickle`` (or ``storages``) is a hard or symbolic link to another member holding the slot."""
    parts = _seed(ctx)
    name = ctx.choice("linked", ["pickle", "storages"])
    kind = ctx.choice("link", ["hard", "symbolic"])
    target = ctx.choice("target", ["x", "./x", "sub/x"])
    if name == "pickle":
        held = ctx.slot(parts["pickle"], _alt_pickle(parts))
        ctx.note("slot: the link target holds the payload / the alternative clean pickle")
    else:
        parts["pickle"] = ctx.slot(parts["pickle"])
        held = parts["storages"]
    stored = target[2:] if target.startswith("./") else target
    entries = [entry(stored, held)]
    for n in ORDER:
        if n == name:
            entries.append(entry(n, b"", kind=tarfile.LNKTYPE if kind == "hard" else tarfile.SYMTYPE, link=target))
        else:
            entries.append(entry(n, parts[n]))
    return finish(entries)


@mutant("tar")
def tar_member_names(ctx: Ctx) -> bytes:
    """Member names spelled another way: ``./pickle``, a PAX path, a directory named like a member."""
    parts = _seed(ctx)
    parts["pickle"] = ctx.slot(parts["pickle"])
    trick = ctx.choice("trick", ["./pickle", "PAX path", "directory 'pickle' last", "pickle in a folder"])
    entries = []
    for n in ORDER:
        if n == "pickle" and trick == "./pickle":
            entries.append(entry("./pickle", parts[n]))
        elif n == "pickle" and trick == "PAX path":
            entries.append(_pax_record(b"path", b"pickle") + entry("notpickle", parts[n]))
        elif n == "pickle" and trick == "pickle in a folder":
            entries.append(entry("d/pickle", parts[n]))
        else:
            entries.append(entry(n, parts[n]))
    if trick == "directory 'pickle' last":
        entries.append(entry("pickle", b"", kind=tarfile.DIRTYPE))
    return finish(entries)
