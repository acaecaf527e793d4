"""Acquisition functions for minimisation, as torch functions of the GP posterior.

Each acquisition maps the posterior mean ``mu`` and standard deviation ``sigma`` of the latent
f at candidate points (standardised units) and the incumbent ``best`` (smallest standardised
observation) to a score to MAXIMISE. With the standardised improvement z = (best - mu) / sigma:

- ``LogExpectedImprovement``: log EI = log sigma + log h(z), h(z) = phi(z) + z Phi(z)
  (Jones et al. 1998 eq. 15), with log h evaluated stably (Ament et al. 2023, "Unexpected
  improvements to expected improvement", eq. 9) so it stays finite and has useful gradients
  where EI underflows to 0 in floating point.
- ``ProbabilityOfImprovement``: log Phi(z) (Kushner 1964), in log form for the same reason.
- ``UpperConfidenceBound``: -(mu - sqrt(beta) sigma) (Srinivas et al. 2010; the lower bound
  for minimisation).
- ``ThompsonSampling``: the negated value of one joint posterior draw of the latent f (not of
  the noisy y) over a candidate set (Thompson 1933); it is not smooth, so
  :class:`~bayesdl.optimize.BayesianOptimizer` picks the arg-max over a Sobol set rather than
  running L-BFGS-B on it.
"""

from __future__ import annotations

import math

import torch

_LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)
_HALF_LOG_PI_OVER_2 = 0.5 * math.log(math.pi / 2)


def log1mexp(x: torch.Tensor) -> torch.Tensor:
    """log(1 - exp(x)) for x < 0, accurate at both ends (Maechler 2012)."""
    return torch.where(x > -math.log(2.0), torch.log(-torch.expm1(x)),
                       torch.log1p(-torch.exp(x)))


def log_h(z: torch.Tensor) -> torch.Tensor:
    """log h(z) = log(phi(z) + z Phi(z)), stable for all z (Ament et al. 2023, eq. 9).

    z > -1: the direct formula. -1/sqrt(eps) < z <= -1: h(z) = phi(z) (1 - |z| erfcx(-z/sqrt2)
    sqrt(pi/2)), so log h = -z^2/2 - log sqrt(2 pi) + log1mexp(log(erfcx(-z/sqrt2) |z|) +
    log sqrt(pi/2)). Below: the asymptote log h ~ -z^2/2 - log sqrt(2 pi) - 2 log|z|.
    """
    eps = torch.finfo(z.dtype).eps
    upper = z > -1
    # Each branch is evaluated on a safe stand-in so no NaN leaks into the other's gradient.
    z_up = torch.where(upper, z, torch.zeros_like(z))
    # phi(z) + z Phi(z) with the standard normal density and distribution function
    phi = torch.exp(-0.5 * z_up ** 2 - _LOG_SQRT_2PI)
    direct = torch.log(phi + z_up * torch.special.ndtr(z_up))
    z_lo = torch.where(upper, -torch.ones_like(z), z)
    in_middle = z_lo > -1 / math.sqrt(eps)
    z_mid = torch.where(in_middle, z_lo, -torch.ones_like(z))
    z_far = torch.where(in_middle, -torch.ones_like(z) / math.sqrt(eps), z_lo)
    middle = -0.5 * z_mid ** 2 - _LOG_SQRT_2PI + log1mexp(
        torch.log(torch.special.erfcx(-z_mid / math.sqrt(2)) * z_mid.abs()) + _HALF_LOG_PI_OVER_2)
    far = -0.5 * z_far ** 2 - _LOG_SQRT_2PI - 2 * torch.log(z_far.abs())
    lower = torch.where(in_middle, middle, far)
    return torch.where(upper, direct, lower)


class Acquisition:
    """Base: ``score(mu, sigma, best) -> (...,)``, larger is better."""

    name: str = ""
    smooth = True  # False: maximised by arg-max over a candidate set, not by L-BFGS-B

    def score(self, mu: torch.Tensor, sigma: torch.Tensor, best: float) -> torch.Tensor:
        raise NotImplementedError


class LogExpectedImprovement(Acquisition):
    """log E[max(best - f, 0)] = log sigma + log h((best - mu) / sigma)."""

    name = "LogEI"

    def score(self, mu, sigma, best):
        sigma = sigma.clamp_min(1e-12)
        return torch.log(sigma) + log_h((best - mu) / sigma)


class ProbabilityOfImprovement(Acquisition):
    """log P(f < best - xi) = log Phi((best - xi - mu) / sigma)."""

    name = "LogPI"

    def __init__(self, xi: float = 0.01):
        self.xi = xi

    def score(self, mu, sigma, best):
        return torch.special.log_ndtr((best - self.xi - mu) / sigma.clamp_min(1e-12))


class UpperConfidenceBound(Acquisition):
    """-(mu - sqrt(beta) sigma): optimism in the face of uncertainty for minimisation."""

    name = "UCB"

    def __init__(self, beta: float = 4.0):
        if beta < 0:
            raise ValueError(f"UCB needs beta >= 0, got {beta}.")
        self.beta = beta

    def score(self, mu, sigma, best):
        return -(mu - math.sqrt(self.beta) * sigma)


class ThompsonSampling(Acquisition):
    """The negated value of a joint posterior draw, filled in by the optimiser."""

    name = "TS"
    smooth = False


ACQUISITIONS = {
    "LogEI": LogExpectedImprovement, "EI": LogExpectedImprovement,
    "PI": ProbabilityOfImprovement, "LogPI": ProbabilityOfImprovement,
    "UCB": UpperConfidenceBound, "LCB": UpperConfidenceBound,
    "TS": ThompsonSampling, "thompson": ThompsonSampling,
}


def get_acquisition(acq) -> Acquisition:
    """An :class:`Acquisition` from an instance or a name (``"LogEI"``, ``"PI"``, ``"UCB"``, ``"TS"``)."""
    if isinstance(acq, Acquisition):
        return acq
    if acq not in ACQUISITIONS:
        raise ValueError(f"unknown acquisition {acq!r}; use one of {sorted(ACQUISITIONS)}.")
    return ACQUISITIONS[acq]()
