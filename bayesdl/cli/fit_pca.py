"""Principal component analysis (PRML 12.1): by SVD, from the covariance when there are many
more rows than columns, or by randomised SVD.

Example: bayesdl fit pca --data x.csv --components 0.95 --out pca.safetensors
(a fraction keeps the fewest components explaining that share of the variance; 'mle' uses
Minka's choice). 'bayesdl predict' then writes the projections.
"""

from __future__ import annotations

import argparse

from .fit import add_torch_options

HELP = "principal component analysis (SVD, covariance or randomised)"
NEEDS_TARGET = False


def _components(text: str):
    if text in ("mle", "all"):
        return None if text == "all" else text
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a count, a fraction in (0, 1), 'mle' or "
                                         f"'all', got {text!r}") from None
    return int(value) if value >= 1 and value == int(value) else value


def add_arguments(p) -> None:
    p.add_argument("--components", type=_components, default=None,
                   help="a count, a fraction of variance in (0, 1), 'mle' or 'all' (default)")
    p.add_argument("--whiten", action="store_true", help="scale projections to unit variance")
    p.add_argument("--solver", default="auto",
                   choices=["auto", "full", "covariance_eigh", "randomized"],
                   help="how the components are computed (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    add_torch_options(p)


def fit(args, X, y):
    from ..decomposition import PCA

    model = PCA(args.components, whiten=args.whiten, svd_solver=args.solver,
                random_state=args.seed, device=args.device, dtype=args.dtype).fit(X)
    return model, {"n_components": model.n_components_,
                   "explained_variance_ratio": float(model.explained_variance_ratio_.sum()),
                   "noise_variance": model.noise_variance_}
