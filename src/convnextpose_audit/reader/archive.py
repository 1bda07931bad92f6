"""The torch >= 1.6 archive layout (``data.pkl`` + ``data/<key>``), from a zip or an extracted folder."""

from __future__ import annotations

import re
from typing import Any

from ..errors import ArchiveError, MalformedPickleError, UnsupportedCheckpointError
from .limits import Limits
from .safe_globals import StorageType
from .tensor import StorageRef
from .unpickler import unpickle

_KEY = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]{0,127}")


def check_storage_key(key: Any, where: str) -> str:
    """Return ``key`` if it is a plain storage name; never a path that could leave its folder."""
    if not isinstance(key, str) or not _KEY.fullmatch(key) or ".." in key:
        raise MalformedPickleError(f"{where}: storage key {str(key)[:40]!r} is not a plain name")
    return key


def byteswapper(data, dtype):
    """Return ``data`` converted from big- to little-endian elements of ``dtype`` (a copy)."""
    import numpy as np

    # Complex values swap each of their two components separately.
    width = dtype.itemsize // 2 if dtype.name.startswith("complex") else dtype.itemsize
    if width == 1:
        return data
    return np.frombuffer(data, dtype=f">u{width}").astype(f"<u{width}").tobytes()


def read_torch_archive(store, label: str, limits: Limits) -> tuple[Any, str]:
    """Unpickle ``data.pkl`` of a store; return ``(object, byteorder)`` with storages bound lazily."""
    if store.size("data.pkl") is None:
        raise ArchiveError(f"{label}: no data.pkl (not a torch archive)")
    byteorder = "little"
    if store.size("byteorder") is not None:
        byteorder = bytes(store.read("byteorder", 16)).decode("ascii", "replace").strip()
        if byteorder not in ("little", "big"):
            raise ArchiveError(f"{label}: byteorder record says {byteorder[:16]!r}")
    pickled = bytes(store.read("data.pkl", limits.max_pickle_bytes, "data.pkl"))
    storages: dict[str, StorageRef] = {}

    def persistent_load(pid: Any) -> StorageRef:
        if isinstance(pid, str):
            raise UnsupportedCheckpointError(
                f"{label}: storage ids written as text (pickle protocol 0); torch cannot load this file either")
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"):
            raise MalformedPickleError(f"{label}: data.pkl: unexpected persistent id")
        _, stype, key, location, numel = pid
        if not isinstance(stype, StorageType) or type(numel) is not int or numel < 0 or not isinstance(location, str):
            raise MalformedPickleError(f"{label}: data.pkl: malformed storage record")
        key = check_storage_key(key, f"{label}: data.pkl")
        if key in storages:
            return storages[key]
        nbytes = numel * stype.dtype.itemsize
        limits.check("max_storage_bytes", nbytes, f"{label}: storage {key}")
        name = f"data/{key}"
        actual = store.size(name)
        if actual is None:
            raise ArchiveError(f"{label}: storage member {name} is missing")
        if actual < nbytes:
            raise ArchiveError(f"{label}: storage {name} holds {actual:,} bytes, {nbytes:,} declared")
        ref = StorageRef(key, stype.dtype, nbytes, location)
        if byteorder == "big":
            ref.bind(lambda: byteswapper(store.read(name, actual, "storage", mapped=True), stype.dtype))
        else:
            ref.bind(lambda: store.read(name, actual, "storage", mapped=True))
        storages[key] = ref
        return ref

    obj, _ = unpickle(pickled, member=f"{label}: data.pkl", limits=limits, persistent_load=persistent_load)
    return obj, byteorder
