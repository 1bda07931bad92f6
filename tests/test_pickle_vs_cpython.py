"""The pickle machine against CPython's C unpickler, which torch.load(weights_only=False) runs.

No torch here. The C unpickler runs with a ``find_class`` that records each global
and hands back an inert recording class (so nothing is imported or executed), and
a ``persistent_load`` that returns a marker. Properties, over generated pickles:

1. every global the C unpickler looks up, the safety scan named too;
2. when the C unpickler completes, the scan ends at the same byte: it never stops
   earlier. (When C fails, the scan usually fails at the same opcode; where C fails
   only because of what a global's value turns out to be at run time, the scan,
   which cannot know, goes on: the safe side.)
3. when both complete, the structured read builds the same value.

The C unpickler is the ground truth: expected values never come from our code.
"""

from __future__ import annotations

import io
import os
import pickle
import random
import struct
from collections import OrderedDict

import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from convnextpose_audit.reader.limits import Limits
from convnextpose_audit.reader.meter import Meter
from convnextpose_audit.reader.pickle import Global, Instance, read_pickle, scan_pickle
from convnextpose_audit.reader.pickle.machine import escape

pytestmark = pytest.mark.security  # builds hostile inputs by hand: never skipped
from convnextpose_audit.reader.safe_globals import SafeGlobal

LIMITS = Limits()
EXAMPLES = int(os.environ.get("CNXP_PICKLE_EXAMPLES", "400"))
#: Harmless builtins both sides build for real (on our side: the allowlist's stand-ins).
REAL = {("builtins", "set"): set, ("builtins", "frozenset"): frozenset, ("builtins", "bytearray"): bytearray,
        ("builtins", "complex"): complex, ("_codecs", "encode"): lambda s, e="utf-8": s.encode(e),
        ("collections", "OrderedDict"): OrderedDict}


def py3(module: str, name: str) -> tuple[str, str]:
    """Python 2 spellings as Python 3 names: an overridden find_class receives them unmapped."""
    import _compat_pickle

    if (module, name) in _compat_pickle.NAME_MAPPING:
        return _compat_pickle.NAME_MAPPING[(module, name)]
    return _compat_pickle.IMPORT_MAPPING.get(module, module), name


class PID:
    """What both sides' persistent_load return. The scan cannot know what a loader's persistent objects
    accept, so it lets them take anything (scanning on is the safe side); this marker does the same."""

    def __init__(self, pid):
        self.pid = pid

    def __call__(self, *args):
        return PID(args)

    def __setstate__(self, state):
        pass

    def __setitem__(self, key, value):
        pass

    def extend(self, values):
        pass

    def add(self, value):
        pass


class _Either:
    """A method that works on the class and on its instances: the scan lets a global's value be anything,
    so a stub must take BUILD, APPEND(S), ADDITEMS as a class and as an instance (recording on instances)."""

    def __init__(self, record):
        self.record = record

    def __get__(self, obj, owner):
        return lambda *args: None if obj is None else self.record(obj, *args)


class _StubMeta(type):
    def __setitem__(cls, key, value):  # SETITEM on the class itself
        pass


def _stub_class(module: str, name: str):
    class Stub(metaclass=_StubMeta):
        """Records what the C unpickler does to an instance; runs nothing."""

        qual = f"{module}.{name}"

        def __new__(cls, *args, **kwargs):
            obj = object.__new__(cls)
            obj.made = ("NEW", args, kwargs)
            obj.state = None
            obj.items, obj.appended, obj.added = [], [], []
            return obj

        def __init__(self, *args, **kwargs):
            self.made = ("CALL", args, kwargs)

        __setstate__ = _Either(lambda self, state: setattr(self, "state", state))
        extend = _Either(lambda self, values: self.appended.extend(values))
        add = _Either(lambda self, value: self.added.append(value))

        def __setitem__(self, key, value):
            self.items.append((key, value))

    return Stub


class LookedUp(str):
    """A global the C unpickler looked up, as reports print it (``module.name``, escaped); kept as its two parts,
    since a name may itself contain dots."""

    def __new__(cls, module: str, name: str):
        out = super().__new__(cls, f"{escape(module)}.{escape(name)}")
        out.parts = (module, name)
        return out

    def spellings(self) -> set[str]:
        """As written, and as Python 3 names (protocols 0-2 map Python 2 names before the lookup)."""
        module, name = py3(*self.parts)
        return {str(self), f"{escape(module)}.{escape(name)}"}


