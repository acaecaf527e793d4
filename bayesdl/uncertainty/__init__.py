"""One uncertainty API for every predictive distribution: Monte-Carlo predictive
distributions of stochastic networks, the aleatoric/epistemic split, and calibration metrics.
"""

from .decompose import Decomposition, decompose
from .metrics import (accuracy, brier_score, encode_labels, expected_calibration_error,
                      interval_coverage, maximum_calibration_error, negative_log_likelihood,
                      ood_auroc, predictive_quantile, reliability_curve, rmse)
from .predictive import MonteCarloCategorical, monte_carlo_normal, predict_dist, sample_outputs

__all__ = [
    "Decomposition", "MonteCarloCategorical", "accuracy", "brier_score", "decompose",
    "encode_labels",
    "expected_calibration_error", "interval_coverage", "maximum_calibration_error",
    "monte_carlo_normal", "negative_log_likelihood", "ood_auroc", "predict_dist",
    "predictive_quantile", "reliability_curve", "rmse", "sample_outputs",
]
