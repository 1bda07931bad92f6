"""Make file-controlled text harmless to show: on a terminal, and inside markdown.

Paths, zip member names, state-dict keys and the evidence that quotes them come from
files an attacker may have written. On a terminal, a raw ESC, CSI (C1 ``0x9b``) or OSC
sequence can move the cursor, erase the verdict line above it or write the clipboard
(OSC 52); bidi overrides can make ``gpj.exe`` read as ``exe.jpg``. So every character
that is not printable is shown as a Python-style escape instead. JSON output keeps the
exact text (``json.dumps`` escapes control characters by itself).
"""

from __future__ import annotations

_NAMED = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


def _escape_char(ch: str) -> str:
    if ch in _NAMED:
        return _NAMED[ch]
    code = ord(ch)
    if 0xDC80 <= code <= 0xDCFF:  # surrogateescape: a raw byte of a name that is not UTF-8
        return f"\\x{code - 0xDC00:02x}"
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def safe(text: str) -> str:
    """``text`` with every non-printable character (C0/C1 controls, DEL, bidi and other format
    characters, separators other than space, surrogates, unassigned code points) shown as
    ``\\x1b``, ``\\u202e``...; printable text, including non-ASCII letters, is unchanged."""
    if text.isprintable():  # the common case, checked at C speed
        return text
    return "".join(ch if ch.isprintable() else _escape_char(ch) for ch in text)


def md_code(text: str) -> str:
    """``text`` as a markdown inline code span, safe inside a GFM table cell.

    Inside a code span nothing is markup: no emphasis, links, images, HTML, entities,
    autolinks, @mentions or #references. Only the table's pipe needs escaping (GFM
    unescapes ``\\|`` inside code spans in tables too). The fence is one backtick longer
    than the longest run inside, and padded when the text starts or ends with one.
    """
    text = safe(text).replace("|", "\\|")
    if not text:
        return ""
    fence = backtick_fence(text, 1)
    pad = " " if text[0] in "` " or text[-1] in "` " else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def backtick_fence(text: str, minimum: int) -> str:
    """A run of backticks longer than any run inside ``text`` (and at least ``minimum`` long):
    a code span or fenced block opened with it cannot be closed from inside."""
    longest = run = 0
    for ch in text:
        run = run + 1 if ch == "`" else 0
        longest = max(longest, run)
    return "`" * max(minimum, longest + 1)
