"""Variational autoencoders (Kingma & Welling 2014), conditional VAEs (Sohn et al. 2015) and
the importance-weighted bound (Burda et al. 2015).

The model: a prior p(z) = N(0, I_L), a decoder p(x | z) (one of the observation models of
:mod:`bayesdl.generative.likelihoods`) and an encoder q(z | x) = N(mu(x), diag sigma^2(x))
(the encoder network outputs (mu, log sigma^2)). A conditional VAE feeds a one-hot label y to
both: q(z | x, y), p(x | z, y), p(z) = N(0, I).

The objectives are functions beside the module:

- :func:`elbo`: the evidence lower bound (Kingma & Welling eq. 3)
  L(x) = E_q[log p(x | z)] - KL(q(z | x) || p(z)) with the reparameterisation
  z = mu + sigma * eps (eq. 10); the KL analytic (their SGVB-B, eq. 7 and Appendix B) or a
  Monte-Carlo estimate log q(z | x) - log p(z) (SGVB-A, eq. 6); a weight ``beta`` on the KL
  (beta-VAE, Higgins et al. 2017; KL warm-up, Sonderby et al. 2016, is beta rising from 0
  to 1);
- :func:`iwae_bound`: L_k(x) = E[log (1/k) sum_i p(x, z_i) / q(z_i | x)] (Burda et al.
  eq. 8), which rises with k to log p(x): with k = 5000 it is the usual estimate of the
  test log-likelihood, and with k > 1 it is also a training objective (the IWAE).
  It is batched over the k samples, chunked so memory stays bounded, and combined with
  log-sum-exp.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.distributions import Independent, Normal

from .likelihoods import LOG_2PI, PixelLikelihood

# elements of decoder output held at once by iwae_bound (k-chunk x N x pixels x P)
_IWAE_MAX_ELEMENTS = 2**22


class VAENetwork(nn.Module):
    """Encoder q(z | x[, y]), decoder p(x | z[, y]) and the standard normal prior.

    Parameters
    ----------
    encoder : module ``(x, context) -> (N, 2 L)``: (mu, log sigma^2) of q(z | x).
    decoder : module ``(z, context) -> (N, *data_shape, P)``: parameters of p(x | z).
    likelihood : the observation model (:class:`~bayesdl.generative.likelihoods.PixelLikelihood`).
    latent_dim : L.
    n_classes : K > 0 makes it conditional: ``y`` (N,) class codes in 0..K-1 are passed to
        both networks as one-hot ``context``.

    ``forward(x, y)`` returns the per-example training objective (the beta-ELBO, or the IWAE
    bound when ``k > 1``), so the module trains under ``DistributedDataParallel`` too.
    """

    def __init__(self, encoder: nn.Module, decoder: nn.Module, likelihood: PixelLikelihood,
                 latent_dim: int, n_classes: int = 0):
        super().__init__()
        self.encoder, self.decoder, self.likelihood = encoder, decoder, likelihood
        self.latent_dim, self.n_classes = int(latent_dim), int(n_classes)

    def context(self, y: torch.Tensor | None, n: int) -> torch.Tensor | None:
        """One-hot labels (n, K) for a conditional model, None otherwise."""
        if self.n_classes == 0:
            return None
        if y is None or tuple(y.shape) != (n,):
            got = None if y is None else tuple(y.shape)
            raise ValueError(f"this VAE is conditional: it needs class codes y of shape ({n},), "
                             f"got {got}.")
        return F.one_hot(y.long(), self.n_classes)

    def encode(self, x: torch.Tensor, y: torch.Tensor | None = None):
        """(mu, log sigma^2) of q(z | x[, y]), each (N, L)."""
        out = self.encoder(x, self.context(y, x.shape[0]))
        if out.shape != (x.shape[0], 2 * self.latent_dim):
            raise ValueError(f"the encoder must output (N, 2 * latent_dim) = ({x.shape[0]}, "
                             f"{2 * self.latent_dim}), got {tuple(out.shape)}.")
        mu, log_var = out.chunk(2, dim=-1)
        return mu, log_var

    def posterior(self, x: torch.Tensor, y: torch.Tensor | None = None) -> Independent:
        """q(z | x[, y]) as a distribution with event shape (L,)."""
        mu, log_var = self.encode(x, y)
        return Independent(Normal(mu, torch.exp(0.5 * log_var)), 1)

    def prior(self, n: int = 1, dtype=None, device=None) -> Independent:
        """p(z) = N(0, I_L), batch shape (n,)."""
        zero = torch.zeros(n, self.latent_dim, dtype=dtype, device=device)
        return Independent(Normal(zero, torch.ones_like(zero)), 1)

    def decode(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Decoder parameters (..., N, *data_shape, P) for codes ``z`` (..., N, L)."""
        lead = z.shape[:-1]
        flat = z.reshape(-1, self.latent_dim)  # (S N, L)
        context = None
        if self.n_classes:
            context = self.context(y, lead[-1]).repeat(flat.shape[0] // lead[-1], 1)
        params = self.decoder(flat, context)
        return params.view(*lead, *params.shape[1:])

    def log_likelihood(self, x: torch.Tensor, z: torch.Tensor, y: torch.Tensor | None = None):
        """log p(x | z[, y]) (..., N) for ``x`` (N, *data_shape) and ``z`` (..., N, L)."""
        return self.likelihood.log_prob(self.decode(z, y), x)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None, *, k: int = 1,
                beta: float = 1.0, kl: str = "analytic") -> torch.Tensor:
        if k > 1:
            return iwae_bound(self, x, y, k=k)
        return elbo(self, x, y, beta=beta, kl=kl)


