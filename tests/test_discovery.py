"""Finding the state dicts like real loaders do, on hand-built objects (no torch needed)."""

from __future__ import annotations

import time

from convnextpose_audit.fingerprint import ANCHOR, MAX_BACKBONES, find_state_dicts, strip_prefix
from convnextpose_audit.reader.dtypes import DTYPES
from convnextpose_audit.reader.tensor import StorageRef, TensorRef


def t(*shape: int) -> TensorRef:
    n = 1
    for d in shape:
        n *= d
    return TensorRef(StorageRef("0", DTYPES["float32"], 4 * n, "cpu"), DTYPES["float32"], 0, shape,
                     tuple(1 for _ in shape))


MODEL = {ANCHOR: t(48, 3, 4, 4), "backbone.stages.0.0.dwconv.weight": t(48, 1, 7, 7), "head.final_layer.bias": t(1152)}


def prefixed(prefix: str) -> dict:
    return {prefix + k: v for k, v in MODEL.items()}


def test_training_payload_and_top_level_keys_in_order():
    obj = {"epoch": 3, "ema": prefixed("module."), "model": prefixed("module."), "optimizer": {"state": {}}}
    found = find_state_dicts(obj)
    assert [(s.name, s.key, s.prefix) for s in found] == [("model", "model", "module."), ("ema", "ema", "module.")]
    assert set(found[0].tensors) == set(MODEL)


def test_averaged_model_keys_outside_the_prefix_belong_to_the_wrapper():
    (sd,) = find_state_dicts({"n_averaged": t(), **prefixed("module.")})
    assert (sd.name, sd.prefix, list(sd.outside), sd.documented) == ("top level", "module.", ["n_averaged"], True)
    assert strip_prefix({"n_averaged": t(), **prefixed("module.")}) == ("module.", MODEL)


def test_nested_and_compiled_prefixes_are_documented():
    (sd,) = find_state_dicts({"state_dict": prefixed("module.module._orig_mod.")})
    assert sd.prefix == "module.module._orig_mod." and sd.documented
    (lit,) = find_state_dicts({"state_dict": {**prefixed("model."), "loss.weight": t(18)}})
    assert lit.prefix == "model." and list(lit.outside) == ["loss.weight"]


def test_an_undocumented_prefix_is_read_but_not_stripped_for_loaders():
    (sd,) = find_state_dicts({"state_dict": prefixed("net.")})
    assert sd.prefix == "net." and not sd.documented
    assert set(sd.loader_keys) == set(prefixed("net."))
    assert strip_prefix(prefixed("net.")) == ("", prefixed("net."))


def test_two_backbones_in_one_dict_are_two_candidates():
    found = find_state_dicts({"state_dict": {**prefixed("model."), **prefixed("model.ema.")}})
    assert [(s.name, s.prefix) for s in found] == [("state_dict (model.)", "model."),
                                                   ("state_dict (model.ema.)", "model.ema.")]
    assert set(found[0].tensors) == set(MODEL)  # the EMA's keys are not the model's unexpected keys


def test_no_backbone_keeps_the_old_rule():
    (sd,) = find_state_dicts({"state_dict": {"module.fc.weight": t(2, 3), "module.fc.bias": t(2)}})
    assert sd.prefix == "module." and set(sd.tensors) == {"fc.weight", "fc.bias"}


def test_many_backbone_prefixes_stay_linear():
    """A crafted dict with 20,000 backbones: discovery reads MAX_BACKBONES of them, quickly."""
    crafted = {f"p{i}.{ANCHOR}": t(1) for i in range(20_000)}
    start = time.perf_counter()
    found = find_state_dicts(crafted)
    assert len(found) == MAX_BACKBONES
    assert time.perf_counter() - start < 2.0


def test_one_dict_under_many_keys_is_read_once():
    shared = prefixed("module.")
    found = find_state_dicts({key: shared for key in ("network", "state_dict", "model", "ema", "module")})
    assert [s.name for s in found] == ["network"]
