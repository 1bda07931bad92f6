"""Open checkpoints as torch.load would dispatch them, and refuse the unsafe ones in one place.

A path names one of: a file (read as itself, whatever its neighbours); a folder
holding an extracted archive (``data.pkl``) at its top or one level below; an
outer zip (a browser download of a folder) whose members are files and
extracted trees; or ``outer.zip!member`` inside one. Every global reference the
reading met is kept with the member it was in; :func:`finish` turns any outside
the allowlist (and the policy's ``allow`` names) into :class:`UnsafeCheckpointError`,
even when the structured read failed, so structure never decides safety.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator

from ..errors import (AuditError, CheckpointReadError, LimitExceeded, NotACheckpointError, SeveralCheckpointsError,
                      UnsafeCheckpointError)
from ..plain import Plain
from .archive import TorchLayout, ZipRecords, torch_layout
from .detect import SNIFF_BYTES, describe, sniff
from .dispatch import Reading, open_zip, read_folder, read_records, read_stream
from .limits import DEFAULT_LIMITS, Limits
from .meter import Meter
from .pickle import GlobalRef
from .safe_globals import allowed
from .source import ByteSource, FileSource, MemorySource, is_url
from .stores import DirRecords
from .tensor import TensorRef
from .walk import iter_tensors
from .zipread import LOCAL_MAGIC, ZipArchive, ZipMember

FORMATS = ("zip", "torchscript", "extracted", "legacy", "tar", "safetensors")


@dataclass
class Checkpoint:
    """One checkpoint's unpickled object with lazy tensors.

    ``format`` is one of :data:`FORMATS`; ``obj`` is what ``torch.load`` would
    return, with a :class:`TensorRef` at each tensor leaf and inert records
    (``pickle.records``) where the pickle named globals outside the allowlist;
    ``refs`` lists every global reference as ``(member, GlobalRef)``; ``warnings``
    lists tolerated oddities; ``unread`` names records torch does not read; ``code``
    a TorchScript archive's ``code/`` records. Use as
    a context manager so file handles are released.
    """

    name: str
    format: str
    obj: Any
    size: int
    limits: Limits = DEFAULT_LIMITS
    warnings: list[str] = field(default_factory=list)
    metadata: dict[str, str] | None = None  # safetensors __metadata__
    byteorder: str = "little"
    refs: list[tuple[str, GlobalRef]] = field(default_factory=list)
    unread: list[str] = field(default_factory=list)
    meter: Meter | None = None
    code: list[str] = field(default_factory=list)  #: TorchScript code/ records (listed, never compiled or run)
    _closers: list[Callable[[], None]] = field(default_factory=list, repr=False)
    _tensors: list[tuple[str, TensorRef]] | None = field(default=None, repr=False)

    def tensors(self) -> list[tuple[str, TensorRef]]:
        """Every tensor reachable from ``obj`` as ``(path, TensorRef)``, in file order (bounded walk).

        The object is walked once; later calls return the same list (a copy), so
        the walk's cost is paid once per file whoever asks.
        """
        if self._tensors is None:
            self._tensors = list(iter_tensors(self.obj, self.limits, meter=self.meter))
        return list(self._tensors)

    def refused(self, allow: Iterable[str] = ()) -> list[tuple[str, GlobalRef]]:
        """Global references outside the allowlist and the names in ``allow``."""
        return refused_refs(self.refs, frozenset(allow))

    def close(self) -> None:
        """Release cached bytes and file handles. Arrays already returned stay valid."""
        try:
            tensors = self.tensors()
        except AuditError:  # never walked (and cannot be): nothing of it was read through the walk either
            tensors = []
        for _, t in tensors:
            t.storage.release()
        for closer in self._closers:
            closer()
        self._closers.clear()

    def __enter__(self) -> "Checkpoint":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class Entry(Plain):
    """A checkpoint found at a path (one per inner checkpoint of an outer zip).

    ``open(allow, read_unsafe)`` reads it (and may raise an :class:`AuditError`);
    ``skipped`` is set instead, with the reason, for a member that is not a checkpoint.
    """

    __slots__ = ("name", "open", "skipped")

    def __init__(self, name: str, open: Callable[..., Checkpoint] | None = None, skipped: str | None = None):
        self.name, self.open, self.skipped = name, open, skipped


# -- safety ----------------------------------------------------------------------------------------------------------
def refused_refs(refs: list[tuple[str, GlobalRef]], allow: frozenset[str] = frozenset()) -> list[tuple[str, GlobalRef]]:
    """References to globals that are neither on the allowlist nor allowed by name."""
    return [(m, r) for m, r in refs if allowed(r.module, r.name) is None and r.qualname not in allow]


def unsafe_error(label: str, refused: list[tuple[str, GlobalRef]], read_error: AuditError | None) -> UnsafeCheckpointError:
    """The one UNSAFE error: every refused global named, the first with its member and opcode."""
    names = list(dict.fromkeys(r.qualname for _, r in refused))
    member, first = refused[0]
    shown = ", ".join(names[:8]) + (f" and {len(names) - 8} more" if len(names) > 8 else "")
    err = UnsafeCheckpointError(
        f"{label}: unsafe: references {shown} ({first.opcode} in {member.rsplit(': ', 1)[-1]} at byte "
        f"{first.offset:,}); outside the allowlist, nothing was imported or called",
        module=first.module, name=first.name, member=member, globals=tuple(names))
    err.refs = refused
    err.read_error = str(read_error) if read_error else None
    return err


def finish(label: str, read: Callable[[list], Reading], size: int, limits: Limits, *,
           allow: frozenset[str] = frozenset(), read_unsafe: bool = False,
           closers: Iterable[Callable[[], None]] = (), held: int = 0) -> Checkpoint:
    """Run ``read(refs)`` and judge the references it met; return the :class:`Checkpoint`.

    Raises :class:`UnsafeCheckpointError` when a reference is refused (whether or
    not the read succeeded, and unless ``read_unsafe`` asked for the inert reading
    of a readable file), else the read's own error. ``held`` is the bytes of
    archive members inflated into memory to reach this checkpoint: they count
    against the file's byte budget like the values read from it.
    """
    refs: list[tuple[str, GlobalRef]] = []
    meter = Meter(limits, label)
    try:
        if held:
            meter.charge_bytes(held, "archive members inflated into memory")
        reading = read(refs, meter)
        ckpt = Checkpoint(label, reading.format, reading.obj, size, limits, list(reading.warnings), reading.metadata,
                          reading.byteorder, refs, list(reading.unread), meter, list(reading.code))
        ckpt.tensors()  # walk once now, so nesting and budget limits fail here, not later in a renderer
    except AuditError as exc:
        refused = refused_refs(refs, allow)
        if refused:
            raise unsafe_error(label, refused, exc) from None
        exc.refs = refs
        raise
    refused = refused_refs(refs, allow)
    if refused and not read_unsafe:
        raise unsafe_error(label, refused, None)
    for closer in closers:
        ckpt._closers.append(closer)
    return ckpt


# -- opening paths -----------------------------------------------------------------------------------------------------
def open_checkpoint(path: str | os.PathLike, *, limits: Limits | None = None, allow: Iterable[str] = (),
                    read_unsafe: bool = False) -> Checkpoint:
    """Open the single checkpoint at ``path`` (a file, an extracted folder, or ``outer.zip!member``).

    Raises :class:`UnsafeCheckpointError` for a file that references globals
    outside the allowlist (plus ``allow``), unless ``read_unsafe`` asks for its
    inert reading; :class:`NotACheckpointError` if there is none; for an outer
    zip holding several, the error lists them.
    """
    path = os.fspath(path)
    # Only the first entry is kept: each may hold an inflated member, and an outer zip may list thousands.
    first, count, names = None, 0, []
    for entry in iter_entries(path, limits=limits):
        if entry.open is None:
            continue
        count += 1
        first = first or entry
        if len(names) < 5:
            names.append(entry.name)
    if first is None:
        raise NotACheckpointError(f"{path}: holds no checkpoint")
    if count > 1:
        shown = ", ".join(names) + (" …" if count > 5 else "")
        raise SeveralCheckpointsError(f"{path}: holds {count} checkpoints ({shown}); name one of them "
                                      "(e.g. as `cnxp-audit scan` prints it)")
    return first.open(allow=frozenset(allow), read_unsafe=read_unsafe)


def iter_checkpoints(path: str | os.PathLike, *, limits: Limits | None = None) -> Iterator[Checkpoint]:
    """Yield one :class:`Checkpoint` per (safe) checkpoint in ``path``, reading outer zips in place."""
    for entry in iter_entries(path, limits=limits):
        if entry.open is not None:
            yield entry.open()


def iter_entries(path: str | os.PathLike, *, limits: Limits | None = None) -> Iterator[Entry]:
    """Yield an :class:`Entry` per checkpoint (or skipped member) at ``path``.

    A plain checkpoint gives one entry named ``path``; an outer zip gives
    ``outer.zip!inner/path`` entries, recursing into inner zips up to
    ``limits.max_outer_depth``; ``outer.zip!inner/path`` selects one of them.
    Errors opening ``path`` itself are raised here.
    """
    limits = limits or DEFAULT_LIMITS
    path = os.fspath(path)
    if is_url(path):  # read with Range requests; the root source is shared by its entries like a file
        from .remote import open_source

        source = open_source(path, limits)
        try:
            yield from _source_entries(source, path, limits, 0, source)
        finally:
            source.release()
        return
    outer = _outer_part(path)
    if outer is not None:
        found = [e for e in iter_entries(outer, limits=limits) if e.name == path or e.name.startswith(path + "!")]
        if not found:
            raise NotACheckpointError(f"{path}: no such member in {outer}")
        yield from found
        return
    if os.path.isdir(path):
        yield _folder_entry(path, limits)
        return
    source = _open_file(path)
    hint = _lone_data_pkl_hint(path)
    try:
        for entry in _source_entries(source, path, limits, 0, source):
            yield _with_hint(entry, hint) if hint else entry
    finally:
        source.release()


def _lone_data_pkl_hint(path: str) -> str | None:
    # torch.load fails on a data.pkl given alone too; the reader reads the file as itself, but says what was meant.
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.basename(path) != "data.pkl" or extracted_root(folder) != folder:
        return None
    return f"a data.pkl of an extracted checkpoint, read on its own as torch.load would; name its folder {folder}"


def _with_hint(entry: Entry, hint: str) -> Entry:
    inner = entry.open

    def open_(**kw) -> Checkpoint:
        try:
            return inner(**kw)
        except CheckpointReadError as exc:
            exc.args = (f"{exc} ({hint})",)
            raise
    return Entry(entry.name, open_ if inner else None, entry.skipped)


def _open_file(path: str) -> FileSource:
    try:
        return FileSource(path)
    except FileNotFoundError:
        raise CheckpointReadError(f"{path}: no such file") from None
    except PermissionError:
        raise CheckpointReadError(f"{path}: permission denied") from None
    except IsADirectoryError:
        raise CheckpointReadError(f"{path}: is a directory") from None
    except OSError as exc:
        raise CheckpointReadError(f"{path}: cannot open ({exc.strerror or exc})") from None


def _outer_part(path: str) -> str | None:
    # "outer.zip!inner/x.pth": the longest existing file before a "!" (file names may contain "!" too).
    if os.path.lexists(path) or "!" not in path:
        return None
    cut = path.rfind("!")
    while cut > 0:
        head = path[:cut]
        if os.path.isfile(head):
            return head
        cut = path.rfind("!", 0, cut)
    return None


# -- folders -------------------------------------------------------------------------------------------------------------
def extracted_root(folder: str) -> str | None:
    """The extracted archive in ``folder``: the folder itself, or its only subfolder holding ``data.pkl``."""
    if os.path.isfile(os.path.join(folder, "data.pkl")):
        return folder
    try:
        subs = [os.path.join(folder, d) for d in sorted(os.listdir(folder))]
    except OSError:
        return None
    trees = [s for s in subs if not os.path.islink(s) and os.path.isdir(s) and os.path.isfile(os.path.join(s, "data.pkl"))]
    return trees[0] if len(trees) == 1 else None


def _folder_entry(folder: str, limits: Limits) -> Entry:
    root = extracted_root(folder)
    if root is None:
        raise NotACheckpointError(f"{folder}: a folder without an extracted checkpoint (no data.pkl in it or one "
                                  f"level below); `cnxp-audit scan {folder}` audits the checkpoints inside")
    records = DirRecords(root, limits, label=folder)

    def open_(allow: frozenset[str] = frozenset(), read_unsafe: bool = False) -> Checkpoint:
        size = sum(records.size(n) or 0 for n in records.names())
        return finish(folder, lambda refs, meter: read_folder(records, limits, meter, refs), size, limits,
                      allow=allow, read_unsafe=read_unsafe)

    return Entry(folder, open_)


# -- files and zips ---------------------------------------------------------------------------------------------------------
def _source_entries(source: ByteSource, label: str, limits: Limits, depth: int, root: FileSource,
                    held: int = 0) -> Iterator[Entry]:
    # ``held``: bytes inflated into memory on the way to ``source`` (outer members holding it), itself included.
    head = source.pread(0, min(SNIFF_BYTES, source.size))
    if head[:4] != LOCAL_MAGIC:
        yield Entry(label, _opener(label, lambda refs, meter: read_stream(source, limits, meter, refs), source.size,
                                   limits, root, held))
        return
    refs: list = []
    try:
        archive = open_zip(source, limits, refs)
    except AuditError as exc:
        yield Entry(label, _failing(label, exc, refs, source.size, limits))
        return
    layout = torch_layout(archive)
    refused_archive = _laid_out_as_archive(archive, layout)
    if layout.is_archive or refused_archive:
        # Laid out as a torch archive (data.pkl in the zip's own top folder, or at its root): torch's verdict
        # on it stands, refusal included; it is not an outer container of an extracted tree.
        layout = refused_archive or layout
        yield Entry(label, _opener(label, lambda refs, meter: read_records(layout.records, layout, "zip", limits, meter,
                                                                           refs, label), source.size, limits, root, held))
        return
    if depth >= limits.max_outer_depth:
        raise LimitExceeded(f"{label}: zips nested deeper than max_outer_depth={limits.max_outer_depth}")
    yield from _outer_entries(archive, label, limits, depth, root, held)


def _opener(label: str, read: Callable[[list, Meter], Reading], size: int, limits: Limits,
            root: FileSource | None, held: int = 0) -> Callable[..., Checkpoint]:
    def open_(allow: frozenset[str] = frozenset(), read_unsafe: bool = False) -> Checkpoint:
        closers = []
        if root is not None:
            root.acquire()  # the file reopens on demand if the walk that found this entry already closed it
            closers.append(root.release)
        try:
            return finish(label, read, size, limits, allow=allow, read_unsafe=read_unsafe, closers=closers, held=held)
        except BaseException:
            for closer in closers:
                closer()
            raise
    return open_


def _failing(label: str, exc: AuditError, refs: list, size: int, limits: Limits) -> Callable[..., Checkpoint]:
    def read(found: list, meter: Meter) -> Reading:
        found.extend(refs)
        raise exc
    return _opener(label, read, size, limits, None)


def _laid_out_as_archive(archive: ZipArchive, layout: TorchLayout) -> TorchLayout | None:
    """For a zip torch refuses whose only data.pkl sits in the zip's top folder (or at its root): that refusal."""
    if layout.is_archive or not archive.members:
        return None
    first = archive.members[0].raw
    top = first[:first.find(b"/") + 1]
    holders = {m.raw[:-len(b"data.pkl")] for m in archive.members if m.raw.lower().endswith(b"data.pkl")
               and m.raw[-9:-8] in (b"/", b"")}
    if holders != {top} and holders != {b""}:
        return None
    records = ZipRecords(archive, next(iter(holders)))
    names = records.names()
    return TorchLayout(records, "refused", layout.reason, pickles=[n for n in names if n.lower().endswith(".pkl")])


