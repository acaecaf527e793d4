"""Aleatoric / epistemic decomposition of a Monte-Carlo predictive distribution.

Kendall & Gal (2017) eq. 9 for regression (law of total variance over the samples s):

    Var[y] = mean_s sigma_s^2   +   mean_s mu_s^2 - (mean_s mu_s)^2
    total  =     aleatoric      +           epistemic

and for classification (Houlsby et al. 2011, BALD; Depeweg et al. 2018):

    H[mean_s p_s] = mean_s H[p_s] + mean_s KL(p_s || mean_s p_s)
    total entropy = expected entropy (aleatoric) + mutual information I(y; w) (epistemic)
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch.distributions import Categorical, MixtureSameFamily, Normal, kl_divergence

from .predictive import MonteCarloCategorical


class Decomposition(NamedTuple):
    """Per-example total, aleatoric and epistemic uncertainty (variances or entropies, nats)."""

    total: torch.Tensor
    aleatoric: torch.Tensor
    epistemic: torch.Tensor


def decompose(dist) -> Decomposition:
    """Split the uncertainty of a predictive distribution from
    :func:`~bayesdl.uncertainty.predict_dist` (or any estimator's ``predict_dist``)."""
    if isinstance(dist, MonteCarloCategorical):
        p = dist.member_probs  # (N, S, K)
        members = Categorical(probs=p)
        mean = Categorical(probs=dist.probs.unsqueeze(-2).expand_as(p))
        return Decomposition(total=dist.entropy(),
                             aleatoric=members.entropy().mean(-1),
                             epistemic=kl_divergence(members, mean).mean(-1))
    if isinstance(dist, MixtureSameFamily) and isinstance(dist.component_distribution, Normal):
        w = dist.mixture_distribution.probs  # (N, S)
        comp = dist.component_distribution
        mean = (w * comp.loc).sum(-1, keepdim=True)  # (N, 1)
        return Decomposition(total=dist.variance,
                             aleatoric=(w * comp.scale**2).sum(-1),
                             epistemic=(w * (comp.loc - mean) ** 2).sum(-1))
    raise TypeError(
        f"decompose needs a Monte-Carlo predictive distribution (MonteCarloCategorical or a "
        f"MixtureSameFamily of Normals, as predict_dist returns); got {type(dist).__name__}, "
        "which carries no samples to split."
    )
