"""--format sarif: valid against the official SARIF 2.1.0 schema, one result per finding, stable rules."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from conftest import run_cli
from fixtures import hostile
from fixtures.pickle_ops import glob, s, stop, tup

from convnextpose_audit.audit import Report
from convnextpose_audit.render.base import RenderOptions
from convnextpose_audit.render.sarif import RULES, SarifFormat, artifact_uri, render_sarif

jsonschema = pytest.importorskip("jsonschema")

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "drive"
SCHEMA = json.loads((Path(__file__).parent / "fixtures" / "sarif" / "sarif-schema-2.1.0.json").read_text())


def validate(log: dict) -> None:
    jsonschema.Draft4Validator(SCHEMA).validate(log)


@pytest.fixture
def mixed(tmp_path, monkeypatch):
    """A folder as people keep them: two right labels, two wrong ones, an unknown model,
    an unsafe pickle, a truncated file and a README. Paths are relative to the working directory."""
    folder = tmp_path / "models"
    folder.mkdir()
    shutil.copy(EXAMPLES / "ConvNeXtPose_L (1).tar", folder / "ConvNeXtPose_L.tar")
    shutil.copy(EXAMPLES / "ConvNeXtPose_XS.tar", folder / "ConvNeXtPose_XS.tar")
    shutil.copy(EXAMPLES / "ConvNeXtPose_L_mirror.tar", folder / "ConvNeXtPose_L_mirror.tar")  # M weights
    shutil.copy(EXAMPLES / "ConvNeXtPose_S.tar", folder / "ConvNeXtPose_M new.tar")  # S weights
    shutil.copy(EXAMPLES / "posenet_resnet50.pth", folder / "posenet_resnet50.pth")
    evil = stop(glob("os", "system") + tup(s("true")) + b"R")
    hostile.write(folder, "evil.pth", hostile.torch_zip(evil))
    (folder / "broken.pth").write_bytes((EXAMPLES / "ConvNeXtPose_S.tar").read_bytes()[:50_000])
    (folder / "README.txt").write_text("weights for the pose demo\n")
    monkeypatch.chdir(tmp_path)
    return folder


def _scan_sarif(*args):
    result = run_cli("scan", "--format", "sarif", *args)
    return result, json.loads(result.stdout)


def _by_uri(log: dict) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for res in log["runs"][0]["results"]:
        out.setdefault(res["locations"][0]["physicalLocation"]["artifactLocation"]["uri"], []).append(res)
    return out


def test_mixed_folder_validates_and_mislabeled_files_are_errors(mixed):
    result, log = _scan_sarif("models")
    assert result.exit_code == 4  # unsafe wins
    validate(log)
    run = log["runs"][0]
    results = _by_uri(log)
    mismatches = sorted(uri for uri, rs in results.items() if any(r["ruleId"] == "CNXP001" for r in rs))
    assert mismatches == ["models/ConvNeXtPose_L_mirror.tar", "models/ConvNeXtPose_M%20new.tar"]
    for uri in mismatches:
        assert [r["level"] for r in results[uri]] == ["error"]
    assert "but the tensors are S" in results["models/ConvNeXtPose_M%20new.tar"][0]["message"]["text"]
    assert [r["ruleId"] for r in results["models/evil.pth"]] == ["CNXP101"]
    assert "os.system" in results["models/evil.pth"][0]["message"]["text"]
    assert [(r["ruleId"], r["level"]) for r in results["models/broken.pth"]] == [("CNXP004", "error")]
    [unknown] = results["models/posenet_resnet50.pth"]
    assert (unknown["ruleId"], unknown["level"]) == ("CNXP002", "note")
    assert "no ConvNeXt backbone keys" in unknown["message"]["text"]
    assert "models/ConvNeXtPose_L.tar" not in results and "models/ConvNeXtPose_XS.tar" not in results
    assert run["invocations"][0]["exitCode"] == 4
    assert any("README.txt" in n["message"]["text"] for n in run["invocations"][0]["toolExecutionNotifications"])


def test_rules_are_stable_and_security_rules_carry_a_severity(mixed):
    _, log = _scan_sarif("models")
    rules = log["runs"][0]["tool"]["driver"]["rules"]
    ids = [r["id"] for r in rules]
    assert ids[:2] == ["CNXP001", "CNXP002"] and "CNXP101" in ids and len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"CNXP\d{3}", i) for i in ids)
    for rule in rules:
        assert rule["help"]["text"] and rule["shortDescription"]["text"]
        security = "security" in rule["properties"]["tags"]
        assert security == ("security-severity" in rule["properties"])
        if security:
            assert 7.0 <= float(rule["properties"]["security-severity"]) <= 10.0
    for res in log["runs"][0]["results"]:
        assert rules[res["ruleIndex"]]["id"] == res["ruleId"]


def test_inspect_writes_sarif_to_a_file(tmp_path, monkeypatch):
    monkeypatch.chdir(EXAMPLES.parent.parent)
    out = tmp_path / "audit.sarif"
    result = run_cli("inspect", "--format", "sarif", "-o", str(out), "examples/drive/ConvNeXtPose_L_mirror.tar",
                     "examples/drive/ConvNeXtPose_S.tar")
    assert result.exit_code == 1 and result.stdout == ""
    log = json.loads(out.read_text())
    validate(log)
    [res] = log["runs"][0]["results"]
    assert res["ruleId"] == "CNXP001" and res["properties"]["failsRun"] is True
    assert res["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == \
        "examples/drive/ConvNeXtPose_L_mirror.tar"


def test_fail_on_none_keeps_findings_but_not_the_failure(mixed):
    result, log = _scan_sarif("models", "--fail-on", "none")
    assert result.exit_code == 0 and log["runs"][0]["invocations"][0]["exitCode"] == 0
    assert all(r["properties"]["failsRun"] is False for r in log["runs"][0]["results"])
    assert sum(r["level"] == "error" for r in log["runs"][0]["results"]) == 4


def test_uris_relative_inside_cwd_file_uri_outside_urls_as_given():
    assert artifact_uri("/work/x/a b.pth", "/work") == ("x/a%20b.pth", "")
    assert artifact_uri("/elsewhere/a.pth", "/work") == ("file:///elsewhere/a.pth", "")
    assert artifact_uri("../a.pth", "/work/x") == ("file:///work/a.pth", "")
    assert artifact_uri("drive.zip!snap/ConvNeXtPose_L.tar", "/work") == ("drive.zip", "snap/ConvNeXtPose_L.tar")
    assert artifact_uri("http://h/ConvNeXtPose_L%20(1).tar", "/work") == ("http://h/ConvNeXtPose_L%20(1).tar", "")
    assert artifact_uri("caf\udce9.pth", "/work") == ("caf%E9.pth", "")  # undecodable name bytes kept


def test_outer_zip_members_get_a_logical_location(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    hostile.write(tmp_path, "drive.zip", hostile.outer({
        "snap/ConvNeXtPose_L.tar": (EXAMPLES / "ConvNeXtPose_L_mirror.tar").read_bytes()}))
    result, log = _scan_sarif("drive.zip")
    validate(log)
    [res] = log["runs"][0]["results"]
    assert res["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "drive.zip"
    assert res["locations"][0]["logicalLocations"][0]["fullyQualifiedName"] == "snap/ConvNeXtPose_L.tar"


def test_text_from_files_has_no_control_characters(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    evil = stop(glob("os\x1b[31m", "sys\ntem") + tup(s("true")) + b"R")
    hostile.write(tmp_path, "evil.pth", hostile.torch_zip(evil))
    _, log = _scan_sarif("evil.pth")
    validate(log)
    text = log["runs"][0]["results"][0]["message"]["text"]
    assert not re.search(r"[\x00-\x1f\x7f]", text)


def test_renderer_is_pure_and_registry_class_matches():
    report = Report(files=[])
    text = render_sarif(report, fail_on=("mismatch",), cwd="/nonexistent")
    log = json.loads(text)
    validate(log)
    assert log["version"] == "2.1.0" and log["runs"][0]["results"] == []
    assert SarifFormat().render(report, RenderOptions()) == render_sarif(report)
    log["runs"][0]["results"] = [{"ruleId": "CNXP001", "level": "fatal", "message": {"text": "x"}}]
    with pytest.raises(jsonschema.ValidationError):  # the schema really is checked
        validate(log)
    assert len({r.id for r in RULES}) == len(RULES)
