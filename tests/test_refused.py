"""Files torch refuses (issue 14), built with torch: read inertly, every global named, weights rescued.

Expected tensors come from torch itself, trusting these files (the suite wrote them) in a throwaway process
(tests/trusted_load.py); expected variants from the paper's table (tests/torch_models.py builds them).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import run_cli

TESTS = Path(__file__).resolve().parent


def trusted(mode: str, path: Path, *names: str) -> dict:
    """torch's own answer about a fixture of this suite, from a throwaway process (see trusted_load.py)."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]))
    env.pop("TORCH_FORCE_WEIGHTS_ONLY_LOAD", None)
    proc = subprocess.run([sys.executable, str(TESTS / "trusted_load.py"), mode, str(path), *names], env=env,
                          capture_output=True, text=True, timeout=300, cwd=path.parent)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout)


def audit_json(command: str, *args) -> tuple[dict, int]:
    result = run_cli(command, "--format", "json", *map(str, args))
    return json.loads(result.stdout), result.exit_code


def _global(entry: dict, name: str) -> dict:
    found = [g for g in entry["globals"] if g["name"] == name]
    assert found, f"{name} not among {[g['name'] for g in entry['globals']]}"
    return found[0]


# -- whole modules ------------------------------------------------------------------------------------------------
def test_whole_module_l_is_inferred_l_unsafe_exit_4_with_its_globals(refused_files):
    report, code = audit_json("inspect", refused_files["whole_L"])
    (entry,) = report["files"]
    assert (entry["verdict"], entry["inferred"], entry["exit_code"], code) == ("UNSAFE", "L", 4, 4)
    assert entry["fingerprint"]["head_widths"] == [512, 512, 512] and entry["fingerprint"]["elements"] == 8_391_354
    root = _global(entry, "torch_models.PoseNet")
    assert (root["kind"], root["allowed"], root["count"]) == ("class", False, 1)
    assert root["where"] == [{"member": "data.pkl", "opcode": "GLOBAL", "offset": root["where"][0]["offset"]}]
    assert _global(entry, "torch.nn.modules.conv.Conv2d")["kind"] == "class"
    assert _global(entry, "torch._utils._rebuild_parameter") | {"where": None} == {
        "name": "torch._utils._rebuild_parameter", "kind": "tensor", "count": 1, "allowed": True, "where": None,
        "reason": _global(entry, "torch._utils._rebuild_parameter")["reason"]}
    assert "torch_models.PoseNet" in entry["torch_weights_only"]["needs"]
    assert entry["torch_weights_only"]["loads"] is False
    assert entry["error"].count("torch_models.PoseNet") == 1


@pytest.mark.parametrize("label", ["XS", "S", "M", "L"])
def test_whole_module_names_are_the_state_dict_torch_gives(refused_files, label):
    path = refused_files[f"whole_{label}"]
    report, code = audit_json("tensors", path)
    listed = {t["name"]: [t["dtype"], t["shape"]] for t in report["files"][0]["tensors"]}
    expected = {k: v[:2] for k, v in trusted("state", path).items()}
    assert code == 4 and list(listed) == list(expected) and listed == expected
    assert report["files"][0]["inferred"] == label


# -- Lightning ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name, label, refused", [
    ("lightning_namespace", "S", {"argparse.Namespace"}),
    ("lightning_omegaconf", "M", {"omegaconf.dictconfig.DictConfig", "omegaconf.base.ContainerMetadata",
                                  "omegaconf.nodes.AnyNode", "typing.Any"}),
])
def test_lightning_files_list_tensors_and_globals(refused_files, name, label, refused):
    path = refused_files[name]
    report, code = audit_json("tensors", path)
    (entry,) = report["files"]
    expected = trusted("state", path)
    assert [t["name"] for t in entry["tensors"]] == list(expected)
    assert [[t["dtype"], t["shape"]] for t in entry["tensors"]] == [v[:2] for v in expected.values()]
    assert code == 4 and entry["verdict"] == "UNSAFE" and entry["inferred"] == label
    named = {g["name"] for g in entry["globals"] if not g["allowed"]}
    assert refused <= named
    assert all(_global(entry, n)["kind"] == "class" for n in refused)


