"""The hostile corpus (tests/fixtures/hostile.py): each case gets its expected verdict, nothing runs."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import run_cli
from convnextpose_audit.audit import audit_path
from convnextpose_audit.variants import load_registry
from fixtures.hostile import build_corpus

pytestmark = pytest.mark.security  # builds hostile inputs by hand: never skipped

REGISTRY = load_registry()
CORPUS_DIR_NAME = "corpus"


@pytest.fixture(scope="session")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile")
    sentinel = root / "SENTINEL"
    cases = build_corpus(root / CORPUS_DIR_NAME, sentinel)
    yield {c.name: c for c in cases}
    assert not sentinel.exists(), "a payload ran"


def _case_names():
    # Build once in a scratch dir only to learn the names for parametrisation (cheap without bombs).
    import tempfile

    from fixtures import hostile

    with tempfile.TemporaryDirectory() as tmp:
        real = hostile.deflate_zeros
        hostile.deflate_zeros = lambda n, head=b"": (b"", 0)  # names only; skip the slow bombs
        try:
            return [c.name for c in build_corpus(Path(tmp), Path(tmp) / "S")]
        finally:
            hostile.deflate_zeros = real


@pytest.fixture
def watchdog():
    """Fail (rather than hang) if one case takes longer than 30 s."""
    def expire(*_):
        raise TimeoutError("case did not finish within 30 s")
    old = signal.signal(signal.SIGALRM, expire)
    signal.alarm(30)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


@pytest.mark.parametrize("name", _case_names())
def test_case(corpus, name, watchdog):
    case = corpus[name]
    results, _ = audit_path(str(case.path), REGISTRY)
    assert results, "every case gives a result"
    verdicts = {r.verdict.value for r in results}
    assert verdicts == {case.verdict}, [r.error for r in results]
    text = " ".join((r.error or "") + " " + " ".join(r.evidence) + " " + " ".join(r.warnings) for r in results)
    assert case.needle in text
    for r in results:
        if r.error:
            assert "\n" not in r.error and "Traceback" not in r.error


def test_cli_exit_codes_over_the_corpus(corpus):
    groups = {"code routes": 4, "placements": 4, "broken": 3}
    for group, code in groups.items():
        paths = [c.path for c in corpus.values() if c.group == group]
        result = run_cli("scan", "--format", "json", *paths)
        report = json.loads(result.stdout)
        assert result.exit_code == code, group
        assert len(report["files"]) >= len(paths)


def test_every_case_renders_in_every_format(corpus):
    """Rendering must survive whatever the reader accepted (huge ints, odd names...)."""
    folder = next(iter(corpus.values())).path.parent
    for fmt in ("json", "markdown", "table"):
        result = run_cli("scan", "-v", "--format", fmt, folder)
        assert result.exit_code == 4
        if fmt == "json":
            report = json.loads(result.stdout)
            assert report["summary"]["counts"]["UNSAFE"] >= 40


def test_memory_stays_bounded_on_bombs(corpus):
    """A child process reads every case, bombs included; its peak RSS must stay under 256 MiB.

    Peak RSS is the kernel's VmHWM of the child's own address space (ru_maxrss would
    include the memory of the forking pytest process).
    """
    paths = [str(c.path) for c in corpus.values()]
    code = ("import sys\n"
            "def hwm():\n"
            "    for line in open('/proc/self/status'):\n"
            "        if line.startswith('VmHWM:'):\n"
            "            return int(line.split()[1])\n"
            "from convnextpose_audit.audit import audit_path\n"
            "from convnextpose_audit.variants import load_registry\n"
            "reg = load_registry()\n"
            "worst, peak = '', 0\n"
            "for p in sys.argv[1:]:\n"
            "    audit_path(p, reg)\n"
            "    now = hwm()\n"
            "    if now > peak: worst, peak = p, now\n"
            "print(peak, worst)\n")
    proc = subprocess.run([sys.executable, "-c", code, *paths], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    peak, worst = proc.stdout.split(" ", 1)
    peak_mib = int(peak) / 1024
    assert peak_mib < 256, f"peak RSS {peak_mib:.0f} MiB, reached at {worst.strip()}"
