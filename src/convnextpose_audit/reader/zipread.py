"""A zip reader that finds what torch's zip reader (miniz, through PyTorchStreamReader) finds, or refuses.

torch reads archives with miniz, not Python's :mod:`zipfile`, and miniz differs:
it takes the *last* end-of-central-directory signature with at least 22 bytes
after it, searching a fixed window back from the end; it honours a ZIP64 locator
whenever its signature is present (miniz 3 first looks right before the locator,
miniz 2 only where the locator points); miniz 3 treats bytes between the central
directory and its end record as a prefix and shifts every offset by them; it
looks names up case-insensitively (ASCII) in a sorted directory, so ``DATA.PKL``
and ``data.pkl`` are the same name with an unpredictable winner; it stops names
at NUL where C strings are used. This reader parses the way miniz does, and
refuses with :class:`AmbiguousContainerError` wherever two miniz versions, or
miniz and another reader, could pick different bytes. Nothing is extracted;
member count and inflated size are bounded.
"""

from __future__ import annotations

import struct
import zlib

from ..errors import AmbiguousContainerError, ArchiveError, LimitExceeded
from ..plain import Plain
from .limits import Limits
from .source import ByteSource, MemorySource, SliceSource

_EOCD = struct.Struct("<4s4H2LH")
_EOCD64_LOC = struct.Struct("<4sLQL")
_EOCD64 = struct.Struct("<4sQ2H2L4Q")
_CDH = struct.Struct("<4s6H3L5H2L")
_LFH = struct.Struct("<4s5H3L2H")

LOCAL_MAGIC = b"PK\x03\x04"
_EOCD_SIG, _EOCD64_SIG, _LOC_SIG, _CDH_SIG = b"PK\x05\x06", b"PK\x06\x06", b"PK\x06\x07", b"PK\x01\x02"
_FLAG_ENCRYPTED, _FLAG_STRONG, _FLAG_MASKED, _FLAG_UTF8 = 0x1, 0x40, 0x2000, 0x800
_STORED, _DEFLATED = 0, 8
_U16, _U32 = 0xFFFF, 0xFFFFFFFF


class ZipMember(Plain):
    """One central-directory entry; ``raw`` is the name as stored, ``name`` its text for display."""

    __slots__ = ("raw", "name", "header_offset", "method", "flags", "crc", "csize", "usize")

    def __init__(self, raw: bytes, name: str, header_offset: int, method: int, flags: int, crc: int, csize: int,
                 usize: int):
        self.raw, self.name, self.header_offset, self.method = raw, name, header_offset, method
        self.flags, self.crc, self.csize, self.usize = flags, crc, csize, usize

    def unextractable(self) -> str | None:
        """Why miniz could not extract this member ("is encrypted", "is compressed with method 12, ..."), or None."""
        if self.flags & (_FLAG_ENCRYPTED | _FLAG_STRONG):
            return "is encrypted"
        if self.method not in (_STORED, _DEFLATED):
            return f"is compressed with method {self.method}, which miniz lacks"
        return None


def locate_end_record(source: ByteSource) -> int | None:
    """Offset of the end-of-central-directory record as miniz finds it, or None.

    miniz scans 4 KiB windows backwards from the end (windows overlap by 3 bytes)
    and takes the last signature with at least 22 bytes after it; it gives up once
    a window starts 65,557 or more bytes before the end.
    """
    size = source.size
    if size < _EOCD.size:
        return None
    window = 4096
    cur = max(size - window, 0)
    while True:
        n = min(window, size - cur)
        buf = source.pread(cur, n)
        at = buf.rfind(_EOCD_SIG)
        while at >= 0 and size - (cur + at) < _EOCD.size:
            at = buf.rfind(_EOCD_SIG, 0, at + 3)
        if at >= 0:
            return cur + at
        if cur == 0 or size - cur >= 0xFFFF + _EOCD.size:
            return None
        cur = max(cur - (window - 3), 0)


