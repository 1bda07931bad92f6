"""Open any checkpoint container torch has written, chosen by content, as a :class:`Checkpoint`."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from ..errors import (ArchiveError, AuditError, CheckpointReadError, LimitExceeded, MalformedPickleError,
                      NotACheckpointError)
from .archive import read_torch_archive
from .detect import SNIFF_BYTES, describe, sniff
from .legacy import read_legacy
from .limits import DEFAULT_LIMITS, Limits
from .remote import is_url, open_source
from .safetensors_format import read_safetensors
from .source import ByteSource, FileSource
from .stores import DirStore, ZipStore
from .tartorch import read_tar
from .tensor import TensorRef
from .walk import iter_tensors
from .zipread import ZipArchive

FORMATS = ("zip", "extracted", "legacy", "tar", "safetensors")


@dataclass
class Checkpoint:
    """One checkpoint's unpickled object with lazy tensors.

    ``format`` is one of :data:`FORMATS`; ``obj`` is what ``torch.load`` would
    return, with a :class:`TensorRef` at each tensor leaf; ``warnings`` lists
    tolerated oddities (CRC mismatches, duplicate zip members...). Use as a
    context manager so file handles are released.
    """

    name: str
    format: str
    obj: Any
    size: int
    limits: Limits = DEFAULT_LIMITS
    warnings: list[str] = field(default_factory=list)
    metadata: dict[str, str] | None = None  # safetensors __metadata__
    byteorder: str = "little"
    _closers: list[Callable[[], None]] = field(default_factory=list, repr=False)

    def tensors(self) -> list[tuple[str, TensorRef]]:
        """Every tensor reachable from ``obj`` as ``(path, TensorRef)``, in file order (bounded walk)."""
        return list(iter_tensors(self.obj, self.limits))

    def close(self) -> None:
        """Release cached bytes and file handles. Arrays already returned stay valid."""
        for _, t in iter_tensors(self.obj, self.limits):
            t.storage.release()
        for closer in self._closers:
            closer()
        self._closers.clear()

    def __enter__(self) -> "Checkpoint":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


@dataclass
class Entry:
    """A checkpoint found inside a path (one per inner checkpoint of an outer zip).

    ``open()`` reads it (and may raise an :class:`AuditError`); ``skipped`` is set
    instead, with the reason, for a member that is not a checkpoint.
    """

    name: str
    open: Callable[[], Checkpoint] | None = None
    skipped: str | None = None


def open_checkpoint(path: str | os.PathLike, *, limits: Limits | None = None) -> Checkpoint:
    """Open the single checkpoint at ``path`` (a file of any torch format, or an extracted folder).

    Raises :class:`NotACheckpointError` if there is none, and for an outer zip
    holding several, says so (use :func:`iter_checkpoints`).
    """
    entries = [e for e in iter_entries(path, limits=limits) if e.open is not None]
    if not entries:
        raise NotACheckpointError(f"{os.fspath(path)}: holds no checkpoint")
    if len(entries) > 1:
        raise ArchiveError(f"{os.fspath(path)}: holds {len(entries)} checkpoints; use iter_checkpoints()")
    return entries[0].open()  # the file reopens on demand if the walk above already closed it


def iter_checkpoints(path: str | os.PathLike, *, limits: Limits | None = None) -> Iterator[Checkpoint]:
    """Yield one :class:`Checkpoint` per checkpoint in ``path``, reading outer zips in place."""
    for entry in iter_entries(path, limits=limits):
        if entry.open is not None:
            yield entry.open()


def iter_entries(path: str | os.PathLike, *, limits: Limits | None = None) -> Iterator[Entry]:
    """Yield an :class:`Entry` per checkpoint (or skipped member) found at ``path``.

    A plain checkpoint gives one entry named ``path``; an outer zip gives
    ``outer.zip!inner/path`` entries, recursing into inner zips up to
    ``limits.max_outer_depth``. Errors opening ``path`` itself are raised here.
    """
    limits = limits or DEFAULT_LIMITS
    path = os.fspath(path)
    if os.path.isdir(path):  # the folder itself may be a link the user chose; links inside it are refused
        store = DirStore(path, limits)
        if store.size("data.pkl") is None:
            raise NotACheckpointError(f"{path}: a folder without data.pkl (not an extracted checkpoint)")
        yield Entry(path, lambda: _archive_checkpoint(store, path, "extracted", limits, _tree_size(path), None))
        return
    try:
        source = open_source(path, limits)  # a RemoteSource for http(s):// and hf:// URLs
    except FileNotFoundError:
        raise CheckpointReadError(f"{path}: no such file") from None
    except PermissionError:
        raise CheckpointReadError(f"{path}: permission denied") from None
    except IsADirectoryError:
        raise CheckpointReadError(f"{path}: is a directory") from None
    except OSError as exc:
        raise CheckpointReadError(f"{path}: cannot open ({exc.strerror or exc})") from None
    try:
        parent = os.path.dirname(os.path.abspath(path))
        head = source.pread(0, min(SNIFF_BYTES, source.size))
        if sniff(head, source.size) == "pickle" and not is_url(path) and os.path.isdir(os.path.join(parent, "data")):
            # data.pkl given directly: its folder is the extracted archive.
            store = DirStore(parent, limits)
            yield Entry(path, lambda: _archive_checkpoint(store, parent, "extracted", limits, source.size,
                                                          None, name=path))
            return
        yield from _source_entries(source, path, limits, 0, source)
    finally:
        source.release()


def _source_entries(source: ByteSource, label: str, limits: Limits, depth: int, root: FileSource) -> Iterator[Entry]:
    head = source.pread(0, min(SNIFF_BYTES, source.size))
    kind = sniff(head, source.size)
    if kind == "zip":
        archive = ZipArchive(source, limits)
        yield from _zip_entries(archive, label, limits, depth, root)
    elif kind is None:
        raise NotACheckpointError(f"{label}: not a checkpoint ({describe(head)})")
    else:
        yield Entry(label, lambda: _single(source, label, kind, head, limits, root))


def _single(source: ByteSource, label: str, kind: str, head: bytes, limits: Limits, root: FileSource) -> Checkpoint:
    metadata = None
    try:
        if kind == "tar":
            obj = read_tar(source, limits)
        elif kind == "safetensors":
            obj, metadata = read_safetensors(source, limits)
        else:
            obj = read_legacy(source, limits)
    except MalformedPickleError:
        if kind == "pickle" and head[:1] != b"\x80":
            raise NotACheckpointError(f"{label}: not a checkpoint ({describe(head)})") from None
        raise
    kind = {"pickle": "legacy"}.get(kind, kind)
    return _finish(Checkpoint(label, kind, obj, source.size, limits, metadata=metadata), root)


def _torch_prefix(names: list[str]) -> str | None:
    # torch names the archive after the first record's top folder and needs <that>/data.pkl.
    if not names:
        return None
    top = names[0].split("/", 1)[0]
    return f"{top}/" if "/" in names[0] and f"{top}/data.pkl" in names else None


def _zip_entries(archive: ZipArchive, label: str, limits: Limits, depth: int, root: FileSource) -> Iterator[Entry]:
    names = list(archive.members)
    prefix = _torch_prefix(names)
    if prefix is not None:
        yield Entry(label, lambda: _archive_checkpoint(ZipStore(archive, prefix), label, "zip", limits,
                                                       archive.source.size, root))
        return
    if depth >= limits.max_outer_depth:
        raise LimitExceeded(f"{label}: zips nested deeper than max_outer_depth={limits.max_outer_depth}")
    trees = [n[: -len("data.pkl")] for n in names if n == "data.pkl" or n.endswith("/data.pkl")]
    for tree in trees:
        inner = f"{label}!{tree.rstrip('/')}" if tree else label
        tree_size = sum(m.usize for n, m in archive.members.items() if n.startswith(tree))
        yield Entry(inner, lambda tree=tree, inner=inner, size=tree_size: _archive_checkpoint(
            ZipStore(archive, tree), inner, "extracted", limits, size, root))
    for name, member in archive.members.items():
        if name.endswith("/") or any(_in_tree(name, tree) for tree in trees):
            continue
        inner = f"{label}!{name}"
        try:
            head = archive.head(name, SNIFF_BYTES)
        except AuditError as exc:
            yield Entry(inner, skipped=str(exc))
            continue
        kind = sniff(head, member.usize)
        if kind is None:
            yield Entry(inner, skipped=f"not a checkpoint ({describe(head)})")
            continue
        try:
            source = archive.open_inner(name, inner)
        except AuditError as exc:
            yield Entry(inner, open=_raiser(exc))
            continue
        try:
            yield from _source_entries(source, inner, limits, depth + 1, root)
        except AuditError as exc:
            yield Entry(inner, open=_raiser(exc))


def _tree_size(root: str) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(root):
        total += sum(os.lstat(os.path.join(dirpath, f)).st_size for f in files)
    return total


def _in_tree(name: str, tree: str) -> bool:
    """Whether zip member ``name`` belongs to the extracted archive rooted at ``tree`` ("" for the zip root)."""
    if tree:
        return name.startswith(tree)
    return name in ("data.pkl", "version", "byteorder") or name.startswith(("data/", ".data/"))


def _raiser(exc: AuditError) -> Callable[[], Checkpoint]:
    def fail() -> Checkpoint:
        raise exc
    return fail


def _archive_checkpoint(store, label: str, fmt: str, limits: Limits, size: int, root: FileSource | None,
                        name: str | None = None) -> Checkpoint:
    obj, byteorder = read_torch_archive(store, label, limits)
    ckpt = Checkpoint(name or label, fmt, obj, size, limits, warnings=list(store.warnings), byteorder=byteorder)
    return _finish(ckpt, root)


def _finish(ckpt: Checkpoint, root: FileSource | None) -> Checkpoint:
    # Walk once now so nesting/size limits fail at open time, not later in a renderer.
    ckpt.tensors()
    if root is not None:
        root.acquire()
        ckpt._closers.append(root.release)
    return ckpt
