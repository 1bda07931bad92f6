"""State-dict names from a pickled module tree, read from inert records (nothing is imported or called).

``torch.save(model)`` pickles an ``nn.Module`` as NEWOBJ of its class plus BUILD
with the instance ``__dict__``: ``_parameters``, ``_buffers``,
``_non_persistent_buffers_set`` and ``_modules``. ``Module.state_dict()`` names
every parameter, then every persistent buffer, then recurses into each child,
joining names with dots; :func:`module_state_dict` does the same over the
records. A TorchScript archive's ``data.pkl`` holds ``__torch__.*`` objects whose
BUILD state carries the attributes directly: tensors are entries, submodules
are nested objects (:func:`script_state_dict`).

Pure and bounded: an explicit stack (no recursion), at most ``Limits.max_walk_nodes``
visits, depth at most ``Limits.max_nesting``, tensors at most ``Limits.max_elements``.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Callable, Iterator

from .errors import LimitExceeded
from .reader.limits import DEFAULT_LIMITS, Limits
from .reader.pickle.records import Instance
from .reader.tensor import TensorRef

#: Keys of an ``nn.Module``'s ``__dict__`` that make a record a module (what Module.__setstate__ needs).
MODULE_KEYS = ("_parameters", "_buffers", "_modules")
TORCHSCRIPT_PREFIX = "__torch__."


class ModuleStateDict(OrderedDict):
    """A state dict rebuilt from a module tree; ``source`` names the root class and how it was read."""

    source: str = ""


def is_module(value: Any) -> bool:
    """True for an inert record of a pickled ``nn.Module`` (BUILD state with the module dicts)."""
    return (isinstance(value, Instance) and isinstance(value.state, dict)
            and all(isinstance(value.state.get(k), dict) for k in MODULE_KEYS))


def is_script_module(value: Any) -> bool:
    """True for an inert record of a TorchScript object (a ``__torch__.*`` class with a dict state)."""
    return (isinstance(value, Instance) and isinstance(value.state, dict)
            and value.qualname.startswith(TORCHSCRIPT_PREFIX))


def module_state_dict(root: Instance, limits: Limits = DEFAULT_LIMITS) -> ModuleStateDict:
    """``root.state_dict()`` of a pickled ``nn.Module``, as names -> TensorRef (persistent buffers only)."""
    return _rebuild(root, _module_entries, limits, f"nn.Module {root.qualname}")


def script_state_dict(root: Instance, limits: Limits = DEFAULT_LIMITS) -> ModuleStateDict:
    """The tensors of a TorchScript module tree, named by attribute path as its ``state_dict()`` names them."""
    return _rebuild(root, _script_entries, limits, f"TorchScript module {root.qualname}")


def _rebuild(root: Instance, entries: Callable[[Instance], Iterator[tuple[str, Any]]], limits: Limits,
             source: str) -> ModuleStateDict:
    out = ModuleStateDict()
    out.source = source
    # Like Module.state_dict(), a submodule shared by two parents is named under both paths; a cycle (which
    # would make torch recurse forever) is cut at the repeat. Visits are bounded, so sharing cannot explode.
    stack: list[tuple[str, Instance, tuple[int, ...]]] = [("", root, ())]
    visits = 0
    while stack:
        prefix, module, ancestors = stack.pop()
        if id(module) in ancestors:
            continue
        visits += 1
        if visits > limits.max_walk_nodes or len(ancestors) > limits.max_nesting:
            raise LimitExceeded(f"module tree larger than max_walk_nodes={limits.max_walk_nodes:,} or deeper than "
                                f"max_nesting={limits.max_nesting}")
        children = []
        for name, value in entries(module):
            if isinstance(value, TensorRef):
                out[prefix + name] = value
                if len(out) > limits.max_elements:
                    raise LimitExceeded(f"module tree holds more than max_elements={limits.max_elements:,} tensors")
            elif isinstance(value, Instance):
                children.append((f"{prefix}{name}.", value, ancestors + (id(module),)))
        stack.extend(reversed(children))
    return out


def _module_entries(module: Instance) -> Iterator[tuple[str, Any]]:
    """Parameters, persistent buffers, then child modules, in ``Module.state_dict`` order."""
    state = module.state if isinstance(module.state, dict) else {}
    params, buffers, children = (state.get(k) for k in MODULE_KEYS)
    skip = state.get("_non_persistent_buffers_set")
    skip = skip if isinstance(skip, (set, frozenset)) else set()
    for table, persistent in ((params, None), (buffers, skip)):
        if isinstance(table, dict):
            for name, value in table.items():
                if isinstance(name, str) and (persistent is None or name not in persistent):
                    yield name, value
    if isinstance(children, dict):
        for name, child in children.items():
            if isinstance(name, str) and is_module(child):
                yield name, child


def _script_entries(module: Instance) -> Iterator[tuple[str, Any]]:
    """A TorchScript object's tensor attributes and submodules, in its state's order."""
    for name, value in module.state.items():
        if isinstance(name, str) and (isinstance(value, TensorRef) or is_script_module(value)):
            yield name, value


def as_state_dicts(obj: Any, keys: tuple[str, ...], limits: Limits = DEFAULT_LIMITS) -> Any:
    """``obj`` with module records (at the top, or under one of ``keys``) replaced by their rebuilt state dicts.

    Anything else is returned as it is, so state-dict discovery then reads
    ``torch.save(model)`` and ``torch.save({"model": model})`` like the
    ``state_dict()`` their code would have saved.
    """
    rebuilt = _rebuilt(obj, limits)
    if rebuilt is not None:
        return rebuilt
    if isinstance(obj, dict) and any(isinstance(obj.get(k), Instance) for k in keys):
        view = dict(obj)
        for key in keys:
            sub = _rebuilt(view.get(key), limits)
            if sub is not None:
                view[key] = sub
        return view
    return obj


def _rebuilt(value: Any, limits: Limits) -> ModuleStateDict | None:
    if is_module(value):
        return module_state_dict(value, limits)
    if is_script_module(value):
        return script_state_dict(value, limits)
    return None
