"""Exit codes that mean one thing each, documented once: usage, nothing audited, internal error, Ctrl-C."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from conftest import run_cli
from convnextpose_audit.exitcodes import MEANINGS, ExitCode

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "drive"
S_FILE = EXAMPLES / "ConvNeXtPose_S.tar"
L_MIRROR = EXAMPLES / "ConvNeXtPose_L_mirror.tar"


# ----------------------------------------------------------------------------- one table
def _readme_exit_table() -> dict[int, tuple[str, str]]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Verdicts and exit codes", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0].isdigit():
            rows[int(cells[0])] = (cells[1], cells[2])
    return rows


def test_readme_table_is_the_enum_and_its_meanings():
    rows = _readme_exit_table()
    assert sorted(rows) == sorted(int(c) for c in ExitCode)
    for code, (meaning, ci_action) in rows.items():
        assert meaning == MEANINGS[ExitCode(code)], code
        assert ci_action, f"exit code {code}: say what a CI job should do"


def test_help_lists_every_code_with_its_meaning():
    text = " ".join(run_cli("--help").stdout.split())
    for code, meaning in MEANINGS.items():
        assert f"{int(code)} {' '.join(meaning.split())}" in text


def test_json_summary_carries_the_same_meaning(tmp_path):
    report = json.loads(run_cli("inspect", "--format", "json", L_MIRROR).stdout)
    assert report["summary"]["exit_code"] == 1
    assert report["summary"]["exit_meaning"] == MEANINGS[ExitCode.MISMATCH]


# ----------------------------------------------------------------------------- usage: exit 2
@pytest.mark.parametrize("argv", [
    ["inspect"],
    ["scan", "--fail-on", "bogus", str(S_FILE)],
    ["scan", "-j", "0", str(S_FILE)],
    ["inspect", "--label", "XXL", str(S_FILE)],
    ["inspect", "--format", "yaml", str(S_FILE)],
    ["fetch", "not a url"],
    ["nonsense-command"],
])
def test_usage_errors_exit_2(argv):
    result = run_cli(*argv)
    assert result.exit_code == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("command", ["inspect", "scan"])
def test_output_folder_checked_before_the_audit(tmp_path, monkeypatch, command):
    from convnextpose_audit import audit

    def never(*a, **k):
        raise AssertionError("the audit ran although -o cannot be written")

    monkeypatch.setattr(audit, "iter_entries", never)
    result = run_cli(command, "-o", tmp_path / "missing" / "report.json", S_FILE)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1 and "does not exist" in result.stderr
    result = run_cli(command, "-o", tmp_path, S_FILE)  # a folder where a file is wanted
    assert result.exit_code == 2


def test_convert_usage_errors_before_reading(tmp_path, monkeypatch):
    from convnextpose_audit.cli import convert_cmd

    def never(*a, **k):
        raise AssertionError("the source was read although OUT cannot be written")

    monkeypatch.setattr(convert_cmd, "open_checkpoint", never)
    existing = tmp_path / "out.safetensors"
    existing.write_bytes(b"keep me")
    assert run_cli("convert", S_FILE, existing).exit_code == 2
    assert existing.read_bytes() == b"keep me"
    assert run_cli("convert", S_FILE, tmp_path / "no" / "out.safetensors").exit_code == 2


def test_verify_unknown_variant_is_usage(torch):
    assert run_cli("verify", "--variant", "XXL", S_FILE).exit_code == 2


# ----------------------------------------------------------------------------- 70: one file's bug
@pytest.fixture
def buggy(monkeypatch, tmp_path):
    """Auditing one of two files raises an unexpected exception."""
    from convnextpose_audit import audit

    real = audit.audit_checkpoint

    def audit_checkpoint(ckpt, *args, **kwargs):
        if Path(ckpt.name).name.startswith("bug_"):  # the tmp folder may say "bug" too
            raise ValueError("boom while fingerprinting")
        return real(ckpt, *args, **kwargs)

    monkeypatch.setattr(audit, "audit_checkpoint", audit_checkpoint)
    shutil.copy(S_FILE, tmp_path / "ConvNeXtPose_S.tar")
    shutil.copy(S_FILE, tmp_path / "bug_S.tar")
    return tmp_path


@pytest.mark.parametrize("argv", [["inspect"], ["scan"], ["scan", "--fail-on", "none"],
                                  ["inspect", "--fail-on", "none"]])
def test_a_bug_in_one_file_is_that_files_result(buggy, argv):
    paths = [buggy] if argv[0] == "scan" else sorted(buggy.iterdir())
    result = run_cli(*argv, "--format", "json", *paths)
    report = json.loads(result.stdout)
    by_name = {Path(f["path"]).name: f for f in report["files"]}
    assert by_name["ConvNeXtPose_S.tar"]["verdict"] == "MATCH"  # the other file is still audited
    bad = by_name["bug_S.tar"]
    assert bad["verdict"] == "UNREADABLE" and bad["internal_error"] is True and bad["exit_code"] == 70
    assert "internal error: ValueError: boom while fingerprinting" in bad["error"]
    assert any("Traceback" in line for line in bad["evidence"])  # -v shows where
    assert result.exit_code == report["summary"]["exit_code"] == 70
    assert "Traceback" not in result.stderr


def test_a_bug_outside_any_file_is_one_line_and_70(monkeypatch):
    from convnextpose_audit.cli import inspect_cmd

    def broken(*a, **k):
        raise RuntimeError("renderer fell over")

    monkeypatch.setattr(inspect_cmd, "emit_report", broken)
    result = run_cli("inspect", S_FILE)
    assert result.exit_code == 70
    assert result.stderr.strip().splitlines() == [
        "cnxp-audit: internal error: RuntimeError: renderer fell over (please report; -v shows the traceback)"]


# ----------------------------------------------------------------------------- 130: Ctrl-C
SLOW = textwrap.dedent("""
    import pathlib, sys, time
    from convnextpose_audit import audit
    real = audit.audit_checkpoint
    def slow(*a, **k):
        pathlib.Path(sys.argv[1]).touch()  # tells the test the audit is under way
        time.sleep(0.5)
        return real(*a, **k)
    audit.audit_checkpoint = slow
    from convnextpose_audit.cli import main
    sys.exit(main(sys.argv[2:]))
