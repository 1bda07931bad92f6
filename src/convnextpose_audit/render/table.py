"""A table for terminals that fits their width: prioritised columns, names never cut.

Text from files is always put in ``Text`` objects (never parsed as rich markup) and has
been escaped by :func:`~.escape.safe` first. The result is a string (with ANSI colour
when asked); the CLI decides where it goes.
"""

from __future__ import annotations

import io
import os

from rich import box
from rich.cells import cell_len
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..audit import AuditResult, Report, Verdict
from .base import Format, RenderOptions
from .escape import safe
from .fields import (int_text, row, safety_lines, same_weights_lines, split_path, summary_line, tensor_rows,
                     tensors_heading, visible)
from .layout import REASON_MIN, Column, fit, shorten_dir

VERDICT_STYLE = {
    Verdict.MATCH: "green", Verdict.UNLABELED: "cyan", Verdict.MISMATCH: "bold red",
    Verdict.UNKNOWN: "yellow", Verdict.UNREADABLE: "magenta", Verdict.UNSAFE: "bold white on red",
}
#: A symbol per verdict, so verdicts stay distinct without colour (NO_COLOR, colour blindness).
VERDICT_SYMBOL = {
    Verdict.MATCH: "✓", Verdict.UNLABELED: "-", Verdict.MISMATCH: "✗",
    Verdict.UNKNOWN: "?", Verdict.UNREADABLE: "!", Verdict.UNSAFE: "!!",
}
#: Always shown; the digest only under --hash, where it is what the user asked to see.
REQUIRED = ("file", "declared", "inferred", "verdict", "digest", "reason")
#: Optional columns, most important first: the head decides between S, M and L, so its
#: widths and joints × bins come before the backbone's stem, dims and depths.
PRIORITY = ("head", "joints×bins", "params", "stem", "dims", "depths")
DISPLAY_ORDER = ("file", "declared", "inferred", "verdict", "digest", "stem", "dims", "depths", "head",
                 "joints×bins", "params", "reason")
GAP = 2  # one space of padding plus the blank column rule of box.SIMPLE_HEAD


def common_dir(paths: list[str]) -> str:
    """The directory (or ``outer.zip!``) every path starts with, ending in ``/`` or ``!``; or ``""``."""
    if not paths:
        return ""
    prefix = os.path.commonprefix([split_path(p)[0] for p in paths])
    return prefix[: max(prefix.rfind("/"), prefix.rfind("!")) + 1]


def _column(key: str, cells: list[str]) -> Column:
    natural = max([cell_len(key)] + [cell_len(c) for c in cells])
    if key == "file":
        minimum = max([cell_len(key)] + [cell_len(split_path(c)[1]) + (2 if split_path(c)[0] else 0) for c in cells])
    elif key == "reason":
        minimum = min(natural, REASON_MIN)
    else:
        minimum = natural
    priority = PRIORITY.index(key) if key in PRIORITY else None
    return Column(key, natural, minimum, priority)


def _verdict_text(r: AuditResult) -> str:
    return f"{VERDICT_SYMBOL[r.verdict]} {r.verdict.value}"


def report_table(shown: list[AuditResult], width: int) -> tuple[list, int]:
    """The renderables of the file table (common directory line, table) and the width they need."""
    if not shown:
        return [], 0
    rows = [row(r) for r in shown]
    base = common_dir([c["file"] for c in rows])
    for c, r in zip(rows, shown):
        c["file"] = c["file"][len(base):]
        c["verdict"] = _verdict_text(r)
    hashed = any(r.digest for r in shown)
    keys = [k for k in DISPLAY_ORDER if k in PRIORITY or (k in REQUIRED and (k != "digest" or hashed))]
    widths = fit([_column(k, [c[k] for c in rows]) for k in keys], width, GAP)
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=(0, 1, 0, 0), header_style="bold")
    for key, w in widths.items():
        table.add_column(key, width=w, min_width=w, max_width=w, no_wrap=True, overflow="ellipsis",
                         justify="right" if key == "params" else "left")
    for c, r in zip(rows, shown):
        cells = dict(c, file=shorten_dir(c["file"], split_path(c["file"])[1], widths["file"], cell_len))
        table.add_row(*[Text(cells[k], style=VERDICT_STYLE[r.verdict] if k == "verdict" else "") for k in widths])
    needed = sum(widths.values()) + GAP * (len(widths) - 1)
    return ([Text(base, style="dim")] if base else []) + [table], needed


