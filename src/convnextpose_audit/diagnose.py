"""Why a file that should be a checkpoint is not one, told in terms of what to do about it.

Pure: the file's first bytes, its size and its name in; a one-line reason out
(or None when none of the known bad-download shapes fits). Consulted only after
the reader has failed, so a readable file is never second-guessed. ``read``
(offset, length) -> bytes lets the truncation check look past the first bytes
without this module opening anything itself.

The shapes, each common in CI and on shared drives:

- 0 bytes: an interrupted download or copy;
- a Git LFS pointer: a checkout without ``git lfs`` (GitHub Actions' default);
- an HTML page: Google Drive's quota or virus-scan warning saved under the file's name;
- a truncated zip (torch >= 1.6) or safetensors file: a download that stopped early.
"""

from __future__ import annotations

import json
import re
import struct
from typing import Callable

#: File names that claim to be checkpoints: such a file that cannot be read is UNREADABLE, never skipped.
CHECKPOINT_SUFFIXES = (".pth", ".pt", ".tar", ".ckpt", ".bin", ".safetensors")
#: How many leading bytes :func:`diagnose` wants to see.
HEAD_BYTES = 1024

Read = Callable[[int, int], bytes]

_LFS = b"version https://git-lfs.github.com/spec/"
_LFS_SIZE = re.compile(rb"^size (\d{1,20})\s*$", re.MULTILINE)
_EOCD = b"PK\x05\x06"
_EOCD_SPAN = 22 + 0xFFFF  # the end record plus the longest comment it may carry
_MAX_SAFETENSORS_HEADER = 16 << 20  # real headers are kilobytes; beyond this, no diagnosis
#: Bounds on the work a diagnosis may do (it runs only after a failure, on untrusted bytes). Real
#: data.pkl files are kilobytes (L: about 30 kB, 30,000 opcodes with its optimizer state).
_MAX_PICKLE = 16 << 20
_MAX_OPCODES = 1_000_000


def looks_like_checkpoint(name: str) -> bool:
    """True when the file name (or a zip member's) ends like a checkpoint: .pth, .pt, .tar, .ckpt, .bin, .safetensors."""
    base = name.rsplit("!", 1)[-1].replace("\\", "/").rsplit("/", 1)[-1].lower()
    return base.endswith(CHECKPOINT_SUFFIXES)


def diagnose(head: bytes, size: int, name: str = "", read: Read | None = None) -> str | None:
    """A reason saying what is wrong and what to do, for the known bad-download shapes; else None.

    ``head`` is the file's first bytes (at least :data:`HEAD_BYTES` when the file
    has them), ``size`` its length. ``read`` is needed to measure truncation.
    """
    if size == 0:
        return "empty file: the download did not finish (0 bytes); download it again"
    if head.startswith(_LFS):
        m = _LFS_SIZE.search(head)
        real = f" (the real file has {int(m[1]):,} bytes)" if m else ""
        return f"Git LFS pointer, not the file{real}: run `git lfs pull`"
    if _is_html(head):
        return ("Drive returned a web page (quota or virus-scan warning), not the file: "
                "open the link in a browser, or try again later")
    if read is not None and head[:4] == b"PK\x03\x04":
        return _zip_truncation(read, size)
    if read is not None and (name.lower().endswith(".safetensors") or _safetensors_like(head)):
        return _safetensors_truncation(read, size)
    return None


def _is_html(head: bytes) -> bool:
    text = head[:HEAD_BYTES].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    return text.startswith((b"<!doctype html", b"<html", b"<head", b"<body")) or (
        text.startswith(b"<") and b"<html" in text)


def _truncated(size: int, expected: int | None, missing: str, *, exact: bool = False) -> str:
    if expected is None or expected <= size:
        return f"truncated: {size:,} bytes: the download or copy did not finish ({missing} missing)"
    of = f"of {expected:,}" if exact else f"of at least {expected:,}"
    return f"truncated: {size:,} {of} bytes: the download or copy did not finish ({missing} missing)"


def _zip_truncation(read: Read, size: int) -> str | None:
    """A zip without its end record. torch writes ``data.pkl`` first; the storages it lists give
    a lower bound on the whole file's size (record headers and the directory come on top)."""
    start = max(0, size - _EOCD_SPAN)
    if _EOCD in read(start, size - start):
        return None  # the end record is there: whatever failed, it was not truncation
    missing = "tensor data and the zip directory"
    first = _local_header(read, 0)
    if first is None:
        return _truncated(size, None, missing)
    name, data_start, csize = first
    if not name.endswith("data.pkl"):
        return _truncated(size, None, missing)
    end = data_start + csize if csize else _descriptor_end(read, data_start, size)
    if end is None or end > size:
        return _truncated(size, None, missing)
    storages = _storage_bytes(read(data_start, min(end - data_start, _MAX_PICKLE)))
    return _truncated(size, end + storages if storages else None, missing)


