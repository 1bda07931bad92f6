"""Render a report in the chosen format and send it to stdout or ``--output``."""

from __future__ import annotations

import dataclasses

from ..audit import Report, fails
from ..render.text import summary_line
from .output import print_renderable, write_output


def emit_report(report: Report, fmt: str, *, fail_on: tuple[str, ...], verbose: bool = False,
                quiet: bool = False, output: str | None = None, summary: bool = False) -> int:
    """Print (or atomically write) ``report`` as table, json, markdown or sarif; return its exit code.

    ``quiet`` keeps only failing rows in table and markdown; JSON always lists every file.
    """
    code = report.exit_code_under(fail_on)
    totals = summary_line(report)  # counts of the whole run, even when --quiet hides rows
    shown = report
    if quiet and fmt not in ("json", "sarif"):
        shown = dataclasses.replace(report, files=[r for r in report.files if fails(r, fail_on)], skipped=[])
    if fmt == "json":
        from ..render.json import render_json
        write_output(render_json(report, fail_on=fail_on), output)
    elif fmt == "sarif":  # every finding, like JSON (until the renderer registry takes it: SarifRenderer)
        from ..render.sarif import render_sarif
        write_output(render_sarif(report, fail_on=fail_on), output)
    elif fmt == "markdown":
        from ..render.markdown import render_markdown
        write_output(render_markdown(shown, verbose=verbose, summary=totals), output)
    else:
        from ..render.table import report_table
        print_renderable(report_table(shown, verbose=verbose, summary=totals if summary else None), output)
    return code
