"""Fingerprints of real torch-built ConvNeXtPose checkpoints, the registry, and matching."""

from __future__ import annotations

import pytest

from conftest import DRIVE_NAMES, REPORTED_TOTALS
from convnextpose_audit import open_checkpoint
from convnextpose_audit.audit import Labels, Verdict, audit_path
from convnextpose_audit.fingerprint import fingerprint, split_final
from convnextpose_audit.variants import FEATURES, RegistryError, load_registry, match, parse_registry

REGISTRY = load_registry()


@pytest.mark.parametrize("label", ["XS", "S", "M", "L"])
def test_drive_files_match(drive_dir, label):
    results, skipped = audit_path(str(drive_dir / DRIVE_NAMES[label]), REGISTRY)
    (r,) = results
    assert not skipped
    assert (r.declared, r.inferred, r.verdict) == (label, label, Verdict.MATCH)
    assert r.exit_code == 0
    fp = r.fingerprint
    assert fp.state_dict_key == "network" and fp.prefix == "module."
    assert fp.epoch == 83 and fp.has_optimizer and fp.optimizer == "adam"
    if label in REPORTED_TOTALS:
        assert fp.total == REPORTED_TOTALS[label]
    assert r.evidence[1].startswith("stem downsample_layers.0.0.weight")


def test_first_layer_alone_does_not_decide(drive_dir):
    """The public report's clue: [48, 3, 4, 4] in S, M and L alike. The tool must explain why that is fine."""
    stems = {}
    for label in ("S", "M", "L"):
        with open_checkpoint(drive_dir / DRIVE_NAMES[label]) as ckpt:
            stems[label] = ckpt.obj["network"]["module.backbone.downsample_layers.0.0.weight"].shape
    assert set(stems.values()) == {(48, 3, 4, 4)}
    (r,), _ = audit_path(str(drive_dir / DRIVE_NAMES["L"]), REGISTRY)
    text = "\n".join(r.evidence)
    assert "stem width 48 → S, M or L" in text
    assert "head widths 512,512,512 → L" in text
    assert "1152 = 18 × 64 (assumed 18 joints)" in text
    # The stem is the first clue, the full key-and-shape comparison the last word.
    assert r.evidence[1].startswith("stem downsample_layers.0.0.weight")
    assert text.index("stem width 48") < text.index("all 260 keys and shapes agree with L")


def test_mislabeled_file(tmp_path, torch):
    import torch_models as tm

    path = tm.save_like_drive(tm.build("S"), tmp_path, "ConvNeXtPose_L.tar", optimizer=False)
    (r,), _ = audit_path(str(path), REGISTRY)
    assert (r.declared, r.inferred, r.verdict, int(r.exit_code)) == ("L", "S", Verdict.MISMATCH, 1)
    assert "head widths 256,256,256 vs 512,512,512" in r.evidence[-1]
    assert {d.feature for d in r.differences} == {"head_widths", "depth_bins", "elements"}
    (elements,) = [d for d in r.differences if d.feature == "elements"]
    assert (elements.found, elements.expected) == (REPORTED_TOTALS["S"], REPORTED_TOTALS["L"])


@pytest.mark.parametrize("base, change, feature, found", [
    ("L", dict(bins=32), "depth_bins", 32),
    ("L", dict(joints=17), "joints", 17),
    ("S", dict(block="LN"), "block_norm", "layernorm"),
    ("M", dict(depths=(3, 3, 10, 3)), "depths", (3, 3, 10, 3)),
])
def test_one_feature_changed_names_nearest(tmp_path, torch, base, change, feature, found):
    """A near miss: MISMATCH under its label, UNKNOWN without one; the nearest variant and how it differs."""
    import torch_models as tm

    if change.get("block") == "LN":
        change["block"] = tm.LNBlock
    model = tm.build(base, **change)
    path = tm.save_like_drive(model, tmp_path, f"ConvNeXtPose_{base}.pth", optimizer=False)
    (r,), _ = audit_path(str(path), REGISTRY)
    assert r.verdict is Verdict.MISMATCH and r.inferred is None
    assert r.nearest == base
    assert [(d.feature, d.found) for d in r.differences if d.feature in FEATURES] == [(feature, found)]
    total = sum(t.numel() for t in model.state_dict().values())
    assert [(d.found, d.expected) for d in r.differences if d.feature == "elements"] == \
        [(total, REGISTRY.get(base).counts["total"])]
    assert any(d.feature == "key" for d in r.differences)  # the first differing keys are named
    assert int(r.exit_code) == 1
    (unlabelled,), _ = audit_path(str(path.rename(tmp_path / "snapshot_83.pth")), REGISTRY)
    assert (unlabelled.verdict, unlabelled.nearest, int(unlabelled.exit_code)) == (Verdict.UNKNOWN, base, 0)


