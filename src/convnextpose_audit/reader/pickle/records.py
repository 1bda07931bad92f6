"""Inert records: what a pickle asked for, remembered as data and never executed.

A global outside the allowlist is never imported. It becomes a :class:`Global`;
calling it (REDUCE, NEWOBJ, INST, OBJ) yields an :class:`Instance` that keeps the
arguments, and BUILD, SETITEM(S), APPEND(S) and ADDITEMS on it only record their
operands. The object graph can then be walked, fingerprinted and converted, while
nothing that came from the file runs. Records hash by identity, as the class
objects and instances they stand for would.
"""

from __future__ import annotations

from typing import Any


class Global:
    """A global named by the pickle that is not on the allowlist (module and name as text)."""

    __slots__ = ("module", "name")

    def __init__(self, module: str, name: str):
        self.module = module
        self.name = name

    @property
    def qualname(self) -> str:
        """``module.name``, e.g. ``argparse.Namespace``."""
        return f"{self.module}.{self.name}"

    def __repr__(self) -> str:
        return f"<global {self.qualname}>"


class Instance:
    """What calling or instantiating a non-allowlisted global would have produced.

    ``callee`` is the :class:`Global` (or another record) that was called, ``how``
    the opcode (``REDUCE``, ``NEWOBJ``, ``NEWOBJ_EX``, ``INST``, ``OBJ``); ``args`` and
    ``kwargs`` what it was given; ``state`` the last BUILD state; ``items`` the
    key/value pairs set on it, ``appended`` the values appended, ``added`` the set items.
    """

    __slots__ = ("callee", "how", "args", "kwargs", "state", "items", "appended", "added")

    def __init__(self, callee: Any, how: str, args: tuple, kwargs: dict | None = None):
        self.callee = callee
        self.how = how
        self.args = args
        self.kwargs = kwargs or {}
        self.state: Any = None
        self.items: list[tuple[Any, Any]] = []
        self.appended: list[Any] = []
        self.added: list[Any] = []

    @property
    def qualname(self) -> str:
        """The dotted name of what was called, or ``<call of …>`` for calls of calls."""
        callee = self.callee
        return callee.qualname if isinstance(callee, (Global, Instance)) else f"<call of {type(callee).__name__}>"

    def children(self) -> list[tuple[str, Any]]:
        """Labelled parts that may hold tensors, in the order the pickle gave them."""
        out: list[tuple[str, Any]] = [(f"args/{i}", a) for i, a in enumerate(self.args)]
        out += [(f"kwargs/{k}", v) for k, v in self.kwargs.items()]
        if isinstance(self.state, dict):
            out += [(str(k) if isinstance(k, str) else f"state/{i}", v) for i, (k, v) in enumerate(self.state.items())]
        elif self.state is not None:
            out.append(("state", self.state))
        out += [(f"items/{i}", v) for i, (_k, v) in enumerate(self.items)]
        out += [(f"appended/{i}", v) for i, v in enumerate(self.appended)]
        return out

    def __repr__(self) -> str:
        return f"<{self.how} of {self.qualname}>"
