"""One path -> audit results (verdict, evidence); many paths -> a report.

The verdict rules, in one place:

- a state dict whose features and every key and shape are exactly a variant's is that variant
  (MATCH when it is the declared label, MISMATCH when another label was declared, UNLABELED
  when none was);
- a ConvNeXt state dict that is not exactly any variant (a near miss) is MISMATCH when a label
  was declared and UNKNOWN when none was; a file holding no ConvNeXt state dict is UNKNOWN;
- when a checkpoint holds several state dicts (a model and its EMA), each is judged and the
  worst verdict decides (a loader may pick any of them); ``decided_by`` names it;
- a file that cannot be fully read is UNREADABLE, one that references code is UNSAFE, and a bug
  while auditing one file makes that file UNREADABLE with ``internal_error`` (exit 70).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Callable, Iterable

from .errors import AuditError, CheckpointReadError, NotACheckpointError, UnsafeCheckpointError
from .exitcodes import ExitCode
from .fingerprint import Fingerprint, StateDict, find_state_dict, find_state_dicts, fingerprint
from .labels import label_from_name, manifest_label
from .plain import Plain
from .reader import DEFAULT_LIMITS, Checkpoint, Limits, iter_entries
from .reader.source import is_url
from .variants import FEATURES, Difference, Match, Registry, check_shapes, differences_from, match, short

#: First components of the model's own keys: such a key outside the wrapper prefix is not the wrapper's.
MODEL_ROOTS = ("backbone.", "head.")
#: Keys outside the wrapper prefix named in evidence and JSON (the rest are counted).
FIRST_IGNORED = 5


class Verdict(str, Enum):
    """What the audit concluded about one checkpoint."""

    MATCH = "MATCH"  #: declared label equals the variant whose every key and shape the file has
    MISMATCH = "MISMATCH"  #: a label was declared and the file is not exactly that variant
    UNLABELED = "UNLABELED"  #: no declared label; the variant was inferred
    UNKNOWN = "UNKNOWN"  #: no label and no exact variant, or no ConvNeXtPose state dict at all
    UNREADABLE = "UNREADABLE"  #: the file could not be fully read (or auditing it hit a bug)
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
    allow: frozenset[str] = frozenset()  #: globals a policy accepts by name (--allow, --policy)
    torch_version: str | None = None  #: the torch whose weights_only answer is predicted (default: the newest known)


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
    #: auditing this file hit a bug: it contributes exit 70 whatever ``--fail-on`` says
    internal_error: bool = False
    #: every candidate state dict audited: ``{name, key, prefix, tensors, params, elements, verdict,
    #: inferred, nearest, ignored_keys, ignored}``
    state_dicts: list[dict[str, Any]] = field(default_factory=list)
    decided_by: str | None = None  #: ``name`` of the state dict whose verdict is the file's
    #: every global the file references, classified (``GlobalUse``: name, kind, count, allowed, where)
    globals: list[Any] = field(default_factory=list)
    globals_more: int = 0  #: distinct globals beyond the report limit (not listed)
    #: ``{loads, needs, torch, blocked, reason, needs_complete}``: torch.load(weights_only=True)'s predicted answer
    torch_weights_only: dict[str, Any] | None = None
    code_files: list[str] | None = None  #: a TorchScript archive's code/ records (listed, never run)
    #: checkpoints this result stands for: 1, or for a summary row past ``max_report_items``, how many it tallies
    members: int = 1

    @property
    def exit_code(self) -> ExitCode:
        """This file's contribution to the process exit code under the default policy."""
        return fails(self, DEFAULT_FAIL_ON)


class Skipped(Plain):
    """A file or member that was looked at and is not a checkpoint (``members`` > 1: a summary of that many)."""

    __slots__ = ("path", "reason", "members")

    def __init__(self, path: str, reason: str, members: int = 1):
        self.path = path
        self.reason = reason
        self.members = members


