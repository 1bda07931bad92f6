"""The safety half of an audit: which globals a file names, which are refused, and torch's predicted answer.

Pure: it reads what the reader recorded (references, opcodes, the inert object)
and returns facts; :mod:`.audit` puts them in the result. The verdict rule is the
reader's: a reference outside the allowlist and the policy makes the file UNSAFE,
whatever else the read found (:func:`~.reader.checkpoint.refused_refs`).
"""

from __future__ import annotations

from typing import Any

from .classify import GlobalUse, classify, global_uses
from .errors import AuditError, CheckpointReadError, UnsafeCheckpointError
from .plain import Plain
from .reader import Checkpoint
from .reader.checkpoint import refused_refs, unsafe_error
from .reader.limits import DEFAULT_LIMITS, Limits
from .reader.pickle.records import Global, Instance
from .reader.safe_globals import allowed
from .reader.walk import iter_values
from .weights_only import Prediction, ReadFacts, predict


class Safety(Plain):
    """What an audit reports about code: the globals (classified), the refusal if any, torch's answer."""

    __slots__ = ("globals", "more_globals", "unsafe", "prediction")

    def __init__(self, globals: list[GlobalUse] | None = None, more_globals: int = 0,
                 unsafe: UnsafeCheckpointError | None = None, prediction: Prediction | None = None):
        self.globals = [] if globals is None else globals
        self.more_globals = more_globals  # distinct names beyond the report limit
        self.unsafe = unsafe
        self.prediction = prediction


def _passes(allow: frozenset[str]):
    def check(ref: Any) -> bool:
        return allowed(ref.module, ref.name) is not None or ref.qualname in allow
    return check


def record_calls(obj: Any, limits: Limits) -> dict[str, set[str]]:
    """How the file made records from each global: ``{name: {"NEWOBJ", "REDUCE", ...}}`` (bounded walk)."""
    calls: dict[str, set[str]] = {}
    for _path, rec in iter_values(obj, limits, Instance):
        if isinstance(rec.callee, Global):
            calls.setdefault(rec.callee.qualname, set()).add(rec.how)
    return calls


def checkpoint_safety(ckpt: Checkpoint, allow: frozenset[str], torch_version: str | None = None) -> Safety:
    """Safety facts of a checkpoint read inertly (``read_unsafe``): refused globals make ``unsafe``.

    The refusal comes from the references alone. The walks behind the kinds and
    the prediction are bounded; past a bound they are left out, never the refusal.
    """
    limits = ckpt.limits or DEFAULT_LIMITS
    refused = refused_refs(ckpt.refs, allow)
    safety = Safety(unsafe=unsafe_error(ckpt.name, refused, None) if refused else None)
    calls: dict[str, set[str]] = {}
    if any(classify(r.qualname).source == "unknown" for _m, r in ckpt.refs):  # only unknown names need their uses
        try:
            calls = record_calls(ckpt.obj, limits)
        except CheckpointReadError:
            pass
    safety.globals, safety.more_globals = global_uses(ckpt.refs, _passes(allow), ckpt.name, limits.max_report_items,
                                                      calls)
    facts = ReadFacts(ckpt.name, ckpt.format, ckpt.refs, ckpt.meter.opcodes if ckpt.meter else None, ckpt.obj,
                      ckpt.name)
    try:
        safety.prediction = predict(facts, torch_version, limits)
    except CheckpointReadError:
        safety.prediction = None
    return safety


def error_safety(error: AuditError, name: str, allow: frozenset[str], torch_version: str | None = None) -> Safety:
    """Safety facts of a file whose read failed: the references the reader recorded before it stopped.

    An :class:`UnsafeCheckpointError` carries the refused ones; a read error all of them.
    """
    refs = list(getattr(error, "refs", None) or [])
    uses, more = global_uses(refs, _passes(allow), name, DEFAULT_LIMITS.max_report_items)
    facts = ReadFacts(name, None, refs, label=name)
    return Safety(uses, more, error if isinstance(error, UnsafeCheckpointError) else None,
                  predict(facts, torch_version) if refs else None)
