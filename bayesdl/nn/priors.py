"""Priors over the weights of Bayesian layers (Blundell et al. 2015, "Weight Uncertainty in
Neural Networks", section 3.3).

A prior is a small immutable object with ``log_prob(w)`` (elementwise) and, where the KL
divergence from a Gaussian posterior N(mu, sigma^2) has a closed form, ``kl_from(mu, sigma)``.
Layers call
``kl_from`` when ``has_closed_form_kl`` and otherwise estimate the KL by Monte Carlo.
``config()`` / :func:`prior_from_config` turn a prior into JSON and back, for saving models.
"""

from __future__ import annotations

import math

import torch
from torch.distributions import Normal


def _check_positive(name: str, value: float) -> float:
    value = float(value)
    if not math.isfinite(value) or value <= 0:
        raise ValueError(
            f"{name} must be a positive, finite standard deviation, got {value}. "
            f"Pass e.g. {name}=1.0."
        )
    return value


class GaussianPrior:
    """p(w) = N(w | loc, sigma^2), independently for every weight."""

    has_closed_form_kl = True

    def __init__(self, sigma: float = 1.0, loc: float = 0.0):
        self.sigma = _check_positive("sigma", sigma)
        self.loc = float(loc)

    def _normal(self, like: torch.Tensor) -> Normal:
        return Normal(torch.tensor(self.loc, dtype=like.dtype, device=like.device),
                      torch.tensor(self.sigma, dtype=like.dtype, device=like.device))

    def log_prob(self, w: torch.Tensor) -> torch.Tensor:
        return self._normal(w).log_prob(w)

    def kl_from(self, mu: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        """Elementwise KL(N(mu, sigma^2) || p), the closed form for two Gaussians:

            log(s_p / sigma) + (sigma^2 + (mu - m_p)^2) / (2 s_p^2) - 1/2

        (written out with Python-float constants: fewer kernels than the generic registry).
        """
        diff = mu - self.loc if self.loc else mu
        squares = torch.addcmul(sigma * sigma, diff, diff)  # sigma^2 + (mu - m_p)^2
        return squares * (0.5 / self.sigma**2) - torch.log(sigma) + (math.log(self.sigma) - 0.5)

    def config(self) -> dict:
        return {"name": "gaussian", "sigma": self.sigma, "loc": self.loc}

    def __repr__(self) -> str:
        return f"GaussianPrior(sigma={self.sigma:g}, loc={self.loc:g})"


class ScaleMixturePrior:
    """p(w) = pi N(w | 0, sigma1^2) + (1 - pi) N(w | 0, sigma2^2) (Blundell et al. eq. 7).

    With sigma1 > sigma2 and sigma2 small, it behaves like a spike-and-slab prior: many weights
    concentrate near zero, a few are allowed to be large. KL(q || p) has no closed form, so
    layers estimate it by Monte Carlo.
    """

    has_closed_form_kl = False

    def __init__(self, pi: float = 0.5, sigma1: float = 1.0, sigma2: float = math.exp(-6)):
        pi = float(pi)
        if not 0.0 < pi < 1.0:
            raise ValueError(f"pi must be strictly between 0 and 1, got {pi}. Pass e.g. pi=0.5.")
        self.pi = pi
        self.sigma1 = _check_positive("sigma1", sigma1)
        self.sigma2 = _check_positive("sigma2", sigma2)

    def log_prob(self, w: torch.Tensor) -> torch.Tensor:
        # log p(w) = logsumexp(log pi + log N(w|0,s1^2), log(1-pi) + log N(w|0,s2^2))
        zero = torch.zeros((), dtype=w.dtype, device=w.device)
        lp1 = Normal(zero, self.sigma1).log_prob(w) + math.log(self.pi)
        lp2 = Normal(zero, self.sigma2).log_prob(w) + math.log1p(-self.pi)
        return torch.logaddexp(lp1, lp2)

    def kl_from(self, mu: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError("KL(q || scale mixture) has no closed form; use Monte Carlo.")

    def config(self) -> dict:
        return {"name": "scale_mixture", "pi": self.pi, "sigma1": self.sigma1,
                "sigma2": self.sigma2}

    def __repr__(self) -> str:
        return f"ScaleMixturePrior(pi={self.pi:g}, sigma1={self.sigma1:g}, sigma2={self.sigma2:g})"


_PRIORS = {"gaussian": GaussianPrior, "scale_mixture": ScaleMixturePrior}


def prior_from_config(config: dict):
    """Rebuild a prior from :meth:`config` output."""
    config = dict(config)
    name = config.pop("name")
    if name not in _PRIORS:
        raise ValueError(f"Unknown prior {name!r}; choose from {sorted(_PRIORS)}.")
    return _PRIORS[name](**config)
