"""The torch >= 1.6 archive as PyTorchStreamReader serves it: records under one top folder.

torch.load (zip path) opens the archive with PyTorchStreamReader, which takes the
top folder from the *first* central-directory entry, insists that every member
lives under it, reads ``version`` (or ``.data/version``) with ``stoull`` and
accepts 1..10, then hands a ``constants.pkl`` archive to ``torch.jit.load`` and
otherwise unpickles ``data.pkl``, loading ``data/<key>`` records for storages.
:func:`torch_layout` applies those rules and says whether torch reads the
archive, hands it to TorchScript, or refuses it before unpickling anything (in
which case the zip may still be an outer container of checkpoints).
"""

from __future__ import annotations

import re
from typing import Any, Callable, Protocol

from ..errors import ArchiveError, MalformedPickleError, UnsupportedCheckpointError
from ..plain import Plain
from .limits import Limits
from .meter import Meter
from .pickle import PickleRead, read_pickle
from .safe_globals import StorageType
from .tensor import StorageRef
from .walk import shown
from .zipread import ZipArchive, ZipMember

#: caffe2/serialize/versions.h: kMinSupportedFileFormatVersion .. kMaxSupportedFileFormatVersion (torch 2.13)
VERSION_RANGE = (1, 10)
#: torch's zip loader renames this module before lookup (pytorch#51633)
ZIP_MODULE_MAPPING = {"torch.tensor": "torch._tensor"}
_STOULL = re.compile(rb"[ \t\n\v\f\r]*([+-]?)([0-9]+)")
_KEY = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]{0,127}")


class Records(Protocol):
    """Named byte blobs an archive is read from: a zip under its top folder, or an extracted folder."""

    label: str
    warnings: list[str]

    def names(self) -> list[str]: ...
    def size(self, name: str) -> int | None: ...
    def read(self, name: str, max_bytes: int, what: str = "member", mapped: bool = False) -> Any: ...


class ZipRecords:
    """The records of a zip under its top folder, looked up as miniz does (ASCII case-insensitive)."""

    def __init__(self, archive: ZipArchive, prefix: bytes, members: list[ZipMember] | None = None):
        # ``members``: the records under ``prefix`` when the caller has filed them already (an outer zip's
        # extracted trees); otherwise every member is under it (torch's own archive layout).
        self.archive = archive
        self.prefix = prefix
        self.members = archive.members if members is None else members
        self.label = archive.label
        # A torch archive's records share the zip's warnings. A tree of an outer zip keeps its own: every tree's
        # checkpoint copies its warnings, and N trees copying one growing list was quadratic (2,000 trees: 805 MiB).
        self.warnings = archive.warnings if members is None else []

    def _member(self, name: str) -> ZipMember | None:
        return self.archive.find(self.prefix + name.encode("utf-8"))

    def names(self) -> list[str]:
        """Every record name below the top folder, in directory order."""
        n = len(self.prefix)
        return [m.raw[n:].decode("utf-8", "replace") for m in self.members]

    def size(self, name: str) -> int | None:
        m = self._member(name)
        return None if m is None else m.usize

    def check(self, name: str) -> None:
        """Refuse, from the directory alone, a record miniz could not extract (encrypted, unknown method)."""
        m = self._member(name)
        why = m.unextractable() if m is not None else None
        if why:
            raise ArchiveError(f"{self.label}: record {name!r} {why}; torch fails on it")

    def read(self, name: str, max_bytes: int, what: str = "member", mapped: bool = False):
        m = self._member(name)
        if m is None:
            raise ArchiveError(f"{self.label}: missing record {name!r}")
        mark = len(self.archive.warnings)
        data = self.archive.read(m, max_bytes, what, mapped)
        if not mapped:
            self.archive.check_crc(m, data)
        if self.warnings is not self.archive.warnings and len(self.archive.warnings) > mark:
            self.warnings.extend(self.archive.warnings[mark:])  # what reading this record found is this tree's
            del self.archive.warnings[mark:]
        return data


class TorchLayout(Plain):
    """How torch.load treats an archive.

    ``kind`` is "torch" (it loads data.pkl), "torchscript" or "refused"; ``reason`` says why torch
    refuses, in one line; ``is_archive`` that it passed the top-folder and version checks (else the
    zip may be an outer container); ``pickles`` the pickle records, the one torch runs first.
    """

    __slots__ = ("records", "kind", "reason", "is_archive", "pickles")

    def __init__(self, records: Records | None, kind: str, reason: str = "", is_archive: bool = False,
                 pickles: list[str] | None = None):
        self.records, self.kind, self.reason, self.is_archive = records, kind, reason, is_archive
        self.pickles = [] if pickles is None else pickles


