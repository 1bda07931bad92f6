"""Find checkpoints in folders, globs and zips by their bytes, and audit many of them."""

from __future__ import annotations

import glob
import os
import stat
import time
from typing import Callable, Iterable

from .audit import AuditOptions, AuditResult, Labels, Report, Skipped, audit_path, internal_failure
from .diagnose import looks_like_checkpoint
from .reader.detect import SNIFF_BYTES, describe, sniff
from .variants import Registry

#: Called after each candidate: (done, total, path just finished).
Progress = Callable[[int, int, str], None]
#: One candidate: (path, must hold a checkpoint). A path named on the command line or a file named
#: like a checkpoint must; a zip found in a folder need not (it is skipped when it holds none).
Candidate = tuple[str, bool]
Outcome = tuple[list[AuditResult], list[Skipped]]


def discover(paths: Iterable[str]) -> tuple[list[Candidate], list[Skipped]]:
    """Expand folders and globs into ``(candidate, must hold a checkpoint)`` pairs, chosen by content.

    Explicitly named files are always candidates (a non-checkpoint becomes
    UNREADABLE); so is every file in a folder that is named like a checkpoint
    (``.pth .pt .tar .ckpt .bin .safetensors``), whatever its bytes, so that a
    Git LFS pointer or a saved web page fails the run as it does in ``inspect``.
    Other files in folders are kept only if their first bytes are a torch
    container, otherwise listed as skipped with the reason. A folder holding
    ``data.pkl`` is one (extracted) checkpoint. Symlinks that lead out of the
    folder being walked are never followed.
    """
    candidates: list[Candidate] = []
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


def _walk(root: str, candidates: list[Candidate], skipped: list[Skipped]) -> None:
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
                candidates.append((full, looks_like_checkpoint(full)))
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
        if looks_like_checkpoint(path):
            return None  # named like one: audited, so that what cannot be read is UNREADABLE, not skipped
        with open(path, "rb") as fh:
            head = fh.read(SNIFF_BYTES)
    except OSError as exc:
        if looks_like_checkpoint(path):
            return None  # audit_path reports it UNREADABLE with the same reason inspect gives
        return f"cannot read ({exc.strerror or exc})"
    if sniff(head, st.st_size) is None:
        return f"not a checkpoint ({describe(head)})"
    return None


def _audit_one(candidate: Candidate, registry: Registry, labels: Labels, options: AuditOptions) -> Outcome:
    path, required = candidate
    # audit_path turns read errors and bugs alike into this file's results; nothing escapes it.
    return audit_path(path, registry, labels, options, require_checkpoint=required)


def scan(paths: Iterable[str], registry: Registry, labels: Labels | None = None,
         options: AuditOptions | None = None, jobs: int = 1, progress: Progress | None = None) -> Report:
    """Discover and audit checkpoints; results keep discovery order whatever ``jobs`` is.

    A file that fails becomes an UNREADABLE (or UNSAFE) result, and one that
    crashes the process auditing it an UNREADABLE result with ``internal_error``;
    it never stops the others.
    """
    start = time.perf_counter()
    labels = labels or Labels()
    options = options or AuditOptions()
    candidates, skipped = discover(paths)
    if jobs <= 1 or len(candidates) <= 1:
        outcomes: list[Outcome] = []
        for candidate in candidates:
            outcomes.append(_audit_one(candidate, registry, labels, options))
            if progress:
                progress(len(outcomes), len(candidates), candidate[0])
    else:
        outcomes = _audit_in_pool(candidates, (registry, labels, options), jobs, progress)
    report = Report(files=[], skipped=list(skipped))
    for results, more_skipped in outcomes:
        report.files.extend(results)
        report.skipped.extend(more_skipped)
    report.seconds = time.perf_counter() - start
    return report


# ----------------------------------------------------------------------------- -j N
# Each worker marks the candidate it starts and finishes in a shared array, so when a worker dies
# (a crash, an out-of-memory kill) the parent knows which files were in flight. Those are retried
# one by one, each alone in a fresh process: the one that dies again is the culprit and gets an
# internal-error result; the rest go to a fresh pool. A dying worker costs only its own file.
_PENDING, _STARTED, _FINISHED = 0, 1, 2
_worker: tuple | None = None


