"""The variant registry as a table or JSON."""

from __future__ import annotations

from typing import Any

from ..variants import FEATURES, Registry
from .fields import seq


def registry_dict(registry: Registry) -> dict[str, Any]:
    """Registry as plain data (features, counts, provenance, sources)."""
    return {
        "variants": [{"family": v.family, "label": v.label, "description": v.description,
                      "features": {k: list(x) if isinstance(x, tuple) else x for k, x in v.features.items()},
                      "counts": v.counts, "provenance": v.provenance} for v in registry.variants],
        "sources": registry.sources,
    }


def registry_table(registry: Registry):
    """A rich renderable: one row per variant, then the sources."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    table = Table(header_style="bold")
    for col in ("variant", *FEATURES, "params", "total", "provenance"):
        table.add_column(col.replace("_", " "), overflow="fold")
    for v in registry.variants:
        feats = [seq(x) if isinstance(x, tuple) else str(x) for x in (v.features.get(f, "-") for f in FEATURES)]
        prov = "; ".join(f"{k}: {p}" for k, p in v.provenance.items())
        table.add_row(*[Text(c) for c in (v.name, *feats, f"{v.counts.get('params', 0):,}",
                                          f"{v.counts.get('total', 0):,}", prov)])
    sources = [Text(f"{k}: {s}") for k, s in registry.sources.items()]
    return Group(table, Text("Sources:", style="bold"), *sources)
