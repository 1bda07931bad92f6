"""An independent torch rendition of ConvNeXtPose's module layout, for building real fixtures.

Written from the layout in the project's issue (official code: backbone_cfg =
(depths, dims), head width cfg.depth, depth_dim) rather than from the
project's own model.py, so registry, fingerprint and model are each checked
against something they did not produce.
"""

from __future__ import annotations

import torch
from torch import nn

ARCH = {
    "XS": dict(depths=(2, 2, 6, 2), dims=(40, 80, 160, 320), head=128, bins=32),
    "S": dict(depths=(3, 3, 9, 3), dims=(48, 96, 192, 384), head=256, bins=32),
    "M": dict(depths=(3, 3, 9, 3), dims=(48, 96, 192, 384), head=256, bins=64),
    "L": dict(depths=(3, 3, 9, 3), dims=(48, 96, 192, 384), head=512, bins=64),
}


class BNBlock(nn.Module):
    def __init__(self, dim: int, kernel: int = 7):
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, kernel, padding=kernel // 2, groups=dim)
        self.norm = nn.BatchNorm2d(dim)
        self.pwconv1 = nn.Conv2d(dim, 4 * dim, 1)
        self.act = nn.GELU()
        self.pwconv2 = nn.Conv2d(4 * dim, dim, 1)

    def forward(self, x):
        return x + self.pwconv2(self.act(self.pwconv1(self.norm(self.dwconv(x)))))


class LNBlock(nn.Module):
    """The original ConvNeXt block: LayerNorm, Linear pointwise layers, layer scale."""

    def __init__(self, dim: int):
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, 7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim)
        self.pwconv1 = nn.Linear(dim, 4 * dim)
        self.act = nn.GELU()
        self.pwconv2 = nn.Linear(4 * dim, dim)
        self.gamma = nn.Parameter(torch.full((dim,), 1e-6))


class Backbone(nn.Module):
    def __init__(self, depths, dims, block=BNBlock, in_chans: int = 3):
        super().__init__()
        self.downsample_layers = nn.ModuleList()
        self.downsample_layers.append(nn.Sequential(nn.Conv2d(in_chans, dims[0], 4, stride=4), nn.BatchNorm2d(dims[0])))
        for i in range(1, len(dims)):
            self.downsample_layers.append(nn.Sequential(nn.BatchNorm2d(dims[i - 1]),
                                                        nn.Conv2d(dims[i - 1], dims[i], 2, stride=2)))
        self.stages = nn.ModuleList(nn.Sequential(*[block(d) for _ in range(n)]) for d, n in zip(dims, depths))
        self.norm = nn.BatchNorm2d(dims[-1])


class DeConv(nn.Module):
    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.dwconv = nn.Conv2d(c_in, c_in, 3, padding=1, groups=c_in)
        self.norm = nn.BatchNorm2d(c_in)
        self.pwconv = nn.Conv2d(c_in, c_out, 1)


class Head(nn.Module):
    def __init__(self, c_in: int, widths, out: int):
        super().__init__()
        for k, w in enumerate(widths, 1):
            setattr(self, f"deconv_layers_{k}", DeConv(c_in, w))
            c_in = w
        self.final_layer = nn.Conv2d(c_in, out, 1)


class PoseNet(nn.Module):
    def __init__(self, depths, dims, head_widths, joints: int = 18, bins: int = 64, block=BNBlock):
        super().__init__()
        self.backbone = Backbone(depths, dims, block)
        self.head = Head(dims[-1], head_widths, joints * bins)


def build(label: str, **changes) -> PoseNet:
    """The named variant, with optional changes: joints=17, bins=32, block=LNBlock, depths=(...)."""
    a = dict(ARCH[label])
    depths = changes.pop("depths", a["depths"])
    dims = changes.pop("dims", a["dims"])
    widths = changes.pop("head_widths", (a["head"],) * 3)
    return PoseNet(depths, dims, widths, joints=changes.pop("joints", 18), bins=changes.pop("bins", a["bins"]),
                   block=changes.pop("block", BNBlock))


def training_payload(model: nn.Module, epoch: int = 83, optimizer: bool = True) -> dict:
    """What the training code saves: epoch, DataParallel state dict, AdamW state after one step."""
    wrapped = nn.DataParallel(model)
    payload = {"epoch": epoch, "network": wrapped.state_dict()}
    if optimizer:
        opt = torch.optim.AdamW(wrapped.parameters(), lr=1e-3)
        for p in wrapped.parameters():
            p.grad = torch.zeros_like(p)
        opt.step()
        payload["optimizer"] = opt.state_dict()
    return payload


def save_like_drive(model: nn.Module, folder, drive_name: str, epoch: int = 83, optimizer: bool = True, **save_kw):
    """Save as ``snapshot_<epoch>.pth.tar`` (so the archive's internal prefix is that), then rename."""
    snap = folder / f"snapshot_{epoch}.pth.tar"
    torch.save(training_payload(model, epoch, optimizer), snap, **save_kw)
    target = folder / drive_name
    snap.rename(target)
    return target