class ZipArchive:
    """The members of one zip, readable in place, parsed as miniz parses it. ``warnings`` collects oddities."""

    def __init__(self, source: ByteSource, limits: Limits):
        self.source = source
        self.label = source.label
        self.limits = limits
        self.warnings: list[str] = []
        self.members: list[ZipMember] = []
        self._by_folded: dict[bytes, ZipMember] = {}
        self._data_offsets: dict[bytes, int] = {}
        self._read_central_directory()

    # -- directory --------------------------------------------------------------------------------
    def _refuse(self, why: str) -> AmbiguousContainerError:
        return AmbiguousContainerError(f"{self.label}: ambiguous container: {why}")

    def _read_central_directory(self) -> None:
        # Where miniz itself fails (no end record, a directory that does not fit or is corrupt), torch runs
        # nothing: plain ArchiveError. Where we refuse a directory some miniz version reads, every reading it
        # could take is parsed first, so the refusal can carry their pickle records for the safety scan.
        src = self.source
        eocd = locate_end_record(src)
        if eocd is None:
            raise ArchiveError(f"{self.label}: zip end-of-central-directory record not found (truncated zip?)")
        _, disk, cd_disk, n_disk, n_total, cd_size, cd_offset, comment_len = _EOCD.unpack(src.pread(eocd, _EOCD.size))
        doubts: list[str] = []
        if eocd + _EOCD.size + comment_len != src.size:
            doubts.append(f"{src.size - eocd - _EOCD.size - comment_len:,} bytes after the zip end record's "
                          "comment (trailing data)")
        readings = [(n_disk, n_total, cd_size, cd_offset, disk, cd_disk, 0)]
        if eocd >= _EOCD64_LOC.size + _EOCD64.size and src.pread(eocd - _EOCD64_LOC.size, 4) == _LOC_SIG:
            readings = self._zip64_readings(eocd, readings[0], doubts)
        n_disk, n_total, cd_size, cd_offset, disk, cd_disk, zip64_len = readings[0]
        if n_total != n_disk or disk or cd_disk:
            raise ArchiveError(f"{self.label}: multi-disk zips are not supported")
        self.limits.check("max_members", n_total, f"{self.label}: zip member count")
        if cd_size < n_total * _CDH.size or cd_offset + cd_size > src.size or eocd < cd_offset + cd_size:
            raise ArchiveError(f"{self.label}: zip central directory does not fit the file (truncated?)")
        gap = eocd - zip64_len - cd_offset - cd_size
        if gap:
            # miniz 3 takes such a gap for a prefix and shifts every offset by it; miniz 2 does not.
            doubts.append(f"{gap:,} bytes between the central directory and its end record; torch versions "
                          "disagree on where the archive starts")
        self._read_entries(src.pread(cd_offset, cd_size), cd_offset, n_total, doubts)
        if doubts:
            error = self._refuse(doubts[0])
            error.candidates = self.members + self._other_readings(readings[1:], gap)
            raise error

    def _zip64_readings(self, eocd: int, classic: tuple, doubts: list[str]) -> list[tuple]:
        """Directory readings when a ZIP64 locator is present: the agreed one first, then any other."""
        _sig, loc_disk, rec_off, n_disks = _EOCD64_LOC.unpack(self.source.pread(eocd - _EOCD64_LOC.size,
                                                                                _EOCD64_LOC.size))
        where = eocd - _EOCD64_LOC.size - _EOCD64.size
        found = [r for r in (self._zip64_record(where), self._zip64_record(rec_off)) if r is not None]
        if not found:
            raise ArchiveError(f"{self.label}: corrupt ZIP64 end-of-central-directory record")
        if n_disks != 1 or loc_disk:
            raise ArchiveError(f"{self.label}: multi-disk zips are not supported")
        if rec_off != where:  # miniz 3 reads the record before the locator, miniz 2 where the locator points
            doubts.append(f"the ZIP64 locator points at offset {rec_off:,}, not at the record before it ({where:,})")
            return found + [classic]
        if any(v32 != limit and v32 != v64 for v32, v64, limit in zip(classic[:4], found[0][:4],
                                                                       (_U16, _U16, _U32, _U32))):
            doubts.append("the ZIP64 end record and the classic end record disagree")
            return found + [classic]
        return found

    def _zip64_record(self, at: int) -> tuple | None:
        if not 0 <= at <= self.source.size - _EOCD64.size:
            return None
        (sig, rec_size, _made, _need, disk, cd_disk, n_disk, n_total, cd_size, cd_offset) = _EOCD64.unpack(
            self.source.pread(at, _EOCD64.size))
        if sig != _EOCD64_SIG or rec_size < _EOCD64.size - 12:
            return None
        return n_disk, n_total, cd_size, cd_offset, disk, cd_disk, _EOCD64_LOC.size + _EOCD64.size

    def _other_readings(self, readings: list[tuple], gap: int) -> list[ZipMember]:
        """Members other miniz versions would see: other directories, or offsets shifted by a prefix gap."""
        out: list[ZipMember] = []
        for _nd, n_total, cd_size, cd_offset, *_rest in readings:
            if 0 <= cd_offset and cd_offset + cd_size <= self.source.size and n_total <= self.limits.max_members:
                out += _tolerant_entries(self.source.pread(cd_offset, cd_size), n_total)
        if gap > 0:
            out += [ZipMember(m.raw, m.name, m.header_offset + gap, m.method, m.flags, m.crc, m.csize, m.usize)
                    for m in self.members + out]
        return out

    def _read_entries(self, cd: bytes, cd_offset: int, count: int, doubts: list[str]) -> None:
        pos = 0
        for _ in range(count):
            if pos + _CDH.size > len(cd) or cd[pos:pos + 4] != _CDH_SIG:
                raise ArchiveError(f"{self.label}: corrupt zip central directory entry at {cd_offset + pos:,}")
            m, end = _entry(cd, pos)
            if m is None:
                raise ArchiveError(f"{self.label}: zip central directory entry overruns the directory")
            if m.flags & _FLAG_MASKED:
                raise ArchiveError(f"{self.label}: zip with a masked local directory (encrypted)")
            if (m.method == _STORED and m.csize != m.usize) or (m.usize and not m.csize):
                raise ArchiveError(f"{self.label}: zip member {m.name!r} has inconsistent sizes")
            if m.header_offset + _LFH.size + m.csize > self.source.size:  # miniz refuses the whole archive
                raise ArchiveError(f"{self.label}: zip member {m.name!r} runs past the end of the file (truncated?)")
            self._add(m, doubts)
            pos = end
        if pos != len(cd):
            doubts.append(f"{len(cd) - pos:,} bytes in the central directory after its last entry")

    def _add(self, m: ZipMember, doubts: list[str]) -> None:
        if b"\0" in m.raw:
            doubts.append(f"zip member name {m.name!r} contains NUL (C readers cut it there)")
        folded = m.raw.lower()  # bytes.lower() folds ASCII only, as miniz's MZ_TOLOWER does
        other = self._by_folded.get(folded)
        if other is not None:
            same = "duplicate zip member" if other.raw == m.raw else "zip members differing only in case"
            doubts.append(f"{same} {other.name!r} / {m.name!r} (readers disagree on which one they read)")
        else:
            self._by_folded[folded] = m
        self.members.append(m)

    # -- lookup -----------------------------------------------------------------------------------
    def find(self, name: bytes | str) -> ZipMember | None:
        """The member miniz would find for ``name`` (ASCII case-insensitive), or None."""
        raw = name.encode("utf-8") if isinstance(name, str) else name
        return self._by_folded.get(raw.lower())

    def member(self, name: bytes | str) -> ZipMember:
        """Like :meth:`find`, raising :class:`ArchiveError` when absent."""
        m = self.find(name)
        if m is None:
            raise ArchiveError(f"{self.label}: missing zip member {name!r}")
        return m

    # -- data -------------------------------------------------------------------------------------
    def data_offset(self, m: ZipMember) -> int:
        """Where the member's bytes start: after its local header, whose own name and extra lengths count."""
        off = self._data_offsets.get(m.raw)
        if off is None:
            off = self._data_offsets[m.raw] = local_data_offset(self.source, m, self.warnings)
        return off

    @staticmethod
    def read_unchecked(source: ByteSource, m: ZipMember, limits: Limits) -> bytes | bytearray:
        """A member's bytes (at most ``max_pickle_bytes``) for a candidate of a refused directory."""
        off = local_data_offset(source, m, [])
        if m.usize > limits.max_pickle_bytes:
            raise LimitExceeded(f"{source.label}: {m.name!r} is over max_pickle_bytes")
        if m.method == _STORED:
            return source.pread(off, m.usize)
        return inflate(source, off, m.csize, m.usize, f"{source.label}: zip member {m.name!r}")

    def read(self, m: ZipMember, max_bytes: int, what: str = "member", mapped: bool = False) -> bytes | memoryview:
        """The member's whole content, at most ``max_bytes``; ``mapped`` gives a zero-copy view when stored."""
        if m.usize > max_bytes:
            raise LimitExceeded(f"{self.label}: {what} {m.name!r} is {m.usize:,} bytes, over the limit of {max_bytes:,}")
        off = self.data_offset(m)
        if m.method == _STORED:
            return self.source.view(off, m.usize) if mapped else self.source.pread(off, m.usize)
        self._check_inflate(m)
        return inflate(self.source, off, m.csize, m.usize, f"{self.label}: zip member {m.name!r}")

    def _check_inflate(self, m: ZipMember, held: int = 0) -> None:
        # A deflated member is inflated whole into memory (as torch's reader does): its declared size is bounded.
        if held + m.usize > self.limits.max_inflate_bytes:
            more = f" (with {held:,} inflated for the archives around it)" if held else ""
            raise LimitExceeded(f"{self.label}: {m.name!r} is deflated and would inflate to {m.usize:,} bytes in memory{more}, "
                                f"over max_inflate_bytes={self.limits.max_inflate_bytes:,}; unzip the archive first "
                                "and audit the extracted files")

    def open_inner(self, m: ZipMember, label: str, held: int = 0) -> ByteSource:
        """A byte source over a member: in place when stored, inflated into memory (bounded) when deflated.

        ``held``: bytes already inflated into memory for the archives holding this one; with this member's
        they stay within ``max_inflate_bytes`` (zips inside deflated zips do not multiply the bound).
        """
        off = self.data_offset(m)
        if m.method == _STORED:
            return SliceSource(self.source, off, m.usize, label)
        self._check_inflate(m, held)
        return MemorySource(inflate(self.source, off, m.csize, m.usize, f"{self.label}: zip member {m.name!r}"), label)

    def check_crc(self, m: ZipMember, data) -> None:
        """Warn (as torch does not check) when a member's CRC-32 is wrong."""
        if zlib.crc32(data) != m.crc:
            self.warnings.append(f"zip member {m.name!r}: CRC-32 mismatch (torch loads it anyway)")