# -- TorchScript ----------------------------------------------------------------------------------------------------
def test_torchscript_lists_tensors_code_and_globals_and_exits_4(refused_files):
    path = refused_files["scripted"]
    report, code = audit_json("inspect", "--tensors", path)
    (entry,) = report["files"]
    assert (entry["format"], entry["verdict"], code) == ("torchscript", "UNSAFE", 4)
    expected = trusted("state", path)
    assert [t["name"] for t in entry["tensors"]] == list(expected)
    assert any(f.startswith("code/__torch__/refused_models") for f in entry["code_files"])
    assert _global(entry, "torch.jit.load")["kind"] == "torchscript"
    assert _global(entry, "__torch__.refused_models.Scripted")["kind"] == "torchscript"
    assert entry["torch_weights_only"]["loads"] is False


def test_a_torchscript_convnextpose_is_fingerprinted_from_its_module_tree(refused_files):
    path = refused_files["scripted_pose"]
    report, code = audit_json("tensors", path)
    (entry,) = report["files"]
    assert (entry["format"], entry["inferred"], code) == ("torchscript", "XS", 4)
    expected = trusted("state", path)
    assert [[t["name"], t["dtype"], t["shape"]] for t in entry["tensors"]] == [[k, *v[:2]] for k, v in expected.items()]


def test_torch_jit_load_cannot_be_allowed(refused_files):
    result = run_cli("inspect", "--allow", "torch.jit.load", refused_files["scripted"])
    assert result.exit_code == 2 and "torch.jit.load cannot be allowed" in result.stderr


# -- policy ---------------------------------------------------------------------------------------------------------
def test_an_allowed_global_is_not_unsafe_and_the_report_records_the_policy(refused_files, tmp_path):
    policy = tmp_path / "policy.toml"
    policy.write_text('[allow]\n"argparse.Namespace" = "our trainer pickles its options"\n')
    report, code = audit_json("inspect", "--policy", policy, refused_files["lightning_namespace"])
    (entry,) = report["files"]
    assert (entry["verdict"], entry["inferred"], code) == ("UNLABELED", "S", 0)
    assert _global(entry, "argparse.Namespace")["allowed"] is True
    assert report["policy"] == {"sources": [str(policy)], "allow": [
        {"name": "argparse.Namespace", "reason": "our trainer pickles its options", "source": str(policy)}]}
    # torch's own answer does not change with our policy
    assert entry["torch_weights_only"]["loads"] is False


def test_allow_on_the_command_line(refused_files):
    report, code = audit_json("scan", "--allow", "argparse.Namespace", refused_files["lightning_namespace"])
    assert code == 0 and report["policy"]["sources"] == ["--allow"]


@pytest.mark.parametrize("text, message", [
    ("[allow\n", "not valid TOML"),
    ('[allow]\n"argparse.Namespace" = ""\n', "give the reason"),
    ('[allow]\n"omegaconf.*" = "all of it"\n', "patterns are not accepted"),
    ('[allow]\n"builtins.eval" = "why not"\n', "cannot be allowed: it is callable"),
    ('[deny]\n"x.y" = "z"\n', "unknown table or key 'deny'"),
])
def test_a_bad_policy_file_is_a_usage_error(refused_files, tmp_path, text, message):
    policy = tmp_path / "policy.toml"
    policy.write_text(text)
    for command in ("inspect", "scan", "tensors", "diff"):
        args = [refused_files["protocol4"]] * (2 if command == "diff" else 1)
        result = run_cli(command, "--policy", policy, *args)
        assert result.exit_code == 2 and message in result.stderr, (command, result.stderr)


