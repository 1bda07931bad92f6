"""Content digests: SHA-256 of each tensor's values and one digest of a whole state dict.

A tensor's digest covers its logical values in C order (so a view, a strided
tensor and a contiguous copy of the same values agree, whatever the container);
the state-dict digest covers the sorted (wrapper-prefix-stripped) names, dtypes,
shapes and tensor digests, so it ignores key order, ``module.``, the wrapper's own keys
(AveragedModel's ``n_averaged``) and optimizer state.
"""

from __future__ import annotations

import hashlib
from typing import Any

from .fingerprint import strip_prefix
from .reader.tensor import TensorRef

_CHUNK = 16 << 20


def tensor_sha256(t: TensorRef) -> str:
    """Hex SHA-256 of the tensor's values, little-endian, C order (streamed: memory stays bounded)."""
    h = hashlib.sha256()
    for chunk in t.chunks(_CHUNK):
        h.update(memoryview(chunk).cast("B"))
    return h.hexdigest()


def state_dict_digest(sd: dict[str, TensorRef]) -> dict[str, Any]:
    """``{"algorithm", "state_dict", "tensors"}``: the combined digest and one per tensor (original names)."""
    _, stripped = strip_prefix(dict(sd))  # may drop the wrapper's own keys (AveragedModel's n_averaged)
    per_tensor = {name: tensor_sha256(t) for name, t in sd.items()}
    by_object = {id(t): per_tensor[name] for name, t in sd.items()}  # stripped keys map by tensor, not position
    by_stripped = {name: by_object[id(t)] for name, t in stripped.items()}
    manifest = hashlib.sha256()
    for name in sorted(stripped):
        t = stripped[name]
        manifest.update(f"{name}\0{t.dtype}\0{','.join(map(str, t.shape))}\0{by_stripped[name]}\n".encode())
    return {"algorithm": "sha256", "state_dict": manifest.hexdigest(), "tensors": per_tensor}
