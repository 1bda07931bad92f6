"""Short, terminal-safe text forms of result fields, shared by every human format.

Everything returned here has been through :func:`~.escape.safe`, so a renderer can
put it in front of a person as it is (markdown adds its own code spans on top).
"""

from __future__ import annotations

import math
from typing import Iterable

from ..audit import AuditResult, Report, fails
from .base import RenderOptions
from .escape import safe

#: Hex digits of the state-dict digest shown in a row: enough to tell weights apart at a glance,
#: few enough to fit an 80-column table (JSON has the whole digest).
SHORT_DIGEST = 8


def size_text(n: int | None) -> str:
    """``12.3 MB`` style size (decimal units), or ``-``."""
    if n is None:
        return "-"
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return "-"


def seq(v) -> str:
    """``48,96,192,384`` or ``-``."""
    return ",".join(int_text(x, "") if isinstance(x, int) else str(x) for x in v) if v else "-"


#: Beyond this many bits an int is shown as a power of two: Python refuses to print ints of
#: more than 4,300 digits, and a hostile shape must not crash a report.
MAX_PRINTED_BITS = 1024


def int_text(n: int, sep: str = ",") -> str:
    """``1,920`` (``sep=""``: ``1920``); ``>2^1100`` for an absurdly large count."""
    if n.bit_length() > MAX_PRINTED_BITS:
        return f">2^{n.bit_length() - 1}"
    return f"{n:,}".replace(",", sep)


def plural(n: int, word: str) -> str:
    """``1 file``, ``2 files``."""
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def joints_bins(r: AuditResult) -> str:
    """``18×64`` (or the raw channel count when it does not split)."""
    fp = r.fingerprint
    if fp is None or fp.final_out is None:
        return "-"
    return f"{fp.joints}×{int_text(fp.depth_bins, '')}" if fp.joints else int_text(fp.final_out, "")


def params_text(r: AuditResult) -> str:
    """Learnable parameters in millions, e.g. ``8.38 M`` (the paper's word; all elements are in JSON)."""
    fp = r.fingerprint
    if not fp or not fp.params:
        return "-"
    # Exact integer arithmetic: an element count too large for a float must not crash the row.
    hundredths = (fp.params + 5_000) // 10_000
    return f"{int_text(hundredths // 100, '')}.{hundredths % 100:02d} M"


def inferred_text(r: AuditResult) -> str:
    """The inferred label, ``(M?)`` when only a nearest variant is known, or ``-``."""
    return r.inferred or (f"({r.nearest}?)" if r.nearest else "-")


def reason_text(r: AuditResult) -> str:
    """The one short reason for this result's verdict (the structured ``reason`` field)."""
    if r.reason is not None:
        return safe(r.reason)
    return safe(r.error or "")


def short_digest(r: AuditResult) -> str:
    """The first hex digits of the state-dict digest (``--hash``), or ``-``."""
    return r.digest["state_dict"][:SHORT_DIGEST] if r.digest else "-"


def row(r: AuditResult) -> dict[str, str]:
    """Every short cell of one result, keyed by column name; all terminal-safe."""
    fp = r.fingerprint
    return {
        "file": safe(r.path),
        "declared": safe(r.declared or "-"),
        "inferred": safe(inferred_text(r)),
        "verdict": r.verdict.value,
        "digest": short_digest(r),
        "stem": int_text(fp.stem_width, "") if fp and fp.stem_width else "-",
        "dims": seq(fp.dims if fp else None),
        "depths": seq(fp.depths if fp else None),
        "head": seq(fp.head_widths if fp else None),
        "joints×bins": joints_bins(r),
        "params": params_text(r),
        "reason": reason_text(r),
    }


def split_path(path: str) -> tuple[str, str]:
    """``("examples/drive/", "ConvNeXtPose_S.tar")``: directory (or ``outer.zip!``) and base name."""
    cut = max(path.rfind("/"), path.rfind("!")) + 1
    return path[:cut], path[cut:]


def shape_text(shape: Iterable[int]) -> str:
    """``[40,3,4,4]`` (no spaces, so it stays one field for awk); ``[]`` for a scalar."""
    return "[" + ",".join(int_text(d, "") for d in shape) + "]"


def tensor_rows(r: AuditResult) -> list[tuple[str, str, str, int]]:
    """``(name, dtype, shape, elements)`` per listed tensor, in file order; names terminal-safe."""
    return [(safe(str(t["name"])), safe(str(t["dtype"])), shape_text(t["shape"]), math.prod(t["shape"]))
            for t in r.tensors or ()]


