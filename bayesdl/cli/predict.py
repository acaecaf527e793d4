"""``bayesdl predict``: apply a saved model to new data and write a CSV of predictions.

What is written depends on what the model can do, tried in this order:

- ``--score``: one column ``log_density``, the log of the model's predictive density
  (``to_distribution()`` where the model has one, e.g. the Student-t mixture of a VB-GMM,
  else ``score_samples``; density models, anomaly scores);
- ``--impute``: the input table with its missing entries (empty cells, NaN) filled by their
  conditional means (models with ``impute``: probabilistic PCA, factor analysis);
- a transformer without ``predict`` (PCA, probabilistic PCA, factor analysis): its
  projections (the posterior means of the latent coordinates), one column per component;
- a model with ``predict_proba`` (classifiers, mixtures, clusterers): ``label`` and one
  probability column per class or component, ``p_<class>``; Bayesian classifiers whose
  ``predict_proba`` takes ``return_std`` add each probability's posterior standard
  deviation, ``std_<class>``;
- a model with a Gaussian ``predict_dist`` (regressors): ``mean, std, lower, upper``, where
  lower/upper bound the central ``--interval`` of the predictive distribution.
"""

from __future__ import annotations

import argparse
import inspect


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
    p.add_argument("--lengths-column", default=None,
                   help="sequence models (HMMs): column holding the sequence id of each row")
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
    from ..io import load
    from ._tables import read_features, require_complete

    model, info = load(model_path, with_info=True)
    trained = info.get("feature_names")
    X, y, names = read_features(data_path, target, columns=trained)
    if trained is not None and names is not None:
        missing = [c for c in trained if c not in names]
        if missing:
            raise ValueError(f"the data lacks the model's input column(s) {missing}; it has {names}.")
        X, names = X[:, [names.index(c) for c in trained]], trained
    final = model[-1] if hasattr(model, "steps") else model
    tags = getattr(final, "__sklearn_tags__", None)
    if tags is None or not tags().input_tags.allow_nan:  # else the model marginalises NaN
        require_complete(data_path, X, names)  # only the columns the model uses
    if y is not None:
        require_complete(data_path, y, [target])
    if hasattr(model, "steps"):
        return model[-1], model[:-1].transform(X), y
    return model, X, y


def _sequence_columns(final, Xt, args) -> dict:
    """HMMs: the Viterbi state of each row and the state posteriors ``p_<k>``."""
    from ._tables import read_features
    from .fit_hmm import lengths_from_ids

    ids = None
    if args.lengths_column is not None:
        ids = read_features(args.data, args.lengths_column)[1]
    lengths = lengths_from_ids(ids)
    cols = {} if ids is None else {args.lengths_column: ids}
    cols["state"] = final.decode(Xt, lengths, algorithm="viterbi")[1]
    proba = final.predict_proba(Xt, lengths)
    cols.update({f"p_{k}": proba[:, k] for k in range(proba.shape[1])})
    return cols


def _columns(final, Xt, args) -> dict:
    import numpy as np
    from scipy.stats import norm

    name = type(final).__name__
    if hasattr(final, "transmat_") and not args.score:
        return _sequence_columns(final, Xt, args)
    if args.score:
        if hasattr(final, "to_distribution"):
            # A normalised density: a VB-GMM's score_samples is scikit-learn's plug-in
            # E-step score, which does not integrate to one; its predictive (PRML 10.81) does.
            import torch

            dist = final.to_distribution()
            X = torch.as_tensor(np.asarray(Xt), dtype=dist.mean.dtype, device=dist.mean.device)
            return {"log_density": dist.log_prob(X).cpu().numpy()}
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
        with_std = "return_std" in inspect.signature(final.predict_proba).parameters
        proba, std = final.predict_proba(Xt, return_std=True) if with_std else (final.predict_proba(Xt), None)
        classes = getattr(final, "classes_", np.arange(proba.shape[1]))
        cols = {"label": classes[proba.argmax(axis=1)]}
        cols.update({f"p_{c}": proba[:, j] for j, c in enumerate(classes)})
        if std is not None:
            cols.update({f"std_{c}": std[:, j] for j, c in enumerate(classes)})
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
    args.feature_names = None
    if args.impute:  # the filled table keeps the training column names
        from ..io import load

        args.feature_names = load(args.model, with_info=True)[1].get("feature_names")
    columns = _columns(final, Xt, args)
    from ._tables import write_table

    path = write_table(args.out, columns)
    print(f"wrote {len(next(iter(columns.values())))} rows to {path}")
    return 0
