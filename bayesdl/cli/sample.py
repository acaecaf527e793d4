"""``bayesdl sample``: draw rows from a saved generative model and write them as CSV.

Works with any saved model that has a ``sample(n)`` method (mixtures, ...). Columns are the
model's training feature names (``x0, x1, ...`` when it was trained on a .npy file), plus
``component`` when the model reports which component drew each row.
"""

from __future__ import annotations

import argparse


def add_parser(sub) -> None:
    p = sub.add_parser("sample", help="draw samples from a saved generative model",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="model file written by 'bayesdl fit'")
    p.add_argument("-n", "--n-samples", type=int, default=1000,
                   help="number of rows to draw (default: %(default)s)")
    p.add_argument("--out", required=True, help="output CSV path")
    p.add_argument("--seed", type=int, default=None, help="random seed (default: the model's)")
    p.set_defaults(func=run)


def run(args) -> int:
    if args.n_samples < 1:
        raise ValueError(f"-n must be at least 1, got {args.n_samples}.")
    import numpy as np

    from ..io import load
    from ._tables import write_table

    model, info = load(args.model, with_info=True)
    if not hasattr(model, "sample"):
        raise ValueError(f"{type(model).__name__} models cannot be sampled (no sample method).")
    if args.seed is not None:
        model.set_params(random_state=args.seed)
    drawn = model.sample(args.n_samples)
    X, labels = drawn if isinstance(drawn, tuple) else (drawn, None)
    X = np.asarray(X)
    names = info.get("feature_names") or [f"x{j}" for j in range(X.shape[1])]
    columns = {name: X[:, j] for j, name in enumerate(names)}
    if labels is not None:
        columns["component"] = np.asarray(labels)
    path = write_table(args.out, columns)
    print(f"wrote {len(X)} samples to {path}")
    return 0
