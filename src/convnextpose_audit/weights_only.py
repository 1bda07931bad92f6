"""torch's answer, predicted: would ``torch.load(path, weights_only=True)`` accept this file?

Pure: the rules per torch version are data (``torch_weights_only.toml``, each
with its source); the facts come from the inert read (the container, every
global with the pickle and opcode it was in, the opcodes each pickle ran, the
records built). :func:`predict` says whether it loads, which names
``torch.serialization.add_safe_globals([...])`` would need, and what no
allowlisting can fix.
"""

from __future__ import annotations

import os
import tomllib
from functools import lru_cache
from typing import Any, Iterable

from .module_tree import is_module
from .plain import Plain
from .reader.limits import DEFAULT_LIMITS, Limits
from .reader.pickle.ops import NAMES
from .reader.pickle.records import Instance
from .reader.safe_globals import NumpyArray
from .reader.walk import iter_values

#: The pickle torch's weights_only loader runs from a zip archive; every legacy-stream pickle runs.
ZIP_MAIN_PICKLE = "data.pkl"
_ZIP_FORMATS = ("zip", "torchscript", "extracted")


class TorchRules(Plain):
    """What one torch version's weights_only loader accepts (see ``torch_weights_only.toml``)."""

    __slots__ = (
        "version", "tag", "source", "evidence", "allowed", "opcodes", "blocklisted_modules", "torchscript",
        "legacy_tar", "safetensors_by_name", "newobj", "setitem_check",
    )

    def __init__(self, version: str, tag: str, source: str, evidence: str, allowed: frozenset[str],
                 opcodes: frozenset[str], blocklisted_modules: frozenset[str], torchscript: str, legacy_tar: str,
                 safetensors_by_name: bool, newobj: str, setitem_check: bool):
        self.version = version
        self.tag = tag
        self.source = source
        self.evidence = evidence
        self.allowed = allowed
        self.opcodes = opcodes
        self.blocklisted_modules = blocklisted_modules
        self.torchscript = torchscript  # "refused" or "jit_load"
        self.legacy_tar = legacy_tar  # "refused" or "unpickled"
        self.safetensors_by_name = safetensors_by_name
        self.newobj = newobj  # "parameter", "allowlisted" or "any"
        self.setitem_check = setitem_check