# -- rescue ----------------------------------------------------------------------------------------------------------
def test_convert_refuses_an_unsafe_source_and_names_the_flag(refused_files, tmp_path):
    out = tmp_path / "out.safetensors"
    result = run_cli("convert", refused_files["whole_XS"], out)
    assert result.exit_code == 4 and "--allow-unsafe-source" in result.stderr and not out.exists()


@pytest.mark.parametrize("name", ["whole_L", "lightning_omegaconf", "scripted"])
def test_convert_rescues_the_tensors_torch_gives(refused_files, tmp_path, name):
    from safetensors import safe_open
    from safetensors.torch import load_file

    path = refused_files[name]
    out = tmp_path / "rescued.safetensors"
    result = run_cli("convert", "--allow-unsafe-source", "--keep-prefix", path, out)
    assert result.exit_code == 0, result.stderr
    import hashlib

    import torch

    got = load_file(str(out))
    expected = trusted("state", path)
    assert list(got) == list(expected)
    for key, (dtype, shape, digest) in expected.items():
        t = got[key]
        raw = t.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b""
        assert [str(t.dtype).removeprefix("torch."), list(t.shape), hashlib.sha256(raw).hexdigest()] == \
            [dtype, shape, digest], key
    with safe_open(str(out), "pt") as fh:
        dropped = json.loads(fh.metadata()["cnxp_audit.dropped_globals"])
    report, _ = audit_json("inspect", path)
    assert dropped == sorted(g["name"] for g in report["files"][0]["globals"] if not g["allowed"])


# -- what add_safe_globals would need ----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["whole_XS", "lightning_namespace", "lightning_omegaconf", "numpy_values"])
def test_the_predicted_needs_are_what_torch_needs(refused_files, name):
    path = refused_files[name]
    report, _ = audit_json("inspect", path)
    prediction = report["files"][0]["torch_weights_only"]
    assert prediction["loads"] is False and prediction["needs"] and not prediction["blocked"]
    assert trusted("safe_globals", path, *prediction["needs"])["ok"] is True
    # and none of them is superfluous: without the last one needed, torch refuses again
    assert trusted("safe_globals", path, *prediction["needs"][:-1])["ok"] is False


def test_a_legacy_whole_module_is_blocked_whatever_is_allowed(refused_files):
    path = refused_files["legacy_whole"]
    report, code = audit_json("inspect", path)
    (entry,) = report["files"]
    assert (entry["verdict"], entry["inferred"], code) == ("UNSAFE", "XS", 4)
    prediction = entry["torch_weights_only"]
    assert prediction["loads"] is False and "persistent id" in prediction["blocked"][0]
    assert trusted("safe_globals", path, *prediction["needs"])["ok"] is False  # allowing the names is not enough


def test_unsupported_opcodes_block_whatever_is_allowed(refused_files):
    report, _ = audit_json("inspect", refused_files["protocol4"])
    prediction = report["files"][0]["torch_weights_only"]
    assert prediction["loads"] is False and not prediction["needs"]
    assert "FRAME" in prediction["blocked"][0]


def test_verbose_says_it_in_words(refused_files):
    result = run_cli("inspect", "-v", "--format", "text", refused_files["lightning_omegaconf"])
    assert "torch.load(weights_only=True): refuses; would need add_safe_globals([omegaconf." in result.stdout
    assert "REFUSED  class      omegaconf.dictconfig.DictConfig" in result.stdout


# -- refused files of the real-wheel corpus ------------------------------------------------------------------------------
def _inert_tensors(path: Path) -> list:
    """Our inert reading's tensors as the oracle lists torch's: ``(path, (dtype, shape, stride, offset, sha256))``.

    (differential.ours reads through the default, refusing open; this is the read_unsafe reading.)"""
    import hashlib

    import numpy as np

    from convnextpose_audit import open_checkpoint

    with open_checkpoint(path, read_unsafe=True) as ckpt:
        return [(p, (t.dtype, tuple(t.shape), tuple(t.stride), t.storage_offset,
                     hashlib.sha256(np.ascontiguousarray(t.numpy()).tobytes() if t.numel else b"").hexdigest()))
                for p, t in ckpt.tensors()]


