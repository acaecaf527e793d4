"""Fit a Wasserstein GAN with gradient penalty (Gulrajani et al. 2017: lambda = 10, 5 critic
steps, Adam 1e-4 with betas (0, 0.9), layer norm in the critic) on images.

The summary's ``wasserstein`` is the critic's estimate of the Wasserstein-1 distance between
data and samples in the last epoch; it falls as the samples improve. Other options as
``bayesdl fit dcgan`` (without ``--loss``).
"""

from __future__ import annotations

from .fit_gan import add_adversarial_arguments, fit_adversarial

HELP = "WGAN-GP: Wasserstein GAN with gradient penalty (convolutional)"
NEEDS_TARGET = False
DATA = "images"


def add_arguments(p) -> None:
    add_adversarial_arguments(p, losses=False, epochs=100)
    p.add_argument("--base-channels", type=int, default=32,
                   help="channels of the first critic / last generator block "
                        "(default: %(default)s)")
    p.add_argument("--gp-weight", type=float, default=10.0,
                   help="gradient-penalty weight lambda (default: %(default)s)")


def fit(args, X, y):
    from ..generative import WGANGP

    return fit_adversarial(WGANGP(base_channels=args.base_channels, gp_weight=args.gp_weight),
                           args, X, y)
