"""Fit a Bayesian MLP (Bayes by Backprop, MC dropout or a deep ensemble) on a table.

Regression targets get a Gaussian predictive distribution (``--heteroscedastic`` lets the
noise depend on the inputs); classification targets get class probabilities. With
``--task auto`` a target of text labels, or whose values are all integers with at most 20
distinct values, is treated as class labels; the labels are kept as the file gives them
(``0``/``1`` stay integers, ``cat``/``dog`` stay text) in predictions and column names.

Training defaults converge on small tables as on large ones: the budget is ``--max-steps``
Adam steps (however many epochs that takes), the noise variance starts at a tenth of the
target's variance, a tenth of the rows is held out and training stops once their predictive
NLL has not improved for ``--patience`` steps (the best weights are kept). A
ConvergenceWarning says when the budget ran out first.
"""

from __future__ import annotations

import numpy as np

from ..neural_network import BayesianMLPClassifier, BayesianMLPRegressor

HELP = "Bayesian MLP: Bayes by Backprop, MC dropout or deep ensemble (regression/classification)"
NEEDS_TARGET = True


def add_arguments(p) -> None:
    p.add_argument("--task", choices=["auto", "regression", "classification"], default="auto",
                   help="what the target is (default: %(default)s)")
    p.add_argument("--method", choices=["bbb", "mc_dropout", "ensemble"], default="mc_dropout",
                   help="approximate Bayesian method (default: %(default)s)")
    p.add_argument("--hidden", default="50",
                   help="comma-separated hidden layer widths (default: %(default)s)")
    p.add_argument("--heteroscedastic", action="store_true",
                   help="predict the noise level per input (Kendall & Gal 2017)")
    p.add_argument("--max-steps", type=int, default=2000,
                   help="training budget in Adam steps, whatever the table size "
                        "(default: %(default)s)")
    p.add_argument("--epochs", type=int, default=None,
                   help="train for exactly this many epochs instead of --max-steps")
    p.add_argument("--batch-size", type=int, default=128, help="(default: %(default)s)")
    p.add_argument("--lr", type=float, default=1e-2,
                   help="Adam learning rate (default: %(default)s)")
    p.add_argument("--validation-fraction", type=float, default=0.1,
                   help="share of rows held out for early stopping (default: %(default)s)")
    p.add_argument("--patience", type=int, default=300,
                   help="stop after this many Adam steps without a better held-out NLL "
                        "(default: %(default)s)")
    p.add_argument("--no-early-stopping", action="store_true",
                   help="train on every row and stop on the training loss instead")
    p.add_argument("--dropout", type=float, default=0.05,
                   help="MC-dropout rate (default: %(default)s)")
    p.add_argument("--prior", choices=["gaussian", "scale_mixture"], default="gaussian",
                   help="BBB weight prior (default: %(default)s)")
    p.add_argument("--prior-sigma", type=float, default=1.0,
                   help="BBB prior standard deviation (default: %(default)s)")
    p.add_argument("--n-estimators", type=int, default=5,
                   help="ensemble size (default: %(default)s)")
    p.add_argument("--n-samples", type=int, default=100,
                   help="sampled networks per prediction (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _hidden(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(h) for h in text.split(",") if h.strip())
    except ValueError:
        raise ValueError(f"--hidden must be comma-separated integers like 50,50; got {text!r}.")
    if not sizes or min(sizes) < 1:
        raise ValueError(f"--hidden needs at least one positive width; got {text!r}.")
    return sizes


def _is_classification(task: str, y: np.ndarray) -> bool:
    if y.dtype.kind not in "iuf":  # text labels, as the CSV gives them
        if task == "regression":
            raise ValueError("the target column holds text labels; regression needs numbers. "
                             "Use --task classification (or auto).")
        return True
    if task != "auto":
        return task == "classification"
    finite = y[np.isfinite(y)]
    return bool(np.all(finite == np.round(finite)) and len(np.unique(finite)) <= 20)


def fit(args, X, y):
    classify = _is_classification(args.task, y)
    cls = BayesianMLPClassifier if classify else BayesianMLPRegressor
    model = cls(_hidden(args.hidden), method=args.method, heteroscedastic=args.heteroscedastic,
                prior=args.prior, prior_sigma=args.prior_sigma, dropout=args.dropout,
                n_estimators=args.n_estimators, max_steps=args.max_steps,
                max_epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.lr,
                early_stopping=not args.no_early_stopping,
                validation_fraction=args.validation_fraction, patience=args.patience,
                n_samples=args.n_samples, verbose=not args.quiet, random_state=args.seed)
    model.fit(X, y)
    summary = {"task": "classification" if classify else "regression", "method": args.method,
               "epochs": model.n_iter_, "final training loss": float(model.loss_curve_[-1])}
    if classify:
        summary["training accuracy"] = float(model.score(X, y))
    else:
        summary["training R^2"] = float(model.score(X, y))
    return model, summary