def gaussian_kl(mu: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, diag sigma^2) || N(0, I)) per row (N,).

    Kingma & Welling Appendix B: -KL = 1/2 sum_j (1 + log sigma_j^2 - mu_j^2 - sigma_j^2).
    """
    return 0.5 * (mu**2 + log_var.exp() - 1 - log_var).sum(-1)


def _standard_normal_log_prob(v: torch.Tensor) -> torch.Tensor:
    return -0.5 * (LOG_2PI + v**2).sum(-1)


def _reparameterise(mu, log_var, eps):
    """z = mu + sigma * eps (Kingma & Welling eq. 10): (S, N, L) from eps (S, N or 1, L)."""
    return mu + torch.exp(0.5 * log_var) * eps


def _draws(mu, n_samples: int, generator, eps):
    """eps ~ N(0, I): (S, N, L) fresh draws, or the given (S, L) shared by every row."""
    if eps is not None:
        if eps.dim() != 2 or eps.shape[1] != mu.shape[-1]:
            raise ValueError(f"eps must have shape (n_samples, latent_dim={mu.shape[-1]}), got "
                             f"{tuple(eps.shape)}.")
        return eps.to(mu)[:, None, :]  # (S, 1, L): common random numbers for all rows
    return torch.randn((n_samples, *mu.shape), generator=generator, dtype=mu.dtype,
                       device=mu.device)


def _log_weights(model, x, y, mu, log_var, eps):
    """log p(x, z_i) - log q(z_i | x) for the draws z_i = mu + sigma eps_i: (S, N)."""
    z = _reparameterise(mu, log_var, eps)
    # log q(z | x) = sum_j log N(z_j | mu_j, sigma_j^2) with (z_j - mu_j) / sigma_j = eps_j
    log_q = _standard_normal_log_prob(eps) - 0.5 * log_var.sum(-1)
    return model.log_likelihood(x, z, y) + _standard_normal_log_prob(z) - log_q


def elbo(model: VAENetwork, x: torch.Tensor, y: torch.Tensor | None = None, *,
         n_samples: int = 1, kl: str = "analytic", beta: float = 1.0,
         generator: torch.Generator | None = None, eps: torch.Tensor | None = None,
         return_terms: bool = False):
    """The evidence lower bound per example (N,), estimated with ``n_samples`` draws of z.

    ``kl="analytic"``: L = 1/S sum_s log p(x | z_s) - beta KL(q || p) (SGVB-B, Kingma &
    Welling eq. 7); ``kl="mc"``: L = 1/S sum_s [log p(x | z_s) - beta (log q(z_s | x) -
    log p(z_s))] (SGVB-A, eq. 6). ``beta`` weighs the KL (1: the ELBO itself). ``eps``
    (S, L): standard-normal draws shared by every row instead of fresh ones (common random
    numbers: a row's estimate then does not depend on the other rows). With
    ``return_terms`` returns ``(elbo, expected log-likelihood, KL)``, each (N,).
    """
    if kl not in ("analytic", "mc"):
        raise ValueError(f"kl must be 'analytic' or 'mc', got {kl!r}.")
    mu, log_var = model.encode(x, y)  # (N, L) each
    eps = _draws(mu, int(n_samples), generator, eps)  # (S, N or 1, L)
    z = _reparameterise(mu, log_var, eps)  # (S, N, L)
    log_px = model.log_likelihood(x, z, y).mean(0)  # (N,)
    if kl == "analytic":
        kl_term = gaussian_kl(mu, log_var)
    else:
        log_q = _standard_normal_log_prob(eps) - 0.5 * log_var.sum(-1)  # (S, N or 1) - (N,)
        kl_term = (log_q - _standard_normal_log_prob(z)).mean(0)
    value = log_px - beta * kl_term
    return (value, log_px, kl_term) if return_terms else value


def iwae_bound(model: VAENetwork, x: torch.Tensor, y: torch.Tensor | None = None, *, k: int,
               generator: torch.Generator | None = None, eps: torch.Tensor | None = None,
               max_elements: int = _IWAE_MAX_ELEMENTS) -> torch.Tensor:
    """The importance-weighted bound L_k per example (N,) (Burda et al. 2015, eq. 8).

    L_k = log (1/k) sum_{i=1..k} w_i, w_i = p(x, z_i) / q(z_i | x), z_i ~ q(z | x): the
    log-mean-exp of the log-weights, L_1 = the ELBO's one-sample estimate, L_k <= L_{k+1}
    in expectation and L_k -> log p(x). The k draws go through the decoder in chunks of at
    most ``max_elements`` decoder outputs and the chunks' log-sum-exps combine with
    ``logaddexp``, so memory does not grow with k. ``eps`` (k, L): standard-normal draws
    shared by every row (common random numbers), as in :func:`elbo`.
    """
    k = int(k)
    if k < 1:
        raise ValueError(f"k must be a positive number of importance samples, got {k}.")
    if eps is not None and len(eps) != k:
        raise ValueError(f"eps holds {len(eps)} draws but k = {k}.")
    mu, log_var = model.encode(x, y)  # (N, L)
    per_draw = x.numel() * model.likelihood.n_params  # decoder outputs for one z per row
    chunk = max(1, min(k, int(max_elements) // max(per_draw, 1)))
    total = None
    for start in range(0, k, chunk):
        size = min(chunk, k - start)
        draws = _draws(mu, size, generator, None if eps is None else eps[start:start + size])
        log_w = _log_weights(model, x, y, mu, log_var, draws)
        part = torch.logsumexp(log_w, dim=0)  # (N,)
        total = part if total is None else torch.logaddexp(total, part)
    return total - math.log(k)


def kl_warmup_weight(epoch: int, batch_index: int, n_batches: int, warmup_epochs: float) -> float:
    """Linear KL warm-up (Sonderby et al. 2016; Bowman et al. 2016): beta rises from 0 to 1
    over the first ``warmup_epochs`` epochs, step by step; 1 without warm-up."""
    if warmup_epochs <= 0:
        return 1.0
    return min(1.0, (epoch + (batch_index + 1) / n_batches) / warmup_epochs)


__all__ = ["VAENetwork", "elbo", "gaussian_kl", "iwae_bound", "kl_warmup_weight"]