def test_refused_wheel_files_list_tensors_globals_prediction_and_exit_code(torch_oracle):
    wheel = pytest.importorskip("test_wheel_corpus", reason="the real-wheel corpus test (tests/test_wheel_corpus.py)")
    if not wheel.ENTRIES:
        wheel._absent(f"no wheel corpus at {wheel.CORPUS}")
    checked = []
    for entry in wheel.ENTRIES:
        path = wheel.CORPUS / entry["file"]
        if not path.is_file():
            wheel._absent(f"{path} is missing")
        if not torch_oracle.load(path, "B")["ok"]:  # the files torch's weights_only loader refuses
            _check_refused_wheel_file(path, torch_oracle)
            checked.append(entry["file"])
    assert len(checked) >= 3, checked


def _check_refused_wheel_file(path: Path, torch_oracle) -> None:
    from differential.judge import compare

    report, code = audit_json("inspect", "--tensors", path)
    (entry,) = report["files"]
    assert entry["torch_weights_only"]["loads"] is False, path
    assert entry["tensors"] and code == entry["exit_code"], path
    refused = [g for g in entry["globals"] if not g["allowed"]]
    if entry["format"] == "torchscript":
        # torch.load would run torch.jit.load (the archive's code): never asked here. UNSAFE, its code listed.
        assert code == 4 and entry["code_files"] and any(g["kind"] == "torchscript" for g in refused), path
        return
    # Its tensors are torch's own, trusting the file in the sandboxed oracle (weights_only=False).
    trusting = torch_oracle.load(path, "C")
    assert trusting["ok"], trusting["error"]
    assert compare(trusting["tensors"], _inert_tensors(path)) is None, path
    if refused:  # names outside our allowlist (omegaconf...): UNSAFE, and torch needs each of them
        assert code == 4 and {g["name"] for g in refused} <= set(entry["torch_weights_only"]["needs"]), path
    else:  # data only our allowlist reads (numpy arrays): torch still needs them allowed
        assert code in (0, 1) and entry["torch_weights_only"]["needs"], path


def test_sarif_reports_each_refused_global_under_the_rule_of_its_kind(refused_files):
    result = run_cli("inspect", "--format", "sarif", refused_files["scripted"], refused_files["lightning_namespace"])
    results = json.loads(result.stdout)["runs"][0]["results"]
    by_global = {r["properties"]["global"]: r for r in results if "global" in r["properties"]}
    assert by_global["argparse.Namespace"]["ruleId"] == "CNXP101"
    assert by_global["argparse.Namespace"]["properties"]["kind"] == "class"
    assert by_global["torch.jit.load"]["ruleId"] == "CNXP102"
    assert by_global["__torch__.refused_models.Scripted"]["ruleId"] == "CNXP102"
    fingerprints = [r["partialFingerprints"]["cnxpFinding/v1"] for r in results]
    assert len(fingerprints) == len(set(fingerprints))
    assert result.exit_code == 4


def test_every_unsafe_hostile_file_names_its_refused_globals_even_when_unreadable(tmp_path):
    # No torch needed: the payloads are built by hand. A read that fails still lists what it refused.
    from convnextpose_audit.audit import AuditOptions, Verdict, audit_path
    from convnextpose_audit.variants import load_registry
    from fixtures.hostile import build_corpus

    registry = load_registry()
    cases = build_corpus(tmp_path / "corpus", tmp_path / "SENTINEL")
    unsafe = [(c, r) for c in cases for r in audit_path(str(c.path), registry, options=AuditOptions())[0]
              if c.verdict == "UNSAFE" and r.verdict is Verdict.UNSAFE]
    assert len(unsafe) >= 50
    for case, result in unsafe:
        refused = [g for g in result.globals if not g.allowed]
        assert refused, case.name
        assert all(g.where and g.count >= len(g.where) for g in refused), case.name
    assert not (tmp_path / "SENTINEL").exists()
