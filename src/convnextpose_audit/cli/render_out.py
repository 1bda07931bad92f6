"""Render a report in the chosen format and send it to stdout or ``--output``."""

from __future__ import annotations

from ..audit import Report
from .output import stdout_console, write_output


def emit_report(report: Report, fmt: str, *, verbose: bool = False, output: str | None = None,
                summary: bool = False, exit_code: int | None = None) -> None:
    """Print (or atomically write) ``report`` as table, json or markdown."""
    if fmt == "json":
        from ..render.json import render_json
        write_output(render_json(report, exit_code=exit_code), output)
    elif fmt == "markdown":
        from ..render.markdown import render_markdown
        write_output(render_markdown(report, verbose=verbose), output)
    else:
        from ..render.table import report_table
        renderable = report_table(report, verbose=verbose, summary=summary)
        if output is None:
            stdout_console().print(renderable)
        else:
            from rich.console import Console
            import io
            buf = io.StringIO()
            Console(file=buf, width=200, no_color=True, markup=False, highlight=False).print(renderable)
            write_output(buf.getvalue(), output)