@dataclass
class Report:
    """Results for many checkpoints plus what was skipped and how long it took."""

    files: list[AuditResult]
    skipped: list[Skipped] = field(default_factory=list)
    seconds: float = 0.0
    policy: dict[str, Any] | None = None  #: the policy applied (``Policy.to_dict()``); None when none was asked for

    @property
    def counts(self) -> dict[str, int]:
        """Number of checkpoints per verdict, summary rows counted as the members they tally; every verdict
        is present."""
        counts = dict.fromkeys(VERDICTS, 0)
        for r in self.files:
            counts[r.verdict.value] += r.members
        return counts

    @property
    def audited(self) -> int:
        """Checkpoints audited: the results, summary rows counted as the members they tally."""
        return sum(r.members for r in self.files)

    @property
    def skipped_count(self) -> int:
        """Files and members skipped as not checkpoints, summary entries counted as the members they stand for."""
        return sum(s.members for s in self.skipped)

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
        """The process exit code under the default policy (see :meth:`exit_code_under`)."""
        return self.exit_code_under(DEFAULT_FAIL_ON)

    def exit_code_under(self, fail_on: Iterable[str]) -> ExitCode:
        """The process exit code under a ``--fail-on`` policy.

        NOTHING_AUDITED when no checkpoint was audited at all (whatever the policy:
        a run that checked nothing never passes); otherwise the highest code any
        file contributes, plus UNREADABLE for skipped files under ``skipped``.
        """
        if not self.files:
            return ExitCode.NOTHING_AUDITED
        policy = tuple(fail_on)
        code = max(fails(r, policy) for r in self.files)
        if "skipped" in policy and self.skipped:
            code = max(code, ExitCode.UNREADABLE)
        return code


#: ``--fail-on`` choices: which verdicts make the run fail, each with the exit code it gives.
FAIL_ON_CHOICES = ("mismatch", "unknown", "unknown-unlabeled", "unlabeled", "unreadable", "unsafe", "skipped")
DEFAULT_FAIL_ON = ("mismatch", "unknown", "unreadable", "unsafe")


def fails(result: AuditResult, fail_on: Iterable[str]) -> ExitCode:
    """The exit code ``result`` contributes under a ``--fail-on`` policy (OK if it does not fail).

    An internal error always contributes INTERNAL: a bug is never waved through by a policy.
    """
    if result.internal_error:
        return ExitCode.INTERNAL
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


# ----------------------------------------------------------------------------- one state dict
class _Judged(Plain):
    """One candidate state dict with its fingerprint, match and verdict against the declared label."""

    __slots__ = ("sd", "fp", "m", "verdict", "inferred", "differences", "evidence", "keys_checked")

    def __init__(self, sd: StateDict | None, fp: Fingerprint, m: Match, verdict: Verdict, inferred: str | None,
                 differences: list[Difference], evidence: list[str], keys_checked: int | None):
        self.sd = sd
        self.fp = fp
        self.m = m
        self.verdict = verdict
        self.inferred = inferred
        self.differences = differences
        self.evidence = evidence
        self.keys_checked = keys_checked  # canonical keys compared, when the decision used them

    def summary(self) -> dict[str, Any]:
        """The JSON entry of ``AuditResult.state_dicts``."""
        sd = self.sd
        ignored = [k for k in (sd.outside if sd else ()) if not k.startswith(MODEL_ROOTS)]
        return {"name": sd.name if sd else None, "key": sd.key if sd else None, "prefix": sd.prefix if sd else "",
                "tensors": self.fp.tensor_count, "params": self.fp.params, "elements": self.fp.elements,
                "verdict": self.verdict.value, "inferred": self.inferred,
                "nearest": self.m.nearest.label if self.m.nearest else None,
                "ignored_keys": len(ignored), "ignored": ignored[:FIRST_IGNORED]}


def _judge(obj: Any, sd: StateDict | None, registry: Registry, declared: str | None) -> _Judged:
    fp = fingerprint(obj, registry.joints_hints(), state_dict=sd)
    shapes = None
    if sd is not None:
        # What a loader would be handed: the model's keys, plus any model-looking key left outside the
        # wrapper prefix (a loader that strips the prefix would see it as an unexpected key).
        shapes = {k: t.shape for k, t in sd.loader_keys.items()}
        shapes.update({k: t.shape for k, t in sd.outside.items() if k.startswith(MODEL_ROOTS)})
    m = match(fp, registry, shapes)
    evidence = list(m.evidence)
    if sd is not None:
        evidence[1:1] = _discovery_notes(sd, registry)
    inferred = m.variant.label if m.variant else None
    if declared and inferred and declared != inferred and any(v.label == declared for v in m.also):
        inferred = declared  # several variants fit exactly (extra registry entries): the declared one is among them
    differences = list(m.differences)
    if inferred is None and not fp.is_convnext:
        verdict = Verdict.UNKNOWN
    elif declared is None:
        verdict = Verdict.UNLABELED if inferred else Verdict.UNKNOWN
    elif declared == inferred:
        verdict = Verdict.MATCH
    else:
        verdict = Verdict.MISMATCH
    if declared is not None and verdict is not Verdict.MATCH and fp.is_convnext:
        variant = registry.get(declared)
        check = check_shapes(shapes, variant, registry) if shapes is not None else None
        # Exactly another variant: its features say how; a near miss: name the first differing keys too.
        differences = list(differences_from(fp, variant, check, keys=inferred is None))
    if sd is not None and not sd.documented and fp.is_convnext:
        differences.insert(0, Difference("prefix", sd.prefix, ", ".join(registry.wrapper_prefixes)))
    checked = m.shapes.expected_keys - len(m.shapes.absent_optional) if m.shapes and m.shapes.exact else None
    return _Judged(sd, fp, m, verdict, inferred, differences, evidence, checked)


