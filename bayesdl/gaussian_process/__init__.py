"""Gaussian processes: kernels, exact regression (R&W chapters 2 and 5), Laplace classification
(R&W chapter 3)."""

from .gpc import GaussianProcessClassifier
from .gpr import GaussianProcessRegressor, JitterWarning
from .sparse import SparseGaussianProcessRegressor
from .kernels import (RBF, ConstantKernel, DotProduct, Exponentiation, ExpSineSquared, Kernel,
                      Matern, Product, RationalQuadratic, Sum, WhiteKernel)

__all__ = [
    "SparseGaussianProcessRegressor",
    "GaussianProcessClassifier",
    "GaussianProcessRegressor", "JitterWarning", "Kernel", "RBF", "Matern", "RationalQuadratic",
    "ExpSineSquared", "DotProduct", "WhiteKernel", "ConstantKernel", "Sum", "Product",
    "Exponentiation",
]
