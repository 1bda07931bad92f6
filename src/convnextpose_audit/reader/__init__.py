"""Safe checkpoint reading: torch.load's dispatch, the restricted pickle machine, lazy tensors, limits."""

from .checkpoint import (FORMATS, Checkpoint, Entry, extracted_root, iter_checkpoints, iter_entries, open_checkpoint,
                         refused_refs)
from .limits import DEFAULT_LIMITS, Limits
from .tensor import StorageRef, TensorRef

__all__ = ["FORMATS", "Checkpoint", "Entry", "extracted_root", "iter_checkpoints", "iter_entries", "open_checkpoint",
           "refused_refs", "DEFAULT_LIMITS", "Limits", "StorageRef", "TensorRef"]
