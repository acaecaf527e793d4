"""Fit a variational autoencoder (Kingma & Welling 2014) on images.

The encoder q(z | x) is a diagonal Gaussian over ``--latent`` dimensions, the decoder
p(x | z) a ``--decoder`` likelihood over the pixels (Bernoulli for intensities in [0, 1] by
default; ``gaussian`` for real values), both MLPs (``--hidden`` widths) or small convnets
(``--architecture conv``, images of at least 8x8). Training maximises the ELBO (``--beta``
weighs its KL term, ``--kl-warmup`` raises that weight from 0 over the first epochs) or, with
``--iwae-k`` above 1, the importance-weighted bound of Burda et al. (2015).
``--conditional`` trains a conditional VAE on the data's labels (``bayesdl sample --label``
then draws one class). Sample the saved model with ``bayesdl sample --model M -n 64 --out
grid.png``.
"""

from __future__ import annotations

from ..generative import ConditionalVAE, VAE
from ..generative.likelihoods import LIKELIHOODS
from .fit import add_generative_options, generative_params
from .fit_bnn import _hidden

HELP = "variational autoencoder (or conditional VAE) on images"
NEEDS_TARGET = False
DATA = "images"


def add_arguments(p) -> None:
    p.add_argument("--latent", type=int, default=2,
                   help="latent dimensions (default: %(default)s)")
    p.add_argument("--conditional", action="store_true",
                   help="a conditional VAE on the data's class labels")
    p.add_argument("--decoder", choices=sorted(LIKELIHOODS), default="bernoulli",
                   help="likelihood p(x | z) of the pixels (default: %(default)s)")
    p.add_argument("--architecture", choices=["mlp", "conv"], default="mlp",
                   help="encoder/decoder networks (default: %(default)s)")
    p.add_argument("--hidden", default="256,128",
                   help="comma-separated hidden widths of the MLP encoder; the decoder mirrors "
                        "them (default: %(default)s)")
    p.add_argument("--beta", type=float, default=1.0,
                   help="weight of the KL term (beta-VAE; default: %(default)s)")
    p.add_argument("--kl-warmup", type=float, default=0.0,
                   help="epochs over which the KL weight rises from 0 (default: %(default)s)")
    p.add_argument("--iwae-k", type=int, default=1,
                   help="importance samples of the training bound; 1 = the ELBO "
                        "(default: %(default)s)")
    p.add_argument("--binarize", choices=["static", "dynamic"], default=None,
                   help="binarise the images for the Bernoulli decoder (default: none)")
    add_generative_options(p, epochs=50, batch_size=128, lr=1e-3)


def fit(args, X, y):
    cls = ConditionalVAE if args.conditional else VAE
    model = cls(latent_dim=args.latent, architecture=args.architecture,
                hidden_sizes=_hidden(args.hidden), decoder=args.decoder, beta=args.beta,
                kl_warmup=args.kl_warmup, n_importance_samples=args.iwae_k,
                binarize=args.binarize, **generative_params(args))
    labels = y if args.conditional else None
    model.fit(X, labels)
    return model, {"model": cls.__name__, "epochs": model.n_iter_,
                   "ELBO per image (training data, nats)": float(
                       model.elbo(X, labels, n_samples=10).mean())}
