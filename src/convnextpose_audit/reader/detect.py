"""Tell containers apart from their first bytes the way torch.load does, never from a file name.

torch.load takes the zip path when a file starts with ``PK\\x03\\x04``; otherwise it
tries Python's ``tarfile``; otherwise it unpickles from byte 0, whatever the file
is. :func:`sniff` applies the same order to the leading bytes. It may say
"pickle" for a file the full read later finds to be nothing torch could load,
but it never says None for a file torch would start running: a file is
dismissed only when the C unpickler would fail at once, before naming any
global or completing a pickle.
"""

from __future__ import annotations

from .limits import Limits
from .pickle import scan_pickle
from .pickle.ops import NAMES
from .safetensors_format import looks_like_safetensors
from .zipread import LOCAL_MAGIC

SNIFF_BYTES = 512
_SNIFF_LIMITS = Limits(max_opcodes=10_000, max_memo=10_000, max_stack=10_000)


def tar_header_ok(block: bytes) -> bool:
    """Whether Python's tarfile accepts ``block`` as a first header (checksum, or an all-zero end block)."""
    if len(block) < 512:
        return False
    block = block[:512]
    if block.count(0) == 512:
        return True
    field = block[148:156]
    if field[0] in (0x80, 0xFF):  # tarfile's nti(): base-256 numbers
        stored = int.from_bytes(field[1:], "big") - (256 ** 7 if field[0] == 0xFF else 0)
    else:
        try:  # nts() then int(text.strip() or "0", 8), as tarfile does
            stored = int(field.split(b"\0", 1)[0].decode("ascii").strip() or "0", 8)
        except (ValueError, UnicodeDecodeError):
            return False
    unsigned = 256 + sum(block[:148]) + sum(block[156:512])
    signed = 256 + sum(b - 256 if b > 127 else b for b in block[:148] + block[156:512])
    return stored in (unsigned, signed)


def starts_a_pickle(head: bytes, complete: bool) -> bool:
    """Whether the C unpickler, started at byte 0, would do more than fail at once.

    True when it completes a pickle, names a global, or runs off the end of
    ``head`` (unless ``head`` is the whole file). Text that merely starts with an
    opcode letter ("In this folder...") fails within a few opcodes.
    """
    if not head or head[0] not in NAMES:  # the C unpickler fails on its first byte: most files end here
        return False
    scan = scan_pickle(head, member="sniff", limits=_SNIFF_LIMITS)
    return scan.end is not None or bool(scan.globals) or (scan.truncated and not complete)


def sniff(head: bytes, size: int) -> str | None:
    """``"zip"``, ``"tar"``, ``"safetensors"``, ``"pickle"`` or None for a file's leading bytes."""
    if head[:4] == LOCAL_MAGIC:
        return "zip"
    if tar_header_ok(head):
        return "tar"
    if starts_a_pickle(head, len(head) >= size):
        return "pickle"
    if looks_like_safetensors(head, size):
        return "safetensors"
    return None


_KNOWN = [
    (b"\x89PNG", "a PNG image"), (b"\xff\xd8\xff", "a JPEG image"), (b"GIF8", "a GIF image"),
    (b"%PDF", "a PDF document"), (b"\x1f\x8b", "gzip data"), (b"BZh", "bzip2 data"),
    (b"\xfd7zXZ", "xz data"), (b"7z\xbc\xaf", "a 7-zip archive"), (b"Rar!", "a RAR archive"),
    (b"\x93NUMPY", "a numpy .npy file"), (b"\x89HDF", "an HDF5 file"), (b"\x7fELF", "an ELF executable"),
    (b"PK\x05\x06", "an empty zip archive"),
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
