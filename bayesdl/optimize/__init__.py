"""Bayesian optimisation of black-box functions with a Gaussian-process surrogate."""

from .acquisition import (LogExpectedImprovement, ProbabilityOfImprovement, ThompsonSampling,
                          UpperConfidenceBound)
from .optimizer import BayesianOptimizer, Optimizer, minimize
from .space import Categorical, Integer, Real, Space

__all__ = ["BayesianOptimizer", "Optimizer", "minimize", "Space", "Real", "Integer",
           "Categorical", "LogExpectedImprovement", "ProbabilityOfImprovement",
           "UpperConfidenceBound", "ThompsonSampling"]