def _outer_entries(archive: ZipArchive, label: str, limits: Limits, depth: int, root: FileSource,
                   held: int = 0) -> Iterator[Entry]:
    """Members of a zip torch would refuse (an outer container): extracted trees, and every other file.

    Linear in the members: each is filed once under the deepest extracted tree holding it.
    """
    trees = sorted({m.raw[:-len(b"data.pkl")] for m in archive.members
                    if m.raw == b"data.pkl" or m.raw.endswith(b"/data.pkl")}, key=len, reverse=True)
    tree_set = set(trees)
    filed: dict[bytes, list[ZipMember]] = {tree: [] for tree in trees}
    others: list[ZipMember] = []
    for m in archive.members:
        tree = _tree_of(m.raw, tree_set)
        if tree is not None:
            filed[tree].append(m)
        if not m.raw.endswith(b"/") and (tree is None or not _is_tree_record(m.raw[len(tree):])):
            others.append(m)
    for tree in trees:
        inner = f"{label}!{tree.decode('utf-8', 'replace').rstrip('/')}" if tree else label
        yield Entry(inner, _tree_opener(archive, tree, filed.pop(tree), inner, limits, root, held))
    for m in others:
        inner = f"{label}!{m.name}"
        try:
            source = archive.open_inner(m, inner, held)
            inner_held = held + (source.size if isinstance(source, MemorySource) else 0)
            head = source.pread(0, min(SNIFF_BYTES, source.size))
        except AuditError as exc:  # a member we cannot read is never skipped: it could hold anything
            yield Entry(inner, _failing(inner, exc, [], m.usize, limits))
            continue
        if sniff(head, source.size) is None:
            yield Entry(inner, skipped=f"not a checkpoint ({describe(head)})")
            continue
        try:
            yield from _source_entries(source, inner, limits, depth + 1, root, inner_held)
        except AuditError as exc:
            yield Entry(inner, _failing(inner, exc, [], m.usize, limits))