class RecordingUnpickler(pickle.Unpickler):
    """CPython's C unpickler with every global replaced by a recording stub class.

    ``permissive``: every global is a stub that accepts any call, so the run shows
    the pickle's structure alone; otherwise the harmless builtins in REAL are real.
    """

    def __init__(self, data: bytes, permissive: bool = False):
        self.source = io.BytesIO(data)
        super().__init__(self.source, encoding="utf-8")
        self.looked_up: list[str] = []
        self.permissive = permissive

    def find_class(self, module, name):
        self.looked_up.append(LookedUp(module, name))
        if not self.permissive and py3(module, name) in REAL:
            # Harmless builtins: CPython's own lookup decides, mapping Python 2 names only under protocol < 3.
            return super().find_class(module, name)
        return _stub_class(*py3(module, name))

    def persistent_load(self, pid):
        return PID(pid)


def c_unpickle(data: bytes, permissive: bool = False):
    """``(value, end offset or None, globals looked up)`` from the C unpickler."""
    u = RecordingUnpickler(data, permissive)
    try:
        value = u.load()
    except Exception:  # noqa: BLE001 - any failure of the C unpickler is the ground truth here
        return None, None, u.looked_up
    return value, u.source.tell(), u.looked_up


def canon(value, seen=None):
    """A comparable form; C stubs and our records map to the same shape; shared objects by first path."""
    seen = {} if seen is None else seen
    if id(value) in seen:
        return ("ref", seen[id(value)])
    kind = type(value)
    if value is None or kind in (bool, int, float, str, bytes, complex):
        return (kind.__name__, repr(value))
    seen[id(value)] = len(seen)
    if isinstance(value, SafeGlobal):  # an allowlisted global as a value: its stand-in names it
        return ("global", value.qualname)
    real = next((f"{m}.{n}" for (m, n), obj in REAL.items() if obj is value), None)
    if real is not None:
        return ("global", real)
    if isinstance(value, PID):
        return ("pid", canon(value.pid, seen))
    if isinstance(value, Global):
        return ("class", ".".join(py3(value.module, value.name)))
    if isinstance(value, type) and hasattr(value, "qual"):
        return ("class", value.qual)
    if isinstance(value, Instance):
        return ("obj", ".".join(py3(*value.qualname.rsplit(".", 1))), value.how in ("NEWOBJ", "NEWOBJ_EX"), canon(value.args, seen),
                canon(value.kwargs, seen), canon(value.state, seen), canon([list(p) for p in value.items], seen),
                canon(value.appended, seen), canon(value.added, seen))
    if hasattr(type(value), "qual"):
        how, args, kwargs = value.made
        return ("obj", type(value).qual, how == "NEW", canon(args, seen), canon(kwargs, seen),
                canon(value.state, seen), canon([list(p) for p in value.items], seen), canon(value.appended, seen),
                canon(value.added, seen))
    if isinstance(value, OrderedDict):
        return ("odict", [(canon(k, seen), canon(v, seen)) for k, v in value.items()], canon(vars(value), seen))
    if isinstance(value, dict):
        return ("dict", [(canon(k, seen), canon(v, seen)) for k, v in value.items()])
    if isinstance(value, (list, tuple)):
        return (kind.__name__, [canon(v, seen) for v in value])
    if isinstance(value, (set, frozenset)):
        return (kind.__name__, sorted(repr(canon(v, {})) for v in value))
    if isinstance(value, bytearray):
        return ("bytearray", bytes(value))
    return ("other", kind.__name__)


def ours(data: bytes):
    result = read_pickle(data, member="t", limits=LIMITS, meter=Meter(LIMITS, "t"), persistent_load=PID)
    scan = scan_pickle(data, member="t", limits=LIMITS, persistent=True)
    return result, scan


def c_position(scan) -> int | None:
    """Where the C unpickler leaves its file after the pickle the scan read: past STOP, or past the frame holding it.

    C reads a whole FRAME when it meets one, so a frame that runs past STOP moves the file position
    to the frame's end (the readers refuse such streams as ambiguous: ``frame_past_stop``).
    """
    if scan.end is None:
        return None
    return max([scan.end] + [end for start, end in scan.frames if start < scan.end])


