"""torch <= 0.3 checkpoints: a tar holding ``storages``, ``tensors`` and ``pickle``, read as torch reads them.

``_legacy_load`` opens any file that is not a zip with Python's ``tarfile``
(``mode="r:"``); if that raises ``TarError`` anywhere (first header or a later
one), torch reads the file as a legacy pickle stream instead. Otherwise it
extracts the members named ``storages`` and ``tensors`` (``getmember``: the
*last* member of that name) and unpickles them, then ``pickle`` through
``extractfile``. Members are listed here with the same ``tarfile``, read in
place through their offsets, and refused when they are links or special files
(extraction would follow them, differently across Python versions).
"""

from __future__ import annotations

import io
import struct
from typing import Any

from ..errors import (AmbiguousContainerError, ArchiveError, LimitExceeded, MalformedPickleError,
                      NotACheckpointError, UnsupportedCheckpointError)
from ..plain import Plain
from .limits import Limits
from .meter import Meter
from .pickle import GlobalRef, PickleRead
from .safe_globals import StorageType
from .source import ByteSource, SliceSource
from .stream import PickleStream, frame_past_stop
from .tensor import StorageRef, TensorRef
from .walk import shown

TAR_MEMBERS = ("storages", "tensors", "pickle")


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


class TarEntry(Plain):
    """One tar member as tarfile lists it: name, whether it is a regular file, data offset and size."""

    __slots__ = ("name", "regular", "offset", "size")

    def __init__(self, name: str, regular: bool, offset: int, size: int):
        self.name, self.regular, self.offset, self.size = name, regular, offset, size


def tar_listing(source: ByteSource, limits: Limits) -> list[TarEntry] | None:
    """Every member as ``tarfile.open(mode="r:")`` lists it, or None if tarfile raises anywhere.

    None means torch does not take the tar path: it reads the file as a legacy pickle stream.
    """
    import tarfile

    entries: list[TarEntry] = []
    try:
        with tarfile.open(fileobj=_SourceFile(source), mode="r:") as tar:
            while True:
                info = tar.next()
                if info is None:
                    break
                entries.append(TarEntry(info.name, info.isreg(), info.offset_data, info.size))
                limits.check("max_members", len(entries), f"{source.label}: tar member count")
    except tarfile.TarError:
        return None
    except (EOFError, ValueError, UnicodeError):  # tarfile's own slips on hostile headers: not a tar to us either
        return None
    return entries


def read_tar(source: ByteSource, entries: list[TarEntry], limits: Limits, meter: Meter,
             refs: list[tuple[str, GlobalRef]]) -> Any:
    """Read a torch <= 0.3 tar checkpoint's object with lazily bound storages (see module docstring).

    ``refs`` receives every global reference of every pickle torch would run, before anything is raised.
    """
    label = source.label
    chosen = {e.name: e for e in entries}  # later members replace earlier ones, as tarfile.getmember does

    def part(name: str) -> ByteSource:
        # torch extracts members one at a time, in this order, and unpickles each before looking for the next.
        e = chosen.get(name)
        if e is None:
            if name == "storages":  # nothing has been unpickled yet
                raise NotACheckpointError(f"{label}: a tar archive, but not a torch checkpoint (no storages member)")
            raise ArchiveError(f"{label}: torch <= 0.3 tar checkpoint without a {name!r} member (torch fails "
                               "there, after unpickling the members before it)")
        if not e.regular:
            raise AmbiguousContainerError(f"{label}: ambiguous container: tar member {name!r} is a link or special "
                                          "file; extracting it would follow it")
        return SliceSource(source, e.offset, e.size, f"{label}: {name}")

    objects: dict[Any, Any] = {}
    _read_storages(part("storages"), label, limits, meter, refs, objects)
    _read_tensors(part("tensors"), label, limits, meter, refs, objects)

    def persistent_load(pid: Any) -> Any:
        if isinstance(pid, tuple) and pid:
            return pid[0]  # ('module', class, file, source): torch returns the class the pickle named
        try:
            return objects[int(pid)]
        except (KeyError, TypeError, ValueError):
            raise UnsupportedCheckpointError(f"{label}: pickle refers to {shown(pid)!r}, "
                                             "which is not a saved tensor") from None

    main = PickleStream(part("pickle"), limits, meter, refs).read(0, f"{label}: pickle", persistent_load)
    if main.error is not None:
        raise main.error
    return main.obj


def _completed(result: PickleRead, what: str) -> PickleRead:
    if result.error is not None:
        raise result.error
    if frame_past_stop(result):
        raise AmbiguousContainerError(f"{what}: ambiguous container: a pickle FRAME runs past its STOP")
    return result