def _init_worker(candidates: list[Candidate], context: tuple, state) -> None:
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C belongs to the parent, which stops the pool
    global _worker
    _worker = (candidates, context, state)


def _audit_chunk(indices: list[int]) -> list[tuple[int, Outcome]]:
    assert _worker is not None
    candidates, context, state = _worker
    out = []
    for i in indices:
        state[i] = _STARTED
        out.append((i, _audit_one(candidates[i], *context)))
        state[i] = _FINISHED
    return out


def _audit_in_pool(candidates: list[Candidate], context: tuple, jobs: int,
                   progress: Progress | None) -> list[Outcome]:
    import multiprocessing
    import threading

    # fork starts workers in milliseconds, but forking a process that runs other threads
    # (the progress bar's) is unsafe: then spawn.
    single = threading.active_count() == 1 and "fork" in multiprocessing.get_all_start_methods()
    ctx = multiprocessing.get_context("fork" if single else "spawn")
    state = ctx.RawArray("b", len(candidates))
    outcomes: list[Outcome | None] = [None] * len(candidates)
    done = 0

    def record(i: int, outcome: Outcome) -> None:
        nonlocal done
        outcomes[i], done = outcome, done + 1
        if progress:
            progress(done, len(candidates), candidates[i][0])

    todo = list(range(len(candidates)))
    while todo:
        _round(ctx, todo, min(jobs, len(todo)), candidates, context, state, record)
        todo = [i for i in todo if outcomes[i] is None]
        # Left over only when a worker died. Those in flight are the suspects; if none was (it died
        # between files), take the next one: each pass settles at least one file, so this ends.
        suspects = [i for i in todo if state[i] == _STARTED] or todo[:1]
        for i in suspects:
            state[i] = _PENDING
            _round(ctx, [i], 1, candidates, context, state, record)
            if outcomes[i] is None:  # it died again, alone: this file is the culprit
                record(i, died(candidates[i][0], context))
        todo = [i for i in todo if outcomes[i] is None]
        for i in todo:
            state[i] = _PENDING
    return [o for o in outcomes if o is not None]


def _round(ctx, todo: list[int], workers: int, candidates: list[Candidate], context: tuple, state,
           record: Callable[[int, Outcome], None]) -> None:
    """Audit ``todo`` in a fresh pool of ``workers`` processes, recording each outcome as it arrives.

    If a worker dies, the pool breaks and the files not recorded are left for the caller.
    """
    import concurrent.futures as cf

    pool = cf.ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker,
                                  initargs=(candidates, context, state))
    try:
        # Chunks keep per-task overhead small on folders of many tiny files.
        size = max(1, min(32, len(todo) // (workers * 4)))
        futures = [pool.submit(_audit_chunk, todo[k:k + size]) for k in range(0, len(todo), size)]
        for future in cf.as_completed(futures):
            try:
                for i, outcome in future.result():
                    record(i, outcome)
            except cf.process.BrokenProcessPool:  # a worker died: the caller finds out which file it was
                pass
        pool.shutdown(wait=True)
    except BaseException:  # Ctrl-C (or a bug): stop every worker now rather than after its files
        _stop(pool)
        raise


def _stop(pool) -> None:
    for process in list((getattr(pool, "_processes", None) or {}).values()):
        process.terminate()
    pool.shutdown(wait=False, cancel_futures=True)


def died(path: str, context: tuple) -> Outcome:
    """The outcome for a file whose audit killed its process twice (crash, out-of-memory kill, signal)."""
    registry, labels, _options = context
    exc = RuntimeError("the process auditing this file died (a crash, an out-of-memory kill or a signal); "
                       "the other files were audited")
    try:
        declared, source = labels.declare(path, registry)
    except Exception:
        declared, source = None, None
    return [internal_failure(path, exc, declared, source)], []
