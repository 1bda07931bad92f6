"""torch < 1.6 checkpoints: consecutive pickles followed by raw storages, read as ``_legacy_load`` reads them.

torch unpickles, one after another from byte 0: a magic number, a protocol
version (1001), ``sys_info`` (whose content it ignores), the main pickle (with a
persistent-id handler for storages), and the list of storage keys; then, from
the file position after that last pickle, an int64 element count and the bytes of
each listed storage. Each pickle is only reached if the one before it completed
(and, for the first two, held the expected value), so that is exactly how far
this reader follows the chain, recording every global reference on the way,
even when its own structured read of a pickle fails.
"""

from __future__ import annotations

import struct
from typing import Any

from ..errors import (AmbiguousContainerError, ArchiveError, MalformedPickleError, NotACheckpointError,
                      UnsupportedCheckpointError)
from .archive import check_storage_key
from .detect import describe
from .limits import Limits
from .meter import Meter
from .pickle import GlobalRef, PickleRead
from .safe_globals import StorageType
from .source import ByteSource
from .stream import PickleStream, frame_past_stop
from .tensor import StorageRef
from .walk import shown

MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
PROTOCOL_VERSION = 1001


def read_legacy(source: ByteSource, limits: Limits, meter: Meter, refs: list[tuple[str, GlobalRef]],
                warnings: list[str]) -> Any:
    """Read a legacy checkpoint's object with lazily bound storages.

    ``refs`` receives every global reference of every pickle torch would run,
    before anything is raised: callers judge safety from it whatever happens.
    Raises :class:`NotACheckpointError` when torch would stop without running
    anything and without returning an object (not a torch pickle stream).
    """
    label = source.label
    stream = PickleStream(source, limits, meter, refs)
    magic = stream.read(0, f"{label}: magic number")
    if magic.end is None:
        if magic.globals:  # the C unpickler resolved these before failing: the caller judges them
            raise magic.error
        raise NotACheckpointError(f"{label}: not a checkpoint ({describe(source.pread(0, min(512, source.size)))})")
    if magic.error is not None or not _equals(magic.obj, MAGIC_NUMBER):
        raise NotACheckpointError(f"{label}: a pickle, but not a torch checkpoint (no torch magic number)")
    proto = _next(stream, magic, f"{label}: protocol version")
    if proto.end is None:
        raise proto.error
    if proto.error is not None or not _equals(proto.obj, PROTOCOL_VERSION):
        raise UnsupportedCheckpointError(f"{label}: legacy protocol version is not {PROTOCOL_VERSION}")
    sys_info = _next(stream, proto, f"{label}: sys_info")
    storages: dict[str, StorageRef] = {}
    views: list[tuple[StorageRef, str, int]] = []
    main = _next(stream, sys_info, f"{label}: main pickle",
                 _persistent_loader(label, limits, storages, views))
    keys = _next(stream, main, f"{label}: storage keys")
    for step in (magic, proto, sys_info, main, keys):
        if frame_past_stop(step):
            raise AmbiguousContainerError(f"{label}: ambiguous container: a pickle FRAME runs past its STOP; where "
                                          "torch reads next depends on its unpickler's buffering")
    for step in (sys_info, main, keys):
        if step.error is not None:
            raise step.error
    if isinstance(sys_info.obj, dict) and sys_info.obj.get("little_endian", True) is False:
        warnings.append("sys_info says big-endian; torch reads the storages as they are, and so does this reader")
    _bind_storages(source, label, keys.obj, keys.end, storages, views, limits)
    return main.obj


def _next(stream: PickleStream, previous: PickleRead, member: str, persistent_load=None) -> PickleRead:
    # torch reaches the next pickle only if the C unpickler completed the previous one.
    if previous.end is None:
        raise previous.error or MalformedPickleError(f"{member}: the previous pickle did not end")
    return stream.read(previous.end, member, persistent_load)


def _equals(value: Any, expected: int) -> bool:
    return type(value) in (int, float, complex) and value == expected


def _persistent_loader(label: str, limits: Limits, storages: dict[str, StorageRef],
                       views: list[tuple[StorageRef, str, int]]):
    def persistent_load(pid: Any) -> Any:
        if not isinstance(pid, tuple) or not pid:
            raise MalformedPickleError(f"{label}: legacy persistent id is not a tuple")
        typename = pid[0].decode("ascii", "replace") if isinstance(pid[0], bytes) else pid[0]
        if typename == "module" and len(pid) == 4:
            return pid[1]  # torch returns the container class the pickle already named
        if typename != "storage" or len(pid) != 6:
            raise MalformedPickleError(f"{label}: unexpected legacy persistent id")
        _, stype, key, location, numel, view = pid
        if isinstance(location, bytes):
            location = location.decode("ascii", "replace")
        if not isinstance(stype, StorageType) or stype.dtype is None or type(numel) is not int or numel < 0 \
                or not isinstance(location, str):
            raise MalformedPickleError(f"{label}: malformed legacy storage record")
        key = check_storage_key(key, f"{label}: legacy pickle")
        root = storages.get(key)
        if root is None:
            nbytes = numel * stype.dtype.itemsize
            limits.check("max_storage_bytes", nbytes, f"{label}: storage {key}")
            root = storages[key] = StorageRef(key, stype.dtype, nbytes, location)
        if view is None:
            return root
        if not (isinstance(view, tuple) and len(view) == 3 and type(view[1]) is int and type(view[2]) is int):
            raise MalformedPickleError(f"{label}: malformed legacy storage view")
        vkey = check_storage_key(view[0], f"{label}: legacy pickle")
        isz = root.dtype.itemsize
        ref = StorageRef(vkey, root.dtype, view[2] * isz, location)
        views.append((ref, key, view[1] * isz))
        return ref

    return persistent_load


def _bind_storages(source: ByteSource, label: str, keys: Any, pos: int, storages: dict[str, StorageRef],
                   views: list[tuple[StorageRef, str, int]], limits: Limits) -> None:
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise ArchiveError(f"{label}: legacy storage-key list is malformed")
    limits.check("max_members", len(keys), f"{label}: storage keys")
    for key in keys:  # a key listed twice is read twice; the later bytes win, as in torch
        ref = storages.get(key)
        if ref is None:
            raise ArchiveError(f"{label}: storage {shown(key)!r} is listed but never used")
        if pos + 8 > source.size:
            raise ArchiveError(f"{label}: truncated before storage {shown(key)!r}")
        (numel,) = struct.unpack("<q", source.pread(pos, 8))
        nbytes = numel * ref.dtype.itemsize
        if numel < 0 or pos + 8 + nbytes > source.size:
            raise ArchiveError(f"{label}: storage {shown(key)!r} runs past the end of the file (truncated?)")
        if nbytes != ref.nbytes:  # torch: "storage has wrong byte size"
            raise ArchiveError(f"{label}: storage {shown(key)!r} holds {nbytes:,} bytes, {ref.nbytes:,} declared")
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
