"""Fit a restricted Boltzmann machine on images by contrastive divergence.

Bernoulli visible units (default) take images with values in [0, 1] (grey levels are read as
probabilities); ``--visible gaussian`` standardises each pixel and models it with a unit
variance Gaussian. Training is CD-k (``--cd-k``) or persistent CD (``--persistent``, Tieleman
2008) with SGD and momentum; afterwards log Z is computed by annealed importance sampling
(exactly, by enumeration, for at most 16 hidden units), so the printed log-likelihood is a
real (estimated) log-likelihood. The pseudo-likelihood that scikit-learn's BernoulliRBM
reports is printed beside it, under its own name.
"""

from __future__ import annotations

from .fit import add_generative_options, generative_params

HELP = "restricted Boltzmann machine (Bernoulli or Gaussian visibles, CD-k or persistent CD)"
NEEDS_TARGET = False
DATA = "images"


def add_arguments(p) -> None:
    p.add_argument("--hidden", type=int, default=64,
                   help="number of binary hidden units (default: %(default)s)")
    p.add_argument("--visible", choices=["bernoulli", "gaussian"], default="bernoulli",
                   help="visible units: bernoulli for [0, 1] images, gaussian for real values "
                        "(default: %(default)s)")
    p.add_argument("--cd-k", type=int, default=1,
                   help="Gibbs sweeps per negative phase (default: %(default)s)")
    p.add_argument("--persistent", action="store_true",
                   help="persistent CD: fantasy particles carried across updates")
    p.add_argument("--momentum", type=float, default=0.5, help="SGD momentum (default: %(default)s)")
    p.add_argument("--weight-decay", type=float, default=1e-4,
                   help="L2 weight decay on the weights (default: %(default)s)")
    p.add_argument("--ais-betas", type=int, default=3000,
                   help="intermediate distributions of AIS for log Z (default: %(default)s)")
    p.add_argument("--ais-runs", type=int, default=100,
                   help="independent AIS runs (default: %(default)s)")
    add_generative_options(p, epochs=20, batch_size=20, lr=0.05)


def fit(args, X, y):
    from ..generative import RBM

    model = RBM(args.hidden, visible=args.visible, cd_k=args.cd_k, persistent=args.persistent,
                momentum=args.momentum, weight_decay=args.weight_decay,
                n_betas=args.ais_betas, n_ais_runs=args.ais_runs,
                **generative_params(args)).fit(X)
    summary = {"log Z": model.log_partition_, "log Z standard error": model.log_partition_stderr_,
               "training log-likelihood per image": model.score(X)}
    if args.visible == "bernoulli":
        summary["training pseudo-likelihood per image (not a likelihood)"] = float(
            model.pseudo_likelihood(X).mean())
    return model, summary
