"""verify, diff, digests and convert: the things a user does after the audit."""

from __future__ import annotations

import collections
import json
import shutil
import sys
import warnings

import pytest

from conftest import DRIVE_NAMES, run_cli
from convnextpose_audit import check, load_model, open_checkpoint
from convnextpose_audit.digest import state_dict_digest
from convnextpose_audit.errors import VariantMismatchError
from convnextpose_audit.fingerprint import find_state_dict


@pytest.mark.parametrize("label", ["XS", "S", "M", "L"])
def test_verify_each_variant(drive_dir, label):
    result = run_cli("verify", "--format", "json", drive_dir / DRIVE_NAMES[label])
    out = json.loads(result.stdout)
    assert result.exit_code == 0, out
    assert out["loaded"] and out["variant"] == label and out["output_shape"] == [1, 18, 3]
    assert out["forward_seconds"] > 0


@pytest.fixture(scope="module")
def mislabeled(tmp_path_factory, torch):
    import torch_models as tm

    return tm.save_like_drive(tm.build("S"), tmp_path_factory.mktemp("mis"), "ConvNeXtPose_L.tar", optimizer=False)


def test_verify_wrong_variant_lists_keys_in_torchs_words(mislabeled):
    result = run_cli("verify", "--variant", "L", mislabeled)
    assert result.exit_code == 1
    assert "size mismatch for head.final_layer.weight: copying a param with shape torch.Size([576, 256, 1, 1])" \
        in result.stdout


def test_verify_without_torch(monkeypatch, mislabeled):
    monkeypatch.setitem(sys.modules, "torch", None)
    result = run_cli("verify", mislabeled)
    assert result.exit_code == 2 and "pip install torch==2.13.0" in result.stderr


def test_check_and_load_model(drive_dir, mislabeled, torch):
    assert check(drive_dir / DRIVE_NAMES["M"], expect="M").inferred == "M"
    with pytest.raises(VariantMismatchError, match=r"expected ConvNeXtPose-L, found S: head widths 256,256,256 vs "
                                                    r"512,512,512; depth bins 32 vs 64"):
        check(mislabeled, expect="L")
    model = load_model(drive_dir / DRIVE_NAMES["XS"])
    assert not model.training
    reference = torch.load(drive_dir / DRIVE_NAMES["XS"], weights_only=True)["network"]
    loaded = model.state_dict()
    assert all(torch.equal(loaded[k[len("module."):]], v) for k, v in reference.items())
    with pytest.raises(VariantMismatchError, match="size mismatch"):
        load_model(mislabeled, variant="L")


def test_diff_identical_copies(drive_dir, tmp_path):
    copy = tmp_path / "copy.tar"
    shutil.copy(drive_dir / DRIVE_NAMES["S"], copy)
    result = run_cli("diff", "--format", "json", drive_dir / DRIVE_NAMES["S"], copy)
    out = json.loads(result.stdout)
    assert result.exit_code == 0 and out["conclusion"] == "identical weights"
    assert all(t["identical"] for t in out["tensors"])


def test_diff_reinitialised(drive_dir, tmp_path, torch):
    import torch_models as tm

    torch.manual_seed(123)
    other = tm.save_like_drive(tm.build("S"), tmp_path, "again.tar", optimizer=False)
    result = run_cli("diff", "--format", "json", drive_dir / DRIVE_NAMES["S"], other)
    out = json.loads(result.stdout)
    assert result.exit_code == 1
    assert out["conclusion"].startswith("same architecture, different weights")
    weights = [t for t in out["tensors"] if t["name"] == "head.final_layer.weight"][0]
    assert not weights["identical"] and weights["max_abs"] > 0 and weights["max_rel"] > 0


def test_diff_different_architecture(drive_dir):
    result = run_cli("diff", drive_dir / DRIVE_NAMES["S"], drive_dir / DRIVE_NAMES["L"])
    assert result.exit_code == 1
    assert "different architecture (head widths 256,256,256 vs 512,512,512" in result.stdout


def _digest(path) -> str:
    with open_checkpoint(path) as ckpt:
        return state_dict_digest(find_state_dict(ckpt.obj)[1])["state_dict"]


def test_digest_stable_across_order_prefix_and_container(drive_dir, tmp_path, torch):
    src = drive_dir / DRIVE_NAMES["XS"]
    sd = torch.load(src, weights_only=True)["network"]
    reordered = collections.OrderedDict((k[len("module."):], sd[k]) for k in reversed(list(sd)))
    torch.save({"state_dict": reordered}, tmp_path / "reordered.pth")
    torch.save({"network": sd}, tmp_path / "legacy.pth", _use_new_zipfile_serialization=False)
    assert run_cli("convert", src, tmp_path / "xs.safetensors").exit_code == 0
    digests = {_digest(p) for p in (src, tmp_path / "reordered.pth", tmp_path / "legacy.pth",
                                    tmp_path / "xs.safetensors")}
    assert len(digests) == 1
    sd2 = collections.OrderedDict(sd)
    k = next(iter(sd2))
    sd2[k] = sd2[k].clone()
    sd2[k].view(-1)[0] += 1
    torch.save({"network": sd2}, tmp_path / "changed.pth")
    assert _digest(tmp_path / "changed.pth") not in digests


