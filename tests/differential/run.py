"""One loop for the test and the long run: write each mutant, ask torch and us, judge, tally."""

from __future__ import annotations

import os
import shutil
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from . import ours
from .generate import MutantPair
from .judge import Finding, judge_clean, judge_hostile
from .oracle import Oracle, OracleError
from .pickles import SENTINEL


@dataclass
class Disagreement:
    """A failure, with everything needed to rebuild and rerun it."""

    mutant: MutantPair
    flavour: str
    finding: Finding
    torch: dict

    def line(self) -> str:
        """A one-paragraph report."""
        t = self.torch
        what = ("ran the payload" if t.get("sentinel") else f"read {len(t.get('tensors') or [])} tensors"
                if t.get("ok") else f"refused: {t.get('error', '')[:100]}")
        return (f"[{self.finding.rule}] {self.mutant.recipe}\n    flavour: {self.flavour}; torch {what}\n"
                f"    ours: {self.finding.detail}")


@dataclass
class Summary:
    """Tallies of one run."""

    mutants: int = 0
    seconds: float = 0.0
    classes: Counter = field(default_factory=Counter)
    payload_ran: Counter = field(default_factory=Counter)  #: per class: torch ran the payload
    torch_read: Counter = field(default_factory=Counter)  #: per class: torch read the clean flavour
    failures: list[Disagreement] = field(default_factory=list)
    over_strict: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))  #: reason -> classes
    lenient: Counter = field(default_factory=Counter)
    agree: int = 0
    oracle_restarts: int = 0
    oracle_errors: list[str] = field(default_factory=list)  #: mutants skipped because the worker died

    def failed_rules(self) -> Counter:
        """Failures per (class, rule)."""
        return Counter((d.mutant.cls, d.finding.rule) for d in self.failures)

    def report(self, limit: int = 40) -> str:
        """A text report: counts, failures (first ``limit``), over-strict reasons, lenient classes."""
        lines = [f"{self.mutants} mutants ({2 * self.mutants} files), {len(self.classes)} classes, "
                 f"{self.seconds:.1f} s; agree {self.agree}, failures {len(self.failures)}, "
                 f"over-strict {sum(sum(c.values()) for c in self.over_strict.values())}, "
                 f"lenient {sum(self.lenient.values())}; oracle restarts {self.oracle_restarts}"]
        lines += [f"oracle error (mutant skipped): {e}" for e in self.oracle_errors]
        lines.append("torch ran the payload in: " + ", ".join(f"{k} {v}" for k, v in sorted(self.payload_ran.items())))
        if self.failures:
            lines.append("failures by class and rule:")
            lines += [f"  {c} / {r}: {n}" for (c, r), n in sorted(self.failed_rules().items())]
            lines.append(f"first {min(limit, len(self.failures))} failures:")
            lines += ["  " + d.line() for d in self.failures[:limit]]
        if self.over_strict:
            lines.append("over-strict (torch reads, we refuse), by our reason:")
            for reason, classes in sorted(self.over_strict.items(), key=lambda kv: -sum(kv[1].values())):
                lines.append(f"  {sum(classes.values()):4d}  {reason}  [{', '.join(sorted(classes))}]")
        if self.lenient:
            lines.append("lenient (torch reads nothing, we read tensors): "
                         + ", ".join(f"{k} {v}" for k, v in sorted(self.lenient.items())))
        return "\n".join(lines)


def materialise(folder: Path, pair: MutantPair, flavour: str) -> Path:
    """Write one flavour (and its sibling files) into a fresh sub-folder; return the mutant's path."""
    sub = folder / f"{pair.index:05d}-{pair.cls}-{flavour}"
    sub.mkdir()
    for rel, blob in pair.siblings.get(flavour, {}).items():
        (sub / rel).parent.mkdir(parents=True, exist_ok=True)
        (sub / rel).write_bytes(blob)
    path = sub / f"mutant{pair.suffix}"
    path.write_bytes(pair.data(flavour))
    return path


def _discard(path: Path) -> None:
    shutil.rmtree(path.parent, ignore_errors=True)


def check(pair: MutantPair, oracle: Oracle, folder: Path, summary: Summary) -> None:
    """Judge one mutant pair and add the results to ``summary`` (a dead oracle worker skips it, noted)."""
    try:
        _check(pair, oracle, folder, summary)
    except OracleError as exc:
        summary.oracle_errors.append(f"{pair.recipe}: {exc}")


