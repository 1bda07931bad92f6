"""scan over folders, globs and outer zips; parallel determinism; CI options."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import pytest

from conftest import run_cli
from zip_tools import outer_zip

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "drive"


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    """Drive-named checkpoints, a mislabeled one, junk, a corrupt file, and zips within zips."""
    root = tmp_path_factory.mktemp("tree")
    drive = root / "drive"
    drive.mkdir()
    for name in ("ConvNeXtPose_XS.tar", "ConvNeXtPose_S.tar", "ConvNeXtPose_M (1).tar", "ConvNeXtPose_L (1).tar"):
        shutil.copy(EXAMPLES / name, drive / name)
    shutil.copy(EXAMPLES / "ConvNeXtPose_L_mirror.tar", drive / "ConvNeXtPose_L (2).tar")  # holds M
    (drive / "notes.txt").write_text("Some text about the models.\n")
    (drive / "broken.pth").write_bytes((EXAMPLES / "ConvNeXtPose_S.tar").read_bytes()[:20_000])
    nested = outer_zip(root / "nested.zip", {"inner/ConvNeXtPose_XS.tar": EXAMPLES / "ConvNeXtPose_XS.tar"})
    outer_zip(root / "browser.zip", {"ConvNeXtPose/ConvNeXtPose_M (1).tar": EXAMPLES / "ConvNeXtPose_M (1).tar",
                                     "ConvNeXtPose/ConvNeXtPose_S.tar": EXAMPLES / "ConvNeXtPose_S.tar",
                                     "ConvNeXtPose/more.zip": nested}, zipfile.ZIP_DEFLATED)
    nested.unlink()
    return root


def scan_json(*args):
    result = run_cli("scan", "--format", "json", *args)
    return result, json.loads(result.stdout)


def verdict_of(report, suffix):
    (entry,) = [f for f in report["files"] if f["path"].endswith(suffix)]
    return entry["verdict"]


def test_scan_tree(tree):
    result, report = scan_json(tree, "-v")
    paths = [f["path"] for f in report["files"]]
    assert verdict_of(report, "drive/ConvNeXtPose_L (1).tar") == "MATCH"
    assert verdict_of(report, "drive/ConvNeXtPose_L (2).tar") == "MISMATCH"
    assert verdict_of(report, "drive/broken.pth") == "UNREADABLE"
    assert verdict_of(report, "browser.zip!ConvNeXtPose/ConvNeXtPose_S.tar") == "MATCH"
    assert verdict_of(report, "browser.zip!ConvNeXtPose/more.zip!inner/ConvNeXtPose_XS.tar") == "MATCH"
    assert not any(p.endswith("notes.txt") for p in paths)
    assert [s["path"].rsplit("/", 1)[-1] for s in report["summary"]["skipped"]] == ["notes.txt"]
    counts = report["summary"]["counts"]
    assert counts["MATCH"] == 7 and counts["MISMATCH"] == 1 and counts["UNREADABLE"] == 1
    assert sum(counts.values()) == len(report["files"]) == report["summary"]["files"]
    assert report["summary"]["exit_code"] == result.exit_code == 3


def test_parallel_output_is_identical(tree):
    _, one = scan_json(tree, "-j", "1")
    _, two = scan_json(tree, "-j", "2")
    for report in (one, two):
        del report["summary"]["seconds"]
    assert json.dumps(one) == json.dumps(two)


def test_hundreds_of_small_checkpoints(tmp_path, torch):
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(300):
        torch.save({"network": {"w": torch.full((2,), float(i))}}, folder / f"ckpt_{i:03d}.bin")
    (folder / "ckpt_150.bin").write_bytes(b"\x89PNG\r\n\x1a\n")  # one bad apple, named like a checkpoint
    (folder / "cover.dat").write_bytes(b"\x89PNG\r\n\x1a\n")  # a PNG named like nothing in particular
    for i in range(3):
        torch.save({"w": torch.zeros(1)}, folder / f"state_{i}.dat")  # checkpoints found by content alone
    result, report = scan_json(folder, "-j", "2")
    names = [Path(f["path"]).name for f in report["files"]]
    assert len(names) == 303 and names[:2] == ["ckpt_000.bin", "ckpt_001.bin"]
    assert report["summary"]["counts"]["UNKNOWN"] == 302
    (bad,) = [f for f in report["files"] if f["verdict"] != "UNKNOWN"]
    assert bad["path"].endswith("ckpt_150.bin") and bad["verdict"] == "UNREADABLE" and "PNG" in bad["error"]
    assert [Path(s["path"]).name for s in report["summary"]["skipped"]] == ["cover.dat"]
    assert result.exit_code == 3


def test_glob_and_explicit_files(tree):
    _, report = scan_json(str(tree / "drive" / "*.tar"))
    assert len(report["files"]) == 5


def test_symlinks_out_of_the_tree_are_not_followed(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    shutil.copy(EXAMPLES / "ConvNeXtPose_S.tar", outside / "ConvNeXtPose_S.tar")
    inside = tmp_path / "inside"
    inside.mkdir()
    (inside / "link.tar").symlink_to(outside / "ConvNeXtPose_S.tar")
    (inside / "dirlink").symlink_to(outside)
    _, report = scan_json(inside)
    assert report["files"] == []
    reasons = sorted(s["reason"] for s in report["summary"]["skipped"])
    assert any("out of the scanned folder" in r for r in reasons)
    assert any("symlinked folder" in r for r in reasons)


def test_fail_on_and_quiet(tree):
    drive = tree / "drive"
    assert run_cli("scan", drive).exit_code == 3
    assert run_cli("scan", "--fail-on", "mismatch", drive).exit_code == 1
    assert run_cli("scan", "--fail-on", "none", drive).exit_code == 0
    relaxed = json.loads(run_cli("scan", "--format", "json", "--fail-on", "mismatch", drive).stdout)
    assert relaxed["summary"]["exit_code"] == 1
    assert {f["exit_code"] for f in relaxed["files"] if f["verdict"] == "UNREADABLE"} == {0}
    assert run_cli("scan", "--fail-on", "bogus", drive).exit_code == 2
    quiet = run_cli("scan", "-q", "--format", "markdown", drive).stdout
    rows = [line for line in quiet.splitlines() if line.startswith("| ") and "verdict" not in line]
    assert len(rows) == 2 and all("| MATCH |" not in r for r in rows)


def test_output_file_written_only_after_success(tree, tmp_path, monkeypatch):
    out = tmp_path / "report.json"
    result = run_cli("scan", "--format", "json", "-o", out, tree / "drive")
    assert result.stdout == ""
    assert json.loads(out.read_text())["summary"]["files"] == 6

    from convnextpose_audit import scan as scan_module

    def explode(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(scan_module, "audit_path", explode)
    out2 = tmp_path / "never.json"
    result = run_cli("scan", "--format", "json", "-o", out2, tree / "drive")
    assert result.exit_code != 0 and not out2.exists()
    assert list(tmp_path.glob(".cnxp-*")) == []


def test_markdown_report_parses_back(tree):
    text = run_cli("scan", "--format", "markdown", tree / "drive").stdout
    lines = [line for line in text.splitlines() if line.startswith("|")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    assert header == ["file", "size", "declared", "inferred", "verdict", "reason"]
    assert set(lines[1].replace("|", "")) == {"-"}
    # Text from files is in code spans: strip the backticks to get the values back.
    rows = [dict(zip(header, (c.strip().strip("`") for c in line.strip("|").split(" | ")))) for line in lines[2:]]
    by_file = {Path(r["file"]).name: r for r in rows}
    assert by_file["ConvNeXtPose_L (2).tar"]["verdict"] == "MISMATCH"
    assert by_file["ConvNeXtPose_L (2).tar"]["inferred"] == "M"
    assert by_file["ConvNeXtPose_XS.tar"]["size"].endswith("kB")
    assert len(rows) == 6


def _dies_on(marker):
    """Stands in for audit_path in the workers (fork inherits it): the process vanishes on one file."""
    from convnextpose_audit.audit import audit_path

    def audit(path, *args, **kwargs):
        import os

        if marker in os.path.basename(str(path)):
            os._exit(9)
        return audit_path(path, *args, **kwargs)
    return audit


@pytest.mark.parametrize("culprit", ["0_crash.tar", "ConvNeXtPose_M (1) crash.tar", "zz_crash.tar"])
def test_a_dying_worker_costs_only_its_own_file(tree, tmp_path, monkeypatch, culprit):
    """Wherever the file that kills its worker sorts (first, middle, last), every other file keeps its verdict."""
    import multiprocessing

    from convnextpose_audit import scan as scan_module
    from convnextpose_audit.audit import AuditOptions, Labels
    from convnextpose_audit.exitcodes import ExitCode
    from convnextpose_audit.variants import load_registry

    folder = tmp_path / "drive"
    shutil.copytree(tree / "drive", folder)
    shutil.copy(EXAMPLES / "ConvNeXtPose_S.tar", folder / culprit)
    registry = load_registry()
    expected = {r.path: r.verdict for r in scan_module.scan([str(tree / "drive")], registry).files}

    monkeypatch.setattr(scan_module, "audit_path", _dies_on("crash"))
    monkeypatch.setattr(multiprocessing, "get_all_start_methods", lambda: ["fork"])  # workers inherit the patch
    report = scan_module.scan([str(folder)], registry, Labels(), AuditOptions(), jobs=2)

    by_name = {Path(r.path).name: r for r in report.files}
    assert len(report.files) == len(expected) + 1
    assert {name: r.verdict for name, r in by_name.items() if name != culprit} == \
        {Path(p).name: v for p, v in expected.items()}
    assert not any(r.internal_error for name, r in by_name.items() if name != culprit)
    dead = by_name[culprit]
    assert dead.internal_error and dead.verdict.value == "UNREADABLE"
    assert "internal error" in dead.error and "died" in dead.error
    assert report.exit_code == ExitCode.INTERNAL == report.exit_code_under(["none"])
