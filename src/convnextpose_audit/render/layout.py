"""Choose which table columns fit a terminal and how wide each one is (pure arithmetic).

Columns have priorities. The required ones (file, declared, inferred, verdict, reason)
are always shown; the file column never narrower than its longest base name, the
verdict never cut. Space is then handed out in this order:

1. the reason, up to :data:`REASON_FIRST` columns (a short reason beats a wide table);
2. the file column, up to :data:`DIR_FIRST` columns of directory beyond its base name;
3. optional columns, most important first, each only if it fits whole, stopping at the
   first that does not (so columns appear in the same order as the terminal widens);
4. the file column, up to its whole (common-directory-relative) path;
5. the reason, up to its full length.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

REASON_FIRST = 24
REASON_MIN = 10
DIR_FIRST = 16


@dataclass
class Column:
    """One candidate column: its widest cell (header included) and how narrow it may get."""

    key: str
    natural: int
    minimum: int
    priority: int | None = None  #: None: always shown; otherwise lower numbers are added first


def fit(columns: list[Column], width: int, gap: int) -> dict[str, int]:
    """Widths of the columns to show (in the order given), fitting ``width`` where possible.

    When even the required columns at their minimum do not fit, they are returned at their
    minimum anyway: the line is then wider than the terminal, but no name is cut.
    """
    widths = {c.key: c.minimum for c in columns if c.priority is None}
    by_key = {c.key: c for c in columns}

    def room() -> int:
        return width - sum(widths.values()) - gap * (len(widths) - 1)

    def grow(key: str, limit: int) -> None:
        if key in widths:
            widths[key] = max(widths[key], min(limit, widths[key] + max(room(), 0)))

    if "reason" in by_key:
        grow("reason", min(by_key["reason"].natural, REASON_FIRST))
    if "file" in by_key:
        grow("file", min(by_key["file"].natural, by_key["file"].minimum + DIR_FIRST))
    for c in sorted((c for c in columns if c.priority is not None), key=lambda c: c.priority):
        if c.natural + gap > room():
            break  # strict priority: a column never shows while a more important one is hidden
        widths[c.key] = c.natural
    if "file" in by_key:
        grow("file", by_key["file"].natural)
    if "reason" in by_key:
        grow("reason", by_key["reason"].natural)
    return {c.key: widths[c.key] for c in columns if c.key in widths}


def shorten_dir(path: str, base: str, width: int, cells: Callable[[str], int]) -> str:
    """``path`` cut to ``width`` cells by eliding the end of its directory (``runA/che…/x.tar``).

    The start is kept because, once the common directory is shown above the table, the
    first components are where rows differ. The base name stays whole, even if that is
    wider than ``width``; it needs ``cells(base) + 2`` for the ellipsis and separator.
    """
    if cells(path) <= width:
        return path
    directory = path[: len(path) - len(base)]
    sep, body = directory[-1:], directory[:-1]
    budget = width - cells(base) - cells(sep) - 1  # one cell for the ellipsis
    kept: list[str] = []
    used = 0
    for ch in body:
        used += cells(ch)
        if used > budget:
            break
        kept.append(ch)
    return "".join(kept) + "…" + sep + base
