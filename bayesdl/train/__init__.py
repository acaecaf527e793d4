"""Training loop for every bayesdl deep model: :class:`Trainer`."""

from .checkpoint import load_checkpoint, save_checkpoint
from ..core.threads import torch_threads
from .trainer import Step, Trainer

__all__ = ["Step", "Trainer", "load_checkpoint", "save_checkpoint", "torch_threads"]
