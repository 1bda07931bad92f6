"""A rich progress bar on stderr when stderr is a terminal; silence otherwise."""

from __future__ import annotations

import contextlib
import sys
from typing import Iterator

from ..render.escape import safe
from ..scan import Progress


@contextlib.contextmanager
def progress_bar(enabled: bool = True) -> Iterator[Progress | None]:
    """Yield a ``(done, total, path)`` callback drawing a bar on stderr, or None when not a terminal."""
    if not enabled or not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress as Bar, TextColumn, TimeElapsedColumn

    bar = Bar(TextColumn("auditing"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
              TextColumn("{task.fields[current]}", markup=False), console=Console(stderr=True), transient=True)
    task = None

    def update(done: int, total: int, path: str) -> None:
        nonlocal task
        if task is None:
            task = bar.add_task("audit", total=total, current="")
        bar.update(task, completed=done, current=safe(path)[-60:])  # a file name must not drive the terminal

    with bar:
        yield update
