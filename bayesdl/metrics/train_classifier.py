"""Train the shipped digits classifier: ``python -m bayesdl.metrics.train_classifier``.

The network (:class:`bayesdl.metrics.digits_classifier.DigitsCNN`) is trained by
:class:`bayesdl.train.Trainer` on the training part of the fixed split of the bundled digits
(:func:`bayesdl.datasets.images.split_images`, the split ``bayesdl fit`` uses), with random
shifts of up to one pixel and a little pixel noise so that it classifies generated digits
(blurred, slightly off-centre, noisy) robustly. Adam with a cosine learning-rate decay runs a
fixed number of epochs (the validation accuracy is only monitored); the test accuracy, the
split and this command are written into the weights file beside the weights.

Options: ``--epochs``, ``--seed``, ``--out`` (default: the file inside the package).
"""

from __future__ import annotations

import argparse
import sys
import time

import torch
from torch.nn import functional as F

from .digits_classifier import DigitsCNN, weights_path

# the augmentation: shifts of up to MAX_SHIFT pixels, Gaussian pixel noise of sd up to NOISE_SD
MAX_SHIFT = 1
NOISE_SD = 0.1


def digits_split():
    """The bundled digits in [0, 1] ``(1797, 1, 8, 8)``, labels and the fixed split indices.

    The split is :func:`bayesdl.datasets.images.split_images` with its defaults, the one
    ``bayesdl fit`` trains image models on, so the classifier never saw the test images
    the generative models are evaluated against.
    """
    from ..datasets.images import load_digits_images, split_images

    images, labels = load_digits_images()
    X = torch.as_tensor(images, dtype=torch.float32).unsqueeze(1)  # (N, 1, 8, 8)
    y = torch.as_tensor(labels, dtype=torch.long)
    return X, y, split_images(images, labels)


def augment(x: torch.Tensor) -> torch.Tensor:
    """Shift each image by up to :data:`MAX_SHIFT` pixels (zero fill) and add clipped noise.

    ``x``: ``(B, 1, H, W)``; uses the global torch RNG, which the Trainer seeds per run.
    """
    B, _, H, W = x.shape
    s = MAX_SHIFT
    padded = F.pad(x, (s, s, s, s))  # (B, 1, H + 2s, W + 2s)
    dy, dx = torch.randint(0, 2 * s + 1, (2, B, 1), device=x.device)  # offsets of the crop
    rows = dy + torch.arange(H, device=x.device)  # (B, H)
    cols = dx + torch.arange(W, device=x.device)  # (B, W)
    shifted = padded[torch.arange(B, device=x.device)[:, None, None], 0, rows[:, :, None],
                     cols[:, None, :]]  # (B, H, W)
    sd = NOISE_SD * torch.rand(B, 1, 1, device=x.device)  # a noise level per image
    return (shifted + sd * torch.randn_like(shifted)).clamp(0, 1).unsqueeze(1)


def _loss(model, batch, step):
    x, y = batch
    return F.cross_entropy(model(augment(x)), y)


def _accuracy(model, x, y) -> float:
    model.eval()
    with torch.no_grad():
        return (model(x).argmax(1) == y).double().mean().item()


def train(epochs: int = 60, seed: int = 0, progress: bool = True):
    """Train on the fixed split; returns ``(net, record)`` with the accuracies and split."""
    from ..train import Trainer

    X, y, (train_idx, val_idx, test_idx) = digits_split()
    torch.manual_seed(seed)  # the initial weights
    net = DigitsCNN()
    Xv, yv = X[val_idx], y[val_idx]
    trainer = Trainer(net, _loss, lr=2e-3, max_epochs=epochs, batch_size=64, seed=seed,
                      scheduler=lambda opt: torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs),
                      val_metric=lambda model, loader: _accuracy(model, Xv, yv), val_mode="max",
                      progress=progress, device="cpu")
    trainer.fit((X[train_idx], y[train_idx]), (Xv, yv))
    record = {
        "test_accuracy": _accuracy(net, X[test_idx], y[test_idx]),
        "val_accuracy": _accuracy(net, Xv, yv),
        "train_accuracy": _accuracy(net, X[train_idx], y[train_idx]),
        "epochs": epochs,
        "seed": seed,
        "split": {"function": "bayesdl.datasets.images.split_images (defaults)",
                  "n_train": len(train_idx), "n_val": len(val_idx), "n_test": len(test_idx)},
        "augmentation": {"max_shift": MAX_SHIFT, "noise_sd": NOISE_SD},
        "architecture": {"channels": list(net.channels), "n_features": net.head.in_features,
                         "n_classes": net.head.out_features, "dropout": net.dropout.p},
    }
    return net, record


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bayesdl.metrics.train_classifier",
                                description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=int, default=60)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="weights file (default: the shipped one)")
    args = p.parse_args(argv)
    from ..io import write_safetensors

    torch.set_num_threads(1)
    start = time.perf_counter()
    net, record = train(args.epochs, args.seed)
    record["train_seconds"] = round(time.perf_counter() - start, 1)
    record["command"] = ("python -m bayesdl.metrics.train_classifier "
                         f"--epochs {args.epochs} --seed {args.seed}")
    out = args.out or str(weights_path())
    tensors = {k: v.detach().contiguous() for k, v in net.state_dict().items()}
    write_safetensors(out, tensors, record)
    print({k: v for k, v in record.items() if k != "architecture"})
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
