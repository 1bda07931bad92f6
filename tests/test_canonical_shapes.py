"""The canonical key -> shape data stays what model.py builds, and agrees with torch's own counts."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from convnextpose_audit.fingerprint import WRAPPER_PREFIXES
from convnextpose_audit.variants import load_registry

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "src" / "convnextpose_audit" / "canonical_shapes.json"


def _generator():
    spec = importlib.util.spec_from_file_location("gen_canonical_shapes", ROOT / "scripts" / "gen_canonical_shapes.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_regenerating_gives_the_committed_file(torch):
    assert _generator().generate() == DATA.read_text(encoding="utf-8"), \
        "canonical_shapes.json is stale: run python scripts/gen_canonical_shapes.py"


@pytest.mark.parametrize("label", ["XS", "S", "M", "L"])
def test_canonical_shapes_are_the_independent_torch_models(torch, label):
    """torch_models.py was written from the paper's layout, not from model.py: same keys, same shapes."""
    import torch_models as tm

    registry = load_registry()
    variant = registry.get(label)
    expected = {k: tuple(t.shape) for k, t in tm.build(label).state_dict().items()}
    assert registry.canonical(variant) == expected
    entry = json.loads(DATA.read_text())["variants"][variant.name]
    assert entry["elements"] == sum(t.numel() for t in tm.build(label).state_dict().values()) \
        == variant.counts["total"]
    assert entry["params"] == sum(p.numel() for p in tm.build(label).parameters()) == variant.counts["params"]


def test_documented_wrappers_are_the_ones_stripped():
    registry = load_registry()
    assert registry.wrapper_prefixes == WRAPPER_PREFIXES
    assert all(reason for reason in registry.matching.wrapper_prefixes.values())
    assert registry.matching.optional_buffers.keys() == {"num_batches_tracked"}
    data = json.loads(DATA.read_text())
    tolerated = data["tolerated (copied from variants.toml [matching])"]
    assert tolerated["optional_buffers"] == registry.matching.optional_buffers