class Prediction(Plain):
    """torch's predicted answer: ``loads``; the names it ``needs`` allowed; what ``blocked`` it regardless."""

    __slots__ = ("torch", "loads", "needs", "blocked", "note", "complete")

    def __init__(self, torch: str, loads: bool, needs: list[str] | None = None, blocked: list[str] | None = None,
                 note: str | None = None, complete: bool = True):
        self.torch = torch
        self.loads = loads
        self.needs = [] if needs is None else needs
        self.blocked = [] if blocked is None else blocked
        self.note = note  # how it loads when that is remarkable (TorchScript dispatched to torch.jit.load)
        # False when ``needs`` is known to be short: numpy scalars need their dtype's class, which the read drops
        self.complete = complete

    @property
    def reason(self) -> str | None:
        """The first thing add_safe_globals cannot fix, or the note."""
        return self.blocked[0] if self.blocked else self.note

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: ``{loads, needs, torch, blocked, reason}``."""
        return {"loads": self.loads, "needs": list(self.needs), "torch": self.torch, "blocked": list(self.blocked),
                "reason": self.reason, "needs_complete": self.complete}


# -- the rules ---------------------------------------------------------------------------------------------------------
@lru_cache(maxsize=1)
def _data() -> dict[str, Any]:
    with open(os.path.join(os.path.dirname(__file__), "torch_weights_only.toml"), encoding="utf-8") as fh:
        text = fh.read()
    return tomllib.loads(text)


def default_version() -> str:
    """The torch version predictions are for unless another is asked for (the one the tests install)."""
    return _data()["default"]


def versions() -> list[str]:
    """Every torch version with rules, newest first."""
    return list(_data()["versions"])


@lru_cache(maxsize=None)
def rules(version: str | None = None) -> TorchRules:
    """The rules of ``version`` (``"2.6"``; default :func:`default_version`), resolving ``based_on`` chains."""
    version = version or default_version()
    table = _data()["versions"]
    if version not in table:
        raise KeyError(f"no weights_only rules for torch {version} (known: {', '.join(table)})")
    entry = table[version]
    if "based_on" in entry:
        base = rules(entry["based_on"])
        allowed = (base.allowed - set(entry.get("remove", ()))) | set(entry.get("add", ()))
        inherited = {k: getattr(base, k) for k in ("opcodes", "blocklisted_modules", "torchscript", "legacy_tar",
                                                    "safetensors_by_name", "newobj", "setitem_check")}
    else:
        allowed, inherited = frozenset(entry["allowed"]), {}
    values = {**inherited, **{k: entry[k] for k in ("opcodes", "blocklisted_modules", "torchscript", "legacy_tar",
                                                     "safetensors_by_name", "newobj", "setitem_check") if k in entry}}
    return TorchRules(version=version, tag=entry["tag"], source=entry["source"], evidence=entry["evidence"],
                      allowed=frozenset(allowed), opcodes=frozenset(values["opcodes"]),
                      blocklisted_modules=frozenset(values["blocklisted_modules"]),
                      torchscript=values["torchscript"], legacy_tar=values["legacy_tar"],
                      safetensors_by_name=values["safetensors_by_name"], newobj=values["newobj"],
                      setitem_check=values["setitem_check"])


def numpy_dtype_class(code: str) -> str | None:
    """The class torch must allow to BUILD a numpy dtype of type code ``code`` (``"f8"``), if known."""
    return _data()["numpy_dtype_classes"].get(code.lstrip("<>|="))


# -- the prediction ------------------------------------------------------------------------------------------------
class ReadFacts(Plain):
    """What the inert read saw, as the prediction needs it."""

    __slots__ = ("name", "format", "refs", "opcodes", "obj", "label")

    def __init__(self, name: str, format: str | None, refs: list[tuple[str, Any]],
                 opcodes: frozenset[int] | None = None, obj: Any = None, label: str = ""):
        self.name = name  # the path torch.load would be given (its suffix matters for safetensors)
        self.format = format  # Checkpoint.format, or None when the read failed
        self.refs = refs  # every (member, GlobalRef) the read met
        self.opcodes = opcodes  # opcode bytes the structured read executed; None when it failed
        self.obj = obj  # the object read (records, numpy arrays), when the read succeeded
        self.label = label  # the prefix the reader puts in front of member names


def predict(facts: ReadFacts, version: str | None = None, limits: Limits = DEFAULT_LIMITS) -> Prediction | None:
    """torch's answer for a file, or None when the read failed before anything certain was seen.

    A failed read still gives ``loads: false`` when a pickle torch runs names a
    global torch refuses: torch stops there, or earlier.
    """
    r = rules(version)
    fmt = facts.format
    if fmt is None:
        return _from_refs_only(facts, r)
    container = _container_answer(facts, r)
    if container is not None:
        return container
    run = _run_refs(facts, fmt)
    blocked = _opcode_blocks(facts.opcodes or frozenset(), r)
    needs, refused = _judge_refs(run, r)
    blocked += refused
    needs += [n for n in _numpy_needs(facts.obj, run, limits) if n not in needs and n not in r.allowed]
    blocked += _record_blocks(facts.obj, fmt, r, limits) if needs else []
    scalars = any(ref.name == "scalar" and ref.module.startswith("numpy") for _m, ref in run)
    return Prediction(r.version, not blocked and not needs, needs, list(dict.fromkeys(blocked)),
                      complete=not scalars)


def _from_refs_only(facts: ReadFacts, r: TorchRules) -> Prediction | None:
    # Only what torch certainly meets: a global it refuses in a pickle it runs (it stops there, or earlier).
    needs, blocked = _judge_refs([(m, ref) for m, ref in facts.refs if _is_run(m, facts)], r)
    if not needs and not blocked:
        return None
    return Prediction(r.version, False, needs, list(dict.fromkeys(blocked)))


def _judge_refs(run: list[tuple[str, Any]], r: TorchRules) -> tuple[list[str], list[str]]:
    """``(needs, blocked)``: names outside the allowlist, in first-seen order; what no allowlisting fixes."""
    needs: list[str] = []
    blocked: list[str] = []
    for _member, ref in run:
        why = _global_block(ref, r)
        if why is not None:
            blocked.append(why)
        elif ref.qualname not in r.allowed and ref.qualname not in needs:
            needs.append(ref.qualname)
    return needs, blocked


def _is_run(member: str, facts: ReadFacts) -> bool:
    # Zip readings name records relative to the archive prefix; legacy pickles carry the file label.
    return member == ZIP_MAIN_PICKLE or (bool(facts.label) and member.startswith(facts.label + ": "))


def _container_answer(facts: ReadFacts, r: TorchRules) -> Prediction | None:
    fmt = facts.format
    if fmt == "extracted":
        return Prediction(r.version, False, blocked=["a folder: torch.load opens files only (IsADirectoryError)"])
    if fmt == "safetensors":
        if r.safetensors_by_name and facts.name.endswith(".safetensors"):
            return Prediction(r.version, True, note="a .safetensors path is read by safetensors.torch.load_file")
        return Prediction(r.version, False, blocked=["a safetensors file: torch.load reads it as a pickle and fails"
                                                     + (" (only a path ending in .safetensors is read as safetensors)"
                                                        if r.safetensors_by_name else "")])
    if fmt == "torchscript":
        if r.torchscript == "jit_load":
            return Prediction(r.version, True, note="dispatched to torch.jit.load, which ignores weights_only and "
                                                    "runs the archive's code")
        return Prediction(r.version, False, blocked=["a TorchScript archive: refused with weights_only=True"])
    if fmt == "tar" and r.legacy_tar == "refused":
        return Prediction(r.version, False, blocked=["a torch <= 0.3 tar file: refused with weights_only=True"])
    return None


def _run_refs(facts: ReadFacts, fmt: str) -> list[tuple[str, Any]]:
    """The references in pickles weights_only runs: a zip's data.pkl; every legacy or tar pickle."""
    if fmt in _ZIP_FORMATS:
        return [(m, ref) for m, ref in facts.refs if m == ZIP_MAIN_PICKLE]
    return list(facts.refs)


