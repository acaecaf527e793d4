"""Linear models: Bayesian linear regression, basis functions and evidence-based model selection."""

from .basis import GaussianBasis, PolynomialBasis, SigmoidBasis
from .bayesian_linear import BayesianLinearRegression, UnderdeterminedWarning
from .bayesian_logistic import BayesianLogisticRegression
from .model_selection import DegreeSelection, select_degree

__all__ = [
    "BayesianLinearRegression",
    "BayesianLogisticRegression",
    "DegreeSelection",
    "GaussianBasis",
    "PolynomialBasis",
    "SigmoidBasis",
    "UnderdeterminedWarning",
    "select_degree",
]
