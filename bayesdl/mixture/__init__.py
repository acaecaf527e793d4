"""Mixture models on the sufficient-statistics EM engine.

- :class:`GaussianMixture` -- maximum likelihood by EM (PRML 9.2);
- :class:`BayesianGaussianMixture` -- variational Bayes with Dirichlet or Dirichlet-process
  weights and a Gauss-Wishart prior (PRML 10.2).
"""

from .bayesian_mixture import BayesianGaussianMixture
from .gaussian_mixture import GaussianMixture

__all__ = ["BayesianGaussianMixture", "GaussianMixture"]