def check(data: bytes) -> None:
    """The three properties of the module docstring, for one pickle."""
    value, end, _ = c_unpickle(data)
    # What a global's call does at load time is beyond any static scan; it assumes every call succeeds, which is
    # the safe side. So its stopping point is compared with C running the same bytes with permissive stubs.
    _, structural_end, looked_up = c_unpickle(data, permissive=True)
    result, scan = ours(data)
    if scan.ambiguous:
        # A FRAME splits an opcode: C reads a stream (this harness) and a peekable file differently. The scan
        # names the globals of both readings and the structured read refuses; only the first property applies.
        assert result.error is not None
        named = {g.qualname for g in scan.globals}
        assert not [g for g in looked_up if not g.spellings() & named]
        return
    named = {g.qualname for g in scan.globals}
    missing = [g for g in looked_up if not g.spellings() & named]
    assert not missing, f"the C unpickler looked up {missing}, the scan did not name them"
    if any(g.opcode.startswith("EXT") for g in scan.globals):
        # Deliberate: an extension code names a global through copyreg's process-wide registry. Unregistered (as
        # here) the C unpickler stops; registered, it goes on. The scan refuses the code and goes on, so it never
        # misses what a registered code would lead to; the file is UNSAFE either way.
        return
    if structural_end is None:
        return  # property 2 only binds when C completes (see the module docstring)
    if scan.end is not None and any(s < scan.end < e == structural_end for s, e in scan.frames):
        # STOP inside a frame: a stream has read the whole frame, so C's position is the frame's end. Readers
        # of pickles that follow refuse this (reader/stream.py frame_past_stop); the scan itself agrees.
        return
    assert c_position(scan) == structural_end, f"C ends at {structural_end}, the scan at {scan.end} ({scan.error})"
    if end is not None and result.error is None:
        assert canon(result.obj) == canon(value)


# -- generated pickles -----------------------------------------------------------------------------------------------
_NAMES = ["mod_a", "pkg.sub", "x"]
_IDENTS = ["Thing", "make", "y"]


def _text_int(r: random.Random) -> bytes:
    return r.choice([b"0", b"1", b"00", b"01", b"+0", b" 1", b"1 ", b"010", b"0x1f", b"-0X10", b"1_0", b"08", b"12\x00z",
                     b"99999999999999999999", b"0777777777777777777777", b"abc", b"", b"-", b"0x", b"1e3"])


def _op(r: random.Random) -> bytes:
    c = r.randrange(40)
    s = r.choice(["k", "v", "data", "ü", "os", "system"]).encode()
    return [
        b"(", b")", b"]", b"}", b"\x8f", b"N", b"\x88", b"\x89", b"t", b"\x85", b"\x86", b"\x87", b"l", b"d", b"\x91",
        b"a", b"e", b"s", b"u", b"\x90", b"0", b"1", b"2", b"R", b"\x81", b"b", b"\x93", b"Q",
        b"K" + bytes([r.randrange(256)]), b"J" + struct.pack("<i", r.randrange(-9, 9)),
        b"X" + struct.pack("<I", len(s)) + s, b"\x8c" + bytes([len(s)]) + s, b"U" + bytes([len(s)]) + s,
        b"q" + bytes([r.randrange(4)]), b"h" + bytes([r.randrange(4)]), b"\x94",
        b"I" + _text_int(r) + b"\n", b"L" + _text_int(r) + r.choice([b"L", b""]) + b"\n",
        b"c" + r.choice(_NAMES).encode() + b"\n" + r.choice(_IDENTS).encode() + b"\n",
        r.choice([b"F1.5\n", b"Finf\n", b"F1e500\n", b"F 1\n", b"F1_0\n", b"S'a\\x41'\n", b"Sabc\n", b"Vx\\u0041\n",
                  b"p1\n", b"g1\n", b"p-1\n", b"g+1\n", b"Pid\n", b"i" + r.choice(_NAMES).encode() + b"\nT\n",
                  b"o", b"\x95\x02\x00\x00\x00\x00\x00\x00\x00", b"\x80\x02", b"\x80\x04", b"\x82\x01", b"\x8a\x01\xff",
                  b"C\x02ab", b"\x96\x01\x00\x00\x00\x00\x00\x00\x00z", b"\x98", b"\x92", b"\x97"]),
    ][c]


@st.composite
def generated(draw) -> bytes:
    r = random.Random(draw(st.integers(0, 2**32 - 1)))
    body = b"".join(_op(r) for _ in range(r.randrange(1, 40)))
    return (b"\x80" + bytes([r.randrange(6)]) if r.random() < 0.7 else b"") + body + b"."


@st.composite
def structures(draw):
    atoms = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(allow_nan=False),
                      st.text(max_size=8), st.binary(max_size=8))
    value = draw(st.recursive(atoms, lambda kids: st.one_of(
        st.lists(kids, max_size=4), st.tuples(kids, kids), st.dictionaries(st.text(max_size=4), kids, max_size=4),
        st.frozensets(st.integers(-5, 5), max_size=4)), max_leaves=20))
    shared = [value, value] if draw(st.booleans()) else value  # memo references
    return pickle.dumps(shared, protocol=draw(st.integers(0, 5)))


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(generated())
def test_generated_opcode_streams_agree_with_cpython(data):
    note(f"checked bytes: {data!r}")
    check(data)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(structures())
