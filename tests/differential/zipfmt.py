"""A zip writer with every knob the mutants need, and a reader for torch's own (well-formed) zips.

Records are built field by field so a mutant can make the local header, the
central directory, the end records and the ZIP64 records disagree on purpose.
Python's :mod:`zipfile` is only used to read the seeds torch wrote.
"""

from __future__ import annotations

import io
import struct
import zlib
import zipfile
from dataclasses import dataclass, field, replace

STORED, DEFLATED = 0, 8
FLAG_DESCRIPTOR, FLAG_UTF8 = 0x8, 0x800


@dataclass
class Member:
    """One zip entry. ``data`` is the uncompressed content; the other fields are the knobs."""

    name: bytes
    data: bytes
    method: int = STORED
    flags: int = 0
    crc: int | None = None  #: override the CRC-32 written in both headers
    local_name: bytes | None = None  #: a different name in the local header only
    descriptor: bool = False  #: sizes and CRC only in a trailing data descriptor (flag bit 3)
    descriptor_sig: bool = True
    extra: bytes = b""
    local_method: int | None = None  #: a different compression method in the local header only
    local_flags: int | None = None  #: different flags in the local header only
    local_extra: bytes | None = None  #: a different extra field in the local header only

    def payload(self) -> bytes:
        """The bytes stored in the archive (deflated if ``method`` says so)."""
        if self.method == DEFLATED:
            c = zlib.compressobj(6, zlib.DEFLATED, -15)
            return c.compress(self.data) + c.flush()
        return self.data

    def checksum(self) -> int:
        return zlib.crc32(self.data) if self.crc is None else self.crc

    def but(self, **changes) -> "Member":
        """A copy with some fields changed."""
        return replace(self, **changes)


@dataclass
class Written:
    """Local records laid out from ``start``: their bytes and each member's local-header offset."""

    blob: bytes
    offsets: list[int] = field(default_factory=list)


def local_records(members: list[Member], start: int = 0) -> Written:
    """Local header + data (+ descriptor) for each member, in order."""
    out = io.BytesIO()
    offsets = []
    for m in members:
        offsets.append(start + out.tell())
        data = m.payload()
        flags = m.flags | (FLAG_DESCRIPTOR if m.descriptor else 0)
        crc, csize, usize = (0, 0, 0) if m.descriptor else (m.checksum(), len(data), len(m.data))
        name = m.name if m.local_name is None else m.local_name
        extra = m.extra if m.local_extra is None else m.local_extra
        method = m.method if m.local_method is None else m.local_method
        flags = flags if m.local_flags is None else m.local_flags
        out.write(struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, flags, method, 0, 0x21, crc, csize, usize,
                              len(name), len(extra)))
        out.write(name + extra + data)
        if m.descriptor:
            sig = b"PK\x07\x08" if m.descriptor_sig else b""
            out.write(sig + struct.pack("<3L", m.checksum(), len(data), len(m.data)))
    return Written(out.getvalue(), offsets)


def central_directory(members: list[Member], offsets: list[int], *, zip64_extra: bool = False) -> bytes:
    """Central-directory entries for ``members`` pointing at ``offsets``.

    ``zip64_extra`` writes 0xFFFFFFFF sizes/offset with the real values in a ZIP64 extra field.
    """
    out = io.BytesIO()
    for m, off in zip(members, offsets, strict=True):
        data = m.payload()
        flags = m.flags | (FLAG_DESCRIPTOR if m.descriptor else 0)
        csize, usize, roff = len(data), len(m.data), off
        extra = m.extra
        if zip64_extra:
            extra = struct.pack("<HH3Q", 1, 24, usize, csize, roff) + extra
            csize = usize = roff = 0xFFFFFFFF
        out.write(struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 20, 20, flags, m.method, 0, 0x21, m.checksum(), csize,
                              usize, len(m.name), len(extra), 0, 0, 0, 0, roff))
        out.write(m.name + extra)
    return out.getvalue()


def end_record(entries: int, cd_size: int, cd_offset: int, comment: bytes = b"", *,
               comment_len: int | None = None) -> bytes:
    """The classic end-of-central-directory record (values are clipped to 16/32 bits by the caller)."""
    n = len(comment) if comment_len is None else comment_len
    return struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, entries, entries, cd_size, cd_offset, n) + comment


def end_record64(entries: int, cd_size: int, cd_offset: int) -> bytes:
    """A ZIP64 end-of-central-directory record (56 bytes)."""
    return struct.pack("<4sQ2H2L4Q", b"PK\x06\x06", 44, 45, 45, 0, 0, entries, entries, cd_size, cd_offset)


def locator64(record_offset: int, disks: int = 1) -> bytes:
    """A ZIP64 end-of-central-directory locator (20 bytes)."""
    return struct.pack("<4sLQL", b"PK\x06\x07", 0, record_offset, disks)


def build(members: list[Member], *, prefix: bytes = b"", comment: bytes = b"", trailing: bytes = b"",
          zip64: bool = False, offsets_from_prefix: bool = True) -> bytes:
    """A whole archive: ``prefix`` + locals + central directory [+ ZIP64 records] + end record + ``trailing``.

    ``offsets_from_prefix`` counts offsets from the start of the file (as a zip
    appended to other data must) rather than from the first local header.
    """
    base = len(prefix) if offsets_from_prefix else 0
    w = local_records(members, base)
    cd = central_directory(members, w.offsets)
    cd_off = base + len(w.blob)
    out = prefix + w.blob + cd
    if zip64:
        rec_off = cd_off + len(cd) if offsets_from_prefix else len(w.blob) + len(cd)
        out += end_record64(len(members), len(cd), cd_off) + locator64(rec_off)
    return out + end_record(len(members), len(cd), cd_off, comment) + trailing


def read_members(data: bytes) -> list[Member]:
    """The members of a well-formed zip (a seed torch wrote), as stored :class:`Member` s in file order."""
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        return [Member(info.filename.encode(), z.read(info)) for info in z.infolist()]
