"""Sample-quality metrics for generative models, on the features of a shipped classifier.

Inception weights (FID, KID) cannot be downloaded here and do not fit 8x8 digits, so bayesdl
ships a small digits classifier (:mod:`bayesdl.metrics.digits_classifier`, trained by
``python -m bayesdl.metrics.train_classifier``) and computes the same statistics on its
penultimate features:

- :func:`frechet_classifier_distance` (Heusel et al. 2017), with :func:`frechet_distance`
  between two Gaussians;
- :func:`kernel_classifier_distance` -> ``(value, standard error)`` (Bińkowski et al. 2018);
- :func:`precision_recall` (Kynkäänniemi et al. 2019), :func:`density_coverage` (Naeem et al.
  2020);
- :func:`class_histogram`, :func:`conditional_accuracy` (the classifier's labels of samples);
- :func:`sample_metrics`: all of them beside the real-data floor; :func:`metrics_table`.

Inputs are arrays of images ``(N, 8, 8)``, ``(N, 1, 8, 8)`` or rows ``(N, 64)`` in [0, 1]
(numpy or torch). For other data pass ``features=`` any callable ``(N, ...) -> (N, F)``.
"""

from .digits_classifier import digits_features, digits_logits, load_digits_classifier
from .sample_quality import (class_histogram, conditional_accuracy, density_coverage,
                             frechet_classifier_distance, frechet_distance,
                             kernel_classifier_distance, metrics_table, precision_recall,
                             sample_metrics)

__all__ = [
    "class_histogram",
    "conditional_accuracy",
    "density_coverage",
    "digits_features",
    "digits_logits",
    "frechet_classifier_distance",
    "frechet_distance",
    "kernel_classifier_distance",
    "load_digits_classifier",
    "metrics_table",
    "precision_recall",
    "sample_metrics",
]
