"""``.safetensors``: an 8-byte header length, a JSON header, then raw little-endian tensors."""

from __future__ import annotations

import json
import struct

from ..errors import ArchiveError, LimitExceeded
from .dtypes import DTYPES, SAFETENSORS_CODES
from .limits import Limits
from .meter import OBJECT_COST, Meter
from .source import ByteSource
from .tensor import StorageRef, TensorRef


def charge_json(raw: bytes, meter: Meter, what: str) -> None:
    """Charge the values ``json.loads(raw)`` would build before it builds them.

    A 90 MB header of ``{},{},...`` parses into 30 million dicts (2 GiB). Every JSON
    value but the first follows a comma or opens a container, so counting those bytes
    (in strings too: an over-count, on the safe side) bounds the values; containers
    cost what a pickle's do, and the text itself is held as bytes and strings.
    """
    containers = raw.count(b"{") + raw.count(b"[")
    meter.charge_bytes(2 * len(raw), what)
    meter.charge_elements(1 + raw.count(b",") + containers * (1 + OBJECT_COST["dict"]), what)


def looks_like_safetensors(head: bytes, size: int) -> bool:
    """True if the first bytes are a plausible safetensors header length followed by ``{``."""
    if len(head) < 9 or head[8:9] != b"{":
        return False
    (n,) = struct.unpack_from("<Q", head)
    return 2 <= n <= size - 8


def read_safetensors(source: ByteSource, limits: Limits,
                     meter: Meter | None = None) -> tuple[dict[str, TensorRef], dict[str, str] | None]:
    """Return ``(name -> TensorRef in header order, __metadata__ or None)``.

    The header's JSON is charged to ``meter`` before it is parsed (see :func:`charge_json`).
    """
    label = source.label
    (n,) = struct.unpack("<Q", source.pread(0, 8))
    limits.check("max_header_bytes", n, f"{label}: safetensors header")
    raw = source.pread(8, n)
    if meter is not None:
        charge_json(raw, meter, f"{label}: safetensors header")
    try:
        header = json.loads(raw)
    except RecursionError:
        raise LimitExceeded(f"{label}: safetensors header nested too deeply") from None
    except ValueError as exc:
        raise ArchiveError(f"{label}: safetensors header is not valid JSON ({exc})") from None
    if not isinstance(header, dict):
        raise ArchiveError(f"{label}: safetensors header is not a JSON object")
    base = 8 + n
    data_size = source.size - base
    metadata = header.pop("__metadata__", None)
    if metadata is not None and not (isinstance(metadata, dict) and all(isinstance(v, str) for v in metadata.values())):
        raise ArchiveError(f"{label}: safetensors __metadata__ must map strings to strings")
    tensors: dict[str, TensorRef] = {}
    for name, info in header.items():
        try:
            dtype = DTYPES[SAFETENSORS_CODES[info["dtype"]]]
            shape = tuple(info["shape"])
            begin, end = info["data_offsets"]
        except (KeyError, TypeError, ValueError):
            raise ArchiveError(f"{label}: safetensors entry {name[:80]!r} is malformed") from None
        # Dimensions are u64 in the format (safetensors' parser refuses bigger ones); 2**62 as in pickles.
        if not all(type(d) is int and 0 <= d < 1 << 62 for d in shape) or type(begin) is not int or type(end) is not int:
            raise ArchiveError(f"{label}: safetensors entry {name[:80]!r} has a shape or offsets that are not integers below 2**62")
        numel = 1
        for d in shape:
            numel *= d
        if not 0 <= begin <= end <= data_size or end - begin != numel * dtype.itemsize:
            raise ArchiveError(f"{label}: safetensors entry {name[:80]!r}: offsets {begin}..{end} do not fit "
                               f"{numel} × {dtype.itemsize} bytes inside {data_size:,} data bytes")
        storage = StorageRef(name, dtype, end - begin, "cpu",
                             lambda a=base + begin, k=end - begin: source.view(a, k))
        stride, acc = [], 1
        for d in reversed(shape):
            stride.append(acc)
            acc *= d
        tensors[name] = TensorRef(storage, dtype, 0, shape, tuple(reversed(stride)), max_bytes=limits.max_storage_bytes)
    return tensors, metadata
