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
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

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
        log_q = -0.5 * (continuous - mean).pow(2) - 0.5 * torch.log(
            torch.tensor(2 * torch.pi, dtype=mean.dtype, device=mean.device))
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


class MLPGenerator(nn.Module):
    """z (N, in_features) -> samples (N, *out_shape) in [-1, 1]: ReLU hidden layers, tanh out."""

    def __init__(self, in_features: int, out_shape: tuple[int, ...], hidden=(256, 256)):
        super().__init__()
        self.out_shape = tuple(out_shape)
        layers, width = [], in_features
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            width = h
        layers += [nn.Linear(width, int(torch.tensor(self.out_shape).prod())), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z).view(len(z), *self.out_shape)


class MLPCritic(nn.Module):
    """Samples (N, *in_shape) [+ condition (N, n_cond), concatenated] -> scores (N,):
    LeakyReLU(0.2) hidden layers; ``features`` is the last hidden layer (N, hidden[-1])."""

    def __init__(self, in_shape: tuple[int, ...], n_cond: int = 0, hidden=(256, 256)):
        super().__init__()
        layers, width = [], int(torch.tensor(in_shape).prod()) + n_cond
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

    A linear projection to a (2^(S-1) b, H / 2^S, W / 2^S) block, then S stride-2 transposed
    convolutions (kernel 4) halving the channels, batch norm and ReLU after all but the last,
    tanh at the output; S from the image size (8x8: 2x2 -> 4x4 -> 8x8; 28x28: from 7x7; 32x32:
    from 4x4). ``base_channels`` b is the width of the last hidden block.
    """

    def __init__(self, in_features: int, out_shape: tuple[int, int, int], base_channels=32):
        super().__init__()
        c, h, w = out_shape
        stages = _n_stages(h, w)
        self.start = (base_channels * 2 ** max(stages - 1, 0), h >> stages, w >> stages)
        widths = [base_channels * 2 ** (stages - 1 - i) for i in range(stages)] or [base_channels]
        self.project = nn.Sequential(nn.Linear(in_features, int(torch.tensor(self.start).prod())),
                                     nn.BatchNorm1d(int(torch.tensor(self.start).prod())),
                                     nn.ReLU())
        layers = []
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
    E f(x) - E f(G(z)), the critic's estimate of the distance (without the penalty).
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

    def _info(self, model, fake, y, cat, cont):
        if model.q_head is None:
            return 0.0
        q = model.q_head(model.critic.features(fake, model.condition(y, fake)))  # (N, K + L)
        return self.info_weight * info_loss(q, cat, cont)

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
        critic_total = critic_loss + self._info(model, fake, y, cat, cont)
        optimizers["critic"].zero_grad()
        critic_total.backward()
        optimizers["critic"].step()
        if self.loss == "wasserstein-clip":
            clip_weights_(model.critic, self.clip_value)
        logged = {"critic_loss": critic_loss.item()}
        if wasserstein:
            logged["wasserstein"] = (real_s.mean() - fake_s.mean()).item()
        if (step.iteration + 1) % self.n_critic == 0:
            fake, cat, cont = self._fake(model, len(x), step, y, x)
            scores = model(fake, y)
            generator_loss = {"minimax": minimax_generator_loss,
                              "non-saturating": nonsaturating_generator_loss}.get(
                self.loss, wasserstein_generator_loss)(scores)
            optimizers["generator"].zero_grad()
            (generator_loss + self._info(model, fake, y, cat, cont)).backward()
            optimizers["generator"].step()
            if model.generator_ema is not None:
                update_ema_(model.generator_ema, model.generator, model.ema_decay,
                            int(model.ema_updates))
                model.ema_updates += 1
            logged["generator_loss"] = generator_loss.item()
        return logged


__all__ = [
    "AdversarialNetworks", "AdversarialStep", "DCGANCritic", "DCGANGenerator", "LOSSES",
    "MLPCritic", "MLPGenerator", "clip_weights_", "dcgan_init_", "discriminator_loss",
    "gradient_penalty", "info_loss", "minimax_generator_loss", "nonsaturating_generator_loss",
    "update_ema_", "wasserstein_critic_loss", "wasserstein_generator_loss",
]
