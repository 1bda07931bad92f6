"""The ConvNeXtPose model in torch, built from a registry entry (needs the ``torch`` extra).

Layout follows the official code: a ConvNeXt backbone whose blocks use
BatchNorm and 1×1 convolutions, a head of three DeConv layers (depthwise 3×3,
BatchNorm, pointwise 1×1, GELU, bilinear ×2 upsampling), a 1×1 ``final_layer``
producing joints × depth-bin heatmaps, and soft-argmax to (x, y, z) per joint.
For a 256×256 input the backbone gives 8×8; the head upsamples until the
heatmap is as wide as it is deep (32 bins: two upsamplings, 64 bins: three).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .errors import AuditError
from .variants import Variant

INPUT_SIZE = 256
BACKBONE_STRIDE = 32


class Block(nn.Module):
    """ConvNeXt block with BatchNorm: depthwise 7×7, BN, 1×1 expand ×4, GELU, 1×1 project, residual."""

    def __init__(self, dim: int):
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, kernel_size=7, padding=3, groups=dim)
        self.norm = nn.BatchNorm2d(dim)
        self.pwconv1 = nn.Conv2d(dim, 4 * dim, kernel_size=1)
        self.act = nn.GELU()
        self.pwconv2 = nn.Conv2d(4 * dim, dim, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.pwconv2(self.act(self.pwconv1(self.norm(self.dwconv(x)))))


class Backbone(nn.Module):
    """Stem (4×4 stride-4 conv, BN), then per stage a downsample (BN, 2×2 stride-2 conv) and blocks."""

    def __init__(self, depths: tuple[int, ...], dims: tuple[int, ...], in_chans: int = 3):
        super().__init__()
        self.downsample_layers = nn.ModuleList(
            [nn.Sequential(nn.Conv2d(in_chans, dims[0], kernel_size=4, stride=4), nn.BatchNorm2d(dims[0]))])
        for i in range(1, len(dims)):
            self.downsample_layers.append(
                nn.Sequential(nn.BatchNorm2d(dims[i - 1]), nn.Conv2d(dims[i - 1], dims[i], kernel_size=2, stride=2)))
        self.stages = nn.ModuleList(nn.Sequential(*[Block(d) for _ in range(n)]) for d, n in zip(dims, depths))
        self.norm = nn.BatchNorm2d(dims[-1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for down, stage in zip(self.downsample_layers, self.stages):
            x = stage(down(x))
        return self.norm(x)


class DeConv(nn.Module):
    """Depthwise 3×3, BN, pointwise 1×1, GELU, then bilinear ×2 upsampling when ``up``."""

    def __init__(self, c_in: int, c_out: int, up: bool):
        super().__init__()
        self.dwconv = nn.Conv2d(c_in, c_in, kernel_size=3, padding=1, groups=c_in)
        self.norm = nn.BatchNorm2d(c_in)
        self.pwconv = nn.Conv2d(c_in, c_out, kernel_size=1)
        self.act = nn.GELU()
        self.up = up

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self.pwconv(self.norm(self.dwconv(x))))
        return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False) if self.up else x


class Head(nn.Module):
    """Three (or more) DeConv layers and the heatmap ``final_layer``."""

    def __init__(self, c_in: int, widths: tuple[int, ...], joints: int, depth_bins: int, upsamplings: int):
        super().__init__()
        self.n_layers = len(widths)
        for k, w in enumerate(widths, 1):
            setattr(self, f"deconv_layers_{k}", DeConv(c_in, w, up=k <= upsamplings))
            c_in = w
        self.final_layer = nn.Conv2d(c_in, joints * depth_bins, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for k in range(1, self.n_layers + 1):
            x = getattr(self, f"deconv_layers_{k}")(x)
        return self.final_layer(x)


def soft_argmax(heatmaps: torch.Tensor, joints: int, depth_bins: int) -> torch.Tensor:
    """Integral regression: softmax over each joint's D×H×W volume, then expected (x, y, z)."""
    b, _, h, w = heatmaps.shape
    prob = F.softmax(heatmaps.reshape(b, joints, -1), dim=2).reshape(b, joints, depth_bins, h, w)
    xs = (prob.sum(dim=(2, 3)) * torch.arange(w, dtype=prob.dtype)).sum(dim=2, keepdim=True)
    ys = (prob.sum(dim=(2, 4)) * torch.arange(h, dtype=prob.dtype)).sum(dim=2, keepdim=True)
    zs = (prob.sum(dim=(3, 4)) * torch.arange(depth_bins, dtype=prob.dtype)).sum(dim=2, keepdim=True)
    return torch.cat((xs, ys, zs), dim=2)


class ConvNeXtPose(nn.Module):
    """Backbone + head + soft-argmax: (B, 3, 256, 256) -> (B, joints, 3)."""

    def __init__(self, depths, dims, head_widths, joints: int, depth_bins: int):
        super().__init__()
        self.joints, self.depth_bins = joints, depth_bins
        self.backbone = Backbone(tuple(depths), tuple(dims))
        side = INPUT_SIZE // BACKBONE_STRIDE
        upsamplings = max(0, round(math.log2(depth_bins / side)))
        self.head = Head(dims[-1], tuple(head_widths), joints, depth_bins, upsamplings)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return soft_argmax(self.head(self.backbone(x)), self.joints, self.depth_bins)


REQUIRED = ("dims", "depths", "head_widths", "joints", "depth_bins")


def build_model(variant: Variant) -> ConvNeXtPose:
    """A freshly initialised model for a registry entry (BatchNorm-block ConvNeXtPose only)."""
    f = variant.features
    missing = [k for k in REQUIRED if k not in f]
    if missing or f.get("block_norm", "batchnorm") != "batchnorm":
        raise AuditError(f"variant {variant.label} cannot be built as ConvNeXtPose "
                         f"({'missing ' + ', '.join(missing) if missing else 'not BatchNorm blocks'})")
    return ConvNeXtPose(f["depths"], f["dims"], f["head_widths"], f["joints"], f["depth_bins"])


def load_state_dict_strict(model: nn.Module, state_dict: dict) -> str | None:
    """Load with ``strict=True``; return None on success, or torch's own error text listing
    missing, unexpected and shape-mismatched keys."""
    try:
        model.load_state_dict(state_dict, strict=True)
    except RuntimeError as exc:
        return str(exc)
    return None


def forward_check(model: nn.Module, seed: int = 0) -> tuple[tuple[int, ...], float]:
    """Run one 1×3×256×256 forward pass on CPU; return (output shape, seconds)."""
    import time

    g = torch.Generator().manual_seed(seed)
    x = torch.randn(1, 3, INPUT_SIZE, INPUT_SIZE, generator=g)
    with torch.no_grad():
        start = time.perf_counter()
        out = model(x)
        seconds = time.perf_counter() - start
    return tuple(out.shape), seconds
