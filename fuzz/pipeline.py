"""The whole pipeline on one input, and the property every fuzzer checks: a documented outcome, or a finding.

:func:`exercise` runs what a user can ask of a file, in process: read every checkpoint
at the path, walk it, fingerprint it, hash every tensor (streamed), audit it (tensors
and digests), compare it with itself (``diff``), and render the report, the tensor
list and the comparison in every output format (the table at 80 columns, with and
without colour). The only exceptions allowed are the project's typed errors
(:class:`AuditError`); an audit result may not carry ``internal_error``. :func:`cli`
runs the command line on the same file and checks its exit code is a documented one
and nothing printed a traceback. Both raise :class:`Finding` otherwise.

Seeds (:func:`seeds`): the valid files of ``tests/test_fuzz.py`` (one per container
format) plus the small files of the hostile corpus. :func:`mutate` derives an input
from a seed (byte flips, a cut, a spliced copy of a slice). Used by
``tests/test_fuzz_pipeline.py`` (a small hypothesis budget, in a child process with an
RSS cap and a watchdog) and by ``fuzz/fuzz_reader.py`` (atheris or hypothesis, long runs).
"""

from __future__ import annotations

import contextlib
import io
import sys
import tempfile
from pathlib import Path

TESTS = Path(__file__).resolve().parent.parent / "tests"
sys.path.insert(0, str(TESTS))

from convnextpose_audit.errors import AuditError  # noqa: E402
from convnextpose_audit.exitcodes import ExitCode  # noqa: E402

FORMATS = ("table", "text", "markdown", "json", "sarif")
#: exit codes a command may end with on any input (usage errors and bugs are findings)
DOCUMENTED_EXITS = {int(c) for c in (ExitCode.OK, ExitCode.MISMATCH, ExitCode.UNREADABLE, ExitCode.UNSAFE,
                                     ExitCode.NOTHING_AUDITED)}


class Finding(AssertionError):
    """The input broke the property: an undocumented exception, exit code, or output."""


def seeds(max_bytes: int = 256 << 10) -> dict[str, bytes]:
    """The fuzzers' starting points: one valid file per format, and every hostile-corpus file up to ``max_bytes``."""
    from fixtures import hostile
    from test_fuzz import SEEDS

    out = dict(SEEDS)
    with tempfile.TemporaryDirectory() as tmp:
        real = hostile.deflate_zeros
        hostile.deflate_zeros = lambda n, head=b"": real(min(n, 1 << 16), head)  # the bombs, shrunk: seeds stay small
        try:
            cases = hostile.build_corpus(Path(tmp), Path(tmp) / "SENTINEL")
        finally:
            hostile.deflate_zeros = real
        for case in cases:
            if case.path.is_file() and case.path.stat().st_size <= max_bytes:
                out[f"corpus: {case.name}"] = case.path.read_bytes()
    return out


def mutate(data: bytes, flips: list[tuple[int, int]], cut: int | None, splice: tuple[int, int, int] | None) -> bytes:
    """``data`` with bytes replaced at ``flips`` (positions modulo the length), cut at ``cut``, and a slice
    ``[a, a+n)`` copied to position ``b`` for ``splice=(a, n, b)`` (duplicated records, repeated opcodes)."""
    buf = bytearray(data)
    if not buf:
        return bytes(buf)
    for pos, value in flips:
        buf[pos % len(buf)] = value
    if splice is not None:
        a, n, b = splice
        a %= len(buf)
        piece = bytes(buf[a:a + n % 4096])
        b %= len(buf) + 1
        buf[b:b] = piece
    if cut is not None:
        del buf[cut % (len(buf) + 1):]
    return bytes(buf)


def exercise(path: Path) -> None:
    """Read, walk, fingerprint, hash, audit, compare and render ``path`` (see module docstring)."""
    _read_walk_hash(path)
    report = _audit(path)
    _render(report)
    _diff(path)


