"""The allowlist: every global a checkpoint pickle may name, what it becomes, and why it is safe.

This is the one place that decides what the unpickler accepts. Each entry maps
``(module, name)`` to a project-owned stand-in: either a plain value (a dtype, a
storage class) or a :class:`SafeGlobal` whose ``call`` builds data from data.
No stand-in imports torch or numpy, touches the file system or calls anything
that came from the file. Everything not listed here is refused as unsafe, except
the torch rebuild functions in :data:`UNSUPPORTED`, which are legitimate but
describe tensors this reader does not model (sparse, quantised, nested, meta).

Reference: torch's own weights-only loader (``torch/_weights_only_unpickler.py``)
admits the same tensor-rebuild functions, storage classes, dtypes, ``torch.Size``,
``torch.device``, ``collections.OrderedDict`` and ``_codecs.encode``.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Callable, NamedTuple

from ..errors import MalformedPickleError, UnsupportedCheckpointError
from .dtypes import DTYPES, STORAGE_CLASSES, DType
from .tensor import StorageRef, TensorRef


class TorchDType(NamedTuple):
    """Stand-in for a ``torch.<dtype>`` object found in a pickle."""

    dtype: DType

    def __repr__(self) -> str:
        return f"torch.{self.dtype.name}"


class StorageType(NamedTuple):
    """Stand-in for a storage class such as ``torch.FloatStorage``."""

    name: str
    dtype: DType


class TypeMarker(NamedTuple):
    """Stand-in for ``torch.Tensor`` / ``torch.nn.Parameter`` used as a rebuild target type."""

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
    """A callable global from the allowlist; ``call(args)`` builds plain data or a TensorRef."""

    __slots__ = ("qualname", "call")

    def __init__(self, qualname: str, call: Callable[[tuple], Any]):
        self.qualname = qualname
        self.call = call

    def __repr__(self) -> str:
        return self.qualname


def _bad(what: str) -> MalformedPickleError:
    return MalformedPickleError(f"malformed pickle: {what}")


def _int_tuple(value: Any, what: str) -> tuple:
    if not isinstance(value, tuple) or not all(type(v) is int and 0 <= v < (1 << 62) for v in value):
        raise _bad(f"{what} must be a tuple of non-negative ints")
    return tuple(value)


def _storage(value: Any) -> StorageRef:
    if not isinstance(value, StorageRef):
        raise _bad("tensor rebuilt from something that is not a storage")
    return value


def _rebuild_tensor(storage: Any, offset: Any, size: Any, stride: Any, dtype: DType | None = None,
                    requires_grad: Any = False) -> TensorRef:
    storage = _storage(storage)
    if type(offset) is not int:
        raise _bad("storage offset must be an int")
    if type(requires_grad) is not bool:
        raise _bad("requires_grad must be a bool")
    return TensorRef(storage, dtype or storage.dtype, offset, _int_tuple(size, "size"), _int_tuple(stride, "stride"),
                     requires_grad)


def _args(args: tuple, lo: int, hi: int, name: str) -> tuple:
    if not isinstance(args, tuple) or not lo <= len(args) <= hi:
        raise _bad(f"{name} called with {len(args) if isinstance(args, tuple) else 'non-tuple'} arguments")
    return args


def _rebuild_tensor_v1(args: tuple) -> TensorRef:
    storage, offset, size, stride = _args(args, 4, 4, "_rebuild_tensor")
    return _rebuild_tensor(storage, offset, size, stride)


def _rebuild_tensor_v2(args: tuple) -> TensorRef:
    a = _args(args, 6, 7, "_rebuild_tensor_v2")
    return _rebuild_tensor(a[0], a[1], a[2], a[3], requires_grad=a[4])


def _rebuild_tensor_v3(args: tuple) -> TensorRef:
    a = _args(args, 7, 8, "_rebuild_tensor_v3")
    if not isinstance(a[6], TorchDType):
        raise _bad("_rebuild_tensor_v3 dtype is not a torch dtype")
    return _rebuild_tensor(a[0], a[1], a[2], a[3], dtype=a[6].dtype, requires_grad=a[4])


def _rebuild_parameter(args: tuple) -> TensorRef:
    a = _args(args, 3, 4, "_rebuild_parameter")
    data, requires_grad = a[0], a[1]
    if not isinstance(data, TensorRef) or type(requires_grad) is not bool:
        raise _bad("_rebuild_parameter needs a tensor and a bool")
    data.is_parameter = True
    data.requires_grad = requires_grad
    if len(a) == 4 and isinstance(a[3], dict):
        data.attrs.update(a[3])
    return data


def _rebuild_from_type_v2(args: tuple) -> TensorRef:
    func, new_type, inner, state = _args(args, 4, 4, "_rebuild_from_type_v2")
    if not isinstance(func, SafeGlobal) or not isinstance(new_type, TypeMarker) or not isinstance(inner, tuple):
        raise _bad("_rebuild_from_type_v2 with unexpected arguments")
    tensor = func.call(inner)
    if not isinstance(tensor, TensorRef):
        raise _bad("_rebuild_from_type_v2 did not rebuild a tensor")
    if new_type.name == "torch.nn.parameter.Parameter":
        tensor.is_parameter = True
    if isinstance(state, dict):
        tensor.attrs.update(state)
    return tensor


def _ordered_dict(args: tuple) -> OrderedDict:
    a = _args(args, 0, 1, "OrderedDict")
    if not a:
        return OrderedDict()
    if not isinstance(a[0], (list, tuple)) or not all(isinstance(p, tuple) and len(p) == 2 for p in a[0]):
        raise _bad("OrderedDict built from something other than key/value pairs")
    return OrderedDict(a[0])


def _size(args: tuple) -> Size:
    (dims,) = _args(args, 1, 1, "torch.Size")
    return Size(_int_tuple(tuple(dims) if isinstance(dims, list) else dims, "torch.Size"))


def _device(args: tuple) -> Device:
    a = _args(args, 1, 2, "torch.device")
    if not isinstance(a[0], str) or (len(a) == 2 and a[1] is not None and type(a[1]) is not int):
        raise _bad("torch.device with unexpected arguments")
    kind, _, idx = a[0].partition(":")
    index = a[1] if len(a) == 2 else (int(idx) if idx.isdigit() else None)
    return Device(kind, index)


def _codecs_encode(args: tuple) -> bytes:
    # Protocol-2 pickles spell bytes as _codecs.encode(text, "latin1").
    text, encoding = _args(args, 2, 2, "_codecs.encode")
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise _bad("_codecs.encode is only accepted with text and latin1")
    return text.encode("latin1")


def _hashables(args: tuple, name: str) -> list:
    a = _args(args, 0, 1, name)
    if a and not isinstance(a[0], (list, tuple, set, frozenset)):
        raise _bad(f"{name} of a non-sequence")
    return list(a[0]) if a else []


def _complex(args: tuple) -> complex:
    a = _args(args, 1, 2, "complex")
    if not all(type(x) in (int, float) for x in a):
        raise _bad("complex of non-numbers")
    return complex(*a)


def _bytearray(args: tuple) -> bytearray:
    a = _args(args, 0, 1, "bytearray")
    if a and not isinstance(a[0], (bytes, bytearray)):
        raise _bad("bytearray of non-bytes")
    return bytearray(a[0]) if a else bytearray()


def _slice(args: tuple) -> slice:
    a = _args(args, 1, 3, "slice")
    if not all(x is None or type(x) is int for x in a):
        raise _bad("slice of non-ints")
    return slice(*a)


class NumpyDType:
    """Stand-in for a ``numpy.dtype`` in a pickle: its type code and byte order, nothing else."""

    __slots__ = ("code", "byteorder")

    def __init__(self, code: str):
        self.code = code
        self.byteorder = "="

    def set_state(self, state: tuple) -> None:
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

    def set_state(self, state: tuple) -> None:
        """Apply numpy's ndarray pickle state ``(version, shape, dtype, is_fortran, data)``."""
        if len(state) != 5 or not isinstance(state[2], NumpyDType):
            raise _bad("numpy array with unexpected state")
        self.shape = _int_tuple(state[1], "numpy array shape")
        self.dtype = state[2]
        if not isinstance(state[4], (bytes, bytearray, list)):
            raise _bad("numpy array data is neither bytes nor a list")
        self.data = bytes(state[4]) if isinstance(state[4], bytearray) else state[4]

    def __repr__(self) -> str:
        return f"numpy.ndarray(shape={self.shape}, dtype={self.dtype})"


