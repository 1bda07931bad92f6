"""Lazy tensor references: shape and layout from the pickle, bytes only on request."""

from __future__ import annotations

from typing import Any, Callable

from ..errors import ArchiveError, LimitExceeded, TorchMissingError, UnsupportedCheckpointError
from .dtypes import DType

#: A callable that returns exactly ``nbytes`` bytes of one storage, little-endian.
BufferFetcher = Callable[[], "memoryview | bytes"]


class StorageRef:
    """One storage record in a checkpoint: key, element dtype, size; bytes fetched lazily."""

    __slots__ = ("key", "dtype", "nbytes", "location", "_fetch", "_buffer", "_torch")

    def __init__(self, key: str, dtype: DType, nbytes: int, location: str, fetch: BufferFetcher | None = None):
        self.key = key
        self.dtype = dtype
        self.nbytes = nbytes
        self.location = location
        self._fetch = fetch
        self._buffer = None
        self._torch = None

    @property
    def numel(self) -> int:
        """Number of elements of the storage's own dtype."""
        return self.nbytes // self.dtype.itemsize

    def bind(self, fetch: BufferFetcher) -> None:
        """Attach the function that reads this storage's bytes (set by the container)."""
        self._fetch = fetch

    def buffer(self) -> "memoryview | bytes":
        """The storage's bytes (memory-mapped where the container allows), read once and cached."""
        if self._buffer is None:
            if self._fetch is None:
                raise ArchiveError(f"storage {self.key!r} has no data in this container")
            data = self._fetch()
            if len(data) < self.nbytes:
                raise ArchiveError(f"storage {self.key!r} holds {len(data)} bytes, {self.nbytes} declared")
            self._buffer = memoryview(data)[: self.nbytes]
        return self._buffer

    def release(self) -> None:
        """Drop cached bytes so the container's file handles can close."""
        self._buffer = None
        self._torch = None

    def torch_storage(self):
        """A torch ``UntypedStorage`` holding a private copy of the bytes (shared by all views)."""
        if self._torch is None:
            torch = import_torch()
            raw = bytearray(self.buffer())
            if raw:
                self._torch = torch.frombuffer(raw, dtype=torch.uint8).untyped_storage()
            else:
                self._torch = torch.empty(0, dtype=torch.uint8).untyped_storage()
        return self._torch


