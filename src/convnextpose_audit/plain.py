"""A base for small value classes on the start-up path: fields in ``__slots__``, equality and repr by field.

Why not :func:`dataclasses.dataclass`: each one generates and compiles its methods when its
module is imported, about 0.3 ms a class. Thirty of them were a third of the time
``inspect`` took beyond the bare-zip floor. A subclass lists its fields in ``__slots__`` and
assigns them in a plain ``__init__``; the methods here are shared, compiled once.
"""

from __future__ import annotations

from typing import Any


class Plain:
    """Equality, hash and repr over the fields named in the subclass's ``__slots__``.

    Instances are compared as values: equal when of the same class with equal fields. The hash
    is over the fields, so it is defined only when every field is hashable.
    """

    __slots__ = ()

    def _fields(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in self.__slots__)

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self._fields() == other._fields()  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash(self._fields())

    def __repr__(self) -> str:
        body = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__)
        return f"{type(self).__name__}({body})"