def test_scan_hash_flags_duplicates(drive_dir, tmp_path):
    shutil.copy(drive_dir / DRIVE_NAMES["XS"], tmp_path / "renamed_model.pth")
    report = json.loads(run_cli("scan", "--hash", "--format", "json", tmp_path,
                                drive_dir / DRIVE_NAMES["XS"]).stdout)
    assert len(report["summary"]["duplicates"]) == 1
    entry = report["files"][0]["digest"]
    assert set(entry) == {"algorithm", "state_dict", "tensors"} and len(entry["tensors"]) == 194


@pytest.mark.parametrize("suffix", [".safetensors", ".pth"])
def test_convert_round_trip(drive_dir, tmp_path, torch, suffix):
    src = drive_dir / DRIVE_NAMES["M"]
    out = tmp_path / f"m{suffix}"
    result = run_cli("convert", src, out)
    assert result.exit_code == 0, result.stderr
    original = torch.load(src, weights_only=True)["network"]
    if suffix == ".pth":
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            loaded = torch.load(out, weights_only=True)
    else:
        from safetensors import safe_open
        from safetensors.torch import load_file

        loaded = load_file(str(out))
        with safe_open(str(out), "pt") as fh:
            meta = fh.metadata()
        assert meta["cnxp_audit.variant"] == "M"
        assert json.loads(meta["cnxp_audit.fingerprint"])["head_widths"] == [256, 256, 256]
        assert meta["cnxp_audit.source_digest"].startswith("sha256:")
    assert list(loaded) == [k[len("module."):] for k in original]
    for k, v in original.items():
        assert torch.equal(loaded[k[len("module."):]], v), k
    assert run_cli("convert", src, out).exit_code == 2  # exists, no --force: a usage error
    assert run_cli("convert", "--force", "--keep-prefix", src, out).exit_code == 0


def test_convert_interrupted_leaves_nothing(drive_dir, tmp_path, monkeypatch):
    from convnextpose_audit import convert

    calls = {"n": 0}
    real = convert.TensorRef.numpy

    def dies_midway(self):
        if list(tmp_path.glob(".cnxp-*")):  # the temp output exists: we are writing tensors now
            calls["n"] += 1
            if calls["n"] > 20:
                raise KeyboardInterrupt
        return real(self)

    monkeypatch.setattr(convert.TensorRef, "numpy", dies_midway)
    out = tmp_path / "half.safetensors"
    result = run_cli("convert", drive_dir / DRIVE_NAMES["L"], out)
    assert result.exit_code != 0
    assert calls["n"] > 20  # it really died while writing
    assert not out.exists() and list(tmp_path.iterdir()) == []


@pytest.mark.security
def test_convert_refuses_unsafe_source(tmp_path):
    from fixtures.payloads import with_payload

    (tmp_path / "evil.pth").write_bytes(with_payload("true", 2))  # {"network": {"w": ...}, "x": os.system("true")}
    result = run_cli("convert", tmp_path / "evil.pth", tmp_path / "clean.safetensors")
    assert result.exit_code == 4 and not (tmp_path / "clean.safetensors").exists()


@pytest.mark.security
def test_hash_of_unreadable_storage_is_unreadable(tmp_path):
    import zipfile

    from fixtures.payloads import zip_checkpoint
    from zip_tools import rezip

    (tmp_path / "clean.pth").write_bytes(zip_checkpoint())
    deflated = rezip(tmp_path / "clean.pth", tmp_path / "deflated.pth")
    data = bytearray(deflated.read_bytes())
    with zipfile.ZipFile(deflated) as z:  # corrupt storage 0's compressed bytes; sizes stay intact
        info = z.getinfo("archive/data/0")
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    data[start:start + info.compress_size] = b"\xff" * info.compress_size
    broken = tmp_path / "broken_storage.pth"
    broken.write_bytes(bytes(data))
    assert run_cli("inspect", broken).exit_code == 0  # the structure alone reads fine
    result = run_cli("inspect", "--hash", "--format", "json", broken)
    entry = json.loads(result.stdout)["files"][0]
    assert result.exit_code == 3 and entry["verdict"] == "UNREADABLE" and "inflate" in entry["error"]
