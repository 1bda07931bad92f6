"""The rules: what our tool must do, given what torch did with the same bytes.

Failures (the test fails on any):

- ``traceback``: our tool raised something that is not an ``AuditError``, or hung;
- ``executed``: the sentinel appeared while our tool read the file;
- ``payload-ran-not-unsafe``: torch (weights_only=False) ran the payload and our verdict is not UNSAFE (exit 4);
- ``torchscript-not-unsafe``: torch dispatched the file to ``torch.jit.load`` and our verdict is not UNSAFE;
- ``different-reading``: torch read tensors (weights_only=True, or else weights_only=False, torch < 2.6's
  default) and we read other ones.

Reported, not failures: ``over-strict`` (torch reads it, we refuse; tallied by our
reason) and ``lenient`` (torch reads nothing, we give tensors and an exit code below 3).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .ours import OurReading, OurVerdict

UNSAFE_EXIT = 4


@dataclass
class Finding:
    """One judgement about a mutant."""

    kind: str  #: "failure", "over-strict", "lenient" or "agree"
    rule: str
    detail: str


def normalise(message: str, path: str) -> str:
    """A refusal reason without the file name, numbers or quoted specifics, for tallying."""
    text = message.replace(path, "<file>")
    text = re.sub(r"<file>![^:]*", "<file>!…", text)
    text = re.sub(r"'[^']*'", "'…'", text)
    text = re.sub(r"\d[\d,]*", "N", text)
    return text[:110]


def compare(theirs: list, ours: list) -> str | None:
    """None if the two tensor listings agree, else a short description of the first difference."""
    def key(item):
        return item[0]
    t, o = sorted(theirs, key=key), sorted(ours, key=key)
    tp, op = [p for p, _ in t], [p for p, _ in o]
    if tp != op:
        missing, extra = sorted(set(tp) - set(op)), sorted(set(op) - set(tp))
        return f"tensor paths differ: torch only {missing[:4]}, ours only {extra[:4]}"
    for (path, (tdt, tshape, tstride, toff, tsha)), (_p, (odt, oshape, ostride, ooff, osha)) in zip(t, o, strict=True):
        if tdt != odt or tuple(tshape) != tuple(oshape) or tuple(tstride or ()) != tuple(ostride or ()):
            return f"{path}: torch {tdt}{list(tshape)} stride {tstride}, ours {odt}{list(oshape)} stride {ostride}"
        if ooff is not None and toff is not None and toff != ooff:
            return f"{path}: storage offset torch {toff}, ours {ooff}"
        if tsha != osha:
            return f"{path}: values differ (sha256 torch {tsha[:12]}, ours {osha[:12]})"
    return None


def judge_hostile(torch_a: dict, ours: OurVerdict, executed: bool) -> list[Finding]:
    """Rules for the payload flavour."""
    out = []
    if ours.crash:
        out.append(Finding("failure", "traceback", ours.crash.strip().splitlines()[-1][:200]))
    if executed:
        out.append(Finding("failure", "executed", "the sentinel appeared while our tool read the file"))
    if torch_a.get("sentinel") and not ours.crash and ours.exit_code != UNSAFE_EXIT:
        out.append(Finding("failure", "payload-ran-not-unsafe",
                           f"torch ran the payload; we said {'/'.join(ours.verdicts)} (exit {ours.exit_code}): "
                           f"{'; '.join(ours.reasons)[:160]}"))
    return out


def judge_clean(path: str, torch_b: dict, torch_c: dict | None, verdict: OurVerdict,
                reading: OurReading) -> list[Finding]:
    """Rules for the payload-free flavour."""
    out = []
    for crash in (verdict.crash, reading.crash):
        if crash:
            out.append(Finding("failure", "traceback", crash.strip().splitlines()[-1][:200]))
    if out:
        return out
    if (torch_b.get("torchscript") or (torch_c or {}).get("torchscript")) and verdict.exit_code != UNSAFE_EXIT:
        out.append(Finding("failure", "torchscript-not-unsafe",
                           f"torch dispatches to torch.jit.load; we said {'/'.join(verdict.verdicts)} "
                           f"(exit {verdict.exit_code})"))
    ref, mode = (torch_b, "weights_only=True") if torch_b.get("ok") else (torch_c, "weights_only=False")
    if ref and ref.get("ok"):
        if reading.tensors is None:
            out.append(Finding("over-strict", f"{reading.refused}: {normalise(reading.message or '', path)}",
                               f"torch ({mode}) reads it"))
            return out
        diff = compare(ref["tensors"], reading.tensors)
        if diff:
            out.append(Finding("failure", "different-reading", f"vs torch {mode}: {diff}"))
        elif verdict.exit_code is not None and verdict.exit_code >= 3:
            reason = normalise(verdict.reasons[0] if verdict.reasons else "", path)
            out.append(Finding("over-strict", f"verdict {'/'.join(verdict.verdicts)}: {reason}",
                               f"same tensors as torch ({mode}), but exit {verdict.exit_code}"))
        else:
            out.append(Finding("agree", "same-reading", mode))
        return out
    if reading.tensors is not None and verdict.exit_code is not None and verdict.exit_code < 3:
        out.append(Finding("lenient", "torch-refuses-we-read",
                           f"torch: {(torch_b.get('error') or '')[:90]} / {((torch_c or {}).get('error') or '')[:90]}"))
    else:
        out.append(Finding("agree", "both-refuse", ""))
    return out
