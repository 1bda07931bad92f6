"""The reader against torch.load: same structure, shapes, dtypes, strides and bits."""

from __future__ import annotations

import collections

import numpy as np
import pytest

from convnextpose_audit import open_checkpoint
from convnextpose_audit.reader.safe_globals import Device, Size
from convnextpose_audit.reader.tensor import TensorRef


def all_dtypes(torch):
    out = [torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.int8, torch.int16, torch.int32,
           torch.int64, torch.uint8, torch.bool, torch.complex64, torch.complex128]
    for name in ("uint16", "uint32", "uint64", "float8_e4m3fn", "float8_e5m2", "complex32"):
        if hasattr(torch, name):
            out.append(getattr(torch, name))
    return out


def make_tensor(torch, dtype, shape=(3, 4)):
    g = torch.Generator().manual_seed(7)
    base = torch.randint(0, 100, shape, generator=g)
    if dtype.is_complex:
        return torch.complex(base.float(), base.float().flip(0)).to(dtype)
    if dtype == torch.bool:
        return base % 2 == 0
    return base.to(dtype)


def payload(torch, dtypes):
    shared = torch.randn(6, 5)
    sd = collections.OrderedDict()
    for i, dt in enumerate(dtypes):
        sd[f"t{i}_{str(dt).split('.')[-1]}"] = make_tensor(torch, dt)
    sd["view_row"] = shared[2]               # view sharing one storage
    sd["view_t"] = shared.t()                # non-contiguous
    sd["expand"] = torch.tensor(3.0).expand(4, 4)  # stride 0
    sd["offset"] = shared[1:, 2:]
    sd["scalar"] = torch.tensor(2.5)
    sd["empty"] = torch.zeros(0, 3)
    sd["param"] = torch.nn.Parameter(torch.randn(2, 2))
    sd._metadata = collections.OrderedDict({"": {"version": 1}})
    return {"epoch": 83, "network": sd, "nested": {"list": [shared, (1, 2.5, "x")], "none": None, "flag": True},
            "size": torch.Size([1, 3, 256, 256]), "device": torch.device("cpu"), "bytes": b"\x00ab"}


def same_bits(torch, a, b) -> bool:
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    return torch.equal(a.contiguous().reshape(-1).view(torch.uint8), b.contiguous().reshape(-1).view(torch.uint8))


def compare(torch, ours, theirs, path="obj"):
    """Recursively assert our object equals torch.load's."""
    if isinstance(theirs, torch.Tensor):
        assert isinstance(ours, TensorRef), path
        assert ours.dtype == str(theirs.dtype).split(".")[-1], path
        assert ours.shape == tuple(theirs.shape), path
        assert ours.stride == theirs.stride(), path
        assert ours.storage_offset == theirs.storage_offset(), path
        assert ours.nbytes == theirs.numel() * theirs.element_size(), path
        mine = ours.torch()
        assert type(mine) is type(theirs), path
        assert mine.stride() == theirs.stride(), path
        assert same_bits(torch, mine, theirs), path
        return
    if isinstance(theirs, torch.Size):
        assert isinstance(ours, Size) and tuple(ours) == tuple(theirs), path
        return
    if isinstance(theirs, torch.device):
        assert isinstance(ours, Device) and str(ours) == str(theirs), path
        return
    assert type(ours) is type(theirs), f"{path}: {type(ours)} vs {type(theirs)}"
    if isinstance(theirs, dict):
        assert list(ours) == list(theirs), path
        for k in theirs:
            compare(torch, ours[k], theirs[k], f"{path}[{k!r}]")
        assert getattr(ours, "_metadata", None) == getattr(theirs, "_metadata", None), path
    elif isinstance(theirs, (list, tuple)):
        assert len(ours) == len(theirs), path
        for i, (a, b) in enumerate(zip(ours, theirs)):
            compare(torch, a, b, f"{path}[{i}]")
    else:
        assert ours == theirs, path


@pytest.mark.parametrize("zipped", [True, False], ids=["zip", "legacy"])
@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_matches_torch_load(torch, tmp_path, zipped, protocol):
    dtypes = all_dtypes(torch)
    if not zipped:  # torch's own legacy loader cannot read back dtypes without a typed storage class
        dtypes = [d for d in dtypes if "float8" not in str(d) and "uint16" not in str(d)
                  and "uint32" not in str(d) and "uint64" not in str(d) and "complex32" not in str(d)]
    obj = payload(torch, dtypes)
    if protocol >= 3:  # torch's weights-only loader has no SHORT_BINBYTES; bytes only at protocol 2
        del obj["bytes"]
    path = tmp_path / "ckpt.pt"
    torch.save(obj, path, _use_new_zipfile_serialization=zipped, pickle_protocol=protocol)
    with _quiet():
        # torch's weights-only loader lacks FRAME (protocol 4+); these files are our own, so trust them there.
        theirs = torch.load(path, weights_only=protocol < 4)
    with open_checkpoint(path) as ckpt:
        assert ckpt.format == ("zip" if zipped else "legacy")
        assert ckpt.warnings == []
        compare(torch, ckpt.obj, theirs)
        # numpy view of every exact dtype equals torch's values
        for name, ref in ckpt.tensors():
            t = ref.torch()
            if t.dtype in (torch.bfloat16, torch.complex32) or "float8" in str(t.dtype):
                raw = t.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()
                assert np.ascontiguousarray(ref.numpy()).tobytes() == raw, name
            elif t.dtype in (torch.uint16, torch.uint32, torch.uint64):
                assert np.array_equal(ref.numpy(), t.to(torch.int64).numpy())
            else:
                assert np.array_equal(ref.numpy(), t.detach().numpy()), name


class _quiet:
    def __enter__(self):
        import warnings
        self._cm = warnings.catch_warnings()
        self._cm.__enter__()
        warnings.simplefilter("ignore")

    def __exit__(self, *exc):
        self._cm.__exit__(*exc)


def test_numpy_is_zero_copy_for_stored_members(torch, tmp_path):
    path = tmp_path / "z.pt"
    torch.save({"w": torch.arange(1000, dtype=torch.float32)}, path)
    with open_checkpoint(path) as ckpt:
        arr = ckpt.obj["w"].numpy()
        assert not arr.flags.owndata and not arr.flags.writeable
        assert arr[999] == 999.0
        del arr


def test_views_share_one_torch_storage(torch, tmp_path):
    base = torch.randn(4, 4)
    path = tmp_path / "v.pt"
    torch.save({"a": base, "b": base[1]}, path)
    with open_checkpoint(path) as ckpt:
        a, b = ckpt.obj["a"].torch(), ckpt.obj["b"].torch()
        assert a.untyped_storage().data_ptr() == b.untyped_storage().data_ptr()


def test_training_payload_layout(small_ckpt, torch):
    with open_checkpoint(small_ckpt) as ckpt:
        assert set(ckpt.obj) == {"epoch", "network", "optimizer"}
        w = ckpt.obj["network"]["module.0.weight"]
        assert w.name == "network/module.0.weight" and w.storage.key.isdigit()
        assert all(k.startswith("module.") for k in ckpt.obj["network"])
        theirs = torch.load(small_ckpt, weights_only=True)
        compare(torch, ckpt.obj, theirs)
