"""Write a checkpoint's weights alone to a clean file: ``.safetensors`` or a weights-only ``.pth``.

Only the state dict is written (prefix stripped unless asked otherwise), every
tensor contiguous and unshared. The output appears atomically: an interrupted
run leaves nothing at the destination.
"""

from __future__ import annotations

import contextlib
import json
import os
import struct
from collections import OrderedDict
from typing import IO, Any, Iterator

from .atomic import atomic_output
from .digest import state_dict_digest
from .errors import ConvertError
from .audit import AuditResult
from .fingerprint import find_state_dict, strip_prefix
from .reader import Checkpoint
from .reader.dtypes import SAFETENSORS_NAMES
from .reader.limits import DEFAULT_LIMITS, Limits
from .reader.tensor import TensorRef


def weights(ckpt: Checkpoint, keep_prefix: bool = False, any_tensors: bool = False) -> "OrderedDict[str, TensorRef]":
    """The checkpoint's state dict, with wrapper prefixes stripped unless ``keep_prefix``.

    A pickled module counts as its ``state_dict()``. With ``any_tensors``, a file
    without a state dict gives every tensor it holds, named by its path (``a/b/0``).
    """
    key, sd = find_state_dict(ckpt.obj)
    if key is None:
        if not any_tensors or not ckpt.tensors():
            raise ConvertError(f"{ckpt.name}: no state dict to convert")
        return OrderedDict(ckpt.tensors())  # a tensor reached by two paths is written under each
    if not keep_prefix:
        _, sd = strip_prefix(sd)
    return OrderedDict(sd)


def rescue_metadata(dropped: list[str]) -> dict[str, str]:
    """Header metadata of a rescued file: the globals of the source that were not carried over (nor run)."""
    return {"cnxp_audit.dropped_globals": json.dumps(dropped),
            "cnxp_audit.rescue": "tensors copied from an inert read of an unsafe source; no global was imported "
                                 "or called"}


def safetensors_metadata(ckpt: Checkpoint, result: AuditResult) -> dict[str, str]:
    """Provenance for the safetensors header: the audit's fingerprint and variant, the source digest."""
    _, sd = find_state_dict(ckpt.obj)
    meta = {"format": "pt", "cnxp_audit.source": os.path.basename(ckpt.name.rsplit("!", 1)[-1]),
            "cnxp_audit.source_digest": "sha256:" + state_dict_digest(sd)["state_dict"]}
    if result.fingerprint is not None:
        meta["cnxp_audit.fingerprint"] = json.dumps(result.fingerprint.to_dict(), sort_keys=True)
    if result.inferred:
        meta["cnxp_audit.variant"] = result.inferred
    return meta


def write_safetensors(sd: "OrderedDict[str, TensorRef]", out: str, metadata: dict[str, str], *,
                      force: bool = False, limits: Limits = DEFAULT_LIMITS) -> None:
    """Write ``sd`` as safetensors (no torch needed), atomically, streaming each tensor's values.

    Refuses (before writing anything) an output whose tensors, viewed through shared or
    stride-0 storages, are larger than ``Limits.max_output_expansion`` times the bytes stored.
    """
    check_expansion(sd, limits)
    header: dict[str, Any] = {"__metadata__": metadata}
    offset = 0
    for name, t in sd.items():
        code = SAFETENSORS_NAMES.get(t.dtype)
        if code is None:
            raise ConvertError(f"{name}: dtype {t.dtype} has no safetensors equivalent")
        header[name] = {"dtype": code, "shape": list(t.shape), "data_offsets": [offset, offset + t.nbytes]}
        offset += t.nbytes
    raw = json.dumps(header, separators=(",", ":")).encode("utf-8")
    raw += b" " * (-len(raw) % 8)  # safetensors aligns the data section to 8 bytes
    with _output(out, force) as fh:
        fh.write(struct.pack("<Q", len(raw)) + raw)
        for t in sd.values():
            for chunk in t.chunks():  # streamed: a stride-0 view never becomes one huge array
                fh.write(memoryview(chunk).cast("B"))


def check_expansion(sd: "OrderedDict[str, TensorRef]", limits: Limits) -> None:
    """Refuse when writing every tensor contiguous would multiply the stored bytes past the limit."""
    stored = sum({id(t.storage): t.storage.nbytes for t in sd.values()}.values())
    logical = sum(t.nbytes for t in sd.values())
    allowed = limits.max_output_expansion * stored + (64 << 20)
    if logical > allowed:
        raise ConvertError(f"the {len(sd)} tensors would write {logical:,} bytes from {stored:,} stored bytes "
                           f"(views of shared or stride-0 storage); over max_output_expansion="
                           f"{limits.max_output_expansion} (at most {allowed:,} bytes)")


def write_pth(sd: "OrderedDict[str, TensorRef]", out: str, *, force: bool = False,
              limits: Limits = DEFAULT_LIMITS) -> None:
    """Write ``sd`` with torch.save as a plain OrderedDict of contiguous tensors (needs torch), atomically."""
    from .reader.tensor import import_torch

    check_expansion(sd, limits)

    torch = import_torch()
    plain = OrderedDict((k, t.torch().detach().clone().contiguous()) for k, t in sd.items())
    with _output(out, force) as fh:
        torch.save(plain, fh)


@contextlib.contextmanager
def _output(out: str, force: bool) -> Iterator[IO[bytes]]:
    if os.path.exists(out) and not force:
        raise ConvertError(f"{out}: already exists (use --force to overwrite)")
    try:
        with atomic_output(out, overwrite=force) as fh:
            yield fh
    except FileExistsError:
        raise ConvertError(f"{out}: appeared while converting; not overwritten") from None
    except OSError as exc:
        raise ConvertError(f"{out}: cannot write ({exc.strerror or exc})") from None


def output_format(out: str, requested: str | None) -> str:
    """``safetensors`` or ``pth``: as requested, else from OUT's extension (``.safetensors`` or anything else)."""
    if requested:
        return requested
    return "safetensors" if out.lower().endswith(".safetensors") else "pth"
