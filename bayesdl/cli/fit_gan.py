"""Fit a GAN with multilayer-perceptron networks on images (``--data digits``, a .npy/.npz or
MNIST IDX file, or a folder of images).

``--loss`` picks the game: ``non-saturating`` (default; Goodfellow et al. 2014), ``minimax``,
``wasserstein-clip`` (WGAN, RMSProp) or ``wasserstein-gp`` (WGAN-GP). ``--conditional`` feeds
the labels to both networks (then ``bayesdl sample --label 3`` draws a 3); ``--info-codes 10 2``
adds InfoGAN's categorical and continuous codes. Without ``--lr`` / ``--n-critic`` each loss
gets its paper's settings. ``--checkpoint-dir`` writes a checkpoint every epoch and
``--resume`` continues an interrupted run exactly; ``--progress`` shows a progress bar.
The critic's per-epoch losses (and its Wasserstein estimate) are printed at the end.
"""

from __future__ import annotations

from .fit import add_generative_options, generative_params

HELP = "GAN with MLP networks (non-saturating, minimax, WGAN, WGAN-GP; conditional, InfoGAN)"
NEEDS_TARGET = False
DATA = "images"


def add_adversarial_arguments(p, *, losses: bool, epochs: int) -> None:
    """The options every GAN target shares (``losses``: offer ``--loss``)."""
    from ..generative.gan import LOSSES

    if losses:
        p.add_argument("--loss", choices=LOSSES, default="non-saturating",
                       help="the adversarial loss (default: %(default)s)")
    p.add_argument("--latent-dim", type=int, default=100,
                   help="dimension of the generator's noise (default: %(default)s)")
    p.add_argument("--conditional", action="store_true",
                   help="class-conditional GAN: the labels go into both networks")
    p.add_argument("--info-codes", type=int, nargs=2, default=None, metavar=("K", "L"),
                   help="InfoGAN codes: K categories and L continuous codes (e.g. 10 2)")
    p.add_argument("--n-critic", type=int, default=None,
                   help="critic updates per generator update (default: the loss's paper value)")
    p.add_argument("--ema-decay", type=float, default=0.999,
                   help="moving average of the generator's weights used for sampling; 0 turns "
                        "it off (default: %(default)s)")
    add_generative_options(p, epochs=epochs, batch_size=64, lr=None)


def fit_adversarial(estimator, args, X, y):
    """Set the shared options on ``estimator``, fit it and summarise the last epoch."""
    estimator.set_params(
        latent_dim=args.latent_dim, conditional=args.conditional,
        info_codes=None if args.info_codes is None else tuple(args.info_codes),
        n_critic=args.n_critic, ema_decay=args.ema_decay or None, **generative_params(args))
    estimator.fit(X, y if args.conditional else None)
    last = estimator.history_[-1]
    summary = {"epochs": estimator.n_iter_}
    summary.update({name.replace("_", " "): float(v) for name, v in last.items()
                    if name != "epoch"})
    return estimator, summary


def add_arguments(p) -> None:
    add_adversarial_arguments(p, losses=True, epochs=50)
    p.add_argument("--hidden", type=int, nargs="+", default=[256, 256],
                   help="hidden layer widths of both networks (default: 256 256)")


def fit(args, X, y):
    from ..generative import GAN

    return fit_adversarial(GAN(args.loss, hidden=tuple(args.hidden)), args, X, y)
