"""Verdicts a CI job can gate on: every case through both inspect and scan, same verdict, same exit code."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import DRIVE_NAMES, REPORTED_TOTALS, run_cli
from fixtures.verdict_cases import CASES, TRUNCATED, build_cases

#: Learnable parameters of each variant: the paper's (Tables 4 and 5) and its 3.53 M for XS, in millions.
PAPER_PARAMS = {"XS": 3.53, "S": 7.44, "M": 7.59, "L": 8.38}


@pytest.fixture(scope="module")
def cases(tmp_path_factory, torch):
    root = tmp_path_factory.mktemp("verdicts")
    torch.manual_seed(3)
    return root, {c.slug: c for c in build_cases(root)}


def run_json(*args):
    result = run_cli(*args, "--format", "json")
    return result, json.loads(result.stdout)


def text_of(entry: dict) -> str:
    return " ".join([entry.get("reason") or "", entry.get("error") or "", *entry["evidence"]])


@pytest.mark.parametrize("slug", [c.slug for c in CASES])
def test_inspect_and_scan_agree_on_each_case(cases, slug):
    root, by_slug = cases
    case = by_slug[slug]
    inspected, report = run_json("inspect", case.path(root))
    scanned, scan_report = run_json("scan", root / slug)  # the folder: discovery decides what is audited
    (entry,) = report["files"]
    (scan_entry,) = scan_report["files"]
    assert (entry["verdict"], inspected.exit_code) == (case.verdict, case.exit_code), text_of(entry)
    assert (scan_entry["verdict"], scanned.exit_code) == (case.verdict, case.exit_code), text_of(scan_entry)
    assert case.needle in text_of(entry)
    assert entry["reason"] == scan_entry["reason"] and entry["exit_code"] == scan_entry["exit_code"]
    assert report["summary"]["exit_code"] == inspected.exit_code
    assert scan_report["summary"]["exit_code"] == scanned.exit_code


def _entry(cases, slug, *extra):
    root, by_slug = cases
    _, report = run_json("inspect", by_slug[slug].path(root), *extra)
    return by_slug[slug], report["files"][0]


def test_kernel3_l_is_not_l(cases):
    """Same widths as L, 3×3 blocks: the full fingerprint decides, the stem stays the first clue."""
    case, e = _entry(cases, "kernel3")
    assert e["verdict"] == "MISMATCH" and e["inferred"] is None and e["nearest"] == "L"
    assert e["evidence"][1].startswith("stem downsample_layers.0.0.weight [48, 3, 4, 4] → stem width 48")
    text = text_of(e)
    assert f"{case.facts['elements']:,} state-dict elements ≠ L's 8,391,354" in text
    assert "backbone.stages.0.0.dwconv.weight [48, 1, 3, 3] vs [48, 1, 7, 7]" in text  # the first differing key
    keys = [d for d in e["differences"] if d["feature"] == "key"]
    assert keys[0] == {"feature": "key", "key": "backbone.stages.0.0.dwconv.weight", "found": [48, 1, 3, 3],
                       "expected": [48, 1, 7, 7]}
    assert {"feature": "elements", "found": case.facts["elements"], "expected": 8_391_354} in e["differences"]


def test_ambiguous_head_says_what_it_assumed(cases):
    """16 joints × 72 bins has L's shapes exactly: it may match L, but never silently."""
    _, e = _entry(cases, "head-16x72")
    assert e["inferred"] == "L"
    assert "assumed 18 joints" in e["reason"]
    assert any("1152 = 18 × 64 (assumed 18 joints), also 16 × 72 or 24 × 48" in line for line in e["evidence"])
    assert e["fingerprint"]["joints_assumed"] is True
    assert [16, 72] in e["fingerprint"]["joints_alternatives"]


def test_wrappers_are_named_and_their_keys_ignored(cases):
    _, ema = _entry(cases, "averaged-model")
    assert ema["fingerprint"]["prefix"] == "module." and ema["fingerprint"]["state_dict_key"] == ""
    assert ema["state_dicts"][0]["ignored"] == ["n_averaged"]
    _, lit = _entry(cases, "lightning")
    assert lit["fingerprint"]["prefix"] == "model." and lit["state_dicts"][0]["ignored"] == ["joint_weights"]
    case, nested = _entry(cases, "compiled-nested")
    assert nested["fingerprint"]["prefix"] == case.facts["prefix"] == "module.module._orig_mod."


def test_each_state_dict_is_audited_and_the_deciding_one_named(cases):
    _, same = _entry(cases, "model-and-ema")
    assert [(s["name"], s["inferred"], s["verdict"]) for s in same["state_dicts"]] == \
        [("model", "L", "MATCH"), ("ema", "L", "MATCH")]
    assert same["decided_by"] == "model"
    _, differ = _entry(cases, "ema-differs")
    assert [(s["name"], s["inferred"], s["verdict"]) for s in differ["state_dicts"]] == \
        [("model", "L", "MATCH"), ("ema", "S", "MISMATCH")]
    assert differ["decided_by"] == "ema" and differ["inferred"] == "S"


