"""A zip reader as tolerant as torch's and stricter where it matters.

Python's :mod:`zipfile` refuses members whose CRC is wrong and insists that
local and central names agree; torch (miniz) loads such files. This reader
takes sizes and offsets from the central directory, reports CRC and header
disagreements as warnings, never extracts anything, and bounds member count
and inflated size.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

from ..errors import ArchiveError, LimitExceeded
from .limits import Limits
from .source import ByteSource, MemorySource, SliceSource

_EOCD = struct.Struct("<4s4H2LH")
_EOCD64_LOC = struct.Struct("<4sLQL")
_EOCD64 = struct.Struct("<4sQ2H2L4Q")
_CDH = struct.Struct("<4s6H3L5H2L")
_LFH = struct.Struct("<4s5H3L2H")

ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
_FLAG_ENCRYPTED = 0x1
_STORED, _DEFLATED = 0, 8


@dataclass
class ZipMember:
    """One central-directory entry."""

    name: str
    header_offset: int
    method: int
    flags: int
    crc: int
    csize: int
    usize: int


class ZipArchive:
    """The members of one zip, readable in place. ``warnings`` collects tolerated oddities."""

    def __init__(self, source: ByteSource, limits: Limits):
        self.source = source
        self.label = source.label
        self.limits = limits
        self.warnings: list[str] = []
        self.members: dict[str, ZipMember] = {}
        self._data_offsets: dict[str, int] = {}
        self._crc_checked: set[str] = set()
        self._read_central_directory()

    # -- central directory -------------------------------------------------
    def _read_central_directory(self) -> None:
        src = self.source
        tail_len = min(src.size, _EOCD.size + 0xFFFF)
        tail = src.pread(src.size - tail_len, tail_len)
        at = tail.rfind(b"PK\x05\x06")
        if at < 0 or at + _EOCD.size > len(tail):
            raise ArchiveError(f"{self.label}: zip end-of-central-directory record not found (truncated zip?)")
        eocd_pos = src.size - tail_len + at
        _, disk, cd_disk, n_disk, n_total, cd_size, cd_offset, _comment = _EOCD.unpack_from(tail, at)
        if disk != 0 or cd_disk != 0:
            raise ArchiveError(f"{self.label}: multi-disk zips are not supported")
        if 0xFFFF in (n_total, n_disk) or 0xFFFFFFFF in (cd_size, cd_offset):
            n_total, cd_size, cd_offset = self._zip64_eocd(eocd_pos)
        self.limits.check("max_members", n_total, f"{self.label}: zip member count")
        if cd_offset + cd_size > src.size:
            raise ArchiveError(f"{self.label}: zip central directory lies past the end of the file (truncated?)")
        cd = src.pread(cd_offset, cd_size)
        pos = 0
        for _ in range(n_total):
            if pos + _CDH.size > len(cd):
                raise ArchiveError(f"{self.label}: zip central directory is shorter than its entry count")
            (sig, _made, _need, flags, method, _t, _d, crc, csize, usize, nlen, elen, clen, _disk, _ia, _ea,
             offset) = _CDH.unpack_from(cd, pos)
            if sig != b"PK\x01\x02":
                raise ArchiveError(f"{self.label}: corrupt zip central directory entry at {cd_offset + pos:,}")
            end_name = pos + _CDH.size + nlen
            if end_name + elen + clen > len(cd):
                raise ArchiveError(f"{self.label}: zip central directory entry overruns the directory")
            raw_name = cd[pos + _CDH.size:end_name]
            extra = cd[end_name:end_name + elen]
            pos = end_name + elen + clen
            if 0xFFFFFFFF in (csize, usize, offset):
                usize, csize, offset = _zip64_extra(extra, usize, csize, offset, self.label)
            name = raw_name.decode("utf-8" if flags & 0x800 else "cp437", "replace")
            if name in self.members:
                # Tools disagree on which copy they read; a clean first copy could hide a hostile second.
                raise ArchiveError(f"{self.label}: duplicate zip member {name!r} (ambiguous; refused)")
            self.members[name] = ZipMember(name, offset, method, flags, crc, csize, usize)

    def _zip64_eocd(self, eocd_pos: int) -> tuple[int, int, int]:
        if eocd_pos < _EOCD64_LOC.size:
            raise ArchiveError(f"{self.label}: zip64 locator missing")
        sig, _disk, rec_off, _n = _EOCD64_LOC.unpack(self.source.pread(eocd_pos - _EOCD64_LOC.size, _EOCD64_LOC.size))
        if sig != b"PK\x06\x07":
            raise ArchiveError(f"{self.label}: zip64 locator missing")
        rec = self.source.pread(rec_off, _EOCD64.size)
        fields = _EOCD64.unpack(rec)
        if fields[0] != b"PK\x06\x06":
            raise ArchiveError(f"{self.label}: corrupt zip64 end-of-central-directory record")
        return fields[7], fields[8], fields[9]

    # -- members -----------------------------------------------------------
    def member(self, name: str) -> ZipMember:
        """Return the entry named ``name`` or raise :class:`ArchiveError`."""
        try:
            return self.members[name]
        except KeyError:
            raise ArchiveError(f"{self.label}: missing zip member {name!r}") from None

    def _data_offset(self, m: ZipMember) -> int:
        off = self._data_offsets.get(m.name)
        if off is not None:
            return off
        if m.flags & _FLAG_ENCRYPTED:
            raise ArchiveError(f"{self.label}: zip member {m.name!r} is encrypted")
        if m.method not in (_STORED, _DEFLATED):
            raise ArchiveError(f"{self.label}: zip member {m.name!r} uses unsupported compression method {m.method}")
        head = self.source.pread(m.header_offset, _LFH.size)
        sig, _v, _flags, _method, _t, _d, _crc, _cs, _us, nlen, elen = _LFH.unpack(head)
        if sig != b"PK\x03\x04":
            raise ArchiveError(f"{self.label}: zip member {m.name!r} has no local header at {m.header_offset:,}")
        local_name = self.source.pread(m.header_offset + _LFH.size, nlen).decode("utf-8", "replace")
        if local_name != m.name:
            self.warnings.append(f"zip member {m.name!r}: local header names it {local_name!r}; central directory used")
        off = m.header_offset + _LFH.size + nlen + elen
        if off + m.csize > self.source.size:
            raise ArchiveError(f"{self.label}: zip member {m.name!r} runs past the end of the file (truncated?)")
        self._data_offsets[m.name] = off
        return off

    def read(self, name: str, max_bytes: int, what: str = "member", mapped: bool = False) -> bytes | memoryview:
        """Return the whole member's bytes, at most ``max_bytes``.

        ``mapped`` returns a zero-copy view for stored members (tensor data);
        otherwise the bytes are read, so metadata reads never map the file.
        """
        m = self.member(name)
        if m.usize > max_bytes:
            raise LimitExceeded(f"{self.label}: {what} {name!r} is {m.usize:,} bytes, over the limit of {max_bytes:,}")
        off = self._data_offset(m)
        if m.method == _STORED:
            if m.csize != m.usize:
                raise ArchiveError(f"{self.label}: stored zip member {name!r} has differing sizes")
            data = self.source.view(off, m.usize) if mapped else self.source.pread(off, m.usize)
        else:
            data = self._inflate(m, off, m.usize)
        self._check_crc(m, data)
        return data

    def head(self, name: str, n: int) -> bytes:
        """Return up to ``n`` leading bytes of a member (for sniffing its format)."""
        m = self.member(name)
        off = self._data_offset(m)
        if m.method == _STORED:
            return self.source.pread(off, min(n, m.usize))
        d = zlib.decompressobj(-15)
        try:
            return d.decompress(self.source.pread(off, min(m.csize, 64 * 1024)), min(n, m.usize))
        except zlib.error as exc:
            raise ArchiveError(f"{self.label}: zip member {name!r} does not inflate: {exc}") from None

    def open_inner(self, name: str, label: str) -> ByteSource:
        """A byte source over a member: in place when stored, inflated into memory (bounded) when deflated."""
        m = self.member(name)
        off = self._data_offset(m)
        if m.method == _STORED:
            return SliceSource(self.source, off, m.usize, label)
        self.limits.check("max_inflate_bytes", m.usize, f"{self.label}: inflated size of {name!r}")
        return MemorySource(self._inflate(m, off, m.usize), label)

    def _inflate(self, m: ZipMember, off: int, usize: int) -> bytearray:
        # Output is capped at usize + 1 so a bomb stops one byte past its declared size.
        d = zlib.decompressobj(-15)
        out = bytearray()
        pos, left = off, m.csize
        try:
            while left > 0 and len(out) <= usize:
                chunk = self.source.pread(pos, min(left, 1 << 20))
                pos += len(chunk)
                left -= len(chunk)
                out += d.decompress(chunk, usize + 1 - len(out))
        except zlib.error as exc:
            raise ArchiveError(f"{self.label}: zip member {m.name!r} does not inflate: {exc}") from None
        if len(out) > usize:
            raise ArchiveError(f"{self.label}: zip member {m.name!r} inflates past its declared {usize:,} bytes")
        if len(out) < usize:
            raise ArchiveError(f"{self.label}: zip member {m.name!r} inflates to {len(out):,} of {usize:,} declared bytes")
        return out  # a bytearray: no second copy of what may be a large inner archive

    def _check_crc(self, m: ZipMember, data) -> None:
        if m.name in self._crc_checked:
            return
        self._crc_checked.add(m.name)
        if zlib.crc32(data) != m.crc:
            self.warnings.append(f"zip member {m.name!r}: CRC-32 mismatch (torch loads it anyway)")


def _zip64_extra(extra: bytes, usize: int, csize: int, offset: int, label: str) -> tuple[int, int, int]:
    pos = 0
    while pos + 4 <= len(extra):
        tag, size = struct.unpack_from("<HH", extra, pos)
        body = extra[pos + 4:pos + 4 + size]
        if tag == 1:
            vals = list(struct.unpack_from(f"<{len(body) // 8}Q", body)) if len(body) >= 8 else []
            if usize == 0xFFFFFFFF and vals:
                usize = vals.pop(0)
            if csize == 0xFFFFFFFF and vals:
                csize = vals.pop(0)
            if offset == 0xFFFFFFFF and vals:
                offset = vals.pop(0)
            return usize, csize, offset
        pos += 4 + size
    raise ArchiveError(f"{label}: zip64 sizes missing from the central directory")