def _opcode_blocks(opcodes: Iterable[int], r: TorchRules) -> list[str]:
    unsupported = sorted(NAMES.get(op, f"0x{op:02x}") for op in opcodes if NAMES.get(op) not in r.opcodes)
    if not unsupported:
        return []
    return [f"opcode{'s' if len(unsupported) > 1 else ''} {', '.join(unsupported)} not supported by its unpickler"]


def _global_block(ref: Any, r: TorchRules) -> str | None:
    if ref.opcode != "GLOBAL":
        return f"{ref.qualname} is named by {ref.opcode}, which its unpickler does not support"
    if ref.module in r.blocklisted_modules:
        return f"{ref.qualname}: module {ref.module} is blocked even when allowlisted"
    return None


def _numpy_needs(obj: Any, run: list[tuple[str, Any]], limits: Limits) -> list[str]:
    """The numpy dtype classes BUILD needs: one per dtype of the arrays read (numpy >= 1.25 names)."""
    if obj is None or not any(ref.qualname == "numpy.dtype" for _m, ref in run):
        return []
    found: list[str] = []
    for _path, arr in iter_values(obj, limits, NumpyArray):
        cls = numpy_dtype_class(arr.dtype.code) if arr.dtype is not None else None
        if cls and cls not in found:
            found.append(cls)
    return found


def _record_blocks(obj: Any, fmt: str, r: TorchRules, limits: Limits) -> list[str]:
    """What the unpickler refuses even with ``needs`` allowed: its NEWOBJ, SETITEM(S), APPEND(S) and
    persistent-id checks."""
    if obj is None:
        return []
    blocked = []
    for _path, rec in iter_values(obj, limits, Instance):
        if fmt == "legacy" and is_module(rec):
            # torch < 1.6 saved each nn.Module class as a ('module', class, file, source) persistent id
            blocked.append(f"a whole {rec.qualname} in a legacy file: its unpickler accepts only storage "
                           "persistent ids, not the ('module', ...) ones torch < 1.6 saved for module classes")
        if rec.how == "NEWOBJ" and r.newobj == "parameter":
            blocked.append(f"NEWOBJ of {rec.qualname}: its unpickler builds only nn.Parameter with NEWOBJ")
        if rec.items and r.setitem_check:
            blocked.append(f"SETITEMS on {rec.qualname}: its unpickler sets items only on dict, OrderedDict and "
                           "Counter, whatever is allowed")
        if rec.appended:
            blocked.append(f"APPENDS on {rec.qualname}: its unpickler appends only to lists")
        if len(blocked) >= 3:
            break
    return blocked