class TensorRef:
    """A tensor as the pickle describes it; nothing is read until :meth:`numpy` or :meth:`torch`.

    ``dtype`` is torch's dtype name without the ``torch.`` prefix; ``shape`` and
    ``stride`` are tuples of int in elements; ``nbytes`` is the tensor's logical
    size (elements × item size), not its storage's; ``name`` is the first path at
    which the checkpoint holds it (``network/module.head.final_layer.weight``);
    ``storage.key`` names its storage record.
    """

    __slots__ = ("storage", "_dtype", "shape", "stride", "storage_offset", "requires_grad", "is_parameter", "attrs",
                 "name")

    def __init__(self, storage: StorageRef, dtype: DType, offset: int, shape: tuple, stride: tuple,
                 requires_grad: bool = False, *, max_bytes: int | None = None):
        self.storage = storage
        self._dtype = dtype
        self.storage_offset = offset
        self.shape = shape
        self.stride = stride
        self.requires_grad = requires_grad
        self.is_parameter = False
        self.attrs: dict[str, Any] = {}
        self.name: str | None = None
        self._check_bounds(max_bytes)

    @property
    def dtype(self) -> str:
        """torch's dtype name, e.g. ``"float32"`` or ``"bfloat16"``."""
        return self._dtype.name

    @property
    def itemsize(self) -> int:
        """Bytes per element."""
        return self._dtype.itemsize

    @property
    def numel(self) -> int:
        """Number of elements in the tensor (product of its shape)."""
        n = 1
        for d in self.shape:
            n *= d
        return n

    @property
    def nbytes(self) -> int:
        """Logical byte size: elements × item size."""
        return self.numel * self._dtype.itemsize

    def _check_bounds(self, max_bytes: int | None) -> None:
        # A view that reaches outside its storage would read foreign memory; refuse it up front. A view's
        # logical size is bounded too: a stride-0 view of 4 bytes can claim 2**30 elements, and everything
        # that materialises values (--hash, diff, convert) works on the logical size.
        if len(self.shape) != len(self.stride):
            raise ArchiveError(f"tensor in storage {self.storage.key!r}: shape of {len(self.shape)} and stride of {len(self.stride)} dimensions differ in rank")
        if any(d < 0 for d in self.shape) or any(s < 0 for s in self.stride) or self.storage_offset < 0:
            raise ArchiveError(f"tensor in storage {self.storage.key!r}: negative size, stride or offset")
        numel = 1
        for d in self.shape:
            numel *= d
        if max_bytes is not None and numel * self._dtype.itemsize > max_bytes:
            raise LimitExceeded(f"tensor in storage {self.storage.key!r}: shape {self.shape[:8]} is "
                                f"{_size_text(numel * self._dtype.itemsize)} bytes, over max_storage_bytes={max_bytes:,}")
        if numel == 0:
            return
        last = self.storage_offset
        for d, s in zip(self.shape, self.stride):
            last += (d - 1) * s
        end_bytes = (last + 1) * self._dtype.itemsize
        if end_bytes > self.storage.nbytes:
            raise ArchiveError(
                f"tensor view {self.shape[:8]} at offset {self.storage_offset} reaches past its storage "
                f"{self.storage.key!r} ({_size_text(end_bytes)} > {self.storage.nbytes} bytes)")

    def numpy(self):
        """The values as a numpy array, zero-copy (read-only) where the bytes are memory-mapped.

        dtypes numpy lacks come back as their raw bits: bfloat16 as uint16,
        float8 as uint8, complex32 as uint32, quantised types as their integer storage.
        """
        import numpy as np

        dt = np.dtype(self._dtype.numpy)
        isz = self._dtype.itemsize
        try:
            if self.numel == 0:
                return np.empty(self.shape, dtype=dt)
            return np.ndarray(self.shape, dtype=dt, buffer=self.storage.buffer(), offset=self.storage_offset * isz,
                              strides=tuple(s * isz for s in self.stride))
        except ValueError as exc:  # more than 64 dimensions, or a size past numpy's (torch may hold such tensors)
            raise UnsupportedCheckpointError(f"tensor in storage {self.storage.key!r} with {len(self.shape)} "
                                             f"dimensions cannot be read as an array ({exc})") from None

    def chunks(self, max_bytes: int = 16 << 20):
        """The values in C order as contiguous numpy arrays of at most ``max_bytes`` each (at least one element).

        Memory stays bounded whatever the view: a stride-0 tensor that claims
        2**30 elements of one stored float is streamed, never materialised.
        """
        arr = self.numpy()
        if arr.size == 0:
            return
        yield from _chunks(arr, max(1, max_bytes // arr.itemsize))

    def torch(self):
        """The tensor as ``torch.load`` returns it (same storage sharing, strides, dtype, Parameter-ness).

        Needs the ``torch`` extra; raises :class:`TorchMissingError` otherwise.
        """
        torch = import_torch()
        t = torch.empty((0,), dtype=getattr(torch, self._dtype.name))
        t.set_(self.storage.torch_storage(), self.storage_offset, self.shape, self.stride)
        if self.is_parameter:
            t = torch.nn.Parameter(t, requires_grad=self.requires_grad)
        elif self.requires_grad:
            t.requires_grad = True
        return t

    def __repr__(self) -> str:
        return f"TensorRef({self.name!r}, dtype={self.dtype}, shape={self.shape}, storage={self.storage.key!r})"


def _size_text(n: int) -> str:
    # A shape of 250 dimensions of 2**61 is a size of 4,600 digits: Python refuses to print it in decimal.
    return f"{n:,}" if n.bit_length() <= 64 else f"about 2**{n.bit_length() - 1}"


def _chunks(arr, max_elems: int):
    import numpy as np

    if arr.flags.c_contiguous:  # zero-copy slices of the mapped bytes
        flat = arr.reshape(-1)
        for start in range(0, flat.size, max_elems):
            yield flat[start:start + max_elems]
        return
    if arr.ndim == 1:
        for start in range(0, arr.shape[0], max_elems):
            yield np.ascontiguousarray(arr[start:start + max_elems])
        return
    row = arr[0].size  # elements under one index of the leading axis
    if row <= max_elems:
        step = max(1, max_elems // max(row, 1))
        for start in range(0, arr.shape[0], step):
            yield np.ascontiguousarray(arr[start:start + step]).reshape(-1)
        return
    for i in range(arr.shape[0]):
        yield from _chunks(arr[i], max_elems)


def import_torch():
    """Import torch or raise :class:`TorchMissingError` with the install hint."""
    try:
        import torch
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise TorchMissingError(
            "this needs torch: pip install torch==2.13.0 'convnextpose-audit[torch]'") from exc
    return torch
