"""Generative adversarial networks: the minimax game, DCGAN, Wasserstein critics, InfoGAN.

A generator G maps noise z ~ N(0, I) to a sample; a discriminator (critic) D tells samples
from data. The networks and the losses are separate, so any architecture pairs with any loss:

- :func:`discriminator_loss` with :func:`minimax_generator_loss` (Goodfellow et al. 2014,
  eq. 1) or :func:`nonsaturating_generator_loss` (their practical variant, which keeps the
  generator's gradient alive when D rejects its samples);
- :func:`wasserstein_critic_loss` / :func:`wasserstein_generator_loss` (Arjovsky et al. 2017)
  with the critic kept Lipschitz by :func:`clip_weights_` (WGAN, RMSProp) or by
  :func:`gradient_penalty` (WGAN-GP, Gulrajani et al. 2017);
- :func:`info_loss`, InfoGAN's variational bound on the mutual information between latent
  codes and samples (Chen et al. 2016, eq. 5).

Networks: :class:`MLPGenerator` / :class:`MLPCritic` and the convolutional
:class:`DCGANGenerator` / :class:`DCGANCritic` (Radford et al. 2016: strided convolutions,
batch norm, ReLU in G, LeakyReLU(0.2) in D, N(0, 0.02) weights), sized from the image shape
(8x8 digits, 28x28, 32x32, 64x64). :class:`AdversarialNetworks` holds a generator and a critic
with the optional label conditioning (Mirza & Osindero 2014), InfoGAN codes and an exponential
moving average of the generator's weights; :class:`AdversarialStep` is the training step
(critic updates, then a generator update every ``n_critic`` batches) that
:class:`bayesdl.train.Trainer` runs with two optimisers. Samples live in [-1, 1] (tanh).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

from numbers import Integral, Real

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted
from torch import nn

from ._base import _GenerativeEstimator

LOSSES = ("minimax", "non-saturating", "wasserstein-clip", "wasserstein-gp")


# -- losses ----------------------------------------------------------------------------------
def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """-E[log D(x)] - E[log(1 - D(G(z)))], D = sigmoid(logit) (Goodfellow et al. 2014, eq. 1).

    The discriminator's side of both the minimax and the non-saturating game.
    """
    # -log sigmoid(a) = softplus(-a); -log(1 - sigmoid(a)) = softplus(a)
    return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()


def minimax_generator_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """E[log(1 - D(G(z)))], the generator's side of the minimax game (Goodfellow eq. 1).

    Its gradient in the logit a is -sigmoid(a) = -D: it vanishes as D(G(z)) -> 0, which is
    where training starts (D rejects the early samples easily) - the saturation that
    :func:`nonsaturating_generator_loss` avoids.
    """
    return -F.softplus(fake_logits).mean()


def nonsaturating_generator_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """-E[log D(G(z))] (Goodfellow et al. 2014, section 3): same fixed point, strong early
    gradients: d/da = -(1 - sigmoid(a)) = -(1 - D) -> -1 as D(G(z)) -> 0."""
    return F.softplus(-fake_logits).mean()


def wasserstein_critic_loss(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    """E[f(G(z))] - E[f(x)]: minus the critic's estimate of the Wasserstein-1 distance
    (Kantorovich-Rubinstein duality over 1-Lipschitz f; Arjovsky et al. 2017, eq. 3)."""
    return fake_scores.mean() - real_scores.mean()


def wasserstein_generator_loss(fake_scores: torch.Tensor) -> torch.Tensor:
    """-E[f(G(z))] (Arjovsky et al. 2017, algorithm 1)."""
    return -fake_scores.mean()


def gradient_penalty(critic, real: torch.Tensor, fake: torch.Tensor,
                     eps: torch.Tensor) -> torch.Tensor:
    """E[(||grad f(x_hat)||_2 - 1)^2] at x_hat = eps x + (1 - eps) G(z) (Gulrajani et al. 2017,
    eq. 3 and algorithm 1); ``critic``: ``x -> (N,)`` scores, ``eps``: (N,) in [0, 1].

    The graph is kept (``create_graph``) so the penalty trains the critic.
    """
    eps = eps.reshape(-1, *([1] * (real.dim() - 1)))  # (N, 1, ...)
    x_hat = (eps * real + (1 - eps) * fake.detach()).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=True)
    return (grad.flatten(1).norm(dim=1) - 1).pow(2).mean()


@torch.no_grad()
def clip_weights_(module: nn.Module, clip_value: float) -> None:
    """Clamp every parameter to [-c, c]: WGAN's crude Lipschitz constraint (Arjovsky et al.
    2017, algorithm 1, c = 0.01)."""
    for p in module.parameters():
        p.clamp_(-clip_value, clip_value)


def info_loss(q_output: torch.Tensor, categorical: torch.Tensor | None,
              continuous: torch.Tensor | None) -> torch.Tensor:
    """-E[log Q(c | G(z, c))], InfoGAN's mutual-information term (Chen et al. 2016, eq. 5).

    ``q_output`` (N, K + L): logits of the categorical code's K classes, then the means of a
    unit-variance Gaussian for the L continuous codes; ``categorical`` (N,) class indices or
    None, ``continuous`` (N, L) or None. The lower bound is L_I = H(c) - info_loss.
    """
    k = q_output.shape[1] - (0 if continuous is None else continuous.shape[1])
    nll = q_output.new_zeros(())
    if categorical is not None:
        nll = nll + F.cross_entropy(q_output[:, :k], categorical)
    if continuous is not None:
        mean = q_output[:, k:]  # (N, L)
        log_q = -0.5 * (continuous - mean).pow(2) - 0.5 * math.log(2 * math.pi)  # (N, L)
        nll = nll - log_q.sum(1).mean()
    return nll


@torch.no_grad()
def update_ema_(average: nn.Module, model: nn.Module, decay: float, n_updates: int) -> None:
    """theta_ema <- d theta_ema + (1 - d) theta with d = min(decay, (1 + t) / (10 + t)) after t
    updates (the warm-up keeps early averages from remembering the initialisation); buffers
    (batch-norm statistics) are copied."""
    d = min(decay, (1 + n_updates) / (10 + n_updates))
    for a, p in zip(average.parameters(), model.parameters()):
        a.lerp_(p, 1 - d)
    for a, b in zip(average.buffers(), model.buffers()):
        a.copy_(b)


# -- networks ----------------------------------------------------------------------------------
def _n_stages(height: int, width: int) -> int:
    """Stride-2 stages: halve while both sides are even, down to 4 (2 for the first two)."""
    stages = 0
    while height % 2 == 0 and width % 2 == 0 and min(height, width) // 2 >= 2 and (
            min(height, width) // 2 >= 4 or stages < 2):
        height, width, stages = height // 2, width // 2, stages + 1
    return stages


def dcgan_init_(module: nn.Module) -> nn.Module:
    """Radford et al. 2016, section 4: weights ~ N(0, 0.02); batch-norm scales ~ N(1, 0.02)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)
    return module