def _discovery_notes(sd: StateDict, registry: Registry) -> list[str]:
    notes = [f"names rebuilt from the pickled {sd.origin} as its state_dict() gives them (nothing imported)"] \
        if sd.origin else []
    ignored = [k for k in sd.outside if not k.startswith(MODEL_ROOTS)]
    if ignored:
        names = ", ".join(map(short, ignored[:FIRST_IGNORED])) + (" …" if len(ignored) > FIRST_IGNORED else "")
        notes.append(f"{len(ignored)} key(s) outside the '{short(sd.prefix)}' prefix ignored (the wrapper's own): "
                     f"{names}")
    stray = [k for k in sd.outside if k.startswith(MODEL_ROOTS)]
    if stray:
        notes.append(f"{len(stray)} model key(s) outside the '{short(sd.prefix)}' prefix, counted as unexpected: "
                     + ", ".join(map(short, stray[:FIRST_IGNORED])))
    if not sd.documented:
        notes.append(f"keys under '{short(sd.prefix)}', which is not a documented wrapper prefix "
                     f"({', '.join(registry.wrapper_prefixes)}): a loader would not strip it")
    return notes


_RANK = {Verdict.MATCH: 0, Verdict.UNLABELED: 1, Verdict.UNKNOWN: 2, Verdict.MISMATCH: 3}


def _decide(judged: list[_Judged], declared: str | None) -> tuple[_Judged, list[str]]:
    """The state dict whose verdict is the file's: the worst one (a loader may pick any), the most
    likely (first) on ties. Returns it and evidence about the others."""
    def rank(j: _Judged) -> int:
        return 3 if j.verdict is Verdict.UNKNOWN and declared else _RANK[j.verdict]

    decided = max(judged, key=rank)  # max keeps the first of equals: discovery order is likelihood order
    if len(judged) == 1:
        return decided, []
    outcomes = ", ".join(f"'{j.sd.name}' → {j.inferred or 'no exact variant'} ({j.verdict.value})"
                         for j in judged if j.sd)
    return decided, [f"{len(judged)} state dicts audited: {outcomes}; '{decided.sd.name}' decided the verdict"]


# ----------------------------------------------------------------------------- one checkpoint
def audit_checkpoint(ckpt: Checkpoint, registry: Registry, labels: Labels, options: AuditOptions) -> AuditResult:
    """Fingerprint every candidate state dict of an open checkpoint, match each, judge the declared label."""
    start = time.perf_counter()
    declared, source = labels.declare(ckpt.name, registry)
    candidates = find_state_dicts(ckpt.obj, registry.wrapper_prefixes)
    judged = [_judge(ckpt.obj, sd, registry, declared) for sd in candidates] or \
        [_judge(ckpt.obj, None, registry, declared)]
    # Only state dicts holding a ConvNeXt backbone compete (another one may be a loss module's buffers).
    contenders = [j for j in judged if j.fp.is_convnext] or judged[:1]
    decided, others = _decide(contenders, declared)
    verdict, inferred = decided.verdict, decided.inferred
    evidence = decided.evidence + others
    disagree = len({j.inferred for j in contenders}) > 1
    if declared is None and disagree:
        # Unlabelled, and the model and its EMA are different architectures: the file is not one thing.
        verdict, inferred = Verdict.UNKNOWN, None
        evidence.append("the state dicts hold different architectures: no single variant can be named")
    if verdict in (Verdict.MISMATCH, Verdict.UNKNOWN) and declared is not None:
        found_text = inferred or ("no exact variant" + (f" (nearest {decided.m.nearest.label})"
                                                          if decided.m.nearest else ""))
        evidence.append(f"declared {declared} (from {source}) but found {found_text}"
                        + (": " + "; ".join(str(d) for d in decided.differences) if decided.differences else ""))
    result = AuditResult(
        path=ckpt.name, verdict=verdict, format=ckpt.format, size=ckpt.size, declared=declared,
        declared_from=source, inferred=inferred,
        nearest=decided.m.nearest.label if decided.m.nearest else None, evidence=evidence,
        differences=decided.differences, fingerprint=decided.fp, warnings=list(ckpt.warnings),
        state_dicts=[j.summary() for j in judged], decided_by=decided.sd.name if decided.sd else None)
    result.reason = _reason(result, decided, disagree)
    if options.tensors or options.hashes:
        _, sd = find_state_dict(ckpt.obj)
        if options.tensors:
            result.tensors = [{"name": k, "dtype": t.dtype, "shape": list(t.shape)} for k, t in sd.items()]
        if options.hashes:  # reads tensor bytes: a storage that cannot be read makes the file UNREADABLE
            from .digest import state_dict_digest
            result.digest = state_dict_digest(sd)
    result.seconds = time.perf_counter() - start
    return result


