"""The allowlist: every global a checkpoint pickle may use as data, what it becomes, and why that is safe.

This is the one place that decides which globals the reader gives a value.
Each entry maps ``(module, name)`` to a project-owned stand-in: a plain value (a
dtype, a storage class, a type tag) or a :class:`SafeGlobal` whose ``call``
builds data from data (and whose ``new`` mirrors ``cls.__new__`` for NEWOBJ).
No stand-in imports torch or numpy, touches the file system or calls anything
that came from the file; each charges what it copies to the file's meter.
Every global not listed here becomes an inert record (see ``pickle/records.py``)
and makes the file UNSAFE unless a policy allows it by name.

Reference: torch's weights-only loader (``torch/_weights_only_unpickler.py``,
``_get_allowed_globals``) admits the same rebuild functions, storage and tensor
classes, dtypes, ``torch.Size``, ``torch.device``, ``collections.OrderedDict``,
``collections.Counter``, ``_codecs.encode``, ``builtins.set``, ``bytearray`` and
``complex``. This list adds numpy scalars and arrays as data, ``frozenset`` and
``slice``, which are data with no code path.
"""

from __future__ import annotations

import struct
from collections import Counter, OrderedDict
from typing import Any, Callable, NamedTuple

from ..errors import MalformedPickleError, UnsupportedCheckpointError
from .dtypes import DTYPES, STORAGE_CLASSES, DType
from .tensor import StorageRef, TensorRef


class Context(NamedTuple):
    """What a stand-in may use: the member label, the file's meter and the key guard."""

    member: str
    meter: Any
    keys: Any


class TorchDType(NamedTuple):
    """Stand-in for a ``torch.<dtype>`` object found in a pickle."""

    dtype: DType

    def __repr__(self) -> str:
        return f"torch.{self.dtype.name}"


class StorageType(NamedTuple):
    """Stand-in for a storage class such as ``torch.FloatStorage`` (``dtype`` None for TypedStorage)."""

    name: str
    dtype: DType | None


class TypeMarker(NamedTuple):
    """Stand-in for a class used as a tag: ``torch.Tensor``, ``torch.nn.Parameter``, ``numpy.ndarray``..."""

    name: str

    @property
    def new(self) -> Callable[[tuple, Context], Any] | None:
        """NEWOBJ support: only ``Parameter.__new__(Parameter, data[, requires_grad])`` builds data."""
        return _new_parameter if self.name == "torch.nn.parameter.Parameter" else None


class Marker(NamedTuple):
    """Stand-in for a plain torch constant (a quantisation scheme, a layout): its name only."""

    name: str


class Size(tuple):
    """Stand-in for ``torch.Size``: a tuple of ints."""

    def __repr__(self) -> str:
        return f"torch.Size({list(self)!r})"


class Device(NamedTuple):
    """Stand-in for ``torch.device``."""

    type: str
    index: int | None = None

    def __str__(self) -> str:
        return self.type if self.index is None else f"{self.type}:{self.index}"


class SafeGlobal:
    """An allowlisted callable: ``call(args, ctx)`` for REDUCE, ``new(args, ctx)`` for NEWOBJ (None: not a class)."""

    __slots__ = ("qualname", "call", "new")

    def __init__(self, qualname: str, call: Callable[[tuple, Context], Any],
                 new: Callable[[tuple, Context], Any] | None = None):
        self.qualname = qualname
        self.call = call
        self.new = new

    def __repr__(self) -> str:
        return self.qualname


def _bad(what: str) -> MalformedPickleError:
    return MalformedPickleError(f"malformed pickle: {what}")


def _args(args: tuple, lo: int, hi: int, name: str) -> tuple:
    if not lo <= len(args) <= hi:
        raise _bad(f"{name} called with {len(args)} arguments")
    return args


