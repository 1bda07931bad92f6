"""The mutant classes' common shape: a registry and the context each class builds from.

A class is a function ``fn(ctx) -> bytes`` registered with :func:`mutant`. It is
called twice with identical random choices: once with ``ctx.hostile`` false
(the payload-free flavour, where a "which copy does the loader read?" slot holds
a *different clean* pickle) and once with it true (that slot holds the payload).
It records its choices with :meth:`Ctx.note`, which is the repro recipe.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Callable

from . import pickles
from .seeds import Seeds

#: name -> (container family, builder)
CLASSES: dict[str, tuple[str, Callable[["Ctx"], bytes]]] = {}


def mutant(family: str):
    """Register a mutant class under its function name."""
    def deco(fn: Callable[["Ctx"], bytes]):
        CLASSES[fn.__name__] = (family, fn)
        return fn
    return deco


@dataclass
class Ctx:
    """What a class builds from: random choices, the seeds, the flavour and the payload spelling."""

    rng: random.Random
    seeds: Seeds
    hostile: bool
    callee: str = "builtins.open"
    spelling: str = "reduce"
    notes: list[str] = field(default_factory=list)
    #: the mutant's file name ending (torch >= 2.13 reads any "*.safetensors" path with the safetensors library)
    suffix: str = ".bin"
    #: files written beside the mutant (relative path -> bytes): torch never looks at them
    siblings: dict[str, bytes] = field(default_factory=dict)

    def note(self, text: str) -> None:
        """Record one choice (the notes are the recipe printed for a disagreement)."""
        self.notes.append(text)

    def choice(self, label: str, options):
        """``rng.choice`` that also notes what was chosen."""
        value = self.rng.choice(list(options))
        self.note(f"{label}={value!r}")
        return value

    def fragment(self, text: bool = False) -> bytes:
        """The payload fragment in the hostile flavour, else nothing."""
        if not self.hostile:
            return b""
        return pickles.payload(self.callee, "text" if text else self.spelling)

    def slot(self, base: bytes, alt: bytes | None = None) -> bytes:
        """A pickle slot: hostile -> ``base`` with the payload spliced in; clean -> ``alt`` (or ``base``)."""
        if self.hostile:
            return pickles.splice(base, self.fragment())
        return base if alt is None else alt
