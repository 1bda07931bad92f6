"""The composite GitHub Action (action.yml): its YAML, and its steps' scripts run under bash as
GitHub runs them (``bash --noprofile --norc -eo pipefail``), with fake GITHUB_STEP_SUMMARY/OUTPUT files."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

yaml = pytest.importorskip("yaml")

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples" / "drive"
ACTION = yaml.safe_load((ROOT / "action.yml").read_text())
STEPS = {step["name"]: step for step in ACTION["runs"]["steps"]}
_EXPR = re.compile(r"\$\{\{\s*([^}]+?)\s*\}\}")


def test_action_yaml_shape():
    assert ACTION["runs"]["using"] == "composite"
    assert {"paths", "fail-on", "format", "version"} <= set(ACTION["inputs"])
    assert ACTION["inputs"]["fail-on"]["default"] == "mismatch,unknown,unreadable,unsafe"
    for step in ACTION["runs"]["steps"]:
        assert step["shell"] == "bash"
        # Inputs reach scripts only through env: an expression inside `run` would be script injection.
        assert "${{" not in step["run"]
    assert set(ACTION["outputs"]) == {"exit-code", "sarif-file"}


def test_example_workflow_uses_the_action_and_uploads_sarif():
    workflow = yaml.safe_load((ROOT / "examples" / "github-actions" / "audit-checkpoints.yml").read_text())
    steps = workflow["jobs"]["audit"]["steps"]
    uses = [s.get("uses", "") for s in steps]
    assert any(u.split("@")[0].endswith("/convnextpose-audit") for u in uses)
    upload = next(s for s in steps if s.get("uses", "").startswith("github/codeql-action/upload-sarif"))
    assert "always()" in upload["if"] and "steps.audit.outputs.sarif-file" in upload["with"]["sarif_file"]


class Runner:
    """Runs the action's steps in order in ``workdir``, as the runner would."""

    def __init__(self, workdir: Path, inputs: dict[str, str], bin_dir: Path | None = None):
        self.workdir = workdir
        self.inputs = {k: v.get("default", "") for k, v in ACTION["inputs"].items()} | inputs
        self.summary = workdir / "summary.md"
        self.output = workdir / "github_output"
        self.bin_dir = bin_dir
        self.outputs: dict[str, dict[str, str]] = {}

    def _value(self, expr: str) -> str:
        kind, _, rest = expr.partition(".")
        if kind == "inputs":
            return self.inputs[rest]
        if expr == "github.action_path":
            return str(ROOT)
        found = re.fullmatch(r"steps\.([\w-]+)\.outputs\.([\w-]+)", expr)
        assert found, f"unexpected expression {expr}"
        return self.outputs.get(found.group(1), {}).get(found.group(2), "")

    def run(self, name: str) -> subprocess.CompletedProcess:
        step = STEPS[name]
        env = dict(os.environ, GITHUB_STEP_SUMMARY=str(self.summary), GITHUB_OUTPUT=str(self.output))
        path = [str(Path(sys.executable).parent), env.get("PATH", "")]
        env["PATH"] = os.pathsep.join(([str(self.bin_dir)] if self.bin_dir else []) + path)
        env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")])
        for key, value in step.get("env", {}).items():
            env[key] = _EXPR.sub(lambda m: self._value(m.group(1)), str(value))
        self.output.write_text("")
        proc = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]],
                              cwd=self.workdir, env=env, capture_output=True, text=True, timeout=300)
        pairs = [line.split("=", 1) for line in self.output.read_text().splitlines() if "=" in line]
        if step.get("id"):
            self.outputs[step["id"]] = dict(pairs)
        return proc


@pytest.fixture
def workdir(tmp_path):
    shutil.copytree(EXAMPLES, tmp_path / "drive")
    return tmp_path


def test_scan_step_writes_sarif_summary_and_gates(workdir):
    runner = Runner(workdir, {"paths": "drive/ConvNeXtPose_L (1).tar\n  drive/ConvNeXtPose_L_mirror.tar  \n\n"})
    scan = runner.run("Scan")
    assert scan.returncode == 0, scan.stderr  # the scan step records the code; the gate fails
    assert runner.outputs["scan"] == {"exit-code": "1", "sarif-file": "cnxp-audit.sarif"}
    summary = runner.summary.read_text()
    assert summary.startswith("## cnxp-audit")
    assert "| `drive/ConvNeXtPose_L_mirror.tar` | 236.8 kB | `L` | `M` | MISMATCH |" in summary
    assert "| `drive/ConvNeXtPose_L (1).tar` | 236.8 kB | `L` | `L` | MATCH |" in summary
    sarif = json.loads((workdir / "cnxp-audit.sarif").read_text())
    assert [(r["ruleId"], r["level"]) for r in sarif["runs"][0]["results"]] == [("CNXP001", "error")]
    gate = runner.run("Gate")
    assert gate.returncode == 1


def test_scan_step_policy_and_formats(workdir):
    runner = Runner(workdir, {"paths": "drive", "fail-on": "none", "format": "json"})
    assert runner.run("Scan").returncode == 0
    assert runner.outputs["scan"] == {"exit-code": "0", "sarif-file": ""}
    report = json.loads((workdir / "cnxp-audit.json").read_text())
    assert report["summary"]["counts"]["MISMATCH"] == 1
    assert not runner.summary.exists()  # no markdown asked for: nothing posted
    assert runner.run("Gate").returncode == 0


def test_scan_step_rejects_an_unknown_format(workdir):
    runner = Runner(workdir, {"paths": "drive", "format": "html"})
    proc = runner.run("Scan")
    assert proc.returncode == 2 and "unknown format 'html'" in proc.stderr


@pytest.mark.parametrize("version, spec", [("", str(ROOT)), ("0.2.0", "convnextpose-audit==0.2.0"),
                                           ("git+https://example.invalid/x.git@v1", "git+https://example.invalid/x.git@v1")])
def test_install_step_pins_to_the_action_by_default(workdir, version, spec):
    # A stand-in python records the pip call; anything else goes to the real interpreter.
    bin_dir = workdir / "bin"
    bin_dir.mkdir()
    log = workdir / "pip.log"
    (bin_dir / "python").write_text(f'#!/bin/sh\nif [ "$1 $2" = "-m pip" ]; then echo "$@" > "{log}"; exit 0; fi\n'
                                    f'exec "{sys.executable}" "$@"\n')
    (bin_dir / "python").chmod(0o755)
    proc = Runner(workdir, {"version": version}, bin_dir).run("Install cnxp-audit")
    assert proc.returncode == 0, proc.stderr
    assert log.read_text().split()[-1] == spec
    assert proc.stdout.startswith("cnxp-audit, version")
