"""Every global classified as data (globals.toml), policies parsed, module trees rebuilt within bounds."""

from __future__ import annotations

import re

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from convnextpose_audit.classify import KINDS, Glob, classify, default_classifier
from convnextpose_audit.errors import LimitExceeded, PolicyError
from convnextpose_audit.module_tree import module_state_dict, script_state_dict
from convnextpose_audit.policy import build_policy
from convnextpose_audit.reader.limits import Limits
from convnextpose_audit.reader.pickle.records import Global, Instance
from convnextpose_audit.reader.safe_globals import ALLOWED
from convnextpose_audit.reader.tensor import StorageRef, TensorRef
from convnextpose_audit.reader.dtypes import DTYPES
from convnextpose_audit.weights_only import rules


# -- kinds ------------------------------------------------------------------------------------------------------
def test_every_allowlisted_global_is_classified_by_the_data_as_data():
    for module, name in ALLOWED:
        kind = classify(f"{module}.{name}")
        assert kind.source != "unknown" and kind.kind in ("tensor", "container", "numpy"), (module, name, kind)


def test_every_global_torch_allows_is_classified_by_the_data():
    for name in rules().allowed:
        assert classify(name).source != "unknown", name


@pytest.mark.parametrize("name", ["posix.system", "os.system", "nt.system", "builtins.eval", "builtins.exec",
                                  "builtins.getattr", "functools.partial", "subprocess.Popen", "subprocess.run",
                                  "importlib.import_module", "runpy._run_code", "pickle.loads", "torch.load"])
def test_the_issues_examples_of_code_running_names_are_callable(name):
    # The issue's definition: posix.system, builtins.eval, getattr, functools.partial, any subprocess or importlib.
    assert classify(name, {"REDUCE"}).kind == "callable"
    assert classify(name, {"NEWOBJ"}).kind == "callable"  # a listed name keeps its kind however it is used


def test_patterns_cover_a_module_and_below_but_a_star_stays_in_one_part():
    assert classify("subprocess.os.system").kind == "callable"
    assert classify("torch.FloatStorage").kind == "tensor"
    assert classify("torch.evil.PwnStorage").source == "unknown"  # `torch.*Storage` does not reach into submodules
    assert classify("__torch__.my.Net").kind == "torchscript"
    assert classify("omegaconf.dictconfig.DictConfig").kind == "class"


_PART = st.text(alphabet="ab_*", max_size=6)
_NAME_PART = st.text(alphabet="ab_", max_size=4)


def _documented(pattern: str, name: str) -> bool:
    # globals.toml's header, written as a regular expression: `*` is `[^.]*`; a final `.*` is "a dot, then anything".
    below = pattern.endswith(".*")
    body = re.escape(pattern[:-2] if below else pattern).replace(r"\*", r"[^.]*")
    return re.fullmatch(body + (r"\..+" if below else ""), name) is not None


@given(st.lists(_PART, min_size=1, max_size=3), st.booleans(), st.lists(_NAME_PART, min_size=1, max_size=5))
@example(["a*a*a"], False, ["aa"])  # pieces may not overlap
@example(["a*b"], False, ["ab", "b"])  # a star does not cross a dot
@example(["a"], True, ["a", ""])  # below a module means at least one character
@example(["a"], True, ["a", "", ""])
@settings(max_examples=3000, deadline=None)
def test_patterns_match_exactly_the_names_globals_toml_describes(parts, below, name_parts):
    pattern = ".".join(parts) + (".*" if below else "")
    name = ".".join(name_parts)
    assert Glob(pattern).matches(name) == _documented(pattern, name), (pattern, name)


def test_every_packaged_pattern_matches_the_names_globals_toml_describes():
    names = ["torch._utils._rebuild_tensor_v2", "torch.FloatStorage", "torch.cuda.HalfStorage", "torch.a.bStorage",
             "numpy.core.multiarray._reconstruct", "numpy.", "numpy", "os.system", "builtins.eval", "torch.Tensor",
             "torch.cuda.sparse.FloatTensor", "__torch__.a.b", "numpy.dtypes.Float64DType", "io.", "io.a.b.c"]
    for glob, _ in default_classifier().patterns:
        for name in names:
            assert glob.matches(name) == _documented(glob.pattern, name), (glob.pattern, name)


