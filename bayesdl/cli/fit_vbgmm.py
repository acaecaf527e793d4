"""Fit a variational Bayesian Gaussian mixture (PRML 10.2): start with many components and let
the Dirichlet (or Dirichlet-process) prior switch off the ones the data do not need.

Example: bayesdl fit vbgmm --data x.npy --components 10 --alpha0 1e-3 --out vb.safetensors
"""

from __future__ import annotations

from .fit_gmm import add_mixture_arguments, check_components, mixture_kwargs, warnings_once

HELP = "variational Bayesian Gaussian mixture (prunes unneeded components)"
NEEDS_TARGET = False


def add_arguments(p) -> None:
    p.add_argument("--components", type=int, default=10,
                   help="upper bound on the number of components (default: 10)")
    p.add_argument("--prior", default="dirichlet_process",
                   choices=["dirichlet_process", "dirichlet_distribution"],
                   help="prior on the weights (default: %(default)s)")
    p.add_argument("--alpha0", type=float, default=None,
                   help="weight concentration prior; small values prune more (default: 1/K)")
    p.add_argument("--threshold", type=float, default=0.01,
                   help="weight below which a component counts as inactive (default: 0.01)")
    add_mixture_arguments(p)


def fit(args, X, y):
    from ..mixture import BayesianGaussianMixture

    check_components([args.components], len(X), f"--components {args.components}")
    model = warnings_once(lambda: BayesianGaussianMixture(
        n_components=args.components, weight_concentration_prior_type=args.prior,
        weight_concentration_prior=args.alpha0, weight_threshold=args.threshold,
        **mixture_kwargs(args)).fit(X))
    summary = {"n_active_components": model.n_active_components_,
               "weights": " ".join(f"{w:.3f}" for w in model.weights_),
               "elbo": float(model.elbo_), "converged": bool(model.converged_)}
    return model, summary
