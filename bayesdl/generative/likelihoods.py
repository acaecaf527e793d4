"""Observation models p(x | z) of autoencoders and VAEs: what a decoder's output means.

A decoder maps a code ``z`` to ``params`` of shape ``(..., N, *data_shape, P)``: ``P``
parameters for every pixel (or table entry). A likelihood turns them into log p(x | z)
summed over the pixels, the mean E[x | z], and draws x ~ p(x | z):

- :class:`BernoulliLikelihood` (P = 1 logit): binary data; on grey levels in [0, 1] its
  "log-likelihood" is the cross-entropy, which is not a normalised density (see
  :class:`ContinuousBernoulliLikelihood`);
- :class:`ContinuousBernoulliLikelihood` (P = 1 logit): the normalised density on [0, 1] of
  Loaiza-Ganem & Cunningham (2019), with the log normaliser computed in logit space, stable at
  and near logit 0 (lambda = 0.5) and for large logits;
- :class:`GaussianLikelihood`: a fixed variance (the squared error up to constants), one
  learned variance for every pixel (the linear VAE of Lucas et al. 2019, i.e. probabilistic
  PCA), or a variance per pixel predicted by the decoder (P = 2);
- :class:`CategoricalLikelihood` (P = ``n_levels`` logits): a softmax over ``n_levels``
  intensity levels (17 for the bundled 8x8 digits, whose pixels are k / 16), as in the
  discrete decoders of PixelCNN-style models.

Each has ``support``: the (low, high) range the data must lie in, or None.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

LOG_2PI = math.log(2 * math.pi)
# below this |logit| the continuous-Bernoulli normaliser uses its Taylor series (error < 1e-14)
_CB_TAYLOR = 0.05


def _sum_event(values: torch.Tensor, event_dim: int) -> torch.Tensor:
    """Sum the last ``event_dim`` dimensions (the pixels) of ``values``."""
    return values.sum(dim=tuple(range(-event_dim, 0))) if event_dim else values


def continuous_bernoulli_log_normalizer(logits: torch.Tensor) -> torch.Tensor:
    """log C(lambda) of the continuous Bernoulli, as a function of eta = logit(lambda).

    Loaiza-Ganem & Cunningham (2019) eq. 7: C(lambda) = 2 atanh(1 - 2 lambda) / (1 - 2 lambda)
    and C(1/2) = 2. With 1 - 2 sigma(eta) = -tanh(eta / 2) this is C = eta / tanh(eta / 2), an
    even function of eta, so

        log C = log|eta| - log tanh(|eta| / 2)
              = log|eta| - log(-expm1(-|eta|)) + log1p(exp(-|eta|)),

    exact for large |eta| (no sigmoid that saturates), and near eta = 0, where both terms
    diverge, the Taylor series log C = log 2 + eta^2 / 12 - 7 eta^4 / 1440 + 31 eta^6 / 90720
    + O(eta^8) (from log(u coth u) = u^2/3 - 7 u^4/90 + 62 u^6/2835 - ..., u = eta / 2).
    """
    a = logits.abs()
    small = a < _CB_TAYLOR
    safe = torch.where(small, torch.full_like(a, 1.0), a)  # no 0/0 in the unused branch's grad
    direct = safe.log() - torch.log(-torch.expm1(-safe)) + torch.log1p(torch.exp(-safe))
    sq = logits * logits
    taylor = math.log(2.0) + sq / 12 - 7 * sq**2 / 1440 + 31 * sq**3 / 90720
    return torch.where(small, taylor, direct)


def continuous_bernoulli_mean(logits: torch.Tensor) -> torch.Tensor:
    """E[x] of the continuous Bernoulli (Loaiza-Ganem & Cunningham 2019, Appendix).

    E[x] = lambda / (2 lambda - 1) + 1 / (2 atanh(1 - 2 lambda)) becomes, with u = eta / 2,
    1/2 + (coth u - 1/u) / 2: one half plus half the Langevin function, whose series near 0 is
    u / 3 - u^3 / 45, i.e. E[x] = 1/2 + eta / 12 - eta^3 / 720.
    """
    u = logits / 2
    small = u.abs() < _CB_TAYLOR
    safe = torch.where(small, torch.ones_like(u), u)
    langevin = torch.where(small, u / 3 - u**3 / 45, 1 / torch.tanh(safe) - 1 / safe)
    return 0.5 + langevin / 2


class PixelLikelihood(nn.Module):
    """Base class: ``params`` (..., N, *data_shape, P) -> per-pixel distributions.

    Subclasses set ``n_params`` (P) and ``support`` and implement :meth:`log_prob_pixels`,
    :meth:`mean` and :meth:`sample`.
    """

    n_params: int = 1
    support: tuple[float, float] | None = (0.0, 1.0)

    def log_prob_pixels(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """log p(x_d | z) for every pixel d: (..., N, *data_shape)."""
        raise NotImplementedError

    def log_prob(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """log p(x | z) = sum_d log p(x_d | z): (..., N) for ``x`` of shape (N, *data_shape)."""
        return _sum_event(self.log_prob_pixels(params, x), x.dim() - 1)

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        """E[x | z]: (..., N, *data_shape)."""
        raise NotImplementedError

    def sample(self, params: torch.Tensor, generator: torch.Generator | None = None):
        """One draw x ~ p(x | z): (..., N, *data_shape)."""
        raise NotImplementedError


class BernoulliLikelihood(PixelLikelihood):
    """p(x_d | z) = lambda_d^x_d (1 - lambda_d)^(1 - x_d), lambda_d = sigmoid(logit_d)."""

    def log_prob_pixels(self, params, x):
        # x log sigma(eta) + (1 - x) log(1 - sigma(eta)) = x eta - softplus(eta)
        eta = params[..., 0]
        return x * eta - F.softplus(eta)

    def mean(self, params):
        return torch.sigmoid(params[..., 0])

    def sample(self, params, generator=None):
        return torch.bernoulli(self.mean(params), generator=generator)


class ContinuousBernoulliLikelihood(PixelLikelihood):
    """The continuous Bernoulli on [0, 1] (Loaiza-Ganem & Cunningham 2019, eq. 7).

    p(x_d | z) = C(lambda_d) lambda_d^x_d (1 - lambda_d)^(1 - x_d): the Bernoulli's
    cross-entropy plus the log normaliser :func:`continuous_bernoulli_log_normalizer`, which
    makes it a density on [0, 1] for grey-level data.
    """

    def log_prob_pixels(self, params, x):
        eta = params[..., 0]
        return x * eta - F.softplus(eta) + continuous_bernoulli_log_normalizer(eta)

    def mean(self, params):
        return continuous_bernoulli_mean(params[..., 0])

    def sample(self, params, generator=None):
        # inverse CDF (Loaiza-Ganem & Cunningham, Appendix): x = log1p(u expm1(eta)) / eta,
        # evaluated at a = -|eta| <= 0 (no overflow) and reflected, x(eta, u) = 1 - x(-eta, 1-u)
        eta = params[..., 0]
        u = torch.rand(eta.shape, generator=generator, dtype=eta.dtype, device=eta.device)
        a = -eta.abs()
        flip = eta > 0
        u = torch.where(flip, 1 - u, u)
        tiny = a > -1e-6  # lambda = 1/2: the uniform distribution, x = u
        safe = torch.where(tiny, torch.full_like(a, -1.0), a)
        x = torch.where(tiny, u, torch.log1p(u * torch.expm1(safe)) / safe)
        return torch.where(flip, 1 - x, x).clamp(0.0, 1.0)


class GaussianLikelihood(PixelLikelihood):
    """p(x_d | z) = N(x_d | mu_d, sigma_d^2) for real-valued data (no support limits).

    Parameters
    ----------
    variance : ``"learned"`` (one variance sigma^2 for all pixels, a parameter of this module,
        as in probabilistic PCA), ``"per_pixel"`` (the decoder outputs a log-variance for each
        pixel; P = 2) or a positive float (fixed: the loss is the squared error / 2 sigma^2).
    min_variance : floor of a per-pixel variance: without it a pixel that is constant in the
        data (the corners of digits) drives its variance to 0 and the likelihood to infinity.
    """

    support = None

    def __init__(self, variance="learned", min_variance: float = 1e-4):
        super().__init__()
        if isinstance(variance, str):
            if variance not in ("learned", "per_pixel"):
                raise ValueError("variance must be 'learned', 'per_pixel' or a positive float, "
                                 f"got {variance!r}.")
        elif not float(variance) > 0:
            raise ValueError(f"a fixed variance must be positive, got {variance}.")
        self.variance = variance
        self.min_variance = float(min_variance)
        self.n_params = 2 if variance == "per_pixel" else 1
        if variance == "learned":
            self.log_variance = nn.Parameter(torch.zeros(()))
        else:
            self.register_buffer("log_variance",
                                 torch.tensor(0.0 if variance == "per_pixel" else
                                              math.log(float(variance))))

    def log_var(self, params: torch.Tensor) -> torch.Tensor:
        """log sigma_d^2 broadcastable to the pixels."""
        if self.variance != "per_pixel":
            return self.log_variance.to(params.dtype)
        # sigma_d^2 = exp(output) + min_variance: a floor that keeps the gradient alive
        return torch.logaddexp(params[..., 1], params.new_tensor(math.log(self.min_variance)))

    def log_prob_pixels(self, params, x):
        mu, log_var = params[..., 0], self.log_var(params)
        return -0.5 * (LOG_2PI + log_var + (x - mu) ** 2 * torch.exp(-log_var))

    def mean(self, params):
        return params[..., 0]

    def sample(self, params, generator=None):
        mu = params[..., 0]
        eps = torch.randn(mu.shape, generator=generator, dtype=mu.dtype, device=mu.device)
        return mu + torch.exp(0.5 * self.log_var(params)) * eps


class CategoricalLikelihood(PixelLikelihood):
    """A softmax over ``n_levels`` equally spaced intensities k / (n_levels - 1) in [0, 1].

    A value is assigned the nearest level, so data already on the grid (the bundled digits:
    17 levels) keep their exact value; log p is a log-probability (a discrete distribution).
    """

    def __init__(self, n_levels: int = 17):
        super().__init__()
        if int(n_levels) < 2:
            raise ValueError(f"n_levels must be at least 2, got {n_levels}.")
        self.n_levels = self.n_params = int(n_levels)

    def levels(self, x: torch.Tensor) -> torch.Tensor:
        """The level index (long) of each value in [0, 1]."""
        return torch.round(x * (self.n_levels - 1)).long().clamp(0, self.n_levels - 1)

    def log_prob_pixels(self, params, x):
        log_p = torch.log_softmax(params, dim=-1)  # (..., N, *shape, K)
        index = self.levels(x).expand(log_p.shape[:-1]).unsqueeze(-1)
        return log_p.gather(-1, index).squeeze(-1)

    def mean(self, params):
        grid = torch.linspace(0, 1, self.n_levels, dtype=params.dtype, device=params.device)
        return torch.softmax(params, dim=-1) @ grid

    def sample(self, params, generator=None):
        probs = torch.softmax(params, dim=-1)
        k = torch.multinomial(probs.reshape(-1, self.n_levels), 1, generator=generator)
        return k.reshape(probs.shape[:-1]).to(params.dtype) / (self.n_levels - 1)


LIKELIHOODS = {"bernoulli": BernoulliLikelihood,
               "continuous_bernoulli": ContinuousBernoulliLikelihood,
               "gaussian": GaussianLikelihood,
               "categorical": CategoricalLikelihood}


def make_likelihood(name: str, *, gaussian_variance="learned", n_levels: int = 17):
    """The likelihood called ``name`` (a key of :data:`LIKELIHOODS`)."""
    if name not in LIKELIHOODS:
        raise ValueError(f"unknown decoder likelihood {name!r}; choose from {sorted(LIKELIHOODS)}.")
    if name == "gaussian":
        return GaussianLikelihood(gaussian_variance)
    if name == "categorical":
        return CategoricalLikelihood(n_levels)
    return LIKELIHOODS[name]()


__all__ = ["BernoulliLikelihood", "CategoricalLikelihood", "ContinuousBernoulliLikelihood",
           "GaussianLikelihood", "LIKELIHOODS", "PixelLikelihood",
           "continuous_bernoulli_log_normalizer", "continuous_bernoulli_mean", "make_likelihood"]