def _reason(r: AuditResult, decided: _Judged, disagree: bool) -> str:
    """One short line for a table row, most telling words first (a narrow terminal shows ~20
    characters): what decided, and any assumption it rests on. The declared and inferred labels
    have their own columns, so the reason does not repeat them."""
    fp = decided.fp
    if r.verdict in (Verdict.MATCH, Verdict.UNLABELED):
        assumed = f" (assumed {fp.joints} joints)" if fp.joints_assumed else ""
        if decided.keys_checked is None:
            return f"features only (no canonical shapes){assumed}"
        return f"exact: all {decided.keys_checked} keys and shapes{assumed}"
    if not fp.is_convnext:
        if fp.state_dict_key is None:
            return "no state dict found"
        return f"no ConvNeXt backbone: {fp.tensor_count} tensors, {fp.elements:,} elements"
    if r.declared is None and disagree:
        return "the state dicts hold different architectures"
    if r.inferred:  # exactly another variant: the features that tell it from the declared one
        return "; ".join(str(d) for d in r.differences if d.feature in FEATURES) or "another variant"
    # A near miss: how it differs from the variant it is nearest to.
    m = decided.m
    parts = [str(d) for d in m.differences if d.feature in FEATURES][:2]
    if m.shapes is not None and not m.shapes.exact:
        parts.append(m.shapes.summary())
    head = f"near miss of {r.nearest}" if r.nearest else "no exact variant"
    return f"{head}: {'; '.join(parts)}" if parts else head


# ----------------------------------------------------------------------------- failures
def failed(path: str, error: AuditError, declared: str | None = None, declared_from: str | None = None,
           size: int | None = None, evidence: list[str] | None = None) -> AuditResult:
    """The result for a file that could not be audited: UNSAFE or UNREADABLE with the one-line reason."""
    verdict = Verdict.UNSAFE if isinstance(error, UnsafeCheckpointError) else Verdict.UNREADABLE
    message = str(error)
    return AuditResult(path=path, verdict=verdict, error=message, declared=declared, declared_from=declared_from,
                       size=size, evidence=[message, *(evidence or [])], reason=_strip_path(message, path))


def internal_failure(path: str, exc: BaseException, declared: str | None = None,
                     declared_from: str | None = None, size: int | None = None) -> AuditResult:
    """The result for a file whose audit hit a bug: UNREADABLE, ``internal_error``, exit 70 whatever the policy.

    The evidence ends with the traceback (``-v`` shows it); the run goes on with the other files.
    """
    import traceback

    text = " ".join(str(exc).split())[:300]
    what = f"internal error: {type(exc).__name__}{': ' + text if text else ''}"
    message = f"{path}: {what} (please report; -v shows the traceback)"
    frames = traceback.format_exception(exc)
    lines = [line.rstrip() for chunk in frames for line in chunk.splitlines() if line.strip()][-30:]
    return AuditResult(path=path, verdict=Verdict.UNREADABLE, error=message, declared=declared,
                       declared_from=declared_from, size=size, evidence=[message, *lines], reason=what,
                       internal_error=True)


def _strip_path(message: str, path: str) -> str:
    return message[len(path) + 2:] if message.startswith(f"{path}: ") else message


