"""Random-access byte sources: a file on disk, bytes in memory, or a window of either."""

from __future__ import annotations

import mmap
import os
import stat

from ..errors import ArchiveError, NotACheckpointError


#: Inputs read over HTTP (reader/remote.py); everything else is a local path.
URL_SCHEMES = ("http://", "https://", "hf://")


def is_url(path: object) -> bool:
    """Whether ``path`` is an ``http://``, ``https://`` or ``hf://`` URL (case-insensitive scheme).

    Here rather than in remote.py, so that local paths never import the HTTP machinery.
    """
    return isinstance(path, str) and path[:8].lower().startswith(URL_SCHEMES)


class ByteSource:
    """Read-only random access to ``size`` bytes. Reads past the end raise :class:`ArchiveError`."""

    size: int
    label: str

    def pread(self, offset: int, n: int) -> bytes:
        """Return exactly ``n`` bytes at ``offset``."""
        raise NotImplementedError

    def view(self, offset: int, n: int) -> memoryview:
        """Return ``n`` bytes at ``offset`` without copying where the source allows (mmap)."""
        return memoryview(self.pread(offset, n))

    def _check(self, offset: int, n: int) -> None:
        if offset < 0 or n < 0 or offset + n > self.size:
            raise ArchiveError(f"{self.label}: truncated (needs bytes {offset:,}..{offset + n:,} of {self.size:,})")

    def close(self) -> None:
        """Release OS resources; views already handed out stay valid where the OS allows."""


class FileSource(ByteSource):
    """A regular file, read with ``pread``; memory-mapped on first :meth:`view`.

    Shared by every checkpoint found in the file: each holder calls
    :meth:`acquire` / :meth:`release`, and the descriptor closes when the last
    one releases. A later read reopens the file (and checks its size).
    """

    def __init__(self, path: str, label: str | None = None):
        self.path = path
        self.label = label or path
        self._fd = -1
        self._map: mmap.mmap | None = None
        self._refs = 1
        self.bytes_read = 0  # how much of the file was touched through pread, for the "<1 MB" promise
        self.size = self._open()

    def _open(self) -> int:
        # O_NONBLOCK so a FIFO or device given by mistake cannot hang the open.
        fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            os.close(fd)
            raise NotACheckpointError(f"{self.label}: not a regular file")
        self._fd = fd
        return st.st_size

    def _fd_now(self) -> int:
        if self._fd < 0 and self._open() != self.size:
            raise ArchiveError(f"{self.label}: file changed size while being read")
        return self._fd

    def pread(self, offset: int, n: int) -> bytes:
        self._check(offset, n)
        out = os.pread(self._fd_now(), n, offset)
        self.bytes_read += len(out)
        if len(out) != n:  # the file shrank under us
            raise ArchiveError(f"{self.label}: truncated while reading")
        return out

    def view(self, offset: int, n: int) -> memoryview:
        self._check(offset, n)
        if n == 0:
            return memoryview(b"")
        if self._map is None:
            self._map = mmap.mmap(self._fd_now(), 0, access=mmap.ACCESS_READ)
        return memoryview(self._map)[offset:offset + n]

    def acquire(self) -> None:
        """Register one more holder of this file."""
        self._refs += 1

    def release(self) -> None:
        """Drop one holder; close the descriptor and map when none is left."""
        self._refs -= 1
        if self._refs <= 0:
            self.close()

    def close(self) -> None:
        if self._map is not None:
            try:
                self._map.close()
            except BufferError:  # a caller still holds an array over the map; GC will unmap it
                pass
            self._map = None
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass


class MemorySource(ByteSource):
    """Bytes already in memory (an inflated inner zip, a test buffer)."""

    def __init__(self, data: bytes | bytearray, label: str):
        self._data = data
        self.size = len(data)
        self.label = label

    def pread(self, offset: int, n: int) -> bytes:
        self._check(offset, n)
        return bytes(self._data[offset:offset + n])

    def view(self, offset: int, n: int) -> memoryview:
        self._check(offset, n)
        return memoryview(self._data)[offset:offset + n]


class SliceSource(ByteSource):
    """A window ``[base, base + size)`` of another source: a stored member read in place."""

    def __init__(self, parent: ByteSource, base: int, size: int, label: str):
        parent._check(base, size)
        self._parent = parent
        self._base = base
        self.size = size
        self.label = label

    def pread(self, offset: int, n: int) -> bytes:
        self._check(offset, n)
        return self._parent.pread(self._base + offset, n)

    def view(self, offset: int, n: int) -> memoryview:
        self._check(offset, n)
        return self._parent.view(self._base + offset, n)
