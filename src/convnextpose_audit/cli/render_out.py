"""Choose the output format for where the output goes, render, and write it out."""

from __future__ import annotations

import os
import sys

from ..audit import DEFAULT_FAIL_ON, Report
from ..render.base import RenderOptions
from ..render.formats import get_format
from .output import write_output


def resolve_format(fmt: str, output: str | None) -> str:
    """``table`` only for a terminal; piped or written to a file it becomes ``text``, one plain
    line per file that grep and awk can rely on. Every other format is used as asked."""
    if fmt == "table" and (output is not None or not sys.stdout.isatty()):
        return "text"
    return fmt


def render_options(fmt: str, *, verbose: bool = False, quiet: bool = False,
                   fail_on: tuple[str, ...] = DEFAULT_FAIL_ON) -> RenderOptions:
    """Options for rendering to stdout; a table gets the terminal's width, and colour unless NO_COLOR."""
    if fmt != "table":
        return RenderOptions(verbose=verbose, quiet=quiet, fail_on=fail_on)
    import shutil  # only a table needs the width (shutil costs bz2 and lzma imports)

    return RenderOptions(verbose=verbose, quiet=quiet, fail_on=fail_on, width=shutil.get_terminal_size().columns,
                         color=sys.stdout.isatty() and "NO_COLOR" not in os.environ)


def emit_report(report: Report, fmt: str, *, fail_on: tuple[str, ...], verbose: bool = False,
                quiet: bool = False, output: str | None = None) -> int:
    """Print (or atomically write) ``report`` in format ``fmt``; return the run's exit code.

    ``quiet`` keeps only failing rows in human formats; JSON always lists every file.
    """
    name = resolve_format(fmt, output)
    options = render_options(name, verbose=verbose, quiet=quiet, fail_on=fail_on)
    write_output(get_format(name).render(report, options), output)
    return report.exit_code_under(fail_on)
