"""A restricted pickle virtual machine written for untrusted checkpoints.

It implements every opcode of protocols 0-5 itself, so that nothing in the
standard library's unpickler can be reached: globals resolve only through
:mod:`.safe_globals`, "calls" (REDUCE, INST, OBJ, NEWOBJ, NEWOBJ_EX) only run the
project's stand-ins, BUILD only sets attributes on the few types that need it,
and every resource (bytes, opcodes, memo, stack, nesting) is bounded by
:class:`~.limits.Limits`. It imports neither torch nor numpy.
"""

from __future__ import annotations

import codecs
import struct
from collections import OrderedDict
from typing import Any, Callable

from ..errors import AuditError, LimitExceeded, MalformedPickleError, UnsafeCheckpointError
from .limits import Limits
from .safe_globals import NumpyArray, NumpyDType, SafeGlobal, resolve
from .tensor import TensorRef

_unpack_i = struct.Struct("<i").unpack_from
_unpack_I = struct.Struct("<I").unpack_from
_unpack_Q = struct.Struct("<Q").unpack_from
_unpack_H = struct.Struct("<H").unpack_from
_unpack_d = struct.Struct(">d").unpack_from

class Truncated(MalformedPickleError):
    """The pickle ran past the end of the bytes given; a caller may retry with more."""


def describe_global(module: bytes | str, name: bytes | str) -> tuple[str, str]:
    """Return module and name as printable text, escaping bytes that are not UTF-8."""
    def text(v: bytes | str) -> str:
        if isinstance(v, bytes):
            v = v.decode("utf-8", "backslashreplace")
        return v.encode("unicode_escape").decode("ascii") if not v.isprintable() else v
    return text(module), text(name)


def _refuse(module: Any, name: Any, member: str, how: str) -> UnsafeCheckpointError:
    mod, nm = describe_global(module, name)
    return UnsafeCheckpointError(
        f"unsafe global {mod}.{nm} ({how}) in {member}: not on the allowlist; nothing was called",
        module=mod, name=nm, member=member)


def _check_hash(key: Any, container: Any, counts: dict, limit: int, member: str) -> None:
    # Called for a key new to ``container``. str hashes are randomised per process (SipHash);
    # other hashes are predictable, so count distinct keys sharing one hash within one container.
    if type(key) is str:
        return
    slot = (id(container), hash(key))
    n = counts[slot] = counts.get(slot, 0) + 1
    if n > limit:
        raise LimitExceeded(f"{member}: more than max_equal_hashes={limit} keys of one dict or set share a hash "
                            "value (a hash-collision attack?)")


def _check_key(key: Any, limits: Limits, checked: dict) -> None:
    """Bound the nesting of a tuple/frozenset before Python hashes it recursively."""
    if type(key) in (str, int, bytes, bool, float, type(None)) or id(key) in checked:
        return
    stack = [(key, 1)]
    while stack:
        obj, depth = stack.pop()
        if depth > limits.max_nesting:
            raise LimitExceeded(f"dict key nested deeper than max_nesting={limits.max_nesting}")
        if isinstance(obj, (tuple, frozenset)):
            stack.extend((child, depth + 1) for child in obj)
    checked[id(key)] = key


def unpickle(data: bytes, *, member: str, limits: Limits,
             persistent_load: Callable[[Any], Any] | None = None, start: int = 0) -> tuple[Any, int]:
    """Run one pickle from ``data[start:]``; return ``(object, end offset)``.

    Raises :class:`UnsafeCheckpointError` for any global outside the allowlist,
    :class:`Truncated` if the bytes end before STOP, :class:`MalformedPickleError`
    for anything else wrong, :class:`LimitExceeded` when a bound is hit.
    """
    try:
        return _run(data, start, member, limits, persistent_load)
    except AuditError:
        raise
    except RecursionError:
        raise LimitExceeded(f"{member}: pickle nested too deeply") from None
    except MemoryError:
        raise LimitExceeded(f"{member}: pickle needs more memory than available") from None
    except (TypeError, ValueError, KeyError, IndexError, AttributeError, OverflowError,
            UnicodeDecodeError, struct.error) as exc:
        raise MalformedPickleError(f"{member}: malformed pickle ({type(exc).__name__}: {exc})") from None