def _int_tuple(value: Any, what: str, ctx: Context, *, signed: bool = False) -> tuple:
    # Checked (and copied from a list) on every call: charged, since one memoized list can be passed many times.
    if not isinstance(value, (list, tuple)):
        raise _bad(f"{what} must be a sequence of ints")
    ctx.meter.charge_elements(len(value), f"{ctx.member}: {what}")
    if isinstance(value, list):
        value = tuple(value)
    lo = -(1 << 62) if signed else 0
    for v in value:
        if type(v) is not int or not lo <= v < (1 << 62):
            raise _bad(f"{what} must be a sequence of {'' if signed else 'non-negative '}ints")
    return value


# -- tensors ------------------------------------------------------------------------------------------
def _storage(value: Any) -> StorageRef:
    if not isinstance(value, StorageRef):
        raise _bad("tensor rebuilt from something that is not a storage")
    return value


def _metadata(value: Any, ctx: Context) -> None:
    # torch sets the conjugate/negative view bits from this dict; raw bytes would then read differently.
    if value is None or value == {}:
        return
    if isinstance(value, dict):
        ctx.meter.charge_elements(len(value), f"{ctx.member}: tensor metadata")
    if not isinstance(value, dict) or any(value.values()):
        raise UnsupportedCheckpointError("holds a tensor with conjugate/negative view bits, which this reader "
                                         "does not model")


def _rebuild_tensor(storage: Any, offset: Any, size: Any, stride: Any, ctx: Context, dtype: DType | None = None,
                    requires_grad: Any = False) -> TensorRef:
    storage = _storage(storage)
    if type(offset) is not int:
        raise _bad("storage offset must be an int")
    if type(requires_grad) is not bool:
        raise _bad("requires_grad must be a bool")
    ctx.meter.charge_object("tensor", f"{ctx.member}: tensor")
    return TensorRef(storage, dtype or storage.dtype, offset, _int_tuple(size, "size", ctx),
                     _int_tuple(stride, "stride", ctx),
                     requires_grad, max_bytes=ctx.meter.limits.max_storage_bytes)


def _rebuild_tensor_v1(args: tuple, ctx: Context) -> TensorRef:
    storage, offset, size, stride = _args(args, 4, 4, "_rebuild_tensor")
    return _rebuild_tensor(storage, offset, size, stride, ctx)


def _rebuild_tensor_v2(args: tuple, ctx: Context) -> TensorRef:
    a = _args(args, 6, 7, "_rebuild_tensor_v2")
    _metadata(a[6] if len(a) == 7 else None, ctx)
    return _rebuild_tensor(a[0], a[1], a[2], a[3], ctx, requires_grad=a[4])


def _rebuild_tensor_v3(args: tuple, ctx: Context) -> TensorRef:
    a = _args(args, 7, 8, "_rebuild_tensor_v3")
    if not isinstance(a[6], TorchDType):
        raise _bad("_rebuild_tensor_v3 dtype is not a torch dtype")
    _metadata(a[7] if len(a) == 8 else None, ctx)
    return _rebuild_tensor(a[0], a[1], a[2], a[3], ctx, dtype=a[6].dtype, requires_grad=a[4])


def _as_parameter(data: Any, requires_grad: Any) -> TensorRef:
    if not isinstance(data, TensorRef) or type(requires_grad) is not bool:
        raise _bad("nn.Parameter needs a tensor and a bool")
    data.is_parameter = True
    data.requires_grad = requires_grad
    return data


def _rebuild_parameter(args: tuple, ctx: Context) -> TensorRef:
    data, requires_grad, _hooks = _args(args, 3, 3, "_rebuild_parameter")
    return _as_parameter(data, requires_grad)


def _rebuild_parameter_with_state(args: tuple, ctx: Context) -> TensorRef:
    data, requires_grad, _hooks, state = _args(args, 4, 4, "_rebuild_parameter_with_state")
    param = _as_parameter(data, requires_grad)
    _set_obj_state(param, state, ctx)
    return param


def _new_parameter(args: tuple, ctx: Context) -> TensorRef:
    a = _args(args, 1, 2, "nn.Parameter")
    return _as_parameter(a[0], a[1] if len(a) == 2 else True)