def _tree_of(raw: bytes, trees: set[bytes]) -> bytes | None:
    # The deepest extracted tree holding this member: walk its folders upwards (linear, not per tree).
    cut = raw.rfind(b"/")
    while cut >= 0:
        if raw[:cut + 1] in trees:
            return raw[:cut + 1]
        cut = raw.rfind(b"/", 0, cut)
    return b"" if b"" in trees else None


def _is_tree_record(rel: bytes) -> bool:
    """Records an extracted archive's reader uses (the rest of the tree is audited file by file)."""
    low = rel.lower()
    return (low in (b"data.pkl", b"version", b"byteorder", b".format_version", b".storage_alignment")
            or low.endswith((b".pkl", b".debug_pkl")) or low.startswith((b"data/", b".data/", b"constants/", b"code/")))


def _tree_opener(archive: ZipArchive, tree: bytes, members: list[ZipMember], label: str, limits: Limits,
                 root: FileSource, held: int) -> Callable[..., Checkpoint]:
    records = ZipRecords(archive, tree, members)
    records.warnings.append("an extracted archive inside a zip: torch.load cannot read it as it is (zip its "
                            "folder's contents under one top folder, as torch.save does)")
    size = sum(m.usize for m in members)
    return _opener(label, lambda refs, meter: read_folder(records, limits, meter, refs), size, limits, root, held)


def memory_entry(data: bytes, label: str, limits: Limits | None = None) -> Entry:
    """An entry for bytes already in memory (tests, remote reads): read as a file would be."""
    limits = limits or DEFAULT_LIMITS
    source = MemorySource(data, label)
    return next(iter(_source_entries(source, label, limits, 0, None)))
