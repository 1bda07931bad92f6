"""convnextpose-audit: open PyTorch pose-model checkpoints without trusting them.

The metadata path (everything importable from here) imports neither torch nor numpy.
"""

from .api import check, load_model
from .reader import Checkpoint, Limits, TensorRef, iter_checkpoints, open_checkpoint

__version__ = "0.1.0"

__all__ = ["Checkpoint", "Limits", "TensorRef", "check", "iter_checkpoints", "load_model", "open_checkpoint",
           "__version__"]