def _run(data: bytes, pos: int, member: str, limits: Limits, persistent_load) -> tuple[Any, int]:
    end = len(data)
    stack: list = []
    marks: list = []
    memo: dict = {}
    checked_keys: dict = {}
    key_hashes: dict = {}
    max_ops = limits.max_opcodes
    max_memo = limits.max_memo
    max_stack = limits.max_stack
    ops = 0

    def need(n: int) -> int:
        if pos + n > end:
            raise Truncated(f"{member}: pickle truncated (needs {n:,} bytes at offset {pos:,}, {end - pos:,} left)")
        return pos + n

    def readline() -> tuple[bytes, int]:
        nl = data.find(b"\n", pos, min(end, pos + 1_000_000))
        if nl < 0:
            if end - pos >= 1_000_000:
                raise MalformedPickleError(f"{member}: text opcode line longer than 1 MB")
            raise Truncated(f"{member}: pickle truncated inside a text opcode at offset {pos:,}")
        return data[pos:nl], nl + 1

    def pop_mark() -> list:
        if not marks:
            raise MalformedPickleError(f"{member}: malformed pickle: no MARK on the stack")
        k = marks.pop()
        items = stack[k:]
        del stack[k:]
        return items

    def pop() -> Any:
        if len(stack) <= (marks[-1] if marks else 0):
            raise MalformedPickleError(f"{member}: malformed pickle: stack underflow")
        return stack.pop()

    def top() -> Any:
        if len(stack) <= (marks[-1] if marks else 0):
            raise MalformedPickleError(f"{member}: malformed pickle: stack underflow")
        return stack[-1]

    def put(key: Any, value: Any) -> None:
        if len(memo) >= max_memo and key not in memo:
            raise LimitExceeded(f"{member}: memo exceeds max_memo={max_memo:,}")
        memo[key] = value

    def get(key: Any) -> Any:
        try:
            return memo[key]
        except KeyError:
            raise MalformedPickleError(f"{member}: malformed pickle: memo key {key!r} was never stored") from None

    def global_(module: bytes, name: bytes, how: str) -> Any:
        try:
            mod_s, name_s = module.decode("utf-8"), name.decode("utf-8")
        except UnicodeDecodeError:
            raise _refuse(module, name, member, how) from None
        value = resolve(mod_s, name_s)
        if value is None:
            raise _refuse(mod_s, name_s, member, how)
        return value

    def call(func: Any, args: Any, how: str) -> Any:
        if not isinstance(func, SafeGlobal):
            raise MalformedPickleError(f"{member}: malformed pickle: {how} applied to a non-callable {type(func).__name__}")
        if not isinstance(args, tuple):
            raise MalformedPickleError(f"{member}: malformed pickle: {how} arguments are not a tuple")
        try:
            return func.call(args)
        except AuditError as exc:
            if str(exc).startswith(member):
                raise
            exc.args = (f"{member}: {exc}",)
            raise

    def admit(container: Any, k: Any) -> None:
        # Nesting is bounded before anything hashes ``k``; collisions are counted per container.
        _check_key(k, limits, checked_keys)
        if k not in container:
            _check_hash(k, container, key_hashes, limits.max_equal_hashes, member)

    def setitem(d: Any, k: Any, v: Any) -> None:
        if not isinstance(d, dict):
            raise MalformedPickleError(f"{member}: malformed pickle: SETITEM on a {type(d).__name__}")
        admit(d, k)
        d[k] = v

    def add_to_set(s: Any, items: list) -> None:
        if not isinstance(s, set):
            raise MalformedPickleError(f"{member}: malformed pickle: ADDITEMS on a {type(s).__name__}")
        for item in items:
            admit(s, item)
            s.add(item)

    def persid(pid: Any) -> Any:
        if persistent_load is None:
            raise MalformedPickleError(f"{member}: malformed pickle: persistent id where none is allowed")
        return persistent_load(pid)

    while True:
        if pos >= end:
            raise Truncated(f"{member}: pickle truncated (no STOP before offset {end:,})")
        op = data[pos]
        pos += 1
        ops += 1
        if ops > max_ops:
            raise LimitExceeded(f"{member}: more than max_opcodes={max_ops:,} opcodes")
        # Each opcode grows the stack by at most one, so checking every 1024 opcodes is enough.
        if not ops & 1023 and (len(stack) > max_stack or len(marks) > max_stack):
            raise LimitExceeded(f"{member}: stack exceeds max_stack={max_stack:,}")

        # Ordered roughly by frequency in torch checkpoints.
        if op == 0x71:  # BINPUT
            n = need(1); put(data[pos], top()); pos = n
        elif op == 0x68:  # BINGET
            n = need(1); stack.append(get(data[pos])); pos = n
        elif op == 0x58:  # BINUNICODE
            n = need(4); size = _unpack_I(data, pos)[0]; pos = n
            n = need(size); stack.append(data[pos:n].decode("utf-8", "surrogatepass")); pos = n
        elif op == 0x4B:  # BININT1
            n = need(1); stack.append(data[pos]); pos = n
        elif op == 0x28:  # MARK
            marks.append(len(stack))
        elif op == 0x74:  # TUPLE
            stack.append(tuple(pop_mark()))
        elif op == 0x85:  # TUPLE1
            stack.append((pop(),))
        elif op == 0x86:  # TUPLE2
            b = pop(); a = pop(); stack.append((a, b))
        elif op == 0x87:  # TUPLE3
            c = pop(); b = pop(); a = pop(); stack.append((a, b, c))
        elif op == 0x52:  # REDUCE
            args = pop(); func = pop(); stack.append(call(func, args, "REDUCE"))
        elif op == 0x51:  # BINPERSID
            stack.append(persid(pop()))
        elif op == 0x89:  # NEWFALSE
            stack.append(False)
        elif op == 0x88:  # NEWTRUE
            stack.append(True)
        elif op == 0x29:  # EMPTY_TUPLE
            stack.append(())
        elif op == 0x75:  # SETITEMS
            items = pop_mark(); d = top()
            if len(items) % 2:
                raise MalformedPickleError(f"{member}: malformed pickle: SETITEMS with an odd number of items")
            for i in range(0, len(items), 2):
                setitem(d, items[i], items[i + 1])
        elif op == 0x73:  # SETITEM
            v = pop(); k = pop(); setitem(top(), k, v)
        elif op == 0x72:  # LONG_BINPUT
            n = need(4); put(_unpack_I(data, pos)[0], top()); pos = n
        elif op == 0x6A:  # LONG_BINGET
            n = need(4); stack.append(get(_unpack_I(data, pos)[0])); pos = n
        elif op == 0x94:  # MEMOIZE
            put(len(memo), top())
        elif op == 0x8C:  # SHORT_BINUNICODE
            n = need(1); size = data[pos]; pos = n
            n = need(size); stack.append(data[pos:n].decode("utf-8", "surrogatepass")); pos = n
        elif op == 0x4D:  # BININT2
            n = need(2); stack.append(_unpack_H(data, pos)[0]); pos = n
        elif op == 0x4A:  # BININT
            n = need(4); stack.append(_unpack_i(data, pos)[0]); pos = n
        elif op == 0x63 or op == 0x69:  # GLOBAL, INST
            how = "GLOBAL" if op == 0x63 else "INST"
            module, pos = readline()
            name, pos = readline()
            value = global_(module, name, how)
            if op == 0x63:
                stack.append(value)
            else:
                stack.append(call(value, tuple(pop_mark()), "INST"))
        elif op == 0x93:  # STACK_GLOBAL
            name = pop(); module = pop()
            if not isinstance(module, str) or not isinstance(name, str):
                raise MalformedPickleError(f"{member}: malformed pickle: STACK_GLOBAL of non-strings")
            stack.append(global_(module.encode("utf-8", "surrogatepass"), name.encode("utf-8", "surrogatepass"),
                                 "STACK_GLOBAL"))
        elif op == 0x7D:  # EMPTY_DICT
            stack.append({})
        elif op == 0x5D:  # EMPTY_LIST
            stack.append([])
        elif op == 0x65:  # APPENDS
            items = pop_mark(); lst = top()
            if not isinstance(lst, list):
                raise MalformedPickleError(f"{member}: malformed pickle: APPENDS on a {type(lst).__name__}")
            lst.extend(items)
        elif op == 0x61:  # APPEND
            v = pop(); lst = top()
            if not isinstance(lst, list):
                raise MalformedPickleError(f"{member}: malformed pickle: APPEND on a {type(lst).__name__}")
            lst.append(v)
        elif op == 0x4E:  # NONE
            stack.append(None)
        elif op == 0x62:  # BUILD
            state = pop(); inst = top(); _build(inst, state, member)
        elif op == 0x80:  # PROTO
            n = need(1)
            if data[pos] > 5:
                raise MalformedPickleError(f"{member}: unsupported pickle protocol {data[pos]}")
            pos = n
        elif op == 0x95:  # FRAME
            n = need(8); size = _unpack_Q(data, pos)[0]; pos = n
            if size > end - pos:
                raise Truncated(f"{member}: pickle FRAME of {size:,} bytes runs past the end")
        elif op == 0x2E:  # STOP
            if not stack:
                raise MalformedPickleError(f"{member}: malformed pickle: STOP with an empty stack")
            return stack[-1], pos
        elif op == 0x47:  # BINFLOAT
            n = need(8); stack.append(_unpack_d(data, pos)[0]); pos = n
        elif op == 0x8A:  # LONG1
            n = need(1); size = data[pos]; pos = n
            n = need(size); stack.append(int.from_bytes(data[pos:n], "little", signed=True)); pos = n
        elif op == 0x8B:  # LONG4
            n = need(4); size = _unpack_i(data, pos)[0]; pos = n
            if size < 0:
                raise MalformedPickleError(f"{member}: malformed pickle: negative LONG4 length")
            n = need(size); stack.append(int.from_bytes(data[pos:n], "little", signed=True)); pos = n
        elif op == 0x43:  # SHORT_BINBYTES
            n = need(1); size = data[pos]; pos = n
            n = need(size); stack.append(bytes(data[pos:n])); pos = n
        elif op == 0x42:  # BINBYTES
            n = need(4); size = _unpack_I(data, pos)[0]; pos = n
            n = need(size); stack.append(bytes(data[pos:n])); pos = n
        elif op == 0x8E or op == 0x96 or op == 0x8D:  # BINBYTES8, BYTEARRAY8, BINUNICODE8
            n = need(8); size = _unpack_Q(data, pos)[0]; pos = n
            n = need(size)
            chunk = data[pos:n]
            stack.append(bytes(chunk) if op == 0x8E else bytearray(chunk) if op == 0x96
                         else chunk.decode("utf-8", "surrogatepass"))
            pos = n
        elif op == 0x55:  # SHORT_BINSTRING
            n = need(1); size = data[pos]; pos = n
            n = need(size); stack.append(data[pos:n].decode("utf-8")); pos = n
        elif op == 0x54:  # BINSTRING
            n = need(4); size = _unpack_i(data, pos)[0]; pos = n
            if size < 0:
                raise MalformedPickleError(f"{member}: malformed pickle: negative BINSTRING length")
            n = need(size); stack.append(data[pos:n].decode("utf-8")); pos = n
        elif op == 0x53:  # STRING
            line, pos = readline()
            if len(line) < 2 or line[0] != line[-1] or line[:1] not in (b"'", b'"'):
                raise MalformedPickleError(f"{member}: malformed pickle: STRING not quoted")
            stack.append(codecs.escape_decode(line[1:-1])[0].decode("utf-8"))
        elif op == 0x56:  # UNICODE
            line, pos = readline()
            stack.append(line.decode("raw-unicode-escape"))
        elif op == 0x49:  # INT
            line, pos = readline()
            stack.append(False if line == b"00" else True if line == b"01" else int(line))
        elif op == 0x4C:  # LONG
            line, pos = readline()
            stack.append(int(line[:-1] if line.endswith(b"L") else line))
        elif op == 0x46:  # FLOAT
            line, pos = readline()
            stack.append(float(line))
        elif op == 0x70:  # PUT
            line, pos = readline(); put(int(line), top())
        elif op == 0x67:  # GET
            line, pos = readline(); stack.append(get(int(line)))
        elif op == 0x50:  # PERSID
            line, pos = readline(); stack.append(persid(line.decode("ascii")))
        elif op == 0x30:  # POP
            if stack and (not marks or len(stack) > marks[-1]):
                stack.pop()
            else:
                pop_mark()
        elif op == 0x31:  # POP_MARK
            pop_mark()
        elif op == 0x32:  # DUP
            stack.append(top())
        elif op == 0x6C:  # LIST
            stack.append(pop_mark())
        elif op == 0x64:  # DICT
            items = pop_mark(); d: dict = {}
            if len(items) % 2:
                raise MalformedPickleError(f"{member}: malformed pickle: DICT with an odd number of items")
            for i in range(0, len(items), 2):
                setitem(d, items[i], items[i + 1])
            stack.append(d)
        elif op == 0x8F:  # EMPTY_SET
            stack.append(set())
        elif op == 0x90:  # ADDITEMS
            items = pop_mark(); add_to_set(top(), items)
        elif op == 0x91:  # FROZENSET
            members: set = set()
            add_to_set(members, pop_mark())
            stack.append(frozenset(members))
        elif op == 0x6F:  # OBJ
            items = pop_mark()
            if not items:
                raise MalformedPickleError(f"{member}: malformed pickle: OBJ without a class")
            stack.append(call(items[0], tuple(items[1:]), "OBJ"))
        elif op == 0x81:  # NEWOBJ
            args = pop(); cls = pop(); stack.append(call(cls, args, "NEWOBJ"))
        elif op == 0x92:  # NEWOBJ_EX
            kwargs = pop(); args = pop(); cls = pop()
            if kwargs:
                raise MalformedPickleError(f"{member}: malformed pickle: NEWOBJ_EX with keyword arguments")
            stack.append(call(cls, args, "NEWOBJ_EX"))
        elif op in (0x82, 0x83, 0x84):  # EXT1, EXT2, EXT4
            width = {0x82: 1, 0x83: 2, 0x84: 4}[op]
            n = need(width); code = int.from_bytes(data[pos:n], "little"); pos = n
            raise UnsafeCheckpointError(
                f"unsafe extension code {code} (EXT{width}) in {member}: it names a global through the "
                f"process-wide copyreg registry; refused, nothing was called",
                module="copyreg", name=f"extension {code}", member=member)
        elif op == 0x97 or op == 0x98:  # NEXT_BUFFER, READONLY_BUFFER
            raise MalformedPickleError(f"{member}: malformed pickle: out-of-band buffers are not allowed")
        else:
            raise MalformedPickleError(f"{member}: malformed pickle: unknown opcode 0x{op:02x} at offset {pos - 1:,}")


