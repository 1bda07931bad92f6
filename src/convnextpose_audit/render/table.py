"""Rich tables for terminals. Text from files is always wrapped in ``Text``, never parsed as markup."""

from __future__ import annotations

from rich.console import Group
from rich.table import Table
from rich.text import Text

from ..audit import Report, Verdict
from .text import COLUMNS, row

VERDICT_STYLE = {
    Verdict.MATCH: "green", Verdict.UNLABELED: "cyan", Verdict.MISMATCH: "bold red",
    Verdict.UNKNOWN: "yellow", Verdict.UNREADABLE: "magenta", Verdict.UNSAFE: "bold white on red",
}


def report_table(report: Report, *, verbose: bool = False, summary: str | None = None) -> Group:
    """A table with one row per checkpoint; ``verbose`` adds each file's evidence chain; ``summary`` a last line."""
    table = Table(show_lines=False, header_style="bold")
    for col in COLUMNS:
        table.add_column(col, overflow="fold", no_wrap=col not in ("file", "evidence"))
    for r in report.files:
        cells = row(r)
        table.add_row(*[Text(cells[c], style=VERDICT_STYLE[r.verdict] if c == "verdict" else "") for c in COLUMNS])
    parts: list = [table]
    if verbose:
        for r in report.files:
            parts.append(Text(f"\n{r.path}", style="bold"))
            for line in r.evidence:
                parts.append(Text(f"  • {line}"))
            for w in r.warnings:
                parts.append(Text(f"  ! {w}", style="yellow"))
        for s in report.skipped:
            parts.append(Text(f"skipped {s.path}: {s.reason}", style="dim"))
    if summary:
        parts.append(Text(summary))
    return Group(*parts)
