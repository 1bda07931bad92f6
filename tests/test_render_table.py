"""The terminal table fits 80, 100, 120 and 200 columns: snapshots, plus properties checked
independently of them (widths, whole names and verdicts, column priorities)."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest
from rich.cells import cell_len

from convnextpose_audit.audit import AuditResult, Report, Verdict, audit_paths
from convnextpose_audit.render.base import RenderOptions
from convnextpose_audit.render.formats import get_format
from convnextpose_audit.render.layout import Column, fit, shorten_dir
from convnextpose_audit.variants import load_registry

ROOT = Path(__file__).resolve().parent.parent
SNAPSHOTS = Path(__file__).resolve().parent / "snapshots"
#: Set to rewrite the snapshots after an intended change; review the diff before committing.
UPDATE = os.environ.get("CNXP_UPDATE_SNAPSHOTS") == "1"

#: What examples/drive holds (examples/make_examples.py): the four official files, a mirror
#: with M weights under an L name, and a ResNet-50 pose model.
EXPECTED = {"ConvNeXtPose_L (1).tar": "MATCH", "ConvNeXtPose_L_mirror.tar": "MISMATCH",
            "ConvNeXtPose_M (1).tar": "MATCH", "ConvNeXtPose_S.tar": "MATCH", "ConvNeXtPose_XS.tar": "MATCH",
            "posenet_resnet50.pth": "UNKNOWN"}
OPTIONAL = ("stem", "dims", "depths", "head", "joints×bins", "params")


@pytest.fixture(scope="module")
def report() -> Report:
    paths = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "examples" / "drive").iterdir())
    cwd = os.getcwd()
    os.chdir(ROOT)  # paths as a user in the repository types them
    try:
        rep = audit_paths(paths, load_registry())
    finally:
        os.chdir(cwd)
    rep.seconds = 0.25  # wall time is the one value that changes from run to run
    return rep


def _table(report: Report, width: int, **kw) -> str:
    return get_format("table").render(report, RenderOptions(width=width, **kw))


def _headers(out: str) -> list[str]:
    header = next(line for line in out.splitlines() if line.startswith("file "))
    return header.split()


@pytest.mark.parametrize("width", [80, 100, 120, 200])
def test_snapshot(report, width):
    out = _table(report, width)
    snap = SNAPSHOTS / f"table_{width}.txt"
    if UPDATE:
        snap.write_text(out, encoding="utf-8")
    assert out == snap.read_text(encoding="utf-8")


@pytest.mark.parametrize("width", [80, 100, 120, 200])
def test_every_line_fits_and_every_name_and_verdict_is_whole(report, width):
    out = _table(report, width)
    assert max(cell_len(line) for line in out.splitlines()) <= width
    rows = [line for line in out.splitlines() if any(name in line for name in EXPECTED)]
    assert len(rows) == len(EXPECTED)
    for name, verdict in EXPECTED.items():
        line = next(r for r in rows if name in r)
        assert f" {verdict} " in line + " "  # the whole word, never "MISMA"
    assert "examples/drive/" in out  # the directory is shown once, above the rows


def test_columns_appear_in_priority_order_as_the_terminal_widens(report):
    shown = {w: set(_headers(_table(report, w))) for w in (80, 100, 120, 200)}
    assert shown[80] == {"file", "declared", "inferred", "verdict", "reason"}
    assert shown[80] <= shown[100] <= shown[120] <= shown[200]
    assert set(OPTIONAL) <= shown[200]
    assert "head" in shown[100]  # the head tells S, M and L apart: it comes first


def test_verdict_has_colour_and_symbol(report):
    out = _table(report, 80, color=True)
    assert "\x1b[1;31m✗ MISMATCH" in out  # bold red
    assert "\x1b[32m✓ MATCH" in out  # green
    assert "? UNKNOWN" in _table(report, 80)  # the symbol stays without colour


def test_long_directory_is_shortened_never_the_name(report):
    deep = "a/very/long/directory/that/goes/on/and/on/and/on/for/a/while/"
    rows = [dataclasses.replace(r, path=deep + r.path) for r in report.files]
    rows.append(dataclasses.replace(report.files[0], path="elsewhere/x.tar"))
    out = _table(dataclasses.replace(report, files=rows), 80)
    assert max(cell_len(line) for line in out.splitlines()) <= 80
    for name in EXPECTED:
        assert name in out
    assert any(line.startswith("a/v…/ConvNeXtPose_L (1).tar ") for line in out.splitlines())  # start kept


def test_a_name_wider_than_the_terminal_is_not_cut():
    name = "x" * 90 + ".pth"
    r = AuditResult(path=f"dir/{name}", verdict=Verdict.UNREADABLE, error="broken", reason="broken")
    out = _table(Report(files=[r]), 80)
    assert name in out


def test_verbose_evidence_is_outside_the_table(report):
    out = _table(report, 80, verbose=True)
    chain = report.files[0].evidence[-1]
    assert chain[:60] in out.replace("\n", " ")  # the whole line appears, wrapped at most at the edge
    header = _headers(out)
    assert "evidence" not in header


def test_fit_gives_space_in_priority_order():
    cols = [Column("file", 20, 10), Column("reason", 50, 10), Column("head", 11, 11, priority=1),
            Column("stem", 4, 4, priority=4), Column("dims", 13, 13, priority=5)]
    # 50: minimums 10+10+2 leave 28; reason to 24 (14 left), file to 20 (4 left): head (11+2) does not
    # fit, so stem (4+2) waits too although it would; the reason takes the last 4.
    assert fit(cols, 50, 2) == {"file": 20, "reason": 28}
    # 78: 32 left after reason and file; head (19 left), stem (13 left), dims (15) does not: reason +13.
    assert fit(cols, 78, 2) == {"file": 20, "reason": 37, "head": 11, "stem": 4}
    # 120: everything, the reason at its full 50.
    assert fit(cols, 120, 2) == {"file": 20, "reason": 50, "head": 11, "stem": 4, "dims": 13}
    # Too narrow: the minimums, never less.
    assert fit(cols, 20, 2) == {"file": 10, "reason": 10}


def test_shorten_dir_keeps_the_start_of_the_directory_and_the_whole_base_name():
    assert shorten_dir("runA/b/c/name.tar", "name.tar", 15, len) == "runA/…/name.tar"
    assert shorten_dir("runA/b/c/name.tar", "name.tar", 40, len) == "runA/b/c/name.tar"
    assert shorten_dir("runA/b/c/name.tar", "name.tar", 3, len) == "…/name.tar"
    assert shorten_dir("outer.zip!name.tar", "name.tar", 14, len) == "oute…!name.tar"


def test_hash_digest_column_fits_80_columns():
    from convnextpose_audit.audit import AuditOptions

    paths = sorted(str(p) for p in (ROOT / "examples" / "drive").iterdir())
    report = audit_paths(paths, load_registry(), options=AuditOptions(hashes=True))
    out = _table(report, 80)
    assert "digest" in _headers(out)
    assert max(cell_len(line) for line in out.splitlines()) <= 80
    for r in report.files:
        assert r.digest["state_dict"][:8] in out
    assert "ConvNeXtPose_M (1).tar: same weights as" in out.replace("\n", " ")
