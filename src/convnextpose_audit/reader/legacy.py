"""torch < 1.6 checkpoints: consecutive pickles followed by raw storages.

Layout: magic-number pickle, protocol pickle (1001), sys_info pickle, the main
pickle, the storage-key list pickle, then per key an int64 element count and
the storage bytes. Only the pickles and the 8-byte counts are read.
"""

from __future__ import annotations

import struct
from typing import Any, Callable

from ..errors import ArchiveError, LimitExceeded, MalformedPickleError, NotACheckpointError, UnsupportedCheckpointError
from .archive import check_storage_key
from .limits import Limits
from .safe_globals import StorageType
from .source import ByteSource
from .tensor import StorageRef
from .unpickler import Truncated, unpickle

MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
PROTOCOL_VERSION = 1001


def unpickle_at(source: ByteSource, pos: int, member: str, limits: Limits,
                persistent_load: Callable[[Any], Any] | None = None) -> tuple[Any, int]:
    """Run the pickle starting at ``pos`` of ``source``; return ``(object, end position)``.

    Reads a small window first and doubles it only while the pickle runs past
    it, so tensor bytes after the pickle are never read.
    """
    window = 64 * 1024
    while True:
        n = min(window, source.size - pos, limits.max_pickle_bytes)
        if n <= 0:
            raise ArchiveError(f"{member}: truncated (no pickle at offset {pos:,})")
        data = source.pread(pos, n)
        try:
            obj, end = unpickle(data, member=member, limits=limits, persistent_load=persistent_load)
            return obj, pos + end
        except Truncated:
            if n >= source.size - pos:
                raise
            if n >= limits.max_pickle_bytes:
                raise LimitExceeded(f"{member}: pickle larger than max_pickle_bytes={limits.max_pickle_bytes:,}") from None
            window *= 4


def read_legacy(source: ByteSource, limits: Limits) -> Any:
    """Read a legacy checkpoint's object with lazily bound storages."""
    label = source.label
    magic, pos = unpickle_at(source, 0, f"{label}: magic number", limits)
    if not (type(magic) is int and magic == MAGIC_NUMBER):
        raise NotACheckpointError(f"{label}: a pickle, but not a torch checkpoint (no torch magic number)")
    proto, pos = unpickle_at(source, pos, f"{label}: protocol version", limits)
    if proto != PROTOCOL_VERSION:
        raise UnsupportedCheckpointError(f"{label}: legacy protocol version {proto!r} (expected {PROTOCOL_VERSION})")
    sys_info, pos = unpickle_at(source, pos, f"{label}: sys_info", limits)
    if not isinstance(sys_info, dict):
        raise ArchiveError(f"{label}: legacy sys_info is not a dict")
    if sys_info.get("little_endian", True) is not True:
        raise UnsupportedCheckpointError(f"{label}: big-endian legacy checkpoints are not supported")

    storages: dict[str, StorageRef] = {}
    views: list[tuple[StorageRef, str, int]] = []

    def persistent_load(pid: Any) -> StorageRef:
        if isinstance(pid, str):
            raise UnsupportedCheckpointError(
                f"{label}: storage ids written as text (pickle protocol 0); torch cannot load this file either")
        if not (isinstance(pid, tuple) and len(pid) == 6 and pid[0] == "storage"):
            raise MalformedPickleError(f"{label}: legacy pickle: unexpected persistent id")
        _, stype, key, location, numel, view = pid
        if not isinstance(stype, StorageType) or type(numel) is not int or numel < 0 or not isinstance(location, str):
            raise MalformedPickleError(f"{label}: legacy pickle: malformed storage record")
        key = check_storage_key(key, f"{label}: legacy pickle")
        root = storages.get(key)
        if root is None:
            nbytes = numel * stype.dtype.itemsize
            limits.check("max_storage_bytes", nbytes, f"{label}: storage {key}")
            root = storages[key] = StorageRef(key, stype.dtype, nbytes, location)
        if view is None:
            return root
        if not (isinstance(view, tuple) and len(view) == 3 and type(view[1]) is int and type(view[2]) is int):
            raise MalformedPickleError(f"{label}: legacy pickle: malformed storage view")
        vkey = check_storage_key(view[0], f"{label}: legacy pickle")
        isz = root.dtype.itemsize
        ref = StorageRef(vkey, root.dtype, view[2] * isz, location)
        views.append((ref, key, view[1] * isz))
        return ref

    obj, pos = unpickle_at(source, pos, f"{label}: main pickle", limits, persistent_load)
    keys, pos = unpickle_at(source, pos, f"{label}: storage keys", limits)
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise ArchiveError(f"{label}: legacy storage-key list is malformed")
    for key in keys:
        ref = storages.get(key)
        if ref is None:
            raise ArchiveError(f"{label}: storage {key!r} is listed but never used")
        if pos + 8 > source.size:
            raise ArchiveError(f"{label}: truncated before storage {key!r}")
        (numel,) = struct.unpack("<q", source.pread(pos, 8))
        nbytes = numel * ref.dtype.itemsize
        if numel < 0 or pos + 8 + nbytes > source.size:
            raise ArchiveError(f"{label}: storage {key!r} runs past the end of the file (truncated?)")
        if nbytes < ref.nbytes:
            raise ArchiveError(f"{label}: storage {key!r} holds {nbytes:,} bytes, {ref.nbytes:,} declared")
        start = pos + 8
        ref.bind(lambda start=start, n=ref.nbytes: source.view(start, n))
        pos = start + nbytes
    missing = [k for k, s in storages.items() if s._fetch is None]
    if missing:
        raise ArchiveError(f"{label}: storage {missing[0]!r} has no data in the file")
    for ref, root_key, offset in views:
        root = storages[root_key]
        if offset + ref.nbytes > root.nbytes:
            raise ArchiveError(f"{label}: storage view {ref.key!r} reaches past storage {root_key!r}")
        ref.bind(lambda root=root, offset=offset, n=ref.nbytes: root.buffer()[offset:offset + n])
    return obj