# numpy scalar type codes -> struct format (complex: two components).
_NP_STRUCT = {"f2": "e", "f4": "f", "f8": "d", "i1": "b", "i2": "h", "i4": "i", "i8": "q", "u1": "B",
              "u2": "H", "u4": "I", "u8": "Q", "b1": "?", "c8": "2f", "c16": "2d"}


def _np_dtype(args: tuple) -> NumpyDType:
    a = _args(args, 1, 3, "numpy.dtype")
    if not isinstance(a[0], str) or len(a[0]) > 16:
        raise _bad("numpy.dtype of a non-string")
    return NumpyDType(a[0])


def _np_scalar(args: tuple) -> Any:
    # numpy pickles np.float64(0.5) as scalar(dtype('f8'), raw bytes); the value becomes a Python number.
    import struct

    dtype, raw = _args(args, 2, 2, "numpy scalar")
    if not isinstance(dtype, NumpyDType) or not isinstance(raw, (bytes, bytearray)):
        raise _bad("numpy scalar with unexpected arguments")
    fmt = _NP_STRUCT.get(dtype.code.lstrip("<>|="))
    if fmt is None:
        raise UnsupportedCheckpointError(f"holds a numpy scalar of type {dtype.code!r}, which this reader does not decode")
    order = ">" if dtype.byteorder == ">" or dtype.code.startswith(">") else "<"
    try:
        values = struct.unpack(order + fmt, bytes(raw))
    except struct.error:
        raise _bad("numpy scalar bytes do not match its dtype") from None
    return complex(*values) if len(values) == 2 else values[0]


