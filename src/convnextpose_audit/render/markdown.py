"""A markdown report a user can paste into a GitHub issue."""

from __future__ import annotations

from ..audit import Report
from .text import row, size_text, summary_line

_COLUMNS = ("file", "size", "declared", "inferred", "verdict", "evidence")


def _cell(text: str) -> str:
    # Text from files must not break the table or inject markup: escape pipes, drop newlines, neutralise HTML.
    return (text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ").replace("<", "&lt;")
            .replace(">", "&gt;").replace("`", "\\`"))


def render_markdown(report: Report, *, verbose: bool = False, summary: str | None = None) -> str:
    """The report as a GitHub-flavoured markdown table plus a summary line."""
    lines = ["| " + " | ".join(_COLUMNS) + " |", "|" + "|".join("---" for _ in _COLUMNS) + "|"]
    for r in report.files:
        cells = row(r)
        values = [cells["file"], size_text(r.size), cells["declared"], cells["inferred"], cells["verdict"],
                  cells["evidence"]]
        lines.append("| " + " | ".join(_cell(v) for v in values) + " |")
    lines += ["", summary or summary_line(report)]
    if verbose:
        for r in report.files:
            lines += ["", f"**{_cell(r.path)}**", ""] + [f"- {_cell(e)}" for e in r.evidence]
        lines += [f"- skipped {_cell(s.path)}: {_cell(s.reason)}" for s in report.skipped]
    return "\n".join(lines) + "\n"
