"""Fit a linear dynamical system (Kalman filter / RTS smoother) by EM; one sequence per value
of --lengths-column.

Example: bayesdl fit lds --data series.csv --state-dim 2 --lengths-column id --out lds.safetensors

EM learns every parameter (A, C, Q, R and the initial state) from pykalman's identity start.
Empty cells are missing observations, handled exactly by the filter.
"""

from __future__ import annotations

from .fit import add_torch_options

HELP = "linear dynamical system (Kalman filter, RTS smoother) by EM"
NEEDS_TARGET = False
# NaN cells are marginalised by the model (Gaussian emissions / observations).
ALLOWS_MISSING = True


def add_arguments(p) -> None:
    p.add_argument("--state-dim", type=int, default=1, help="latent state dimension (default: 1)")
    p.add_argument("--lengths-column", default=None,
                   help="column holding a sequence id; consecutive equal ids form one sequence")
    p.add_argument("--n-iter", type=int, default=50, help="EM iterations (default: 50)")
    add_torch_options(p, dtype=False)
    p.add_argument("--verbose", action="store_true", help="show a progress bar")


def fit(args, X, y):
    from ..state_space import LinearGaussianStateSpace
    from .fit_hmm import lengths_from_ids

    if args.state_dim < 1:
        raise ValueError(f"--state-dim must be at least 1, got {args.state_dim}.")
    lengths = lengths_from_ids(y)
    model = LinearGaussianStateSpace(n_dim_state=args.state_dim, em_vars="all",
                                     n_iter=args.n_iter, device=args.device,
                                     verbose=bool(args.verbose))
    model.fit(X, lengths)
    return model, {"n_sequences": len(lengths or [0]),
                   "log_likelihood": float(model.lower_bound_),
                   "converged": bool(model.converged_)}
