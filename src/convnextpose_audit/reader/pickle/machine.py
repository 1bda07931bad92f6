"""The pickle machine: frames opcodes, keeps stack, marks and memo exactly as CPython's C unpickler.

What the machine builds is delegated to a *semantics* object: :class:`~.values.Values`
builds the object graph (allowlisted globals become stand-ins, others inert
records); :class:`~.shapes.Shapes` only tracks what a global name could be made
of, for the linear safety scan. Both see the same opcodes, the same framing and
the same stack errors, because all of that lives here, once.

The opcode loop is a dispatch table: ``HANDLERS[op](pos) -> pos`` with one small
handler per opcode family. Every global named by any opcode (GLOBAL, INST,
STACK_GLOBAL, EXT1/2/4) is recorded in :attr:`Machine.globals` *before* anything
else can fail at that opcode, so the safety verdict never depends on the rest of
the pickle being well-formed.
"""

from __future__ import annotations

from typing import Any, Callable

from ...errors import LimitExceeded, MalformedPickleError
from ...plain import Plain
from ..limits import Limits
from ..meter import Meter
from . import ops
from .ops import malformed

#: pickle protocols 0-2 spell Python 3 globals with Python 2 names; the C unpickler maps them
#: (``fix_imports``) while the protocol seen so far is below 3. Loaded lazily: stdlib data.
_COMPAT: tuple[dict, dict] | None = None


def _compat() -> tuple[dict, dict]:
    global _COMPAT
    if _COMPAT is None:
        import _compat_pickle

        _COMPAT = (_compat_pickle.NAME_MAPPING, _compat_pickle.IMPORT_MAPPING)
    return _COMPAT


class Truncated(MalformedPickleError):
    """The pickle ran past the end of the bytes given; a caller may retry with more."""


class GlobalRef(Plain):
    """One opcode that names a global: the dotted name looked up, the opcode, its byte offset."""

    __slots__ = ("module", "name", "opcode", "offset")  # a file may hold a million references

    def __init__(self, module: str, name: str, opcode: str, offset: int):
        self.module, self.name, self.opcode, self.offset = module, name, opcode, offset

    @property
    def qualname(self) -> str:
        """``module.name`` as the loader would import it."""
        return f"{self.module}.{self.name}"


class _Stop(Exception):
    def __init__(self, value: Any):
        self.value = value


#: Characters of a global's module or name kept in reports; no allowlisted name is longer, so a cut name
#: (which ends in "…") can never match the allowlist, and no name costs more than this to escape or print.
NAME_CHARS = 200


def escape(text: str | bytes | memoryview) -> str:
    """Printable form of a file-controlled name: undecodable bytes and control characters escaped, cut to
    :data:`NAME_CHARS` characters (then ending in "…"), so its cost never depends on the name's length."""
    cut = len(text) > NAME_CHARS
    if cut:
        text = text[:NAME_CHARS]
    if not isinstance(text, str):
        text = str(text, "utf-8", "backslashreplace")
    out = text if text.isprintable() else text.encode("unicode_escape").decode("ascii")
    return out + "…" if cut else out


