"""The renderer interface: one class per output format, each turning result objects into text.

A format is chosen by name from :data:`~.formats.FORMATS`. Renderers are pure: they
return a string and never print, write files, read the terminal or exit; the CLI
(``cli/render_out.py``) decides the format, the width and where the text goes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from ..audit import DEFAULT_FAIL_ON

if TYPE_CHECKING:
    from ..audit import Report
    from ..compare import Comparison


@dataclass(frozen=True)
class RenderOptions:
    """How to render, decided by the CLI."""

    verbose: bool = False  #: evidence chain, warnings and skipped files (diff: every tensor)
    quiet: bool = False  #: human formats show only the rows that fail the run; the summary still counts all
    fail_on: tuple[str, ...] = DEFAULT_FAIL_ON  #: the ``--fail-on`` policy behind exit codes
    width: int = 80  #: terminal columns available (the table fits itself into them)
    color: bool = False  #: ANSI colour (only the table uses it)
    timings: bool = True  #: include wall-clock fields (JSON); tests switch them off


class Format:
    """Base class of every output format.

    ``render`` is the audit report of ``inspect``, ``scan`` and ``fetch``; every format
    implements it. ``render_tensors`` (the ``tensors`` command) and ``render_diff``
    (``diff``) are optional: a command offers only the formats that implement them.
    """

    name: ClassVar[str] = ""

    def render(self, report: Report, options: RenderOptions) -> str:
        """The whole report as text, ending with a newline."""
        raise NotImplementedError

    def render_tensors(self, report: Report, options: RenderOptions) -> str:
        """Each file's state-dict listing (name, dtype, shape, elements), ending with a newline."""
        raise NotImplementedError(f"{self.name} has no tensor listing")

    def render_diff(self, comparison: Comparison, options: RenderOptions) -> str:
        """A comparison of two state dicts, ending with a newline."""
        raise NotImplementedError(f"{self.name} has no diff view")