def _diagnosed(path: str, error: AuditError, size: int | None) -> tuple[AuditError, list[str]]:
    """Replace a read error on a plain file by what went wrong with the download, when that is recognisable."""
    if not isinstance(error, CheckpointReadError) or size is None or not os.path.isfile(path):
        return error, []
    from .diagnose import HEAD_BYTES, diagnose  # only ever needed on the failure path

    try:
        with open(path, "rb") as fh:
            def read(offset: int, length: int) -> bytes:
                return os.pread(fh.fileno(), max(0, length), offset)

            reason = diagnose(read(0, HEAD_BYTES), size, path, read)
    except OSError:
        return error, []
    if reason is None:
        return error, []
    return type(error)(f"{path}: {reason}"), [f"reader: {_strip_path(str(error), path)}"]


# ----------------------------------------------------------------------------- paths
def audit_path(path: str, registry: Registry, labels: Labels | None = None,
               options: AuditOptions | None = None, *,
               require_checkpoint: bool = True) -> tuple[list[AuditResult], list[Skipped]]:
    """Audit every checkpoint at ``path`` (one, or several inside an outer zip).

    Never raises for a bad file: one that cannot be read or is unsafe becomes an
    UNREADABLE or UNSAFE result, and an unexpected exception (a bug) becomes an
    UNREADABLE result with ``internal_error`` set — here, in one place, so that
    ``inspect`` and ``scan`` treat every file alike. A zip holding no checkpoint is
    UNREADABLE when ``require_checkpoint`` (a path the user named, or a file named
    like a checkpoint), else skipped; so is a member named like a checkpoint.
    """
    labels = labels or Labels()
    options = options or AuditOptions()
    results: list[AuditResult] = []
    skipped: list[Skipped] = []
    try:
        size = os.path.getsize(path) if os.path.isfile(path) else None
    except OSError:
        size = None
    try:
        with _traffic_meter(path) as traffic:  # counts HTTP traffic when path is a URL
            unlisted = _collect(path, size, registry, labels, options, results, skipped)
        if not results:
            reason = f"holds no checkpoint ({len(skipped) - bool(unlisted) + unlisted:,} member(s) skipped)"
            if require_checkpoint:
                declared, source = labels.declare(path, registry)
                results.append(failed(path, NotACheckpointError(f"{path}: {reason}"), declared, source, size))
            else:
                skipped.append(Skipped(path, reason))
        if is_url(path):
            _add_traffic(results, traffic)
    except Exception as exc:  # a bug while reading this path: its result, never the end of the run
        declared, source = _declare_safely(labels, path, registry)
        results.append(internal_failure(path, exc, declared, source, size))
    return results, skipped


def _traffic_meter(path: str):
    """A meter of HTTP traffic for a URL; a no-op for local paths (which never import the HTTP code)."""
    if not is_url(path):
        import contextlib

        return contextlib.nullcontext(None)
    from .reader.remote import metered

    return metered()


def _add_traffic(results: list[AuditResult], traffic) -> None:
    # One URL's traffic, reported on each checkpoint found there (usually one).
    for r in results:
        r.bytes_read, r.requests = traffic.bytes_read, traffic.requests
        size = f" of {r.size:,}" if r.size else ""
        r.evidence.insert(0, f"read {traffic.bytes_read:,}{size} bytes over HTTP in {traffic.requests} request(s)")


def _collect(path: str, size: int | None, registry: Registry, labels: Labels, options: AuditOptions,
             results: list[AuditResult], skipped: list[Skipped]) -> int:
    """Audit every entry of ``path`` into ``results``/``skipped``; return how many skipped were not listed."""
    listing = _Listing(path, (options.limits or DEFAULT_LIMITS).max_report_items, results, skipped)
    try:
        for entry in iter_entries(path, limits=options.limits):
            if entry.open is None:
                from .diagnose import looks_like_checkpoint

                reason = entry.skipped or "not a checkpoint"
                if looks_like_checkpoint(entry.name):  # named like a checkpoint and is not one: never skipped
                    declared, source = labels.declare(entry.name, registry)
                    message = reason if reason.startswith(entry.name) else f"{entry.name}: {reason}"
                    listing.add(failed(entry.name, NotACheckpointError(message), declared, source))
                else:
                    listing.skip(Skipped(entry.name, reason))
                continue
            listing.add(_audit_entry(entry.name, entry.open, registry, labels, options,
                                     size if entry.name == path else None))
    except AuditError as exc:
        declared, source = labels.declare(path, registry)
        error, notes = _diagnosed(path, exc, size)
        results.append(failed(path, error, declared, source, size, notes))
    return listing.close()


