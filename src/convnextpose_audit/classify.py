"""Every global a checkpoint names, classified by what importing and calling it can do (``globals.toml``).

Pure: text in, records out. The kinds and the rule for unknown names are stated
in ``globals.toml``; this module only reads and applies them. A kind never
decides safety: the allowlist and the policy do (see :mod:`.policy`).
"""

from __future__ import annotations

import os
import tomllib
from functools import lru_cache
from typing import Any, Iterable

from .plain import Plain

KINDS = ("tensor", "container", "numpy", "torchscript", "callable", "class")
#: How a record can be made from a global without calling it on file arguments (C accepts only a type there).
CLASS_USES = frozenset({"NEWOBJ", "NEWOBJ_EX"})
#: Opcodes that name a global and call it in one step.
_CALLING_REFS = frozenset({"INST", "OBJ"})
#: Places listed per global in reports; ``count`` has the total.
MAX_WHERE = 8


class Kind(Plain):
    """A global's kind and the reason for it (``source``: ``exact``, ``pattern <p>`` or ``unknown``)."""

    __slots__ = ("kind", "reason", "source")

    def __init__(self, kind: str, reason: str, source: str):
        self.kind = kind
        self.reason = reason
        self.source = source


class GlobalUse(Plain):
    """One global as a report shows it: every reference to it counted, the first few located."""

    __slots__ = ("name", "kind", "reason", "count", "allowed", "where")

    def __init__(self, name: str, kind: str, reason: str, count: int, allowed: bool,
                 where: list[dict[str, Any]] | None = None):
        self.name = name
        self.kind = kind
        self.reason = reason
        self.count = count
        self.allowed = allowed
        self.where = [] if where is None else where

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: ``{name, kind, count, allowed, where: [{member, opcode, offset}], reason}``."""
        return {"name": self.name, "kind": self.kind, "count": self.count, "allowed": self.allowed,
                "where": list(self.where), "reason": self.reason}


class Classifier:
    """The rules of ``globals.toml``: exact names, then patterns by specificity, then the unknown-name rule."""

    def __init__(self, data: dict[str, Any]):
        self.exact: dict[str, Kind] = {}
        for name, entry in data.get("exact", {}).items():
            self.exact[name] = _kind(entry, "exact", name)
        for group in data.get("group", []):
            for name in group["names"]:
                self.exact[name] = _kind(group, "exact", name)
        patterns = [(Glob(p["match"]), _kind(p, f"pattern {p['match']}", p["match"])) for p in data.get("pattern", [])]
        #: ``(glob, kind)`` for each pattern, most specific (most literal characters) first.
        self.patterns = sorted(patterns, key=lambda item: -item[0].specificity)

    def classify(self, name: str, uses: Iterable[str] = ()) -> Kind:
        """The kind of global ``name`` (``module.name``), given how the file used it: the opcodes that made
        records from it (``NEWOBJ``, ``REDUCE``, ``INST``...; empty when it was only referenced)."""
        hit = self.exact.get(name)
        if hit is not None:
            return hit
        for glob, kind in self.patterns:
            if glob.matches(name):
                return kind
        ops = set(uses)
        if ops and ops <= CLASS_USES:
            return Kind("class", "not in globals.toml; only instantiated with NEWOBJ, which takes a class (importing "
                                 "it runs its module's code, unpickling it its own __new__/__setstate__)", "unknown")
        how = f"called with {', '.join(sorted(ops))}" if ops else "referenced without being instantiated"
        return Kind("callable", f"not in globals.toml; {how}, so treated as able to run code", "unknown")


def _kind(entry: dict[str, Any], source: str, name: str) -> Kind:
    kind, reason = entry.get("kind"), entry.get("reason")
    if kind not in KINDS or not isinstance(reason, str) or not reason.strip():
        raise ValueError(f"globals.toml: {name}: needs a kind from {', '.join(KINDS)} and a reason")
    return Kind(kind, reason, source)


class Glob:
    """A ``globals.toml`` pattern: ``*`` stands for any text within one dotted part, and a final ``.*``
    for a module and everything below it (``numpy.*`` covers ``numpy.core.multiarray._reconstruct``).

    Matched part by part rather than through :mod:`re`: compiling 50 regular expressions cost more than the
    whole classification of a clean checkpoint.
    """

    __slots__ = ("pattern", "parts", "below", "specificity")

    def __init__(self, pattern: str):
        self.pattern = pattern
        self.below = pattern.endswith(".*")
        self.parts = tuple(part.split("*") for part in (pattern[:-2] if self.below else pattern).split("."))
        self.specificity = len(pattern.replace("*", ""))

    def matches(self, name: str) -> bool:
        """Whether the dotted ``name`` is covered by this pattern."""
        got = name.split(".")
        if self.below:
            # The module and at least one character below it (``numpy.`` alone is not below ``numpy``).
            if len(got) <= len(self.parts) or not ".".join(got[len(self.parts):]):
                return False
            got = got[:len(self.parts)]
        elif len(got) != len(self.parts):
            return False
        return all(_part_matches(pieces, text) for pieces, text in zip(self.parts, got))


def _part_matches(pieces: list[str], text: str) -> bool:
    # pieces: one dotted part of a pattern split at its stars; text: one dotted part of a name.
    if len(pieces) == 1:
        return pieces[0] == text
    first, *middle, last = pieces
    if len(text) < len(first) + len(last) or not text.startswith(first) or not text.endswith(last):
        return False
    pos, stop = len(first), len(text) - len(last)
    for piece in middle:  # leftmost placement of each piece leaves the most room for the rest
        pos = text.find(piece, pos, stop)
        if pos < 0:
            return False
        pos += len(piece)
    return True


@lru_cache(maxsize=1)
def default_classifier() -> Classifier:
    """The classifier of the packaged ``globals.toml`` (read once)."""
    with open(os.path.join(os.path.dirname(__file__), "globals.toml"), encoding="utf-8") as fh:
        text = fh.read()
    return Classifier(tomllib.loads(text))


def classify(name: str, uses: Iterable[str] = ()) -> Kind:
    """The kind of ``name`` under the packaged rules (see :class:`Classifier`)."""
    return default_classifier().classify(name, uses)


def short_member(member: str, label: str) -> str:
    """A reference's member without the file label the reader prefixes (``/x/a.pt: main pickle`` -> ``main pickle``)."""
    return member[len(label) + 2:] if label and member.startswith(label + ": ") else member


