"""Semantics for the safety scan: build nothing, keep only what decides where the C unpickler stops.

Run by the same :class:`~.machine.Machine` as the structured read, so framing,
stack, marks and memo behave exactly as in the C unpickler, but no dict is
hashed, no stand-in runs and no limit on values applies: the scan is linear in
the pickle and cannot be stopped by a structure that the structured read would
refuse. Each value is kept as its kind only (a :class:`Kind` marker), except
text, which is decoded: STACK_GLOBAL takes its names from strings, and a string
the C unpickler cannot decode stops it there too. The kinds are just enough to
fail where C fails (calling a dict, a non-tuple argument list, an unhashable
key, BUILD on a list...). A value only a call can have produced is
:data:`COMPUTED`: anything goes for it, which errs towards scanning on.
"""

from __future__ import annotations

import codecs
from typing import Any

from .ops import decode_raw_unicode, decode_text, decode_unicode, malformed

_LONG_TEXT = 4096  #: characters of a string the scan keeps; longer ones are validated piecewise and cut
_PIECE = 1 << 20  #: bytes decoded at a time when validating a long string
#: text kinds -> (codec, errors) exactly as the C unpickler decodes them under torch.load
_DECODERS = {"utf8": ("utf-8", "surrogatepass"), "str8": ("utf-8", "strict"),
             "raw-unicode": ("raw_unicode_escape", "strict")}


class Kind:
    """The kind of a value the scan does not build; ``hashable`` as Python would judge it."""

    __slots__ = ("name", "hashable")

    def __init__(self, name: str, hashable: bool):
        self.name = name
        self.hashable = hashable

    def __repr__(self) -> str:
        return self.name


class Sequence(Kind):
    """A list or bytearray built from opcodes: one object per value (the memo may alias it), with its length,
    because C refuses SETITEM at an index past the end."""

    __slots__ = ("length",)

    def __init__(self, name: str, length: int):
        super().__init__(name, False)
        self.length = length


COMPUTED = Kind("COMPUTED", True)  # a global or a call's result: could be anything
TUPLE = Kind("tuple", True)
UNHASHABLE_TUPLE = Kind("tuple holding unhashable values", False)
DICT, SET = Kind("dict", False), Kind("set", False)
FROZENSET, BYTES = Kind("frozenset", True), Kind("bytes", True)
OTHER = Kind("value", True)  # kept for callers: a plain value that is certainly not a string



def _unhashable(value: Any) -> bool:
    return isinstance(value, Kind) and not value.hashable


def _tuple_like(value: Any) -> bool:
    return type(value) is tuple or value is TUPLE or value is UNHASHABLE_TUPLE or value is COMPUTED


