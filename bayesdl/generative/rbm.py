"""Restricted Boltzmann machines: Bernoulli-Bernoulli and Gaussian-Bernoulli.

Both are written in the exponential-family form of Welling, Rosen-Zvi & Hinton (2005),

    E(v, h) = g(v) - b'v - c'h - v'W h,          h in {0, 1}^H,

with visible biases ``b`` (D,), hidden biases ``c`` (H,) and weights ``W`` (D, H).

- :class:`BernoulliRBM`: v in {0, 1}^D, base measure g(v) = 0.
- :class:`GaussianBernoulliRBM`: v in R^D with unit variance, g(v) = ||v||^2 / 2, which is
  E(v, h) = ||v - b||^2 / 2 - c'h - v'W h up to the constant ||b||^2 / 2 (Hinton 2010, "A
  practical guide to training RBMs", sec. 13.2: standardise the data and fix the variance at 1,
  since learning it with CD is unstable).

Everything below follows from two functions of the visible family: the base measure g and
the log-normaliser A(eta) = log sum_v exp(v'eta - g(v)) of p(v | h), whose natural parameter
is eta = b + W h:

- free energy   F(v) = g(v) - b'v - sum_j softplus(c_j + v'W_j)            (sum over h)
- p(h_j = 1 | v) = sigmoid(c_j + v'W_j),   p(v | h) = exp(v'eta - g(v) - A(eta))
- log Z = logsumexp_h [c'h + A(b + W h)]                                      (sum over v)

The objectives are functions beside the models (:func:`cd_loss`, :func:`pcd_loss`): surrogate
losses whose gradient is the contrastive-divergence gradient, so the models train through
:class:`bayesdl.train.Trainer`. :meth:`BernoulliRBM.log_partition` estimates log Z by annealed
importance sampling (Salakhutdinov & Murray 2008) with a standard error, or computes it exactly
by enumerating the hidden states when there are at most 20.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import nn
from torch.distributions import Bernoulli, Independent, Normal

MAX_EXACT_HIDDEN = 20  # 2^20 hidden states: about a second of enumeration
_ENUMERATION_CHUNK = 2 ** 14  # hidden states per chunk of the exact log Z (bounded memory)
_BASE_RATE_CLIP = 1e-3  # base-rate probabilities kept in [1e-3, 1 - 1e-3] (finite logits)


class LogPartition(NamedTuple):
    """An estimate of log Z and its standard error (0 for the exact value)."""

    value: float
    stderr: float


def ais_schedule(n_betas: int, *, dtype=torch.float64) -> torch.Tensor:
    """Inverse temperatures 0 = beta_0 < ... < beta_K = 1 for AIS, K = ``n_betas``.

    Salakhutdinov & Murray (2008, sec. 4.2) spend 500 of their 14,500 steps on [0, 0.5], 4,000
    on [0.5, 0.9] and 10,000 on [0.9, 1]: the distributions change fastest near beta = 1. This
    keeps those proportions for any K >= 3.
    """
    n_betas = int(n_betas)
    if n_betas < 3:
        raise ValueError(f"n_betas must be at least 3, got {n_betas}.")
    n1 = max(1, round(n_betas * 500 / 14500))
    n2 = max(1, round(n_betas * 4000 / 14500))
    n3 = n_betas - n1 - n2
    return torch.cat([torch.linspace(0.0, 0.5, n1 + 1, dtype=dtype)[:-1],
                      torch.linspace(0.5, 0.9, n2 + 1, dtype=dtype)[:-1],
                      torch.linspace(0.9, 1.0, n3 + 1, dtype=dtype)])


def _log_mean_exp_with_stderr(log_w: torch.Tensor) -> LogPartition:
    """log mean_m exp(log_w_m) and its delta-method standard error.

    With r_m = exp(log_w_m - max log_w), SE(log mean r) ~= sd(r) / (sqrt(M) mean(r)).
    """
    log_w = log_w.double()
    m = log_w.numel()
    value = torch.logsumexp(log_w, 0) - math.log(m)
    r = torch.exp(log_w - log_w.max())
    stderr = r.std() / (math.sqrt(m) * r.mean()) if m > 1 else torch.tensor(math.inf)
    return LogPartition(float(value), float(stderr))


class _RBMModule(nn.Module):
    """A restricted Boltzmann machine with binary hidden units (base of the two families).

    Parameters
    ----------
    n_visible, n_hidden : D and H.
    n_chains : persistent fantasy particles kept in the buffer ``chains`` (n_chains, D) for
        :func:`pcd_loss`; 0 for none. They live in the ``state_dict``, so checkpoints and
        ``bayesdl.save`` keep them. Fill them with data rows before training (zeros otherwise).

    Weights start from N(0, 0.01^2), biases at 0 (Hinton 2010, sec. 8), drawn from the global
    torch RNG. ``forward(v)`` is the free energy, so a ``DistributedDataParallel`` wrapper
    sees the one call the objectives make.
    """

    def __init__(self, n_visible: int, n_hidden: int, n_chains: int = 0):
        super().__init__()
        if int(n_visible) < 1 or int(n_hidden) < 1 or int(n_chains) < 0:
            raise ValueError(f"n_visible and n_hidden must be positive and n_chains >= 0, got "
                             f"{n_visible}, {n_hidden} and {n_chains}.")
        self.weight = nn.Parameter(0.01 * torch.randn(int(n_visible), int(n_hidden)))  # (D, H)
        self.visible_bias = nn.Parameter(torch.zeros(int(n_visible)))  # (D,)
        self.hidden_bias = nn.Parameter(torch.zeros(int(n_hidden)))  # (H,)
        self.register_buffer("chains", torch.zeros(int(n_chains), int(n_visible)))

    @property
    def n_visible(self) -> int:
        return self.weight.shape[0]

    @property
    def n_hidden(self) -> int:
        return self.weight.shape[1]

    # -- the visible family (subclasses) ----------------------------------------------------
    def base_measure(self, v: torch.Tensor) -> torch.Tensor:
        """g(v) (N,)."""
        raise NotImplementedError

    def log_normalizer(self, eta: torch.Tensor) -> torch.Tensor:
        """A(eta) = log sum_v exp(v'eta - g(v)), summed over the D units: (...,)."""
        raise NotImplementedError

    def _visible_distribution(self, eta: torch.Tensor) -> torch.distributions.Distribution:
        raise NotImplementedError

    def _sample_visible(self, eta: torch.Tensor, generator) -> torch.Tensor:
        raise NotImplementedError

    def _natural_from_mean(self, mean: torch.Tensor) -> torch.Tensor:
        """The natural parameter eta whose p(v) has this mean (the inverse link)."""
        raise NotImplementedError

    # -- energy, free energy and conditionals -----------------------------------------------
    def hidden_logits(self, v: torch.Tensor) -> torch.Tensor:
        """c + v W (N, H): the logits of p(h | v)."""
        return v @ self.weight + self.hidden_bias

    def visible_natural(self, h: torch.Tensor) -> torch.Tensor:
        """b + W h (N, D): the natural parameter of p(v | h)."""
        return h @ self.weight.T + self.visible_bias

    def energy(self, v: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """E(v, h) = g(v) - b'v - c'h - v'W h (N,)."""
        return (self.base_measure(v) - v @ self.visible_bias - h @ self.hidden_bias
                - ((v @ self.weight) * h).sum(-1))

    def free_energy(self, v: torch.Tensor) -> torch.Tensor:
        """F(v) = -log sum_h exp(-E(v, h)) = g(v) - b'v - sum_j softplus(c_j + v'W_j) (N,)."""
        return (self.base_measure(v) - v @ self.visible_bias
                - nn.functional.softplus(self.hidden_logits(v)).sum(-1))

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        """The free energy F(v) (N,)."""
        return self.free_energy(v)

    def p_h_given_v(self, v: torch.Tensor) -> torch.distributions.Distribution:
        """p(h | v): independent Bernoullis with logits c + v W; batch (N,), event (H,)."""
        return Independent(Bernoulli(logits=self.hidden_logits(v)), 1)

    def p_v_given_h(self, h: torch.Tensor) -> torch.distributions.Distribution:
        """p(v | h): batch (N,), event (D,), natural parameter b + W h."""
        return self._visible_distribution(self.visible_natural(h))

    # -- Gibbs sampling -----------------------------------------------------------------------
    def _gibbs_step(self, v, generator, beta=1.0, base_bias=None):
        """One sweep h ~ p_beta(h | v), v ~ p_beta(v | h) of the annealed RBM (see AIS).

        At beta = 1 this is the RBM's own block Gibbs sweep.
        """
        # p_beta(h_j = 1 | v) = sigmoid(beta (c_j + v'W_j))   (S&M 2008, eq. 15)
        h = torch.bernoulli(torch.sigmoid(beta * self.hidden_logits(v)), generator=generator)
        eta = beta * self.visible_natural(h)  # (N, D)
        if base_bias is not None:
            # visible natural parameter (1 - beta) b_A + beta (b + W h)   (S&M 2008, eq. 16)
            eta = eta + (1.0 - beta) * base_bias
        return self._sample_visible(eta, generator)

    @torch.no_grad()
    def gibbs(self, v: torch.Tensor, k: int = 1, *, generator=None) -> torch.Tensor:
        """``k`` block-Gibbs sweeps v -> h -> v from ``v`` (N, D); returns the last v sample."""
        for _ in range(int(k)):
            v = self._gibbs_step(v, generator)
        return v

    @torch.no_grad()
    def sample(self, n: int, n_steps: int = 1000, *, init=None, generator=None,
               mean: bool = True) -> torch.Tensor:
        """``n`` visible vectors from ``n_steps`` Gibbs sweeps (n, D).

        The chains start at ``init`` (n, D) or at a draw from the visible biases alone. With
        ``mean=True`` the last sweep returns E[v | h] (probabilities for Bernoulli units, the
        noise-free mean for Gaussian ones) instead of a draw of v.
        """
        param = self.weight
        if init is None:
            init = self._sample_visible(self.visible_bias.expand(int(n), -1), generator)
        v = init.to(param)
        for _ in range(int(n_steps) - 1):
            v = self._gibbs_step(v, generator)
        h = torch.bernoulli(torch.sigmoid(self.hidden_logits(v)), generator=generator)
        if mean:
            return self.p_v_given_h(h).mean
        return self._sample_visible(self.visible_natural(h), generator)

    # -- the partition function --------------------------------------------------------------
    @torch.no_grad()
    def log_partition(self, method: str = "ais", *, data=None, n_betas: int = 10000,
                      n_runs: int = 100, generator=None) -> LogPartition:
        """log Z with its standard error.

        ``method="exact"`` enumerates the 2^H hidden states (H <= 20), log Z =
        logsumexp_h [c'h + A(b + W h)], in chunks of bounded memory; the standard error is 0.

        ``method="ais"`` is annealed importance sampling (Salakhutdinov & Murray 2008) with
        ``n_runs`` independent runs through ``n_betas`` intermediate distributions
        (:func:`ais_schedule`) from the base-rate model: an RBM with W = 0 whose visible
        biases b_A give ``data``'s mean visible vector (its sec. 4.2; None: b_A = b). It returns
        log Z_A + log mean_m w_m and the delta-method standard error of that log-mean.
        """
        if method == "exact":
            return LogPartition(self._exact_log_partition(), 0.0)
        if method != "ais":
            raise ValueError(f"method must be 'ais' or 'exact', got {method!r}.")
        if data is None:
            base_bias = self.visible_bias.detach().clone()
        else:
            data = torch.as_tensor(data).to(self.weight)
            if data.ndim != 2 or data.shape[1] != self.n_visible:
                raise ValueError(f"data must be (N, {self.n_visible}) visible rows, got shape "
                                 f"{tuple(data.shape)}.")
            base_bias = self._natural_from_mean(data.mean(0))
        return self._ais(base_bias, n_betas, n_runs, generator)

    def _exact_log_partition(self) -> float:
        H = self.n_hidden
        if H > MAX_EXACT_HIDDEN:
            raise ValueError(f"exact log Z enumerates 2^H hidden states; H = {H} > "
                             f"{MAX_EXACT_HIDDEN}. Use method='ais'.")
        bits = torch.arange(H, device=self.weight.device)
        parts = []
        for start in range(0, 2 ** H, _ENUMERATION_CHUNK):
            index = torch.arange(start, min(start + _ENUMERATION_CHUNK, 2 ** H),
                                 device=self.weight.device)
            h = ((index[:, None] >> bits) & 1).to(self.weight.dtype)  # (C, H)
            # log sum_v exp(-E(v, h)) = c'h + A(b + W h)
            parts.append(torch.logsumexp(h @ self.hidden_bias
                                         + self.log_normalizer(self.visible_natural(h)), 0))
        return float(torch.logsumexp(torch.stack(parts), 0))

    def _ais(self, base_bias, n_betas, n_runs, generator) -> LogPartition:
        betas = ais_schedule(n_betas).tolist()
        # v_1 ~ p_0 = p_A (independent units with natural parameter b_A)
        v = self._sample_visible(base_bias.expand(int(n_runs), -1), generator)  # (M, D)
        log_w = torch.zeros(int(n_runs), dtype=torch.float64, device=v.device)
        for k in range(1, len(betas)):
            logits = self.hidden_logits(v)  # (M, H)
            # log p*_k(v) - log p*_{k-1}(v), where (S&M 2008, eq. 14 with W_A = 0)
            # log p*_beta(v) = -g(v) + v'((1 - beta) b_A + beta b) + sum_j softplus(beta x_j)
            step = ((betas[k] - betas[k - 1]) * (v @ (self.visible_bias - base_bias))
                    + (nn.functional.softplus(betas[k] * logits)
                       - nn.functional.softplus(betas[k - 1] * logits)).sum(-1))
            log_w += step.double()
            if k < len(betas) - 1:
                v = self._gibbs_step(v, generator, betas[k], base_bias)
        # Z_0 = Z_A 2^H: the H hidden units are uniform and independent at beta = 0
        log_z0 = float(self.log_normalizer(base_bias)) + self.n_hidden * math.log(2.0)
        ratio = _log_mean_exp_with_stderr(log_w)
        return LogPartition(log_z0 + ratio.value, ratio.stderr)


class BernoulliRBM(_RBMModule):
    """Binary visible units: v in {0, 1}^D (or probabilities in [0, 1] as mean-field data)."""

    def base_measure(self, v):
        return v.new_zeros(v.shape[:-1])

    def log_normalizer(self, eta):
        # log sum_{v in {0,1}} exp(v eta) = softplus(eta), per unit
        return nn.functional.softplus(eta).sum(-1)

    def _visible_distribution(self, eta):
        return Independent(Bernoulli(logits=eta), 1)

    def _sample_visible(self, eta, generator):
        return torch.bernoulli(torch.sigmoid(eta), generator=generator)

    def _natural_from_mean(self, mean):
        p = mean.clamp(_BASE_RATE_CLIP, 1.0 - _BASE_RATE_CLIP)
        return torch.log(p) - torch.log1p(-p)


class GaussianBernoulliRBM(_RBMModule):
    """Real visible units of unit variance: p(v | h) = N(b + W h, I) (standardise the data)."""

    def base_measure(self, v):
        return 0.5 * (v * v).sum(-1)

    def log_normalizer(self, eta):
        # log int exp(v'eta - ||v||^2 / 2) dv = ||eta||^2 / 2 + (D / 2) log 2 pi
        return 0.5 * (eta * eta).sum(-1) + 0.5 * eta.shape[-1] * math.log(2 * math.pi)

    def _visible_distribution(self, eta):
        return Independent(Normal(eta, torch.ones_like(eta)), 1)

    def _sample_visible(self, eta, generator):
        return eta + torch.randn(eta.shape, generator=generator, dtype=eta.dtype,
                                 device=eta.device)

    def _natural_from_mean(self, mean):
        return mean.clone()


# -- objectives ---------------------------------------------------------------------------------
def _contrast(model, v_data: torch.Tensor, v_model: torch.Tensor) -> torch.Tensor:
    """mean F(v_data) - mean F(v_model) in one forward call (DDP sees one)."""
    f = model(torch.cat([v_data, v_model]))  # (N + M,)
    n = v_data.shape[0]
    return f[:n].mean() - f[n:].mean()


def cd_loss(model, v: torch.Tensor, k: int = 1, *, generator=None) -> torch.Tensor:
    """Contrastive divergence CD-k (Hinton 2002) as a surrogate loss for autograd.

    d(-log p(v))/d theta = dF(v)/d theta - E_p[dF(v')/d theta] (the second term is the
    model's expectation); CD-k replaces the expectation by v_k, k Gibbs sweeps from the data.
    The returned mean F(v) - mean F(v_k) (v_k held fixed) has exactly that gradient; its value
    is not a log-likelihood. ``model`` is an RBM module (or a DDP wrapper of one).
    """
    rbm = getattr(model, "module", model)
    v_k = rbm.gibbs(v, k, generator=generator)  # (N, D), no gradient
    return _contrast(model, v, v_k)


def pcd_loss(model, v: torch.Tensor, k: int = 1, *, generator=None) -> torch.Tensor:
    """Persistent contrastive divergence (Tieleman 2008) as a surrogate loss.

    The negative phase continues the fantasy particles in ``model.chains`` by ``k`` Gibbs
    sweeps (updated in place, so they persist across batches, epochs and checkpoints) instead
    of restarting at the data: with small learning rates the chains stay close to the model's
    distribution and the gradient is that of the log-likelihood, not of CD's objective.
    """
    rbm = getattr(model, "module", model)
    if rbm.chains.shape[0] == 0:
        raise ValueError("pcd_loss needs persistent chains: build the RBM with n_chains > 0.")
    rbm.chains.copy_(rbm.gibbs(rbm.chains, k, generator=generator))  # (M, D)
    return _contrast(model, v, rbm.chains)


__all__ = ["BernoulliRBM", "GaussianBernoulliRBM", "LogPartition", "ais_schedule", "cd_loss",
           "pcd_loss"]
