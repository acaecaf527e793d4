"""Gaussian processes: kernels, exact regression (R&W chapter 2 and 5)."""

from .gpr import GaussianProcessRegressor, JitterWarning
from .kernels import (RBF, ConstantKernel, DotProduct, Exponentiation, ExpSineSquared, Kernel,
                      Matern, Product, RationalQuadratic, Sum, WhiteKernel)

__all__ = [
    "GaussianProcessRegressor", "JitterWarning", "Kernel", "RBF", "Matern", "RationalQuadratic",
    "ExpSineSquared", "DotProduct", "WhiteKernel", "ConstantKernel", "Sum", "Product",
    "Exponentiation",
]
