"""Download a public Google Drive folder or file with gdown's Python API.

gdown is used only through :func:`_gdown` (tests replace it there). Files
already present with the remote size are not downloaded again. Every gdown or
network failure becomes a :class:`DownloadFailed` with a one-line message.
"""

from __future__ import annotations

import os
import re
import threading
from dataclasses import dataclass
from typing import Any, Callable

from .errors import DownloadFailed

OFFICIAL_FOLDER = "https://drive.google.com/drive/folders/12H7zkLvmJtrkCmAUAPkQ6788WAnO60gI"


@dataclass
class Fetched:
    """One remote file and what happened to it: ``downloaded`` or ``skipped`` (same size present)."""

    path: str
    status: str


def _gdown():
    import gdown

    return gdown


def parse_target(url_or_id: str) -> tuple[str, str]:
    """Return ``("folder" | "file", id)`` for a Drive URL; a bare id is taken as a folder."""
    text = url_or_id.strip()
    m = re.search(r"/folders/([A-Za-z0-9_-]+)", text)
    if m:
        return "folder", m.group(1)
    m = re.search(r"/file/d/([A-Za-z0-9_-]+)", text) or re.search(r"[?&]id=([A-Za-z0-9_-]+)", text)
    if m:
        return "file", m.group(1)
    if re.fullmatch(r"[A-Za-z0-9_-]{10,}", text):
        return "folder", text
    raise DownloadFailed(f"{url_or_id!r} is not a Google Drive folder/file URL or id")


def explain(exc: BaseException, what: str) -> str:
    """One line saying why a gdown call failed, in the user's terms."""
    text = " ".join(str(exc).split())
    low = text.lower()
    name = type(exc).__name__
    if "too many users" in low or "quota" in low:
        return (f"{what}: Google Drive quota exceeded (\"Too many users have viewed or downloaded this file "
                f"recently\"); try again later or copy the file to your own Drive")
    if "maximumlimit" in name.lower() or "more than 50" in low or "max number of files" in low:
        return (f"{what}: the folder holds more files than gdown can list; download it from a browser as a zip "
                f"and run `cnxp-audit scan` on the zip")
    if "permission" in low or "anyone with the link" in low or "cannot retrieve the public link" in low:
        return f"{what}: not public (sharing must be 'Anyone with the link'), or Drive is refusing access now"
    if name in ("ConnectionError", "Timeout", "ConnectTimeout", "ReadTimeout", "MaxRetryError") \
            or "connection" in low or "name resolution" in low or "network is unreachable" in low:
        return f"{what}: no network connection to Google Drive ({name})"
    if isinstance(exc, OSError) and exc.strerror:
        return f"{what}: {exc.strerror}"
    return f"{what}: {name}: {text[:300]}" if text else f"{what}: {name}"


def _call(what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    try:
        return fn(*args, **kwargs)
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # gdown raises requests', bs4's and its own exceptions
        raise DownloadFailed(explain(exc, what)) from None


class _Discard:
    def write(self, data: bytes) -> int:
        return len(data)

    def flush(self) -> None:
        pass


def remote_size(gdown: Any, file_id: str) -> int | None:
    """The remote file's size, learnt from gdown's first progress report, then cancelled; None if unknown."""
    seen: list[int | None] = []
    cancel = threading.Event()

    def progress(done: int, total: int | None) -> None:
        seen.append(total)
        cancel.set()

    try:
        gdown.download(id=file_id, output=_Discard(), quiet=True, progress=progress, cancel=cancel)
    except TypeError:  # an older gdown without progress/cancel: the size cannot be learnt cheaply
        return None
    except Exception:
        if not seen:
            return None
    return seen[0] if seen else None


def _inside(path: str, root: str) -> bool:
    root = os.path.realpath(root)
    return os.path.commonpath([os.path.realpath(path), root]) == root


def fetch(url_or_id: str, out_dir: str, *, quiet: bool = False,
          log: Callable[[str], None] = lambda _m: None) -> list[Fetched]:
    """Download a Drive folder (or one file) into ``out_dir``; skip files present with the same size."""
    kind, drive_id = parse_target(url_or_id)
    gdown = _gdown()
    try:
        os.makedirs(out_dir, exist_ok=True)
    except OSError as exc:
        raise DownloadFailed(f"{out_dir}: cannot create output folder ({exc.strerror or exc})") from None
    out = out_dir if out_dir.endswith(os.sep) else out_dir + os.sep
    if kind == "folder":
        listing = _call(f"listing Drive folder {drive_id}", gdown.download_folder, id=drive_id, output=out,
                        quiet=True, skip_download=True)
    else:
        listing = [_call(f"looking up Drive file {drive_id}", gdown.download, id=drive_id, output=out,
                         quiet=True, skip_download=True)]
    fetched: list[Fetched] = []
    for item in listing:
        local = item.local_path
        if not _inside(local, out_dir):
            raise DownloadFailed(f"Drive listed {item.path!r}, which would land outside {out_dir}; refused")
        if os.path.isfile(local):
            size = remote_size(gdown, item.id)
            if size is not None and size == os.path.getsize(local):
                log(f"skip {local} (already present, {size:,} bytes)")
                fetched.append(Fetched(local, "skipped"))
                continue
        os.makedirs(os.path.dirname(local) or ".", exist_ok=True)
        log(f"download {item.path}")
        _call(f"downloading {item.path}", gdown.download, id=item.id, output=local, quiet=quiet)
        fetched.append(Fetched(local, "downloaded"))
    return fetched
