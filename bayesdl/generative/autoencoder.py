"""Autoencoders: undercomplete and denoising (Vincent et al. 2008, 2010).

An autoencoder ``x -> z = f(x) -> x_hat = g(z)`` is trained to reconstruct its input through
a code ``z`` that cannot copy it: a bottleneck (undercomplete, ``latent_dim < D``) or a
corrupted input (denoising: reconstruct the clean ``x`` from ``x~ ~ q(x~ | x)``, Vincent et al.
2010 eq. 5). The reconstruction loss is a negative log-likelihood -log p(x | g(f(x~))) under
one of the observation models of :mod:`bayesdl.generative.likelihoods` (Bernoulli: the
cross-entropy; Gaussian with a fixed variance: the squared error), which is also the
reconstruction term of a VAE: an autoencoder is a VAE whose encoder is a point mass and whose
code has no prior.

:class:`AutoencoderNetwork` is the ``nn.Module`` (any encoder/decoder keeping the contracts of
:mod:`bayesdl.generative.networks`); :func:`corrupt` is the denoising corruption. An
autoencoder has no density over x; to draw new data, the estimator fits a Gaussian to the
training codes and decodes draws from it (the ex-post density estimation of Ghosh et al.
2020).
"""

from __future__ import annotations

import torch
from torch import nn

from .likelihoods import PixelLikelihood

NOISES = ("gaussian", "masking")


def corrupt(x: torch.Tensor, noise: str | None, level: float,
            generator: torch.Generator | None = None) -> torch.Tensor:
    """The corruption q(x~ | x) of a denoising autoencoder.

    ``"gaussian"``: x~ = x + level * eps, eps ~ N(0, I) (Vincent et al. 2010, additive
    isotropic Gaussian noise); ``"masking"``: each entry set to 0 with probability ``level``
    (Vincent et al. 2008); None: x itself.
    """
    if noise is None or level == 0:
        return x
    if noise == "gaussian":
        return x + level * torch.randn(x.shape, generator=generator, dtype=x.dtype,
                                       device=x.device)
    if noise == "masking":
        keep = torch.rand(x.shape, generator=generator, dtype=x.dtype, device=x.device) >= level
        return x * keep
    raise ValueError(f"noise must be one of {NOISES} or None, got {noise!r}.")


class AutoencoderNetwork(nn.Module):
    """A deterministic encoder f, a decoder g and an observation model p(x | g(z)).

    ``forward(x)`` returns the per-example reconstruction log-likelihood
    log p(x | g(f(corrupt(x)))) (N,): the training objective to maximise. ``encode``,
    ``decode`` and ``reconstruct`` give the code (N, L), the decoder's parameters
    (N, *data_shape, P) and the mean reconstruction E[x | g(f(x))].
    """

    def __init__(self, encoder: nn.Module, decoder: nn.Module, likelihood: PixelLikelihood,
                 noise: str | None = None, noise_level: float = 0.0):
        super().__init__()
        if noise is not None and noise not in NOISES:
            raise ValueError(f"noise must be one of {NOISES} or None, got {noise!r}.")
        self.encoder, self.decoder, self.likelihood = encoder, decoder, likelihood
        self.noise, self.noise_level = noise, float(noise_level)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)  # (N, L)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)  # (N, *data_shape, P)

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        return self.likelihood.mean(self.decode(self.encode(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x_tilde = corrupt(x, self.noise, self.noise_level) if self.training else x
        # Vincent et al. 2010 eq. 5: the clean x is the target of the corrupted input
        return self.likelihood.log_prob(self.decode(self.encode(x_tilde)), x)  # (N,)


__all__ = ["AutoencoderNetwork", "NOISES", "corrupt"]
