"""Shapes -> architecture: find the state dict in a checkpoint and describe the model it holds.

Pure functions over the unpickled object; nothing here reads tensor bytes.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

from .reader.tensor import TensorRef

#: Keys under which training scripts store the weights, tried in this order.
STATE_DICT_KEYS = ("network", "state_dict", "model", "model_state_dict", "ema", "state_dict_ema", "net", "module")
#: Wrapper prefixes stripped when every key carries them (DataParallel, torch.compile).
WRAPPER_PREFIXES = ("module.", "_orig_mod.")
#: BatchNorm running statistics: state, not learnable weights.
BUFFER_SUFFIXES = (".running_mean", ".running_var", ".num_batches_tracked")
#: Joint counts tried, in order, when splitting final_layer channels into joints × depth bins.
DEFAULT_JOINTS = (18, 17, 21, 16, 14, 24)


@dataclass(frozen=True)
class Fingerprint:
    """What a checkpoint's shapes say about its architecture; fields are None when not found."""

    state_dict_key: str | None  #: where the state dict was: "network", ..., "" for the top level
    prefix: str  #: wrapper prefix stripped from every key ("module." or "")
    tensor_count: int
    stem_width: int | None = None
    stem_shape: tuple | None = None  #: shape of downsample_layers.0.0.weight, e.g. (48, 3, 4, 4)
    dims: tuple | None = None
    depths: tuple | None = None
    block_norm: str | None = None  #: "batchnorm" or "layernorm"
    block_kernel: int | None = None
    head_widths: tuple | None = None
    head_kernel: int | None = None
    final_out: int | None = None
    joints: int | None = None
    depth_bins: int | None = None
    params: int = 0
    buffers: int = 0
    total: int = 0
    dtype: str | None = None
    epoch: int | None = None
    has_optimizer: bool = False
    optimizer: str | None = None  #: "adam" (exp_avg/exp_avg_sq), "sgd" (momentum_buffer), or "other"
    notes: tuple = field(default_factory=tuple)

    @property
    def is_convnext(self) -> bool:
        """True when a ConvNeXt-style backbone (stem plus stages) was found."""
        return self.stem_width is not None and self.depths is not None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (tuples become lists)."""
        d = asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}


def find_state_dict(obj: Any) -> tuple[str | None, dict[str, TensorRef]]:
    """Return ``(key, state dict)``: the first of :data:`STATE_DICT_KEYS` holding tensors, else the top
    level, else the largest dict of tensors one level down; ``(None, {})`` if there is none."""
    if isinstance(obj, dict):
        for key in STATE_DICT_KEYS:
            sub = obj.get(key)
            if _is_state_dict(sub):
                return key, _tensors_only(sub)
        if _is_state_dict(obj):
            return "", _tensors_only(obj)
        # Otherwise the largest dict of tensors one level down, whatever its key.
        subs = [(k, v) for k, v in obj.items() if isinstance(k, str) and _is_state_dict(v)]
        if subs:
            key, sub = max(subs, key=lambda kv: len(kv[1]))
            return key, _tensors_only(sub)
    return None, {}


def _is_state_dict(value: Any) -> bool:
    if not isinstance(value, dict) or not value:
        return False
    tensors = sum(1 for k, v in value.items() if isinstance(k, str) and isinstance(v, TensorRef))
    return tensors > 0 and tensors >= len(value) // 2


def _tensors_only(sd: dict) -> dict[str, TensorRef]:
    return {k: v for k, v in sd.items() if isinstance(k, str) and isinstance(v, TensorRef)}


def strip_prefix(sd: dict[str, TensorRef]) -> tuple[str, dict[str, TensorRef]]:
    """Strip wrapper prefixes shared by every key; return ``(stripped prefix, new dict)``."""
    stripped = ""
    changed = True
    while changed and sd:
        changed = False
        for p in WRAPPER_PREFIXES:
            if all(k.startswith(p) for k in sd):
                sd = {k[len(p):]: v for k, v in sd.items()}
                stripped += p
                changed = True
    return stripped, sd


def split_final(out: int, joints_hints: tuple[int, ...] = DEFAULT_JOINTS) -> tuple[int | None, int | None]:
    """Split final_layer channels into ``(joints, depth bins)`` using the first joint count that divides."""
    for j in joints_hints:
        if j > 0 and out % j == 0:
            return j, out // j
    return None, None


_STAGE = re.compile(r"backbone\.stages\.(\d+)\.(\d+)\.")
_DECONV = re.compile(r"head\.deconv_layers_(\d+)\.pwconv\.weight")


def fingerprint(obj: Any, joints_hints: tuple[int, ...] = DEFAULT_JOINTS) -> Fingerprint:
    """Describe the architecture in an unpickled checkpoint object. Never raises on odd input."""
    key, sd = find_state_dict(obj)
    prefix, sd = strip_prefix(sd)
    params = buffers = 0
    dtypes: Counter = Counter()
    for name, t in sd.items():
        if name.endswith(BUFFER_SUFFIXES):
            buffers += t.numel
        else:
            params += t.numel
            dtypes[t.dtype] += t.numel
    shape = {k: v.shape for k, v in sd.items()}
    fp: dict[str, Any] = dict(state_dict_key=key, prefix=prefix, tensor_count=len(sd), params=params,
                              buffers=buffers, total=params + buffers,
                              dtype=dtypes.most_common(1)[0][0] if dtypes else None)
    fp.update(_top_level(obj))

    stem = shape.get("backbone.downsample_layers.0.0.weight")
    if stem is not None and len(stem) == 4:
        fp["stem_width"], fp["stem_shape"] = stem[0], tuple(stem)
        dims = [stem[0]]
        for i in range(1, 8):
            s = shape.get(f"backbone.downsample_layers.{i}.1.weight")
            if s is None or len(s) < 1:
                break
            dims.append(s[0])
        fp["dims"] = tuple(dims)
    blocks: dict[int, set[int]] = {}
    for name in sd:
        m = _STAGE.match(name)
        if m:
            blocks.setdefault(int(m[1]), set()).add(int(m[2]))
    if blocks:
        fp["depths"] = tuple(len(blocks.get(i, ())) for i in range(max(blocks) + 1))
    if "backbone.stages.0.0.norm.running_mean" in sd:
        fp["block_norm"] = "batchnorm"
    elif "backbone.stages.0.0.norm.weight" in sd and len(shape.get("backbone.stages.0.0.pwconv1.weight", ())) == 2:
        fp["block_norm"] = "layernorm"
    dw = shape.get("backbone.stages.0.0.dwconv.weight")
    if dw is not None and len(dw) == 4:
        fp["block_kernel"] = dw[-1]
    widths = sorted((int(m[1]), shape[n][0]) for n in sd if (m := _DECONV.fullmatch(n)) and shape[n])
    if widths:
        fp["head_widths"] = tuple(w for _, w in widths)
    hk = shape.get("head.deconv_layers_1.dwconv.weight")
    if hk is not None and len(hk) == 4:
        fp["head_kernel"] = hk[-1]
    final = shape.get("head.final_layer.weight")
    if final is not None and len(final) >= 1:
        fp["final_out"] = final[0]
        fp["joints"], fp["depth_bins"] = split_final(final[0], joints_hints)
    return Fingerprint(**fp)


def _top_level(obj: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if not isinstance(obj, dict):
        return out
    epoch = obj.get("epoch")
    if type(epoch) is int and 0 <= epoch < (1 << 63):  # a pickle can hold an int of any size; print none of those
        out["epoch"] = epoch
    opt = next((obj[k] for k in ("optimizer", "optimizer_state_dict", "optim") if k in obj), None)
    if isinstance(opt, dict) and opt:
        out["has_optimizer"] = True
        state = opt.get("state")
        kinds: set[str] = set()
        if isinstance(state, dict):
            for entry in list(state.values())[:8]:
                if isinstance(entry, dict):
                    kinds.update(k for k in entry if isinstance(k, str))
        out["optimizer"] = ("adam" if {"exp_avg", "exp_avg_sq"} <= kinds else
                            "sgd" if "momentum_buffer" in kinds else "other")
    return out
