"""An extracted archive folder as records, read without ever leaving the folder.

Every path component is opened relative to the descriptor of its parent with
``O_NOFOLLOW`` (and ``O_DIRECTORY`` for folders), so a symlink anywhere on the
way (``data`` itself, or ``data/0``) is refused instead of followed, and a
folder swapped for a link while we read cannot redirect us either.
"""

from __future__ import annotations

import errno
import mmap
import os
import stat

from ..errors import ArchiveError, LimitExceeded
from .limits import Limits

_ROOT_FLAGS = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0)  # the folder the user named may itself be a link
_DIR_FLAGS = _ROOT_FLAGS | getattr(os, "O_NOFOLLOW", 0)
_FILE_FLAGS = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)


class DirRecords:
    """Files below ``root`` as archive records (``data.pkl``, ``data/0``...). Never follows a symlink."""

    def __init__(self, root: str, limits: Limits, label: str | None = None):
        self.root = root
        self.label = label or root
        self.limits = limits
        self.warnings: list[str] = []

    def _open(self, name: str) -> int | None:
        """A descriptor for regular file ``name``, or None if absent; refuses links and special files."""
        parts = name.split("/")
        if any(p in ("", ".", "..") for p in parts):
            return None
        try:
            fd = os.open(self.root, _ROOT_FLAGS)
        except OSError:
            return None
        try:
            for part in parts[:-1]:
                nxt = os.open(part, _DIR_FLAGS, dir_fd=fd)
                os.close(fd)
                fd = nxt
            leaf = os.open(parts[-1], _FILE_FLAGS, dir_fd=fd)
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENOTDIR, errno.EMLINK):
                raise ArchiveError(f"{self.label}: {name}: a path component is a symlink or not a folder; "
                                   "links are not followed") from None
            return None
        finally:
            if fd >= 0:
                os.close(fd)
        if not stat.S_ISREG(os.fstat(leaf).st_mode):
            os.close(leaf)
            raise ArchiveError(f"{self.label}: {name} is not a regular file")
        return leaf

    def names(self) -> list[str]:
        """Record names of every regular file below the root (links and special files are not listed)."""
        out: list[str] = []
        for dirpath, dirnames, filenames in os.walk(self.root, followlinks=False):
            rel = os.path.relpath(dirpath, self.root)
            prefix = "" if rel == "." else rel.replace(os.sep, "/") + "/"
            dirnames[:] = sorted(d for d in dirnames if not os.path.islink(os.path.join(dirpath, d)))
            for f in sorted(filenames):
                out.append(prefix + f)
                self.limits.check("max_members", len(out), f"{self.label}: files in the folder")
        return out

    def size(self, name: str) -> int | None:
        """Size of regular file ``name``, or None if absent."""
        fd = self._open(name)
        if fd is None:
            return None
        try:
            return os.fstat(fd).st_size
        finally:
            os.close(fd)

    def read(self, name: str, max_bytes: int, what: str = "member", mapped: bool = False):
        """The file's bytes (memory-mapped if ``mapped``); at most ``max_bytes``."""
        fd = self._open(name)
        if fd is None:
            raise ArchiveError(f"{self.label}: missing {name}")
        try:
            size = os.fstat(fd).st_size
            if size > max_bytes:
                raise LimitExceeded(f"{self.label}: {what} {name} is {size:,} bytes, over the limit of {max_bytes:,}")
            if size == 0:
                return b""
            if not mapped:
                data = os.pread(fd, size, 0)
                if len(data) != size:
                    raise ArchiveError(f"{self.label}: {name} changed while being read")
                return data
            return memoryview(mmap.mmap(fd, 0, access=mmap.ACCESS_READ))
        finally:
            os.close(fd)
