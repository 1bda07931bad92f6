"""A markdown report a user can paste into a GitHub issue.

Every string a file controls (paths, reasons, evidence, warnings, tensor names) is
shown as an inline code span (:func:`~.escape.md_code`), so it can neither break the
table nor become a link, an image, HTML or a mention.
"""

from __future__ import annotations

from ..audit import AuditResult, Report
from .base import Format, RenderOptions
from .escape import backtick_fence, md_code
from .fields import (int_text, row, safety_lines, same_weights_lines, size_text, summary_line, tensor_rows,
                     tensors_heading, visible)


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    """A GFM table; cells must already be markdown-safe."""
    return ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|",
            *("| " + " | ".join(cells) + " |" for cells in rows)]


def report_rows(shown: list[AuditResult], hashes: bool) -> tuple[list[str], list[list[str]]]:
    """Header and cells of the file table (a digest column under ``--hash``)."""
    header = ["file", "size", "declared", "inferred", "verdict", *(["digest"] if hashes else []), "reason"]
    rows = []
    for r in shown:
        c = row(r)
        rows.append([md_code(r.path), size_text(r.size), md_code(c["declared"]), md_code(c["inferred"]), c["verdict"],
                     *([c["digest"]] if hashes else []), md_code(c["reason"])])
    return header, rows


def tensor_table(r: AuditResult) -> list[str]:
    """The listing of one file's tensors as a table."""
    rows = [[d, s, int_text(e), md_code(n)] for n, d, s, e in tensor_rows(r)]
    return table(["dtype", "shape", "elements", "name"], rows) if rows else []


def details(r: AuditResult, verbose: bool) -> list[str]:
    """The per-file section under the summary: evidence and warnings (``-v``), tensors (``--tensors``)."""
    lines = ["", f"**{md_code(r.path)}**", ""]
    if verbose:
        lines += [f"- {md_code(e)}" for e in r.evidence] + [f"- warning: {md_code(w)}" for w in r.warnings]
        lines += [f"- {md_code(line.strip())}" for line in safety_lines(r)]
    if r.tensors is not None:
        lines += (["", *tensor_table(r)] if verbose else tensor_table(r))
    return lines


class MarkdownFormat(Format):
    """A table, the summary line, then evidence, tensors and skipped files as their own sections."""

    name = "markdown"

    def render(self, report: Report, options: RenderOptions) -> str:
        shown = visible(report, options)
        header, rows = report_rows(shown, hashes=any(r.digest is not None for r in report.files))
        lines = table(header, rows)
        same = same_weights_lines(report)
        if same:
            lines += ["", *(f"- {md_code(s)}" for s in same)]
        lines += ["", summary_line(report, options)]
        for r in shown:
            if options.verbose or r.tensors is not None:
                lines += details(r, options.verbose)
        if options.verbose and report.skipped and not options.quiet:
            lines += ["", f"**skipped ({report.skipped_count:,})**", ""]
            lines += [f"- {md_code(s.path)}: {md_code(s.reason)}" for s in report.skipped]
        return "\n".join(lines) + "\n"

    def render_tensors(self, report: Report, options: RenderOptions) -> str:
        lines: list[str] = []
        for r in report.files:
            lines += [*([""] if lines else []), md_code(tensors_heading(r)), ""]
            lines += tensor_table(r)
        return "\n".join(lines) + "\n"

    def render_diff(self, comparison, options: RenderOptions) -> str:
        from .diff import diff_lines

        body = diff_lines(comparison, verbose=options.verbose)
        fence = backtick_fence("\n".join(body), 3)  # the lines as they are, in a block they cannot close
        return "\n".join([fence + "text", *body, fence]) + "\n"
