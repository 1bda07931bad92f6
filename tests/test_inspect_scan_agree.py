"""inspect and scan give every file of the hostile corpus the same verdict and the same exit code."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import run_cli
from convnextpose_audit.diagnose import looks_like_checkpoint
from fixtures.hostile import build_corpus


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("agree")
    sentinel = root / "SENTINEL"
    build_corpus(root / "corpus", sentinel)
    yield root / "corpus"
    assert not sentinel.exists(), "a payload ran"


def _json(*args):
    result = run_cli(*args, "--format", "json")
    return result.exit_code, json.loads(result.stdout)


def _outcomes(report: dict) -> list[tuple[str, str, int, bool]]:
    return [(f["path"], f["verdict"], f["exit_code"], f["internal_error"]) for f in report["files"]]


def _top(path: str, folder: Path) -> str:
    """The corpus entry a result belongs to (``x.zip!inner`` belongs to ``x.zip``)."""
    return Path(path.split("!", 1)[0]).relative_to(folder).parts[0]


def test_each_file_alone(corpus):
    entries = sorted(corpus.iterdir())
    assert len(entries) >= 90
    for entry in entries:
        inspect_code, inspected = _json("inspect", entry)
        scan_code, scanned = _json("scan", entry)
        assert _outcomes(inspected) == _outcomes(scanned), entry.name
        assert inspect_code == scan_code, entry.name
        assert not any(f["internal_error"] for f in inspected["files"]), entry.name


def test_the_whole_folder(corpus):
    """A folder scan finds the same verdicts; it may skip only files that do not claim to be checkpoints."""
    _, scanned = _json("scan", corpus)
    by_top: dict[str, list] = {}
    for path, verdict, code, _ in _outcomes(scanned):
        by_top.setdefault(_top(path, corpus), []).append((path, verdict, code))
    for entry in sorted(corpus.iterdir()):
        _, inspected = _json("inspect", entry)
        expected = [(p, v, c) for p, v, c, _ in _outcomes(inspected)]
        if entry.name in by_top:
            assert by_top[entry.name] == expected, entry.name
        else:
            assert not looks_like_checkpoint(entry.name), f"{entry.name} claims to be a checkpoint but was skipped"
            assert any(Path(s["path"]).name == entry.name for s in scanned["summary"]["skipped"]), entry.name
