"""Member stores: named byte blobs a torch archive is read from (a zip, or a folder on disk)."""

from __future__ import annotations

import mmap
import os
import stat

from ..errors import ArchiveError, LimitExceeded
from .limits import Limits
from .zipread import ZipArchive


class ZipStore:
    """Members of a zip under ``prefix`` (``"snapshot_83.pth/"``, ``""``...)."""

    def __init__(self, archive: ZipArchive, prefix: str):
        self.archive = archive
        self.prefix = prefix
        self.warnings = archive.warnings

    def size(self, name: str) -> int | None:
        """Uncompressed size of ``prefix + name``, or None if absent."""
        m = self.archive.members.get(self.prefix + name)
        return None if m is None else m.usize

    def read(self, name: str, max_bytes: int, what: str = "member", mapped: bool = False):
        """Bytes of ``prefix + name`` (a zero-copy view of a stored member if ``mapped``), at most ``max_bytes``."""
        return self.archive.read(self.prefix + name, max_bytes, what, mapped)


class DirStore:
    """Files of an extracted archive folder. Never follows a symlink, never leaves the folder."""

    def __init__(self, root: str, limits: Limits):
        self.root = root
        self.limits = limits
        self.warnings: list[str] = []

    def _path(self, name: str) -> str | None:
        path = os.path.join(self.root, *name.split("/"))
        try:
            st = os.lstat(path)
        except OSError:
            return None
        if stat.S_ISLNK(st.st_mode):
            raise ArchiveError(f"{self.root}: {name} is a symlink; links are not followed")
        if not stat.S_ISREG(st.st_mode):
            raise ArchiveError(f"{self.root}: {name} is not a regular file")
        return path

    def size(self, name: str) -> int | None:
        """Size of file ``name`` under the root, or None if absent."""
        path = self._path(name)
        return None if path is None else os.lstat(path).st_size

    def read(self, name: str, max_bytes: int, what: str = "member", mapped: bool = False):
        """The file's bytes (memory-mapped if ``mapped``); at most ``max_bytes``."""
        path = self._path(name)
        if path is None:
            raise ArchiveError(f"{self.root}: missing {name}")
        size = os.lstat(path).st_size
        if size > max_bytes:
            raise LimitExceeded(f"{self.root}: {what} {name} is {size:,} bytes, over the limit of {max_bytes:,}")
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
        try:
            if size == 0:
                return b""
            if not mapped:
                return os.pread(fd, size, 0)
            return memoryview(mmap.mmap(fd, 0, access=mmap.ACCESS_READ))
        finally:
            os.close(fd)
