"""Bounded walks over an unpickled object: no recursion, each container visited once, keys rendered short.

The walk keeps one frame per container on the current path (an iterator over its
children), so its memory is the depth times a frame plus one id per container
seen, whatever the width; a leaf costs no allocation at all, and a path string is
built only for a tensor or for a container that is entered.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator

from ..errors import LimitExceeded
from .limits import Limits
from .meter import Meter
from .pickle.records import Global, Instance
from .tensor import TensorRef

_SEGMENT = 200  # characters of one path segment kept; longer keys are cut (paths are labels, keys stay exact)
#: Values that never hold a tensor: skipped without building a path (records of globals included).
_LEAVES = frozenset({str, bytes, bytearray, int, float, bool, complex, type(None), Global})


def key_text(key: Any) -> str:
    """A dict key as a path segment: strings as they are (cut to 200 characters), others summarised.

    ``str()`` of a tuple key can be gigabytes long and of a huge int can raise;
    neither ever reaches a path.
    """
    if isinstance(key, str):
        return key if len(key) <= _SEGMENT else key[:_SEGMENT] + "…"
    if type(key) is int:
        return str(key) if key.bit_length() <= 64 else f"<int of {key.bit_length()} bits>"
    if isinstance(key, (float, bool)) or key is None:
        return repr(key)
    if isinstance(key, (tuple, frozenset)):
        return f"<{type(key).__name__} of {len(key)}>"
    return f"<{type(key).__name__}>"


def shown(value: Any, width: int = 40) -> str:
    """A file-controlled value for a one-line message: at most ``width`` characters, never expanded
    (``str()`` of a shared tuple is exponential, of a huge int an error)."""
    return key_text(value)[:width]


def _index(i: Any) -> str:
    return str(i)


def _label(text: Any) -> str:
    return text


def _children(value: Any) -> tuple[Iterator[tuple[Any, Any]], Callable[[Any], str]] | None:
    """An iterator of ``(raw label, child)`` and the function that turns a raw label into a path segment.

    None for a leaf, and for an empty container: it holds no tensor, so it is not even remembered as seen
    (empty containers are what a hostile pickle makes most cheaply).
    """
    if isinstance(value, dict):
        if not value:
            return None
        return iter(value.items()), key_text
    if isinstance(value, (list, tuple, set, frozenset)):
        return (enumerate(value), _index) if value else None
    if isinstance(value, Instance):
        return iter(value.children()), _label
    return None


class _Walk:
    """The state of one walk: containers seen, node count, the limits and meter charged."""

    def __init__(self, limits: Limits, meter: Meter | None):
        self.limits = limits
        self.meter = meter
        self.seen: set[int] = set()
        self.nodes = 0

    def visit(self, value: Any, wanted: tuple[type, ...], depth: int) -> tuple[bool, tuple[Iterator, Callable] | None]:
        """``(yield it?, its children to walk or None)`` for a value reached at ``depth``.

        A leaf is yielded whenever it is reached; a container or record only the
        first time, and only a non-empty one is walked (and counted, and bounded).
        """
        if isinstance(value, TensorRef):
            return isinstance(value, wanted), None
        children = _children(value)
        if children is None:
            is_container = isinstance(value, (dict, list, tuple, set, frozenset, Instance))
            if not is_container or not isinstance(value, wanted):
                return not is_container and isinstance(value, wanted), None
        if id(value) in self.seen:
            return False, None
        self.seen.add(id(value))
        if children is None:  # an empty container that is wanted: once
            return True, None
        self.nodes += 1
        if self.nodes > self.limits.max_walk_nodes:
            raise LimitExceeded(f"object has more than max_walk_nodes={self.limits.max_walk_nodes:,} containers")
        if depth >= self.limits.max_nesting:
            raise LimitExceeded(f"object nested deeper than max_nesting={self.limits.max_nesting}")
        if self.meter is not None and not self.nodes & 1023:
            self.meter.tick("walking the object")
        return isinstance(value, wanted), children

    def path(self, parent: str, segment: str) -> str:
        """``parent/segment``, charged to the file's byte budget (deep paths of long keys add up)."""
        out = f"{parent}/{segment}" if parent else segment
        if self.meter is not None:
            self.meter.charge_bytes(len(out), "walking the object")
        return out


def iter_tensors(obj: Any, limits: Limits, prefix: str = "", meter: Meter | None = None) -> Iterator[tuple[str, TensorRef]]:
    """Yield ``(path, TensorRef)`` for every tensor reachable from ``obj``, in pickle order.

    Paths join dict keys (see :func:`key_text`) and list indices with ``/``. A
    container reached twice (shared through the memo, or a cycle) is walked once,
    so a "billion laughs" pickle costs time linear in its size; depth, node count
    and path bytes are bounded, and charged to ``meter`` when one is given.
    """
    for path, value in iter_values(obj, limits, TensorRef, prefix, meter):
        if value.name is None:
            value.name = path
        yield path, value


def iter_values(obj: Any, limits: Limits, want: type | tuple[type, ...], prefix: str = "",
                meter: Meter | None = None) -> Iterator[tuple[str, Any]]:
    """Yield ``(path, value)`` for every value of type ``want`` reachable from ``obj``, in pickle order.

    The walk of :func:`iter_tensors`, with its bounds: a leaf (a tensor, a numpy
    array) is yielded at every path it is reached by, a container or record once.
    """
    wanted = want if isinstance(want, tuple) else (want,)
    leaves = frozenset(t for t in _LEAVES if not issubclass(t, wanted))
    walk = _Walk(limits, meter)
    found, root = walk.visit(obj, wanted, 0)
    if found:
        yield prefix, obj
    if root is None:
        return
    frames: list[tuple[str, Iterator, Callable[[Any], str]]] = [(prefix, *root)]
    while frames:
        path, items, label = frames[-1]
        for raw, value in items:
            if type(value) in leaves:
                continue
            found, children = walk.visit(value, wanted, len(frames))
            if found or children is not None:
                here = walk.path(path, label(raw))
                if found:
                    yield here, value
                if children is not None:
                    frames.append((here, *children))
                    break
        else:
            frames.pop()