def local_data_offset(source: ByteSource, m: ZipMember, warnings: list[str]) -> int:
    """Where a member's bytes start, read from its local header (whose own name and extra lengths count)."""
    label = source.label
    why = m.unextractable()
    if why:
        raise ArchiveError(f"{label}: zip member {m.name!r} {why}")
    if not 0 <= m.header_offset <= source.size - _LFH.size:
        raise ArchiveError(f"{label}: zip member {m.name!r} has no local header (truncated?)")
    sig, _v, _flags, _method, _t, _d, _crc, _cs, _us, nlen, elen = _LFH.unpack(source.pread(m.header_offset, _LFH.size))
    if sig != LOCAL_MAGIC:
        raise ArchiveError(f"{label}: zip member {m.name!r} has no local header at {m.header_offset:,}")
    off = m.header_offset + _LFH.size + nlen + elen
    if off + m.csize > source.size:
        raise ArchiveError(f"{label}: zip member {m.name!r} runs past the end of the file (truncated?)")
    local = source.pread(m.header_offset + _LFH.size, nlen)
    if local != m.raw:
        warnings.append(f"zip member {m.name!r}: local header names it {_text(local, m.flags)!r}; "
                        "central directory used, as torch does")
    return off


def inflate(source: ByteSource, off: int, csize: int, usize: int, what: str) -> bytearray:
    """Inflate a raw deflate stream of ``csize`` bytes to exactly ``usize`` bytes, never more than usize + 1.

    The stream must end where its compressed size says: miniz and zlib agree on
    complete streams, so anything else is refused rather than guessed. Output
    grows at most 1 MiB per step: a single call inflating a megabyte of zeros to
    hundreds of megabytes, then copied onto the result, would double the peak.
    """
    d = zlib.decompressobj(-15)
    out = bytearray()
    pos, left = off, csize
    try:
        while len(out) <= usize:
            if d.unconsumed_tail:
                data = d.unconsumed_tail
            elif left > 0:
                data = source.pread(pos, min(left, _STEP))
                pos += len(data)
                left -= len(data)
            else:
                break
            out += d.decompress(data, min(_STEP, usize + 1 - len(out)))
            if d.eof:
                break
    except zlib.error as exc:
        raise ArchiveError(f"{what} does not inflate: {exc}") from None
    if len(out) > usize:
        raise ArchiveError(f"{what} inflates past its declared {usize:,} bytes")
    if len(out) < usize or not d.eof:
        raise ArchiveError(f"{what} inflates to {len(out):,} of {usize:,} declared bytes")
    return out


