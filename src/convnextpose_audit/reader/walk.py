"""Bounded walks over an unpickled object: no recursion, each container visited once, keys rendered short."""

from __future__ import annotations

from typing import Any, Iterator

from ..errors import LimitExceeded
from .limits import Limits
from .meter import Meter
from .pickle.records import Instance
from .tensor import TensorRef

_SEGMENT = 200  # characters of one path segment kept; longer keys are cut (paths are labels, keys stay exact)


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


def _children(value: Any) -> list[tuple[str, Any]] | None:
    if isinstance(value, dict):
        return [(key_text(k), v) for k, v in value.items()]
    if isinstance(value, (list, tuple, set, frozenset)):
        return [(str(i), v) for i, v in enumerate(value)]
    if isinstance(value, Instance):
        return value.children()
    return None


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
    seen: set[int] = set()
    stack: list[tuple[str, Any, int]] = [(prefix, obj, 0)]
    nodes = 0
    while stack:
        path, value, depth = stack.pop()
        children = None if isinstance(value, TensorRef) else _children(value)
        if children is None:
            if isinstance(value, want):
                yield path, value
            continue
        if id(value) in seen:
            continue
        seen.add(id(value))
        if isinstance(value, want):
            yield path, value
        nodes += 1
        if nodes > limits.max_walk_nodes:
            raise LimitExceeded(f"object has more than max_walk_nodes={limits.max_walk_nodes:,} containers")
        if depth >= limits.max_nesting:
            raise LimitExceeded(f"object nested deeper than max_nesting={limits.max_nesting}")
        if meter is not None:
            meter.charge_bytes(len(path) * len(children), "walking the object")
            if not nodes & 1023:
                meter.tick("walking the object")
        stack.extend((f"{path}/{k}" if path else k, v, depth + 1) for k, v in reversed(children))
