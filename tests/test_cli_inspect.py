"""The inspect and variants commands through Click's runner and through ``python -m``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import DRIVE_NAMES, run_cli
from convnextpose_audit.render.json import FINGERPRINT_FIELDS

FILE_FIELDS = ("path", "format", "declared", "inferred", "nearest", "verdict", "error", "evidence", "fingerprint")


@pytest.fixture(scope="module")
def mixed(tmp_path_factory, drive_dir, torch):
    """The Drive files plus a mislabeled one, a foreign model and a broken file."""
    import torch_models as tm

    folder = tmp_path_factory.mktemp("mixed")
    for name in DRIVE_NAMES.values():
        (folder / name).symlink_to(drive_dir / name)
    tm.save_like_drive(tm.build("S"), folder, "ConvNeXtPose_L.pth", optimizer=False)
    torch.save({"state_dict": torch.nn.Linear(3, 2).state_dict()}, folder / "other_model.pth")
    (folder / "broken.pth").write_bytes((drive_dir / DRIVE_NAMES["S"]).read_bytes()[:5000])
    return folder


def test_json_contract(mixed):
    files = sorted(str(p) for p in mixed.iterdir())
    result = run_cli("inspect", "--format", "json", *files)
    report = json.loads(result.stdout)
    assert report["schema_version"] == 1
    by_name = {e["path"].rsplit("/", 1)[-1]: e for e in report["files"]}
    for entry in report["files"]:
        assert all(k in entry for k in FILE_FIELDS)
        if entry["fingerprint"] is not None:
            assert all(k in entry["fingerprint"] for k in FINGERPRINT_FIELDS)
    assert by_name["ConvNeXtPose_L (1).tar"]["verdict"] == "MATCH"
    assert by_name["ConvNeXtPose_L (1).tar"]["fingerprint"]["total"] == 8_391_354
    assert by_name["ConvNeXtPose_L.pth"]["verdict"] == "MISMATCH"
    assert by_name["ConvNeXtPose_L.pth"]["inferred"] == "S"
    assert by_name["other_model.pth"]["verdict"] == "UNKNOWN"
    assert by_name["broken.pth"]["verdict"] == "UNREADABLE"
    assert by_name["broken.pth"]["error"]
    counts = report["summary"]["counts"]
    assert counts == {"MATCH": 4, "MISMATCH": 1, "UNLABELED": 0, "UNKNOWN": 1, "UNREADABLE": 1, "UNSAFE": 0}
    assert report["summary"]["exit_code"] == result.exit_code == 3


@pytest.mark.parametrize("names, code", [
    (["ConvNeXtPose_XS.tar", "ConvNeXtPose_M (1).tar"], 0),
    (["ConvNeXtPose_L.pth"], 1),
    (["ConvNeXtPose_L.pth", "broken.pth"], 3),
    (["other_model.pth"], 0),
])
def test_exit_codes(mixed, names, code):
    assert run_cli("inspect", *[mixed / n for n in names]).exit_code == code


def test_label_override_and_unknown_labelled(mixed):
    assert run_cli("inspect", "--label", "M", mixed / "ConvNeXtPose_L (1).tar").exit_code == 1
    assert run_cli("inspect", "--label", "l", mixed / "other_model.pth").exit_code == 1


def test_usage_errors_exit_2(mixed, tmp_path):
    assert run_cli("inspect").exit_code == 2
    assert run_cli("inspect", "--format", "yaml", mixed / "broken.pth").exit_code == 2
    result = run_cli("inspect", "--label", "XXL", mixed / "broken.pth")
    assert result.exit_code == 2 and "XXL" in result.stderr
    bad = tmp_path / "v.toml"
    bad.write_text("nope [")
    assert run_cli("inspect", "--variants", bad, mixed / "broken.pth").exit_code == 2


def test_verbose_evidence_and_table(mixed):
    result = run_cli("inspect", "-v", mixed / "ConvNeXtPose_L (1).tar")
    assert result.exit_code == 0
    assert "stem width 48 → S, M or L" in result.stdout
    assert "MATCH" in result.stdout


@pytest.mark.security
def test_markup_in_names_is_printed_as_text(tmp_path):
    from fixtures.payloads import zip_checkpoint

    path = tmp_path / "[bold red]x[blink].pth"
    path.write_bytes(zip_checkpoint())
    result = run_cli("inspect", "-v", path)
    assert "[bold red]x[blink].pth" in result.stdout


def test_tensors_listing(mixed):
    report = json.loads(run_cli("inspect", "--format", "json", "--tensors", mixed / "ConvNeXtPose_XS.tar").stdout)
    tensors = report["files"][0]["tensors"]
    assert tensors[0] == {"name": "module.backbone.downsample_layers.0.0.weight", "dtype": "float32",
                          "shape": [40, 3, 4, 4]}


def test_markdown_format(mixed):
    out = run_cli("inspect", "--format", "markdown", mixed / "ConvNeXtPose_L.pth").stdout
    assert out.splitlines()[0].startswith("| file | size | declared | inferred | verdict | reason |")


def test_variants_command():
    out = run_cli("variants", "--format", "json").stdout
    data = json.loads(out)
    assert [v["label"] for v in data["variants"]] == ["XS", "S", "M", "L"]
    assert "paper" in data["sources"]
    table = run_cli("variants")
    assert table.exit_code == 0 and "ConvNeXtPose-L" in table.stdout


def test_python_m_stdout_is_only_data(mixed):
    proc = subprocess.run([sys.executable, "-m", "convnextpose_audit", "inspect", "--format", "json",
                           str(mixed / "ConvNeXtPose_L.pth"), str(mixed / "missing.pth")],
                          capture_output=True, text=True)
    report = json.loads(proc.stdout)  # nothing but JSON on stdout
    assert proc.returncode == 3
    assert [f["verdict"] for f in report["files"]] == ["MISMATCH", "UNREADABLE"]
    assert "no such file" in report["files"][1]["error"]
    assert "Traceback" not in proc.stderr


def test_version_and_help():
    assert run_cli("--version").stdout.startswith("cnxp-audit, version")
    help_text = run_cli("--help").stdout
    assert "Exit codes" in help_text and "UNSAFE" in help_text


def test_file_names_that_are_not_utf8(tmp_path):
    import os
    import shutil

    from conftest import DRIVE_NAMES  # noqa: F401  (keeps the fixture module loaded)

    src = Path(__file__).resolve().parent.parent / "examples" / "drive" / "ConvNeXtPose_S.tar"
    folder = tmp_path / "names"
    folder.mkdir()
    shutil.copy(src, os.path.join(os.fsencode(folder), b"ConvNeXtPose_S\xff.tar"))
    for fmt in ("table", "markdown", "json"):
        proc = subprocess.run([sys.executable, "-m", "convnextpose_audit", "scan", "--format", fmt, str(folder)],
                              capture_output=True, env={**os.environ, "PYTHONIOENCODING": "utf-8:strict"})
        assert proc.returncode == 0, proc.stderr.decode(errors="replace")
        assert b"Traceback" not in proc.stderr
        assert b"MATCH" in proc.stdout


def test_every_command_help_exits_zero():
    """--help is click's own exit, never the internal-error path (a regression from the one-exit-path change)."""
    from convnextpose_audit.cli import COMMANDS, main

    assert main(["--help"]) == 0
    for name in COMMANDS:
        assert main([name, "--help"]) == 0, name
