"""SARIF 2.1.0, for GitHub code scanning and other SARIF consumers.

Pure: a :class:`Report` in, text out. One rule per verdict and finding kind
with a stable ID (``CNXP0xx`` verdicts, ``CNXP1xx`` security, ``CNXP2xx``
container warnings); one result per finding, located at the checkpoint file
(relative to the working directory when it lies inside it). Text from a
checkpoint only ever appears inside JSON strings, with control characters removed.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from .. import __version__
from ..audit import DEFAULT_FAIL_ON, AuditResult, Report, Verdict, fails
from ..reader.source import is_url
from .base import Format, RenderOptions

SCHEMA_URI = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_URI_SAFE = "/!$&'()*+,;=:@~-._"  # RFC 3986 path characters that need no escaping
_MAX_TEXT = 2000


@dataclass(frozen=True)
class Rule:
    """One SARIF reporting descriptor. ``security_severity`` (0-10, as text) marks security rules."""

    id: str
    name: str
    short: str
    help: str
    level: str
    security_severity: str | None = None
    tags: tuple[str, ...] = ()

    def descriptor(self) -> dict[str, Any]:
        """The ``reportingDescriptor`` object."""
        properties: dict[str, Any] = {"tags": list(self.tags), "precision": "very-high"}
        if self.security_severity:
            properties["security-severity"] = self.security_severity
        return {"id": self.id, "name": self.name, "shortDescription": {"text": self.short},
                "fullDescription": {"text": self.help}, "help": {"text": self.help, "markdown": self.help},
                "defaultConfiguration": {"level": self.level}, "properties": properties}


RULES = (
    Rule("CNXP001", "LabelMismatch", "Checkpoint label disagrees with its architecture",
         "The label the file declares (its name, --label or a manifest) names a different ConvNeXtPose variant "
         "than the one its tensor shapes show. Loading it as the declared variant fails or gives wrong results. "
         "Rename or replace the file; `cnxp-audit inspect -v` shows the evidence.", "error",
         tags=("correctness",)),
    Rule("CNXP002", "UnknownArchitecture", "Checkpoint architecture matches no known variant",
         "The tensor shapes match no variant in the registry. If the file is labelled, the label cannot be right; "
         "otherwise it may be another model family (add it with --variants).", "note", tags=("correctness",)),
    Rule("CNXP003", "Unlabeled", "Checkpoint declares no label",
         "Neither the file name nor a manifest says which variant the file holds; the variant was inferred only.",
         "warning", tags=("maintainability",)),
    Rule("CNXP004", "Unreadable", "Checkpoint could not be fully read",
         "The file is truncated, malformed, ambiguous, over a configured limit, not a checkpoint, or could not be "
         "downloaded. Nothing about it was verified; a loader may read it differently or fail.", "error",
         tags=("reliability",)),
    Rule("CNXP101", "UnsafeGlobal", "Pickle references code outside the allowlist",
         "The checkpoint's pickle imports a global that is not plain tensor data (for example os.system or "
         "builtins.eval). torch.load(weights_only=False) would call it: loading the file can run arbitrary code "
         "(CWE-502). cnxp-audit executed nothing. Do not load the file; obtain the weights from a trusted source "
         "or as safetensors.", "error", "9.8", ("security", "external/cwe/cwe-502")),
    Rule("CNXP102", "TorchScriptCode", "TorchScript archive carries code",
         "The file is a TorchScript archive: it holds Python-like code that torch.jit.load compiles and runs. "
         "Treat it as a program, not as weights.", "error", "8.8", ("security", "external/cwe/cwe-94")),
    Rule("CNXP201", "ContainerWarning", "Tolerated container oddity",
         "The container has an irregularity torch tolerates (for example a zip member whose CRC is wrong). The file "
         "was read as torch reads it; the oddity may point to corruption or tampering.", "note",
         tags=("reliability",)),
)
_INDEX = {rule.id: i for i, rule in enumerate(RULES)}


def render_sarif(report: Report, *, fail_on: tuple[str, ...] = DEFAULT_FAIL_ON, cwd: str | None = None) -> str:
    """The report as a SARIF 2.1.0 log (indented JSON text, newline-terminated).

    ``fail_on`` decides each result's ``failsRun`` property and the recorded
    exit code; ``cwd`` (default: the current directory) is what local paths
    are made relative to.
    """
    base = cwd if cwd is not None else os.getcwd()
    results = [res for r in report.files for res in file_results(r, fail_on, base)]
    run = {
        "tool": {"driver": {"name": "cnxp-audit", "version": __version__, "semanticVersion": __version__,
                            "rules": [rule.descriptor() for rule in RULES]}},
        "invocations": [{"executionSuccessful": True, "exitCode": int(report.exit_code_under(fail_on)),
                         "toolExecutionNotifications": [_skipped(s.path, s.reason) for s in report.skipped]}],
        "results": results,
        "properties": {"counts": report.counts, "files": report.audited},
    }
    return json.dumps({"$schema": SCHEMA_URI, "version": "2.1.0", "runs": [run]}, indent=2, ensure_ascii=True) + "\n"


def file_results(r: AuditResult, fail_on: tuple[str, ...], base: str) -> list[dict[str, Any]]:
    """The SARIF results for one audited file: its verdict finding (if any), then one per container warning."""
    out = []
    rule = verdict_rule(r, fail_on)
    refused = [g for g in r.globals if not g.allowed] if r.verdict is Verdict.UNSAFE else []
    if refused:  # one finding per refused global, under the rule its kind belongs to
        out += [_result(r, _global_rule(g.kind), _global_message(g), base, fail_on, finding=g.name,
                        extra={"global": g.name, "kind": g.kind, "count": g.count}) for g in refused]
    elif rule is not None:
        out.append(_result(r, rule, verdict_message(r), base, fail_on))
    for warning in r.warnings:
        out.append(_result(r, "CNXP201", warning, base, fail_on))
    return out


def verdict_rule(r: AuditResult, fail_on: tuple[str, ...]) -> str | None:
    """The rule a verdict reports under, or None (MATCH; UNLABELED unless the policy fails on it)."""
    if r.verdict is Verdict.UNSAFE:
        return "CNXP102" if r.format == "torchscript" else "CNXP101"
    if r.verdict is Verdict.UNLABELED:
        return "CNXP003" if "unlabeled" in fail_on else None
    return {Verdict.MISMATCH: "CNXP001", Verdict.UNKNOWN: "CNXP002", Verdict.UNREADABLE: "CNXP004"}.get(r.verdict)


def _global_rule(kind: str) -> str:
    return "CNXP102" if kind == "torchscript" else "CNXP101"


def _global_message(g) -> str:
    """One refused global in a sentence: name, kind and why, how often and where first."""
    first = g.where[0] if g.where else None
    place = f"; first {first['opcode']} in {first['member']} at byte {first['offset']:,}" if first else ""
    return (f"references {g.name} ({g.kind}: {g.reason}), {g.count} time(s){place}; outside the allowlist, "
            "nothing was imported or called")


def verdict_message(r: AuditResult) -> str:
    """The evidence for a verdict in one sentence, built from the result's fields."""
    differences = "; ".join(str(d) for d in r.differences)
    where = f" (from {r.declared_from})" if r.declared_from else ""
    if r.error:
        return r.error
    if r.verdict is Verdict.MISMATCH:
        return f"declared {r.declared}{where} but the tensors are {r.inferred}: {differences}"
    if r.verdict is Verdict.UNKNOWN:
        claim = f"declared {r.declared}{where} but the" if r.declared else "The"
        nearest = f" (nearest {r.nearest}: {differences})" if r.nearest and differences else ""
        last = f": {r.evidence[-1]}" if r.evidence and not nearest else ""
        return f"{claim} architecture matches no known variant{nearest}{last}"
    if r.verdict is Verdict.UNLABELED:
        return f"no declared label; the tensors are {r.inferred}"
    return r.verdict.value


