"""torch's weights_only answer, predicted (issue 14): the data against the installed torch, the predictions
against real ``torch.load(path, weights_only=True, map_location="cpu")`` on every file of the test corpora.

torch runs in the differential tests' sandboxed oracle (one forked child per load); the real-wheel corpus is
the one ``tests/test_wheel_corpus.py`` reads (``python scripts/wheel_corpus.py``), with its skip rule.
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from convnextpose_audit.audit import AuditOptions, Verdict, audit_path
from convnextpose_audit.reader.pickle.ops import NAMES
from convnextpose_audit.variants import load_registry
from convnextpose_audit.weights_only import default_version, rules, versions

REGISTRY = load_registry()
#: The prediction is checked for the torch the tests install.
TESTED = "2.13"


# -- the data ---------------------------------------------------------------------------------------------------
def test_default_is_the_installed_torch(torch):
    assert default_version() == TESTED
    assert torch.__version__.split("+")[0].rsplit(".", 1)[0] == TESTED


def test_2_13_allowlist_blocklist_and_opcodes_are_the_installed_torchs(torch):
    from torch import _weights_only_unpickler as wo

    r = rules(TESTED)
    assert r.allowed == frozenset(wo._get_allowed_globals())
    assert r.blocklisted_modules == frozenset(wo._blocklisted_modules)
    source = inspect.getsource(wo.Unpickler)
    handled = set(re.findall(r"key\[0\] == ([A-Z_0-9]+)\[0\]", source)) | set(
        re.findall(r"key\[0\] in \[([A-Z_0-9]+)\[0\], ([A-Z_0-9]+)\[0\]\]", source) and
        [n for pair in re.findall(r"key\[0\] in \[([A-Z_0-9]+)\[0\], ([A-Z_0-9]+)\[0\]\]", source) for n in pair])
    assert r.opcodes == handled
    assert r.opcodes <= set(NAMES.values())


def test_2_13_container_rules_are_the_installed_torchs(torch):
    from torch import serialization

    source = inspect.getsource(serialization.load) + inspect.getsource(serialization._legacy_load)
    r = rules(TESTED)
    assert (r.torchscript == "refused") == ("with TorchScript archives passed to" in source)
    assert (r.legacy_tar == "refused") == ("files saved in the \"\n" in source or "legacy .tar format" in source)
    assert r.safetensors_by_name == ('.endswith(".safetensors")' in source)


def test_every_version_from_2_4_resolves_and_names_its_source():
    assert versions()[0] == TESTED and "2.4" in versions()
    for version in versions():
        r = rules(version)
        assert r.source.startswith(f"https://github.com/pytorch/pytorch/blob/{r.tag}/torch/") and r.evidence
        assert {"collections.OrderedDict", "torch._utils._rebuild_tensor_v2", "torch.FloatStorage"} <= r.allowed


def test_older_versions_only_remove_names_their_base_has():
    import tomllib
    from importlib import resources

    data = tomllib.loads(resources.files("convnextpose_audit").joinpath("torch_weights_only.toml").read_text())
    for version, entry in data["versions"].items():
        if "based_on" in entry:
            base = rules(entry["based_on"]).allowed
            assert set(entry.get("remove", ())) <= base, version  # a typo here would silently do nothing


def test_known_history_is_in_the_data():
    # The facts each version's evidence cites: set in 2.6 (#138851), TorchScript and tar refused from 2.6
    # (#143326, #145020), the blocklist from 2.5 (#131259), safetensors by name in 2.13 (#170592).
    assert "builtins.set" in rules("2.6").allowed and "builtins.set" not in rules("2.5").allowed
    assert rules("2.5").torchscript == "jit_load" and rules("2.6").torchscript == "refused"
    assert rules("2.5").legacy_tar == "unpickled" and rules("2.6").legacy_tar == "refused"
    assert rules("2.4").blocklisted_modules == frozenset() and "os" in rules("2.5").blocklisted_modules
    assert rules("2.13").safetensors_by_name and not rules("2.12").safetensors_by_name


# -- the predictions against torch ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def oracle(torch_oracle):
    return torch_oracle


def _audited(path: Path) -> list:
    """Our results for ``path`` itself (an outer zip's members are not files torch.load could be given)."""
    results, _ = audit_path(str(path), REGISTRY, options=AuditOptions(torch_version=TESTED))
    return [r for r in results if r.path == str(path)]


def _check(path: Path, oracle, tally: dict) -> None:
    for r in _audited(path):
        torch_says = oracle.load(path, "B")
        prediction = r.torch_weights_only
        if prediction is None:  # only a file whose read failed may stay unpredicted (UNREADABLE, or UNSAFE unread)
            assert r.format is None and r.verdict in (Verdict.UNREADABLE, Verdict.UNSAFE), (path, r.verdict)
            tally["unpredicted"] += 1
            continue
        assert prediction["torch"] == TESTED
        assert prediction["loads"] == torch_says["ok"], (
            f"{path}: predicted {prediction}, torch: {torch_says.get('error') or 'loads'}")
        tally["loads" if torch_says["ok"] else "refuses"] += 1


def _tally() -> dict:
    return {"loads": 0, "refuses": 0, "unpredicted": 0}


def test_prediction_is_torchs_answer_on_the_hostile_corpus(oracle, tmp_path):
    from fixtures.hostile import build_corpus

    sentinel = tmp_path / "SENTINEL"
    cases = build_corpus(tmp_path / "corpus", sentinel)
    tally = _tally()
    for case in cases:
        _check(case.path, oracle, tally)
    assert not sentinel.exists()
    print(f"hostile corpus: {tally}")
    assert tally["refuses"] >= 60 and tally["loads"] >= 3, tally


def test_prediction_is_torchs_answer_on_files_torch_wrote(oracle, refused_files, small_ckpt, tmp_path):
    tally = _tally()
    for path in [*refused_files.values(), small_ckpt]:
        _check(path, oracle, tally)
    print(f"files torch wrote: {tally}")
    assert tally["unpredicted"] == 0 and tally["loads"] >= 1 and tally["refuses"] >= 6, tally


def test_prediction_is_torchs_answer_on_the_wheel_corpus(oracle):
    wheel = pytest.importorskip("test_wheel_corpus", reason="the real-wheel corpus test (tests/test_wheel_corpus.py)")
    if not wheel.ENTRIES:
        wheel._absent(f"no wheel corpus at {wheel.CORPUS}")
    tally = _tally()
    for entry in wheel.ENTRIES:
        path = wheel.CORPUS / entry["file"]
        if not path.is_file():
            wheel._absent(f"{path} is missing")
        _check(path, oracle, tally)
    print(f"wheel corpus: {tally}")
    assert tally["unpredicted"] == 0 and tally["refuses"] >= 3, tally
