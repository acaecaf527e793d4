"""Bayesian fully connected layer (Bayes by Backprop, Blundell et al. 2015)."""

from __future__ import annotations

import math

import torch.nn.functional as F
from torch import nn

from ._variational import BayesAffine


class BayesLinear(BayesAffine):
    """y = x W^T + b with W, b ~ q = N(mu, softplus(rho)^2), a drop-in for ``nn.Linear``.

    Parameters
    ----------
    in_features, out_features, bias : as ``nn.Linear``.
    prior : a prior from :mod:`bayesdl.nn.priors` (default ``GaussianPrior(1.0)``).
    sampling : ``"reparam"``, ``"local"`` (local reparameterisation) or ``"flipout"``.
    posterior_rho_init : initial rho; sigma = softplus(rho) (-5 gives sigma ~ 0.0067).
    kl_samples : Monte-Carlo samples for the KL when the prior has no closed form.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, *, prior=None,
                 sampling: str = "reparam", posterior_rho_init: float = -5.0,
                 kl_samples: int = 1):
        super().__init__(prior, sampling, posterior_rho_init, kl_samples)
        self.in_features, self.out_features = int(in_features), int(out_features)
        self._add_variational("weight", (self.out_features, self.in_features))
        if bias:
            self._add_variational("bias", (self.out_features,))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # the means start as nn.Linear's weights do (Kaiming-uniform, PyTorch default)
        nn.init.kaiming_uniform_(self.weight_mu, a=math.sqrt(5))
        if "bias" in self._variational:
            bound = 1 / math.sqrt(self.in_features) if self.in_features > 0 else 0
            nn.init.uniform_(self.bias_mu, -bound, bound)

    def _op(self, x, weight, bias):
        return F.linear(x, weight, bias)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={'bias' in self._variational}, {super().extra_repr()}")
