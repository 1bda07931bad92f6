"""Plain lines for pipes: one line per file, ASCII separators, never wrapped.

``VERDICT  declared->inferred  path  reason``: the first two fields never contain a
space, so ``grep MISMATCH`` gives whole lines and ``awk '{print $1}'`` the verdicts.
This is what ``--format table`` prints when stdout is not a terminal.
"""

from __future__ import annotations

from ..audit import AuditResult, Report
from .base import Format, RenderOptions
from .escape import safe
from .fields import (int_text, row, safety_lines, same_weights_lines, summary_line, tensor_rows, tensors_heading,
                     visible)

#: Width of the verdict field: the longest verdict, so columns line up from run to run.
VERDICT_WIDTH = len("UNREADABLE")
SEP = "  "
INDENT = "    "


def transition(r: AuditResult) -> str:
    """``L->M``: declared, then inferred (``-`` for none); ASCII, no spaces."""
    cells = row(r)
    return f"{cells['declared']}->{cells['inferred']}".replace(" ", "_")


def file_line(r: AuditResult, pad: int) -> str:
    """The one line of a file: verdict, transition, digest (``--hash``), path, reason."""
    cells = row(r)
    fields = [r.verdict.value.ljust(VERDICT_WIDTH), transition(r).ljust(pad)]
    if r.digest is not None:
        fields.append(cells["digest"])
    fields += [cells["file"], cells["reason"]]
    return SEP.join(fields).rstrip()


def evidence_lines(r: AuditResult, indent: str = INDENT) -> list[str]:
    """The evidence chain, warnings and safety lines (globals, torch's answer) of one file, indented under its line."""
    return ([indent + safe(e) for e in r.evidence] + [f"{indent}! warning: {safe(w)}" for w in r.warnings]
            + [indent + line for line in safety_lines(r)])


def tensor_lines(r: AuditResult, indent: str = INDENT) -> list[str]:
    """``dtype  shape  elements  name`` per tensor: the name last, so the columns before it stay
    aligned and awk fields ``$1``-``$3`` stay fixed whatever the name holds."""
    rows = tensor_rows(r)
    if not rows:
        return []
    dtype_w = max(len(d) for _, d, _, _ in rows)
    shape_w = max(len(s) for _, _, s, _ in rows)
    counts = [int_text(e, "") for *_, e in rows]
    count_w = max(len(c) for c in counts)
    return [indent + SEP.join((d.ljust(dtype_w), s.ljust(shape_w), c.rjust(count_w), n))
            for (n, d, s, _), c in zip(rows, counts)]


class TextFormat(Format):
    """One plain line per file, then the summary line."""

    name = "text"

    def render(self, report: Report, options: RenderOptions) -> str:
        shown = visible(report, options)
        pad = max([len(transition(r)) for r in shown] + [1])
        lines: list[str] = []
        for r in shown:
            lines.append(file_line(r, pad))
            if options.verbose:
                lines += evidence_lines(r)
            if r.tensors is not None:
                lines += tensor_lines(r)
        if options.verbose and not options.quiet:
            lines += [SEP.join(("SKIPPED".ljust(VERDICT_WIDTH), "-".ljust(pad), safe(s.path), safe(s.reason)))
                      for s in report.skipped]
        lines += same_weights_lines(report)
        lines.append(summary_line(report, options))
        return "\n".join(lines) + "\n"

    def render_tensors(self, report: Report, options: RenderOptions) -> str:
        lines: list[str] = []
        for r in report.files:
            lines.append(tensors_heading(r))
            lines += tensor_lines(r, indent="  ")
        return "\n".join(lines) + "\n"

    def render_diff(self, comparison, options: RenderOptions) -> str:
        from .diff import diff_lines

        return "\n".join(diff_lines(comparison, verbose=options.verbose)) + "\n"
