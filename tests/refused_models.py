"""Files torch's weights_only loader refuses, built with torch (issue 14): whole modules, Lightning-style
checkpoints with argparse and omegaconf hyperparameters, a TorchScript archive, numpy values.

The module classes live in real files (torch_models.py, this one), as torch.save(model) and torch.jit.script
need: the pickles name them by module, and scripting reads their source.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from torch import nn

import torch_models as tm


class Scripted(nn.Module):
    """A small scriptable module: parameters, persistent and non-persistent buffers, a nested Sequential."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.bn = nn.BatchNorm2d(4)
        self.seq = nn.Sequential(nn.Conv2d(4, 2, 1), nn.ReLU())
        self.register_buffer("scratch", torch.zeros(2), persistent=False)
        self.scale = 2.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.seq(self.bn(self.conv(x))) * self.scale


class ScriptedPose(nn.Module):
    """A ConvNeXtPose variant's backbone and head under a scriptable forward (torch_models' classes have none)."""

    def __init__(self, label: str):
        super().__init__()
        model = tm.build(label)
        self.backbone = model.backbone
        self.head = model.head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def whole_module(label: str, folder: Path) -> Path:
    """``torch.save(model)`` of a ConvNeXtPose variant (classes of torch_models.py), named after the variant."""
    torch.manual_seed(7)
    path = folder / f"convnextpose_{label.lower()}_whole.pth"
    torch.save(tm.build(label), path)
    return path


def lightning_namespace(folder: Path) -> Path:
    """A Lightning-style checkpoint whose hyperparameters are an argparse.Namespace."""
    torch.manual_seed(8)
    model = tm.build("S")
    payload = {"epoch": 4, "global_step": 1200, "pytorch-lightning_version": "2.4.0",
               "state_dict": {f"model.{k}": v for k, v in model.state_dict().items()},
               "hyper_parameters": {"args": argparse.Namespace(lr=1e-3, variant="S", depth_bins=32)},
               "optimizer_states": [], "lr_schedulers": []}
    path = folder / "lightning_namespace.ckpt"
    torch.save(payload, path)
    return path


def lightning_omegaconf(folder: Path) -> Path:
    """A Lightning-style checkpoint whose hyperparameters are omegaconf containers (as Hydra writes them)."""
    from omegaconf import OmegaConf

    torch.manual_seed(9)
    model = tm.build("M")
    payload = {"epoch": 2, "global_step": 600, "pytorch-lightning_version": "2.4.0",
               "state_dict": {f"model.{k}": v for k, v in model.state_dict().items()},
               "hyper_parameters": OmegaConf.create({"model": {"variant": "M", "widths": [256, 256, 256]},
                                                     "optim": {"lr": 0.001}}),
               "hparams_name": "cfg"}
    path = folder / "lightning_omegaconf.ckpt"
    torch.save(payload, path)
    return path


def scripted(folder: Path) -> Path:
    """``torch.jit.save(torch.jit.script(Scripted()))``: a TorchScript archive."""
    torch.manual_seed(10)
    path = folder / "scripted.pt"
    torch.jit.save(torch.jit.script(Scripted()), str(path))
    return path


def scripted_pose(folder: Path) -> Path:
    """A TorchScript archive of ConvNeXtPose-XS: its module tree holds the variant's whole state dict."""
    torch.manual_seed(14)
    path = folder / "scripted_pose.pt"
    torch.jit.save(torch.jit.script(ScriptedPose("XS")), str(path))
    return path


def numpy_values(folder: Path) -> Path:
    """A state dict with numpy arrays beside it (weights_only needs numpy's globals and dtype classes)."""
    import numpy as np

    torch.manual_seed(11)
    path = folder / "with_numpy.pth"
    torch.save({"state_dict": nn.Linear(3, 2).state_dict(), "mean": np.arange(3.0), "ids": np.arange(4, dtype="i8")},
               path)
    return path


def protocol4(folder: Path) -> Path:
    """A plain state dict pickled with protocol 4 (FRAME, MEMOIZE...): weights_only's unpickler lacks those opcodes."""
    torch.manual_seed(12)
    path = folder / "protocol4.pth"
    torch.save(nn.Linear(3, 2).state_dict(), path, pickle_protocol=4)
    return path


def legacy_whole_module(folder: Path) -> Path:
    """``torch.save(model)`` in the torch < 1.6 format: module classes become ('module', ...) persistent ids."""
    torch.manual_seed(13)
    path = folder / "legacy_whole.pt"
    torch.save(tm.build("XS"), path, _use_new_zipfile_serialization=False)
    return path


BUILDERS = {"lightning_namespace": lightning_namespace, "lightning_omegaconf": lightning_omegaconf,
            "scripted": scripted, "numpy_values": numpy_values, "protocol4": protocol4,
            "legacy_whole": legacy_whole_module, "scripted_pose": scripted_pose}