def _np_reconstruct(args: tuple) -> NumpyArray:
    cls, _shape, _typecode = _args(args, 3, 3, "numpy _reconstruct")
    if not isinstance(cls, TypeMarker) or cls.name != "numpy.ndarray":
        raise _bad("numpy _reconstruct of something other than ndarray")
    return NumpyArray()


def _np_frombuffer(args: tuple) -> NumpyArray:
    # Protocol 5 spells arrays as _frombuffer(bytes, dtype, shape, order).
    buf, dtype, shape, _order = _args(args, 4, 4, "numpy _frombuffer")
    if not isinstance(buf, (bytes, bytearray)) or not isinstance(dtype, NumpyDType):
        raise _bad("numpy _frombuffer with unexpected arguments")
    arr = NumpyArray()
    arr.set_state((1, shape, dtype, False, buf))
    return arr


def _unsupported(what: str) -> Callable[[tuple], Any]:
    def call(args: tuple) -> Any:
        raise UnsupportedCheckpointError(f"holds a {what}, which this reader does not model")
    return call


def _build_table() -> dict[tuple[str, str], tuple[Any, str]]:
    table: dict[tuple[str, str], tuple[Any, str]] = {}

    def fn(module: str, name: str, call: Callable[[tuple], Any], why: str) -> None:
        table[(module, name)] = (SafeGlobal(f"{module}.{name}", call), why)

    fn("torch._utils", "_rebuild_tensor", _rebuild_tensor_v1, "rebuilds a tensor view from a storage (old torch)")
    fn("torch._utils", "_rebuild_tensor_v2", _rebuild_tensor_v2, "rebuilds a tensor view from a storage")
    fn("torch._utils", "_rebuild_tensor_v3", _rebuild_tensor_v3, "rebuilds a tensor from an untyped storage and a dtype")
    fn("torch._utils", "_rebuild_parameter", _rebuild_parameter, "marks a rebuilt tensor as nn.Parameter")
    fn("torch._utils", "_rebuild_parameter_with_state", _rebuild_parameter,
       "nn.Parameter with plain attributes")
    fn("torch._tensor", "_rebuild_from_type_v2", _rebuild_from_type_v2,
       "applies an allowlisted rebuild function, then tags Tensor/Parameter type")
    fn("collections", "OrderedDict", _ordered_dict, "state dicts are OrderedDicts")
    fn("torch", "Size", _size, "a tuple of ints")
    fn("torch", "device", _device, "a device name such as 'cpu' or 'cuda:0'")
    fn("_codecs", "encode", _codecs_encode, "how protocol 2 spells bytes; only latin1 text is accepted")
    fn("builtins", "set", lambda a: set(_hashables(a, "set")), "a set of plain values")
    fn("builtins", "frozenset", lambda a: frozenset(_hashables(a, "frozenset")), "a frozenset of plain values")
    fn("builtins", "complex", _complex, "a complex number")
    fn("builtins", "bytearray", _bytearray, "a bytearray")
    fn("builtins", "slice", _slice, "a slice of ints")
    for np_core in ("numpy.core.multiarray", "numpy._core.multiarray"):
        fn(np_core, "scalar", _np_scalar, "a numpy scalar (np.float64(0.5)...), decoded to a Python number")
        fn(np_core, "_reconstruct", _np_reconstruct, "an empty numpy array, filled with raw bytes by BUILD")
    for np_numeric in ("numpy.core.numeric", "numpy._core.numeric"):
        fn(np_numeric, "_frombuffer", _np_frombuffer, "a numpy array from raw bytes (pickle protocol 5)")
    fn("numpy", "dtype", _np_dtype, "a numpy dtype by type code")
    table[("numpy", "ndarray")] = (TypeMarker("numpy.ndarray"), "the array type tag for _reconstruct")
    for module in ("torch", "torch.cuda", "torch.storage"):
        for cls, dtype in STORAGE_CLASSES.items():
            table[(module, cls)] = (StorageType(cls, DTYPES[dtype]), "storage class: names the element dtype")
    for name, dtype in DTYPES.items():
        table[("torch", name)] = (TorchDType(dtype), "a dtype value")
    for module, name in (("torch", "Tensor"), ("torch._tensor", "Tensor"), ("torch.nn.parameter", "Parameter"),
                         ("torch.nn", "Parameter")):
        table[(module, name)] = (TypeMarker("torch.nn.parameter.Parameter" if name == "Parameter" else "torch.Tensor"),
                                 "a tensor type tag for _rebuild_from_type_v2")
    return table


#: (module, name) -> (stand-in, why it is safe). The single allowlist.
ALLOWED: dict[tuple[str, str], tuple[Any, str]] = _build_table()

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
for _key, _what in UNSUPPORTED.items():
    ALLOWED.setdefault(_key, (SafeGlobal(".".join(_key), _unsupported(_what)), f"recognised; a {_what} is reported as unsupported"))


# Pickle protocols 0-2 spell Python 3 modules with their Python 2 names.
_PY2_MODULES = {"__builtin__": "builtins", "copy_reg": "copyreg"}


def resolve(module: str, name: str) -> Any | None:
    """Return the stand-in for global ``module.name``, or None if it is not on the allowlist."""
    entry = ALLOWED.get((_PY2_MODULES.get(module, module), name))
    return None if entry is None else entry[0]

# torch <= 0.3 tar checkpoints name the tensor class of each saved tensor (torch.FloatTensor ...).
for _module in ("torch", "torch.cuda"):
    for _cls in ("Double", "Float", "Half", "Long", "Int", "Short", "Char", "Byte"):
        ALLOWED[(_module, f"{_cls}Tensor")] = (TypeMarker("torch.Tensor"), "legacy tensor class tag (torch <= 0.3)")
