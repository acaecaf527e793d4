"""Continuous latent variable models (PRML 12): PCA, probabilistic PCA, factor analysis and
Bayesian PCA. The probabilistic ones are fitted by EM on :mod:`bayesdl.core.em` and
marginalise missing entries (NaN) out exactly."""

from .bayesian_pca import BayesianPCA
from .factor_analysis import FactorAnalysis
from .pca import PCA
from .ppca import ProbabilisticPCA

__all__ = ["PCA", "ProbabilisticPCA", "FactorAnalysis", "BayesianPCA"]
