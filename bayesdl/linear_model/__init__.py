"""Linear models: Bayesian linear regression, basis functions and evidence-based model selection."""

from .basis import GaussianBasis, PolynomialBasis, SigmoidBasis
from .bayesian_linear import BayesianLinearRegression, UnderdeterminedWarning
from .model_selection import DegreeSelection, select_degree

__all__ = [
    "BayesianLinearRegression",
    "DegreeSelection",
    "GaussianBasis",
    "PolynomialBasis",
    "SigmoidBasis",
    "UnderdeterminedWarning",
    "select_degree",
]