def test_unknown_names_are_a_class_only_when_only_instantiated_with_newobj():
    assert classify("mypkg.models.Net", {"NEWOBJ"}).kind == "class"
    assert classify("mypkg.models.Net", {"NEWOBJ", "REDUCE"}).kind == "callable"
    assert classify("mypkg.helpers.make", {"REDUCE"}).kind == "callable"
    assert classify("mypkg.helpers.thing").kind == "callable"  # referenced, never instantiated


def test_every_entry_has_a_kind_and_a_reason():
    c = default_classifier()
    for kind in [*c.exact.values(), *(k for _, k in c.patterns)]:
        assert kind.kind in KINDS and len(kind.reason) > 10


# -- policy -----------------------------------------------------------------------------------------------------
def test_a_policy_adds_exact_names_with_their_reason_and_source(tmp_path):
    path = tmp_path / "p.toml"
    path.write_text('[allow]\n"argparse.Namespace" = "our options"\n')
    policy = build_policy(["omegaconf.dictconfig.DictConfig"], str(path))
    assert policy.names == {"argparse.Namespace", "omegaconf.dictconfig.DictConfig"}
    assert policy.to_dict()["allow"][0] == {"name": "argparse.Namespace", "reason": "our options",
                                            "source": str(path)}


@pytest.mark.parametrize("name", ["os.system", "builtins.eval", "torch.jit.load", "__torch__.x.Y", "argparse.*",
                                  "Namespace", "a..b", "a.b\n"])
def test_a_policy_refuses_code_running_names_patterns_and_non_names(name):
    with pytest.raises(PolicyError):
        build_policy([name])


def test_a_missing_policy_file_is_a_usage_error(tmp_path):
    with pytest.raises(PolicyError, match="no such policy file"):
        build_policy([], str(tmp_path / "absent.toml"))


# -- module trees -------------------------------------------------------------------------------------------------
def _tensor(n: int) -> TensorRef:
    dtype = DTYPES["float32"]
    return TensorRef(StorageRef(str(n), dtype, 4 * n, "cpu"), dtype, 0, (n,), (1,))


def _module(cls: str, params=None, buffers=None, children=None, non_persistent=()) -> Instance:
    rec = Instance(Global("pkg", cls), "NEWOBJ", ())
    rec.state = {"_parameters": dict(params or {}), "_buffers": dict(buffers or {}),
                 "_non_persistent_buffers_set": set(non_persistent), "_modules": dict(children or {})}
    return rec


def test_a_module_tree_is_named_as_state_dict_names_it():
    # Module.state_dict: own parameters, own persistent buffers, then each child under "name."; None skipped.
    bn = _module("BN", {"weight": _tensor(2)}, {"running_mean": _tensor(2), "scratch": _tensor(3)},
                 non_persistent={"scratch"})
    root = _module("Net", {"scale": _tensor(1), "bias": None}, {}, {"bn": bn, "missing": None})
    assert list(module_state_dict(root)) == ["scale", "bn.weight", "bn.running_mean"]


def test_a_shared_submodule_is_named_under_each_parent_and_a_cycle_ends():
    shared = _module("Conv", {"weight": _tensor(2)})
    root = _module("Net", children={"a": shared, "b": shared})
    root.state["_modules"]["self"] = root  # a cycle: torch would recurse forever
    assert list(module_state_dict(root)) == ["a.weight", "b.weight"]


def test_a_deep_module_tree_stops_at_the_nesting_limit():
    root = node = _module("Net")
    for _ in range(50):
        child = _module("Net")
        node.state["_modules"]["c"] = child
        node = child
    node.state["_parameters"]["w"] = _tensor(1)
    assert list(module_state_dict(root, Limits(max_nesting=60))) == ["c." * 50 + "w"]
    with pytest.raises(LimitExceeded):
        module_state_dict(root, Limits(max_nesting=20))


def test_a_torchscript_tree_is_named_by_attribute_path():
    inner = Instance(Global("__torch__.torch.nn.modules.conv", "Conv2d"), "NEWOBJ", ())
    inner.state = {"weight": _tensor(2), "training": True}
    root = Instance(Global("__torch__.net", "Net"), "NEWOBJ", ())
    root.state = {"buf": _tensor(1), "training": True, "conv": inner, "plain": Instance(Global("x", "Y"), "REDUCE", ())}
    assert list(script_state_dict(root)) == ["buf", "conv.weight"]
