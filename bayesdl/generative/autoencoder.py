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

from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import TransformerMixin
from sklearn.utils import check_array
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted
from torch import nn

from .._base import _host
from ._base import _GenerativeEstimator
from .likelihoods import LIKELIHOODS, PixelLikelihood, make_likelihood
from .networks import check_image_shape, make_networks

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


# -- estimators -------------------------------------------------------------------------------
_EVAL_ROWS = 1024  # rows per forward pass when encoding/scoring many rows


class _EncoderDecoderEstimator(TransformerMixin, _GenerativeEstimator):
    """What the autoencoder and VAE estimators share: the networks, the decoder likelihood
    (which sets the data range), binarisation and batched evaluation."""

    _parameter_constraints: dict = {
        **_GenerativeEstimator._parameter_constraints,
        "latent_dim": [Interval(Integral, 1, None, closed="left")],
        "architecture": [StrOptions({"mlp", "conv"})],
        "hidden_sizes": ["array-like"],
        "decoder": [StrOptions(set(LIKELIHOODS))],
        "gaussian_variance": [StrOptions({"learned", "per_pixel"}),
                              Interval(Real, 0, None, closed="neither")],
        "n_levels": [Interval(Integral, 2, None, closed="left")],
        "binarize": [StrOptions({"static", "dynamic"}), None],
    }

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = [self.dtype]  # codes in the model's dtype
        return tags

    def _support(self):
        return LIKELIHOODS[self.decoder].support

    def _likelihood(self):
        return make_likelihood(self.decoder, gaussian_variance=self.gaussian_variance,
                               n_levels=self.n_levels)

    def _networks(self, likelihood, encoder_outputs: int, n_context: int = 0):
        if self.architecture == "conv":
            check_image_shape(self.data_shape_)
        return make_networks(self.architecture, self.data_shape_, self.latent_dim,
                             encoder_outputs, likelihood.n_params, self.hidden_sizes, n_context)

    def _check_options(self) -> None:
        if self.binarize is not None and self.decoder != "bernoulli":
            raise ValueError(f"binarize={self.binarize!r} makes binary data for a Bernoulli "
                             f"decoder; with decoder={self.decoder!r} use binarize=None.")

    def _input(self, x: torch.Tensor) -> torch.Tensor:
        """The data as the model sees it: thresholded at 1/2 with static binarisation."""
        return (x > 0.5).to(x.dtype) if self.binarize == "static" else x

    def _training_batch(self, x: torch.Tensor) -> torch.Tensor:
        # dynamic binarisation: a fresh Bernoulli draw of every pixel at every step, from the
        # global RNG (the Trainer checkpoints it, so a resumed run draws the same images)
        return torch.bernoulli(x) if self.binarize == "dynamic" else x

    def _rows(self, fn, x: torch.Tensor, codes: torch.Tensor | None = None,
              rows: int = _EVAL_ROWS) -> torch.Tensor:
        """``fn(x_chunk, codes_chunk)`` over chunks of ``rows`` rows, without gradients,
        concatenated."""
        self.module_.eval()
        out = []
        with torch.no_grad():
            for s in range(0, len(x), rows):
                out.append(fn(x[s:s + rows], None if codes is None else codes[s:s + rows]))
        return torch.cat(out)

    def reconstruction_error(self, X, y=None):
        """Mean squared error per row between ``X`` (as the model sees it) and
        :meth:`reconstruct` (N,)."""
        X_hat = self.reconstruct(X) if y is None else self.reconstruct(X, y)
        x = self._to_numpy(self._input(self._validate_data(X, reset=False, min_samples=1)[0]))
        return ((x.reshape(len(x), -1) - X_hat.reshape(len(x), -1)) ** 2).mean(1)

    def _codes(self, Z) -> torch.Tensor:
        check_is_fitted(self)
        Z = self._to_torch(check_array(_host(Z), dtype=self._numpy_dtype))
        if Z.shape[1] != self.latent_dim:
            raise ValueError(f"codes must have latent_dim = {self.latent_dim} columns, got "
                             f"{Z.shape[1]}.")
        return Z


