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

import hashlib
import math
from numbers import Integral, Real

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted
from torch import nn
from torch.distributions import Independent, Normal

from .autoencoder import _EVAL_ROWS, _EncoderDecoderEstimator
from .likelihoods import LOG_2PI, PixelLikelihood

# elements of decoder output held at once by iwae_bound (k-chunk x N x pixels x P)
_IWAE_MAX_ELEMENTS = 2**22
# draws of z for the ELBO that picks a conditional VAE's label when none is given
_LABEL_SAMPLES = 10
# standard-normal draws (k x rows x L) an estimator holds at once while scoring
_DRAW_ELEMENTS = 2**22


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
    """eps ~ N(0, I): (S, N, L) fresh draws, the given (S, N, L), or the given (S, L)
    shared by every row."""
    if eps is None:
        return torch.randn((n_samples, *mu.shape), generator=generator, dtype=mu.dtype,
                           device=mu.device)
    n, latent = mu.shape
    if eps.dim() == 2 and eps.shape[1] == latent:
        return eps.to(mu)[:, None, :]  # (S, 1, L): common random numbers for all rows
    if eps.dim() == 3 and eps.shape[1:] == (n, latent):
        return eps.to(mu)
    raise ValueError(f"eps must have shape (n_samples, {latent}) or (n_samples, {n}, {latent}) "
                     f"(draws, [rows,] latent_dim), got {tuple(eps.shape)}.")


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
    numbers: a row's estimate then does not depend on the other rows), or (S, N, L) draws
    for each row. With
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
    ``logaddexp``, so memory does not grow with k. ``eps`` (k, L) or (k, N, L): given
    standard-normal draws, as in :func:`elbo`.
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




