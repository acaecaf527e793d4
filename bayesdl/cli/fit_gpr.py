"""Gaussian process regression (exact, R&W chapter 2) with hyper-parameters by evidence.

The kernel is ConstantKernel * BASE + WhiteKernel, where BASE is chosen by --kernel and has
one length-scale per input column with --ard. The signal variance, length-scales and noise
level maximise the log marginal likelihood (L-BFGS-B, --restarts extra random starts run as
one batch). Predict with 'bayesdl predict' to get the predictive mean, standard deviation
(including the fitted noise) and interval for new rows.
"""

from __future__ import annotations

from ..gaussian_process import GaussianProcessRegressor
from ..gaussian_process.kernels import (RBF, ConstantKernel, DotProduct, ExpSineSquared, Matern,
                                        RationalQuadratic, WhiteKernel)
from .fit import add_torch_options

HELP = "Gaussian process regression (exact; kernel hyper-parameters by the evidence)"
NEEDS_TARGET = True

KERNELS = ("rbf", "matern", "rq", "periodic", "linear")


def add_arguments(p) -> None:
    p.add_argument("--kernel", choices=KERNELS, default="rbf",
                   help="base kernel: rbf, matern, rq (rational quadratic), periodic "
                        "(exp-sine-squared), linear (dot product) (default: %(default)s)")
    p.add_argument("--nu", type=float, choices=[0.5, 1.5, 2.5], default=2.5,
                   help="Matern smoothness (default: %(default)s)")
    p.add_argument("--ard", action="store_true",
                   help="one length-scale per input column (rbf, matern)")
    p.add_argument("--restarts", type=int, default=2,
                   help="extra optimiser starts, drawn in the bounds (default: %(default)s)")
    p.add_argument("--no-normalize-y", action="store_true",
                   help="do not standardise the target before fitting")
    p.add_argument("--seed", type=int, default=0, help="seed of the restarts (default: %(default)s)")
    add_torch_options(p)


def build_kernel(name: str, n_features: int, *, ard: bool = False, nu: float = 2.5):
    """ConstantKernel * base + WhiteKernel for a --kernel name."""
    length_scale = [1.0] * n_features if ard else 1.0
    base = {
        "rbf": lambda: RBF(length_scale),
        "matern": lambda: Matern(length_scale, nu=nu),
        "rq": lambda: RationalQuadratic(1.0, 1.0),
        "periodic": lambda: ExpSineSquared(1.0, 1.0),
        "linear": lambda: DotProduct(1.0),
    }[name]()
    return ConstantKernel(1.0) * base + WhiteKernel(0.1)


def fit(args, X, y):
    if args.restarts < 0:
        raise ValueError(f"--restarts must be >= 0, got {args.restarts}.")
    model = GaussianProcessRegressor(
        build_kernel(args.kernel, X.shape[1], ard=args.ard, nu=args.nu),
        normalize_y=not args.no_normalize_y, n_restarts_optimizer=args.restarts,
        random_state=args.seed, dtype=args.dtype, device=args.device).fit(X, y)
    summary = {"n_samples": X.shape[0], "kernel": repr(model.kernel_),
               "log marginal likelihood": model.log_marginal_likelihood_value_,
               "R^2 (training)": float(model.score(X, y))}
    return model, summary