def global_uses(refs: Iterable[tuple[str, Any]], allowed: Any, label: str = "", max_names: int = 1000,
                calls: dict[str, set[str]] | None = None) -> tuple[list[GlobalUse], int]:
    """Group global references ``(member, GlobalRef)`` by name, in first-seen order, and classify each.

    ``allowed(ref) -> bool`` says whether a reference passes (allowlist or policy);
    ``calls`` maps a name to how the file made records from it (see
    :meth:`Classifier.classify`; a GlobalRef's own opcode counts too, for INST and
    OBJ name and call at once). Returns the uses (at most ``max_names``, each with
    at most :data:`MAX_WHERE` places) and how many more distinct names there were.
    """
    calls = calls or {}
    by_name: dict[str, list[tuple[str, Any]]] = {}
    for member, ref in refs:
        by_name.setdefault(ref.qualname, []).append((member, ref))
    out = []
    for name, found in list(by_name.items())[:max_names]:
        how = set(calls.get(name, ())) | {r.opcode for _, r in found if r.opcode in _CALLING_REFS}
        kind = classify(name, how)
        where = [{"member": short_member(m, label), "opcode": r.opcode, "offset": r.offset} for m, r in found[:MAX_WHERE]]
        out.append(GlobalUse(name, kind.kind, kind.reason, len(found), all(allowed(r) for _, r in found), where))
    return out, max(0, len(by_name) - max_names)
