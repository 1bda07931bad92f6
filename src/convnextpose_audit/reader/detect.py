"""Tell container formats apart from their first bytes, never from a file name."""

from __future__ import annotations

from ..errors import AuditError, UnsafeCheckpointError
from .limits import Limits
from .safetensors_format import looks_like_safetensors
from .unpickler import Truncated, unpickle
from .zipread import ZIP_MAGIC

SNIFF_BYTES = 512

# Opcodes a protocol 0/1 pickle may start with (protocol 2+ starts with PROTO, 0x80).
_TEXT_PICKLE_FIRST = set(b"(]})NIJKLFSVXUTcdlG")
_SNIFF_LIMITS = Limits(max_opcodes=10_000, max_memo=10_000, max_stack=10_000)


def sniff(head: bytes, size: int) -> str | None:
    """Return ``"zip"``, ``"tar"``, ``"safetensors"``, ``"pickle"`` or None for the leading bytes."""
    if head[:4] in ZIP_MAGIC:
        return "zip"
    if len(head) >= 262 and head[257:262] == b"ustar":
        return "tar"
    if looks_like_safetensors(head, size):
        return "safetensors"
    if head[:1] == b"\x80" and len(head) > 1 and head[1] <= 5:
        return "pickle"
    if head[:1] and head[0] in _TEXT_PICKLE_FIRST and b"\n" in head and _runs_as_pickle(head, len(head) >= size):
        return "pickle"
    return None


def _runs_as_pickle(head: bytes, complete: bool) -> bool:
    # Text that merely starts with an opcode letter ("In this folder...") fails within a few
    # opcodes; a real protocol 0/1 pickle runs, runs off the end of the sniffed bytes, or asks
    # for a global with identifier names (which must then be reported, not skipped).
    try:
        unpickle(head, member="sniff", limits=_SNIFF_LIMITS, persistent_load=lambda pid: None)
    except Truncated:
        return not complete
    except UnsafeCheckpointError as exc:
        return all(part.isidentifier() for part in f"{exc.module}.{exc.name}".split("."))
    except AuditError:
        return False
    return True


_KNOWN = [
    (b"\x89PNG", "a PNG image"), (b"\xff\xd8\xff", "a JPEG image"), (b"GIF8", "a GIF image"),
    (b"%PDF", "a PDF document"), (b"\x1f\x8b", "gzip data"), (b"BZh", "bzip2 data"),
    (b"\xfd7zXZ", "xz data"), (b"7z\xbc\xaf", "a 7-zip archive"), (b"Rar!", "a RAR archive"),
    (b"\x93NUMPY", "a numpy .npy file"), (b"\x89HDF", "an HDF5 file"), (b"\x7fELF", "an ELF executable"),
]


def describe(head: bytes) -> str:
    """A short human description of what a non-checkpoint file seems to be."""
    if not head:
        return "empty file"
    for magic, what in _KNOWN:
        if head.startswith(magic):
            return what
    low = head[:256].lstrip().lower()
    if low.startswith((b"<!doctype html", b"<html")):
        return "an HTML page (a failed download, e.g. Google Drive's quota or sign-in page?)"
    try:
        head.decode("utf-8")
        return "a text file"
    except UnicodeDecodeError:
        return f"unrecognised data starting {head[:8].hex(' ')}"
