"""Monte-Carlo dropout (Gal & Ghahramani 2016, "Dropout as a Bayesian Approximation").

Dropout kept active at prediction time samples from an approximate posterior over networks;
T stochastic forward passes give T samples of the predictive distribution. :class:`MCDropout`
is a dropout layer that is active in ``eval()`` mode too and draws its masks from its own
``torch.Generator``, so predictions are reproducible without touching the global RNG.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


class MCDropout(nn.Module):
    """Dropout that stays on at prediction time, with explicit randomness.

    Parameters
    ----------
    p : probability of dropping a unit, in [0, 1).
    seed : seed of the layer's own generator (``None``: use ``generator`` or the global RNG).
    generator : a ``torch.Generator`` to draw masks from (share one between layers).

    ``batch_shared`` (attribute, default False): draw one mask per forward call and broadcast
    it over the batch, so that one call evaluates one sampled network on every example (see
    :func:`bayesdl.nn.function_sampling`).
    """

    def __init__(self, p: float = 0.1, *, seed: int | None = None,
                 generator: torch.Generator | None = None):
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout probability p must be in [0, 1), got {p}.")
        if seed is not None and generator is not None:
            raise ValueError("pass either seed or generator to MCDropout, not both.")
        self.p = float(p)
        self.generator = torch.Generator().manual_seed(int(seed)) if seed is not None else generator
        self.batch_shared = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.p == 0.0:
            return x
        shape = (1, *x.shape[1:]) if self.batch_shared else x.shape
        device = x.device if self.generator is None else self.generator.device
        # z = 1[u >= p] ~ Bernoulli(1 - p) with u ~ U(0, 1) (a uniform draw is several times
        # faster than bernoulli_), scaled by 1 / (1 - p) so that E[z x / (1 - p)] = x
        keep = torch.rand(shape, dtype=x.dtype, device=device, generator=self.generator) >= self.p
        return torch.where(keep.to(x.device), x * (1.0 / (1.0 - self.p)), 0.0)

    def extra_repr(self) -> str:
        return f"p={self.p}"


def to_mc_dropout(model: nn.Module, seed: int | None = None) -> nn.Module:
    """A copy of ``model`` whose ``nn.Dropout`` layers are :class:`MCDropout` (one shared
    generator seeded with ``seed``), so dropout stays active in ``eval()`` mode."""
    model = copy.deepcopy(model)
    generator = torch.Generator().manual_seed(int(seed)) if seed is not None else None

    def swap(module: nn.Module) -> None:
        for name, child in module.named_children():
            if isinstance(child, nn.Dropout):
                setattr(module, name, MCDropout(child.p, generator=generator))
            else:
                swap(child)

    swap(model)
    return model


def mc_dropout_weight_decay(length_scale: float, dropout: float, n_train: int,
                            tau: float = 1.0) -> float:
    """The weight decay that makes dropout training the MC-dropout variational objective.

    Gal & Ghahramani (2016, eq. 7 and appendix): with a prior N(0, l^-2 I) on the weights
    (prior length-scale l), keep probability 1 - p and model precision tau, the objective
    per training example carries the L2 term lambda ||W||^2 with

        lambda = l^2 (1 - p) / (2 N tau).

    Pass ``tau=1`` when the loss is a full Gaussian negative log-likelihood with its own noise
    (learnt or heteroscedastic), and the model precision tau when the loss is the squared
    error. PyTorch's ``weight_decay`` adds wd * W to the gradient, i.e. the gradient of
    (wd / 2) ||W||^2, so the returned value is wd = 2 lambda = l^2 (1 - p) / (N tau).
    """
    if length_scale <= 0 or tau <= 0:
        raise ValueError(f"length_scale and tau must be positive, got {length_scale} and {tau}.")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}.")
    if n_train < 1:
        raise ValueError(f"n_train must be a positive integer, got {n_train}.")
    return length_scale**2 * (1.0 - dropout) / (n_train * tau)
