"""torch dtypes as data: item sizes, numpy equivalents and legacy storage class names.

Kept as plain tables so the metadata path never imports torch or numpy.
"""

from __future__ import annotations

from typing import NamedTuple


class DType(NamedTuple):
    """One torch dtype: its name without ``torch.``, bytes per element, numpy type code."""

    name: str
    itemsize: int
    numpy: str  #: numpy type code, little-endian; raw unsigned bits where numpy has no such type
    exact: bool  #: False when ``numpy`` holds raw bits (bfloat16, float8, complex32, quantised)


_TABLE = [
    DType("float32", 4, "<f4", True),
    DType("float64", 8, "<f8", True),
    DType("float16", 2, "<f2", True),
    DType("bfloat16", 2, "<u2", False),
    DType("complex32", 4, "<u4", False),
    DType("complex64", 8, "<c8", True),
    DType("complex128", 16, "<c16", True),
    DType("int8", 1, "<i1", True),
    DType("int16", 2, "<i2", True),
    DType("int32", 4, "<i4", True),
    DType("int64", 8, "<i8", True),
    DType("uint8", 1, "<u1", True),
    DType("uint16", 2, "<u2", True),
    DType("uint32", 4, "<u4", True),
    DType("uint64", 8, "<u8", True),
    DType("bool", 1, "?", True),
    DType("qint8", 1, "<i1", False),
    DType("quint8", 1, "<u1", False),
    DType("qint32", 4, "<i4", False),
    DType("quint4x2", 1, "<u1", False),
    DType("quint2x4", 1, "<u1", False),
    DType("float8_e4m3fn", 1, "<u1", False),
    DType("float8_e5m2", 1, "<u1", False),
    DType("float8_e4m3fnuz", 1, "<u1", False),
    DType("float8_e5m2fnuz", 1, "<u1", False),
    DType("float8_e8m0fnu", 1, "<u1", False),
    DType("float4_e2m1fn_x2", 1, "<u1", False),
    DType("bits8", 1, "<u1", False),
    DType("bits16", 2, "<u2", False),
    DType("bits1x8", 1, "<u1", False),
    DType("bits2x4", 1, "<u1", False),
    DType("bits4x2", 1, "<u1", False),
    # Sub-byte integer dtypes (torch >= 2.3) occupy one byte per element in storage.
    *(DType(f"uint{n}", 1, "<u1", False) for n in range(1, 8)),
    *(DType(f"int{n}", 1, "<u1", False) for n in range(1, 8)),
]

DTYPES: dict[str, DType] = {d.name: d for d in _TABLE}

#: Legacy typed-storage classes (``torch.FloatStorage`` ...) -> element dtype.
STORAGE_CLASSES: dict[str, str] = {
    "DoubleStorage": "float64", "FloatStorage": "float32", "HalfStorage": "float16",
    "BFloat16Storage": "bfloat16", "LongStorage": "int64", "IntStorage": "int32",
    "ShortStorage": "int16", "CharStorage": "int8", "ByteStorage": "uint8",
    "BoolStorage": "bool", "ComplexFloatStorage": "complex64",
    "ComplexDoubleStorage": "complex128", "QInt8Storage": "qint8", "QUInt8Storage": "quint8",
    "QInt32Storage": "qint32", "QUInt4x2Storage": "quint4x2", "QUInt2x4Storage": "quint2x4",
    "UntypedStorage": "uint8",
}

#: safetensors dtype codes -> torch dtype names.
SAFETENSORS_CODES: dict[str, str] = {
    "F64": "float64", "F32": "float32", "F16": "float16", "BF16": "bfloat16",
    "I64": "int64", "I32": "int32", "I16": "int16", "I8": "int8",
    "U64": "uint64", "U32": "uint32", "U16": "uint16", "U8": "uint8", "BOOL": "bool",
    "C64": "complex64", "F8_E4M3": "float8_e4m3fn", "F8_E5M2": "float8_e5m2",
    "F8_E8M0": "float8_e8m0fnu",
}
SAFETENSORS_NAMES: dict[str, str] = {v: k for k, v in SAFETENSORS_CODES.items()}
