"""The one registry of output formats: name -> the class that renders it.

Entries are ``"module:Class"`` strings under this package, imported only when that
format is used, so that ``--format json`` never imports rich. A new format is one
module with a :class:`~.base.Format` subclass plus one line here; ``--format``
offers every name listed.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .base import Format

FORMATS = {
    "table": "table:TableFormat",
    "text": "text:TextFormat",
    "markdown": "markdown:MarkdownFormat",
    "json": "json:JsonFormat",
    "sarif": "sarif:SarifFormat",
}


def get_format(name: str) -> Format:
    """An instance of the format registered as ``name`` (KeyError for an unknown name)."""
    module, cls = FORMATS[name].split(":")
    return getattr(importlib.import_module(f".{module}", __package__), cls)()
