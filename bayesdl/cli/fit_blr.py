"""Bayesian linear regression (PRML 3.3-3.5) with an optional basis expansion.

The evidence p(t | alpha, beta) is maximised for whichever of alpha (prior precision) and
beta (noise precision) is not given. With --basis polynomial --degree auto the degree is
chosen by the evidence (PRML 3.4). Predict with 'bayesdl predict' to get the predictive
mean, standard deviation and interval for new rows.
"""

from __future__ import annotations

import argparse
import math

from .fit import add_torch_options

HELP = "Bayesian linear regression (evidence maximisation, optional basis functions)"
NEEDS_TARGET = True

# Largest model the CLI builds: the design matrix and two M x M matrices (posterior
# covariance, eigenvectors) of float64 must fit in this many bytes.
MAX_BYTES = 2**30


def _degree(value: str):
    if value == "auto":
        return value
    try:
        degree = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer or 'auto', got {value!r}") from None
    if degree < 1:
        raise argparse.ArgumentTypeError(f"degree must be >= 1, got {degree}")
    return degree


def add_arguments(p) -> None:
    p.add_argument("--basis", choices=["none", "polynomial", "gaussian", "sigmoid"], default="none",
                   help="basis functions phi(x) applied to each input (default: %(default)s)")
    p.add_argument("--degree", type=_degree, default=3,
                   help="polynomial degree, or 'auto' to choose it by the evidence (default: %(default)s)")
    p.add_argument("--max-degree", type=int, default=9,
                   help="largest degree tried by --degree auto (default: %(default)s)")
    p.add_argument("--n-centers", type=int, default=9,
                   help="gaussian/sigmoid centres per input (default: %(default)s)")
    p.add_argument("--width", type=float, default=None,
                   help="gaussian/sigmoid scale s (default: the spacing of the centres)")
    p.add_argument("--alpha", type=float, default=None, help="fix the prior precision instead of learning it")
    p.add_argument("--beta", type=float, default=None, help="fix the noise precision instead of learning it")
    p.add_argument("--no-intercept", action="store_true", help="do not fit an intercept")
    add_torch_options(p)


def check_polynomial_size(n_rows: int, n_inputs: int, degree: int) -> None:
    """Refuse, before building anything, a polynomial basis too large to fit.

    The monomials of total degree 1..degree in n_inputs variables number
    C(n_inputs + degree, degree) - 1 (stars and bars, less the constant).
    """
    M = math.comb(n_inputs + degree, degree) - 1
    need = 8 * (n_rows * M + 2 * M * M)  # bytes: Phi (N, M), covariance and eigenvectors (M, M)
    if need > MAX_BYTES:
        raise ValueError(
            f"--basis polynomial --degree {degree} on {n_inputs} inputs gives {M:,} monomial "
            f"features, about {need / 2**30:.1f} GiB of memory and O(M^3) time; use a lower "
            "--degree or --max-degree, or fewer inputs.")


def fit(args, X, y):
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    from ..linear_model import (BayesianLinearRegression, GaussianBasis, PolynomialBasis,
                                SigmoidBasis, select_degree)

    if args.max_degree < 1:
        raise ValueError(f"--max-degree must be at least 1, got {args.max_degree}.")
    if args.basis == "polynomial":
        check_polynomial_size(*X.shape, args.max_degree if args.degree == "auto" else args.degree)
    blr = dict(alpha=args.alpha, beta=args.beta, fit_intercept=not args.no_intercept,
               dtype=args.dtype, device=args.device)
    summary = {}
    if args.basis == "polynomial" and args.degree == "auto":
        # Powers of raw inputs are badly conditioned: standardise first, as for a fixed degree.
        scaler = StandardScaler().fit(X)
        result = select_degree(scaler.transform(X), y, range(1, args.max_degree + 1), **blr)
        summary.update({f"log evidence, degree {d}": float(e)
                        for d, e in zip(result.degrees, result.log_evidence)})
        summary["chosen degree"] = result.best_degree
        model = Pipeline([("scale", scaler), *result.best_model.steps])
    else:
        basis = {
            "none": None,
            "polynomial": lambda: Pipeline([("scale", StandardScaler()),
                                            ("poly", PolynomialBasis(degree=args.degree))]),
            "gaussian": lambda: GaussianBasis(n_centers=args.n_centers, width=args.width),
            "sigmoid": lambda: SigmoidBasis(n_centers=args.n_centers, width=args.width),
        }[args.basis]
        regressor = BayesianLinearRegression(**blr)
        model = regressor if basis is None else Pipeline([("basis", basis()), ("blr", regressor)])
        model.fit(X, y)
    final = model[-1] if isinstance(model, Pipeline) else model
    summary.update({"n_samples": X.shape[0], "alpha (prior precision)": final.alpha_,
                    "beta (noise precision)": final.beta_, "noise std": final.beta_ ** -0.5,
                    "effective parameters gamma": final.gamma_, "log evidence": final.log_evidence_,
                    "R^2 (training)": float(model.score(X, y))})
    return model, summary
