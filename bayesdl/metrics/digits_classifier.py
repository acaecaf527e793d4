"""The shipped 8x8 digits classifier whose features the sample-quality metrics compare.

Inception-v3 (the network behind FID and KID) cannot be downloaded here and knows nothing of
8x8 digits, so bayesdl ships a small convolutional network trained on the bundled digits
(``python -m bayesdl.metrics.train_classifier`` rewrites its weights; the command, the
train/validation/test split and the test accuracy are stored in the weights file and
recorded in docs/benchmarks.md). Its penultimate layer (:data:`N_FEATURES` ReLU units) plays
the role of Inception's pool3 features.

The weights are a checksummed safetensors file inside the package, read with
:func:`bayesdl.io.read_safetensors` (never pickle).
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

import numpy as np
import torch
from torch import nn

IMAGE_SHAPE = (8, 8)
N_PIXELS = 64
N_FEATURES = 64
N_CLASSES = 10
WEIGHTS_FILE = "digits_cnn.safetensors"
# rows scored per forward pass: bounds the memory of feature extraction on large sets
_CHUNK = 4096


class DigitsCNN(nn.Module):
    """Two 3x3 convolutions, a 2x2 max-pool and a ``n_features``-unit hidden layer.

    ``features(x)`` maps images ``(N, 1, 8, 8)`` in [0, 1] to the penultimate ReLU layer
    ``(N, n_features)``; ``forward(x)`` returns the class logits ``(N, n_classes)``.
    """

    def __init__(self, channels: tuple[int, int] = (32, 64), n_features: int = N_FEATURES,
                 n_classes: int = N_CLASSES, dropout: float = 0.25):
        super().__init__()
        c1, c2 = channels
        self.channels = (c1, c2)
        self.body = nn.Sequential(
            nn.Conv2d(1, c1, 3, padding=1), nn.ReLU(),   # (N, c1, 8, 8)
            nn.Conv2d(c1, c2, 3, padding=1), nn.ReLU(),  # (N, c2, 8, 8)
            nn.MaxPool2d(2), nn.Flatten(),               # (N, c2 * 4 * 4)
            nn.Linear(c2 * 4 * 4, n_features), nn.ReLU(),  # (N, F): the features
        )
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(n_features, n_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.body(x)))


def weights_path():
    """Where the shipped weights live inside the installed package (a ``Traversable``)."""
    return resources.files(__package__) / "weights" / WEIGHTS_FILE


@lru_cache(maxsize=1)
def load_digits_classifier() -> tuple[DigitsCNN, dict]:
    """The shipped classifier (eval mode, float32, CPU) and its training record.

    The record (a dict) holds ``test_accuracy``, ``val_accuracy``, ``command`` (how the
    weights were made), ``split`` (seed and fractions of the train/validation/test split of
    :func:`bayesdl.datasets.load_digits`) and the architecture arguments. Loaded once per
    process; do not modify the returned network.
    """
    from ..io import read_safetensors

    with resources.as_file(weights_path()) as path:
        config, tensors = read_safetensors(path, what="digits classifier weights")
    net = DigitsCNN(**config["architecture"])
    net.load_state_dict(tensors)
    net.eval()
    for p in net.parameters():
        p.requires_grad_(False)
    return net, config


def as_digit_images(x, name: str = "images") -> torch.Tensor:
    """Check 8x8 digits in [0, 1] and return them as a float32 tensor ``(N, 1, 8, 8)``.

    Accepts numpy arrays or torch tensors shaped ``(N, 64)`` (rows, as
    ``load_digits().data / 16``), ``(N, 8, 8)`` or ``(N, 1, 8, 8)``.
    """
    from .._base import check_dense

    check_dense(x, name)
    if isinstance(x, torch.Tensor):
        t = x.detach().cpu().to(torch.float32)
    else:
        try:
            t = torch.from_numpy(np.array(x, dtype=np.float32))  # a copy: any strides
        except (TypeError, ValueError) as e:
            raise ValueError(f"{name} must be an array of pixel values: {e}") from None
    if not (t.dim() == 2 and t.shape[1] == N_PIXELS
            or t.dim() == 3 and tuple(t.shape[1:]) == IMAGE_SHAPE
            or t.dim() == 4 and tuple(t.shape[1:]) == (1, *IMAGE_SHAPE)):
        raise ValueError(
            f"{name} must be 8x8 digits shaped (N, 64), (N, 8, 8) or (N, 1, 8, 8), got shape "
            f"{tuple(t.shape)}. The shipped classifier only knows the bundled 8x8 digits; for "
            "other data pass features=your_feature_extractor.")
    t = t.reshape(-1, 1, *IMAGE_SHAPE)
    if len(t) == 0:
        raise ValueError(f"{name} is empty: give at least one image.")
    if not torch.isfinite(t).all():
        raise ValueError(f"{name} contains NaN or infinite values; remove or replace them.")
    lo, hi = t.min().item(), t.max().item()
    if lo < 0 or hi > 1:
        raise ValueError(
            f"{name} must have pixel values in [0, 1], got [{lo:.4g}, {hi:.4g}]. Divide "
            "load_digits() pixels (0-16) by 16 and 0-255 images by 255; clip model samples "
            "that overshoot with np.clip(x, 0, 1).")
    return t


def _apply(fn, images: torch.Tensor) -> np.ndarray:
    with torch.no_grad():
        out = [fn(chunk) for chunk in torch.split(images, _CHUNK)]
    return torch.cat(out).double().numpy()


def digits_features(x) -> np.ndarray:
    """Penultimate-layer features ``(N, 64)`` (float64) of the shipped digits classifier.

    ``x``: 8x8 digits in [0, 1], shaped ``(N, 64)``, ``(N, 8, 8)`` or ``(N, 1, 8, 8)``.
    The default feature map of every metric in :mod:`bayesdl.metrics`.
    """
    net, _ = load_digits_classifier()
    return _apply(net.features, as_digit_images(x))


def digits_logits(x) -> np.ndarray:
    """Class logits ``(N, 10)`` of the shipped digits classifier (inputs as in
    :func:`digits_features`); ``argmax`` over the last axis is the predicted digit."""
    net, _ = load_digits_classifier()
    return _apply(net, as_digit_images(x))