def test_not_convnextpose_is_unknown(tmp_path, torch):
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    path = tmp_path / "resnet_pose.pth"
    torch.save({"state_dict": model.state_dict()}, path)
    (r,), _ = audit_path(str(path), REGISTRY)
    assert r.verdict is Verdict.UNKNOWN and r.declared is None and r.nearest is None
    assert int(r.exit_code) == 0
    assert "4 tensors" in " ".join(r.evidence)


@pytest.mark.parametrize("label", ["XS", "S", "M", "L"])
def test_registry_agrees_with_torch_model(torch, label):
    """Every number in variants.toml equals what the torch model of that variant has."""
    import torch_models as tm

    model = tm.build(label)
    variant = REGISTRY.get(label)
    from convnextpose_audit.reader.dtypes import DTYPES
    from convnextpose_audit.reader.tensor import StorageRef, TensorRef

    refs = {}
    for k, t in model.state_dict().items():
        s = StorageRef(k, DTYPES["float32"], t.numel() * 4, "cpu")
        refs[k] = TensorRef(s, DTYPES["float32"], 0, tuple(t.shape), tuple(t.stride()) if t.dim() else ())
    fp = fingerprint(refs, REGISTRY.joints_hints())
    for feature, expected in variant.features.items():
        assert getattr(fp, feature) == expected, feature
    assert fp.params == variant.counts["params"] == sum(p.numel() for p in model.parameters())
    assert fp.total == variant.counts["total"] == sum(t.numel() for t in model.state_dict().values())
    assert fp.buffers == variant.counts["buffers"]


def test_split_final():
    assert split_final(1152) == (18, 64)
    assert split_final(576) == (18, 32)
    assert split_final(1088) == (17, 64)
    assert split_final(7) == (None, None)


def test_variants_file_adds_a_family(tmp_path):
    extra = tmp_path / "posenet.toml"
    extra.write_text('[[variant]]\nfamily = "PoseNet"\nlabel = "R50"\nstem_width = 64\ndepth_bins = 64\n')
    reg = load_registry(str(extra))
    assert reg.get("R50").family == "PoseNet" and len(reg.variants) == 5
    extra.write_text('[[variant]]\nfamily = "ConvNeXtPose"\nlabel = "L"\nstem_width = 99\n')
    reg = load_registry(str(extra))
    assert len(reg.variants) == 4 and reg.get("L").features == {"stem_width": 99}


@pytest.mark.parametrize("text, message", [
    ("not toml [", "not valid TOML"),
    ("schema = 1", r"no \[\[variant\]\]"),
    ('[[variant]]\nfamily = "X"\nlabel = "A"\ndims = "wide"\n', "wrong type"),
    ('[[variant]]\nfamily = "X"\nlabel = "A"\n', "specifies no feature"),
])
def test_bad_registry(text, message):
    with pytest.raises(RegistryError, match=message):
        parse_registry(text, "extra.toml")


def test_unknown_when_nothing_found():
    fp = fingerprint({"epoch": 3})
    m = match(fp, REGISTRY)
    assert m.variant is None and m.nearest is None
    assert "no state dict found" in m.evidence[0]


@pytest.mark.parametrize("name, label", [
    ("ConvNeXtPose_L (1).tar", "L"), ("ConvNeXtPose_M (1).tar", "M"), ("ConvNeXtPose_XS.tar", "XS"),
    ("ConvNeXtPose_S.tar", "S"), ("convnextpose-xs.pth", "XS"), ("CONVNEXTPOSE L.pt", "L"),
    ("snapshot_83.pth.tar", None), ("ConvNeXtPose_Large.tar", None), ("outer.zip!drive/ConvNeXtPose_M.tar", "M"),
    ("ConvNeXtPoseS.pth", "S"), ("my_convnextpose_xs_finetuned.pth", "XS"),
])
def test_labels_from_file_names(name, label):
    assert Labels().declare(name, REGISTRY)[0] == label


def test_manifest_labels(tmp_path):
    from convnextpose_audit.labels import load_manifest

    csv_path = tmp_path / "labels.csv"
    csv_path.write_text("file,label\nsnapshot_83.pth.tar,l\n")
    labels = Labels(manifest=load_manifest(str(csv_path), REGISTRY))
    assert labels.declare("/some/where/snapshot_83.pth.tar", REGISTRY) == ("L", "manifest")
    json_path = tmp_path / "labels.json"
    json_path.write_text('{"a.pth": "XS"}')
    assert load_manifest(str(json_path), REGISTRY) == {"a.pth": "XS"}