class Machine:
    """Runs the pickles of one byte string. Construct once per stream; call :meth:`load` per pickle.

    ``member`` labels errors (``file: data.pkl``). ``module_mapping`` renames modules
    before lookup, as torch's zip loader does (``torch.tensor`` -> ``torch._tensor``).
    ``meter`` is charged one element per opcode (each opcode builds at most one value);
    the shape-only safety scan passes None, since it builds nothing.
    """

    def __init__(self, data: bytes, *, member: str, limits: Limits, meter: Meter | None, semantics,
                 module_mapping: dict[str, str] | None = None):
        self.data = data
        self.member = member
        self.limits = limits
        self.meter = meter
        self.sem = semantics
        self.module_mapping = module_mapping or {}
        self.globals: list[GlobalRef] = []
        self.frames: list[tuple[int, int]] = []  #: (start, end) of every FRAME seen, for callers' framing rules
        self.proto = 0
        self.trace: list[int] | None = None  #: when a list, every opcode's offset is appended (framing checks)
        self.stack: list = []
        self.marks: list[int] = []
        self.memo: dict = {}
        self._memo_charged = 0
        self._names: dict[str, str] = {}
        self._handlers = self._build_handlers()

    # -- running ----------------------------------------------------------------------------------
    def load(self, pos: int = 0) -> tuple[Any, int]:
        """Run one pickle starting at ``pos``; return ``(object, offset just past STOP)``.

        Raises :class:`Truncated` if the bytes end first, :class:`MalformedPickleError`
        where the C unpickler would raise, :class:`LimitExceeded` past a bound.
        """
        self.stack.clear()
        self.marks.clear()
        self.memo.clear()
        self._memo_charged = 0
        self.proto = 0
        data, handlers, end, trace = self.data, self._handlers, len(self.data), self.trace
        seen = bytearray(256)  # which opcodes ran (a loader supporting fewer, like weights_only, is judged on them)
        ops_done = 0
        try:
            while True:
                if pos >= end:
                    raise Truncated(f"{self.member}: pickle truncated (no STOP before offset {end:,})")
                if trace is not None:
                    trace.append(pos)
                op = data[pos]
                seen[op] = 1
                pos = handlers[op](pos + 1)
                ops_done += 1
                if not ops_done & 4095:  # every step grows stack/memo by at most one: check in batches
                    self._checkpoint(ops_done)
        except _Stop as stop:
            if ops_done > self.limits.max_opcodes:
                raise LimitExceeded(f"{self.member}: more than max_opcodes={self.limits.max_opcodes:,} opcodes") from None
            if self.meter is not None:
                self.meter.charge_elements((ops_done & 4095) + self._memo_growth(), f"{self.member}: pickle")
                self.meter.note_opcodes(seen)
            return stop.value, self._stop_pos
        except RecursionError:
            raise LimitExceeded(f"{self.member}: pickle nested too deeply") from None
        except MemoryError:
            raise LimitExceeded(f"{self.member}: pickle needs more memory than available") from None

    def _checkpoint(self, ops_done: int) -> None:
        lim = self.limits
        if ops_done > lim.max_opcodes:
            raise LimitExceeded(f"{self.member}: more than max_opcodes={lim.max_opcodes:,} opcodes")
        if len(self.stack) > lim.max_stack or len(self.marks) > lim.max_stack:
            raise LimitExceeded(f"{self.member}: stack exceeds max_stack={lim.max_stack:,}")
        if len(self.memo) > lim.max_memo:
            raise LimitExceeded(f"{self.member}: memo exceeds max_memo={lim.max_memo:,}")
        if self.meter is not None:
            self.meter.charge_elements(4096 + self._memo_growth(), f"{self.member}: pickle")
            self.meter.tick(self.member)

    def _memo_growth(self) -> int:
        # A memo entry holds a key and a table slot besides the value its opcode built: one more element each.
        grown = len(self.memo) - self._memo_charged
        self._memo_charged = len(self.memo)
        return max(grown, 0)

    # -- globals ----------------------------------------------------------------------------------
    def lookup(self, module: str, name: str, opcode: str, offset: int) -> Any:
        """Record a global reference, as the loader would spell it, and return the semantics' value."""
        if self.proto < 3:
            names, modules = _compat()
            if (module, name) in names:
                module, name = names[(module, name)]
            elif module in modules:
                module = modules[module]
        module = self.module_mapping.get(module, module)
        self.globals.append(GlobalRef(self._escaped(module), self._escaped(name), opcode, offset))
        return self.sem.resolve(module, name)

    def _escaped(self, text: str) -> str:
        # The same few names recur once per tensor or record: escape each once and share the result.
        out = self._names.get(text)
        if out is None:
            out = self._names[text] = escape(text)
        return out

    # -- the dispatch table -----------------------------------------------------------------------
    def _build_handlers(self) -> list[Callable[[int], int]]:
        # Closures over the machine's state keep the hot loop free of attribute lookups.
        data, member, sem = self.data, self.member, self.sem
        view = memoryview(data)
        text = sem.text
        stack, marks, memo = self.stack, self.marks, self.memo
        end = len(data)
        push = stack.append
        u32 = ops.u32

        def need(pos: int, n: int) -> int:
            if n < 0 or pos + n > end:
                raise Truncated(f"{member}: pickle truncated (needs {n:,} bytes at offset {pos:,})")
            return pos + n

        def part(a: int, b: int) -> bytes | memoryview:
            # Short arguments are copied (fast); a long one is a view, so a huge string costs its value only.
            return data[a:b] if b - a <= 4096 else view[a:b]

        def readline(pos: int) -> tuple[bytes | memoryview, int]:
            nl = data.find(b"\n", pos)
            if nl < 0:
                raise Truncated(f"{member}: pickle truncated inside a text argument at offset {pos:,}")
            return part(pos, nl + 1), nl + 1

        def underflow() -> MalformedPickleError:
            return malformed(member, "unexpected MARK found" if marks else "unpickling stack underflow")

        def pop() -> Any:
            if len(stack) <= (marks[-1] if marks else 0):
                raise underflow()
            return stack.pop()

        def top() -> Any:
            if len(stack) <= (marks[-1] if marks else 0):
                raise underflow()
            return stack[-1]

        def pop_mark() -> list:
            if not marks:
                raise malformed(member, "could not find MARK")
            k = marks.pop()
            items = stack[k:]
            del stack[k:]
            return items

        def target_below(k: int) -> Any:
            # SETITEMS/APPENDS/ADDITEMS act on the value just below the popped MARK, which must lie above the
            # enclosing mark ("x <= fence" is an underflow in C).
            if k <= (marks[-1] if marks else 0):
                raise underflow()
            return stack[k - 1]

        # -- constants and scalars ----------------------------------------------------------------
        def const(value: Any) -> Callable[[int], int]:
            def h(pos: int) -> int:
                push(value)
                return pos
            return h

        def empty(factory: Callable[[], Any]) -> Callable[[int], int]:
            def h(pos: int) -> int:
                push(factory())
                return pos
            return h

        def binint(pos): n = need(pos, 4); push(ops.i32(data, pos)[0]); return n
        def binint2(pos): n = need(pos, 2); push(ops.u16(data, pos)[0]); return n
        def binfloat(pos): n = need(pos, 8); push(ops.f64be(data, pos)[0]); return n

        def long1(pos):
            n = need(pos, 1); size = data[pos]; m = need(n, size)
            push(int.from_bytes(data[n:m], "little", signed=True)); return m

        def long4(pos):
            n = need(pos, 4); size = ops.i32(data, pos)[0]
            if size < 0:
                raise malformed(member, "LONG pickle has negative byte count")
            m = need(n, size); sem.charge_int(size)
            push(int.from_bytes(part(n, m), "little", signed=True)); return m

        def int_(pos):
            line, pos = readline(pos); _line_ok(line)
            value, platform_dependent = ops.parse_int(line, member)
            if platform_dependent:
                sem.ambiguous(f"INT {bytes(line[:40])!r} reads differently where C long has 32 bits")
            push(value)
            return pos
        def long_(pos): line, pos = readline(pos); _line_ok(line); sem.charge_int(len(line)); push(ops.parse_long(line, member)); return pos
        def float_(pos): line, pos = readline(pos); _line_ok(line); push(ops.parse_float(line, member)); return pos

        def _line_ok(line: bytes, shortest: int = 2) -> None:
            if len(line) < shortest:
                raise malformed(member, "pickle data was truncated")

        # -- text and bytes -------------------------------------------------------------------------
        def counted(width: int, unpack, kind: str, signed_error: str | None = None) -> Callable[[int], int]:
            def h(pos: int) -> int:
                n = need(pos, width)
                size = data[pos] if unpack is None else unpack(data, pos)[0]
                if size < 0:
                    if signed_error:
                        raise malformed(member, signed_error)
                    raise Truncated(f"{member}: pickle truncated (negative length)")
                m = need(n, size)
                push(sem.text(kind, part(n, m)))
                return m
            return h

        def binunicode(pos):
            if pos + 4 > end:
                raise Truncated(f"{member}: pickle truncated at offset {pos:,}")
            m = pos + 4 + u32(data, pos)[0]
            if m > end:
                raise Truncated(f"{member}: pickle truncated (string past offset {end:,})")
            push(text("utf8", part(pos + 4, m)))
            return m

        def binint1(pos):
            if pos >= end:
                raise Truncated(f"{member}: pickle truncated at offset {pos:,}")
            push(data[pos])
            return pos + 1

        def string(pos): line, pos = readline(pos); _line_ok(line); push(sem.text("str8", ops.parse_string(line, member))); return pos
        def unicode(pos): line, pos = readline(pos); _line_ok(line, 1); push(sem.text("raw-unicode", line[:-1])); return pos

        # -- memo ---------------------------------------------------------------------------------------
        # The memo opcodes are half of a torch pickle: their checks are written out inline.
        def binget(pos):
            if pos >= end:
                raise Truncated(f"{member}: pickle truncated at offset {pos:,}")
            try:
                push(memo[data[pos]])
            except KeyError:
                raise malformed(member, f"memo value not found at index {data[pos]}") from None
            return pos + 1

        def long_binget(pos):
            n = need(pos, 4)
            key = u32(data, pos)[0]
            try:
                push(memo[key])
            except KeyError:
                raise malformed(member, f"memo value not found at index {key}") from None
            return n

        def get(pos): line, pos = readline(pos); _line_ok(line); push(_memo_get(ops.parse_memo_key(line, member, "GET"))); return pos

        def _memo_get(key: int) -> Any:
            try:
                return memo[key]
            except KeyError:
                raise malformed(member, f"memo value not found at index {key}") from None

        def binput(pos):
            if pos >= end:
                raise Truncated(f"{member}: pickle truncated at offset {pos:,}")
            if len(stack) <= (marks[-1] if marks else 0):
                raise underflow()
            memo[data[pos]] = stack[-1]
            return pos + 1

        def long_binput(pos):
            if pos + 4 > end:
                raise Truncated(f"{member}: pickle truncated at offset {pos:,}")
            if len(stack) <= (marks[-1] if marks else 0):
                raise underflow()
            memo[u32(data, pos)[0]] = stack[-1]
            return pos + 4

        def put(pos):
            line, pos = readline(pos); _line_ok(line)
            value = top()
            key = ops.parse_memo_key(line, member, "PUT")
            if key < 0:
                raise malformed(member, "negative PUT argument")
            memo[key] = value
            return pos

        def memoize(pos): memo[len(memo)] = top(); return pos

        # -- stack and marks ----------------------------------------------------------------------------
        def mark(pos): marks.append(len(stack)); return pos
        def dup(pos): push(top()); return pos
        def pop_mark_(pos): pop_mark(); return pos

        def pop_(pos):
            # C: an item above the top mark is popped; with none, the mark itself goes.
            if len(stack) > (marks[-1] if marks else 0):
                stack.pop()
            elif marks:
                marks.pop()
            else:
                raise underflow()
            return pos

        def stop(pos):
            self._stop_pos = pos
            raise _Stop(pop())

        def proto(pos):
            n = need(pos, 1)
            if data[pos] > ops.HIGHEST_PROTOCOL:
                raise malformed(member, f"unsupported pickle protocol {data[pos]}")
            self.proto = data[pos]
            return n

        def frame(pos):
            n = need(pos, 8)
            size = ops.u64(data, pos)[0]
            if size > ops.SSIZE_MAX:
                raise malformed(member, "FRAME length exceeds the maximum")
            need(n, size)  # C reads the whole frame before going on: a short one is truncated
            self.frames.append((n, n + size))
            return n

        # -- containers ---------------------------------------------------------------------------------
        def tuple_(pos): push(sem.make_tuple(pop_mark())); return pos
        def tuple1(pos): a = pop(); push(sem.make_tuple([a])); return pos
        def tuple2(pos): _need_items(2); b = stack.pop(); a = stack.pop(); push(sem.make_tuple([a, b])); return pos

        def tuple3(pos):
            _need_items(3); c = stack.pop(); b = stack.pop(); a = stack.pop()
            push(sem.make_tuple([a, b, c])); return pos

        def _need_items(n: int) -> None:
            if len(stack) - n < (marks[-1] if marks else 0):
                raise underflow()

        def list_(pos): push(sem.make_list(pop_mark())); return pos
        def dict_(pos):
            items = pop_mark()
            if len(items) % 2:
                raise malformed(member, "odd number of items for DICT")
            push(sem.make_dict(items))
            return pos
        def frozenset_(pos): push(sem.make_frozenset(pop_mark())); return pos

        def append(pos):
            _need_items(2)
            value = stack.pop()
            sem.appends(stack[-1], [value])
            return pos

        def appends(pos):
            k = marks[-1] if marks else -1
            items = pop_mark()
            target = target_below(k)
            if items:  # C returns before looking at the target when there is nothing to add
                sem.appends(target, items)
            return pos

        def setitem(pos):
            _need_items(3)
            value = stack.pop(); key = stack.pop()
            sem.setitems(stack[-1], [key, value])
            return pos

        def setitems(pos):
            k = marks[-1] if marks else -1
            items = pop_mark()
            target = target_below(k)
            if items:
                if len(items) % 2:
                    raise malformed(member, "odd number of items for SETITEMS")
                sem.setitems(target, items)
            return pos

        def additems(pos):
            k = marks[-1] if marks else -1
            items = pop_mark()
            target = target_below(k)
            if items:
                sem.additems(target, items)
            return pos

        # -- globals and calls --------------------------------------------------------------------------
        def global_line(pos: int, ascii_only: bool, opcode: str, start: int) -> tuple[Any, int]:
            mod_line, pos = readline(pos); _line_ok(mod_line)
            name_line, pos = readline(pos); _line_ok(name_line)
            try:
                module = ops.decode_name(mod_line[:-1], member, ascii_only)
                name = ops.decode_name(name_line[:-1], member, ascii_only)
            except MalformedPickleError:
                # The C unpickler stops here without importing; the name is still reported, escaped.
                self.globals.append(GlobalRef(escape(mod_line[:-1]), escape(name_line[:-1]), opcode, start))
                raise
            return self.lookup(module, name, opcode, start), pos

        def global_(pos):
            value, pos = global_line(pos, False, "GLOBAL", pos - 1)
            push(value)
            return pos

        def inst(pos):
            start = pos - 1
            if not marks:  # C looks for the MARK before it reads the names
                raise malformed(member, "could not find MARK")
            cls, pos = global_line(pos, True, "INST", start)
            push(sem.call(cls, tuple(pop_mark()), "INST"))
            return pos

        def obj(pos):
            if not marks:
                raise malformed(member, "could not find MARK")
            if len(stack) - marks[-1] < 1:
                raise underflow()
            items = pop_mark()
            push(sem.call(items[0], tuple(items[1:]), "OBJ"))
            return pos

        def stack_global(pos):
            name = pop(); module = pop()
            push(sem.stack_global(self, module, name, pos - 1))
            return pos

        def ext(width: int) -> Callable[[int], int]:
            def h(pos: int) -> int:
                n = need(pos, width)
                code = int.from_bytes(data[pos:n], "little", signed=width == 4)
                if code <= 0:
                    raise malformed(member, "EXT specifies code <= 0")
                # copyreg's extension registry maps codes to globals process-wide; whatever it names is code.
                push(self.lookup("copyreg", f"<extension {code}>", f"EXT{width}", pos - 1))
                return n
            return h

        def reduce(pos): args = pop(); func = pop(); push(sem.call(func, args, "REDUCE")); return pos
        def newobj(pos): args = pop(); cls = pop(); push(sem.newobj(cls, args, None, "NEWOBJ")); return pos

        def newobj_ex(pos):
            kwargs = pop(); args = pop(); cls = pop()
            push(sem.newobj(cls, args, kwargs, "NEWOBJ_EX"))
            return pos

        def build(pos):
            _need_items(2)
            state = stack.pop()
            sem.build(stack[-1], state)
            return pos

        def persid(pos):
            line, pos = readline(pos); _line_ok(line, 1)
            try:
                pid = str(line[:-1], "ascii")
            except UnicodeDecodeError:
                raise malformed(member, "persistent id is not ASCII") from None
            push(sem.persistent(pid))
            return pos

        def binpersid(pos): push(sem.persistent(pop())); return pos

        def next_buffer(pos):
            raise malformed(member, "pickle stream refers to out-of-band data but no buffers argument was given")

        def readonly_buffer(pos): sem.readonly(top()); return pos

        def unknown(pos):
            raise malformed(member, f"invalid load key 0x{data[pos - 1]:02x} at offset {pos - 1:,}")

        table: list[Callable[[int], int]] = [unknown] * 256
        for code, handler in {
            ops.MARK: mark, ops.STOP: stop, ops.POP: pop_, ops.POP_MARK: pop_mark_, ops.DUP: dup,
            ops.FLOAT: float_, ops.INT: int_, ops.BININT: binint, ops.BININT1: binint1, ops.LONG: long_,
            ops.BININT2: binint2, ops.NONE: const(None), ops.PERSID: persid, ops.BINPERSID: binpersid,
            ops.REDUCE: reduce, ops.STRING: string,
            ops.BINSTRING: counted(4, ops.i32, "str8", "BINSTRING pickle has negative byte count"),
            ops.SHORT_BINSTRING: counted(1, None, "str8"), ops.UNICODE: unicode,
            ops.BINUNICODE: binunicode, ops.APPEND: append, ops.BUILD: build,
            ops.GLOBAL: global_, ops.DICT: dict_, ops.EMPTY_DICT: empty(sem.empty_dict), ops.APPENDS: appends,
            ops.GET: get, ops.BINGET: binget, ops.INST: inst, ops.LONG_BINGET: long_binget, ops.LIST: list_,
            ops.EMPTY_LIST: empty(sem.empty_list), ops.OBJ: obj, ops.PUT: put, ops.BINPUT: binput,
            ops.LONG_BINPUT: long_binput, ops.SETITEM: setitem, ops.TUPLE: tuple_,
            ops.EMPTY_TUPLE: const(()), ops.SETITEMS: setitems, ops.BINFLOAT: binfloat, ops.PROTO: proto,
            ops.NEWOBJ: newobj, ops.EXT1: ext(1), ops.EXT2: ext(2), ops.EXT4: ext(4), ops.TUPLE1: tuple1,
            ops.TUPLE2: tuple2, ops.TUPLE3: tuple3, ops.NEWTRUE: const(True), ops.NEWFALSE: const(False),
            ops.LONG1: long1, ops.LONG4: long4, ops.BINBYTES: counted(4, ops.u32, "bytes"),
            ops.SHORT_BINBYTES: counted(1, None, "bytes"), ops.SHORT_BINUNICODE: counted(1, None, "utf8"),
            ops.BINUNICODE8: counted(8, ops.u64, "utf8"), ops.BINBYTES8: counted(8, ops.u64, "bytes"),
            ops.EMPTY_SET: empty(sem.empty_set), ops.ADDITEMS: additems, ops.FROZENSET: frozenset_,
            ops.NEWOBJ_EX: newobj_ex, ops.STACK_GLOBAL: stack_global, ops.MEMOIZE: memoize, ops.FRAME: frame,
            ops.BYTEARRAY8: counted(8, ops.u64, "bytearray"), ops.NEXT_BUFFER: next_buffer,
            ops.READONLY_BUFFER: readonly_buffer,
        }.items():
            table[code] = handler
        return table