def _result(r: AuditResult, rule_id: str, text: str, base: str, fail_on: tuple[str, ...], *, finding: str = "",
            extra: dict[str, Any] | None = None) -> dict[str, Any]:
    uri, member = artifact_uri(r.path, base)
    location: dict[str, Any] = {"physicalLocation": {"artifactLocation": {"uri": uri}}}
    if member:
        location["logicalLocations"] = [{"fullyQualifiedName": _clean(member)}]
    # ``finding`` (a global's name) keeps several findings of one rule in one file apart.
    key = f"{rule_id}\0{uri}\0{member}" + (f"\0{finding}" if finding else "")
    fingerprint = hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()
    return {
        "ruleId": rule_id, "ruleIndex": _INDEX[rule_id], "level": RULES[_INDEX[rule_id]].level,
        "message": {"text": _clean(text)},
        "locations": [location],
        "partialFingerprints": {"cnxpFinding/v1": fingerprint[:32]},
        "properties": {"verdict": r.verdict.value, "declared": r.declared, "inferred": r.inferred,
                       "nearest": r.nearest, "format": r.format, "failsRun": bool(fails(r, fail_on)),
                       **({k: _clean(v) if isinstance(v, str) else v for k, v in extra.items()} if extra else {})},
    }


def artifact_uri(path: str, base: str) -> tuple[str, str]:
    """``(uri, member)``: a URL as it is; a local path relative to ``base`` when inside it, else a
    ``file://`` URI. ``outer.zip!inner`` names point at the outer zip, with the inner path as ``member``."""
    if is_url(path):
        return _clean(path), ""
    member = ""
    head, sep, tail = path.partition("!")
    if sep and head.lower().endswith(".zip"):
        path, member = head, tail
    absolute = os.path.normpath(os.path.join(base, path))
    rel = os.path.relpath(absolute, base)
    if rel == ".." or rel.startswith(".." + os.sep) or os.path.isabs(rel):
        return "file://" + _quote(absolute.replace(os.sep, "/")), member
    return _quote(rel.replace(os.sep, "/")), member


def _quote(path: str) -> str:
    return quote(path.encode("utf-8", "surrogateescape"), safe=_URI_SAFE)


def _clean(text: str) -> str:
    # Undecodable file-name bytes (lone surrogates) become visible escapes; control characters spaces.
    text = _CONTROL.sub(" ", text.encode("utf-8", "backslashreplace").decode("utf-8"))
    return text if len(text) <= _MAX_TEXT else text[:_MAX_TEXT - 1] + "…"


def _skipped(path: str, reason: str) -> dict[str, Any]:
    return {"level": "note", "message": {"text": _clean(f"skipped {path}: {reason}")}}


class SarifFormat(Format):
    """SARIF 2.1.0 for code scanning: every finding, whatever ``--quiet`` says (as JSON)."""

    name = "sarif"

    def render(self, report: Report, options: RenderOptions) -> str:
        """Render ``report`` as SARIF 2.1.0 under the options' ``--fail-on`` policy."""
        return render_sarif(report, fail_on=tuple(options.fail_on))
