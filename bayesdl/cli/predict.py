"""``bayesdl predict``: apply a saved model to new data and write a CSV of predictions.

What is written depends on what the model can do: a model with a Gaussian predictive
distribution gives columns ``mean, std, lower, upper`` for the chosen central interval.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import norm

from ..io import load
from ._tables import read_features, write_table


def add_parser(sub) -> None:
    p = sub.add_parser(
        "predict",
        help="predict with a saved model on a CSV/NPY file",
        description="Load a model saved by 'bayesdl fit' and write its predictions as CSV.",
    )
    p.add_argument("--model", required=True, help="model file written by 'bayesdl fit'")
    p.add_argument("--data", required=True, help="inputs: .csv with the training feature columns, or .npy")
    p.add_argument("--out", required=True, help="output CSV path")
    p.add_argument("--interval", type=float, default=0.95,
                   help="central predictive interval for lower/upper (default: %(default)s)")
    p.set_defaults(func=run)


def _final_step(model, X):
    """Split a Pipeline into (inputs transformed by the leading steps, final estimator)."""
    if hasattr(model, "steps"):
        return model[:-1].transform(X), model[-1]
    return X, model


def _select_columns(X, names, trained) -> np.ndarray:
    """Pick the training feature columns by name (extra columns such as the target are ignored)."""
    if trained is None or names is None:
        return X
    missing = [c for c in trained if c not in names]
    if missing:
        raise ValueError(f"the data lacks the model's input column(s) {missing}; it has {names}.")
    return X[:, [names.index(c) for c in trained]]


def run(args) -> int:
    if not 0 < args.interval < 1:
        raise ValueError(f"--interval must be in (0, 1), got {args.interval}.")
    model, info = load(args.model, with_info=True)
    X, _, names = read_features(args.data)
    Xt, final = _final_step(model, _select_columns(X, names, info.get("feature_names")))
    if not hasattr(final, "predict_dist"):
        raise ValueError(f"{type(final).__name__} models cannot be used with 'bayesdl predict' yet.")
    dist = final.predict_dist(Xt)
    mean, std = dist.mean.cpu().numpy(), dist.stddev.cpu().numpy()
    z = norm.ppf(0.5 + args.interval / 2)
    path = write_table(args.out, {"mean": mean, "std": std, "lower": mean - z * std, "upper": mean + z * std})
    print(f"wrote {len(mean)} predictions to {path}")
    return 0