def test_optional_buffers_all_or_none(cases):
    case, old = _entry(cases, "old-torch")
    assert old["fingerprint"]["elements"] == 8_391_354 - case.facts["dropped"]
    _, some = _entry(cases, "some-counters-dropped")
    missing = [d["key"] for d in some["differences"] if d["feature"] == "key" and d["found"] is None]
    assert len(missing) == 3 and all(k.endswith("num_batches_tracked") for k in missing)


def test_truncated_zip_names_both_sizes(cases):
    """N is the file's size; M a lower bound from the storages data.pkl lists (torch's own sizes)."""
    case, e = _entry(cases, "truncated")
    m = TRUNCATED.search(e["error"])
    assert m and int(m[1].replace(",", "")) == case.facts["size"] and m[2] == "at least "
    assert case.facts["storage_bytes"] <= int(m[3].replace(",", "")) <= case.facts["full"]


def test_truncated_safetensors_exact_size(cases):
    case, e = _entry(cases, "truncated-safetensors")
    m = TRUNCATED.search(e["error"])
    assert m and m[2] is None
    assert (int(m[1].replace(",", "")), int(m[3].replace(",", ""))) == (case.facts["size"], case.facts["full"])


def test_lfs_pointer_reason_and_reader_text_kept(cases):
    _, e = _entry(cases, "lfs-pointer")
    assert e["reason"] == "Git LFS pointer, not the file (the real file has 100,853,587 bytes): run `git lfs pull`"
    assert any(line.startswith("reader: ") for line in e["evidence"])  # what the reader said stays visible


def test_empty_folder_audits_nothing(tmp_path):
    result, report = run_json("scan", tmp_path)
    assert result.exit_code == report["summary"]["exit_code"] == 5
    assert report["files"] == []
    assert run_cli("scan", "--fail-on", "none", tmp_path).exit_code == 5  # a policy cannot make nothing pass


def test_folder_of_non_checkpoints_audits_nothing(tmp_path):
    (tmp_path / "README.md").write_text("weights are on Drive\n")
    (tmp_path / "cover.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    assert run_cli("scan", tmp_path).exit_code == 5
    assert run_cli("scan", "--fail-on", "skipped", tmp_path).exit_code == 5


def test_fail_on_skipped(tmp_path):
    import shutil

    shutil.copy(Path(__file__).resolve().parent.parent / "examples" / "drive" / "ConvNeXtPose_S.tar", tmp_path)
    (tmp_path / "notes.txt").write_text("not a checkpoint\n")
    assert run_cli("scan", tmp_path).exit_code == 0
    result, report = run_json("scan", "--fail-on", "mismatch,skipped", tmp_path)
    assert result.exit_code == report["summary"]["exit_code"] == 3
    assert [Path(s["path"]).name for s in report["summary"]["skipped"]] == ["notes.txt"]


@pytest.mark.parametrize("label", ["XS", "S", "M", "L"])
def test_drive_files_match_with_exact_totals(drive_dir, label):
    _, report = run_json("inspect", drive_dir / DRIVE_NAMES[label])
    (e,) = report["files"]
    assert (e["verdict"], e["exit_code"], e["decided_by"]) == ("MATCH", 0, "network")
    fp = e["fingerprint"]
    assert fp["elements"] == fp["total"] == REPORTED_TOTALS.get(label, 3_534_140)
    assert round(fp["params"] / 1e6, 2) == PAPER_PARAMS[label]  # "params" means learnable parameters
    assert e["reason"] == f"exact: all {fp['tensor_count']} keys and shapes (assumed 18 joints)"


def test_params_means_learnable_in_the_table(drive_dir):
    from convnextpose_audit.audit import audit_paths
    from convnextpose_audit.render.base import RenderOptions
    from convnextpose_audit.render.formats import get_format
    from convnextpose_audit.variants import load_registry

    report = audit_paths([str(drive_dir / DRIVE_NAMES["L"])], load_registry())
    out = get_format("table").render(report, RenderOptions(width=200))
    assert "params" in out and "8.38 M" in out and "8.39 M" not in out


def test_wrapper_keys_change_neither_digest_nor_diff(tmp_path, torch):
    """An AveragedModel copy of a model has the same weights: same state-dict digest, diff says identical."""
    import torch_models as tm
    from torch.optim.swa_utils import AveragedModel

    model = tm.build("XS")
    torch.save(AveragedModel(model).state_dict(), tmp_path / "ema.pth")
    torch.save({"network": model.state_dict()}, tmp_path / "plain.pth")
    _, report = run_json("inspect", "--hash", tmp_path / "ema.pth", tmp_path / "plain.pth")
    digests = {f["digest"]["state_dict"] for f in report["files"]}
    assert len(digests) == 1
    result = run_cli("diff", "--format", "json", tmp_path / "ema.pth", tmp_path / "plain.pth")
    assert result.exit_code == 0 and json.loads(result.stdout)["conclusion"] == "identical weights"
