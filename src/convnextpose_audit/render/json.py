"""The stable JSON report (``schema_version`` 1). Fields may be added, never renamed."""

from __future__ import annotations

import json
from typing import Any

from .. import __version__
from ..audit import DEFAULT_FAIL_ON, AuditResult, Report, Skipped, fails
from ..exitcodes import MEANINGS
from .base import Format, RenderOptions

SCHEMA_VERSION = 1

#: Fingerprint fields of the JSON contract, in order; more may follow them.
FINGERPRINT_FIELDS = ("stem_width", "dims", "depths", "block_norm", "head_widths", "joints", "depth_bins",
                      "params", "buffers", "total", "epoch", "has_optimizer")
_FINGERPRINT_EXTRA = ("state_dict_key", "prefix", "tensor_count", "stem_shape", "block_kernel", "head_kernel",
                      "final_out", "dtype", "optimizer", "elements", "joints_assumed", "joints_alternatives")


def file_entry(r: AuditResult, fail_on: tuple[str, ...] = DEFAULT_FAIL_ON) -> dict[str, Any]:
    """One file's JSON object; its ``exit_code`` follows the ``--fail-on`` policy."""
    fp = None
    if r.fingerprint is not None:
        d = r.fingerprint.to_dict()
        fp = {k: d[k] for k in FINGERPRINT_FIELDS + _FINGERPRINT_EXTRA}
    entry: dict[str, Any] = {
        "path": r.path,
        "format": r.format,
        "declared": r.declared,
        "inferred": r.inferred,
        "nearest": r.nearest,
        "verdict": r.verdict.value,
        "error": r.error,
        "reason": r.reason,
        "evidence": list(r.evidence),
        "fingerprint": fp,
        "declared_from": r.declared_from,
        "size": r.size,
        "differences": [{"feature": d.feature, "found": _plain(d.found), "expected": _plain(d.expected),
                         **({"key": d.key} if d.key is not None else {})} for d in r.differences],
        "warnings": list(r.warnings),
        "exit_code": int(fails(r, fail_on)),
        "bytes_read": r.bytes_read,
        "requests": r.requests,
        "internal_error": r.internal_error,
        "state_dicts": r.state_dicts,
        "decided_by": r.decided_by,
        "globals": [g.to_dict() for g in r.globals],
        "globals_unlisted": r.globals_more,
        "torch_weights_only": r.torch_weights_only,
    }
    if r.code_files is not None:
        entry["code_files"] = list(r.code_files)
    if r.members != 1:  # a summary row past max_report_items
        entry["members"] = r.members
    if r.tensors is not None:
        entry["tensors"] = r.tensors
    if r.digest is not None:
        entry["digest"] = r.digest
    return entry


def _skipped(s: Skipped) -> dict[str, Any]:
    entry: dict[str, Any] = {"path": s.path, "reason": s.reason}
    if s.members != 1:  # the members past max_report_items, summarised
        entry["members"] = s.members
    return entry


def _plain(v: Any) -> Any:
    return list(v) if isinstance(v, tuple) else v


def report_dict(report: Report, *, fail_on: tuple[str, ...] = DEFAULT_FAIL_ON, timings: bool = True) -> dict[str, Any]:
    """The whole report as a JSON-ready dict under a ``--fail-on`` policy. ``timings=False`` drops wall-clock fields."""
    code = report.exit_code_under(fail_on)
    summary: dict[str, Any] = {
        "counts": report.counts,
        "exit_code": int(code),
        "exit_meaning": MEANINGS[code],
        "files": report.audited,
        "total_bytes": report.total_bytes,
        "skipped": [_skipped(s) for s in report.skipped],
    }
    if any(r.digest for r in report.files):
        summary["duplicates"] = report.duplicate_groups()
    if timings:
        summary["seconds"] = round(report.seconds, 4)
    return {"schema_version": SCHEMA_VERSION, "tool": tool(), "files": [file_entry(r, fail_on) for r in report.files],
            "summary": summary, "policy": report.policy}


def tool() -> dict[str, str]:
    """``{name, version}`` of the cnxp-audit writing a JSON document (the version ``--version`` prints)."""
    return {"name": "cnxp-audit", "version": __version__}


def dumps(data: dict[str, Any]) -> str:
    """Indented, ASCII-safe JSON text, newline-terminated: exact strings, control characters escaped."""
    return json.dumps(data, indent=2, ensure_ascii=True) + "\n"


class JsonFormat(Format):
    """The stable JSON report; file-controlled strings stay exact (JSON escapes them itself)."""

    name = "json"

    def render(self, report: Report, options: RenderOptions) -> str:
        return dumps(report_dict(report, fail_on=options.fail_on, timings=options.timings))

    def render_tensors(self, report: Report, options: RenderOptions) -> str:
        return self.render(report, options)

    def render_diff(self, comparison, options: RenderOptions) -> str:
        from .diff import comparison_dict

        return dumps(comparison_dict(comparison))