def _set_obj_state(tensor: TensorRef, state: Any, ctx: Context) -> None:
    # torch._utils._set_obj_state: a dict of attributes, or (dict, slots); attributes never change values.
    # Copied on every call (a memoized state can be given to many tensors): charged by size.
    for part in state if isinstance(state, tuple) else (state,):
        if isinstance(part, dict):
            ctx.meter.charge_elements(len(part), f"{ctx.member}: tensor state")
    if isinstance(state, tuple):
        if len(state) != 2:
            raise _bad("invalid serialized tensor state")
        state = {**(state[0] or {}), **(state[1] or {})} if all(
            s is None or isinstance(s, dict) for s in state) else None
    if state is None:
        return
    if not isinstance(state, dict) or not all(isinstance(k, str) for k in state):
        raise _bad("tensor state is not a dict of attribute names")
    tensor.attrs.update(state)


def _rebuild_from_type_v2(args: tuple, ctx: Context) -> Any:
    from .pickle.records import Global, Instance

    func, new_type, inner, state = _args(args, 4, 4, "_rebuild_from_type_v2")
    if not isinstance(inner, tuple):
        raise _bad("_rebuild_from_type_v2 arguments are not a tuple")
    if isinstance(func, (Global, Instance)):
        return Instance(func, "REDUCE", inner)
    if not isinstance(func, SafeGlobal):
        raise _bad("_rebuild_from_type_v2 of a non-callable")
    tensor = func.call(inner, ctx)
    if isinstance(new_type, (Global, Instance)):  # a tensor subclass from elsewhere: keep the data, record the type
        out = Instance(new_type, "as_subclass", (tensor,))
        out.state = state
        return out
    if not isinstance(new_type, TypeMarker) or not isinstance(tensor, TensorRef):
        raise _bad("_rebuild_from_type_v2 with unexpected arguments")
    if new_type.name == "torch.nn.parameter.Parameter":
        tensor.is_parameter = True
    _set_obj_state(tensor, state, ctx)
    return tensor


def _rebuild_device_tensor_from_cpu_tensor(args: tuple, ctx: Context) -> TensorRef:
    data, dtype, _device, requires_grad = _args(args, 4, 4, "_rebuild_device_tensor_from_cpu_tensor")
    if not isinstance(data, TensorRef) or not isinstance(dtype, TorchDType) or dtype.dtype != data._dtype:
        raise UnsupportedCheckpointError("holds a device tensor converted on load, which this reader does not model")
    if type(requires_grad) is not bool:
        raise _bad("requires_grad must be a bool")
    data.requires_grad = requires_grad
    return data


# -- containers and plain values ----------------------------------------------------------------------------
def _pairs(source: Any, ctx: Context, name: str) -> list[tuple[Any, Any]]:
    # dict(iterable) takes any 2-item sequences: Python 2 pickled OrderedDicts as lists of [key, value] lists.
    if isinstance(source, dict):
        return list(source.items())
    if not isinstance(source, (list, tuple)):
        raise _bad(f"{name} built from a {type(source).__name__}")
    ctx.meter.charge_elements(len(source), f"{ctx.member}: {name}")
    out = []
    for pair in source:
        if not isinstance(pair, (list, tuple, str, bytes)) or len(pair) != 2:
            raise _bad(f"{name} built from something other than key/value pairs")
        out.append((pair[0], pair[1]))
    return out


def _fill(target: dict, pairs: list, ctx: Context, name: str) -> dict:
    for key, value in pairs:
        try:
            ctx.keys.admit(target, key)
            target[key] = value
        except TypeError as exc:
            raise _bad(f"{name} key: {exc}") from None
    return target


def _ordered_dict(args: tuple, ctx: Context) -> OrderedDict:
    a = _args(args, 0, 1, "OrderedDict")
    ctx.meter.charge_object("ordered_dict", f"{ctx.member}: OrderedDict")
    return _fill(OrderedDict(), _pairs(a[0], ctx, "OrderedDict") if a else [], ctx, "OrderedDict")


