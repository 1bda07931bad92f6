"""Write examples/drive/: a folder shaped like the official Google Drive folder, tiny on disk.

Every tensor has its real shape but is a stride-0 expansion of one element, which
torch.save stores as a single value, so the files are small and audit exactly like
the real ones. Needs torch: ``pip install torch==2.13.0``, then
``python examples/make_examples.py``.

Contents: the four Drive files (XS, S, M, L), ``ConvNeXtPose_L_mirror.tar`` which
holds M weights under an L name (MISMATCH), and ``posenet_resnet50.pth``, a
checkpoint of another architecture (UNKNOWN).
"""

from __future__ import annotations

import collections
import sys
from pathlib import Path

import torch

from convnextpose_audit.model import build_model
from convnextpose_audit.variants import load_registry

OUT = Path(__file__).resolve().parent / "drive"


def tiny(shape) -> torch.Tensor:
    return torch.zeros(1).expand(*shape) if len(shape) else torch.zeros(())


def tiny_state_dict(model: torch.nn.Module) -> collections.OrderedDict:
    sd = collections.OrderedDict()
    for key, t in model.state_dict().items():
        sd[f"module.{key}"] = torch.tensor(0) if t.dtype == torch.int64 else tiny(t.shape)
    return sd


def adamw_state(model: torch.nn.Module) -> dict:
    params = list(model.parameters())
    state = {i: {"step": torch.tensor(83.0), "exp_avg": tiny(p.shape), "exp_avg_sq": tiny(p.shape)}
             for i, p in enumerate(params)}
    group = {"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.05, "amsgrad": False,
             "params": list(range(len(params)))}
    return {"state": state, "param_groups": [group]}


def save(payload: dict, name: str, epoch: int) -> None:
    snap = OUT / f"snapshot_{epoch}.pth.tar"  # the training code's name; the archive prefix keeps it
    torch.save(payload, snap)
    snap.rename(OUT / name)


def resnet_like() -> collections.OrderedDict:
    sd = collections.OrderedDict()
    sd["backbone.conv1.weight"] = tiny((64, 3, 7, 7))
    for i, c in enumerate((64, 128, 256, 512), 1):
        sd[f"backbone.layer{i}.0.conv1.weight"] = tiny((c, c, 3, 3))
        sd[f"backbone.layer{i}.0.bn1.running_mean"] = tiny((c,))
    sd["head.deconv_layers.0.weight"] = tiny((2048, 256, 4, 4))
    sd["head.final_layer.weight"] = tiny((18 * 64, 256, 1, 1))
    return sd


def main() -> int:
    OUT.mkdir(exist_ok=True)
    registry = load_registry()
    names = {"XS": "ConvNeXtPose_XS.tar", "S": "ConvNeXtPose_S.tar", "M": "ConvNeXtPose_M (1).tar",
             "L": "ConvNeXtPose_L (1).tar"}
    for label, name in names.items():
        model = build_model(registry.get(label))
        save({"epoch": 83, "network": tiny_state_dict(model), "optimizer": adamw_state(model)}, name, 83)
    m = build_model(registry.get("M"))
    save({"epoch": 70, "network": tiny_state_dict(m), "optimizer": adamw_state(m)}, "ConvNeXtPose_L_mirror.tar", 70)
    torch.save({"epoch": 20, "state_dict": resnet_like()}, OUT / "posenet_resnet50.pth")
    for p in sorted(OUT.iterdir()):
        print(f"{p.stat().st_size:>9,}  {p.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
