"""convnextpose-audit: open PyTorch pose-model checkpoints without trusting them.

The metadata path (everything importable from here) imports neither torch nor numpy.
"""

from .reader import Checkpoint, Limits, TensorRef, iter_checkpoints, open_checkpoint

__version__ = "0.1.0"

__all__ = ["Checkpoint", "Limits", "TensorRef", "iter_checkpoints", "open_checkpoint", "__version__"]
