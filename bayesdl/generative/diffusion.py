"""Denoising diffusion probabilistic models (Ho et al. 2020) with DDIM sampling and
classifier-free guidance.

The module reads top to bottom:

- :class:`NoiseSchedule`: the forward process as its own object, as in diffusers' scheduler
  design. ``NoiseSchedule.linear()`` (Ho et al.: T = 1000, beta from 1e-4 to 0.02) and
  ``NoiseSchedule.cosine()`` (Nichol & Dhariwal 2021 eq. 17); ``add_noise`` (q_sample,
  Ho eq. 4), ``posterior`` (q(x_{t-1} | x_t, x_0), Ho eq. 6-7), ``step`` (one ancestral
  p_sample step, Ho Algorithm 2), ``ddim_step`` (Song et al. 2021 eq. 12) and ``sample``
  (the whole reverse chain with either); the conversions between epsilon-, x0- and
  v-predictions (Salimans & Ho 2022); ``vlb`` (Ho sec. 3.3: the variational bound in nats on
  discretised data, with the discretised Gaussian decoder L_0 of eq. 13).
- :func:`diffusion_loss`: the "simple" loss (Ho eq. 14) for any prediction target, with the
  label dropout of classifier-free guidance (Ho & Salimans 2022).
- :class:`UNet` (images) and :class:`DenoisingMLP` (rows): ``model(x_t, t, y=None)`` with a
  sinusoidal time embedding and an optional class embedding whose last index is the null
  class of classifier-free guidance.

Timestep indexing follows diffusers: code index ``t = 0 .. T-1`` is the paper's
``t = 1 .. T``, so ``alphas_cumprod[t] = prod_{s <= t} (1 - beta_s)`` and
``alphas_cumprod_prev[0] = 1`` (x_0 is the data). A step from ``t = 0`` returns the model's
mean without noise (Ho Algorithm 2: z = 0 at the last step).
"""

from __future__ import annotations

import copy
import math
from numbers import Integral, Real

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted
from torch import nn

from ._base import _GenerativeEstimator

PREDICTIONS = ("epsilon", "x0", "v")


