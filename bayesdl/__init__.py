"""bayesdl: probabilistic machine learning and Bayesian deep learning on PyTorch."""

__version__ = "0.1.0"

from .io import load, save  # noqa: E402

__all__ = ["__version__", "load", "save"]
