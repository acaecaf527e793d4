"""scikit-learn estimators over Bayesian neural networks (no training loop to write)."""

from .bayesian_mlp import BayesianMLPClassifier, BayesianMLPRegressor

__all__ = ["BayesianMLPClassifier", "BayesianMLPRegressor"]