def _read_walk_hash(path: Path) -> None:
    from convnextpose_audit.fingerprint import fingerprint
    from convnextpose_audit.reader import iter_checkpoints

    try:
        for ckpt in iter_checkpoints(path):
            with ckpt:
                fingerprint(ckpt.obj)
                for _, t in ckpt.tensors():
                    for _chunk in t.chunks(1 << 20):
                        pass
    except AuditError:
        pass  # a typed, one-line error is a documented outcome


def _audit(path: Path):
    from convnextpose_audit.audit import AuditOptions, Report, audit_path
    from convnextpose_audit.variants import load_registry

    results, skipped = audit_path(str(path), load_registry(), options=AuditOptions(tensors=True, hashes=True))
    bugs = [r.error for r in results if getattr(r, "internal_error", False)]
    if bugs:
        raise Finding(f"internal error in the audit: {bugs[0]}")
    return Report(files=results, skipped=skipped)


def _render(report) -> None:
    from convnextpose_audit.render.formats import get_format

    for name in FORMATS:
        fmt = get_format(name)
        for options in _options(name):
            _check_text(name, fmt.render(report, options))
            if _offers(fmt, "render_tensors"):
                _check_text(name, fmt.render_tensors(report, options))


def _offers(fmt, method: str) -> bool:
    """Whether a format implements ``method`` (SARIF has no tensor listing or diff: the CLI does not offer them)."""
    from convnextpose_audit.render.base import Format

    return getattr(type(fmt), method) is not getattr(Format, method)


def _options(name: str):
    from convnextpose_audit.render.base import RenderOptions

    if name == "table":
        return [RenderOptions(width=80, verbose=True), RenderOptions(width=80, color=True)]
    return [RenderOptions(verbose=True)]


def _check_text(name: str, text: str) -> None:
    if not isinstance(text, str):
        raise Finding(f"{name} rendered {type(text).__name__}, not text")
    if name != "table" and "\x1b" in text:  # only the table may colour, and only with its own sequences
        raise Finding(f"{name} output holds a raw ESC")


def _diff(path: Path) -> None:
    from convnextpose_audit.compare import compare
    from convnextpose_audit.reader import open_checkpoint
    from convnextpose_audit.render.base import RenderOptions
    from convnextpose_audit.render.formats import get_format

    try:
        with open_checkpoint(path) as a, open_checkpoint(path) as b:
            result = compare(a, b)
    except AuditError:
        return
    for name in FORMATS:
        fmt = get_format(name)
        if _offers(fmt, "render_diff"):
            _check_text(name, fmt.render_diff(result, RenderOptions(verbose=True)))


def cli(path: Path) -> None:
    """``inspect`` (every format, with --tensors --hash), ``scan`` and ``tensors`` on ``path``: each must end with a
    documented exit code and print no traceback or internal error."""
    from convnextpose_audit.cli import main

    runs = [["inspect", "--format", f, "--tensors", "--hash", "-v", str(path)] for f in FORMATS]
    runs += [["scan", "--format", "json", str(path)], ["tensors", str(path)]]
    for args in runs:
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(args)
        said = err.getvalue()
        if code not in DOCUMENTED_EXITS or "Traceback" in said or "internal error" in said:
            raise Finding(f"{' '.join(args[:-1])}: exit {code}: {said[-500:]}")


def run_one(data: bytes, scratch: Path, with_cli: bool = True) -> None:
    """The property on one input (written to ``scratch/input.pth``)."""
    path = scratch / "input.pth"
    path.write_bytes(data)
    try:
        exercise(path)
        if with_cli:
            cli(path)
    except Finding:
        raise
    except AuditError:
        raise Finding("an AuditError escaped a path that must report it as a result") from None
    except Exception as exc:  # noqa: BLE001 - anything else is a finding, with its traceback
        raise Finding(f"{type(exc).__name__}: {exc}") from exc