def _counter(args: tuple, ctx: Context) -> Counter:
    a = _args(args, 0, 1, "Counter")
    ctx.meter.charge_object("counter", f"{ctx.member}: Counter")
    if not a:
        return Counter()
    if isinstance(a[0], dict):
        return _fill(Counter(), _pairs(a[0], ctx, "Counter"), ctx, "Counter")
    counts: Counter = Counter()
    for item in _members(a[0], ctx, "Counter"):
        ctx.keys.admit(counts, item)
        counts[item] += 1
    return counts


def _members(source: Any, ctx: Context, name: str) -> list:
    """A copy of the members of a list, tuple or set, charged before it is made."""
    if not isinstance(source, (list, tuple, set, frozenset)):
        raise _bad(f"{name} of a {type(source).__name__}")
    ctx.meter.charge_elements(len(source), f"{ctx.member}: {name}")
    return list(source)


def _set_of(args: tuple, ctx: Context, name: str) -> set:
    a = _args(args, 0, 1, name)
    ctx.meter.charge_object("set", f"{ctx.member}: {name}")
    out: set = set()
    if a:
        items = _members(a[0], ctx, name)
        for item in items:
            try:
                ctx.keys.admit(out, item)
                out.add(item)
            except TypeError as exc:
                raise _bad(f"{name} member: {exc}") from None
    return out


def _size(args: tuple, ctx: Context) -> Size:
    (dims,) = _args(args, 1, 1, "torch.Size")
    return Size(_int_tuple(dims, "torch.Size", ctx, signed=True))


def _device(args: tuple, ctx: Context) -> Device:
    a = _args(args, 1, 2, "torch.device")
    # A device name is short; a long (memoized) string is refused before it is parsed, as torch refuses it.
    if not isinstance(a[0], str) or len(a[0]) > 64 or (len(a) == 2 and a[1] is not None and type(a[1]) is not int):
        raise _bad("torch.device with unexpected arguments")
    kind, _, idx = a[0].partition(":")
    index = a[1] if len(a) == 2 else (int(idx) if idx.isdigit() and len(idx) < 10 else None)
    return Device(kind, index)


_CODECS = {"latin1": "latin-1", "latin-1": "latin-1", "iso-8859-1": "latin-1", "utf-8": "utf-8", "utf8": "utf-8",
           "ascii": "ascii"}


def _codecs_encode(args: tuple, ctx: Context) -> bytes:
    # Protocol-2 pickles spell bytes as _codecs.encode(text, "latin1").
    a = _args(args, 1, 3, "_codecs.encode")
    encoding = a[1] if len(a) > 1 else "utf-8"
    if not isinstance(a[0], str) or encoding not in _CODECS or (len(a) == 3 and a[2] != "strict"):
        raise UnsupportedCheckpointError(f"_codecs.encode with {encoding!r} is not modelled")
    ctx.meter.charge_bytes(len(a[0]), f"{ctx.member}: _codecs.encode")
    try:
        return a[0].encode(_CODECS[encoding])
    except UnicodeEncodeError:
        raise _bad(f"_codecs.encode: text is not {encoding}") from None


def _complex(args: tuple, ctx: Context) -> complex:
    a = _args(args, 0, 2, "complex")
    if not all(type(x) in (int, float) for x in a):
        raise _bad("complex of non-numbers")
    try:
        return complex(*a)
    except OverflowError:
        raise _bad("complex out of range") from None


def _bytearray(args: tuple, ctx: Context) -> bytearray:
    a = _args(args, 0, 1, "bytearray")
    if a and not isinstance(a[0], (bytes, bytearray)):
        raise UnsupportedCheckpointError("bytearray of anything but bytes is not modelled")
    if a:
        ctx.meter.charge_bytes(len(a[0]), f"{ctx.member}: bytearray")
    return bytearray(a[0]) if a else bytearray()


def _slice(args: tuple, ctx: Context) -> slice:
    a = _args(args, 1, 3, "slice")
    if not all(x is None or type(x) is int for x in a):
        raise _bad("slice of non-ints")
    return slice(*a)