def parse_version(raw: bytes) -> int | None:
    """The archive version as ``std::stoull`` reads it (leading space, sign, trailing junk), or None."""
    m = _STOULL.match(raw)
    if m is None:
        return None
    value = int(m.group(2))
    return (-value) % (1 << 64) if m.group(1) == b"-" else value


def torch_layout(archive: ZipArchive) -> TorchLayout:
    """Apply PyTorchStreamReader's and torch.load's rules to a parsed zip (see module docstring)."""
    members = archive.members
    if not members:
        return TorchLayout(None, "refused", "archive does not contain any files")
    first = members[0].raw
    slash = first.find(b"/")
    if slash < 0:
        return TorchLayout(None, "refused", f"first member {members[0].name!r} is not in a folder")
    prefix = first[:slash + 1]
    outside = next((m for m in members if not m.raw.startswith(prefix)), None)
    if outside is not None:
        return TorchLayout(None, "refused", f"member {outside.name!r} is outside the archive folder "
                                            f"{prefix.decode('utf-8', 'replace')!r}")
    records = ZipRecords(archive, prefix)
    return _check_records(records, records.names())


def folder_layout(records: Records) -> TorchLayout:
    """The same rules for an extracted folder (no top-folder rule: the folder is the top)."""
    return _check_records(records, records.names(), require_version=False)


def _check_records(records: Records, names: list[str], require_version: bool = True) -> TorchLayout:
    version_name = ".data/version" if records.size(".data/version") is not None else "version"
    if records.size(version_name) is None:
        if require_version:
            return TorchLayout(records, "refused", "no version record")
    else:
        version = parse_version(bytes(records.read(version_name, 64, "version record")))
        if version is None or not VERSION_RANGE[0] <= version <= VERSION_RANGE[1]:
            return TorchLayout(records, "refused", f"unsupported archive version {version}", is_archive=True)
    pickles = [n for n in names if n.lower().endswith((".pkl", ".debug_pkl"))]
    if "constants.pkl" in names:  # exact, case-sensitive: torch's _is_torchscript_zip
        first = [n for n in ("data.pkl", "constants.pkl") if n in names]
        return TorchLayout(records, "torchscript", "", True, first + [n for n in pickles if n not in first])
    if records.size("data.pkl") is None:
        return TorchLayout(records, "refused", "no data.pkl", is_archive=True, pickles=pickles)
    data = next(n for n in names if n.lower() == "data.pkl")
    return TorchLayout(records, "torch", "", True, [data] + [n for n in pickles if n != data])


def check_loader_records(records: Records) -> tuple[str, str | None]:
    """torch's own checks before unpickling: ``(byteorder, refusal or None)``.

    PyTorchStreamReader reads ``.data/serialization_id`` when it opens the archive, so
    that record must be readable (a compression method miniz lacks fails torch there).
    """
    if records.size(".data/serialization_id") is not None:
        records.read(".data/serialization_id", 1 << 16, "serialization id record")
    byteorder = "little"
    if records.size("byteorder") is not None:
        raw = bytes(records.read("byteorder", 16, "byteorder record"))
        if raw not in (b"little", b"big"):
            return byteorder, f"byteorder record says {raw[:16]!r} (torch accepts exactly 'little' or 'big')"
        byteorder = raw.decode()
    if records.size(".storage_alignment") is not None:
        raw = bytes(records.read(".storage_alignment", 64, ".storage_alignment record"))
        try:
            int(raw)
        except ValueError:
            return byteorder, f".storage_alignment record {raw[:16]!r} is not an int (torch >= 2.5 refuses it)"
    return byteorder, None


def unextractable(records: Records) -> str | None:
    """Why torch fails on this archive because of one record's zip flags, or None.

    The differential harness found that a record marked encrypted, or compressed with a method
    miniz lacks (bzip2, lzma, AES), makes torch 2.13 fail on the whole archive ("failed retrieving
    file meta-data") even when it is a record torch never reads itself, such as ``.format_version``.
    So any such record refuses the file; a storage record too, on the metadata path that never reads it.
    """
    for m in getattr(records, "members", ()):  # an extracted folder has no zip flags
        why = m.unextractable()
        if why:
            return f"record {m.name!r} {why}; torch fails on the whole archive"
    return None


