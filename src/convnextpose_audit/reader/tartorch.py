"""torch <= 0.3 checkpoints: a tar holding ``sys_info``, ``pickle``, ``storages`` and ``tensors``.

Members are read in place through their tar offsets; nothing is extracted.
"""

from __future__ import annotations

import io
import struct
from typing import Any

from ..errors import ArchiveError, MalformedPickleError, NotACheckpointError, UnsupportedCheckpointError
from .archive import check_storage_key
from .legacy import unpickle_at
from .limits import Limits
from .safe_globals import StorageType
from .source import ByteSource, SliceSource
from .tensor import StorageRef, TensorRef

TAR_MEMBERS = ("sys_info", "pickle", "storages", "tensors")


class _SourceFile(io.RawIOBase):
    """A read-only file object over a ByteSource, for :mod:`tarfile`'s header parser."""

    def __init__(self, source: ByteSource):
        self._src = source
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, pos: int, whence: int = 0) -> int:
        self._pos = {0: pos, 1: self._pos + pos, 2: self._src.size + pos}[whence]
        return self._pos

    def readinto(self, b) -> int:
        n = max(0, min(len(b), self._src.size - self._pos))
        b[:n] = self._src.pread(self._pos, n)
        self._pos += n
        return n


def tar_members(source: ByteSource, limits: Limits) -> dict[str, tuple[int, int]]:
    """Map regular-file member names to ``(data offset, size)``, bounded by ``max_members``."""
    import tarfile

    found: dict[str, tuple[int, int]] = {}
    try:
        with tarfile.open(fileobj=_SourceFile(source), mode="r:") as tar:
            count = 0
            while True:
                info = tar.next()
                if info is None:
                    break
                count += 1
                limits.check("max_members", count, f"{source.label}: tar member count")
                if info.isreg() and info.name not in found:
                    found[info.name] = (info.offset_data, info.size)
    except tarfile.TarError as exc:
        raise ArchiveError(f"{source.label}: broken tar archive ({exc})") from None
    return found


def read_tar(source: ByteSource, limits: Limits) -> Any:
    """Read a torch <= 0.3 tar checkpoint's object with lazily bound storages."""
    label = source.label
    members = tar_members(source, limits)
    missing = [m for m in TAR_MEMBERS if m not in members]
    if missing:
        raise NotACheckpointError(f"{label}: a tar archive, but not a torch checkpoint (missing {', '.join(missing)})")

    def part(name: str) -> ByteSource:
        off, size = members[name]
        return SliceSource(source, off, size, f"{label}: {name}")

    sys_info, _ = unpickle_at(part("sys_info"), 0, f"{label}: sys_info", limits)
    if isinstance(sys_info, dict) and sys_info.get("little_endian", True) is not True:
        raise UnsupportedCheckpointError(f"{label}: big-endian tar checkpoints are not supported")

    storages: dict[str, StorageRef] = {}
    src = part("storages")
    count, pos = unpickle_at(src, 0, f"{label}: storages", limits)
    if type(count) is not int or count < 0:
        raise ArchiveError(f"{label}: storages count is malformed")
    limits.check("max_members", count, f"{label}: storage count")
    for _ in range(count):
        args, pos = unpickle_at(src, pos, f"{label}: storages", limits)
        if not (isinstance(args, tuple) and len(args) == 3 and isinstance(args[2], StorageType)):
            raise MalformedPickleError(f"{label}: storages: malformed storage record")
        key = check_storage_key(str(args[0]), f"{label}: storages")
        dtype = args[2].dtype
        if pos + 8 > src.size:
            raise ArchiveError(f"{label}: storages: truncated before storage {key!r}")
        (numel,) = struct.unpack("<q", src.pread(pos, 8))
        nbytes = numel * dtype.itemsize
        if numel < 0 or pos + 8 + nbytes > src.size:
            raise ArchiveError(f"{label}: storages: storage {key!r} runs past the end (truncated?)")
        limits.check("max_storage_bytes", nbytes, f"{label}: storage {key}")
        ref = StorageRef(key, dtype, nbytes, str(args[1]))
        start = pos + 8
        ref.bind(lambda src=src, start=start, n=nbytes: src.view(start, n))
        storages[key] = ref
        pos = start + nbytes
    views, pos = unpickle_at(src, pos, f"{label}: storage views", limits)
    for view in views if isinstance(views, list) else ():
        if not (isinstance(view, tuple) and len(view) == 4):
            raise MalformedPickleError(f"{label}: storages: malformed storage view")
        target, root_key, offset, numel = str(view[0]), str(view[1]), view[2], view[3]
        root = storages.get(root_key)
        if root is None or type(offset) is not int or type(numel) is not int:
            raise ArchiveError(f"{label}: storage view {target!r} refers to a missing storage")
        isz = root.dtype.itemsize
        if (offset + numel) * isz > root.nbytes or offset < 0 or numel < 0:
            raise ArchiveError(f"{label}: storage view {target!r} reaches past its storage")
        ref = StorageRef(target, root.dtype, numel * isz, root.location)
        ref.bind(lambda root=root, a=offset * isz, n=numel * isz: root.buffer()[a:a + n])
        storages[target] = ref

    tensors: dict[str, TensorRef] = {}
    src = part("tensors")
    count, pos = unpickle_at(src, 0, f"{label}: tensors", limits)
    if type(count) is not int or count < 0:
        raise ArchiveError(f"{label}: tensors count is malformed")
    limits.check("max_members", count, f"{label}: tensor count")
    for _ in range(count):
        args, pos = unpickle_at(src, pos, f"{label}: tensors", limits)
        if not (isinstance(args, tuple) and len(args) == 3):
            raise MalformedPickleError(f"{label}: tensors: malformed tensor record")
        key, storage = str(args[0]), storages.get(str(args[1]))
        if storage is None:
            raise ArchiveError(f"{label}: tensor {key!r} refers to a missing storage")
        if pos + 8 > src.size:
            raise ArchiveError(f"{label}: tensors: truncated")
        (ndim,) = struct.unpack("<i", src.pread(pos, 4))
        if not 0 <= ndim <= 64:
            raise ArchiveError(f"{label}: tensor {key!r} has {ndim} dimensions")
        pos += 8
        raw = src.pread(pos, 16 * ndim + 8)
        dims = struct.unpack(f"<{2 * ndim + 1}q", raw)
        pos += len(raw)
        tensors[key] = TensorRef(storage, storage.dtype, dims[-1], tuple(dims[:ndim]), tuple(dims[ndim:2 * ndim]))

    def persistent_load(pid: Any) -> Any:
        if isinstance(pid, str) and pid in tensors:
            return tensors[pid]
        raise UnsupportedCheckpointError(f"{label}: pickle refers to {str(pid)[:40]!r}, which is not a saved tensor")

    obj, _ = unpickle_at(part("pickle"), 0, f"{label}: pickle", limits, persistent_load)
    return obj