""")


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_ctrl_c_exits_130_and_writes_nothing(tmp_path, jobs):
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(12):
        shutil.copy(S_FILE, folder / f"m{i:02d}.tar")
    script, started, out = tmp_path / "slow.py", tmp_path / "started", tmp_path / "report.json"
    script.write_text(SLOW)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen([sys.executable, str(script), str(started), "scan", "-j", jobs, "--format", "json",
                             "-o", str(out), str(folder)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env, start_new_session=True)
    deadline = time.monotonic() + 60
    while not started.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert started.exists(), proc.communicate()
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does: the whole process group
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert stderr.strip().splitlines() == ["cnxp-audit: interrupted"]
    assert stdout == "" and not out.exists() and not list(tmp_path.glob(".cnxp-*"))


# ----------------------------------------------------------------------------- schema_version
def test_every_json_output_has_schema_version(tmp_path, torch):
    outputs = {
        "inspect": run_cli("inspect", "--format", "json", S_FILE).stdout,
        "scan": run_cli("scan", "--format", "json", EXAMPLES).stdout,
        "verify": run_cli("verify", "--format", "json", S_FILE).stdout,
        "diff": run_cli("diff", "--format", "json", S_FILE, L_MIRROR).stdout,
        "variants": run_cli("variants", "--format", "json").stdout,
    }
    for command, text in outputs.items():
        data = json.loads(text)
        assert data["schema_version"] == 1 and data["tool"]["name"] == "cnxp-audit", command


# ----------------------------------------------------------------------------- verify
def test_verify_reports_the_label_and_exits_by_the_verdict(torch):
    result = run_cli("verify", L_MIRROR)  # M weights under an L name: they load as M, the label is wrong
    assert result.exit_code == 1
    first = result.stdout.splitlines()[0]
    assert re.search(r"declared L \(file name\), inferred M → MISMATCH", first)
    assert "strict load: ok" in result.stdout
    out = json.loads(run_cli("verify", "--format", "json", L_MIRROR).stdout)
    assert (out["declared"], out["inferred"], out["verdict"], out["loaded"], out["exit_code"]) == \
        ("L", "M", "MISMATCH", True, 1)
    ok = json.loads(run_cli("verify", "--format", "json", S_FILE).stdout)
    assert (ok["declared"], ok["verdict"], ok["exit_code"]) == ("S", "MATCH", 0)
