"""Where output goes: data to stdout, progress and diagnostics to stderr. rich only for tables."""

from __future__ import annotations

import os
import sys

import click


def error(message: str) -> None:
    """Print a one-line diagnostic to stderr (never parsed as markup; control characters escaped)."""
    from ..render.escape import safe

    click.echo(f"cnxp-audit: {safe(message)}", err=True)


def info(message: str) -> None:
    """Print a progress/diagnostic line to stderr (control characters escaped)."""
    from ..render.escape import safe

    click.echo(safe(message), err=True)


def stdout_console():
    """A rich console on stdout: colour only on a terminal and without NO_COLOR; wide when piped."""
    from rich.console import Console

    tty = sys.stdout.isatty()
    width = None if tty or os.environ.get("COLUMNS") else 200
    return Console(file=sys.stdout, width=width, no_color=not tty or "NO_COLOR" in os.environ,
                   highlight=False, soft_wrap=False, emoji=False, markup=False)


def write_output(text: str, path: str | None) -> None:
    """Write ``text`` to stdout, or atomically to ``path`` (temp file + rename: never half-written)."""
    if path is None:
        click.echo(text, nl=False)
        return
    from ..atomic import atomic_output

    with atomic_output(path, "w") as fh:
        fh.write(text)


def print_renderable(renderable, path: str | None = None) -> None:
    """Print a rich renderable to stdout, or write it as plain text to ``path`` (atomically)."""
    if path is None:
        stdout_console().print(renderable)
        return
    import io

    from rich.console import Console

    buf = io.StringIO()
    Console(file=buf, width=200, no_color=True, markup=False, highlight=False, emoji=False).print(renderable)
    write_output(buf.getvalue(), path)
