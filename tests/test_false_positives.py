"""Clean files must read as clean: a scanner that cries wolf gets switched off."""

from __future__ import annotations

import zipfile

import pytest

from convnextpose_audit.audit import Verdict, audit_path
from convnextpose_audit.reader.safe_globals import ALLOWED
from convnextpose_audit.variants import load_registry
from fixtures import legacy_tar
from zip_tools import outer_zip

REGISTRY = load_registry()


def clean_payloads(torch):
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.Linear(4, 2))
    sd = net.state_dict()  # an OrderedDict with _metadata
    adamw = torch.optim.AdamW(net.parameters())
    sgd = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    for p in net.parameters():
        p.grad = torch.ones_like(p)
    adamw.step()
    sgd.step()
    dtypes = {str(d): torch.zeros(3, dtype=d) for d in (torch.float16, torch.bfloat16, torch.float64, torch.int8,
                                                         torch.uint8, torch.bool, torch.complex64, torch.int64)}
    import numpy as np

    return {
        "numpy values": {"network": sd, "best_acc": np.float64(0.731), "iters": np.int64(12000),
                         "flag": np.bool_(True), "mean": np.array([0.485, 0.456, 0.406]),
                         "table": np.arange(6, dtype=">i4").reshape(2, 3)},
        "state_dict": sd,
        "adamw": {"epoch": 3, "network": sd, "optimizer": adamw.state_dict()},
        "sgd": {"epoch": 3, "model": sd, "optimizer": sgd.state_dict(), "best": 0.5, "arch": "x"},
        "extras": {"size": torch.Size([1, 3]), "device": torch.device("cuda", 0), "dtypes": dtypes,
                   "bf16": sd["0.weight"].to(torch.bfloat16), "tuple": (1, 2.0, None, True, "s"),
                   "param": torch.nn.Parameter(torch.ones(2))},
    }


def _assert_clean(path):
    results, _ = audit_path(str(path), REGISTRY)
    assert results
    for r in results:
        assert r.verdict not in (Verdict.UNSAFE, Verdict.UNREADABLE), (path, r.error)


@pytest.mark.parametrize("zipped", [True, False], ids=["zip", "legacy"])
@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_clean_torch_files(torch, tmp_path, zipped, protocol):
    for name, payload in clean_payloads(torch).items():
        path = tmp_path / f"{name}.pt"
        torch.save(payload, path, _use_new_zipfile_serialization=zipped, pickle_protocol=protocol)
        _assert_clean(path)


def test_clean_containers(torch, tmp_path):
    st = pytest.importorskip("safetensors.torch")
    payload = clean_payloads(torch)["adamw"]
    ckpt = tmp_path / "snapshot_1.pth.tar"
    torch.save(payload, ckpt)
    with zipfile.ZipFile(ckpt) as z:
        z.extractall(tmp_path / "x")
    (tmp_path / "old.tar").write_bytes(legacy_tar.build(legacy_tar.SAMPLE))
    st.save_file({k: v.contiguous() for k, v in payload["network"].items()}, str(tmp_path / "w.safetensors"))
    outer_zip(tmp_path / "outer.zip", {"a/ckpt.tar": ckpt}, zipfile.ZIP_DEFLATED)
    for path in (ckpt, tmp_path / "x" / "snapshot_1.pth", tmp_path / "old.tar", tmp_path / "w.safetensors",
                 tmp_path / "outer.zip"):
        _assert_clean(path)


def test_numpy_values_read_as_numbers(torch, tmp_path):
    import numpy as np

    from convnextpose_audit import open_checkpoint

    path = tmp_path / "np.pth"
    torch.save(clean_payloads(torch)["numpy values"], path)
    with open_checkpoint(path) as ckpt:
        assert ckpt.obj["best_acc"] == 0.731 and ckpt.obj["iters"] == 12000 and ckpt.obj["flag"] is True
        table = ckpt.obj["table"]
        assert table.shape == (2, 3) and table.dtype.byteorder == ">"
        assert np.frombuffer(table.data, dtype=">i4").tolist() == list(range(6))


def test_the_allowlist_says_why():
    assert ALLOWED, "the allowlist exists"
    for (module, name), (standin, why) in ALLOWED.items():
        assert module and name and why and standin is not None
    assert ("os", "system") not in ALLOWED and ("builtins", "eval") not in ALLOWED
    assert not any(module.startswith(("os", "subprocess", "posix", "runpy", "importlib", "pickle", "functools"))
                   for module, _ in ALLOWED)
    assert ("numpy", "load") not in ALLOWED and ("numpy.core.multiarray", "scalar") in ALLOWED