class AutoEncoder(_EncoderDecoderEstimator):
    """An undercomplete or denoising autoencoder trained by maximum likelihood.

    Parameters
    ----------
    latent_dim : size L of the code (undercomplete when L < the number of pixels/features).
    architecture : ``"mlp"`` (rows or images) or ``"conv"`` (images of at least 8x8).
    hidden_sizes : hidden widths of the MLP encoder (the decoder mirrors them).
    decoder : the observation model of the reconstruction loss: ``"bernoulli"`` (the
        cross-entropy; data in [0, 1]), ``"continuous_bernoulli"``, ``"gaussian"`` (real data;
        with a fixed ``gaussian_variance`` the squared error) or ``"categorical"``
        (``n_levels`` intensity levels). See :mod:`bayesdl.generative.likelihoods`.
    gaussian_variance : ``"learned"``, ``"per_pixel"`` or a fixed positive variance.
    n_levels : levels of the categorical decoder (17: the bundled digits).
    noise, noise_level : denoising corruption (``"gaussian"`` with standard deviation
        ``noise_level``, ``"masking"`` with drop probability ``noise_level``) or None.
    binarize : ``"static"`` (threshold 1/2), ``"dynamic"`` (a Bernoulli draw of every pixel at
        every step) or None; Bernoulli decoder only.
    max_epochs, batch_size, learning_rate, checkpoint_dir, resume, verbose, device, dtype,
    random_state : training through :class:`bayesdl.train.Trainer` (Adam).

    Attributes
    ----------
    module_ : the trained :class:`AutoencoderNetwork`.
    code_mean_, code_covariance_ : mean and covariance of the training codes: the Gaussian
        that :meth:`sample` draws codes from (Ghosh et al. 2020, ex-post density estimation).
    history_, n_iter_ : per-epoch training records and the number of epochs run.
    """

    _parameter_constraints: dict = {
        **_EncoderDecoderEstimator._parameter_constraints,
        "noise": [StrOptions(set(NOISES)), None],
        "noise_level": [Interval(Real, 0, None, closed="left")],
    }

    def __init__(self, latent_dim=10, *, architecture="mlp", hidden_sizes=(256, 128),
                 decoder="bernoulli", gaussian_variance="learned", n_levels=17, noise=None,
                 noise_level=0.0, binarize=None, max_epochs=50, batch_size=128,
                 learning_rate=1e-3, checkpoint_dir=None, resume=False, verbose=False,
                 device="cpu", dtype="float32", random_state=None):
        self.latent_dim = latent_dim
        self.architecture = architecture
        self.hidden_sizes = hidden_sizes
        self.decoder = decoder
        self.gaussian_variance = gaussian_variance
        self.n_levels = n_levels
        self.noise = noise
        self.noise_level = noise_level
        self.binarize = binarize
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.checkpoint_dir = checkpoint_dir
        self.resume = resume
        self.verbose = verbose
        self.device = device
        self.dtype = dtype
        self.random_state = random_state

    def _build_module(self) -> AutoencoderNetwork:
        likelihood = self._likelihood()
        encoder, decoder = self._networks(likelihood, self.latent_dim)
        return AutoencoderNetwork(encoder, decoder, likelihood, self.noise, self.noise_level)

    def _loss(self, model, batch, step):
        return -model(self._training_batch(batch[0])).mean()

    def fit(self, X, y=None):
        """Train on images (N, H, W) / (N, C, H, W) or rows (N, D); ``y`` is ignored."""
        self._validate_params()
        self._check_options()
        x, _ = self._validate_data(X, reset=True)
        x = self._input(x)
        self.module_ = self._new_module()
        self._train(self._loss, (x,))
        codes = self._rows(lambda xb, _: self.module_.encode(xb), x).double()  # (N, L)
        self.code_mean_ = self._to_numpy(codes.mean(0))
        self.code_covariance_ = np.atleast_2d(np.cov(self._to_numpy(codes), rowvar=False))
        return self

    def transform(self, X):
        """The codes f(x) (N, L)."""
        x = self._input(self._validate_data(X, reset=False, min_samples=1)[0])
        return self._to_numpy(self._rows(lambda xb, _: self.module_.encode(xb), x))

    def decode(self, Z):
        """E[x | g(z)] for codes ``Z`` (N, L), in the training data's shape and range."""
        Z = self._codes(Z)
        return self._as_output(self._rows(
            lambda zb, _: self.module_.likelihood.mean(self.module_.decode(zb)), Z))

    def reconstruct(self, X):
        """E[x | g(f(x))]: the reconstruction of ``X`` (no corruption)."""
        return self.decode(self.transform(X))

    def sample(self, n: int, y=None):
        """Decode ``n`` codes drawn from the Gaussian fitted to the training codes."""
        check_is_fitted(self)
        if y is not None:
            raise ValueError("an AutoEncoder is unconditional: sample(n) takes no y.")
        gen = np.random.default_rng(self._seed())
        Z = gen.multivariate_normal(self.code_mean_, self.code_covariance_, size=int(n))
        return self.decode(Z)


__all__ = ["AutoEncoder", "AutoencoderNetwork", "NOISES", "corrupt"]