class _Listing:
    """One path's results and skipped members, bounded by ``max_report_items`` (the report-size meter).

    An outer zip can hold 250,000 members. Past the cap, a result is only tallied by verdict and a
    skipped member only counted; :meth:`close` lists each tally as one result, so the exit code still
    sees every member (an UNSAFE member past the cap fails the run) while the report stays small.
    """

    def __init__(self, path: str, cap: int, results: list[AuditResult], skipped: list[Skipped]):
        self.path, self.cap, self.results, self.skipped = path, cap, results, skipped  # both start empty
        self.unlisted = 0  # skipped members past the cap
        self.first: dict[Verdict, AuditResult] = {}  # per verdict, the first result past the cap (the example)
        self.counts: dict[Verdict, int] = {}  # per verdict, the results past the cap
        self.internal = False

    def add(self, result: AuditResult) -> None:
        """List ``result``, or past the cap tally it (keeping the first of its verdict as the example)."""
        if len(self.results) < self.cap:
            self.results.append(result)
            return
        self.first.setdefault(result.verdict, result)
        self.counts[result.verdict] = self.counts.get(result.verdict, 0) + 1
        self.internal = self.internal or result.internal_error

    def skip(self, entry: Skipped) -> None:
        """List a member that is not a checkpoint, or past the cap count it."""
        if len(self.skipped) < self.cap:
            self.skipped.append(entry)
        else:
            self.unlisted += 1

    def close(self) -> int:
        """Append one summary per tallied verdict (and for the uncounted skipped); return the skipped not listed."""
        for verdict, first in self.first.items():
            n = self.counts[verdict]
            what = (f"{n:,} more member(s) {verdict.value} (not listed past max_report_items={self.cap:,}); "
                    f"the first: {first.path}: {first.reason}")
            error = f"{self.path}: {what}" if first.error else None
            self.results.append(AuditResult(
                path=self.path, verdict=verdict, error=error, reason=what, evidence=[f"{self.path}: {what}"],
                globals=first.globals, internal_error=self.internal and verdict is Verdict.UNREADABLE, members=n))
        if self.unlisted:
            self.skipped.append(Skipped(self.path, f"and {self.unlisted:,} more members that are not checkpoints "
                                                   f"(not listed past max_report_items={self.cap:,})", self.unlisted))
        return self.unlisted


def _audit_entry(name: str, opener: Callable[..., Checkpoint], registry: Registry, labels: Labels,
                 options: AuditOptions, size: int | None) -> AuditResult:
    from .safety import checkpoint_safety, error_safety

    try:
        # The inert reading: a file that names refused globals is still read (nothing imported or called), so an
        # UNSAFE result can carry the variant, tensors and evidence. Safety is judged first, from the references
        # alone: an audit step that fails afterwards (a limit, an unreadable storage) cannot turn UNSAFE into less.
        with opener(allow=options.allow, read_unsafe=True) as ckpt:
            safety = checkpoint_safety(ckpt, options.allow, options.torch_version)
            try:
                result = audit_checkpoint(ckpt, registry, labels, options)
            except CheckpointReadError as exc:
                if safety.unsafe is None:
                    raise
                declared, source = labels.declare(name, registry)
                result = failed(name, safety.unsafe, declared, source, size, [f"reader: {_strip_path(str(exc), name)}"])
            else:
                if safety.unsafe is not None:
                    _mark_unsafe(result, safety.unsafe)
            if ckpt.code:
                result.code_files = ckpt.code
    except (CheckpointReadError, UnsafeCheckpointError) as exc:
        declared, source = labels.declare(name, registry)
        error, notes = _diagnosed(name, exc, size)
        result = failed(name, error, declared, source, size, notes)
        safety = error_safety(exc, name, options.allow, options.torch_version)
    except Exception as exc:  # a bug in this checkpoint's audit: the other members still get theirs
        declared, source = _declare_safely(labels, name, registry)
        return internal_failure(name, exc, declared, source, size)
    result.globals, result.globals_more = safety.globals, safety.more_globals
    result.torch_weights_only = safety.prediction.to_dict() if safety.prediction else None
    return result


def _mark_unsafe(result: AuditResult, error: UnsafeCheckpointError) -> None:
    """UNSAFE whatever the inference found; the inference stays in the result (variant, fingerprint, tensors)."""
    message = str(error)
    result.evidence.insert(0, message)
    result.verdict, result.error = Verdict.UNSAFE, message
    result.reason = _strip_path(message, result.path)


def _declare_safely(labels: Labels, name: str, registry: Registry) -> tuple[str | None, str | None]:
    try:
        return labels.declare(name, registry)
    except Exception:  # reporting a bug must not raise another one
        return None, None


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
