"""Find checkpoints in folders, globs and zips by their bytes, and audit many of them."""

from __future__ import annotations

import glob
import os
import stat
import time
from typing import Callable, Iterable

from .audit import AuditOptions, AuditResult, Labels, Report, Skipped, Verdict, audit_path
from .reader.detect import SNIFF_BYTES, describe, sniff
from .variants import Registry

#: Called after each candidate: (done, total, path just finished).
Progress = Callable[[int, int, str], None]


def discover(paths: Iterable[str]) -> tuple[list[tuple[str, bool]], list[Skipped]]:
    """Expand folders and globs into ``(candidate, named explicitly)`` pairs, chosen by content.

    Explicitly named files are always candidates (a non-checkpoint becomes
    UNREADABLE); files found inside folders are kept only if their first bytes
    are a torch container, otherwise listed as skipped with the reason. A
    folder holding ``data.pkl`` is one (extracted) checkpoint. Symlinks that
    lead out of the folder being walked are never followed.
    """
    candidates: list[tuple[str, bool]] = []
    skipped: list[Skipped] = []
    for given in paths:
        expanded = [given]
        if not os.path.lexists(given) and any(c in given for c in "*?["):
            expanded = sorted(glob.glob(given, recursive=True)) or [given]
        for path in expanded:
            if os.path.isdir(path) and not os.path.exists(os.path.join(path, "data.pkl")):
                _walk(path, candidates, skipped)
            else:
                candidates.append((path, True))
    return candidates, skipped


def _walk(root: str, candidates: list[tuple[str, bool]], skipped: list[Skipped]) -> None:
    real_root = os.path.realpath(root)
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames.sort()
        for d in list(dirnames):
            full = os.path.join(dirpath, d)
            if os.path.islink(full):
                dirnames.remove(d)
                skipped.append(Skipped(full, "symlinked folder; links are not followed"))
            elif os.path.exists(os.path.join(full, "data.pkl")):
                dirnames.remove(d)  # an extracted archive: one checkpoint, not a tree of files
                candidates.append((full, False))
        for name in sorted(filenames):
            full = os.path.join(dirpath, name)
            reason = _not_a_candidate(full, real_root)
            if reason is None:
                candidates.append((full, False))
            else:
                skipped.append(Skipped(full, reason))


def _not_a_candidate(path: str, real_root: str) -> str | None:
    try:
        if os.path.islink(path):
            target = os.path.realpath(path)
            if os.path.commonpath([target, real_root]) != real_root:
                return "symlink leading out of the scanned folder; not followed"
        st = os.stat(path)
        if not stat.S_ISREG(st.st_mode):
            return "not a regular file"
        with open(path, "rb") as fh:
            head = fh.read(SNIFF_BYTES)
    except OSError as exc:
        return f"cannot read ({exc.strerror or exc})"
    if sniff(head, st.st_size) is None:
        return f"not a checkpoint ({describe(head)})"
    return None


_worker_state: tuple | None = None


def _init_worker(registry: Registry, labels: Labels, options: AuditOptions) -> None:
    global _worker_state
    _worker_state = (registry, labels, options)


def _audit_one(candidate: tuple[str, bool], registry: Registry, labels: Labels,
               options: AuditOptions) -> tuple[list[AuditResult], list[Skipped]]:
    path, explicit = candidate
    try:
        return audit_path(path, registry, labels, options, require_checkpoint=explicit)
    except Exception as exc:  # a bug must not stop the batch
        return _internal_error(path, exc)


def _audit_in_worker(candidate: tuple[str, bool]) -> tuple[list[AuditResult], list[Skipped]]:
    assert _worker_state is not None
    return _audit_one(candidate, *_worker_state)


def _internal_error(path: str, exc: BaseException) -> tuple[list[AuditResult], list[Skipped]]:
    return [AuditResult(path=path, verdict=Verdict.UNREADABLE, error=f"{path}: internal error: {exc!r}",
                        evidence=[f"internal error: {exc!r}"])], []


def scan(paths: Iterable[str], registry: Registry, labels: Labels | None = None,
         options: AuditOptions | None = None, jobs: int = 1, progress: Progress | None = None) -> Report:
    """Discover and audit checkpoints; results keep discovery order whatever ``jobs`` is.

    A file that fails (or even crashes a worker) becomes an UNREADABLE result;
    it never stops the others.
    """
    start = time.perf_counter()
    labels = labels or Labels()
    options = options or AuditOptions()
    candidates, skipped = discover(paths)
    outcomes: list[tuple[list[AuditResult], list[Skipped]] | None] = [None] * len(candidates)
    done = 0
    if jobs <= 1 or len(candidates) <= 1:
        for i, candidate in enumerate(candidates):
            outcomes[i] = _audit_one(candidate, registry, labels, options)
            done += 1
            if progress:
                progress(done, len(candidates), candidate[0])
    else:
        import concurrent.futures as cf
        import multiprocessing
        import threading

        # fork starts workers in milliseconds, but forking a process that runs other threads
        # (the progress bar's) is unsafe: then spawn.
        single = threading.active_count() == 1 and "fork" in multiprocessing.get_all_start_methods()
        ctx = multiprocessing.get_context("fork" if single else "spawn")
        with cf.ProcessPoolExecutor(jobs, mp_context=ctx, initializer=_init_worker,
                                    initargs=(registry, labels, options)) as pool:
            # Chunks keep per-task overhead small on folders of many tiny files; map keeps order.
            chunk = max(1, min(32, len(candidates) // (jobs * 4)))
            outcomes_iter = pool.map(_audit_in_worker, candidates, chunksize=chunk)
            try:
                for i, outcome in enumerate(outcomes_iter):
                    outcomes[i] = outcome
                    done += 1
                    if progress:
                        progress(done, len(candidates), candidates[i][0])
            except cf.process.BrokenProcessPool as exc:  # a worker died (killed, out of memory...)
                for i, (path, _) in enumerate(candidates):
                    if outcomes[i] is None:
                        outcomes[i] = _internal_error(path, exc)
    report = Report(files=[], skipped=list(skipped))
    for outcome in outcomes:
        assert outcome is not None
        report.files.extend(outcome[0])
        report.skipped.extend(outcome[1])
    report.seconds = time.perf_counter() - start
    return report
