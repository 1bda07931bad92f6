"""Paths round-trip and folders do what a person means (issue 13), on the bundled examples (no torch).

Every command accepts the ``outer.zip!member`` paths ``scan`` prints; an outer zip holding
several checkpoints is answered with their names; ``inspect DIR`` finds the checkpoint tree
``unzip`` makes one level down, and a folder of files is pointed to ``scan``.
"""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import pytest

from conftest import run_cli

DRIVE = Path(__file__).parent.parent / "examples" / "drive"
L, M = DRIVE / "ConvNeXtPose_L (1).tar", DRIVE / "ConvNeXtPose_M (1).tar"


@pytest.fixture
def outer(tmp_path) -> Path:
    """A browser-style download of the Drive folder: the checkpoints inside one zip."""
    path = tmp_path / "ConvNeXtPose-drive.zip"
    with zipfile.ZipFile(path, "w") as z:
        z.write(L, f"drive/{L.name}")
        z.write(M, f"drive/{M.name}")
    return path


def _scanned_paths(outer: Path) -> list[str]:
    report = json.loads(run_cli("scan", "--format", "json", outer).stdout)
    return [f["path"] for f in report["files"]]


def test_scan_paths_work_in_every_command(outer, tmp_path):
    l_inner, m_inner = sorted(_scanned_paths(outer))
    assert l_inner == f"{outer}!drive/{L.name}" and m_inner == f"{outer}!drive/{M.name}"
    inspected = json.loads(run_cli("inspect", "--format", "json", l_inner).stdout)["files"]
    assert [(f["path"], f["inferred"], f["verdict"]) for f in inspected] == [(l_inner, "L", "MATCH")]
    # diff of the two members: different heads; of a member against the same file on disk: identical
    differ = run_cli("diff", "--format", "json", l_inner, m_inner)
    assert differ.exit_code == 1 and json.loads(differ.stdout)["identical"] is False
    same = run_cli("diff", "--format", "json", l_inner, L)
    assert same.exit_code == 0 and json.loads(same.stdout)["identical"] is True
    out = tmp_path / "L.safetensors"
    assert run_cli("convert", l_inner, out).exit_code == 0 and out.stat().st_size > 0
    listing = run_cli("tensors", l_inner)
    assert listing.exit_code == 0 and "head.final_layer.weight" in listing.stdout


def test_an_outer_zip_with_several_checkpoints_names_them(outer):
    result = run_cli("diff", outer, L)
    assert result.exit_code == 2  # a usage error: the command reads one checkpoint; name it
    assert "holds 2 checkpoints" in result.stderr and f"{outer}!drive/{L.name}" in result.stderr
    assert "iter_checkpoints" not in result.stderr  # no Python API hint in a CLI message


def test_a_missing_member_is_one_line(outer):
    result = run_cli("inspect", "--format", "json", f"{outer}!drive/nothing.pth")
    entry = json.loads(result.stdout)["files"][0]
    assert result.exit_code == 3 and "no such member" in entry["error"]


def test_inspect_finds_the_tree_unzip_makes_one_level_down(tmp_path):
    folder = tmp_path / "ConvNeXtPose_L"
    with zipfile.ZipFile(L) as z:  # what `unzip "ConvNeXtPose_L (1).tar" -d ConvNeXtPose_L` leaves
        z.extractall(folder)
    assert (folder / "snapshot_83.pth" / "data.pkl").is_file()
    result = run_cli("inspect", "--format", "json", folder)
    entry = json.loads(result.stdout)["files"][0]
    assert result.exit_code == 0, result.stderr
    assert (entry["format"], entry["declared"], entry["inferred"], entry["verdict"]) == ("extracted", "L", "L", "MATCH")


def test_a_folder_of_checkpoints_points_to_scan(tmp_path):
    folder = tmp_path / "drive"
    folder.mkdir()
    for src in (L, M):
        shutil.copy(src, folder / src.name)
    result = run_cli("inspect", "--format", "json", folder)
    entry = json.loads(result.stdout)["files"][0]
    assert result.exit_code == 3 and f"cnxp-audit scan {folder}" in entry["error"]
    assert "a folder without data.pkl" not in entry["error"]
