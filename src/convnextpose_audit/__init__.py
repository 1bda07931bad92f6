"""convnextpose-audit: open PyTorch pose-model checkpoints without trusting them.

The metadata path imports neither torch nor numpy; names below load on first use
so that ``cnxp-audit`` starts fast.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "Checkpoint": "reader", "Limits": "reader", "TensorRef": "reader", "iter_checkpoints": "reader",
    "open_checkpoint": "reader", "check": "api", "load_model": "api",
}

__all__ = [*_EXPORTS, "__version__"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'convnextpose_audit' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value
