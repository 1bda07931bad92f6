"""Compare two checkpoints' state dicts: keys, shapes, dtypes and values, one tensor at a time."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from .fingerprint import Fingerprint, find_state_dict, fingerprint, strip_prefix
from .reader import Checkpoint
from .reader.tensor import TensorRef
from .variants import FEATURES, Difference


@dataclass
class TensorDiff:
    """How one tensor present in both files compares."""

    name: str
    identical: bool
    max_abs: float | None = None  #: None when values are not numeric (raw-bit dtypes)
    max_rel: float | None = None


@dataclass
class Comparison:
    """The outcome of :func:`compare` and its one-line conclusion."""

    a: str
    b: str
    only_a: list[str] = field(default_factory=list)
    only_b: list[str] = field(default_factory=list)
    changed: list[dict[str, Any]] = field(default_factory=list)  #: shape/dtype changes
    tensors: list[TensorDiff] = field(default_factory=list)
    architecture: list[str] = field(default_factory=list)  #: fingerprint differences
    prefixes: tuple[str, str] = ("", "")
    #: shape of every tensor present on one side only (``only_a`` and ``only_b``), for the summary
    shapes: dict[str, list[int]] = field(default_factory=dict)

    @property
    def identical(self) -> bool:
        """Same keys, shapes and dtypes, and every tensor's bytes equal."""
        return not (self.only_a or self.only_b or self.changed) and all(t.identical for t in self.tensors)

    @property
    def conclusion(self) -> str:
        """``identical weights`` · ``same architecture, different weights`` · ``different architecture (...)``."""
        if self.identical:
            return "identical weights"
        if self.architecture or self.only_a or self.only_b or self.changed:
            detail = "; ".join(self.architecture) or f"{len(self.only_a) + len(self.only_b) + len(self.changed)} " \
                                                      "keys differ in presence, shape or dtype"
            return f"different architecture ({detail})"
        n = sum(not t.identical for t in self.tensors)
        return f"same architecture, different weights ({n} of {len(self.tensors)} tensors differ)"


def _as_float(t: TensorRef, chunk):
    """A chunk's values as float64 (or complex128) for numeric comparison; None for dtypes kept as raw bits."""
    import numpy as np

    if t.dtype == "bfloat16":
        return (np.asarray(chunk, dtype=np.uint32) << 16).view(np.float32).astype(np.float64)
    if not t._dtype.exact:
        return None
    return chunk.astype(np.complex128 if chunk.dtype.kind == "c" else np.float64)


_CHUNK = 8 << 20


def compare_tensors(name: str, a: TensorRef, b: TensorRef) -> TensorDiff:
    """Compare two same-shape, same-dtype tensors chunk by chunk (bounded memory, mapped where possible)."""
    import numpy as np

    identical, max_abs, max_rel, numeric = True, 0.0, 0.0, True
    for x, y in zip(a.chunks(_CHUNK), b.chunks(_CHUNK)):
        if np.array_equal(x.view(np.uint8), y.view(np.uint8)):
            continue
        identical = False
        fx, fy = _as_float(a, x), _as_float(b, y)
        if fx is None:
            numeric = False
            continue
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            delta = np.abs(fx - fy)
            denom = np.maximum(np.abs(fy), np.finfo(np.float64).tiny)
            max_abs = max(max_abs, float(np.nanmax(delta)))
            max_rel = max(max_rel, float(np.nanmax(delta / denom)))
    if identical:
        return TensorDiff(name, True, 0.0, 0.0)
    return TensorDiff(name, False, max_abs, max_rel) if numeric else TensorDiff(name, False)


def compare(a: Checkpoint, b: Checkpoint, joints_hints: tuple[int, ...] | None = None) -> Comparison:
    """Compare the state dicts of two open checkpoints (wrapper prefixes stripped on both sides)."""
    _, sda = find_state_dict(a.obj)
    _, sdb = find_state_dict(b.obj)
    pa, sda = strip_prefix(sda)
    pb, sdb = strip_prefix(sdb)
    out = Comparison(a.name, b.name, prefixes=(pa, pb))
    out.only_a = [k for k in sda if k not in sdb]
    out.only_b = [k for k in sdb if k not in sda]
    out.shapes = {k: list(sda[k].shape) for k in out.only_a} | {k: list(sdb[k].shape) for k in out.only_b}
    for name, ta in sda.items():
        tb = sdb.get(name)
        if tb is None:
            continue
        if ta.shape != tb.shape or ta.dtype != tb.dtype:
            out.changed.append({"name": name, "a": {"dtype": ta.dtype, "shape": list(ta.shape)},
                                "b": {"dtype": tb.dtype, "shape": list(tb.shape)}})
        else:
            out.tensors.append(compare_tensors(name, ta, tb))
    kw = {} if joints_hints is None else {"joints_hints": joints_hints}
    out.architecture = architecture_differences(fingerprint(a.obj, **kw), fingerprint(b.obj, **kw))
    return out


def architecture_differences(fa: Fingerprint, fb: Fingerprint) -> list[str]:
    """Fingerprint features that differ, as ``head widths 256,256,256 vs 512,512,512``."""
    return [str(Difference(f, getattr(fa, f), getattr(fb, f))) for f in FEATURES if getattr(fa, f) != getattr(fb, f)]


# ----------------------------------------------------------------------------------- summary
@dataclass
class ChangeClass:
    """Tensors that changed the same way in the same part of the model, e.g. 4 head layers 256→512."""

    kind: str  #: ``shape`` (shape and/or dtype), ``values``, ``only_a`` or ``only_b``
    part: str  #: first component of the tensor names (``head``, ``backbone``); ``""`` for ``fc.weight``
    detail: str  #: the distinct changes, ``40→48, 80→96``, ``float32→float16``; empty for values and one-sided
    layers: list[str] = field(default_factory=list)  #: distinct layers (see :func:`layer_of`)
    tensors: int = 0
    max_abs: float | None = None  #: the largest value difference (``values`` only)


