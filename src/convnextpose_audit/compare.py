"""Compare two checkpoints' state dicts: keys, shapes, dtypes and values, one tensor at a time."""

from __future__ import annotations

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


def _as_float(t: TensorRef):
    """Values as float64 for numeric comparison, or None for dtypes kept as raw bits."""
    import numpy as np

    arr = t.numpy()
    if t.dtype == "bfloat16":
        return (np.asarray(arr, dtype=np.uint32) << 16).view(np.float32).astype(np.float64)
    if not t._dtype.exact:
        return None
    if arr.dtype.kind == "c":
        return arr.astype(np.complex128)
    return arr.astype(np.float64)


def compare_tensors(name: str, a: TensorRef, b: TensorRef) -> TensorDiff:
    """Compare two same-shape, same-dtype tensors; reads each one's bytes once (mapped where possible)."""
    import numpy as np

    x, y = a.numpy(), b.numpy()
    if np.array_equal(np.ascontiguousarray(x).view(np.uint8), np.ascontiguousarray(y).view(np.uint8)):
        return TensorDiff(name, True, 0.0, 0.0)
    fx, fy = _as_float(a), _as_float(b)
    if fx is None or fx.size == 0:
        return TensorDiff(name, False)
    with np.errstate(invalid="ignore", divide="ignore"):
        delta = np.abs(fx - fy)
        max_abs = float(np.nanmax(delta)) if delta.size else 0.0
        denom = np.maximum(np.abs(fy), np.finfo(np.float64).tiny)
        max_rel = float(np.nanmax(delta / denom)) if delta.size else 0.0
    return TensorDiff(name, False, max_abs, max_rel)


def compare(a: Checkpoint, b: Checkpoint, joints_hints: tuple[int, ...] | None = None) -> Comparison:
    """Compare the state dicts of two open checkpoints (wrapper prefixes stripped on both sides)."""
    _, sda = find_state_dict(a.obj)
    _, sdb = find_state_dict(b.obj)
    pa, sda = strip_prefix(sda)
    pb, sdb = strip_prefix(sdb)
    out = Comparison(a.name, b.name, prefixes=(pa, pb))
    out.only_a = [k for k in sda if k not in sdb]
    out.only_b = [k for k in sdb if k not in sda]
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
