"""Fit a hidden Markov model by Baum-Welch; one sequence per value of --lengths-column.

Example: bayesdl fit hmm --data seq.csv --states 3 --lengths-column id --out hmm.safetensors

Rows of one sequence must be consecutive and in time order. Empty cells are missing values
(marginalised out by the Gaussian emissions). --emission categorical expects one column of
symbols 0, 1, 2, ...; poisson expects counts.
"""

from __future__ import annotations

import numpy as np

from .fit import add_torch_options

HELP = "hidden Markov model by Baum-Welch (Gaussian, categorical or Poisson emissions)"
NEEDS_TARGET = False
# NaN cells are marginalised by the model (Gaussian emissions / observations).
ALLOWS_MISSING = True


def add_arguments(p) -> None:
    p.add_argument("--states", type=int, default=2, help="number of hidden states (default: 2)")
    p.add_argument("--lengths-column", default=None,
                   help="column holding a sequence id; consecutive equal ids form one sequence "
                        "(default: the whole file is one sequence)")
    p.add_argument("--emission", default="gaussian", choices=["gaussian", "categorical", "poisson"],
                   help="emission family (default: %(default)s)")
    p.add_argument("--covariance-type", default="diag",
                   choices=["full", "tied", "diag", "spherical"],
                   help="Gaussian emission covariance (default: %(default)s)")
    p.add_argument("--n-iter", type=int, default=100, help="Baum-Welch iterations (default: 100)")
    p.add_argument("--n-init", type=int, default=1, help="restarts; the best is kept")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    add_torch_options(p, dtype=False)
    p.add_argument("--verbose", action="store_true", help="show a progress bar")


def lengths_from_ids(ids) -> list[int] | None:
    """Run lengths of consecutive equal ``ids``; an id that comes back later is an error."""
    if ids is None:
        return None
    ids = np.asarray(ids)
    if np.isnan(ids).any():
        raise ValueError("the --lengths-column has empty cells; give every row a sequence id.")
    change = np.flatnonzero(ids[1:] != ids[:-1]) + 1
    starts = np.concatenate([[0], change])
    if len(np.unique(ids)) != len(starts):
        raise ValueError("a sequence id appears in two separate runs of rows; sort the file by "
                         "id (keeping time order inside each sequence).")
    return np.diff(np.concatenate([starts, [len(ids)]])).tolist()


def fit(args, X, y):
    from ..hmm import CategoricalHMM, GaussianHMM, PoissonHMM

    if args.states < 1:
        raise ValueError(f"--states must be at least 1, got {args.states}.")
    lengths = lengths_from_ids(y)
    kw = dict(n_iter=args.n_iter, n_init=args.n_init, random_state=args.seed,
              device=args.device, verbose=bool(args.verbose))
    if args.emission == "gaussian":
        model = GaussianHMM(args.states, covariance_type=args.covariance_type, **kw)
    elif args.emission == "categorical":
        model = CategoricalHMM(args.states, **kw)
    else:
        model = PoissonHMM(args.states, **kw)
    model.fit(X, lengths)
    return model, {"n_states": args.states, "n_sequences": len(lengths or [0]),
                   "log_likelihood": float(model.lower_bound_),
                   "converged": bool(model.converged_)}
