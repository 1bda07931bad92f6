"""Write a file so that readers only ever see nothing or the whole thing."""

from __future__ import annotations

import contextlib
import os
from typing import IO, Iterator


@contextlib.contextmanager
def atomic_output(path: str, mode: str = "wb", *, overwrite: bool = True) -> Iterator[IO]:
    """Yield a temp file beside ``path``; on success fsync and rename it to ``path``, on any error delete it.

    With ``overwrite=False`` an existing ``path`` is never replaced (FileExistsError).
    """
    import tempfile

    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".cnxp-", suffix=".tmp", dir=directory)
    mask = os.umask(0)
    os.umask(mask)
    os.fchmod(fd, 0o666 & ~mask)  # mkstemp's 0600 is for the temp name, not for the result
    try:
        with os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        if overwrite:
            os.replace(tmp, path)
        else:
            os.link(tmp, path)  # fails if path appeared meanwhile; never clobbers
            os.unlink(tmp)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