class Shapes:
    """Scan semantics (see module docstring)."""

    def __init__(self, member: str, persistent: bool = False):
        self.member = member
        self.has_persistent = persistent  # without a handler, a persistent id stops the C unpickler

    def _fail(self, what: str) -> Exception:
        return malformed(self.member, what)

    def resolve(self, module: str, name: str) -> Any:
        return COMPUTED

    def text(self, kind: str, raw: bytes | memoryview) -> Any:
        if kind == "bytes" or kind == "bytearray":
            return Sequence("bytearray", len(raw)) if kind == "bytearray" else BYTES
        if len(raw) > _LONG_TEXT:
            return self._long_text(kind, raw)
        if kind == "utf8":
            return decode_unicode(raw, self.member)
        if kind == "str8":
            return decode_text(raw, self.member)
        return decode_raw_unicode(raw, self.member)

    def _long_text(self, kind: str, raw: bytes | memoryview) -> str:
        """A long string: checked in bounded pieces exactly as C decodes it whole, kept only as a cut name.

        Only STACK_GLOBAL reads a string's content here, and no allowlisted name is
        long: the cut text (ending in "…") names the global in reports and is refused.
        """
        codec, errors = _DECODERS[kind]
        decoder = codecs.getincrementaldecoder(codec)(errors)
        head = ""
        try:
            for at in range(0, len(raw), _PIECE):
                piece = decoder.decode(raw[at:at + _PIECE], at + _PIECE >= len(raw))
                if len(head) < _LONG_TEXT:
                    head += piece[:_LONG_TEXT]
        except UnicodeDecodeError as exc:
            what = "UNICODE argument" if kind == "raw-unicode" else "string is not UTF-8"
            raise malformed(self.member, f"{what} ({exc.reason})") from None
        return head[:_LONG_TEXT] + "…"

    def charge_int(self, nbytes: int) -> None:
        pass

    def ambiguous(self, what: str) -> None:
        pass  # the framing is the same everywhere; only the value differs

    @staticmethod
    def empty_dict() -> Any:
        return DICT

    @staticmethod
    def empty_list() -> Any:
        return Sequence("list", 0)

    @staticmethod
    def empty_set() -> Any:
        return SET

    @staticmethod
    def make_tuple(items: list) -> Any:
        return UNHASHABLE_TUPLE if any(_unhashable(v) for v in items) else TUPLE

    @staticmethod
    def make_list(items: list) -> Any:
        return Sequence("list", len(items))

    def make_dict(self, items: list) -> Any:
        if any(_unhashable(k) for k in items[::2]):
            raise self._fail("unhashable dict key")
        return DICT

    def make_frozenset(self, items: list) -> Any:
        if any(_unhashable(v) for v in items):
            raise self._fail("unhashable set member")
        return FROZENSET

    def setitems(self, target: Any, items: list) -> None:
        if target is DICT:
            if any(_unhashable(k) for k in items[::2]):
                raise self._fail("unhashable dict key")
        elif isinstance(target, Sequence):  # SETITEM at an int index that exists (a bytearray: of a byte)
            for key, value in zip(items[::2], items[1::2]):
                if key is COMPUTED:
                    continue
                if type(key) not in (int, bool) or not -target.length <= key < target.length:
                    raise self._fail("list index out of range or not an integer")
                if target.name == "bytearray" and value is not COMPUTED and not (
                        type(value) in (int, bool) and 0 <= value < 256):
                    raise self._fail("bytearray item must be a byte")
        elif target is not COMPUTED:
            raise self._fail(f"SETITEMS on a {target!r}")

    def appends(self, target: Any, items: list) -> None:
        if isinstance(target, Sequence):  # a bytearray has extend() too (of bytes: a hint, not checked)
            target.length += len(items)
        elif target is not COMPUTED:
            raise self._fail(f"APPENDS on a {target!r}")

    def additems(self, target: Any, items: list) -> None:
        if target is SET:
            if any(_unhashable(v) for v in items):
                raise self._fail("unhashable set member")
        elif target is not COMPUTED:
            raise self._fail(f"ADDITEMS on a {target!r}")

    def call(self, func: Any, args: Any, how: str) -> Any:
        if func is not COMPUTED:
            raise self._fail(f"{how} applied to a {func!r}")
        if how == "REDUCE" and not _tuple_like(args):
            raise self._fail(f"{how} arguments are not a tuple")
        return COMPUTED

    def newobj(self, cls: Any, args: Any, kwargs: Any, how: str) -> Any:
        if cls is not COMPUTED or not _tuple_like(args) \
                or (kwargs is not None and kwargs not in (DICT, COMPUTED)):
            raise self._fail(f"{how} with a {cls!r} class or bad arguments")
        return COMPUTED

    def build(self, inst: Any, state: Any) -> None:
        # Built-in values have neither __setstate__ nor an instance __dict__, so C fails on a dict state; a None
        # state (or a (state, slots) pair, which may hold two Nones) leaves any object alone.
        # (A real tuple here is EMPTY_TUPLE's (), which is not such a pair.)
        if inst is not COMPUTED and not (state is None or state is TUPLE or state is COMPUTED):
            raise self._fail(f"BUILD on a {inst!r}")

    def stack_global(self, machine, module: Any, name: Any, offset: int) -> Any:
        if type(module) is str and type(name) is str:
            machine.lookup(module, name, "STACK_GLOBAL", offset)
            return COMPUTED
        if all(type(v) is str or v is COMPUTED for v in (module, name)):
            machine.lookup("<computed>", "<computed>", "STACK_GLOBAL", offset)
            return COMPUTED
        raise self._fail("STACK_GLOBAL requires str")

    def persistent(self, pid: Any) -> Any:
        if not self.has_persistent:
            raise self._fail("persistent id where none is allowed")
        return COMPUTED  # the loader's own function: runs no file code, result unknown here

    def readonly(self, value: Any) -> None:
        if not (value is BYTES or value is COMPUTED or getattr(value, "name", "") == "bytearray"):
            raise self._fail(f"READONLY_BUFFER on a {value!r}")
