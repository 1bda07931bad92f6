"""Text of a :class:`~convnextpose_audit.compare.Comparison`: a one-screen summary, or every tensor under ``-v``."""

from __future__ import annotations

import math
from dataclasses import asdict
from typing import Any

from ..compare import Change, ChangeClass, Comparison, DiffSummary, summarize
from .escape import safe
from .fields import int_text, plural, shape_text
from .json import SCHEMA_VERSION, tool

#: Change classes shown without ``-v``; more are counted in one line.
MAX_CLASSES = 10


def comparison_dict(c: Comparison) -> dict[str, Any]:
    """JSON-ready comparison (schema_version 1) with its summary (counts and classes of change)."""
    s = summarize(c)
    return {
        "schema_version": SCHEMA_VERSION, "tool": tool(), "a": c.a, "b": c.b, "conclusion": c.conclusion, "identical": c.identical,
        "prefixes": list(c.prefixes), "only_in_a": c.only_a, "only_in_b": c.only_b, "changed": c.changed,
        "architecture": c.architecture,
        "tensors": [{"name": t.name, "identical": t.identical, "max_abs": t.max_abs, "max_rel": t.max_rel}
                    for t in c.tensors],
        "summary": {"identical": s.identical, "changed_shape": s.changed_shape, "changed_values": s.changed_values,
                    "only_in_a": s.only_a, "only_in_b": s.only_b, "classes": [asdict(k) for k in s.classes]},
    }


def counts_line(s: DiffSummary) -> str:
    """``tensors: 241 identical, 19 changed shape or dtype, 0 changed values, 0 only in A, 0 only in B``."""
    return (f"tensors: {s.identical} identical, {s.changed_shape} changed shape or dtype, "
            f"{s.changed_values} changed values, {s.only_a} only in A, {s.only_b} only in B")


def class_line(k: ChangeClass) -> str:
    """``4 head layers: 256→512 (19 tensors)``; one line per class of change."""
    what = plural(len(k.layers), f"{safe(k.part)} layer" if k.part else "layer")
    detail = {"shape": k.detail, "values": "different values", "only_a": "only in A", "only_b": "only in B"}[k.kind]
    extra = f", max abs diff {k.max_abs:.3g}" if k.max_abs is not None else ""
    return f"{what}: {safe(detail)} ({plural(k.tensors, 'tensor')}{extra})"


def change_line(ch: Change) -> str:
    """One changed tensor: its name, then how it changed."""
    name = safe(ch.name)
    if ch.kind == "shape":
        a, b = ch.shape_a or [], ch.shape_b or []
        after = shape_text(b) if ch.dtype_a == ch.dtype_b else f"{ch.dtype_b} {shape_text(b)}"
        sign = "+" if math.prod(b) >= math.prod(a) else "-"
        return f"{name}  {ch.dtype_a} {shape_text(a)} → {after}  ({sign}{int_text(ch.size)} elements)"
    if ch.kind in ("only_a", "only_b"):
        shape = ch.shape_a if ch.kind == "only_a" else ch.shape_b
        return f"{name}  only in {ch.kind[-1].upper()} {shape_text(shape or [])}  ({int_text(ch.size)} elements)"
    if ch.max_abs is None:
        return f"{name}  different bytes (values not comparable as numbers)"
    return f"{name}  max abs diff {ch.max_abs:.3g}, max rel diff {ch.max_rel:.3g}"


def diff_lines(c: Comparison, *, verbose: bool = False) -> list[str]:
    """The comparison as lines: files, counts, classes of change, then the largest changes
    (``verbose``: every tensor), then the conclusion. All file-controlled text is escaped."""
    s = summarize(c, top=None if verbose else 10)
    lines = [f"{side}: {safe(path)}" + (f" (prefix {safe(repr(prefix))} stripped)" if prefix else "")
             for side, path, prefix in (("A", c.a, c.prefixes[0]), ("B", c.b, c.prefixes[1]))]
    lines.append(counts_line(s))
    if s.classes:
        lines.append("changes:")
        shown = s.classes if verbose else s.classes[:MAX_CLASSES]
        lines += ["  " + class_line(k) for k in shown]
        if len(shown) < len(s.classes):
            lines.append(f"  … {len(s.classes) - len(shown)} more (-v lists them)")
    if verbose:
        lines.append("every tensor:")
        lines += ["  " + change_line(ch) for ch in s.top]
        lines += [f"  {safe(t.name)}  identical" for t in c.tensors if t.identical]
    elif s.top:
        lines.append(f"largest {plural(len(s.top), 'change')}:")
        lines += ["  " + change_line(ch) for ch in s.top]
        if s.total_changes > len(s.top):
            lines.append(f"  … {s.total_changes - len(s.top)} more (-v lists every tensor)")
    lines.append(safe(c.conclusion))
    return lines
