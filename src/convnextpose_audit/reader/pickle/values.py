"""Semantics that build the object graph: allowlisted stand-ins, inert records, metered containers.

Where the C unpickler would call something, :class:`Values` either runs the
project's own stand-in (only for globals on the allowlist in
:mod:`..safe_globals`) or records the call as an :class:`~.records.Instance`.
Nothing from the file is ever imported or called. Containers follow the C
unpickler's rules (exact dicts and lists are filled directly; anything else gets
``__setitem__``/``extend``/``add``, which only records do here), and every key
hashed and every value copied is charged to the file's :class:`~..meter.Meter`.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Callable

from ...errors import AmbiguousContainerError, AuditError, MalformedPickleError, UnsupportedCheckpointError
from ..limits import Limits
from ..meter import Meter
from ..safe_globals import Context, NumpyArray, NumpyDType, SafeGlobal, allowed
from ..tensor import TensorRef
from .keys import KeyGuard
from .ops import decode_raw_unicode, decode_text, decode_unicode, malformed
from .records import Global, Instance


class Values:
    """Builds Python values for one pickle stream (see module docstring)."""

    def __init__(self, member: str, limits: Limits, meter: Meter,
                 persistent_load: Callable[[Any], Any] | None = None):
        # persistent_load may be swapped between pickles of one stream (only torch's main pickle has one).
        self.member = member
        self.meter = meter
        self.keys = KeyGuard(member, limits, meter)
        self.ctx = Context(member, meter, self.keys)
        self.persistent_load = persistent_load

    # -- leaves -----------------------------------------------------------------------------------
    def resolve(self, module: str, name: str) -> Any:
        """The stand-in for an allowlisted global, else an inert :class:`Global` record."""
        value = allowed(module, name)
        return Global(module, name) if value is None else value

    def text(self, kind: str, raw: bytes) -> Any:
        """A string or bytes opcode's value, decoded as the C unpickler decodes it under torch."""
        self.meter.charge_bytes(len(raw), f"{self.member}: text")
        if kind == "utf8":
            return decode_unicode(raw, self.member)
        if kind == "str8":  # a Python 2 str: torch.load passes encoding="utf-8"
            return decode_text(raw, self.member)
        if kind == "bytes":
            return bytes(raw)
        if kind == "bytearray":
            return bytearray(raw)
        return decode_raw_unicode(raw, self.member)

    def ambiguous(self, what: str) -> None:
        """A value torch reads differently across platforms or versions: this reading is refused."""
        raise AmbiguousContainerError(f"{self.member}: ambiguous: {what}")

    def charge_int(self, nbytes: int) -> None:
        """Charge a big integer's digits."""
        self.meter.charge_bytes(nbytes, f"{self.member}: integer")

    def empty_dict(self) -> dict:
        self.meter.charge_object("dict", f"{self.member}: EMPTY_DICT")
        return {}

    @staticmethod
    def empty_list() -> list:
        return []

    def empty_set(self) -> set:
        self.meter.charge_object("set", f"{self.member}: EMPTY_SET")
        return set()

    # -- containers -----------------------------------------------------------------------------------
    @staticmethod
    def make_tuple(items: list) -> tuple:
        return tuple(items)

    @staticmethod
    def make_list(items: list) -> list:
        return items

    def make_dict(self, items: list) -> dict:
        self.meter.charge_object("dict", f"{self.member}: DICT")
        out: dict = {}
        self._store(out, items)
        return out

    def make_frozenset(self, items: list) -> frozenset:
        self.meter.charge_object("set", f"{self.member}: FROZENSET")
        members: set = set()
        self._add(members, items)
        return frozenset(members)

    def setitems(self, target: Any, items: list) -> None:
        """SETITEM(S): exact dicts (and OrderedDicts) are filled; records remember the pairs."""
        if isinstance(target, dict):
            self._store(target, items)
        elif isinstance(target, Instance):
            self.meter.charge_elements(len(items), f"{self.member}: SETITEMS")
            target.items.extend(zip(items[::2], items[1::2]))
        else:
            raise malformed(self.member, f"SETITEMS on a {type(target).__name__}")

    def appends(self, target: Any, items: list) -> None:
        """APPEND(S): lists are extended; records remember the values."""
        if type(target) is list:
            target.extend(items)
        elif isinstance(target, Instance):
            target.appended.extend(items)
        else:
            raise malformed(self.member, f"APPENDS on a {type(target).__name__}")

    def additems(self, target: Any, items: list) -> None:
        """ADDITEMS: sets grow; records remember the members."""
        if type(target) is set:
            self._add(target, items)
        elif isinstance(target, Instance):
            target.added.extend(items)
        else:
            raise malformed(self.member, f"ADDITEMS on a {type(target).__name__}")

    def _store(self, d: dict, items: list) -> None:
        admit = self.keys.admit
        for i in range(0, len(items), 2):
            key = items[i]
            try:
                admit(d, key)
                d[key] = items[i + 1]
            except TypeError as exc:  # an unhashable key: the C unpickler fails the same way
                raise malformed(self.member, f"dict key: {exc}") from None

    def _add(self, s: set, items: list) -> None:
        admit = self.keys.admit
        for item in items:
            try:
                admit(s, item)
                s.add(item)
            except TypeError as exc:
                raise malformed(self.member, f"set member: {exc}") from None

    # -- calls ------------------------------------------------------------------------------------------
    def call(self, func: Any, args: Any, how: str) -> Any:
        """REDUCE, INST, OBJ: a stand-in's result, or an inert record of the call."""
        if type(args) is not tuple:
            raise malformed(self.member, f"{how} arguments are not a tuple")
        if type(func) is SafeGlobal:
            return self._run(func.call, args)
        if isinstance(func, (Global, Instance)):
            self.meter.charge_object("record", f"{self.member}: {how}")
            return Instance(func, how, args)
        raise malformed(self.member, f"{how} applied to a non-callable {type(func).__name__}")

    def newobj(self, cls: Any, args: Any, kwargs: Any, how: str) -> Any:
        """NEWOBJ(_EX): ``cls.__new__(cls, *args)`` for stand-in classes, a record otherwise."""
        if not isinstance(args, tuple):
            raise malformed(self.member, f"{how} expected an argument tuple")
        if kwargs is not None and not isinstance(kwargs, dict):
            raise malformed(self.member, f"{how} keyword arguments are not a dict")
        if isinstance(cls, (Global, Instance)):
            self.meter.charge_object("record", f"{self.member}: {how}")
            return Instance(cls, how, args, kwargs)
        new = getattr(cls, "new", None)
        if new is None:
            raise malformed(self.member, f"{how} class argument isn't a type object")
        if kwargs:
            raise UnsupportedCheckpointError(f"{self.member}: {how} with keyword arguments for {cls!r}")
        return self._run(new, args)

    def _run(self, fn: Callable[[tuple, Context], Any], args: tuple) -> Any:
        try:
            return fn(args, self.ctx)
        except AuditError as exc:
            if not str(exc).startswith(self.member):
                exc.args = (f"{self.member}: {exc}",)
            raise

    def build(self, inst: Any, state: Any) -> None:
        """BUILD: records keep the state; a few stand-ins accept their own pickled state."""
        if state is None and not isinstance(inst, (Instance, TensorRef)):
            return  # C's default __setstate__ leaves any object alone for a None state
        if isinstance(inst, Instance):
            inst.state = state
        elif isinstance(inst, (NumpyDType, NumpyArray)):
            if not isinstance(state, tuple):
                raise malformed(self.member, f"BUILD with unsupported state for a {type(inst).__name__}")
            inst.set_state(state, self.ctx)
        elif isinstance(inst, OrderedDict):  # no __setstate__: attributes such as _metadata go to __dict__
            if isinstance(state, tuple) and len(state) == 2:
                state, slots = state
                if slots:
                    raise UnsupportedCheckpointError(f"{self.member}: BUILD with slot state on an OrderedDict")
            if state is None:
                return
            if isinstance(state, dict):  # copied into the instance on every BUILD: charged by size
                self.meter.charge_elements(len(state), f"{self.member}: BUILD")
            if not isinstance(state, dict) or not all(isinstance(k, str) for k in state):
                raise malformed(self.member, "BUILD state for an OrderedDict is not a dict of names")
            inst.__dict__.update(state)
        elif isinstance(inst, TensorRef):
            raise UnsupportedCheckpointError(f"{self.member}: BUILD on a tensor (legacy tensor state) is not modelled")
        else:
            raise malformed(self.member, f"BUILD on a {type(inst).__name__}")

    def stack_global(self, machine, module: Any, name: Any, offset: int) -> Any:
        """STACK_GLOBAL: strings name a global; a name computed by an earlier call is refused as such."""
        if type(module) is str and type(name) is str:
            return machine.lookup(module, name, "STACK_GLOBAL", offset)
        if all(type(v) is str or isinstance(v, (Global, Instance)) for v in (module, name)):
            # A record could be a string at load time, and only a global (already recorded) made it.
            return machine.lookup("<computed>", "<computed>", "STACK_GLOBAL", offset)
        raise malformed(self.member, "STACK_GLOBAL requires str")

    def persistent(self, pid: Any) -> Any:
        """PERSID/BINPERSID: the container's storage loader, which never runs file code."""
        if self.persistent_load is None:
            raise malformed(self.member, "persistent id where none is allowed")
        return self.persistent_load(pid)

    def readonly(self, value: Any) -> None:
        """READONLY_BUFFER: a no-op on bytes, as in C; anything else is not modelled."""
        if type(value) is not bytes:
            raise MalformedPickleError(f"{self.member}: READONLY_BUFFER on a {type(value).__name__} is not supported")