class _BatchNorm1d(nn.BatchNorm1d):
    """Batch norm that normalises a training batch of one sample (the last batch of an epoch
    may hold one) with its running statistics instead of failing."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and len(x) == 1:
            return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                                False, 0.0, self.eps)
        return super().forward(x)


class MLPGenerator(nn.Module):
    """z (N, in_features) -> samples (N, *out_shape) in [-1, 1]: hidden layers with batch norm
    (DCGAN's rule; without it this MLP collapses onto one digit on the bundled digits) and ReLU,
    tanh out. ``batch_norm=False`` drops the normalisation (per-sample outputs, e.g. for
    multi-process runs that must equal one process)."""

    def __init__(self, in_features: int, out_shape: tuple[int, ...], hidden=(256, 256),
                 batch_norm: bool = True):
        super().__init__()
        self.out_shape = tuple(out_shape)
        layers, width = [], in_features
        for h in hidden:
            layers += [nn.Linear(width, h), _BatchNorm1d(h) if batch_norm else nn.Identity(),
                       nn.ReLU()]
            width = h
        layers += [nn.Linear(width, math.prod(self.out_shape)), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z).view(len(z), *self.out_shape)


class MLPCritic(nn.Module):
    """Samples (N, *in_shape) [+ condition (N, n_cond), concatenated] -> scores (N,):
    LeakyReLU(0.2) hidden layers; ``features`` is the last hidden layer (N, hidden[-1])."""

    def __init__(self, in_shape: tuple[int, ...], n_cond: int = 0, hidden=(256, 256)):
        super().__init__()
        layers, width = [], math.prod(in_shape) + n_cond
        for h in hidden:
            layers += [nn.Linear(width, h), nn.LeakyReLU(0.2)]
            width = h
        self.body, self.n_features = nn.Sequential(*layers), width
        self.out = nn.Linear(width, 1)

    def features(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        x = x.flatten(1)
        return self.body(x if cond is None else torch.cat([x, cond], 1))

    def forward(self, x, cond=None) -> torch.Tensor:
        return self.out(self.features(x, cond)).squeeze(-1)


class DCGANGenerator(nn.Module):
    """z (N, in_features) -> images (N, C, H, W) in [-1, 1] (Radford et al. 2016, figure 1).

    A linear projection to a (2^(S-1) b, H / 2^S, W / 2^S) block (batch norm, ReLU), then S
    stride-2 transposed convolutions (kernel 4) halving the channels, batch norm and ReLU after
    all but the last, tanh at the output; S from the image size (8x8: 2x2 -> 4x4 -> 8x8;
    28x28: from 7x7; 32x32: from 4x4). ``base_channels`` b is the width of the last hidden
    block.
    """

    def __init__(self, in_features: int, out_shape: tuple[int, int, int], base_channels=32):
        super().__init__()
        c, h, w = out_shape
        stages = _n_stages(h, w)
        self.start = (base_channels * 2 ** max(stages - 1, 0), h >> stages, w >> stages)
        widths = [base_channels * 2 ** (stages - 1 - i) for i in range(stages)] or [base_channels]
        self.project = nn.Linear(in_features, math.prod(self.start))
        layers = [nn.BatchNorm2d(self.start[0]), nn.ReLU()]
        for a, b in zip(widths[:-1], widths[1:]):
            layers += [nn.ConvTranspose2d(a, b, 4, 2, 1, bias=False), nn.BatchNorm2d(b), nn.ReLU()]
        # the last stage maps to the image channels (a 3x3 convolution when no stage fits)
        layers.append(nn.ConvTranspose2d(widths[-1], c, 4, 2, 1) if stages else
                      nn.Conv2d(widths[-1], c, 3, 1, 1))
        self.net = nn.Sequential(*layers, nn.Tanh())
        dcgan_init_(self)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(self.project(z).view(len(z), *self.start))


class DCGANCritic(nn.Module):
    """Images (N, C, H, W) [+ condition (N, n_cond) as constant planes] -> scores (N,).

    S stride-2 convolutions (kernel 4) doubling the channels from ``base_channels``,
    LeakyReLU(0.2), normalisation on all but the first (Radford et al. 2016); ``norm``:
    ``"batch"`` (DCGAN), ``"layer"`` (WGAN-GP: a gradient penalty is per sample, which batch
    norm's coupling of the samples breaks; Gulrajani et al. 2017, section 4) or None.
    """

    def __init__(self, in_shape: tuple[int, int, int], n_cond: int = 0, base_channels=32,
                 norm: str | None = "batch"):
        super().__init__()
        if norm not in ("batch", "layer", None):
            raise ValueError(f"norm must be 'batch', 'layer' or None, got {norm!r}.")
        c, h, w = in_shape
        stages = _n_stages(h, w)
        widths = [base_channels * 2 ** i for i in range(stages)] or [base_channels]
        layers = [nn.Conv2d(c + n_cond, widths[0], 4, 2, 1) if stages else
                  nn.Conv2d(c + n_cond, widths[0], 3, 1, 1), nn.LeakyReLU(0.2)]
        for a, b in zip(widths[:-1], widths[1:]):
            normalise = {"batch": lambda: nn.BatchNorm2d(b),
                         "layer": lambda: nn.GroupNorm(1, b),  # layer norm over (C, H, W)
                         None: nn.Identity}[norm]()
            layers += [nn.Conv2d(a, b, 4, 2, 1, bias=norm is None), normalise, nn.LeakyReLU(0.2)]
        self.body = nn.Sequential(*layers)
        self.n_features = widths[-1] * (h >> stages) * (w >> stages)
        self.out = nn.Linear(self.n_features, 1)
        dcgan_init_(self)

    def features(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        if cond is not None:  # one constant plane per condition entry
            x = torch.cat([x, cond[:, :, None, None].expand(-1, -1, *x.shape[2:])], 1)
        return self.body(x).flatten(1)

    def forward(self, x, cond=None) -> torch.Tensor:
        return self.out(self.features(x, cond)).squeeze(-1)


class AdversarialNetworks(nn.Module):
    """A generator and a critic, with labels, InfoGAN codes and a generator EMA.

    The generator's input is [z, one-hot(y), one-hot(c_cat), c_cont]: ``latent_dim`` normal
    noise, the label of a conditional GAN (also given to the critic; Mirza & Osindero 2014),
    InfoGAN's categorical code with ``n_categorical`` values and ``n_continuous`` codes
    ~ U(-1, 1) (Chen et al. 2016), which ``q_head`` (on the critic's features) predicts.
    ``generator_ema`` (when ``ema_decay`` is given) is the average of the generator's weights
    that :meth:`generate` uses by default.
    """

    def __init__(self, generator: nn.Module, critic: nn.Module, latent_dim: int,
                 n_classes: int = 0, n_categorical: int = 0, n_continuous: int = 0,
                 ema_decay: float | None = 0.999):
        super().__init__()
        self.generator, self.critic = generator, critic
        self.latent_dim, self.n_classes = int(latent_dim), int(n_classes)
        self.n_categorical, self.n_continuous = int(n_categorical), int(n_continuous)
        self.q_head = (nn.Linear(critic.n_features, n_categorical + n_continuous)
                       if n_categorical + n_continuous else None)
        self.ema_decay = ema_decay
        self.generator_ema = None
        if ema_decay is not None:
            self.generator_ema = copy.deepcopy(generator).requires_grad_(False)
            self.register_buffer("ema_updates", torch.zeros((), dtype=torch.long))

    @property
    def in_features(self) -> int:
        """The generator's input width."""
        return self.latent_dim + self.n_classes + self.n_categorical + self.n_continuous

    def draw_codes(self, n: int, randn, rand, *, device=None, dtype=None):
        """z (n, latent_dim), the categorical code (n,) or None, the continuous (n, L) or None;
        ``randn``/``rand``: ``(n, *shape, device=, dtype=) -> tensor`` (e.g. a Step's)."""
        kw = {"device": device, "dtype": dtype}
        z = randn(n, self.latent_dim, **kw)
        cat = cont = None
        if self.n_categorical:  # uniform over the K values
            cat = (rand(n, **kw) * self.n_categorical).long().clamp_max(self.n_categorical - 1)
        if self.n_continuous:
            cont = 2 * rand(n, self.n_continuous, **kw) - 1
        return z, cat, cont

    def generator_input(self, z, y=None, categorical=None, continuous=None) -> torch.Tensor:
        """[z, one-hot(y), one-hot(categorical), continuous] (N, in_features)."""
        parts = [z]
        if self.n_classes:
            parts.append(F.one_hot(y, self.n_classes).to(z.dtype))
        if self.n_categorical:
            parts.append(F.one_hot(categorical, self.n_categorical).to(z.dtype))
        if self.n_continuous:
            parts.append(continuous)
        return torch.cat(parts, 1)

    def condition(self, y: torch.Tensor | None, like: torch.Tensor) -> torch.Tensor | None:
        """The critic's condition: one-hot(y) (N, K) for a conditional GAN, else None."""
        return F.one_hot(y, self.n_classes).to(like.dtype) if self.n_classes else None

    def generate(self, z, y=None, categorical=None, continuous=None, *,
                 ema: bool = True) -> torch.Tensor:
        """G(z, ...) with the averaged weights when ``ema`` and there are any."""
        net = self.generator_ema if ema and self.generator_ema is not None else self.generator
        return net(self.generator_input(z, y, categorical, continuous))

    def forward(self, x, y=None) -> torch.Tensor:
        """The critic's scores (logits for the minimax losses) (N,)."""
        return self.critic(x, self.condition(y, x))


@dataclass(frozen=True)
class AdversarialStep:
    """One training step of :class:`AdversarialNetworks` for :class:`bayesdl.train.Trainer`
    (``step_fn``, with optimisers named ``"critic"`` and ``"generator"``).

    Every batch updates the critic once on the real batch and as many fresh samples (the
    conditional GAN's fakes get the batch's labels); every ``n_critic``-th batch then updates
    the generator (Arjovsky et al. 2017 algorithm 1, Gulrajani et al. 2017 algorithm 1: each
    critic step sees a new real batch). ``loss``: one of :data:`LOSSES`. Logs
    ``critic_loss``, ``generator_loss`` and, for the Wasserstein losses, ``wasserstein``:
    E f(x) - E f(G(z)), the critic's estimate of the distance (without the penalty); for
    InfoGAN ``info_loss`` (:func:`info_loss` on the critic step's samples: the bound on the
    mutual information is H(c) - info_loss).
    """

    loss: str = "non-saturating"
    n_critic: int = 1
    gp_weight: float = 10.0
    clip_value: float = 0.01
    info_weight: float = 1.0

    def __post_init__(self):
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {self.loss!r}.")

    def _fake(self, model, n, step, y, like):
        z, cat, cont = model.draw_codes(n, step.randn, step.rand, device=like.device,
                                        dtype=like.dtype)
        return model.generate(z, y, cat, cont, ema=False), cat, cont

    def _info(self, model, loss, fake, y, cat, cont):
        """``loss`` plus InfoGAN's weighted term; returns (total, info_loss or None)."""
        if model.q_head is None:
            return loss, None
        q = model.q_head(model.critic.features(fake, model.condition(y, fake)))  # (N, K + L)
        info = info_loss(q, cat, cont)
        return loss + self.info_weight * info, info

    def __call__(self, model: AdversarialNetworks, batch, step, optimizers) -> dict:
        x = batch[0]  # (N, *shape)
        y = batch[1] if model.n_classes else None
        wasserstein = self.loss.startswith("wasserstein")
        with torch.no_grad():
            fake, cat, cont = self._fake(model, len(x), step, y, x)
        real_s, fake_s = model(x, y), model(fake, y)  # (N,), (N,)
        if wasserstein:
            critic_loss = wasserstein_critic_loss(real_s, fake_s)
        else:
            critic_loss = discriminator_loss(real_s, fake_s)
        if self.loss == "wasserstein-gp":
            eps = step.rand(len(x), device=x.device, dtype=x.dtype)  # (N,)
            cond = model.condition(y, x)
            critic_loss = critic_loss + self.gp_weight * gradient_penalty(
                lambda v: model.critic(v, cond), x, fake, eps)
        critic_total, info = self._info(model, critic_loss, fake, y, cat, cont)
        optimizers["critic"].zero_grad()
        critic_total.backward()
        optimizers["critic"].step()
        if self.loss == "wasserstein-clip":
            clip_weights_(model.critic, self.clip_value)
        logged = {"critic_loss": critic_loss.item()}
        if info is not None:
            logged["info_loss"] = info.item()
        if wasserstein:
            logged["wasserstein"] = (real_s.mean() - fake_s.mean()).item()
        if (step.iteration + 1) % self.n_critic == 0:
            fake, cat, cont = self._fake(model, len(x), step, y, x)
            scores = model(fake, y)
            generator_loss = {"minimax": minimax_generator_loss,
                              "non-saturating": nonsaturating_generator_loss}.get(
                self.loss, wasserstein_generator_loss)(scores)
            optimizers["generator"].zero_grad()
            self._info(model, generator_loss, fake, y, cat, cont)[0].backward()
            optimizers["generator"].step()
            if model.generator_ema is not None:
                update_ema_(model.generator_ema, model.generator, model.ema_decay,
                            int(model.ema_updates))
                model.ema_updates += 1
            logged["generator_loss"] = generator_loss.item()
        return logged


# -- estimators ------------------------------------------------------------------------------
# the papers' optimisers and critic steps per loss: (Adam betas or None for RMSProp, lr, n_critic)
_PAPER_SETTINGS = {
    "minimax": ((0.5, 0.999), 2e-4, 1),  # Radford et al. 2016, section 4
    "non-saturating": ((0.5, 0.999), 2e-4, 1),
    "wasserstein-clip": (None, 5e-5, 5),  # Arjovsky et al. 2017, algorithm 1 (RMSProp)
    "wasserstein-gp": ((0.0, 0.9), 1e-4, 5),  # Gulrajani et al. 2017, algorithm 1
}


class _AdversarialEstimator(_GenerativeEstimator):
    """What :class:`GAN`, :class:`DCGAN` and :class:`WGANGP` share: the data mapped linearly
    from [data_min_, data_max_] to the generator's [-1, 1], training through
    :class:`AdversarialStep`, and :meth:`sample`."""

    _parameter_constraints: dict = {
        **_GenerativeEstimator._parameter_constraints,
        "learning_rate": [Interval(Real, 0, None, closed="neither"), None],
        "latent_dim": [Interval(Integral, 1, None, closed="left")],
        "conditional": ["boolean"],
        "info_codes": [tuple, list, None],
        "n_critic": [Interval(Integral, 1, None, closed="left"), None],
        "gp_weight": [Interval(Real, 0, None, closed="left")],
        "clip_value": [Interval(Real, 0, None, closed="neither")],
        "info_weight": [Interval(Real, 0, None, closed="left")],
        "ema_decay": [Interval(Real, 0, 1, closed="left"), None],
    }

    # -- what a subclass provides --------------------------------------------------------------
    @property
    def _loss(self) -> str:
        return self.loss

    def _networks(self, in_features: int, n_cond: int) -> tuple[nn.Module, nn.Module]:
        raise NotImplementedError

    def _net_shape(self) -> tuple[int, ...]:
        """The per-sample shape the networks see (default: the data's)."""
        return tuple(self.data_shape_)

    # -- options ---------------------------------------------------------------------------------
    def _codes(self) -> tuple[int, int]:
        """InfoGAN's (number of categories, number of continuous codes)."""
        if self.info_codes is None:
            return 0, 0
        codes = tuple(self.info_codes)
        if len(codes) != 2 or not all(isinstance(c, Integral) and c >= 0 for c in codes) or (
                codes[0] == 1):
            raise ValueError(
                f"info_codes must be (n_categories, n_continuous), two non-negative integers "
                f"(n_categories 0 or at least 2), e.g. (10, 2) for InfoGAN's MNIST codes; got "
                f"{self.info_codes!r}.")
        return codes

    def _settings(self) -> tuple:
        betas, lr, n_critic = _PAPER_SETTINGS[self._loss]
        return (betas, self.learning_rate if self.learning_rate is not None else lr,
                self.n_critic if self.n_critic is not None else n_critic)

    def _support(self):
        return (0.0, 1.0)

    def _check_support(self, X) -> None:
        # images are intensities in [0, 1]; rows may take any real values (mapped linearly)
        if X.ndim > 2:
            super()._check_support(X)

    # -- the model ---------------------------------------------------------------------------------
    def _build_module(self) -> nn.Module:
        n_cat, n_cont = self._codes()
        n_classes = self.n_classes_ if self.conditional else 0
        generator, critic = self._networks(self.latent_dim + n_classes + n_cat + n_cont,
                                           n_classes)
        return AdversarialNetworks(generator, critic, self.latent_dim, n_classes, n_cat, n_cont,
                                   ema_decay=self.ema_decay)

    def _to_model_space(self, x: torch.Tensor) -> torch.Tensor:
        """(N, *data_shape_) in [data_min_, data_max_] -> (N, *net shape) in [-1, 1]."""
        return self._to_symmetric(x).reshape(len(x), *self._net_shape())

    def _from_model_space(self, x: torch.Tensor) -> torch.Tensor:
        return self._from_symmetric(x).reshape(len(x), *self.data_shape_)

    def fit(self, X, y=None):
        """Train the generator and critic on ``X`` (rows (N, D) or images (N, H, W) /
        (N, C, H, W) in [0, 1]); ``y``: class labels, used (and needed) with
        ``conditional=True``, ignored otherwise. Returns ``self``."""
        self._validate_params()
        self._codes()
        if self.conditional and y is None:
            raise ValueError(f"{type(self).__name__}(conditional=True) needs labels: fit(X, y).")
        for name in ("classes_", "n_classes_"):  # a refit without labels forgets old ones
            self.__dict__.pop(name, None)
        x, codes = self._validate_data(X, y if self.conditional else None, reset=True)
        self.module_ = self._new_module()
        betas, lr, n_critic = self._settings()

        def optimizer(params):
            if betas is None:
                return torch.optim.RMSprop(params, lr=lr)
            return torch.optim.Adam(params, lr=lr, betas=betas)

        step = AdversarialStep(self._loss, n_critic=n_critic, gp_weight=self.gp_weight,
                               clip_value=self.clip_value, info_weight=self.info_weight)
        data = (self._to_model_space(x),) + (() if codes is None else (codes,))
        self._train(None, data, step_fn=step, optimizers={
            "critic": lambda m: optimizer([*m.critic.parameters(), *(
                m.q_head.parameters() if m.q_head is not None else ())]),
            "generator": lambda m: optimizer(m.generator.parameters())})
        return self

    def sample(self, n: int, y=None, guidance=None, *, categorical=None, continuous=None,
               random_state=None) -> np.ndarray:
        """``n`` samples in the training data's shape and range.

        ``y``: one label or ``n`` labels of a conditional model (default: classes drawn
        uniformly); ``categorical`` / ``continuous``: InfoGAN codes to fix (one value or one
        per sample; default drawn from their priors). GANs take no ``guidance`` (that is
        classifier-free guidance, a diffusion-model notion). Uses the generator's moving
        average when ``ema_decay`` is set.
        """
        check_is_fitted(self, "input_shape_")
        name = type(self).__name__
        if guidance is not None:
            raise ValueError(f"{name} has no guidance weight: classifier-free guidance belongs to "
                             "diffusion models (bayesdl.generative.DDPM). For samples of a class, "
                             f"fit {name}(conditional=True) on (X, y) and pass y.")
        if isinstance(n, bool) or not isinstance(n, Integral) or n < 1:
            raise ValueError(f"n must be a positive integer, got {n!r}.")
        module = self.module_
        dev, dtype = self._torch_device, self._torch_dtype
        gen = self._torch_generator(random_state)
        z, cat, cont = module.draw_codes(
            n, lambda k, *shape, **kw: torch.randn(k, *shape, generator=gen, **kw),
            lambda k, *shape, **kw: torch.rand(k, *shape, generator=gen, **kw),
            device=dev, dtype=dtype)
        labels = None
        if self.conditional:
            labels = (torch.randint(0, self.n_classes_, (n,), generator=gen, device=dev)
                      if y is None else self._encode_labels(_per_sample(y, n, "y")))
        elif y is not None:
            raise ValueError(f"this {name} is unconditional; fit {name}(conditional=True) on "
                             "(X, y) to sample given labels.")
        cat, cont = self._fixed_codes(n, cat, cont, categorical, continuous)
        module.eval()
        with torch.no_grad():
            x = module.generate(z, labels, cat, cont)
        return self._as_output(self._from_model_space(x))

    def _fixed_codes(self, n, cat, cont, categorical, continuous):
        n_cat, n_cont = self._codes()
        if categorical is not None:
            values = np.asarray(_per_sample(categorical, n, "categorical"))
            if n_cat == 0 or not np.issubdtype(values.dtype, np.integer) or (
                    values.min() < 0 or values.max() >= n_cat):
                raise ValueError(f"categorical must be integers in [0, {n_cat}) for a model "
                                 f"with info_codes={self.info_codes!r}.")
            cat = torch.as_tensor(values, dtype=torch.long, device=self._torch_device)
        if continuous is not None:
            values = np.asarray(continuous, dtype=float)
            if n_cont == 0 or values.shape[-1:] != (n_cont,) or values.ndim > 2 or (
                    values.ndim == 2 and len(values) != n):
                raise ValueError(f"continuous must have {n_cont} values (one code vector, or "
                                 f"one per sample: shape ({n}, {n_cont})) for a model with "
                                 f"info_codes={self.info_codes!r}.")
            cont = self._to_torch(np.broadcast_to(values, (n, n_cont)).copy())
        return cat, cont


def _per_sample(values, n: int, name: str) -> np.ndarray:
    """One value or ``n`` values -> an array of ``n``."""
    values = np.asarray(values)
    if values.ndim > 1 or (values.ndim == 1 and len(values) not in (1, n)):
        raise ValueError(f"{name} must be one value or {n} values (one per sample), got shape "
                         f"{values.shape}.")
    return np.broadcast_to(values.reshape(-1), (n,)).copy()


class GAN(_AdversarialEstimator):
    """A generative adversarial network with multilayer-perceptron generator and critic
    (Goodfellow et al. 2014), on rows (N, D) or images.

    Parameters
    ----------
    loss : ``"non-saturating"`` (default), ``"minimax"``, ``"wasserstein-clip"`` (WGAN:
        RMSProp, weights clipped to ``clip_value``) or ``"wasserstein-gp"`` (gradient penalty
        ``gp_weight``); see :data:`LOSSES`.
    latent_dim : the dimension of the generator's normal noise z.
    hidden : widths of the hidden layers of both networks.
    conditional : feed the class label to both networks (Mirza & Osindero 2014); ``fit`` then
        needs ``y`` and ``sample`` takes it.
    info_codes : InfoGAN's ``(n_categories, n_continuous)`` latent codes (Chen et al. 2016),
        e.g. ``(10, 2)``; None for none.
    n_critic : critic updates per generator update (None: the loss's paper value, 1 or 5).
    learning_rate : None: the loss's paper value (Adam 2e-4 with betas (0.5, 0.999); RMSProp
        5e-5; Adam 1e-4 with betas (0, 0.9) for WGAN-GP).
    gp_weight, clip_value, info_weight : lambda of WGAN-GP, c of WGAN, lambda of InfoGAN.
    ema_decay : decay of the moving average of the generator's weights used by ``sample``
        (None: sample from the trained weights).
    max_epochs, batch_size, checkpoint_dir, resume, verbose, device, dtype, random_state :
        as every generative estimator (atomic per-epoch checkpoints, exact resume).

    Attributes
    ----------
    module_ : :class:`AdversarialNetworks`; ``history_``: per-epoch ``critic_loss``,
        ``generator_loss`` (and ``wasserstein``, the critic's distance estimate).
    """

    def __init__(self, loss="non-saturating", *, latent_dim=100, hidden=(256, 256),
                 conditional=False, info_codes=None, n_critic=None, gp_weight=10.0,
                 clip_value=0.01, info_weight=1.0, ema_decay=0.999, max_epochs=50,
                 batch_size=64, learning_rate=None, checkpoint_dir=None, resume=False,
                 verbose=False, device="cpu", dtype="float32", random_state=None):
        self.loss, self.latent_dim, self.hidden = loss, latent_dim, hidden
        self.conditional, self.info_codes, self.n_critic = conditional, info_codes, n_critic
        self.gp_weight, self.clip_value, self.info_weight = gp_weight, clip_value, info_weight
        self.ema_decay, self.max_epochs, self.batch_size = ema_decay, max_epochs, batch_size
        self.learning_rate, self.checkpoint_dir, self.resume = learning_rate, checkpoint_dir, resume
        self.verbose, self.device, self.dtype = verbose, device, dtype
        self.random_state = random_state

    _parameter_constraints: dict = {
        **_AdversarialEstimator._parameter_constraints,
        "loss": [StrOptions(set(LOSSES))],
        "hidden": [tuple, list],
    }

    def _networks(self, in_features, n_cond):
        shape = self._net_shape()
        return (MLPGenerator(in_features, shape, self.hidden),
                MLPCritic(shape, n_cond, self.hidden))


class DCGAN(_AdversarialEstimator):
    """A deep convolutional GAN (Radford et al. 2016) for images (N, H, W) or (N, C, H, W).

    Strided (transposed) convolutions sized from the image (8x8 digits, 28x28, 32x32, 64x64),
    batch norm, ReLU in the generator and LeakyReLU(0.2) in the critic, N(0, 0.02)
    initialisation, Adam 2e-4 with beta1 = 0.5. Rows (N, D) are read as 1 x D images.

    Parameters
    ----------
    loss : as :class:`GAN` (``"non-saturating"`` by default).
    base_channels : channels of the generator's last and the critic's first hidden block
        (doubled per stage; the paper's 128 was for 64x64 images).
    critic_norm : ``"auto"`` (batch norm, but layer norm with ``loss="wasserstein-gp"``:
        the penalty is per sample), ``"batch"``, ``"layer"`` or None.
    Others as :class:`GAN`.
    """

    def __init__(self, loss="non-saturating", *, latent_dim=100, base_channels=32,
                 critic_norm="auto", conditional=False, info_codes=None, n_critic=None,
                 gp_weight=10.0, clip_value=0.01, info_weight=1.0, ema_decay=0.999,
                 max_epochs=50, batch_size=64, learning_rate=None, checkpoint_dir=None,
                 resume=False, verbose=False, device="cpu", dtype="float32", random_state=None):
        self.loss, self.latent_dim, self.base_channels = loss, latent_dim, base_channels
        self.critic_norm, self.conditional, self.info_codes = critic_norm, conditional, info_codes
        self.n_critic, self.gp_weight, self.clip_value = n_critic, gp_weight, clip_value
        self.info_weight, self.ema_decay, self.max_epochs = info_weight, ema_decay, max_epochs
        self.batch_size, self.learning_rate = batch_size, learning_rate
        self.checkpoint_dir, self.resume, self.verbose = checkpoint_dir, resume, verbose
        self.device, self.dtype, self.random_state = device, dtype, random_state

    _parameter_constraints: dict = {
        **_AdversarialEstimator._parameter_constraints,
        "loss": [StrOptions(set(LOSSES))],
        "base_channels": [Interval(Integral, 1, None, closed="left")],
        "critic_norm": [StrOptions({"auto", "batch", "layer"}), None],
    }

    def _net_shape(self):
        return tuple(self.data_shape_) if len(self.data_shape_) == 3 else (1, 1,
                                                                           *self.data_shape_)

    def _networks(self, in_features, n_cond):
        norm = self.critic_norm
        if norm == "auto":
            norm = "layer" if self._loss == "wasserstein-gp" else "batch"
        shape = self._net_shape()
        return (DCGANGenerator(in_features, shape, self.base_channels),
                DCGANCritic(shape, n_cond, self.base_channels, norm))


class WGANGP(DCGAN):
    """Wasserstein GAN with gradient penalty (Gulrajani et al. 2017) on DCGAN-style networks:
    lambda = 10, 5 critic steps per generator step, Adam 1e-4 with betas (0, 0.9), layer norm
    (not batch norm) in the critic. ``history_["wasserstein"]`` is the critic's estimate of the
    Wasserstein-1 distance, which falls as the samples improve. Parameters as :class:`DCGAN`
    (without ``loss``; WGAN with weight clipping is ``DCGAN(loss="wasserstein-clip")``).
    """

    def __init__(self, *, latent_dim=100, base_channels=32, critic_norm="auto",
                 conditional=False, info_codes=None, n_critic=5, gp_weight=10.0,
                 info_weight=1.0, ema_decay=0.999, max_epochs=100, batch_size=64,
                 learning_rate=1e-4, checkpoint_dir=None, resume=False, verbose=False,
                 device="cpu", dtype="float32", random_state=None):
        self.latent_dim, self.base_channels, self.critic_norm = latent_dim, base_channels, \
            critic_norm
        self.conditional, self.info_codes, self.n_critic = conditional, info_codes, n_critic
        self.gp_weight, self.info_weight, self.ema_decay = gp_weight, info_weight, ema_decay
        self.max_epochs, self.batch_size, self.learning_rate = max_epochs, batch_size, \
            learning_rate
        self.checkpoint_dir, self.resume, self.verbose = checkpoint_dir, resume, verbose
        self.device, self.dtype, self.random_state = device, dtype, random_state

    _parameter_constraints: dict = {
        k: v for k, v in DCGAN._parameter_constraints.items() if k not in ("loss", "clip_value")}
    loss = "wasserstein-gp"  # fixed (not a parameter)
    clip_value = 0.01  # unused by the gradient penalty


__all__ = [
    "DCGAN", "GAN", "WGANGP",
    "AdversarialNetworks", "AdversarialStep", "DCGANCritic", "DCGANGenerator", "LOSSES",
    "MLPCritic", "MLPGenerator", "clip_weights_", "dcgan_init_", "discriminator_loss",
    "gradient_penalty", "info_loss", "minimax_generator_loss", "nonsaturating_generator_loss",
    "update_ema_", "wasserstein_critic_loss", "wasserstein_generator_loss",
]