def tensors_heading(r: AuditResult) -> str:
    """``path: zip, state dict 'network', prefix 'module.', 3 of 260 tensors, 1,920 elements``."""
    fp = r.fingerprint
    parts = [safe(r.path) + ":", r.format or r.verdict.value]
    if fp is not None and fp.state_dict_key is not None:
        parts.append(f"state dict {safe(repr(fp.state_dict_key)) if fp.state_dict_key else 'at the top level'}")
        if fp.prefix:
            parts.append(f"prefix {safe(repr(fp.prefix))}")
    listed = len(r.tensors or ())
    total = fp.tensor_count if fp is not None else listed
    count = plural(total, "tensor") if listed == total else f"{listed} of {plural(total, 'tensor')}"
    elements = sum(t[3] for t in tensor_rows(r))
    text = " ".join(parts[:2]) + "".join(", " + p for p in parts[2:]) + f", {count}, {int_text(elements)} elements"
    return text if r.error is None else f"{text} ({r.verdict.value}: {reason_text(r)})"


def visible(report: Report, options: RenderOptions) -> list[AuditResult]:
    """The rows to show: all of them, or under ``quiet`` only those that fail the run."""
    if not options.quiet:
        return list(report.files)
    return [r for r in report.files if fails(r, options.fail_on)]


def same_weights_lines(report: Report) -> list[str]:
    """``B: same weights as A`` for every file whose state-dict digest equals an earlier one's."""
    lines = []
    for group in report.duplicate_groups():
        first = safe(group[0])
        lines += [f"{safe(path)}: same weights as {first}" for path in group[1:]]
    return lines


def summary_line(report: Report, options: RenderOptions) -> str:
    """One line, worded the same in every human format, covering the whole run (even under quiet):
    ``6 files, 1.1 MB in 0.08 s: 4 MATCH, 1 MISMATCH, 1 UNKNOWN; 3 skipped; exit code 1``."""
    counts = ", ".join(f"{n} {v}" for v, n in report.counts.items() if n) or "nothing audited"
    skipped = f"; {report.skipped_count:,} skipped" if report.skipped else ""
    code = int(report.exit_code_under(options.fail_on))
    return (f"{plural(report.audited, 'file')}, {size_text(report.total_bytes)} in {report.seconds:.2f} s: "
            f"{counts}{skipped}; exit code {code}")


def torch_answer(r: AuditResult) -> str | None:
    """torch's predicted answer in words: ``torch 2.13 torch.load(weights_only=True): refuses; would need ...``."""
    wo = r.torch_weights_only
    if not wo:
        return None
    head = f"torch {wo['torch']} torch.load(weights_only=True): "
    if wo["loads"]:
        return safe(head + "loads" + (f" ({wo['reason']})" if wo.get("reason") else ""))
    parts = list(wo.get("blocked") or [])
    if wo.get("needs"):
        scalars = "" if wo.get("needs_complete", True) else " and the numpy.dtypes class of each numpy scalar's dtype"
        parts.append(f"would need add_safe_globals([{', '.join(wo['needs'])}]){scalars}")
    return safe(head + "refuses; " + "; ".join(parts))


def globals_lines(r: AuditResult) -> list[str]:
    """``-v``: every global the file names, one line each: allowed or REFUSED, kind, name, count, first place."""
    if not r.globals:
        return []
    refused = sum(not g.allowed for g in r.globals)
    more = f", {r.globals_more} more not listed" if r.globals_more else ""
    lines = [f"globals: {len(r.globals)} ({refused} refused{more})"]
    width = max(len(g.kind) for g in r.globals)
    for g in r.globals:
        first = g.where[0] if g.where else None
        place = f" ({first['opcode']} in {first['member']} at byte {int_text(first['offset'])})" if first else ""
        lines.append(safe(f"  {'allowed' if g.allowed else 'REFUSED'}  {g.kind.ljust(width)}  {g.name} "
                          f"×{int_text(g.count)}{place}"))
    return lines


def safety_lines(r: AuditResult) -> list[str]:
    """``-v``: torch's predicted answer, the TorchScript code records, then the globals (all terminal-safe)."""
    lines = [line for line in (torch_answer(r),) if line]
    if r.code_files:
        shown = ", ".join(r.code_files[:5]) + (f" and {len(r.code_files) - 5} more" if len(r.code_files) > 5 else "")
        lines.append(safe(f"TorchScript code (never run): {len(r.code_files)} records: {shown}"))
    return lines + globals_lines(r)
