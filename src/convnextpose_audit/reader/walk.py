"""Bounded walks over an unpickled object: no recursion, each container visited once."""

from __future__ import annotations

from typing import Any, Iterator

from ..errors import LimitExceeded
from .limits import Limits
from .tensor import TensorRef


def iter_tensors(obj: Any, limits: Limits, prefix: str = "") -> Iterator[tuple[str, TensorRef]]:
    """Yield ``(path, TensorRef)`` for every tensor reachable from ``obj``, in pickle order.

    Paths join dict keys and list indices with ``/``. A container reached twice
    (shared through the memo, or a cycle) is walked once, so a "billion laughs"
    pickle costs time linear in its size; depth and node count are bounded.
    """
    seen: set[int] = set()
    stack: list[tuple[str, Any, int]] = [(prefix, obj, 0)]
    nodes = 0
    while stack:
        path, value, depth = stack.pop()
        if isinstance(value, TensorRef):
            if value.name is None:
                value.name = path
            yield path, value
            continue
        if isinstance(value, dict):
            children = [(f"{path}/{k}" if path else str(k), v) for k, v in value.items()]
        elif isinstance(value, (list, tuple, set, frozenset)):
            children = [(f"{path}/{i}" if path else str(i), v) for i, v in enumerate(value)]
        else:
            continue
        if id(value) in seen:
            continue
        seen.add(id(value))
        nodes += 1
        if nodes > limits.max_walk_nodes:
            raise LimitExceeded(f"object has more than max_walk_nodes={limits.max_walk_nodes:,} containers")
        if depth >= limits.max_nesting:
            raise LimitExceeded(f"object nested deeper than max_nesting={limits.max_nesting}")
        stack.extend((p, v, depth + 1) for p, v in reversed(children))