# -- estimators -------------------------------------------------------------------------------
class VAE(_EncoderDecoderEstimator):
    """A variational autoencoder (Kingma & Welling 2014) as an estimator.

    Parameters
    ----------
    latent_dim : size L of z (2 draws the Kingma & Welling Figure 4 manifold).
    architecture, hidden_sizes : ``"mlp"`` with these hidden widths (the decoder mirrors them;
        ``()`` is the linear VAE, which with a Gaussian decoder is probabilistic PCA, Lucas et
        al. 2019), or ``"conv"`` (images of at least 8x8).
    decoder : p(x | z): ``"bernoulli"`` (binary data; grey levels in [0, 1] are accepted, but
        its log-likelihood is then not a normalised density), ``"continuous_bernoulli"``
        (grey levels in [0, 1]), ``"gaussian"`` (real data, any range) or ``"categorical"``
        (``n_levels`` intensity levels in [0, 1]). See :mod:`bayesdl.generative.likelihoods`.
    gaussian_variance : ``"learned"`` (one variance), ``"per_pixel"`` (the decoder's) or a
        fixed positive float.
    n_levels : levels of the categorical decoder (17: the bundled digits, k / 16).
    kl : ``"analytic"`` (SGVB-B) or ``"mc"`` (SGVB-A) KL term while training.
    beta : weight of the KL (beta-VAE; 1 = the ELBO).
    kl_warmup : epochs over which the KL weight rises linearly from 0 to ``beta``
        (Sonderby et al. 2016); 0: none.
    n_importance_samples : k of the training bound: 1 trains on the ELBO, k > 1 on the IWAE
        bound L_k (Burda et al. 2015; then ``beta`` must be 1 and ``kl_warmup`` 0).
    binarize : ``"static"`` (threshold 1/2, in training and scoring), ``"dynamic"`` (a fresh
        Bernoulli draw of every pixel at every training step; score binary data) or None.
        Bernoulli decoder only.
    n_score_samples : k of the importance-weighted estimate that :meth:`score_samples` returns.
    max_epochs, batch_size, learning_rate, checkpoint_dir, resume, verbose, device, dtype,
    random_state : training through :class:`bayesdl.train.Trainer` (Adam); ``random_state``
        also seeds every evaluation: a row's draws of z come from ``random_state`` and the
        row's values, so they are independent across rows, yet a row's estimate does not
        depend on the other rows scored with it.

    Attributes
    ----------
    module_ : the trained :class:`VAENetwork` (encoder, decoder and likelihood modules).
    history_, n_iter_ : per-epoch training records (negative training objective) and epochs.

    Examples
    --------
    >>> from bayesdl.datasets import load_digits_images
    >>> from bayesdl.generative import VAE
    >>> X, y = load_digits_images()
    >>> vae = VAE(latent_dim=2, max_epochs=5, random_state=0).fit(X)
    >>> Z = vae.transform(X)                   # posterior means (1797, 2)
    >>> images = vae.sample(16)                # (16, 8, 8) in [0, 1]
    >>> ll = vae.log_likelihood(X[:10], n_samples=100)  # IWAE estimates of log p(x)
    """

    _parameter_constraints: dict = {
        **_EncoderDecoderEstimator._parameter_constraints,
        "kl": [StrOptions({"analytic", "mc"})],
        "beta": [Interval(Real, 0, None, closed="left")],
        "kl_warmup": [Interval(Real, 0, None, closed="left")],
        "n_importance_samples": [Interval(Integral, 1, None, closed="left")],
        "n_score_samples": [Interval(Integral, 1, None, closed="left")],
    }

    def __init__(self, latent_dim=10, *, architecture="mlp", hidden_sizes=(256, 128),
                 decoder="bernoulli", gaussian_variance="learned", n_levels=17, kl="analytic",
                 beta=1.0, kl_warmup=0.0, n_importance_samples=1, binarize=None,
                 n_score_samples=1000, max_epochs=50, batch_size=128, learning_rate=1e-3,
                 checkpoint_dir=None, resume=False, verbose=False, device="cpu",
                 dtype="float32", random_state=None):
        self.latent_dim = latent_dim
        self.architecture = architecture
        self.hidden_sizes = hidden_sizes
        self.decoder = decoder
        self.gaussian_variance = gaussian_variance
        self.n_levels = n_levels
        self.kl = kl
        self.beta = beta
        self.kl_warmup = kl_warmup
        self.n_importance_samples = n_importance_samples
        self.binarize = binarize
        self.n_score_samples = n_score_samples
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.checkpoint_dir = checkpoint_dir
        self.resume = resume
        self.verbose = verbose
        self.device = device
        self.dtype = dtype
        self.random_state = random_state

    # -- model and training ----------------------------------------------------------------
    def _n_classes(self) -> int:
        return 0

    def _build_module(self) -> VAENetwork:
        likelihood = self._likelihood()
        n_classes = self._n_classes()
        encoder, decoder = self._networks(likelihood, 2 * self.latent_dim, n_classes)
        return VAENetwork(encoder, decoder, likelihood, self.latent_dim, n_classes)

    def _check_options(self) -> None:
        super()._check_options()
        if self.n_importance_samples > 1 and (self.beta != 1 or self.kl_warmup > 0):
            raise ValueError("the IWAE bound (n_importance_samples > 1) has no KL term to weigh: "
                             "use beta=1 and kl_warmup=0 with it.")

    def _loss(self, model, batch, step):
        x = self._training_batch(batch[0])
        y = batch[1] if len(batch) > 1 else None
        if self.n_importance_samples > 1:
            return -model(x, y, k=self.n_importance_samples).mean()
        weight = kl_warmup_weight(step.epoch, step.batch_index, step.n_batches, self.kl_warmup)
        return -model(x, y, beta=self.beta * weight, kl=self.kl).mean()

    def fit(self, X, y=None):
        """Train on images (N, H, W) / (N, C, H, W) or rows (N, D) by maximising the ELBO
        (or the IWAE bound); ``y`` is ignored (see :class:`ConditionalVAE`)."""
        return self._fit(X, None)

    def _fit(self, X, y):
        self._validate_params()
        self._check_options()
        x, codes = self._validate_data(X, y, reset=True)
        self.module_ = self._new_module()
        data = (self._input(x),) if codes is None else (self._input(x), codes)
        self._train(self._loss, data)
        return self

    # -- evaluation ------------------------------------------------------------------------
    def _data(self, X, y=None):
        """Validated (x as the model sees it, class codes or None)."""
        check_is_fitted(self)
        x, _ = self._validate_data(X, reset=False, min_samples=1)
        return self._input(x), None

    def _row_draws(self, x: torch.Tensor, n_samples: int) -> torch.Tensor:
        """(n_samples, N, L) standard-normal draws, those of row n from a generator seeded by
        ``random_state`` and the row's values: independent across rows, yet a row's estimate
        does not depend on which other rows are scored with it, or in which order."""
        key = self._seed().to_bytes(8, "little")
        rows = x.reshape(len(x), -1).cpu().numpy()
        eps = torch.empty((int(n_samples), len(x), self.latent_dim), dtype=self._torch_dtype)
        gen = torch.Generator()
        for n, row in enumerate(rows):
            digest = hashlib.blake2b(row.tobytes(), digest_size=8, key=key).digest()
            gen.manual_seed(int.from_bytes(digest, "little") >> 1)
            eps[:, n] = torch.randn((int(n_samples), self.latent_dim), generator=gen,
                                    dtype=self._torch_dtype)
        return eps.to(self._torch_device)

    def _bound(self, x, codes, bound, n_samples: int) -> torch.Tensor:
        """``bound(x_chunk, codes_chunk, eps_chunk)`` (N,) over chunks of rows, with per-row
        draws (:meth:`_row_draws`) and at most ``_DRAW_ELEMENTS`` draws held at once."""
        rows = max(1, min(_EVAL_ROWS, _DRAW_ELEMENTS // (n_samples * self.latent_dim)))
        return self._rows(lambda xb, yb: bound(xb, yb, self._row_draws(xb, n_samples)),
                          x, codes, rows)

    def _posterior_codes(self, x, codes):
        """The class codes to encode ``x`` under (None for an unconditional VAE)."""
        return codes

    def encode(self, X, y=None) -> Independent:
        """The posterior q(z | x) as a torch distribution, batch (N,), event (L,)."""
        x, codes = self._data(X, y)
        codes = self._posterior_codes(x, codes)
        self.module_.eval()
        with torch.no_grad():
            return self.module_.posterior(x, codes)

    def transform(self, X, y=None):
        """The posterior means E_q[z | x] (N, L)."""
        x, codes = self._data(X, y)
        codes = self._posterior_codes(x, codes)
        return self._to_numpy(self._rows(lambda xb, yb: self.module_.encode(xb, yb)[0], x, codes))

    def decode(self, Z, y=None, *, noise: bool = False):
        """E[x | z] for codes ``Z`` (N, L) in the training data's shape and range; with
        ``noise=True`` a draw x ~ p(x | z) instead (binary pixels for a Bernoulli decoder)."""
        Z = self._codes(Z)
        gen = self._torch_generator()
        return self._decode(Z, self._labels_for(len(Z), y, gen), noise, gen)

    def _decode(self, z: torch.Tensor, codes, noise: bool, gen) -> np.ndarray:
        lik = self.module_.likelihood

        def fn(zb, yb):
            params = self.module_.decode(zb, yb)
            return lik.sample(params, gen) if noise else lik.mean(params)

        return self._as_output(self._rows(fn, z, codes))

    def _labels_for(self, n: int, y, gen) -> None:
        if y is not None:
            raise ValueError(f"a {type(self).__name__} is unconditional: pass no y.")
        return None

    def reconstruct(self, X, y=None):
        """E[x | z = E_q[z | x]]: the decoded posterior mean, in the data's shape and range."""
        x, codes = self._data(X, y)
        codes = self._posterior_codes(x, codes)

        def fn(xb, yb):
            mu = self.module_.encode(xb, yb)[0]  # (N, L)
            return self.module_.likelihood.mean(self.module_.decode(mu, yb))

        return self._as_output(self._rows(fn, x, codes))

    def sample(self, n: int, y=None, *, noise: bool = False):
        """``n`` new images/rows: z ~ p(z) = N(0, I), decoded to E[x | z] (or, with
        ``noise=True``, a draw x ~ p(x | z)); the training data's shape and range."""
        check_is_fitted(self)
        gen = self._torch_generator()
        z = torch.randn((int(n), self.latent_dim), generator=gen, dtype=self._torch_dtype,
                        device=self._torch_device)
        return self._decode(z, self._labels_for(int(n), y, gen), noise, gen)

    def elbo(self, X, y=None, *, n_samples: int = 100):
        """The ELBO per row (N,) (analytic KL, ``n_samples`` draws of z), in nats."""
        x, codes = self._data(X, y)
        return self._to_numpy(self._bound(
            x, codes, lambda xb, yb, eps: elbo(self.module_, xb, yb, eps=eps), n_samples))

    def log_likelihood(self, X, y=None, *, n_samples: int = 1000):
        """The importance-weighted estimate L_k of log p(x) per row (N,) with k = ``n_samples``
        (Burda et al. 2015): a lower bound in expectation that tightens as k grows."""
        x, codes = self._data(X, y)
        return self._to_numpy(self._bound(
            x, codes, lambda xb, yb, eps: iwae_bound(self.module_, xb, yb, k=n_samples, eps=eps),
            n_samples))

    def score_samples(self, X):
        """The IWAE estimate of log p(x) per row with k = ``n_score_samples`` (see
        :meth:`log_likelihood`)."""
        return self.log_likelihood(X, n_samples=self.n_score_samples)

    def score(self, X, y=None):
        """The mean IWAE log-likelihood estimate (k = ``n_score_samples``) of the rows of
        ``X`` (a conditional VAE's given the labels ``y`` when they are passed)."""
        return float(np.mean(self.log_likelihood(X, y, n_samples=self.n_score_samples)))


class ConditionalVAE(VAE):
    """A conditional VAE (Sohn et al. 2015): q(z | x, y), p(x | z, y), p(z) = N(0, I), with y
    a class label fed to both networks one-hot.

    Parameters are those of :class:`VAE`. ``fit(X, y)`` needs the labels; ``sample(n, y)``
    draws images of class ``y`` (one label for all, or one per sample; None: labels drawn from
    the training class frequencies ``class_prior_``). Methods that take ``y`` use it when
    given; without it:

    - :meth:`elbo`, :meth:`log_likelihood` and :meth:`score_samples` marginalise the label,
      log p(x) = log sum_y p(y) p(x | y) with p(y) = ``class_prior_`` (each class's bound
      computed with the same draws);
    - :meth:`transform`, :meth:`encode` and :meth:`reconstruct` use the label that maximises
      log p(y) + ELBO(x, y) (Bayes' rule with the ELBO for log p(x | y)).

    Attributes: those of :class:`VAE`, plus ``classes_``, ``n_classes_`` and ``class_prior_``.
    """

    def fit(self, X, y=None):
        """Train on images or rows ``X`` with their class labels ``y`` (N,) (required)."""
        if y is None:
            raise ValueError("ConditionalVAE requires y to be passed, but the target y is None: "
                             "fit(X, y) needs the class labels (use VAE without them).")
        self._fit(X, y)
        codes = self._encode_labels(y)
        self.class_prior_ = self._to_numpy(
            torch.bincount(codes, minlength=self.n_classes_).double() / len(codes))
        return self

    def _n_classes(self) -> int:
        return int(self.n_classes_)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        return tags

    def _data(self, X, y=None):
        x, _ = super()._data(X)
        if y is None:
            return x, None
        codes = self._encode_labels(y)
        if len(codes) != len(x):
            raise ValueError(f"y has {len(codes)} labels for {len(x)} rows of X.")
        return x, codes

    def _per_class(self, x, bound, n_samples: int) -> torch.Tensor:
        """``bound`` (N,) under every class c = 0..K-1 (the same draws), stacked: (K, N)."""
        return torch.stack([VAE._bound(self, x, torch.full((len(x),), c, dtype=torch.long,
                                                           device=x.device), bound, n_samples)
                            for c in range(self.n_classes_)])

    def _log_prior(self, like: torch.Tensor) -> torch.Tensor:
        return torch.as_tensor(np.log(self.class_prior_), dtype=like.dtype, device=like.device)

    def _bound(self, x, codes, bound, n_samples):
        if codes is not None:
            return super()._bound(x, codes, bound, n_samples)
        per_class = self._per_class(x, bound, n_samples)  # (K, N)
        # log p(x) = log sum_y p(y) p(x | y), each p(x | y) by its bound
        return torch.logsumexp(per_class + self._log_prior(per_class)[:, None], dim=0)

    def _posterior_codes(self, x, codes):
        if codes is not None:
            return codes
        per_class = self._per_class(
            x, lambda xb, yb, eps: elbo(self.module_, xb, yb, eps=eps), _LABEL_SAMPLES)
        return (per_class + self._log_prior(per_class)[:, None]).argmax(0)

    def _labels_for(self, n: int, y, gen):
        if y is None:  # y ~ p(y), the training class frequencies
            prior = torch.as_tensor(self.class_prior_, device=gen.device)
            return torch.multinomial(prior, n, replacement=True, generator=gen)
        y = np.asarray(y)
        codes = self._encode_labels(np.full(n, y.item()) if y.ndim == 0 else y)
        if len(codes) != n:
            raise ValueError(f"y must be one label or {n} labels, got {len(codes)}.")
        return codes


__all__ = ["ConditionalVAE", "VAE", "VAENetwork", "elbo", "gaussian_kl", "iwae_bound",
           "kl_warmup_weight"]
