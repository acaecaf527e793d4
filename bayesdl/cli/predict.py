"""``bayesdl predict``: apply a saved model to new data and write a CSV of predictions.

What is written depends on what the model can do, tried in this order:

- ``--score``: one column ``log_density`` from ``score_samples`` (density models; anomaly scores);
- a model with ``predict_proba`` (classifiers, mixtures, clusterers): ``label`` and one
  probability column per class or component, ``p_<class>``;
- a model with a Gaussian ``predict_dist`` (regressors): ``mean, std, lower, upper``, where
  lower/upper bound the central ``--interval`` of the predictive distribution.
"""

from __future__ import annotations


import argparse

import numpy as np
from scipy.stats import norm

from ..io import load
from ._tables import read_features, write_table


def add_parser(sub) -> None:
    p = sub.add_parser(
        "predict",
        help="predict with a saved model on a CSV/NPY file",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--model", required=True, help="model file written by 'bayesdl fit'")
    p.add_argument("--data", required=True,
                   help="inputs: .csv holding the training feature columns (by name), or .npy")
    p.add_argument("--out", required=True, help="output CSV path")
    p.add_argument("--interval", type=float, default=0.95,
                   help="central predictive interval for lower/upper (default: %(default)s)")
    p.add_argument("--score", action="store_true",
                   help="write per-row log-densities (density models) instead of predictions")
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


def _columns(final, Xt, args) -> dict[str, np.ndarray]:
    name = type(final).__name__
    if args.score:
        if not hasattr(final, "score_samples"):
            raise ValueError(f"--score needs a density model; {name} has no score_samples.")
        return {"log_density": final.score_samples(Xt)}
    if hasattr(final, "predict_proba"):
        proba = final.predict_proba(Xt)
        classes = getattr(final, "classes_", np.arange(proba.shape[1]))
        cols = {"label": classes[proba.argmax(axis=1)]}
        cols.update({f"p_{c}": proba[:, j] for j, c in enumerate(classes)})
        return cols
    if hasattr(final, "predict_dist"):
        dist = final.predict_dist(Xt)
        mean, std = dist.mean.cpu().numpy(), dist.stddev.cpu().numpy()
        z = norm.ppf(0.5 + args.interval / 2)
        return {"mean": mean, "std": std, "lower": mean - z * std, "upper": mean + z * std}
    raise ValueError(f"{name} models cannot be used with 'bayesdl predict'.")


def run(args) -> int:
    if not 0 < args.interval < 1:
        raise ValueError(f"--interval must be in (0, 1), got {args.interval}.")
    model, info = load(args.model, with_info=True)
    X, _, names = read_features(args.data)
    Xt, final = _final_step(model, _select_columns(X, names, info.get("feature_names")))
    columns = _columns(final, Xt, args)
    path = write_table(args.out, columns)
    print(f"wrote {len(next(iter(columns.values())))} rows to {path}")
    return 0