def _get_layout(args: tuple, ctx: Context) -> Marker:
    (name,) = _args(args, 1, 1, "torch.serialization._get_layout")
    if not isinstance(name, str) or len(name) > 64:
        raise _bad("layout name is not a short string")
    return Marker(name)


def _empty_new(factory: Callable[[], Any]) -> Callable[[tuple, Context], Any]:
    # Mutable containers fill themselves in __init__, not __new__: cls.__new__(cls, *args) is empty.
    return lambda args, ctx: factory()


# -- numpy as data -------------------------------------------------------------------------------------------
class NumpyDType:
    """Stand-in for a ``numpy.dtype`` in a pickle: its type code and byte order, nothing else."""

    __slots__ = ("code", "byteorder")

    def __init__(self, code: str):
        self.code = code
        self.byteorder = "="

    def set_state(self, state: tuple, ctx: Context) -> None:
        """Take the byte order from numpy's dtype pickle state ``(version, byteorder, ...)``."""
        if len(state) >= 2 and state[1] in ("<", ">", "|", "="):
            self.byteorder = state[1]

    def __repr__(self) -> str:
        return f"numpy.dtype({self.code!r})"


class NumpyArray:
    """Stand-in for a pickled numpy array: shape, dtype and its raw bytes (or objects), as data."""

    __slots__ = ("shape", "dtype", "data")

    def __init__(self) -> None:
        self.shape: tuple = (0,)
        self.dtype: NumpyDType | None = None
        self.data: bytes | list = b""

    def set_state(self, state: tuple, ctx: Context) -> None:
        """Apply numpy's ndarray pickle state ``(version, shape, dtype, is_fortran, data)``."""
        if len(state) != 5 or not isinstance(state[2], NumpyDType):
            raise _bad("numpy array with unexpected state")
        self.shape = _int_tuple(state[1], "numpy array shape", ctx)
        self.dtype = state[2]
        if not isinstance(state[4], (bytes, bytearray, list)):
            raise _bad("numpy array data is neither bytes nor a list")
        if isinstance(state[4], bytearray):
            ctx.meter.charge_bytes(len(state[4]), f"{ctx.member}: numpy array")
        self.data = bytes(state[4]) if isinstance(state[4], bytearray) else state[4]

    def __repr__(self) -> str:
        return f"numpy.ndarray(shape={self.shape}, dtype={self.dtype})"


# numpy scalar type codes -> struct format (complex: two components).
_NP_STRUCT = {"f2": "e", "f4": "f", "f8": "d", "i1": "b", "i2": "h", "i4": "i", "i8": "q", "u1": "B",
              "u2": "H", "u4": "I", "u8": "Q", "b1": "?", "c8": "2f", "c16": "2d"}


def _np_dtype(args: tuple, ctx: Context) -> NumpyDType:
    a = _args(args, 1, 3, "numpy.dtype")
    if not isinstance(a[0], str) or len(a[0]) > 16:
        raise _bad("numpy.dtype of a non-string")
    return NumpyDType(a[0])


def _np_scalar(args: tuple, ctx: Context) -> Any:
    # numpy pickles np.float64(0.5) as scalar(dtype('f8'), raw bytes); the value becomes a Python number.
    dtype, raw = _args(args, 2, 2, "numpy scalar")
    if not isinstance(dtype, NumpyDType) or not isinstance(raw, (bytes, bytearray)):
        raise _bad("numpy scalar with unexpected arguments")
    fmt = _NP_STRUCT.get(dtype.code.lstrip("<>|="))
    if fmt is None:
        raise UnsupportedCheckpointError(f"holds a numpy scalar of type {dtype.code!r}, which this reader does not decode")
    order = ">" if dtype.byteorder == ">" or dtype.code.startswith(">") else "<"
    if len(raw) != struct.calcsize(order + fmt):  # checked before any copy: the bytes may be a large memoized value
        raise _bad("numpy scalar bytes do not match its dtype")
    try:
        values = struct.unpack(order + fmt, bytes(raw))
    except struct.error:
        raise _bad("numpy scalar bytes do not match its dtype") from None
    return complex(*values) if len(values) == 2 else values[0]


