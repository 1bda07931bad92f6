"""A deterministic stream of mutant pairs from an integer seed.

Mutant ``i`` of seed ``s`` uses class ``i mod K`` of a seed-shuffled class list,
so any ``K`` consecutive mutants cover every class, and its random choices come
from ``Random(f"{s}/{i}")``: the same (seed, index) always gives the same bytes.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Iterator

from . import mutants_legacy, mutants_poly, mutants_tar, mutants_zip  # noqa: F401  (they register classes)
from . import pickles
from .registry import CLASSES, Ctx
from .seeds import Seeds


@dataclass
class MutantPair:
    """One mutant in its two flavours, with the recipe that rebuilds it."""

    seed: int
    index: int
    cls: str
    family: str
    clean: bytes
    hostile: bytes
    callee: str
    spelling: str
    notes: list[str] = field(default_factory=list)
    suffix: str = ".bin"
    siblings: dict[str, dict[str, bytes]] = field(default_factory=dict)  #: flavour -> files beside the mutant

    def data(self, flavour: str) -> bytes:
        """The bytes of flavour ``"clean"`` or ``"hostile"``."""
        return self.clean if flavour == "clean" else self.hostile

    @property
    def recipe(self) -> str:
        """One line: class, choices, payload spelling, and how to regenerate it."""
        return (f"{self.cls}: {'; '.join(self.notes)} | payload {self.callee} via {self.spelling} | replay: "
                f"python -m fuzz.differential --only {self.cls} --seed {self.seed} --index {self.index} --show")


def class_names(only: list[str] | None = None) -> list[str]:
    """Registered class names (optionally only those given), in a stable order."""
    names = sorted(CLASSES)
    if only:
        unknown = set(only) - set(names)
        if unknown:
            raise ValueError(f"unknown mutant classes: {sorted(unknown)}")
        names = [n for n in names if n in only]
    return names


def make(seeds: Seeds, seed: int, index: int, name: str) -> MutantPair:
    """Build mutant ``index`` of class ``name``: both flavours from identical random choices."""
    family, fn = CLASSES[name]
    pick = random.Random(f"{seed}/{index}/payload")
    callee = pick.choice(list(pickles._CALLEES))
    spelling = pick.choice(pickles.SPELLINGS[:4])
    state = random.Random(f"{seed}/{index}").getstate()
    flavours = []
    for hostile in (False, True):
        rng = random.Random()
        rng.setstate(state)
        ctx = Ctx(rng=rng, seeds=seeds, hostile=hostile, callee=callee, spelling=spelling)
        flavours.append((fn(ctx), ctx.notes, ctx.suffix, ctx.siblings))
    (clean, notes, suffix, sib_c), (hostile_bytes, hostile_notes, _, sib_h) = flavours
    return MutantPair(seed, index, name, family, clean, hostile_bytes, callee, spelling,
                      notes + [n for n in hostile_notes if n not in notes], suffix,
                      {"clean": sib_c, "hostile": sib_h})


def generate(seeds: Seeds, seed: int, count: int, only: list[str] | None = None,
             start: int = 0) -> Iterator[MutantPair]:
    """Mutants ``start`` .. ``start + count - 1`` of ``seed``."""
    names = class_names(only)
    random.Random(seed).shuffle(names)
    for index in range(start, start + count):
        yield make(seeds, seed, index, names[index % len(names)])
