"""The committed examples show every verdict the README promises, and the generator reproduces them."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from conftest import run_cli

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
EXPECTED = {"ConvNeXtPose_L (1).tar": "MATCH", "ConvNeXtPose_M (1).tar": "MATCH", "ConvNeXtPose_S.tar": "MATCH",
            "ConvNeXtPose_XS.tar": "MATCH", "ConvNeXtPose_L_mirror.tar": "MISMATCH", "posenet_resnet50.pth": "UNKNOWN"}


def verdicts(folder: Path) -> dict[str, str]:
    result = run_cli("inspect", "--format", "json", *sorted(folder.iterdir()))
    assert result.exit_code == 1
    return {Path(f["path"]).name: f["verdict"] for f in json.loads(result.stdout)["files"]}


def test_committed_examples():
    assert verdicts(EXAMPLES / "drive") == EXPECTED
    assert all(p.stat().st_size < 300_000 for p in (EXAMPLES / "drive").iterdir())


def test_generator_reproduces_examples(tmp_path, monkeypatch, torch):
    spec = importlib.util.spec_from_file_location("make_examples", EXAMPLES / "make_examples.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "OUT", tmp_path)
    assert module.main() == 0
    assert verdicts(tmp_path) == EXPECTED


def test_ci_script_is_valid_bash():
    import subprocess

    subprocess.run(["bash", "-n", str(EXAMPLES / "ci-check.sh")], check=True)