def _check(pair: MutantPair, oracle: Oracle, folder: Path, summary: Summary) -> None:
    summary.mutants += 1
    summary.classes[pair.cls] += 1
    hostile = materialise(folder, pair, "hostile")
    clean = materialise(folder, pair, "clean")
    torch_a = oracle.load(hostile, "A")
    verdict_h = ours.verdict(hostile)
    executed = os.path.lexists(SENTINEL)
    findings = [("hostile", f, torch_a) for f in judge_hostile(torch_a, verdict_h, executed)]
    summary.payload_ran[pair.cls] += bool(torch_a.get("sentinel"))
    torch_b = oracle.load(clean, "B")
    torch_c = None if torch_b.get("ok") else oracle.load(clean, "C")
    summary.torch_read[pair.cls] += bool(torch_b.get("ok") or (torch_c or {}).get("ok"))
    ref = torch_b if torch_b.get("ok") else (torch_c or torch_b)
    for f in judge_clean(str(clean), torch_b, torch_c, ours.verdict(clean), ours.reading(clean)):
        findings.append(("clean", f, ref))
    for flavour, f, t in findings:
        if f.kind == "failure":
            summary.failures.append(Disagreement(pair, flavour, f, t))
        elif f.kind == "over-strict":
            summary.over_strict[f.rule][pair.cls] += 1
        elif f.kind == "lenient":
            summary.lenient[pair.cls] += 1
        else:
            summary.agree += 1
    for p in (hostile, clean):
        _discard(p)


def run(pairs: Iterable[MutantPair], oracle: Oracle, folder: Path, deadline: float | None = None) -> Summary:
    """Check every pair (or until ``deadline``, a ``time.monotonic()`` value), in ``folder`` as the working directory.

    Our tool runs with ``folder`` as its working directory, so a payload it ran
    would create the sentinel there.
    """
    summary = Summary()
    start = time.monotonic()
    old = os.getcwd()
    os.chdir(folder)
    try:
        for pair in pairs:
            if deadline is not None and time.monotonic() > deadline:
                break
            check(pair, oracle, folder, summary)
    finally:
        os.chdir(old)
    summary.seconds = time.monotonic() - start
    summary.oracle_restarts = oracle.restarts
    return summary


def explain(pair: MutantPair, oracle: Oracle, folder: Path) -> str:
    """Everything torch and our tool did with both flavours of one mutant (for writing up a repro)."""
    lines = [pair.recipe]
    for flavour, data in (("hostile", pair.hostile), ("clean", pair.clean)):
        path = materialise(folder, pair, flavour)
        lines.append(f"--- {flavour} ({len(data)} bytes, head {data[:16].hex(' ')})")
        for mode in ("A", "B", "C"):
            r = oracle.load(path, mode)
            tensors = r.pop("tensors", None)
            lines.append(f"  torch {mode}: {r}")
            if tensors is not None:
                lines.append(f"    tensors: {[p for p, _ in tensors]}")
        lines.append(f"  ours verdict: {ours.verdict(path)}")
        reading = ours.reading(path)
        lines.append(f"  ours reading: {reading.refused or ''} {reading.message or ''} "
                     f"{[p for p, _ in reading.tensors] if reading.tensors is not None else ''} {reading.crash or ''}")
        _discard(path)
    return "\n".join(lines)


def brief(pair: MutantPair, oracle: Oracle, folder: Path) -> str:
    """Two short lines (hostile, clean): what torch did and what we did."""
    out = [pair.recipe]
    for flavour, modes in (("hostile", "A"), ("clean", "BC")):
        path = materialise(folder, pair, flavour)
        parts = []
        for mode in modes:
            r = oracle.load(path, mode)
            state = "SENTINEL" if r.get("sentinel") else "ok" if r.get("ok") else (r.get("error") or "")[:70]
            parts.append(f"{mode}={state}{' [jit]' if r.get('torchscript') else ''}")
            if r.get("ok") and "tensors" in r:
                parts[-1] += f" {sorted({p.split('/')[0] for p, _ in r['tensors']})}"
        v = ours.verdict(path)
        rd = ours.reading(path) if flavour == "clean" else None
        mine = f"exit {v.exit_code} {'/'.join(v.verdicts)}"
        if rd is not None:
            mine += (f" read {sorted({p.split('/')[0] for p, _ in rd.tensors})}" if rd.tensors is not None
                     else f" refused {rd.refused}: {(rd.message or '').split(': ', 1)[-1][:70]}")
        elif v.reasons and v.exit_code:
            mine += f" ({v.reasons[0].split(': ', 1)[-1][:70]})"
        out.append(f"  {flavour}: torch {'; '.join(parts)} | ours {mine}")
        _discard(path)
    return "\n".join(out)
