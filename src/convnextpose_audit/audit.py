"""One path -> audit results (verdict, evidence); many paths -> a report."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Callable, Iterable

from .errors import AuditError, CheckpointReadError, NotACheckpointError, UnsafeCheckpointError
from .exitcodes import ExitCode
from .fingerprint import Fingerprint, find_state_dict, fingerprint
from .labels import label_from_name, manifest_label
from .reader import Checkpoint, Limits, iter_entries
from .reader.remote import Traffic, is_url, metered
from .variants import Difference, Registry, diff, match


class Verdict(str, Enum):
    """What the audit concluded about one checkpoint."""

    MATCH = "MATCH"  #: declared label equals the inferred variant
    MISMATCH = "MISMATCH"  #: declared label differs from the inferred variant
    UNLABELED = "UNLABELED"  #: no declared label; the variant was inferred
    UNKNOWN = "UNKNOWN"  #: architecture not in the registry
    UNREADABLE = "UNREADABLE"  #: the file could not be fully read
    UNSAFE = "UNSAFE"  #: the pickle asks for code; refused, nothing executed


VERDICTS = tuple(v.value for v in Verdict)


@dataclass
class Labels:
    """Where declared labels come from: one forced label, a manifest, and/or file names."""

    forced: str | None = None
    manifest: dict[str, str] = field(default_factory=dict)

    def declare(self, name: str, registry: Registry) -> tuple[str | None, str | None]:
        """Return ``(label, source)`` with source ``"--label"``, ``"manifest"``, ``"file name"`` or None."""
        if self.forced:
            return self.forced, "--label"
        label = manifest_label(name, self.manifest)
        if label:
            return label, "manifest"
        label = label_from_name(name, registry)
        return (label, "file name") if label else (None, None)


@dataclass
class AuditOptions:
    """What to compute beyond the verdict."""

    tensors: bool = False  #: list state-dict tensors (name, dtype, shape)
    hashes: bool = False  #: SHA-256 per tensor and a state-dict digest (reads tensor bytes)
    limits: Limits | None = None


@dataclass
class AuditResult:
    """The audit of one checkpoint."""

    path: str
    verdict: Verdict
    format: str | None = None
    size: int | None = None
    declared: str | None = None
    declared_from: str | None = None
    inferred: str | None = None
    nearest: str | None = None
    error: str | None = None
    #: one short, structured reason for a table row; renderers show it instead of parsing evidence
    reason: str | None = None
    evidence: list[str] = field(default_factory=list)
    differences: list[Difference] = field(default_factory=list)
    fingerprint: Fingerprint | None = None
    warnings: list[str] = field(default_factory=list)
    tensors: list[dict[str, Any]] | None = None
    digest: dict[str, Any] | None = None
    seconds: float = 0.0
    bytes_read: int | None = None  #: bytes received over HTTP for this file (None for local files)
    requests: int | None = None  #: HTTP requests made for this file, redirects and retries included

    @property
    def exit_code(self) -> ExitCode:
        """This file's contribution to the process exit code under the default policy."""
        return fails(self, DEFAULT_FAIL_ON)


@dataclass
class Skipped:
    """A file or member that was looked at and is not a checkpoint."""

    path: str
    reason: str


@dataclass
class Report:
    """Results for many checkpoints plus what was skipped and how long it took."""

    files: list[AuditResult]
    skipped: list[Skipped] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def counts(self) -> dict[str, int]:
        """Number of files per verdict; every verdict is present."""
        counts = dict.fromkeys(VERDICTS, 0)
        for r in self.files:
            counts[r.verdict.value] += 1
        return counts

    def duplicate_groups(self) -> list[list[str]]:
        """Paths whose state-dict digests are equal (only files audited with hashes), in report order."""
        groups: dict[str, list[str]] = {}
        for r in self.files:
            if r.digest:
                groups.setdefault(r.digest["state_dict"], []).append(r.path)
        return [paths for paths in groups.values() if len(paths) > 1]

    @property
    def total_bytes(self) -> int:
        """Sum of the audited files' sizes."""
        return sum(r.size or 0 for r in self.files)

    @property
    def exit_code(self) -> ExitCode:
        """The highest exit code any file asks for (OK for none), under the default policy."""
        return self.exit_code_under(DEFAULT_FAIL_ON)

    def exit_code_under(self, fail_on: Iterable[str]) -> ExitCode:
        """The highest exit code among files whose verdict is in the ``fail_on`` policy."""
        policy = tuple(fail_on)
        return max((fails(r, policy) for r in self.files), default=ExitCode.OK)


