"""Render a :class:`~convnextpose_audit.compare.Comparison` as JSON data or a rich table."""

from __future__ import annotations

from typing import Any

from ..compare import Comparison


def comparison_dict(c: Comparison) -> dict[str, Any]:
    """JSON-ready comparison (schema_version 1)."""
    return {
        "schema_version": 1, "a": c.a, "b": c.b, "conclusion": c.conclusion, "identical": c.identical,
        "prefixes": list(c.prefixes), "only_in_a": c.only_a, "only_in_b": c.only_b, "changed": c.changed,
        "architecture": c.architecture,
        "tensors": [{"name": t.name, "identical": t.identical, "max_abs": t.max_abs, "max_rel": t.max_rel}
                    for t in c.tensors],
    }


def comparison_table(c: Comparison, verbose: bool = False):
    """A rich renderable: the differing keys and tensors, then the conclusion."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    parts: list = []
    for title, keys in (("only in A", c.only_a), ("only in B", c.only_b)):
        if keys:
            parts.append(Text(f"{title} ({len(keys)}): " + ", ".join(keys[:20]) + (" …" if len(keys) > 20 else "")))
    for ch in c.changed:
        parts.append(Text(f"changed {ch['name']}: {ch['a']['dtype']} {ch['a']['shape']} → "
                          f"{ch['b']['dtype']} {ch['b']['shape']}"))
    rows = [t for t in c.tensors if verbose or not t.identical]
    if rows:
        table = Table(header_style="bold")
        for col in ("tensor", "identical", "max abs diff", "max rel diff"):
            table.add_column(col)
        for t in rows:
            table.add_row(Text(t.name), Text("yes" if t.identical else "no"),
                          Text("-" if t.max_abs is None else f"{t.max_abs:.3g}"),
                          Text("-" if t.max_rel is None else f"{t.max_rel:.3g}"))
        parts.append(table)
    same = sum(t.identical for t in c.tensors)
    parts.append(Text(f"{same} of {len(c.tensors)} shared tensors identical"))
    parts.append(Text(c.conclusion, style="bold"))
    return Group(*parts)
