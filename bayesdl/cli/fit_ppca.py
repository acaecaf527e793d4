"""Probabilistic PCA (Tipping & Bishop 1999; PRML 12.2): closed-form maximum likelihood, or EM
when --data has missing entries (empty CSV cells or NaN), which are marginalised out exactly.

Example: bayesdl fit ppca --data x.csv --components 2 --out ppca.safetensors
Then 'bayesdl predict --model ppca.safetensors --data x.csv --out z.csv' writes the posterior
means of the latent coordinates, and '--impute' writes the table with its gaps filled.
"""

from __future__ import annotations

from .fit import add_torch_options

HELP = "probabilistic PCA (closed form, or EM with missing values)"
NEEDS_TARGET = False
# NaN cells are marginalised exactly by EM (rows grouped by missing pattern).
ALLOWS_MISSING = True


def add_latent_arguments(p, default_components) -> None:
    """Options shared by the ppca, fa and bpca targets."""
    p.add_argument("--components", type=int, default=default_components,
                   help="latent dimension q (default: %(default)s)")
    p.add_argument("--max-iter", type=int, default=1000, help="EM iterations (default: 1000)")
    p.add_argument("--tol", type=float, default=1e-6,
                   help="EM stops when the mean log-likelihood changes less (default: 1e-6)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    add_torch_options(p)
    p.add_argument("--verbose", action="store_true", help="show a progress bar")


def latent_kwargs(args) -> dict:
    return dict(n_components=args.components, max_iter=args.max_iter, tol=args.tol,
                random_state=args.seed, device=args.device, dtype=args.dtype,
                verbose=int(args.verbose))


def latent_summary(model, X) -> dict:
    return {"n_components": model.n_components_,
            "mean_log_likelihood": float(model.score(X)),
            "iterations": model.n_iter_, "converged": bool(model.converged_)}


def add_arguments(p) -> None:
    add_latent_arguments(p, 2)
    p.add_argument("--solver", default="auto", choices=["auto", "closed_form", "em"],
                   help="auto: closed form for complete data, EM with missing values")


def fit(args, X, y):
    from ..decomposition import ProbabilisticPCA

    model = ProbabilisticPCA(solver=args.solver, **latent_kwargs(args)).fit(X)
    return model, {**latent_summary(model, X), "noise_variance": model.noise_variance_}
