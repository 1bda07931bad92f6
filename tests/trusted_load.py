"""Ask torch about a file the test suite built itself, in a throwaway process: ``python trusted_load.py MODE PATH``.

Only for fixtures this suite wrote with torch (never for the hostile corpus or downloaded files): ``state``
trusts the file (``torch.load(weights_only=False)`` or ``torch.jit.load``) and prints its state dict as
``{name: [dtype, shape, sha256]}``; ``safe_globals NAME...`` imports the named globals, allows them with
``torch.serialization.safe_globals`` and prints whether ``torch.load(weights_only=True)`` then succeeds.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import sys
import warnings


def _describe(t) -> list:
    t = t.detach().contiguous()
    raw = t.reshape(-1).view(__import__("torch").uint8).numpy().tobytes() if t.numel() else b""
    return [str(t.dtype).removeprefix("torch."), list(t.shape), hashlib.sha256(raw).hexdigest()]


def state(path: str) -> dict:
    """The state dict torch itself would give: a module's, a checkpoint's ``state_dict``, or the object's."""
    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        obj = torch.load(path, weights_only=False, map_location="cpu")
    if isinstance(obj, torch.nn.Module):
        sd = obj.state_dict()
    elif isinstance(obj, dict) and "state_dict" in obj:
        sd = obj["state_dict"]
    else:
        sd = obj
    return {k: _describe(v) for k, v in sd.items()}


def _resolve(name: str):
    # The longest importable module prefix, then attributes (omegaconf.base.ContainerMetadata, typing.Any...).
    parts = name.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attr in parts[cut:]:
            obj = getattr(obj, attr)
        return obj
    raise ImportError(name)


def safe_globals(path: str, names: list[str]) -> dict:
    """Whether weights_only loads ``path`` once ``names`` are allowed (with their dotted names as torch spells them)."""
    import torch

    allowed = [(_resolve(n), n) for n in names]
    try:
        with torch.serialization.safe_globals(allowed):
            torch.load(path, weights_only=True, map_location="cpu")
        return {"ok": True, "error": None}
    except Exception as exc:  # torch's refusal is the answer  # noqa: BLE001
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"[-600:]}


if __name__ == "__main__":
    mode, target, *rest = sys.argv[1:]
    out = state(target) if mode == "state" else safe_globals(target, rest)
    print(json.dumps(out))
