"""Helpers that rewrite zips the way browsers, users and attackers do (test-side only)."""

from __future__ import annotations

import struct
import zipfile
from pathlib import Path


def rezip(src: Path, dst: Path, *, compression=zipfile.ZIP_DEFLATED, drop: str | None = None,
          rename: dict[str, str] | None = None) -> Path:
    """Copy a zip member by member, optionally deflating, dropping or renaming members."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", compression) as zout:
        for info in zin.infolist():
            if drop and info.filename.endswith(drop):
                continue
            name = (rename or {}).get(info.filename, info.filename)
            zout.writestr(name, zin.read(info.filename))
    return dst


def outer_zip(dst: Path, members: dict[str, bytes | Path], compression=zipfile.ZIP_STORED) -> Path:
    """A zip holding the given files (what a browser download of a Drive folder looks like)."""
    with zipfile.ZipFile(dst, "w", compression) as z:
        for name, data in members.items():
            z.writestr(name, data.read_bytes() if isinstance(data, Path) else data)
    return dst


def central_entries(data: bytes):
    """Yield (offset of central header, member name) for each central-directory entry."""
    pos = data.rfind(b"PK\x05\x06")
    cd_size, cd_off = struct.unpack_from("<LL", data, pos + 12)
    at = cd_off
    while at < cd_off + cd_size:
        nlen, elen, clen = struct.unpack_from("<HHH", data, at + 28)
        yield at, data[at + 46:at + 46 + nlen].decode()
        at += 46 + nlen + elen + clen


def patch_central(data: bytes, name_suffix: str, field_offset: int, fmt: str, value) -> bytes:
    """Overwrite one field of the central header of the member ending with ``name_suffix``."""
    buf = bytearray(data)
    for at, name in central_entries(data):
        if name.endswith(name_suffix):
            struct.pack_into(fmt, buf, at + field_offset, value)
            return bytes(buf)
    raise KeyError(name_suffix)