@dataclass
class Change:
    """One changed tensor, ranked by ``size`` (elements gained or lost) or by value difference."""

    name: str
    kind: str  #: as :attr:`ChangeClass.kind`
    shape_a: list[int] | None = None
    shape_b: list[int] | None = None
    dtype_a: str | None = None
    dtype_b: str | None = None
    size: int = 0  #: |elements in B - elements in A|
    max_abs: float | None = None
    max_rel: float | None = None


@dataclass
class DiffSummary:
    """What changed between two state dicts, small enough for one screen."""

    identical: int
    changed_shape: int  #: shape or dtype differs
    changed_values: int  #: same shape and dtype, different bytes
    only_a: int
    only_b: int
    classes: list[ChangeClass]
    top: list[Change]  #: structural changes by size, then value changes by max abs difference
    total_changes: int


def layer_of(name: str) -> str:
    """The layer a tensor belongs to: its name up to the first component holding a digit (and
    the numeric components right after it), e.g. ``backbone.stages.2.5``,
    ``head.deconv_layers_1``; without digits, the first two components (``head.final_layer``)."""
    parts = name.split(".")
    for i, part in enumerate(parts[:-1]):
        if any(ch.isdigit() for ch in part):
            end = i + 1
            while end < len(parts) - 1 and parts[end].isdigit():
                end += 1
            return ".".join(parts[:end])
    return ".".join(parts[:max(1, min(2, len(parts) - 1))])


def _shape_details(ch: dict[str, Any]) -> list[str]:
    """How one tensor changed: ``float32→float16`` and/or each differing dimension ``256→512``."""
    a, b = ch["a"], ch["b"]
    out = [f"{a['dtype']}→{b['dtype']}"] if a["dtype"] != b["dtype"] else []
    if len(a["shape"]) != len(b["shape"]):
        out.append(f"{a['shape']}→{b['shape']}")
    else:
        out += [f"{x}→{y}" for x, y in zip(a["shape"], b["shape"]) if x != y]
    return out


def _detail_order(item: str) -> tuple:
    head = item.split("→", 1)[0]
    return (0, int(head), item) if head.isdigit() else (1, 0, item)


def _changes(c: Comparison) -> list[Change]:
    """Every change, unranked: shape/dtype, one-sided, then value changes."""
    out = [Change(ch["name"], "shape", ch["a"]["shape"], ch["b"]["shape"], ch["a"]["dtype"], ch["b"]["dtype"],
                  size=abs(math.prod(ch["b"]["shape"]) - math.prod(ch["a"]["shape"]))) for ch in c.changed]
    out += [Change(k, "only_a", shape_a=c.shapes.get(k), size=math.prod(c.shapes.get(k, ()))) for k in c.only_a]
    out += [Change(k, "only_b", shape_b=c.shapes.get(k), size=math.prod(c.shapes.get(k, ()))) for k in c.only_b]
    out += [Change(t.name, "values", max_abs=t.max_abs, max_rel=t.max_rel) for t in c.tensors if not t.identical]
    return out


#: Distinct changes named in one class line (``40→48, 80→96, …``).
MAX_DETAILS = 6


def _classes(c: Comparison, changes: list[Change]) -> list[ChangeClass]:
    """One class per kind of change and part of the model (``head``, ``backbone``), in first-seen order."""
    details = {ch["name"]: _shape_details(ch) for ch in c.changed}
    classes: dict[tuple[str, str], ChangeClass] = {}
    seen: dict[tuple[str, str], dict[str, None]] = {}  # ordered sets: details, then layers
    layers: dict[tuple[str, str], dict[str, None]] = {}
    for change in changes:
        names = change.name.split(".")
        part = names[0] if len(names) >= 3 else ""  # "fc.weight" is a layer of no named part
        key = (change.kind, part)
        cls = classes.setdefault(key, ChangeClass(change.kind, part, ""))
        seen.setdefault(key, {}).update(dict.fromkeys(details.get(change.name, ())))
        layers.setdefault(key, {})[layer_of(change.name)] = None
        cls.tensors += 1
        if change.max_abs is not None:
            cls.max_abs = max(cls.max_abs or 0.0, change.max_abs)
    for key, cls in classes.items():
        items = sorted(seen[key], key=_detail_order)
        cls.detail = ", ".join(items[:MAX_DETAILS]) + (", …" if len(items) > MAX_DETAILS else "")
        cls.layers = list(layers[key])
    return list(classes.values())


def summarize(c: Comparison, top: int | None = 10) -> DiffSummary:
    """Counts, one :class:`ChangeClass` per kind of change and part of the model, and the
    ``top`` changes (None: all of them): structural ones by elements gained or lost, then
    value changes by their maximum absolute difference."""
    changes = _changes(c)
    structural = sorted((ch for ch in changes if ch.kind != "values"), key=lambda ch: -ch.size)
    values = sorted((ch for ch in changes if ch.kind == "values"),
                    key=lambda ch: (ch.max_abs is None, -(ch.max_abs or 0.0)))
    return DiffSummary(
        identical=sum(t.identical for t in c.tensors), changed_shape=len(c.changed), changed_values=len(values),
        only_a=len(c.only_a), only_b=len(c.only_b), classes=_classes(c, changes), top=(structural + values)[:top],
        total_changes=len(changes))
