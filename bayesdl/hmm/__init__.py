"""Hidden Markov models (PRML 13.2) on the EM engine, with hmmlearn's API:
:class:`GaussianHMM`, :class:`CategoricalHMM`, :class:`GMMHMM`, :class:`PoissonHMM`."""

from ._base import UnvisitedStateWarning
from .categorical import CategoricalHMM
from .gaussian import GaussianHMM
from .gmm import GMMHMM
from .poisson import PoissonHMM

__all__ = ["CategoricalHMM", "GMMHMM", "GaussianHMM", "PoissonHMM", "UnvisitedStateWarning"]
