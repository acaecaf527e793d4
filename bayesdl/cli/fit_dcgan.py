"""Fit a DCGAN (Radford et al. 2016: strided convolutions, batch norm, Adam 2e-4 with
beta1 = 0.5) on images: ``--data digits``, a .npy/.npz or MNIST IDX file, or a folder.

The options are those of ``bayesdl fit gan`` (``--loss``, ``--conditional``,
``--info-codes``, ``--checkpoint-dir``/``--resume``, ...) plus ``--base-channels``.
"""

from __future__ import annotations

from .fit_gan import add_adversarial_arguments, fit_adversarial

HELP = "DCGAN: convolutional GAN (any GAN loss; conditional, InfoGAN)"
NEEDS_TARGET = False
DATA = "images"


def add_arguments(p) -> None:
    add_adversarial_arguments(p, losses=True, epochs=50)
    p.add_argument("--base-channels", type=int, default=32,
                   help="channels of the first critic / last generator block "
                        "(default: %(default)s)")


def fit(args, X, y):
    from ..generative import DCGAN

    return fit_adversarial(DCGAN(args.loss, base_channels=args.base_channels), args, X, y)
