"""The torch side: a long-lived process that imports torch once and forks a child per load.

Run as ``python -m differential.oracle_worker`` with ``tests/`` on ``sys.path``;
it speaks length-prefixed pickles on stdin/stdout (both ends are this harness).
Each load runs in a forked child, inside a fresh empty folder, with its output
thrown away; the parent kills it after the timeout and then looks for the
payload's sentinel in that folder. Modes:

- ``A``: ``torch.load(p, weights_only=False)``: did the sentinel appear? did it load?
- ``B``: ``torch.load(p, weights_only=True)``: the tensors, flattened like ``Checkpoint.tensors()``;
- ``C``: the same with ``weights_only=False`` (torch < 2.6's default), for payload-free files only.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import select
import shutil
import signal
import struct
import sys
import tempfile
import time
import traceback
import warnings

from .pickles import SENTINEL

TORCHSCRIPT_HINT = "TorchScript archive"


def _flatten(torch, obj) -> list:
    """``[(path, (dtype, shape, stride, storage_offset, sha256))]``: dict keys and list indices joined by '/'.

    Containers reached twice are walked once; a tensor is listed at every path
    it is reached by (the convention of ``Checkpoint.tensors()``).
    """
    out, seen, stack = [], set(), [("", obj)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, torch.Tensor):
            out.append((path, _describe(torch, value)))
            continue
        if isinstance(value, dict):
            children = [(f"{path}/{k}" if path else str(k), v) for k, v in value.items()]
        elif isinstance(value, (list, tuple, set, frozenset)):
            children = [(f"{path}/{i}" if path else str(i), v) for i, v in enumerate(value)]
        else:
            continue
        if id(value) in seen:
            continue
        seen.add(id(value))
        stack.extend(reversed(children))
    return out


def _describe(torch, t) -> tuple:
    t = t.detach()
    dtype = str(t.dtype).removeprefix("torch.")
    if t.layout != torch.strided or t.is_quantized:
        return (dtype, tuple(t.shape), None, None, f"unsupported layout {t.layout}")
    flat = t.contiguous().reshape(-1)
    raw = flat.view(torch.uint8).numpy().tobytes() if flat.numel() else b""
    return (dtype, tuple(t.shape), tuple(t.stride()), t.storage_offset(), hashlib.sha256(raw).hexdigest())


def _child(path: str, mode: str) -> dict:
    import torch

    result: dict = {"ok": False, "error": None, "torchscript": False}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            obj = torch.load(path, weights_only=(mode == "B"), map_location="cpu")
            result["ok"] = True
            if mode in ("B", "C"):
                result["tensors"] = _flatten(torch, obj)
        except BaseException as exc:  # the loader's own failure is data here  # noqa: BLE001
            result["error"] = f"{type(exc).__name__}: {exc}"[:400]
    messages = [str(w.message) for w in caught]
    result["torchscript"] = any(TORCHSCRIPT_HINT in m for m in messages) or TORCHSCRIPT_HINT in (result["error"] or "")
    return result


def sandboxed(path: str, mode: str, timeout: float) -> dict:
    """Run one load in a forked child inside an empty folder; report its result and the sentinel."""
    folder = tempfile.mkdtemp(prefix="cnxp-oracle-")
    r, w = os.pipe()
    start = time.monotonic()
    pid = os.fork()
    if pid == 0:  # child
        code = 0
        try:
            os.close(r)
            os.chdir(folder)
            devnull = os.open(os.devnull, os.O_RDWR)
            os.dup2(devnull, 1)
            os.dup2(devnull, 2)
            payload = pickle.dumps(_child(path, mode))
            os.write(w, struct.pack("<I", len(payload)))
            view = memoryview(payload)
            while view:
                view = view[os.write(w, view):]
        except BaseException:  # noqa: BLE001
            code = 3
        os._exit(code)
    os.close(w)
    chunks, timed_out = [], False
    while True:
        left = timeout - (time.monotonic() - start)
        if left <= 0:
            timed_out = True
            break
        ready, _, _ = select.select([r], [], [], left)
        if not ready:
            continue
        chunk = os.read(r, 1 << 16)
        if not chunk:
            break
        chunks.append(chunk)
    os.close(r)
    if timed_out:
        os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    data = b"".join(chunks)
    if timed_out:
        result = {"ok": False, "error": f"timeout after {timeout:g} s", "torchscript": False, "timeout": True}
    elif len(data) >= 4 and len(data) == 4 + struct.unpack_from("<I", data)[0]:
        result = pickle.loads(data[4:])
    else:
        result = {"ok": False, "error": f"child died (status {status})", "torchscript": False, "crashed": True}
    result["sentinel"] = os.path.lexists(os.path.join(folder, SENTINEL))
    result["seconds"] = time.monotonic() - start
    shutil.rmtree(folder, ignore_errors=True)
    return result


def _read_frame(stream) -> object:
    head = stream.read(4)
    if len(head) < 4:
        return None
    (n,) = struct.unpack("<I", head)
    return pickle.loads(stream.read(n))


def _write_frame(stream, obj) -> None:
    data = pickle.dumps(obj)
    stream.write(struct.pack("<I", len(data)) + data)
    stream.flush()


def main() -> None:
    """Serve requests until stdin closes: ``{"op": "seeds"}``, ``{"op": "load", ...}``, ``{"op": "version"}``."""
    channel = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # stray prints from torch must not corrupt the channel
    import torch

    torch.set_num_threads(1)
    warnings.simplefilter("ignore")
    while True:
        req = _read_frame(sys.stdin.buffer)
        if req is None:
            return
        try:
            if req["op"] == "load":
                reply = sandboxed(req["path"], req["mode"], req.get("timeout", 10.0))
            elif req["op"] == "seeds":
                from .seeds import torch_parts
                reply = torch_parts()
            elif req["op"] == "version":
                reply = {"torch": torch.__version__, "python": sys.version.split()[0]}
            else:
                reply = {"error": f"unknown op {req['op']!r}"}
        except Exception:  # report, keep serving  # noqa: BLE001
            reply = {"error": traceback.format_exc()}
        _write_frame(channel, reply)


if __name__ == "__main__":
    main()