def _count(value: Any, what: str, limits: Limits) -> int:
    if type(value) is not int or value < 0:
        raise ArchiveError(f"{what}: count is malformed")
    limits.check("max_members", value, what)
    return value


def _read_storages(src: ByteSource, label: str, limits: Limits, meter: Meter, refs: list, objects: dict) -> None:
    stream = PickleStream(src, limits, meter, refs)
    what = f"{label}: storages"
    head = _completed(stream.read(0, what), what)
    pos = head.end
    for _ in range(_count(head.obj, what, limits)):
        rec = _completed(stream.read(pos, what), what)
        if not (isinstance(rec.obj, tuple) and len(rec.obj) == 3 and isinstance(rec.obj[2], StorageType)
                and rec.obj[2].dtype is not None):
            raise MalformedPickleError(f"{what}: malformed storage record")
        key, location, stype = rec.obj
        pos = rec.end
        if pos + 8 > src.size:
            raise ArchiveError(f"{what}: truncated before storage {shown(key)!r}")
        (numel,) = struct.unpack("<q", src.pread(pos, 8))
        nbytes = numel * stype.dtype.itemsize
        if numel < 0 or pos + 8 + nbytes > src.size:
            raise ArchiveError(f"{what}: storage {shown(key)!r} runs past the end (truncated?)")
        limits.check("max_storage_bytes", nbytes, f"{label}: storage {key}")
        ref = StorageRef(shown(key), stype.dtype, nbytes, shown(location))
        ref.bind(lambda start=pos + 8, n=nbytes: src.view(start, n))
        _put(objects, key, ref, what)
        pos += 8 + nbytes
    views = _completed(stream.read(pos, f"{what} views"), what).obj
    for view in views if isinstance(views, list) else ():
        if not (isinstance(view, tuple) and len(view) == 4):
            raise MalformedPickleError(f"{what}: malformed storage view")
        target, root_key, offset, numel = view
        root = objects.get(root_key) if _hashable(root_key) else None
        if not isinstance(root, StorageRef) or type(offset) is not int or type(numel) is not int:
            raise ArchiveError(f"{label}: storage view {shown(target)!r} refers to a missing storage")
        isz = root.dtype.itemsize
        if offset < 0 or numel < 0 or (offset + numel) * isz > root.nbytes:
            raise ArchiveError(f"{label}: storage view {shown(target)!r} reaches past its storage")
        ref = StorageRef(shown(target), root.dtype, numel * isz, root.location)
        ref.bind(lambda root=root, a=offset * isz, n=numel * isz: root.buffer()[a:a + n])
        _put(objects, target, ref, what)


def _read_tensors(src: ByteSource, label: str, limits: Limits, meter: Meter, refs: list, objects: dict) -> None:
    stream = PickleStream(src, limits, meter, refs)
    what = f"{label}: tensors"
    head = _completed(stream.read(0, what), what)
    pos = head.end
    for _ in range(_count(head.obj, what, limits)):
        rec = _completed(stream.read(pos, what), what)
        if not (isinstance(rec.obj, tuple) and len(rec.obj) == 3):
            raise MalformedPickleError(f"{what}: malformed tensor record")
        key, storage_id, _tensor_type = rec.obj
        storage = objects.get(storage_id) if _hashable(storage_id) else None
        if not isinstance(storage, StorageRef):
            raise ArchiveError(f"{label}: tensor {shown(key)!r} refers to a missing storage")
        pos = rec.end
        if pos + 8 > src.size:
            raise ArchiveError(f"{what}: truncated")
        (ndim,) = struct.unpack("<i", src.pread(pos, 4))
        if not 0 <= ndim <= 64:
            raise ArchiveError(f"{label}: tensor {shown(key)!r} has {ndim} dimensions")
        pos += 8  # ndim was once written as 8 bytes; torch skips the other 4
        dims = struct.unpack(f"<{2 * ndim + 1}q", src.pread(pos, 16 * ndim + 8))
        pos += 16 * ndim + 8
        meter.charge_elements(1, what)
        _put(objects, key, TensorRef(storage, storage.dtype, dims[-1], tuple(dims[:ndim]), tuple(dims[ndim:2 * ndim]),
                                     max_bytes=limits.max_storage_bytes), what)


def _hashable(key: Any) -> bool:
    return type(key) in (int, str, bytes)


def _put(objects: dict, key: Any, value: Any, what: str) -> None:
    if not _hashable(key):
        raise MalformedPickleError(f"{what}: key of type {type(key).__name__}")
    if len(objects) >= 1 << 20:
        raise LimitExceeded(f"{what}: too many storages and tensors")
    objects[key] = value