def _build(inst: Any, state: Any, member: str) -> None:
    # BUILD is where stock unpicklers call __setstate__; here only attribute dicts
    # on the project's own objects, and numpy's tuple states on its stand-ins, are accepted.
    if isinstance(inst, (NumpyDType, NumpyArray)):
        if not isinstance(state, tuple):
            raise MalformedPickleError(f"{member}: malformed pickle: BUILD with unsupported state for {inst!r}")
        try:
            inst.set_state(state)
        except AuditError as exc:
            raise MalformedPickleError(f"{member}: {exc}") from None
        return
    if isinstance(state, tuple) and len(state) == 2:  # (dict state, slot state)
        state = state[0] if state[1] is None else None
    if not isinstance(state, dict) and state is not None:
        raise MalformedPickleError(f"{member}: malformed pickle: BUILD with unsupported state for {type(inst).__name__}")
    if not state:
        return
    if isinstance(inst, OrderedDict):
        for k in state:
            if not isinstance(k, str):
                raise MalformedPickleError(f"{member}: malformed pickle: BUILD attribute name is not a string")
        inst.__dict__.update(state)
    elif isinstance(inst, TensorRef):
        inst.attrs.update(state)
    else:
        raise MalformedPickleError(f"{member}: malformed pickle: BUILD on a {type(inst).__name__}")