def evidence_block(r: AuditResult) -> list[Text]:
    """``-v``: the file's path, its evidence chain and its warnings, outside any cell."""
    return ([Text(""), Text(safe(r.path), style="bold")] + [Text(f"  • {safe(e)}") for e in r.evidence]
            + [Text(f"  ! warning: {safe(w)}", style="yellow") for w in r.warnings]
            + [Text(f"  {line}") for line in safety_lines(r)])


def tensor_table(r: AuditResult) -> tuple[list, int]:
    """``--tensors``: a heading and a table of dtype, shape, elements and name, and the width the
    table needs. The name comes last and is never cut: a long one runs past the terminal edge
    instead of being folded into the cell, and the columns before it stay aligned."""
    rows = tensor_rows(r)
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=(0, 1, 0, 0), header_style="bold")
    for key in ("dtype", "shape", "elements", "name"):
        table.add_column(key, no_wrap=True, justify="right" if key == "elements" else "left")
    for name, dtype, shape, elements in rows:
        table.add_row(Text(dtype), Text(shape), Text(int_text(elements)), Text(name))
    columns = [[d for _, d, _, _ in rows], [s for _, _, s, _ in rows], [int_text(e) for *_, e in rows],
               [n for n, *_ in rows]]
    headers = ("dtype", "shape", "elements", "name")
    needed = sum(max([cell_len(h)] + [cell_len(c) for c in col]) for h, col in zip(headers, columns)) + GAP * 3
    return [Text(""), Text(tensors_heading(r), style="bold"), *([table] if rows else [])], needed


def to_text(parts: list, options: RenderOptions, needed: int = 0) -> str:
    """Render rich objects to a string at the terminal width (wider only if a name needs it)."""
    buf = io.StringIO()
    console = Console(file=buf, width=max(options.width, needed), force_terminal=options.color,
                      color_system="standard" if options.color else None, no_color=not options.color,
                      legacy_windows=False, highlight=False, markup=False, emoji=False, soft_wrap=False)
    for part in parts:
        console.print(part)
    if options.color:
        return buf.getvalue()
    # rich pads every line to the table width; plain output keeps no trailing blanks.
    return "".join(line.rstrip() + "\n" for line in buf.getvalue().splitlines())


class TableFormat(Format):
    """The terminal table: files, same-weights lines, details under -v/--tensors, summary."""

    name = "table"

    def render(self, report: Report, options: RenderOptions) -> str:
        shown = visible(report, options)
        parts, needed = report_table(shown, options.width)
        same = same_weights_lines(report)
        parts += [Text("")] + [Text(line) for line in same] if same else []
        for r in shown:
            if options.verbose:
                parts += evidence_block(r)
            if r.tensors is not None:
                listing, wide = tensor_table(r)
                parts += listing
                needed = max(needed, wide)
        if options.verbose and report.skipped and not options.quiet:
            parts.append(Text(""))
            parts += [Text(f"skipped {safe(s.path)}: {safe(s.reason)}", style="dim") for s in report.skipped]
        if parts:
            parts.append(Text(""))
        parts.append(Text(summary_line(report, options)))
        return to_text(parts, options, needed)

    def render_tensors(self, report: Report, options: RenderOptions) -> str:
        listings = [tensor_table(r) for r in report.files]
        parts = [p for listing, _ in listings for p in listing][1:]  # no blank line before the first
        return to_text(parts, options, max(wide for _, wide in listings))

    def render_diff(self, comparison, options: RenderOptions) -> str:
        from .diff import diff_lines

        return to_text([Text(line) for line in diff_lines(comparison, verbose=options.verbose)], options)