def check_storage_key(key: Any, where: str) -> str:
    """Return ``key`` if it is a plain storage name; never a path that could leave its folder."""
    if not isinstance(key, str) or not _KEY.fullmatch(key) or ".." in key:
        raise MalformedPickleError(f"{where}: storage key {shown(key)!r} is not a plain name")
    return key


def byteswapper(data, dtype):
    """Return ``data`` converted from big- to little-endian elements of ``dtype`` (a copy)."""
    import numpy as np

    # Complex values swap each of their two components separately.
    width = dtype.itemsize // 2 if dtype.name.startswith("complex") else dtype.itemsize
    if width == 1:
        return data
    return np.frombuffer(data, dtype=f">u{width}").astype(f"<u{width}").tobytes()


def storage_loader(records: Records, folder: str, byteorder: str, limits: Limits,
                   label: str) -> Callable[[Any], StorageRef]:
    """torch's zip ``persistent_load``: ``('storage', type, key, location, numel)`` -> a lazy storage.

    Storages of one pickle are shared by key, as torch shares them; sizes are
    checked against the records before anything is read.
    """
    storages: dict[str, StorageRef] = {}

    def persistent_load(pid: Any) -> StorageRef:
        if not (isinstance(pid, tuple) and len(pid) == 5):
            raise MalformedPickleError(f"{label}: unexpected persistent id")
        typename, stype, key, location, numel = pid
        if isinstance(typename, bytes):
            typename = typename.decode("ascii", "replace")
        if isinstance(location, bytes):
            location = location.decode("ascii", "replace")
        if typename != "storage":
            raise MalformedPickleError(f"{label}: unexpected persistent id {str(typename)[:20]!r}")
        if not isinstance(stype, StorageType) or stype.dtype is None:
            raise MalformedPickleError(f"{label}: persistent id without a storage type")
        if type(numel) is not int or numel < 0 or not isinstance(location, str):
            raise MalformedPickleError(f"{label}: malformed storage record")
        key = check_storage_key(key, label)
        if key in storages:
            return storages[key]
        nbytes = numel * stype.dtype.itemsize
        limits.check("max_storage_bytes", nbytes, f"{label}: storage {key}")
        name = f"{folder}/{key}"
        actual = records.size(name)
        if actual is None:
            raise ArchiveError(f"{label}: storage record {name} is missing")
        if actual != nbytes:  # torch: "record size ... does not match expected size"
            raise ArchiveError(f"{label}: storage {name} holds {actual:,} bytes, {nbytes:,} declared")
        getattr(records, "check", lambda _name: None)(name)
        ref = StorageRef(key, stype.dtype, nbytes, location)
        if byteorder == "big":
            ref.bind(lambda: byteswapper(records.read(name, actual, "storage", mapped=True), stype.dtype))
        else:
            ref.bind(lambda: records.read(name, actual, "storage", mapped=True))
        storages[key] = ref
        return ref

    return persistent_load


def read_records_pickle(records: Records, name: str, *, label: str, limits: Limits, meter: Meter,
                        byteorder: str, storage_folder: str | None) -> PickleRead:
    """Read one pickle record: structured when ``storage_folder`` names its storages, else scan-only data.

    The record's bytes are held in memory while its values are built: they are charged to the file's byte
    budget first, and an inflated record is used as it is, never copied.
    """
    size = records.size(name) or 0
    if size <= limits.max_pickle_bytes:  # (a bigger one is refused by read(), naming that limit)
        meter.charge_bytes(size, f"{label}: {name}")
    data = records.read(name, limits.max_pickle_bytes, name)
    loader = storage_loader(records, storage_folder, byteorder, limits, f"{label}: {name}") if storage_folder else None
    return read_pickle(data, member=f"{label}: {name}", limits=limits, meter=meter, persistent_load=loader,
                       module_mapping=ZIP_MODULE_MAPPING)


def unsupported_pickle_error(name: str) -> UnsupportedCheckpointError:
    """For callers that meet a record they know torch reads but this reader does not model."""
    return UnsupportedCheckpointError(f"record {name} is not modelled")