_STEP = 1 << 20


def _text(raw: bytes, flags: int) -> str:
    return raw.decode("utf-8" if flags & _FLAG_UTF8 else "cp437", "replace")


def _entry(cd: bytes, pos: int) -> tuple[ZipMember | None, int]:
    """The central-directory entry at ``pos`` and where the next one starts (None if it overruns)."""
    (_sig, _made, _need, flags, method, _t, _d, crc, csize, usize, nlen, elen, clen, _disk, _ia, _ea,
     offset) = _CDH.unpack_from(cd, pos)
    end = pos + _CDH.size + nlen + elen + clen
    if end > len(cd):
        return None, end
    raw = cd[pos + _CDH.size:pos + _CDH.size + nlen]
    if _U32 in (csize, usize, offset):
        extra = cd[pos + _CDH.size + nlen:pos + _CDH.size + nlen + elen]
        usize, csize, offset = _zip64_extra(extra, usize, csize, offset, "zip")
    return ZipMember(raw, _text(raw, flags), offset, method, flags, crc, csize, usize), end


def _tolerant_entries(cd: bytes, count: int) -> list[ZipMember]:
    """As many entries as parse, for readings that are only candidates (errors end the list)."""
    out, pos = [], 0
    for _ in range(count):
        if pos + _CDH.size > len(cd) or cd[pos:pos + 4] != _CDH_SIG:
            break
        try:
            m, pos = _entry(cd, pos)
        except ArchiveError:
            break
        if m is None:
            break
        out.append(m)
    return out


def _zip64_extra(extra: bytes, usize: int, csize: int, offset: int, label: str) -> tuple[int, int, int]:
    pos = 0
    while pos + 4 <= len(extra):
        tag, size = struct.unpack_from("<HH", extra, pos)
        if pos + 4 + size > len(extra):
            break
        if tag == 1:
            body = extra[pos + 4:pos + 4 + size]
            vals = list(struct.unpack_from(f"<{len(body) // 8}Q", body))
            if usize == _U32 and vals:
                usize = vals.pop(0)
            if csize == _U32 and vals:
                csize = vals.pop(0)
            if offset == _U32 and vals:
                offset = vals.pop(0)
            return usize, csize, offset
        pos += 4 + size
    raise ArchiveError(f"{label}: zip64 sizes missing from the central directory")
