"""Safe checkpoint reading: containers, the restricted unpickler, lazy tensors, limits."""

from .checkpoint import FORMATS, Checkpoint, Entry, iter_checkpoints, iter_entries, open_checkpoint
from .limits import DEFAULT_LIMITS, Limits
from .tensor import StorageRef, TensorRef

__all__ = ["FORMATS", "Checkpoint", "Entry", "iter_checkpoints", "iter_entries", "open_checkpoint",
           "DEFAULT_LIMITS", "Limits", "StorageRef", "TensorRef"]