#: ``--fail-on`` choices: which verdicts make the run fail, each with the exit code it gives.
FAIL_ON_CHOICES = ("mismatch", "unknown", "unknown-unlabeled", "unlabeled", "unreadable", "unsafe")
DEFAULT_FAIL_ON = ("mismatch", "unknown", "unreadable", "unsafe")


def fails(result: AuditResult, fail_on: Iterable[str]) -> ExitCode:
    """The exit code ``result`` contributes under a ``--fail-on`` policy (OK if it does not fail)."""
    chosen = set(fail_on)
    v = result.verdict
    hit = ((v is Verdict.MISMATCH and "mismatch" in chosen)
           or (v is Verdict.UNKNOWN and result.declared is not None and "unknown" in chosen)
           or (v is Verdict.UNKNOWN and result.declared is None and "unknown-unlabeled" in chosen)
           or (v is Verdict.UNLABELED and "unlabeled" in chosen)
           or (v is Verdict.UNREADABLE and "unreadable" in chosen)
           or (v is Verdict.UNSAFE and "unsafe" in chosen))
    if not hit:
        return ExitCode.OK
    return {Verdict.UNREADABLE: ExitCode.UNREADABLE, Verdict.UNSAFE: ExitCode.UNSAFE}.get(v, ExitCode.MISMATCH)


def audit_checkpoint(ckpt: Checkpoint, registry: Registry, labels: Labels, options: AuditOptions) -> AuditResult:
    """Fingerprint an open checkpoint, match it and judge its declared label."""
    start = time.perf_counter()
    declared, source = labels.declare(ckpt.name, registry)
    fp = fingerprint(ckpt.obj, registry.joints_hints())
    m = match(fp, registry)
    inferred = m.variant.label if m.variant else None
    if inferred is None:
        verdict = Verdict.UNKNOWN
    elif declared is None:
        verdict = Verdict.UNLABELED
    else:
        verdict = Verdict.MATCH if declared == inferred else Verdict.MISMATCH
    evidence = list(m.evidence)
    differences = list(m.differences)
    if verdict is Verdict.MISMATCH:
        differences = list(diff(fp, registry.get(declared)))
        evidence.append(f"declared {declared} (from {source}) but found {inferred}: "
                        + "; ".join(str(d) for d in differences))
    elif verdict is Verdict.UNKNOWN and declared is not None:
        differences = list(diff(fp, registry.get(declared))) if fp.is_convnext else []
        evidence.append(f"declared {declared} (from {source}) but the architecture matches no known variant"
                        + (": " + "; ".join(str(d) for d in differences) if differences else ""))
    result = AuditResult(
        path=ckpt.name, verdict=verdict, format=ckpt.format, size=ckpt.size, declared=declared,
        declared_from=source, inferred=inferred, nearest=m.nearest.label if m.nearest else None,
        evidence=evidence, differences=differences, fingerprint=fp, warnings=list(ckpt.warnings),
        reason=_reason(inferred, m.nearest.label if m.nearest else None, differences, evidence))
    if options.tensors or options.hashes:
        _, sd = find_state_dict(ckpt.obj)
        if options.tensors:
            result.tensors = [{"name": k, "dtype": t.dtype, "shape": list(t.shape)} for k, t in sd.items()]
        if options.hashes:  # reads tensor bytes: a storage that cannot be read makes the file UNREADABLE
            from .digest import state_dict_digest
            result.digest = state_dict_digest(sd)
    result.seconds = time.perf_counter() - start
    return result