def _at(values: torch.Tensor, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``values[t]`` shaped (N, 1, ..., 1) to broadcast against x (N, ...), in x's dtype."""
    t = torch.as_tensor(t, device=values.device).long().reshape(-1)
    out = values[t].to(device=x.device, dtype=x.dtype)
    return out.reshape(-1, *([1] * (x.dim() - 1)))


def _as_timesteps(t, n: int, device) -> torch.Tensor:
    """A scalar or (N,) timestep -> a long tensor (N,)."""
    t = torch.as_tensor(t, device=device).long()
    return t.expand(n) if t.dim() == 0 else t


class NoiseSchedule:
    """The variance schedule beta_1..beta_T of the forward process and its closed forms.

    Parameters
    ----------
    betas : (T,) the per-step noise variances, each in (0, 1).
    prediction : what the denoising network outputs: ``"epsilon"`` (the noise, Ho et al.),
        ``"x0"`` (the clean data) or ``"v"`` (the velocity sqrt(abar) eps - sqrt(1 - abar) x0
        of Salimans & Ho 2022).
    clip_sample : clip the predicted x_0 to [-1, 1] inside ``step``/``ddim_step`` (data
        scaled to [-1, 1]); turn it off for unbounded data.

    All tables are float64 tensors of length T, indexed by the code timestep 0..T-1.
    """

    def __init__(self, betas, *, prediction: str = "epsilon", clip_sample: bool = True):
        betas = torch.as_tensor(betas, dtype=torch.float64).reshape(-1)
        if len(betas) < 1 or not bool(((betas > 0) & (betas < 1)).all()):
            raise ValueError("betas must be a non-empty sequence of variances in (0, 1).")
        if prediction not in PREDICTIONS:
            raise ValueError(f"prediction must be one of {PREDICTIONS}, got {prediction!r}.")
        self.prediction, self.clip_sample = prediction, bool(clip_sample)
        self.betas = betas
        self.alphas = 1.0 - betas
        # abar_t = prod_{s<=t} alpha_s (Ho eq. 4)
        self.alphas_cumprod = torch.cumprod(self.alphas, 0)
        self.alphas_cumprod_prev = torch.cat([torch.ones(1, dtype=torch.float64),
                                              self.alphas_cumprod[:-1]])
        # beta~_t = (1 - abar_{t-1}) / (1 - abar_t) beta_t (Ho eq. 7)
        self.posterior_variance = ((1 - self.alphas_cumprod_prev) / (1 - self.alphas_cumprod)
                                   * betas)
        # mu~_t = c0 x_0 + ct x_t (Ho eq. 7)
        self.posterior_coef_x0 = (self.alphas_cumprod_prev.sqrt() * betas
                                  / (1 - self.alphas_cumprod))
        self.posterior_coef_xt = (self.alphas.sqrt() * (1 - self.alphas_cumprod_prev)
                                  / (1 - self.alphas_cumprod))

    @property
    def n_timesteps(self) -> int:
        return len(self.betas)

    @classmethod
    def linear(cls, n_timesteps: int = 1000, beta_start: float | None = None,
               beta_end: float | None = None, max_beta: float = 0.999,
               **kwargs) -> "NoiseSchedule":
        """Ho et al. (2020): betas linear from 1e-4 to 0.02 over T = 1000 steps.

        For other T the default ends scale by 1000 / T (Nichol & Dhariwal 2021's code), so
        abar_T stays near zero and x_T near pure noise; ``max_beta`` caps them.
        """
        T = int(n_timesteps)
        start = 1e-4 * 1000 / T if beta_start is None else beta_start
        end = 0.02 * 1000 / T if beta_end is None else beta_end
        betas = torch.linspace(start, end, T, dtype=torch.float64).clamp(max=max_beta)
        return cls(betas, **kwargs)

    @classmethod
    def cosine(cls, n_timesteps: int = 1000, s: float = 0.008, max_beta: float = 0.999,
               **kwargs) -> "NoiseSchedule":
        """Nichol & Dhariwal (2021) eq. 17: abar(t) = f(t) / f(0), f(t) = cos^2(pi/2 (t/T + s)/(1 + s)).

        beta_t = 1 - abar_t / abar_{t-1}, clipped at ``max_beta`` (their sec. 3.2).
        """
        T = int(n_timesteps)
        grid = torch.arange(T + 1, dtype=torch.float64) / T
        f = torch.cos((grid + s) / (1 + s) * math.pi / 2) ** 2  # (T + 1,)
        abar = f / f[0]
        return cls((1 - abar[1:] / abar[:-1]).clamp(max=max_beta), **kwargs)

    # -- the forward process ------------------------------------------------------------------
    def add_noise(self, x0: torch.Tensor, noise: torch.Tensor, t) -> torch.Tensor:
        """q_sample: x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps (Ho eq. 4)."""
        t = _as_timesteps(t, len(x0), x0.device)
        abar = _at(self.alphas_cumprod, t, x0)
        return abar.sqrt() * x0 + (1 - abar).sqrt() * noise

    def posterior(self, x0: torch.Tensor, x_t: torch.Tensor, t):
        """q(x_{t-1} | x_t, x_0) = N(mu~_t, beta~_t I) (Ho eq. 6-7): returns (mean, variance)."""
        t = _as_timesteps(t, len(x_t), x_t.device)
        mean = _at(self.posterior_coef_x0, t, x_t) * x0 + _at(self.posterior_coef_xt, t, x_t) * x_t
        return mean, _at(self.posterior_variance, t, x_t).expand_as(x_t)

    # -- prediction conversions (Salimans & Ho 2022 sec. 4 and appendix D) ----------------------
    def velocity(self, x0: torch.Tensor, noise: torch.Tensor, t) -> torch.Tensor:
        """The v-prediction target v = sqrt(abar_t) eps - sqrt(1 - abar_t) x_0."""
        t = _as_timesteps(t, len(x0), x0.device)
        abar = _at(self.alphas_cumprod, t, x0)
        return abar.sqrt() * noise - (1 - abar).sqrt() * x0

    def target(self, x0: torch.Tensor, noise: torch.Tensor, t) -> torch.Tensor:
        """What the network learns to output under ``self.prediction``."""
        if self.prediction == "epsilon":
            return noise
        if self.prediction == "x0":
            return x0
        return self.velocity(x0, noise, t)

    def predict_x0_eps(self, model_output: torch.Tensor, x_t: torch.Tensor, t):
        """(x0_hat, eps_hat) from the network's output, whatever it predicts."""
        t = _as_timesteps(t, len(x_t), x_t.device)
        abar = _at(self.alphas_cumprod, t, x_t)
        a, s = abar.sqrt(), (1 - abar).sqrt()
        if self.prediction == "epsilon":
            # x_0 = (x_t - sqrt(1 - abar) eps) / sqrt(abar) (Ho eq. 4 solved for x_0)
            return (x_t - s * model_output) / a, model_output
        if self.prediction == "x0":
            return model_output, (x_t - a * model_output) / s
        # x_0 = sqrt(abar) x_t - sqrt(1 - abar) v; eps = sqrt(1 - abar) x_t + sqrt(abar) v
        return a * x_t - s * model_output, s * x_t + a * model_output

    def _x0_eps(self, model_output, x_t, t):
        """(x0_hat, eps_hat), with x0_hat clipped to [-1, 1] and eps_hat made consistent."""
        x0, eps = self.predict_x0_eps(model_output, x_t, t)
        if self.clip_sample:
            x0 = x0.clamp(-1, 1)
            abar = _at(self.alphas_cumprod, _as_timesteps(t, len(x_t), x_t.device), x_t)
            eps = (x_t - abar.sqrt() * x0) / (1 - abar).sqrt()
        return x0, eps

    # -- the reverse process ------------------------------------------------------------------
    def step(self, model_output: torch.Tensor, t: int, x_t: torch.Tensor,
             generator: torch.Generator | None = None) -> torch.Tensor:
        """One ancestral step x_t -> x_{t-1} ~ p(x_{t-1} | x_t) (Ho Algorithm 2).

        The mean is the posterior mean mu~_t(x_t, x0_hat) (Ho eq. 7 with the predicted x_0);
        the variance beta~_t (Ho's "fixed small" choice). At ``t = 0`` no noise is added.
        """
        x0, _ = self._x0_eps(model_output, x_t, t)
        mean, var = self.posterior(x0, x_t, t)
        if int(t) == 0:
            return mean
        z = torch.randn(x_t.shape, generator=generator, device=x_t.device, dtype=x_t.dtype)
        return mean + var.sqrt() * z

    def ddim_step(self, model_output: torch.Tensor, t: int, t_prev: int, x_t: torch.Tensor,
                  eta: float = 0.0, generator: torch.Generator | None = None) -> torch.Tensor:
        """One DDIM step x_t -> x_{t_prev} (Song et al. 2021 eq. 12; t_prev = -1 means x_0).

        sigma^2 = eta^2 (1 - abar_prev)/(1 - abar_t) (1 - abar_t/abar_prev) (their eq. 16):
        eta = 0 is deterministic; eta = 1 with t_prev = t - 1 is the DDPM step.
        """
        x0, eps = self._x0_eps(model_output, x_t, t)
        abar = float(self.alphas_cumprod[int(t)])
        abar_prev = float(self.alphas_cumprod[int(t_prev)]) if int(t_prev) >= 0 else 1.0
        var = eta ** 2 * (1 - abar_prev) / (1 - abar) * (1 - abar / abar_prev)
        # x_{t-1} = sqrt(abar_prev) x0 + sqrt(1 - abar_prev - sigma^2) eps + sigma z (eq. 12)
        out = math.sqrt(abar_prev) * x0 + math.sqrt(max(1 - abar_prev - var, 0.0)) * eps
        if var > 0:
            out = out + math.sqrt(var) * torch.randn(x_t.shape, generator=generator,
                                                     device=x_t.device, dtype=x_t.dtype)
        return out

    def timesteps(self, steps: int | None = None) -> list[int]:
        """The descending timesteps a sampler visits: all T, or ``steps`` evenly spaced ones
        ending at 0 (DDIM's "linear" sub-sequence)."""
        T = self.n_timesteps
        if steps is None or int(steps) == T:
            return list(range(T - 1, -1, -1))
        if not 1 <= int(steps) <= T:
            raise ValueError(f"steps must be between 1 and the schedule's T = {T}, got {steps}.")
        return sorted({int(round(i * (T - 1) / max(int(steps) - 1, 1)))
                       for i in range(int(steps))}, reverse=True)

    def sample(self, denoise, shape, *, steps: int | None = None, method: str = "ddpm",
               eta: float = 0.0, generator: torch.Generator | None = None, device="cpu",
               dtype=torch.float32, return_chain: bool = False):
        """Run the reverse chain from x_T ~ N(0, I).

        ``denoise(x_t, t)`` returns the network's output for a batch at the integer timestep
        t. ``method="ddpm"`` takes ancestral steps over all T timesteps (``steps`` must be None
        or T); ``method="ddim"`` takes DDIM steps over ``steps`` timesteps (default all) with
        noise ``eta``. Returns x_0 (shape), or with ``return_chain`` also the list of
        intermediate states, x_T first.
        """
        if method not in ("ddpm", "ddim"):
            raise ValueError(f"method must be 'ddpm' or 'ddim', got {method!r}.")
        if method == "ddpm" and steps is not None and int(steps) != self.n_timesteps:
            raise ValueError(f"ancestral (ddpm) sampling visits all T = {self.n_timesteps} "
                             f"timesteps; for {steps} steps use method='ddim'.")
        x = torch.randn(tuple(shape), generator=generator, device=device, dtype=dtype)
        chain = [x]
        ts = self.timesteps(steps)
        for i, t in enumerate(ts):
            out = denoise(x, t)
            if method == "ddpm":
                x = self.step(out, t, x, generator)
            else:
                x = self.ddim_step(out, t, ts[i + 1] if i + 1 < len(ts) else -1, x, eta,
                                   generator)
            if return_chain:
                chain.append(x)
        return (x, chain) if return_chain else x

    # -- the variational bound (Ho sec. 3.3) ----------------------------------------------------
    def vlb(self, denoise, x0: torch.Tensor, *, n_bins: int = 256, timesteps: int | None = None,
            generator: torch.Generator | None = None) -> torch.Tensor:
        """The negative ELBO -log p(x_0) <= L_T + sum_{t>1} L_{t-1} + L_0, in nats per sample.

        ``x0`` (N, ...) is discretised data in [-1, 1] on ``n_bins`` levels (Ho et al.: 256);
        L_0 is the discretised Gaussian decoder (Ho eq. 13), the L_{t-1} are Gaussian KLs
        between q(x_{t-1} | x_t, x_0) and p(x_{t-1} | x_t) with variance beta~_t (beta~ at
        the first step clipped to beta~_2, as in Ho's code, where beta~_1 = 0). With
        ``timesteps=None`` every term is computed (T network calls); with an integer k the
        sum over t is estimated without bias from k timesteps drawn uniformly with
        replacement. Each term draws one noise image shared by all rows, so a row's bound does
        not depend on the other rows. Divide by D ln 2 for bits per dimension
        (:func:`nats_to_bits_per_dim`).
        """
        n, T = len(x0), self.n_timesteps
        x0 = x0.double()
        dims = tuple(range(1, x0.dim()))
        var = self.posterior_variance.clone()
        if T > 1:
            var[0] = var[1]
        # L_T = KL(q(x_T | x_0) || N(0, I))
        abar_T = float(self.alphas_cumprod[-1])
        prior = _normal_kl(math.sqrt(abar_T) * x0, torch.full_like(x0, 1 - abar_T),
                           torch.zeros_like(x0), torch.ones_like(x0)).sum(dims)
        if timesteps is None:
            ts, weight = torch.arange(T), 1.0
        else:
            ts = torch.randint(0, T, (int(timesteps),), generator=generator)
            weight = T / int(timesteps)
        terms = torch.zeros(n, dtype=torch.float64, device=x0.device)
        for t in ts.tolist():
            noise = torch.randn((1, *x0.shape[1:]), generator=generator, dtype=torch.float64)
            x_t = self.add_noise(x0, noise.to(x0.device).expand_as(x0), t)
            x0_hat, _ = self._x0_eps(denoise(x_t, t).double(), x_t, t)
            mean, _ = self.posterior(x0_hat, x_t, t)
            if t == 0:
                # L_0 = -log p(x_0 | x_1), the discretised Gaussian decoder (Ho eq. 13)
                terms -= discretized_gaussian_log_likelihood(
                    x0, mean, torch.full_like(x0, float(var[0])), n_bins).sum(dims)
            else:
                true_mean, true_var = self.posterior(x0, x_t, t)
                terms += _normal_kl(true_mean, true_var, mean,
                                    torch.full_like(x0, float(var[t]))).sum(dims)
        return prior + weight * terms


def _normal_kl(mean1, var1, mean2, var2) -> torch.Tensor:
    """KL(N(mean1, var1) || N(mean2, var2)) elementwise."""
    return 0.5 * (torch.log(var2 / var1) + (var1 + (mean1 - mean2) ** 2) / var2 - 1)


def _log1mexp(x: torch.Tensor) -> torch.Tensor:
    """log(1 - exp(x)) for x <= 0, accurate at both ends (Maechler 2012)."""
    return torch.where(x > -math.log(2), torch.log(-torch.expm1(x)), torch.log1p(-torch.exp(x)))


def discretized_gaussian_log_likelihood(x: torch.Tensor, mean: torch.Tensor, var: torch.Tensor,
                                        n_bins: int = 256) -> torch.Tensor:
    """log P(bin of x) under N(mean, var) for data in [-1, 1] on ``n_bins`` levels (Ho eq. 13).

    The bin of x is [x - h, x + h] with h = 1 / (n_bins - 1); the edge bins extend to
    -inf (x = -1) and +inf (x = 1), so the probabilities of the n_bins levels sum to one.
    """
    h = 1.0 / (int(n_bins) - 1)
    std = var.sqrt()
    lo = torch.where(x <= -1 + 1e-6, torch.full_like(x, -math.inf), (x - h - mean) / std)
    hi = torch.where(x >= 1 - 1e-6, torch.full_like(x, math.inf), (x + h - mean) / std)
    # log(Phi(hi) - Phi(lo)), through the lower tail where hi <= 0 and the upper tail otherwise
    lower = torch.special.log_ndtr(hi) + _log1mexp(
        (torch.special.log_ndtr(lo) - torch.special.log_ndtr(hi)).clamp(max=0))
    upper = torch.special.log_ndtr(-lo) + _log1mexp(
        (torch.special.log_ndtr(-hi) - torch.special.log_ndtr(-lo)).clamp(max=0))
    return torch.where(hi <= 0, lower, upper)


def nats_to_bits_per_dim(nats: torch.Tensor, n_dims: int) -> torch.Tensor:
    """Negative log-likelihood in nats per sample -> bits per dimension."""
    return nats / (n_dims * math.log(2))


def diffusion_loss(model: nn.Module, schedule: NoiseSchedule, x0: torch.Tensor, t: torch.Tensor,
                   noise: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
    """L_simple (Ho eq. 14): || target - model(x_t, t, y) ||^2 averaged over elements.

    ``t`` (N,) and ``noise`` (N, ...) are drawn by the caller (uniform over 0..T-1 and
    standard normal); ``y`` (N,) are class codes with the null class already put in where the
    labels are dropped (classifier-free guidance training).
    """
    x_t = schedule.add_noise(x0, noise, t)
    return F.mse_loss(model(x_t, t, y), schedule.target(x0, noise, t))


def guided_output(model: nn.Module, x_t: torch.Tensor, t: torch.Tensor, y: torch.Tensor,
                  guidance: float, null_class: int) -> torch.Tensor:
    """Classifier-free guidance (Ho & Salimans 2022 eq. 6): (1 + w) out(x, y) - w out(x, null).

    w = 0 is the plain conditional model. The conditional and unconditional outputs come
    from one batched call.
    """
    n = len(x_t)
    out = model(torch.cat([x_t, x_t]), torch.cat([t, t]),
                torch.cat([y, torch.full_like(y, null_class)]))
    cond, uncond = out[:n], out[n:]
    return (1 + guidance) * cond - guidance * uncond


# -- networks ---------------------------------------------------------------------------------
def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal embedding of integer timesteps (Vaswani et al. 2017 sec. 3.5; Ho et al.):
    (N,) -> (N, dim) = [sin(t w_k), cos(t w_k)], w_k = max_period^(-k / (dim/2))."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device) / half)
    args = t.float()[:, None] * freqs[None]  # (N, dim/2)
    emb = torch.cat([torch.sin(args), torch.cos(args)], dim=1)
    return F.pad(emb, (0, dim % 2))


class _Conditioning(nn.Module):
    """Time embedding MLP plus an optional class embedding (index n_classes = null class)."""

    def __init__(self, base: int, dim: int, n_classes: int | None):
        super().__init__()
        self.base = base
        self.time = nn.Sequential(nn.Linear(base, dim), nn.SiLU(), nn.Linear(dim, dim))
        self.n_classes = n_classes
        self.label = nn.Embedding(n_classes + 1, dim) if n_classes else None

    def forward(self, t: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        emb = self.time(timestep_embedding(t, self.base).to(self.time[0].weight.dtype))  # (N, dim)
        if self.label is not None:
            if y is None:  # unconditional: the null class
                y = torch.full_like(t, self.n_classes)
            emb = emb + self.label(y)
        return emb


def _norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(math.gcd(8, channels), channels)


class _ResBlock(nn.Module):
    """GroupNorm-SiLU-conv twice, the time/class embedding added in between (Ho et al.'s
    Wide-ResNet block), with a 1x1 skip when the width changes."""

    def __init__(self, c_in: int, c_out: int, emb_dim: int, dropout: float):
        super().__init__()
        self.conv1 = nn.Sequential(_norm(c_in), nn.SiLU(), nn.Conv2d(c_in, c_out, 3, padding=1))
        self.emb = nn.Sequential(nn.SiLU(), nn.Linear(emb_dim, c_out))
        self.conv2 = nn.Sequential(_norm(c_out), nn.SiLU(), nn.Dropout(dropout),
                                   nn.Conv2d(c_out, c_out, 3, padding=1))
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(x) + self.emb(emb)[:, :, None, None]  # (N, C, H, W)
        return self.skip(x) + self.conv2(h)


class _Attention(nn.Module):
    """Single-head self-attention over the H*W positions, with a residual connection."""

    def __init__(self, channels: int):
        super().__init__()
        self.norm = _norm(channels)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.out = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(n, 3, c, h * w).transpose(2, 3).unbind(1)
        a = F.scaled_dot_product_attention(q, k, v)  # (N, HW, C)
        return x + self.out(a.transpose(1, 2).reshape(n, c, h, w))


def default_channel_mults(size: int) -> tuple[int, ...]:
    """(1, 2, 2, ...): one level per halving while the side stays even, at most 3 levels and
    stopping at 4 pixels (8x8 -> 2 levels, 28x28 -> 3 levels (28, 14, 7), 32x32 -> 3)."""
    mults, side = [1], int(size)
    while len(mults) < 3 and side % 2 == 0 and side // 2 >= 4:
        mults.append(2)
        side //= 2
    return tuple(mults)


class UNet(nn.Module):
    """A small DDPM U-Net (Ho et al. 2020 appendix B, scaled down): ``model(x_t, t, y=None)``.

    Levels of ``n_res_blocks`` residual blocks at widths ``base_channels * mult``, stride-2
    convolutions down and nearest-neighbour upsampling + convolution up, skip connections
    concatenated, and a middle block (res, self-attention, res) at the lowest resolution.
    ``n_classes`` adds a class embedding with a null class (index n_classes) for
    classifier-free guidance. Each image side must be divisible by 2^(levels - 1).
    """

    def __init__(self, in_channels: int = 1, base_channels: int = 32,
                 channel_mults: tuple[int, ...] = (1, 2), n_res_blocks: int = 1,
                 n_classes: int | None = None, dropout: float = 0.0):
        super().__init__()
        emb_dim = 4 * base_channels
        self.cond = _Conditioning(base_channels, emb_dim, n_classes)
        self.n_levels = len(channel_mults)
        widths = [base_channels * m for m in channel_mults]
        self.inp = nn.Conv2d(in_channels, base_channels, 3, padding=1)
        self.down, skips, c = nn.ModuleList(), [base_channels], base_channels
        for level, w in enumerate(widths):
            for _ in range(n_res_blocks):
                self.down.append(_ResBlock(c, w, emb_dim, dropout))
                c = w
                skips.append(c)
            if level < self.n_levels - 1:
                self.down.append(nn.Conv2d(c, c, 3, stride=2, padding=1))
                skips.append(c)
        self.mid = nn.ModuleList([_ResBlock(c, c, emb_dim, dropout), _Attention(c),
                                  _ResBlock(c, c, emb_dim, dropout)])
        self.up = nn.ModuleList()
        for level, w in reversed(list(enumerate(widths))):
            for _ in range(n_res_blocks + 1):
                self.up.append(_ResBlock(c + skips.pop(), w, emb_dim, dropout))
                c = w
            if level > 0:
                self.up.append(nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"),
                                             nn.Conv2d(c, c, 3, padding=1)))
        self.out = nn.Sequential(_norm(c), nn.SiLU(), nn.Conv2d(c, in_channels, 3, padding=1))

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None):
        emb = self.cond(_as_timesteps(t, len(x), x.device), y)  # (N, E)
        h = self.inp(x)  # (N, base, H, W)
        hs = [h]
        for layer in self.down:
            h = layer(h, emb) if isinstance(layer, _ResBlock) else layer(h)
            hs.append(h)
        for layer in self.mid:
            h = layer(h, emb) if isinstance(layer, _ResBlock) else layer(h)
        for layer in self.up:
            if isinstance(layer, _ResBlock):
                h = layer(torch.cat([h, hs.pop()], dim=1), emb)
            else:
                h = layer(h)
        return self.out(h)


class DenoisingMLP(nn.Module):
    """The denoiser for rows (N, D): ``model(x_t, t, y=None)``, residual SiLU blocks of width
    ``hidden`` with the time (and class) embedding added to each."""

    def __init__(self, n_features: int, hidden: int = 128, n_blocks: int = 3,
                 n_classes: int | None = None):
        super().__init__()
        self.cond = _Conditioning(hidden, hidden, n_classes)
        self.inp = nn.Linear(n_features, hidden)
        self.blocks = nn.ModuleList(nn.Sequential(nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU(),
                                                  nn.Linear(hidden, hidden))
                                    for _ in range(n_blocks))
        self.out = nn.Sequential(nn.SiLU(), nn.Linear(hidden, n_features))

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None):
        emb = self.cond(_as_timesteps(t, len(x), x.device), y)  # (N, hidden)
        h = self.inp(x)
        for block in self.blocks:
            h = h + block(h + emb)
        return self.out(h)


