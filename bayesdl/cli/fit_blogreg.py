"""Bayesian logistic regression (binary or softmax) by the Laplace approximation.

The prior precision alpha is learnt by maximising the Laplace evidence unless --alpha fixes
it (--ard learns one per feature). Inputs are standardised first, so one alpha suits every
feature. Predict with 'bayesdl predict' to get the class probabilities (probit-moderated)
and their posterior standard deviations.
"""

from __future__ import annotations

from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from ..linear_model import BayesianLogisticRegression
from .fit import add_torch_options

HELP = "Bayesian logistic regression (Laplace approximation, evidence-tuned prior)"
NEEDS_TARGET = True


def add_arguments(p) -> None:
    p.add_argument("--alpha", type=float, default=None,
                   help="fix the prior precision instead of learning it from the evidence")
    p.add_argument("--ard", action="store_true", help="learn one prior precision per feature")
    p.add_argument("--predictive", choices=["probit", "mc", "map"], default="probit",
                   help="how predict_proba averages over the posterior (default: %(default)s)")
    p.add_argument("--no-intercept", action="store_true", help="do not fit an intercept")
    add_torch_options(p)


def fit(args, X, y):
    clf = BayesianLogisticRegression(alpha=args.alpha, ard=args.ard, predictive=args.predictive,
                                     fit_intercept=not args.no_intercept, dtype=args.dtype,
                                     device=args.device, random_state=0)
    model = Pipeline([("scale", StandardScaler()), ("blogreg", clf)]).fit(X, y)
    alpha = clf.alpha_ if isinstance(clf.alpha_, float) else float(clf.alpha_.min())
    summary = {"n_samples": X.shape[0], "classes": " ".join(map(str, clf.classes_)),
               ("alpha (prior precision)" if isinstance(clf.alpha_, float)
                else "smallest ARD alpha"): alpha,
               "effective parameters gamma": clf.gamma_, "log evidence": clf.log_evidence_,
               "accuracy (training)": float(model.score(X, y))}
    return model, summary