def _np_reconstruct(args: tuple, ctx: Context) -> NumpyArray:
    cls, _shape, _typecode = _args(args, 3, 3, "numpy _reconstruct")
    if not isinstance(cls, TypeMarker) or cls.name != "numpy.ndarray":
        raise _bad("numpy _reconstruct of something other than ndarray")
    return NumpyArray()


def _np_frombuffer(args: tuple, ctx: Context) -> NumpyArray:
    # Protocol 5 spells arrays as _frombuffer(bytes, dtype, shape, order).
    buf, dtype, shape, _order = _args(args, 4, 4, "numpy _frombuffer")
    if not isinstance(buf, (bytes, bytearray)) or not isinstance(dtype, NumpyDType):
        raise _bad("numpy _frombuffer with unexpected arguments")
    arr = NumpyArray()
    arr.set_state((1, shape, dtype, False, buf), ctx)
    return arr


def _unsupported(what: str) -> Callable[[tuple, Context], Any]:
    def call(args: tuple, ctx: Context) -> Any:
        raise UnsupportedCheckpointError(f"holds a {what}, which this reader does not model")
    return call


# -- the table ---------------------------------------------------------------------------------------------------
#: torch rebuild functions that are legitimate but describe tensors this reader does not model.
UNSUPPORTED: dict[tuple[str, str], str] = {
    ("torch._utils", "_rebuild_sparse_tensor"): "sparse tensor",
    ("torch._utils", "_rebuild_sparse_csr_tensor"): "sparse CSR tensor",
    ("torch._utils", "_rebuild_qtensor"): "quantised tensor",
    ("torch._utils", "_rebuild_nested_tensor"): "nested tensor",
    ("torch._utils", "_rebuild_meta_tensor_no_storage"): "meta tensor without storage",
    ("torch._utils", "_rebuild_wrapper_subclass"): "tensor wrapper subclass",
    ("torch._utils", "_rebuild_device_tensor_from_numpy"): "device tensor from numpy",
    ("torch._utils", "_rebuild_xla_tensor"): "XLA tensor",
    ("torch._utils", "_rebuild_mtia_tensor"): "MTIA tensor",
}

_TENSOR_CLASSES = ("Double", "Float", "Half", "BFloat16", "Long", "Int", "Short", "Char", "Byte", "Bool")
_QSCHEMES = ("per_tensor_affine", "per_tensor_symmetric", "per_channel_affine", "per_channel_symmetric",
             "per_channel_affine_float_qparams")


