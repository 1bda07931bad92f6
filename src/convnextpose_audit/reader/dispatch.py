"""Read one byte source as ``torch.load`` would dispatch it, and name every global it would resolve.

torch.load decides from the bytes: ``PK\\x03\\x04`` first means its zip reader (and
a ``constants.pkl`` record hands the archive to TorchScript); otherwise, if
Python's tarfile accepts the file, the torch <= 0.3 tar layout; otherwise a
stream of pickles from byte 0. (torch 2.13 also sends a *path* ending in
``.safetensors`` to the safetensors loader; every other version and name uses
the rules above, so a safetensors file is read as such only when the pickle
stream torch would otherwise run stops at once.)

Every reader here appends each global reference to ``refs`` *before* it raises,
and when a container is refused, a fallback scan covers every pickle any reader
could find in it, so the safety verdict never depends on the structure being
understood. Functions raise :class:`AuditError`; callers judge ``refs`` first.
"""

from __future__ import annotations

from typing import Any

from ..errors import AmbiguousContainerError, ArchiveError, AuditError, NotACheckpointError
from ..plain import Plain
from .archive import Records, TorchLayout, check_loader_records, folder_layout, read_records_pickle, unextractable
from .detect import SNIFF_BYTES
from .legacy import read_legacy
from .limits import Limits
from .meter import Meter
from .pickle import GlobalRef, scan_pickle
from .safetensors_format import looks_like_safetensors, read_safetensors
from .source import ByteSource
from .tartorch import TarEntry, read_tar, tar_listing
from .zipread import ZipArchive

#: What torch.load runs for a TorchScript archive; recorded as a global so policy and verdict treat it alike.
TORCHSCRIPT_LOAD = GlobalRef("torch.jit", "load", "DISPATCH", 0)
_DEFLATED = 8


class Reading(Plain):
    """The outcome of reading one source: the object, its format, and what the reading saw.

    ``unread`` lists records torch does not read (listed, not examined); ``code`` a TorchScript
    archive's code/ records (what torch.jit.load compiles).
    """

    __slots__ = ("obj", "format", "refs", "warnings", "byteorder", "metadata", "unread", "code")

    def __init__(self, obj: Any, format: str, refs: list[tuple[str, GlobalRef]], warnings: list[str] | None = None,
                 byteorder: str = "little", metadata: dict[str, str] | None = None):
        self.obj, self.format, self.refs, self.byteorder, self.metadata = obj, format, refs, byteorder, metadata
        self.warnings = [] if warnings is None else warnings
        self.unread: list[str] = []
        self.code: list[str] = []


# -- zips ---------------------------------------------------------------------------------------------------------
def open_zip(source: ByteSource, limits: Limits, refs: list[tuple[str, GlobalRef]]) -> ZipArchive:
    """Parse a zip's directory; a directory refused as ambiguous first has its pickle records scanned."""
    try:
        return ZipArchive(source, limits)
    except AuditError as exc:
        scan_candidates(source, getattr(exc, "candidates", ()), limits, refs)
        raise


def scan_candidates(source: ByteSource, members, limits: Limits, refs: list[tuple[str, GlobalRef]]) -> None:
    """Scan every pickle record any reading of a refused directory names (``*.pkl``, any case).

    Only directories some miniz version would read carry candidates: where miniz
    itself fails (no end record, a truncated directory), torch runs nothing, and
    tensor bytes are never read as pickles.
    """
    seen: set[tuple[bytes, int]] = set()
    for m in members:
        if not m.raw.lower().endswith((b".pkl", b".debug_pkl")) or (m.raw, m.header_offset) in seen:
            continue
        seen.add((m.raw, m.header_offset))
        member = f"{source.label}: {m.name}"
        try:
            data = bytes(ZipArchive.read_unchecked(source, m, limits))
        except AuditError:
            continue
        refs.extend((m.name, ref) for ref in scan_pickle(data, member=member, limits=limits).globals)


def read_folder(records: Records, limits: Limits, meter: Meter, refs: list[tuple[str, GlobalRef]]) -> Reading:
    """Read an extracted archive folder by the same rules (torch itself cannot open folders)."""
    layout = folder_layout(records)
    return read_records(records, layout, "extracted", limits, meter, refs, records.label)


