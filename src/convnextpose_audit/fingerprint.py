"""Shapes -> architecture: find the state dicts in a checkpoint and describe the model each holds.

Pure functions over the unpickled object; nothing here reads tensor bytes.

Discovery follows the loaders people use: the weights sit under ``network``,
``state_dict``, ``model``, ``ema``, ... or at the top level; inside, the model's
keys may carry a wrapper prefix (``module.`` from DataParallel or AveragedModel,
``model.`` from Lightning, ``_orig_mod.`` from torch.compile, or several of them).
The prefix is read off the backbone's first key, so keys that belong to the
wrapper itself (AveragedModel's ``n_averaged``) do not hide the model.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable

from .module_tree import as_state_dicts
from .reader.tensor import TensorRef

#: Keys under which training scripts store the weights, tried in this order (model before EMA).
STATE_DICT_KEYS = ("network", "state_dict", "model_state_dict", "model", "net", "module",
                   "ema", "model_ema", "state_dict_ema")
#: Wrapper prefixes stripped by default; the registry's ``[matching.wrapper_prefixes]`` documents why.
WRAPPER_PREFIXES = ("module.", "model.", "_orig_mod.")
#: The backbone's first layer: the key whose position gives the wrapper prefix of a ConvNeXt state dict.
ANCHOR = "backbone.downsample_layers.0.0.weight"
#: BatchNorm running statistics: state, not learnable weights.
BUFFER_SUFFIXES = (".running_mean", ".running_var", ".num_batches_tracked")
#: Backbones (distinct prefixes before the first backbone key) read from one dict: a model and its EMA
#: make two; a crafted dict with thousands would make discovery quadratic, so the rest are left unread.
MAX_BACKBONES = 4
#: Joint counts tried, in order, when splitting final_layer channels into joints × depth bins.
DEFAULT_JOINTS = (18, 17, 21, 16, 14, 24)


@dataclass(frozen=True)
class Fingerprint:
    """What a state dict's shapes say about its architecture; fields are None when not found.

    ``params`` counts learnable parameters, ``buffers`` BatchNorm statistics and
    counters, ``elements`` (= ``total``) everything in the model's state dict.
    """

    state_dict_key: str | None  #: where the state dict was: "network", ..., "" for the top level
    prefix: str  #: wrapper prefix stripped from the model's keys ("module." or "")
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
    #: other (joints, depth bins) splits of final_out by known joint counts: the split above is assumed
    joints_alternatives: tuple = ()
    params: int = 0
    buffers: int = 0
    total: int = 0
    elements: int = 0
    dtype: str | None = None
    epoch: int | None = None
    has_optimizer: bool = False
    optimizer: str | None = None  #: "adam" (exp_avg/exp_avg_sq), "sgd" (momentum_buffer), or "other"
    notes: tuple = field(default_factory=tuple)

    @property
    def is_convnext(self) -> bool:
        """True when a ConvNeXt-style backbone (stem plus stages) was found."""
        return self.stem_width is not None and self.depths is not None

    @property
    def joints_assumed(self) -> bool:
        """True when final_layer's channels split in more than one way by known joint counts."""
        return bool(self.joints_alternatives)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (tuples become lists)."""
        d = asdict(self)
        d["joints_assumed"] = self.joints_assumed
        return {k: _plain(v) for k, v in d.items()}


def _plain(v: Any) -> Any:
    return [_plain(x) for x in v] if isinstance(v, tuple) else v


@dataclass(frozen=True)
class StateDict:
    """One candidate state dict found in a checkpoint.

    ``tensors`` holds the model's keys with the wrapper prefix stripped;
    ``outside`` the tensors whose keys do not carry the prefix (they belong to the wrapper).
    ``documented`` is False when the prefix is not made of known wrapper prefixes:
    a loader would not strip it, so such keys never match a variant exactly.
    """

    name: str  #: unique within the checkpoint: "network", "top level", "state_dict (model.)"
    key: str  #: top-level key holding it, "" for the top level itself
    prefix: str
    tensors: dict[str, TensorRef]
    outside: dict[str, TensorRef] = field(default_factory=dict)
    documented: bool = True
    #: where the names came from when they were rebuilt from a pickled module tree ("nn.Module pkg.Net"), else ""
    origin: str = ""

    @property
    def loader_keys(self) -> dict[str, TensorRef]:
        """The keys as a loader that strips only documented wrapper prefixes would see them."""
        if self.documented:
            return self.tensors
        return {self.prefix + k: v for k, v in self.tensors.items()}


def find_state_dicts(obj: Any, wrappers: Iterable[str] = WRAPPER_PREFIXES) -> list[StateDict]:
    """Every candidate state dict in ``obj``, most likely first; ``[]`` if there is none.

    Candidates: each of :data:`STATE_DICT_KEYS` holding a dict of tensors, and the
    top level itself; failing those, the largest dict of tensors one level down.
    One dict yields one candidate per distinct prefix in front of the backbone's
    first key (a dict holding a model and its EMA under two prefixes yields two).
    A pickled module (``torch.save(model)``, at the top or under one of those keys)
    counts as the state dict its ``state_dict()`` would give (see :mod:`.module_tree`).
    """
    wrappers = tuple(wrappers)
    obj = as_state_dicts(obj, STATE_DICT_KEYS)
    found: list[tuple[str, dict]] = []
    if isinstance(obj, dict):
        seen: set[int] = set()  # one dict shared under several keys (a pickle memo can do that) is read once
        for key in STATE_DICT_KEYS:
            sub = obj.get(key)
            if _is_state_dict(sub) and id(sub) not in seen:
                seen.add(id(sub))
                found.append((key, sub))
        if _is_state_dict(obj):
            found.append(("", obj))
        if not found:  # otherwise the largest dict of tensors one level down, whatever its key
            subs = [(k, v) for k, v in obj.items() if isinstance(k, str) and _is_state_dict(v)]
            if subs:
                found.append(max(subs, key=lambda kv: len(kv[1])))
    out: list[StateDict] = []
    for key, sd in found:
        tensors = _tensors_only(sd)
        parts = _split_by_anchor(tensors, wrappers)
        base = key or "top level"
        for prefix, model, outside, documented in parts:
            shown = prefix if len(prefix) <= 60 else prefix[:59] + "…"  # a name for reports, not a key
            name = base if len(parts) == 1 else f"{base} ({shown or 'no prefix'})"
            out.append(StateDict(name, key, prefix, model, outside, documented, getattr(sd, "source", "")))
    return out


def find_state_dict(obj: Any) -> tuple[str | None, dict[str, TensorRef]]:
    """Return ``(key, state dict)`` of the most likely candidate, keys as stored (prefix kept);
    ``(None, {})`` if there is none. A pickled module counts as its ``state_dict()``."""
    obj = as_state_dicts(obj, STATE_DICT_KEYS)
    if isinstance(obj, dict):
        for key in STATE_DICT_KEYS:
            sub = obj.get(key)
            if _is_state_dict(sub):
                return key, _tensors_only(sub)
        if _is_state_dict(obj):
            return "", _tensors_only(obj)
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


def is_wrapper_prefix(prefix: str, wrappers: Iterable[str] = WRAPPER_PREFIXES) -> bool:
    """True when ``prefix`` is a sequence of documented wrapper prefixes (``""`` included)."""
    wrappers = tuple(w for w in wrappers if w)
    pos = 0  # an index, not a shrinking copy: a key can hold 300,000 wrapper prefixes (quadratic otherwise)
    while pos < len(prefix):
        for w in wrappers:
            if prefix.startswith(w, pos):
                pos += len(w)
                break
        else:
            return False
    return True


def _split_by_anchor(sd: dict[str, TensorRef], wrappers: tuple[str, ...]
                     ) -> list[tuple[str, dict[str, TensorRef], dict[str, TensorRef], bool]]:
    """``[(prefix, model keys stripped, keys outside, documented)]``, one per backbone found in ``sd``."""
    prefixes = list(dict.fromkeys(k[: -len(ANCHOR)] for k in sd
                                  if k.endswith(ANCHOR) and (len(k) == len(ANCHOR) or k[-len(ANCHOR) - 1] == ".")))
    prefixes = prefixes[:MAX_BACKBONES]
    if not prefixes:  # no ConvNeXt backbone: strip documented wrappers only when every key carries them
        prefix, stripped = _strip_common(sd, wrappers)
        return [(prefix, stripped, {}, True)]
    parts = []
    for p in prefixes:
        # Keys under a longer backbone prefix (module.ema. inside module.) belong to that candidate.
        longer = tuple(q for q in prefixes if len(q) > len(p) and q.startswith(p))
        model = {k[len(p):]: v for k, v in sd.items() if k.startswith(p) and not k.startswith(longer)}
        outside = {k: v for k, v in sd.items() if not k.startswith(p)}
        parts.append((p, model, outside, is_wrapper_prefix(p, wrappers)))
    return parts


def _strip_common(sd: dict[str, TensorRef], wrappers: tuple[str, ...]) -> tuple[str, dict[str, TensorRef]]:
    # Walks an index over the keys and copies them once at the end: copying every key per stripped prefix
    # took a minute on one key made of 300,000 "module." prefixes.
    pos = 0
    changed = True
    while changed and sd:
        changed = False
        for p in wrappers:
            if p and all(k.startswith(p, pos) for k in sd):
                pos += len(p)
                changed = True
    if not pos:
        return "", sd
    return next(iter(sd))[:pos], {k[pos:]: v for k, v in sd.items()}


def strip_prefix(sd: dict[str, TensorRef]) -> tuple[str, dict[str, TensorRef]]:
    """The model's keys as a loader sees them: ``(stripped prefix, new dict)``.

    With a ConvNeXt backbone, the documented wrapper prefix in front of its first
    key is stripped and keys outside it (the wrapper's own, e.g. ``n_averaged``)
    are dropped; otherwise a documented prefix shared by every key is stripped.
    An undocumented prefix is kept, as a loader would keep it.
    """
    (prefix, model, _outside, documented), *_ = _split_by_anchor(sd, WRAPPER_PREFIXES)
    if not documented:
        return "", dict(sd)
    return prefix, model


def split_final(out: int, joints_hints: tuple[int, ...] = DEFAULT_JOINTS) -> tuple[int | None, int | None]:
    """Split final_layer channels into ``(joints, depth bins)`` using the first joint count that divides."""
    for j in joints_hints:
        if j > 0 and out % j == 0:
            return j, out // j
    return None, None


def final_splits(out: int, joints_hints: tuple[int, ...] = DEFAULT_JOINTS) -> list[tuple[int, int]]:
    """Every ``(joints, depth bins)`` split of ``out`` by a known joint count, in hint order."""
    return [(j, out // j) for j in dict.fromkeys(joints_hints) if j > 0 and out % j == 0]


_STAGE = re.compile(r"backbone\.stages\.(\d+)\.(\d+)\.")
_DECONV = re.compile(r"head\.deconv_layers_(\d+)\.pwconv\.weight")


def fingerprint(obj: Any, joints_hints: tuple[int, ...] = DEFAULT_JOINTS,
                state_dict: StateDict | None = None) -> Fingerprint:
    """Describe the architecture of ``state_dict`` (default: the first candidate in ``obj``).

    Never raises on odd input; top-level facts (epoch, optimizer) come from ``obj``.
    """
    if state_dict is None:
        found = find_state_dicts(obj)
        state_dict = found[0] if found else None
    sd = state_dict.tensors if state_dict is not None else {}
    params = buffers = 0
    dtypes: Counter = Counter()
    for name, t in sd.items():
        if name.endswith(BUFFER_SUFFIXES):
            buffers += t.numel
        else:
            params += t.numel
            dtypes[t.dtype] += t.numel
    # An undocumented prefix is not stripped by loaders: the fingerprint reads past it, but reports none.
    prefix = state_dict.prefix if state_dict is not None and state_dict.documented else ""
    fp: dict[str, Any] = dict(state_dict_key=state_dict.key if state_dict else None,
                              prefix=prefix, tensor_count=len(sd),
                              params=params, buffers=buffers, total=params + buffers, elements=params + buffers,
                              dtype=dtypes.most_common(1)[0][0] if dtypes else None)
    fp.update(_top_level(obj))
    fp.update(_architecture({k: v.shape for k, v in sd.items()}, joints_hints))
    return Fingerprint(**fp)


def _architecture(shape: dict[str, tuple], joints_hints: tuple[int, ...]) -> dict[str, Any]:
    fp: dict[str, Any] = {}
    stem = shape.get(ANCHOR)
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
    for name in shape:
        m = _STAGE.match(name)
        if m:
            blocks.setdefault(int(m[1]), set()).add(int(m[2]))
    if blocks:
        fp["depths"] = tuple(len(blocks.get(i, ())) for i in range(max(blocks) + 1))
    if "backbone.stages.0.0.norm.running_mean" in shape:
        fp["block_norm"] = "batchnorm"
    elif "backbone.stages.0.0.norm.weight" in shape and len(shape.get("backbone.stages.0.0.pwconv1.weight", ())) == 2:
        fp["block_norm"] = "layernorm"
    dw = shape.get("backbone.stages.0.0.dwconv.weight")
    if dw is not None and len(dw) == 4:
        fp["block_kernel"] = dw[-1]
    widths = sorted((int(m[1]), shape[n][0]) for n in shape if (m := _DECONV.fullmatch(n)) and shape[n])
    if widths:
        fp["head_widths"] = tuple(w for _, w in widths)
    hk = shape.get("head.deconv_layers_1.dwconv.weight")
    if hk is not None and len(hk) == 4:
        fp["head_kernel"] = hk[-1]
    final = shape.get("head.final_layer.weight")
    if final is not None and len(final) >= 1:
        fp["final_out"] = final[0]
        splits = final_splits(final[0], joints_hints)
        if splits:
            (fp["joints"], fp["depth_bins"]), rest = splits[0], splits[1:]
            fp["joints_alternatives"] = tuple(rest)
    return fp


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