# -- the estimator ----------------------------------------------------------------------------
def _example_draws(index: torch.Tensor, epoch: int, seed: int, shape, n_timesteps: int,
                   p_uncond: float, device, dtype):
    """(t, noise, drop) for each training example, a function of (seed, epoch, example index)
    alone: a data-parallel run then draws exactly what one process draws for the same examples,
    and a resumed run what the uninterrupted one drew."""
    g = torch.Generator()
    ts, noises, drops = [], [], []
    for i in index.tolist():
        # SeedSequence hashes the triple into a well-mixed 63-bit seed
        key = np.random.SeedSequence((seed, epoch, i)).generate_state(1, np.uint64)[0]
        g.manual_seed(int(key >> np.uint64(1)))
        ts.append(torch.randint(0, n_timesteps, (1,), generator=g))
        noises.append(torch.randn(tuple(shape), generator=g, dtype=torch.float64))
        drops.append(torch.rand(1, generator=g, dtype=torch.float64) < p_uncond)
    return (torch.cat(ts).to(device), torch.stack(noises).to(device=device, dtype=dtype),
            torch.cat(drops).to(device))


class DDPM(_GenerativeEstimator):
    """Denoising diffusion probabilistic model (Ho et al. 2020) as an estimator.

    ``fit(X, y=None)`` learns to denoise images (N, H, W) / (N, C, H, W) with a :class:`UNet`,
    or rows (N, D) with a :class:`DenoisingMLP`; the data range [data_min_, data_max_] is mapped
    linearly to [-1, 1] inside. With labels ``y`` the model is class-conditional and trained
    with label dropout ``p_uncond`` for classifier-free guidance (Ho & Salimans 2022).
    ``sample(n, y=None, guidance=None, steps=None)`` runs the reverse chain (ancestral over
    all T steps, or DDIM over ``steps``) and returns arrays in the training data's shape and
    range. ``score_samples(X)`` is the variational lower bound on log p(x) in nats of
    discretised data (Ho sec. 3.3) and ``bits_per_dim(X)`` the matching negative bound in bits
    per dimension.

    Parameters
    ----------
    n_timesteps : T, the length of the diffusion (Ho et al.: 1000).
    schedule : ``"linear"`` (Ho et al.: beta 1e-4 .. 0.02) or ``"cosine"`` (Nichol & Dhariwal).
    prediction : ``"epsilon"`` (Ho et al.), ``"x0"`` or ``"v"`` (Salimans & Ho 2022).
    base_channels : the U-Net's width at full resolution (the MLP's width is 4x this).
    channel_mults : the width multiplier of each U-Net level (None: (1, 2, ...) by image
        size, :func:`default_channel_mults`).
    n_res_blocks : residual blocks per U-Net level.
    p_uncond : probability of training on the null label when labels are given.
    sampling_steps : None samples with ancestral DDPM steps over all T timesteps; an integer
        samples with that many DDIM steps (Song et al. 2021) with noise ``eta``.
    eta : DDIM's noise level (0: deterministic, 1: DDPM-like).
    clip_sample : clip the predicted x_0 to the data range while sampling.
    lr_schedule : ``"cosine"`` decays the learning rate to 0 over ``max_epochs`` (per epoch,
        cosine annealing); ``"constant"`` keeps it. Without an average of the weights, the
        decay is what makes the last weights sample every class in proportion.
    max_epochs, batch_size, learning_rate, grad_clip, checkpoint_dir, resume, verbose,
    device, dtype, random_state : training through :class:`bayesdl.train.Trainer` (Adam).

    Attributes
    ----------
    module_ : the trained network (its schedule is ``NoiseSchedule.<schedule>(n_timesteps)``);
    history_, n_iter_ : the Trainer's per-epoch losses and the number of epochs run;
    input_shape_, data_shape_, n_features_in_, data_min_, data_max_, classes_, n_classes_ :
    what was fitted (classes only with labels).
    """

    _parameter_constraints: dict = {
        **_GenerativeEstimator._parameter_constraints,
        "n_timesteps": [Interval(Integral, 1, None, closed="left")],
        "schedule": [StrOptions({"linear", "cosine"})],
        "prediction": [StrOptions(set(PREDICTIONS))],
        "base_channels": [Interval(Integral, 1, None, closed="left")],
        "channel_mults": [tuple, list, None],
        "n_res_blocks": [Interval(Integral, 1, None, closed="left")],
        "p_uncond": [Interval(Real, 0, 1, closed="left")],
        "sampling_steps": [Interval(Integral, 1, None, closed="left"), None],
        "eta": [Interval(Real, 0, None, closed="left")],
        "clip_sample": ["boolean"],
        "lr_schedule": [StrOptions({"cosine", "constant"})],
        "grad_clip": [Interval(Real, 0, None, closed="neither"), None],
    }

    def __init__(self, n_timesteps: int = 1000, schedule: str = "linear",
                 prediction: str = "epsilon", base_channels: int = 32, channel_mults=None,
                 n_res_blocks: int = 1, p_uncond: float = 0.1, sampling_steps: int | None = None,
                 eta: float = 0.0, clip_sample: bool = True, max_epochs: int = 30,
                 batch_size: int = 64, learning_rate: float = 2e-3, lr_schedule: str = "cosine",
                 grad_clip: float | None = 1.0,
                 checkpoint_dir=None, resume: bool = False, verbose: bool = False,
                 device="cpu", dtype: str = "float32", random_state=None):
        self.n_timesteps, self.schedule, self.prediction = n_timesteps, schedule, prediction
        self.base_channels, self.channel_mults = base_channels, channel_mults
        self.n_res_blocks, self.p_uncond = n_res_blocks, p_uncond
        self.sampling_steps, self.eta, self.clip_sample = sampling_steps, eta, clip_sample
        self.max_epochs, self.batch_size, self.learning_rate = max_epochs, batch_size, learning_rate
        self.lr_schedule = lr_schedule
        self.grad_clip, self.checkpoint_dir, self.resume = grad_clip, checkpoint_dir, resume
        self.verbose, self.device, self.dtype = verbose, device, dtype
        self.random_state = random_state

    def _support(self):
        return None  # any range: [data_min_, data_max_] is mapped to [-1, 1]

    def _schedule(self) -> NoiseSchedule:
        return getattr(NoiseSchedule, self.schedule)(self.n_timesteps, prediction=self.prediction,
                                                    clip_sample=self.clip_sample)

    def _conditional(self) -> bool:
        return getattr(self, "classes_", None) is not None

    def _build_module(self) -> nn.Module:
        n_classes = self.n_classes_ if self._conditional() else None
        if len(self.data_shape_) == 1:
            return DenoisingMLP(self.data_shape_[0], 4 * self.base_channels, n_classes=n_classes)
        c, h, w = self.data_shape_
        mults = tuple(self.channel_mults or default_channel_mults(min(h, w)))
        factor = 2 ** (len(mults) - 1)
        if h % factor or w % factor:
            raise ValueError(f"images of {h}x{w} pixels cannot be halved {len(mults) - 1} times "
                             f"by channel_mults={mults}; use fewer levels or pad the images to a "
                             f"multiple of {factor}.")
        return UNet(c, self.base_channels, mults, self.n_res_blocks, n_classes)

    def fit(self, X, y=None):
        """Train the denoiser on X (images or rows), class-conditional when ``y`` is given."""
        self._validate_params()
        x, codes = self._validate_data(X, y, reset=True)
        self.module_ = self._new_module()
        seed = self._seed()
        x = self._to_symmetric(x)
        schedule = self._schedule()
        null = self.n_classes_ if codes is not None else None

        def loss_fn(model, batch, step):
            if codes is None:
                xb, index = batch
                yb = None
            else:
                xb, index, yb = batch
            t, noise, drop = _example_draws(index, step.epoch, seed, xb.shape[1:],
                                            schedule.n_timesteps, self.p_uncond, xb.device,
                                            xb.dtype)
            if yb is not None:
                # classifier-free guidance: train on the null class with probability p_uncond
                yb = torch.where(drop, torch.full_like(yb, null), yb)
            return diffusion_loss(model, schedule, xb, t, noise, yb)

        index = torch.arange(len(x), device=x.device)
        data = (x, index) if codes is None else (x, index, codes)
        epochs = self.max_epochs
        scheduler = None if self.lr_schedule == "constant" else (
            lambda opt: torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs))
        self._train(loss_fn, data, grad_clip=self.grad_clip, scheduler=scheduler)
        return self

    def _denoiser(self, y: torch.Tensor | None, guidance: float | None):
        model, null = self.module_, (self.n_classes_ if self._conditional() else None)

        def denoise(x, t):
            t = torch.full((len(x),), int(t), device=x.device)
            if y is None:
                return model(x, t)
            if guidance is None or guidance == 0:
                return model(x, t, y)
            return guided_output(model, x, t, y, float(guidance), null)
        return denoise

    def _sample_codes(self, n: int, y, guidance):
        if y is None:
            if guidance is not None:
                raise ValueError("guidance needs labels: pass y (one label, or n labels) to "
                                 "sample with classifier-free guidance.")
            return None
        if not self._conditional():
            raise ValueError("this DDPM was fitted without labels, so it cannot sample given a "
                             "label or guidance; fit(X, y) trains a class-conditional model.")
        y = np.asarray(y)
        if y.ndim == 0:
            y = np.full(n, y.item())
        if len(y) != n:
            raise ValueError(f"y has {len(y)} labels for n = {n} samples; pass one label or n.")
        return self._encode_labels(y)

    def sample(self, n: int, y=None, guidance: float | None = None, steps: int | None = None,
               eta: float | None = None, random_state=None, return_chain: bool = False):
        """Draw ``n`` samples in the training data's shape and range.

        ``y``: one label or ``n`` labels (class-conditional models; None samples the
        unconditional model through the null class). ``guidance``: the classifier-free
        guidance weight w of Ho & Salimans (2022) eq. 6 (0 = the plain conditional model;
        needs ``y``). ``steps``: DDIM steps (default ``sampling_steps``; None = ancestral DDPM
        over all T). ``return_chain``: also return the states x_T .. x_0 of the reverse chain
        as a list of arrays in the data's shape and range.
        """
        check_is_fitted(self, "input_shape_")
        if int(n) < 1:
            raise ValueError(f"n must be a positive number of samples, got {n}.")
        if guidance is not None and not (np.isfinite(guidance) and guidance >= 0):
            raise ValueError(f"guidance must be a weight >= 0, got {guidance}.")
        if guidance is not None and not self._conditional():
            raise ValueError("guidance needs a class-conditional model: this DDPM was fitted "
                             "without labels; fit(X, y) to use classifier-free guidance.")
        codes = self._sample_codes(int(n), y, guidance)
        steps = self.sampling_steps if steps is None else steps
        eta = self.eta if eta is None else eta
        self.module_.eval()
        with torch.no_grad():
            x, chain = self._schedule().sample(
                self._denoiser(codes, guidance), (int(n), *self.data_shape_), steps=steps,
                method="ddpm" if steps is None else "ddim", eta=eta,
                generator=self._torch_generator(random_state), device=self._torch_device,
                dtype=self._torch_dtype, return_chain=True)
        out = self._as_output(self._from_symmetric(x))
        if return_chain:
            return out, [self._as_output(self._from_symmetric(c)) for c in chain]
        return out

    def score_samples(self, X, n_bins: int = 256, timesteps: int | None = None):
        """The variational lower bound on log p(x) per sample, in nats (Ho sec. 3.3).

        X is treated as discretised data: its range [data_min_, data_max_] holds ``n_bins``
        equally spaced levels (256 for 8-bit images). ``timesteps=None`` evaluates all T terms
        (T network passes); an integer k estimates their sum without bias from k random
        timesteps. The network runs in float64 here, so a row's bound does not depend on the
        other rows.
        """
        check_is_fitted(self, "input_shape_")
        x, _ = self._validate_data(X, reset=False, min_samples=1)
        if bool((x < self.data_min_).any() or (x > self.data_max_).any()):
            raise ValueError(
                f"X has values outside the training data's range [{self.data_min_}, "
                f"{self.data_max_}], on which the discretised likelihood is defined; scale X "
                "as the training data was scaled.")
        x = self._to_symmetric(x).double()
        model = copy.deepcopy(self.module_).double().eval()
        with torch.no_grad():
            bound = self._schedule().vlb(lambda xt, t: model(xt, torch.full((len(xt),), t,
                                                                          device=xt.device)),
                                       x, n_bins=n_bins, timesteps=timesteps,
                                       generator=self._torch_generator())
        return -bound.cpu().numpy()

    def bits_per_dim(self, X, n_bins: int = 256, timesteps: int | None = None) -> float:
        """The mean negative variational bound in bits per dimension (lower is better)."""
        nats = -self.score_samples(X, n_bins=n_bins, timesteps=timesteps).mean()
        return float(nats_to_bits_per_dim(torch.tensor(nats), int(np.prod(self.data_shape_))))