def _local_header(read: Read, pos: int) -> tuple[str, int, int] | None:
    """``(name, data offset, compressed size or 0 when it follows the data)`` of a stored member."""
    hdr = read(pos, 30)
    if len(hdr) < 30 or hdr[:4] != b"PK\x03\x04":
        return None
    method, = struct.unpack_from("<H", hdr, 8)
    csize, = struct.unpack_from("<L", hdr, 18)
    nlen, xlen = struct.unpack_from("<HH", hdr, 26)
    if method != 0 or csize == 0xFFFFFFFF:
        return None  # deflated or zip64 data.pkl: not what torch writes; nothing to measure with
    name = read(pos + 30, nlen).decode("utf-8", "replace")
    return name, pos + 30 + nlen + xlen, csize


def _descriptor_end(read: Read, start: int, size: int) -> int | None:
    """End of a stored member whose sizes follow it: the first data descriptor that gives its own offset."""
    pos = start
    limit = min(size, start + _MAX_PICKLE)
    while pos < limit:
        chunk = read(pos, min(1 << 20, limit - pos) + 24)
        at = chunk.find(b"PK\x07\x08")
        while at != -1:
            q = pos + at
            body = chunk[at + 8:at + 24]
            if len(body) >= 4 and struct.unpack_from("<L", body)[0] == q - start:
                return q + 16
            if len(body) >= 8 and struct.unpack_from("<Q", body)[0] == q - start:
                return q + 24
            at = chunk.find(b"PK\x07\x08", at + 1)
        pos += 1 << 20
    return None


def _storage_bytes(pickled: bytes) -> int | None:
    """Bytes of every storage ``data.pkl`` refers to (persistent ids ``('storage', type, key, location,
    numel)``), found by decoding its opcodes with pickletools; nothing is executed or built."""
    import pickletools

    from .reader.dtypes import DTYPES, STORAGE_CLASSES

    memo: dict = {}
    values: list = []
    marks: list[int] = []
    seen: dict[str, int] = {}
    last = None
    try:
        for count, (op, arg, _pos) in enumerate(pickletools.genops(pickled)):
            if count > _MAX_OPCODES:
                return None
            name = op.name
            if name in _PUSHES:
                last = arg
            elif name == "STACK_GLOBAL":
                last = " ".join(str(v) for v in values[-2:])
                del values[-2:]
            elif name in ("BINPUT", "LONG_BINPUT", "PUT"):
                memo[arg] = last
                continue
            elif name == "MEMOIZE":
                memo[len(memo)] = last
                continue
            elif name in ("BINGET", "LONG_BINGET", "GET"):
                last = memo.get(arg)
            elif name == "MARK":
                marks.append(len(values))
                continue
            elif name == "TUPLE" or name in _TUPLE_N:
                begin = marks.pop() if name == "TUPLE" and marks else len(values) - _TUPLE_N.get(name, 0)
                last = tuple(values[max(begin, 0):])
                del values[max(begin, 0):]
            elif name == "BINPERSID":
                pid = values.pop() if values else None
                if isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage" and isinstance(pid[4], int):
                    cls = str(pid[1]).replace(".", " ").split()[-1]
                    dtype = DTYPES.get(STORAGE_CLASSES.get(cls, ""))
                    if dtype is not None:
                        seen[str(pid[2])] = pid[4] * dtype.itemsize
                last = None
            else:
                last = None
                continue
            values.append(last)
            if len(values) > _MAX_OPCODES:
                return None
    except (ValueError, TypeError, KeyError, IndexError, OverflowError):
        pass  # a cut or odd pickle: count what was seen so far
    return sum(seen.values()) or None


_PUSHES = {"BINUNICODE", "SHORT_BINUNICODE", "UNICODE", "BINUNICODE8", "BINSTRING", "SHORT_BINSTRING", "STRING",
           "BININT", "BININT1", "BININT2", "INT", "LONG", "LONG1", "LONG4", "GLOBAL", "NONE"}
_TUPLE_N = {"EMPTY_TUPLE": 0, "TUPLE1": 1, "TUPLE2": 2, "TUPLE3": 3}


def _safetensors_like(head: bytes) -> bool:
    return len(head) > 9 and head[8:9] == b"{" and struct.unpack_from("<Q", head)[0] < (1 << 32)


def _safetensors_truncation(read: Read, size: int) -> str | None:
    """safetensors declares every tensor's byte range: the expected size is exact."""
    if size < 8:
        return _truncated(size, 8, "the safetensors header", exact=True)
    (n,) = struct.unpack("<Q", read(0, 8))
    if n > _MAX_SAFETENSORS_HEADER:
        return None
    if 8 + n > size:
        return _truncated(size, 8 + n, "the end of the safetensors header", exact=True)
    try:
        header = json.loads(read(8, n))
        end = max((int(v["data_offsets"][1]) for k, v in header.items() if k != "__metadata__"), default=0)
    except (ValueError, TypeError, KeyError, IndexError, AttributeError):
        return None
    if 8 + n + end > size:
        return _truncated(size, 8 + n + end, "the end of the tensor data", exact=True)
    return None
