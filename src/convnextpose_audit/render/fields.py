"""Short text forms of result fields, shared by the table and markdown renderers."""

from __future__ import annotations

from ..audit import AuditResult, Report


def size_text(n: int | None) -> str:
    """``12.3 MB`` style size, or ``-``."""
    if n is None:
        return "-"
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return "-"


def seq(v) -> str:
    """``48,96,192,384`` or ``-``."""
    return ",".join(str(x) for x in v) if v else "-"


def joints_bins(r: AuditResult) -> str:
    """``18×64`` (or the raw channel count when it does not split)."""
    fp = r.fingerprint
    if fp is None or fp.final_out is None:
        return "-"
    return f"{fp.joints}×{fp.depth_bins}" if fp.joints else str(fp.final_out)


def params_text(r: AuditResult) -> str:
    """Total state-dict elements in millions, e.g. ``8.39 M``."""
    fp = r.fingerprint
    return f"{fp.total / 1e6:.2f} M" if fp and fp.total else "-"


def note(r: AuditResult) -> str:
    """One short evidence note for a table row."""
    if r.error:
        return r.error
    if r.differences:
        return "; ".join(str(d) for d in r.differences)
    if r.inferred:
        # The line where the candidates narrowed to this variant says why.
        return next((e for e in r.evidence if e.endswith(f"→ {r.inferred}")), r.evidence[-1] if r.evidence else "")
    if r.nearest:
        return f"nearest {r.nearest}"
    return r.evidence[-1] if r.evidence else ""


def row(r: AuditResult) -> dict[str, str]:
    """All the short cells of one result, keyed by column name."""
    fp = r.fingerprint
    return {
        "file": r.path,
        "declared": r.declared or "-",
        "inferred": r.inferred or (f"({r.nearest}?)" if r.nearest else "-"),
        "verdict": r.verdict.value,
        "stem": str(fp.stem_width) if fp and fp.stem_width else "-",
        "dims": seq(fp.dims if fp else None),
        "depths": seq(fp.depths if fp else None),
        "head": seq(fp.head_widths if fp else None),
        "joints×bins": joints_bins(r),
        "params": params_text(r),
        "evidence": note(r),
    }


COLUMNS = ("file", "declared", "inferred", "verdict", "stem", "dims", "depths", "head", "joints×bins", "params",
           "evidence")


def summary_line(report: Report) -> str:
    """``4 files, 400.1 MB in 0.21 s: 3 MATCH, 1 MISMATCH`` (zero counts left out)."""
    counts = ", ".join(f"{n} {v}" for v, n in report.counts.items() if n) or "nothing audited"
    skipped = f", {len(report.skipped)} skipped" if report.skipped else ""
    dupes = report.duplicate_groups()
    if dupes:
        skipped += "; same weights: " + "; ".join(" = ".join(g) for g in dupes)
    return (f"{len(report.files)} checkpoint(s), {size_text(report.total_bytes)} in {report.seconds:.2f} s: "
            f"{counts}{skipped}")