def _build_table() -> dict[tuple[str, str], tuple[Any, str]]:
    table: dict[tuple[str, str], tuple[Any, str]] = {}

    def fn(module: str, name: str, call: Callable[[tuple, Context], Any], why: str,
           new: Callable[[tuple, Context], Any] | None = None) -> None:
        table[(module, name)] = (SafeGlobal(f"{module}.{name}", call, new), why)

    fn("torch._utils", "_rebuild_tensor", _rebuild_tensor_v1, "rebuilds a tensor view from a storage (old torch)")
    fn("torch._utils", "_rebuild_tensor_v2", _rebuild_tensor_v2, "rebuilds a tensor view from a storage")
    fn("torch._utils", "_rebuild_tensor_v3", _rebuild_tensor_v3, "rebuilds a tensor from an untyped storage and a dtype")
    fn("torch._utils", "_rebuild_parameter", _rebuild_parameter, "marks a rebuilt tensor as nn.Parameter")
    fn("torch._utils", "_rebuild_parameter_with_state", _rebuild_parameter_with_state,
       "nn.Parameter with plain attributes")
    fn("torch._utils", "_rebuild_device_tensor_from_cpu_tensor", _rebuild_device_tensor_from_cpu_tensor,
       "a CPU tensor moved to a device on load (values unchanged)")
    fn("torch._tensor", "_rebuild_from_type_v2", _rebuild_from_type_v2,
       "applies an allowlisted rebuild function, then tags Tensor/Parameter type")
    fn("collections", "OrderedDict", _ordered_dict, "state dicts are OrderedDicts", _empty_new(OrderedDict))
    fn("collections", "Counter", _counter, "counts of plain values (torch's weights-only list has it)",
       _empty_new(Counter))
    fn("torch", "Size", _size, "a tuple of ints", _size)
    fn("torch", "device", _device, "a device name such as 'cpu' or 'cuda:0'", _device)
    fn("torch.serialization", "_get_layout", _get_layout, "a tensor layout constant by name")
    fn("_codecs", "encode", _codecs_encode, "how protocol 2 spells bytes; only plain text codecs")
    fn("builtins", "set", lambda a, c: _set_of(a, c, "set"), "a set of plain values", _empty_new(set))
    fn("builtins", "frozenset", lambda a, c: frozenset(_set_of(a, c, "frozenset")), "a frozenset of plain values",
       lambda a, c: frozenset(_set_of(a, c, "frozenset")))
    fn("builtins", "complex", _complex, "a complex number", _complex)
    fn("builtins", "bytearray", _bytearray, "a bytearray", _empty_new(bytearray))
    fn("builtins", "slice", _slice, "a slice of ints", _slice)
    for np_core in ("numpy.core.multiarray", "numpy._core.multiarray"):
        fn(np_core, "scalar", _np_scalar, "a numpy scalar (np.float64(0.5)...), decoded to a Python number")
        fn(np_core, "_reconstruct", _np_reconstruct, "an empty numpy array, filled with raw bytes by BUILD")
    for np_numeric in ("numpy.core.numeric", "numpy._core.numeric"):
        fn(np_numeric, "_frombuffer", _np_frombuffer, "a numpy array from raw bytes (pickle protocol 5)")
    fn("numpy", "dtype", _np_dtype, "a numpy dtype by type code")
    table[("numpy", "ndarray")] = (TypeMarker("numpy.ndarray"), "the array type tag for _reconstruct")
    for module in ("torch", "torch.cuda"):
        for cls, dtype in STORAGE_CLASSES.items():
            if cls != "UntypedStorage":
                table[(module, cls)] = (StorageType(cls, DTYPES[dtype]), "storage class: names the element dtype")
        for cls in _TENSOR_CLASSES:
            table[(module, f"{cls}Tensor")] = (TypeMarker("torch.Tensor"), "legacy tensor class tag")
    for module in ("torch.sparse", "torch.cuda.sparse"):
        for cls in _TENSOR_CLASSES:
            table[(module, f"{cls}Tensor")] = (TypeMarker("torch.Tensor"), "legacy sparse tensor class tag")
    for module in ("torch", "torch.storage"):
        table[(module, "UntypedStorage")] = (StorageType("UntypedStorage", DTYPES["uint8"]), "bytes storage")
    table[("torch.storage", "TypedStorage")] = (StorageType("TypedStorage", None), "typed storage class tag")
    for name, dtype in DTYPES.items():
        table[("torch", name)] = (TorchDType(dtype), "a dtype value")
    for scheme in _QSCHEMES:
        table[("torch", scheme)] = (Marker(f"torch.{scheme}"), "a quantisation scheme constant")
    for module, name in (("torch", "Tensor"), ("torch._tensor", "Tensor"), ("torch.nn.parameter", "Parameter"),
                         ("torch.nn", "Parameter")):
        table[(module, name)] = (TypeMarker("torch.nn.parameter.Parameter" if name == "Parameter" else "torch.Tensor"),
                                 "a tensor type tag for _rebuild_from_type_v2")
    for key, what in UNSUPPORTED.items():
        table.setdefault(key, (SafeGlobal(".".join(key), _unsupported(what)),
                               f"recognised; a {what} is reported as unsupported"))
    return table


#: (module, name) -> (stand-in, why it is safe). The single allowlist.
ALLOWED: dict[tuple[str, str], tuple[Any, str]] = _build_table()


def allowed(module: str, name: str) -> Any | None:
    """The stand-in for global ``module.name`` (as the loader looks it up), or None if not allowlisted."""
    entry = ALLOWED.get((module, name))
    return None if entry is None else entry[0]