def read_records(records: Records, layout: TorchLayout, fmt: str, limits: Limits, meter: Meter,
                 refs: list[tuple[str, GlobalRef]], label: str) -> Reading:
    """data.pkl (or TorchScript's pickles) with storages; every other pickle record scanned for globals."""
    if layout.kind == "refused":
        _scan_records(records, layout.pickles, label, limits, refs)
        raise ArchiveError(f"{label}: not an archive torch can load ({layout.reason})")
    byteorder, problem = check_loader_records(records)
    reading = Reading(None, fmt, refs, records.warnings, byteorder)
    torchscript = layout.kind == "torchscript"
    if torchscript:
        refs.append(("constants.pkl", TORCHSCRIPT_LOAD))
        reading.format = "torchscript"
    main = layout.pickles[0] if layout.pickles else None
    structured = [main] if main else []
    if torchscript and "constants.pkl" in layout.pickles and main != "constants.pkl":
        structured.append("constants.pkl")
    _scan_records(records, [n for n in layout.pickles if n not in structured], label, limits, refs)
    objects = {}
    for name in structured:
        folder = "constants" if name == "constants.pkl" else "data"
        result = read_records_pickle(records, name, label=label, limits=limits, meter=meter,
                                     byteorder=byteorder, storage_folder=folder)
        refs.extend((name, ref) for ref in result.globals)
        if result.error is not None:
            raise result.error
        objects[name] = result.obj
    if problem:
        raise AmbiguousContainerError(f"{label}: ambiguous container: {problem}")
    refusal = unextractable(records)
    if refusal:
        raise ArchiveError(f"{label}: not an archive torch can load ({refusal})")
    reading.obj = objects.get(main)
    name_warning(label, reading)
    if torchscript:
        reading.code = [n for n in records.names() if n.startswith("code/")]
    used = {n.lower() for n in layout.pickles} | {"version", ".data/version", "byteorder", ".format_version",
                                                 ".storage_alignment", ".data/serialization_id"}
    reading.unread = [n for n in records.names() if n.lower() not in used and not n.startswith(("data/", "constants/",
                                                                                              "code/", ".data/"))]
    return reading


def _scan_records(records: Records, names: list[str], label: str, limits: Limits,
                  refs: list[tuple[str, GlobalRef]]) -> None:
    # Pickle records torch.load itself does not run (debug pickles, extra .pkl files) still name globals.
    for name in names:
        try:
            data = bytes(records.read(name, limits.max_pickle_bytes, name))
        except AuditError:
            continue
        refs.extend((name, ref) for ref in scan_pickle(data, member=f"{label}: {name}", limits=limits).globals)


def name_warning(label: str, reading: Reading) -> Reading:
    """Say when torch 2.13's name-based dispatch disagrees with the bytes (read here by bytes, as before 2.13)."""
    named = label.rsplit("!", 1)[-1].endswith(".safetensors")
    if named and reading.format != "safetensors":
        reading.warnings.append("named .safetensors but a torch checkpoint: torch >= 2.13 reads such a name with "
                                "the safetensors library and fails; older torch reads the bytes as here")
    elif not named and reading.format == "safetensors":
        reading.warnings.append("a safetensors file not named .safetensors: torch.load reads it only under that "
                                "name (torch >= 2.13)")
    return reading


# -- everything that is not a zip ------------------------------------------------------------------------------------
def read_stream(source: ByteSource, limits: Limits, meter: Meter, refs: list[tuple[str, GlobalRef]]) -> Reading:
    """A file torch does not take for a zip: the tar layout if tarfile accepts it, else a pickle stream.

    Raises :class:`NotACheckpointError` when torch would stop without running
    anything or returning an object.
    """
    warnings: list[str] = []
    entries = tar_listing(source, limits)
    if entries is not None:
        return _read_tar(source, entries, limits, meter, refs, warnings)
    head = source.pread(0, min(SNIFF_BYTES, source.size))
    safetensors = looks_like_safetensors(head, source.size)
    try:
        obj = read_legacy(source, limits, meter, refs, warnings)
    except NotACheckpointError:
        if not safetensors:
            raise
        obj, metadata = read_safetensors(source, limits, meter)
        return name_warning(source.label, Reading(obj, "safetensors", refs, warnings, metadata=metadata))
    if safetensors:
        raise AmbiguousContainerError(f"{source.label}: ambiguous container: both a valid safetensors file and a "
                                      "torch pickle stream (torch reads one or the other by file name and version)")
    return name_warning(source.label, Reading(obj, "legacy", refs, warnings))


def _read_tar(source: ByteSource, entries: list[TarEntry], limits: Limits, meter: Meter,
              refs: list[tuple[str, GlobalRef]], warnings: list[str]) -> Reading:
    # tarfile's verdict differs across Python versions (and its extraction filters with them); where one
    # version falls back to the pickle-stream path, that stream's first pickles run: scan them too.
    try:
        read_legacy(source, limits, meter, refs, [])
    except AuditError:
        pass
    try:
        return Reading(read_tar(source, entries, limits, meter, refs), "tar", refs, warnings)
    except NotACheckpointError:
        raise
    except AuditError:
        _scan_tar_members(source, entries, limits, refs)
        raise


def _scan_tar_members(source: ByteSource, entries: list[TarEntry], limits: Limits,
                      refs: list[tuple[str, GlobalRef]]) -> None:
    seen = {(r.offset, m) for m, r in refs}
    for e in entries:
        if not e.regular or e.size == 0:
            continue
        member = f"{source.label}: {e.name[:80]}"
        data = source.pread(e.offset, min(e.size, limits.max_pickle_bytes))
        for ref in scan_pickle(data, member=member, limits=limits).globals:
            if (ref.offset, member) not in seen:
                refs.append((member, ref))
