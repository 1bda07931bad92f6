"""Tell container formats apart from their first bytes, never from a file name."""

from __future__ import annotations

from .safetensors_format import looks_like_safetensors
from .zipread import ZIP_MAGIC

SNIFF_BYTES = 512

# Opcodes a pickle may start with: PROTO (protocol 2+) or a protocol 0/1 opcode.
_PICKLE_FIRST = set(b"\x80(]})NIJKLFSVXUTcdl")


def sniff(head: bytes, size: int) -> str | None:
    """Return ``"zip"``, ``"tar"``, ``"safetensors"``, ``"pickle"`` or None for the leading bytes."""
    if head[:4] in ZIP_MAGIC:
        return "zip"
    if len(head) >= 262 and head[257:262] == b"ustar":
        return "tar"
    if looks_like_safetensors(head, size):
        return "safetensors"
    if head[:1] == b"\x80" and len(head) > 1 and 0 <= head[1] <= 5:
        return "pickle"
    if head[:1] and head[0] in _PICKLE_FIRST and head[:1] != b"\x80":
        return "pickle" if b"." in head or len(head) >= SNIFF_BYTES else None
    return None


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