def test_pickled_structures_read_like_cpython(data):
    value, end, _ = c_unpickle(data)
    result, scan = ours(data)
    assert result.error is None, result.error
    assert canon(result.obj) == canon(value)
    assert scan.end == end == result.end


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(structures(), st.data())
def test_mutated_pickles_agree_with_cpython(data, draw):
    buf = bytearray(data)
    for _ in range(draw.draw(st.integers(1, 3))):
        at = draw.draw(st.integers(0, max(0, len(buf) - 1)))
        buf[at:at + 1] = bytes([draw.draw(st.integers(0, 255))]) if buf else b""
    note(f"checked bytes: {bytes(buf)!r}")
    check(bytes(buf))


@pytest.mark.parametrize("text, value", [
    (b"I010\n.", 8), (b"I0x10\n.", 16), (b"I00\n.", False), (b"I01\n.", True), (b"I+0\n.", False), (b"I1 \n.", 1),
    (b"I1_0\n.", 10), (b"I12\x00xy\n.", 12), (b"I\x000\n.", False), (b"I\x00\n.", 0), (b"L0x10L\n.", 16), (b"Finf\n.", float("inf")),
])
def test_text_numbers_parse_as_the_c_unpickler_parses_them(text, value):
    assert pickle.loads(text) == value and type(pickle.loads(text)) is type(value)  # the ground truth first
    result, _ = ours(text)
    assert result.obj == value and type(result.obj) is type(value)


@pytest.mark.parametrize("text", [b"L010\n.", b"F1e500\n.", b"F 1\n.", b"F1_0\n.", b"I12", b"Sabc\n."])
def test_text_numbers_the_c_unpickler_refuses_are_refused(text):
    with pytest.raises(Exception):
        pickle.loads(text)
    result, scan = ours(text)
    assert result.error is not None and scan.end is None


def test_protocol_two_names_are_looked_up_as_python_3_names():
    # Under protocol < 3 the C unpickler maps Python 2 names before importing (fix_imports).
    data = b"\x80\x02c__builtin__\nset\n]\x85R."
    assert pickle.loads(data) == set()  # builtins.set: harmless ground truth
    result, _ = ours(data)
    assert [g.qualname for g in result.globals] == ["builtins.set"] and result.obj == set()
    data4 = b"\x80\x04c__builtin__\nset\n]\x85R."  # protocol 4: no mapping; the module does not exist
    with pytest.raises(ModuleNotFoundError):
        pickle.loads(data4)
    result, _ = ours(data4)
    assert [g.qualname for g in result.globals] == ["__builtin__.set"]


@pytest.mark.parametrize("data", [
    # Found by the long run: BUILD with a None state is a no-op on any object, so C goes on to the global.
    b"\x80\x03\x8c\x06systemNbcx\nThing\n.",
    b"\x80\x02C\x01a\x96\x01\x00\x00\x00\x00\x00\x00\x00z(K\x01e" + b"cx\nThing\n.",  # bytearray.extend
])
def test_scan_does_not_stop_before_the_c_unpickler(data):
    check(data)


def test_a_frame_that_splits_an_opcode_is_read_both_ways():
    # Found by the long run. The C unpickler reading a stream drops the rest of a frame when an argument runs
    # past it (BININT's four bytes come from after the frame here); a peekable file would read straight on.
    data = b"\x80\x01cpkg.sub\ny\nK%\x95\x02\x00\x00\x00\x00\x00\x00\x00J\xfc\xff\xff\xff\x91."
    value, end, _ = c_unpickle(data)
    assert (value, end) == (-1845493761, 31)  # ground truth: C took 0xff 0xff 0xff 0x91 as the int
    result, scan = ours(data)
    assert scan.ambiguous and "FRAME" in str(result.error)
    # Frame "NJ\x00": BININT needs four bytes, one is left. A stream drops it and takes "AAAA" from after the
    # frame, then meets GLOBAL os.system; a straight reading takes "\x00AAA" and stops at the invalid "A".
    hidden = b"\x80\x04\x95" + (3).to_bytes(8, "little") + b"NJ\x00" + b"AAAA" + b"cos\nsystem\n)R."
    _, _, looked_up = c_unpickle(hidden, permissive=True)
    assert looked_up == ["os.system"]  # the stream reading runs a global the straight reading never sees
    _, scan = ours(hidden)
    assert "os.system" in {g.qualname for g in scan.globals}


def test_a_frame_that_splits_a_global_line_drops_part_of_its_name():
    # Found by the long run: the frame ends inside GLOBAL's first line, so a stream reader drops "m" and
    # looks up "od_a.y"; the scan must name that global as well.
    data = b"\x80\x04\x95\x02\x00\x00\x00\x00\x00\x00\x00cmod_a\ny\n)R."
    _, _, looked_up = c_unpickle(data, permissive=True)
    assert looked_up == ["od_a.y"]
    _, scan = ours(data)
    assert {"mod_a.y", "od_a.y"} <= {g.qualname for g in scan.globals}