def _reason(inferred: str | None, nearest: str | None, differences: list[Difference], evidence: list[str]) -> str:
    """The one short reason behind a verdict: the differing features, else the step that decided."""
    if differences:
        return "; ".join(str(d) for d in differences)
    if inferred:
        # The line where the candidates narrowed to this variant says why.
        return next((e for e in evidence if e.endswith(f"→ {inferred}")), evidence[-1] if evidence else "")
    if nearest:
        return f"nearest {nearest}"
    return evidence[-1] if evidence else ""


def failed(path: str, error: AuditError, declared: str | None = None, declared_from: str | None = None,
           size: int | None = None) -> AuditResult:
    """The result for a file that could not be audited: UNSAFE or UNREADABLE with the one-line reason."""
    verdict = Verdict.UNSAFE if isinstance(error, UnsafeCheckpointError) else Verdict.UNREADABLE
    message = str(error)
    reason = message[len(path) + 2:] if message.startswith(f"{path}: ") else message  # the row shows the path
    return AuditResult(path=path, verdict=verdict, error=message, reason=reason, declared=declared,
                       declared_from=declared_from, size=size, evidence=[message])


def audit_path(path: str, registry: Registry, labels: Labels | None = None,
               options: AuditOptions | None = None, *,
               require_checkpoint: bool = True) -> tuple[list[AuditResult], list[Skipped]]:
    """Audit every checkpoint at ``path`` (one, or several inside an outer zip).

    Never raises an :class:`AuditError`: a file that cannot be read or is
    unsafe becomes an UNREADABLE or UNSAFE result. A zip holding no checkpoint
    is UNREADABLE when ``require_checkpoint`` (a path the user named), else skipped.
    """
    labels = labels or Labels()
    options = options or AuditOptions()
    results: list[AuditResult] = []
    skipped: list[Skipped] = []
    try:
        size = os.path.getsize(path) if os.path.isfile(path) else None
    except OSError:
        size = None
    with metered() as traffic:  # counts HTTP traffic when path is a URL
        try:
            for entry in iter_entries(path, limits=options.limits):
                if entry.open is None:
                    skipped.append(Skipped(entry.name, entry.skipped or "not a checkpoint"))
                    continue
                results.append(_audit_entry(entry.name, entry.open, registry, labels, options))
        except AuditError as exc:
            declared, source = labels.declare(path, registry)
            results.append(failed(path, exc, declared, source, size))
    if not results:
        reason = f"holds no checkpoint ({len(skipped)} member(s) skipped)"
        if require_checkpoint:
            declared, source = labels.declare(path, registry)
            results.append(failed(path, NotACheckpointError(f"{path}: {reason}"), declared, source, size))
        else:
            skipped.append(Skipped(path, reason))
    if is_url(path):
        _add_traffic(results, traffic)
    return results, skipped


def _add_traffic(results: list[AuditResult], traffic: Traffic) -> None:
    # One URL's traffic, reported on each checkpoint found there (usually one).
    for r in results:
        r.bytes_read, r.requests = traffic.bytes_read, traffic.requests
        size = f" of {r.size:,}" if r.size else ""
        r.evidence.insert(0, f"read {traffic.bytes_read:,}{size} bytes over HTTP in {traffic.requests} request(s)")


def _audit_entry(name: str, opener: Callable[[], Checkpoint], registry: Registry, labels: Labels,
                 options: AuditOptions) -> AuditResult:
    try:
        with opener() as ckpt:
            return audit_checkpoint(ckpt, registry, labels, options)
    except (CheckpointReadError, UnsafeCheckpointError) as exc:
        declared, source = labels.declare(name, registry)
        return failed(name, exc, declared, source)


def audit_paths(paths: Iterable[str], registry: Registry, labels: Labels | None = None,
                options: AuditOptions | None = None) -> Report:
    """Audit each path in order and collect one :class:`Report`."""
    start = time.perf_counter()
    report = Report(files=[])
    for path in paths:
        results, skipped = audit_path(path, registry, labels, options)
        report.files.extend(results)
        report.skipped.extend(skipped)
    report.seconds = time.perf_counter() - start
    return report
