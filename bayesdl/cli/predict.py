"""``bayesdl predict``: apply a saved model to new data and write a CSV of predictions.

What is written depends on what the model can do, tried in this order:

- ``--score``: one column ``log_density`` from ``score_samples`` (density models; anomaly scores);
- ``--impute``: the input table with its missing entries (empty cells, NaN) filled by their
  conditional means (models with ``impute``: probabilistic PCA, factor analysis);
- a transformer without ``predict`` (PCA, probabilistic PCA, factor analysis): its
  projections (the posterior means of the latent coordinates), one column per component;
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
    p.add_argument("--impute", action="store_true",
                   help="fill the missing entries of --data (models with impute, e.g. ppca)")
    p.set_defaults(func=run)


def check_interval(level: float) -> float:
    if not 0 < level < 1:
        raise ValueError(f"--interval must be in (0, 1), got {level}.")
    return level


def load_model_and_inputs(model_path, data_path, target: str | None = None):
    """Load a saved model and its inputs from ``data_path``, ready for the final estimator.

    Columns are matched by the training feature names the model file records (extra
    columns, such as the target, are ignored), and the leading steps of a Pipeline are
    applied. Returns ``(final_estimator, transformed_X, y)`` (``y`` None without ``target``).
    """
    model, info = load(model_path, with_info=True)
    X, y, names = read_features(data_path, target)
    trained = info.get("feature_names")
    if trained is not None and names is not None:
        missing = [c for c in trained if c not in names]
        if missing:
            raise ValueError(f"the data lacks the model's input column(s) {missing}; it has {names}.")
        X = X[:, [names.index(c) for c in trained]]
    if hasattr(model, "steps"):
        return model[-1], model[:-1].transform(X), y
    return model, X, y


def _columns(final, Xt, args) -> dict[str, np.ndarray]:
    name = type(final).__name__
    if args.score:
        if not hasattr(final, "score_samples"):
            raise ValueError(f"--score needs a density model; {name} has no score_samples.")
        return {"log_density": final.score_samples(Xt)}
    if args.impute:
        if not hasattr(final, "impute"):
            raise ValueError(f"--impute needs a model with missing-data support (ppca, fa); "
                             f"{name} has no impute.")
        filled = final.impute(Xt)
        names = args.feature_names or [f"x{j}" for j in range(filled.shape[1])]
        return {c: filled[:, j] for j, c in enumerate(names)}
    if hasattr(final, "transform") and not hasattr(final, "predict"):
        Z = final.transform(Xt)
        return {c: Z[:, j] for j, c in enumerate(final.get_feature_names_out())}
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
    check_interval(args.interval)
    final, Xt, _ = load_model_and_inputs(args.model, args.data)
    args.feature_names = load(args.model, with_info=True)[1].get("feature_names") \
        if args.impute else None
    columns = _columns(final, Xt, args)
    path = write_table(args.out, columns)
    print(f"wrote {len(next(iter(columns.values())))} rows to {path}")
    return 0
