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
by enumerating the hidden states when there are at most 20. :class:`RBM` wraps them as an
estimator: ``fit`` on images or rows, ``transform`` (hidden probabilities), ``sample`` (Gibbs
chains), ``score_samples`` (log-likelihood with the AIS or exact log Z) and
``pseudo_likelihood`` (what scikit-learn's ``BernoulliRBM.score_samples`` reports).
"""

from __future__ import annotations

import math
from numbers import Integral, Real
from typing import NamedTuple

import numpy as np
import torch
from sklearn.base import TransformerMixin
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, check_random_state
from torch import nn
from torch.distributions import Bernoulli, Independent, Normal

from ._base import _GenerativeEstimator

MAX_EXACT_HIDDEN = 20  # 2^20 hidden states: about a second of enumeration
_AUTO_EXACT_HIDDEN = 16  # RBM(partition="auto") enumerates up to 2^16 hidden states
_ENUMERATION_CHUNK = 2 ** 14  # hidden states per chunk of the exact log Z (bounded memory)
_BASE_RATE_CLIP = 1e-3  # base-rate probabilities kept in [1e-3, 1 - 1e-3] (finite logits)


def _bernoulli(p: torch.Tensor, generator) -> torch.Tensor:
    """Draws of Bernoulli(p), as u < p for u ~ U(0, 1) (half torch.bernoulli's time on CPU)."""
    u = torch.rand(p.shape, generator=generator, dtype=p.dtype, device=p.device)
    return (u < p).to(p.dtype)


class LogPartition(NamedTuple):
    """An estimate of log Z and its standard error (0 for the exact value)."""

    value: float
    stderr: float


def ais_schedule(n_betas: int, *, dtype=torch.float64) -> torch.Tensor:
    """Inverse temperatures 0 = beta_0 < ... < beta_K = 1 for AIS, K = ``n_betas``.

    Salakhutdinov & Murray (2008) spend 500 of their 14,500 steps on [0, 0.5], 4,000
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
        # p_beta(h_j = 1 | v) = sigmoid(beta (c_j + v'W_j))   (S&M 2008, the annealed RBM)
        h = _bernoulli(torch.sigmoid(beta * self.hidden_logits(v)), generator)
        eta = beta * self.visible_natural(h)  # (N, D)
        if base_bias is not None:
            # visible natural parameter (1 - beta) b_A + beta (b + W h)   (S&M 2008)
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
        h = _bernoulli(torch.sigmoid(self.hidden_logits(v)), generator)
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
        biases b_A give ``data``'s mean visible vector (None: b_A = b). It returns
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
            # log p*_k(v) - log p*_{k-1}(v), where (S&M 2008, with W_A = 0)
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
        return _bernoulli(torch.sigmoid(eta), generator)

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
    Under ``DistributedDataParallel`` (which broadcasts buffers from rank 0 at every forward
    call by default) each rank uses its own advanced chains for the step, and all ranks then
    continue from rank 0's.
    """
    rbm = getattr(model, "module", model)
    if rbm.chains.shape[0] == 0:
        raise ValueError("pcd_loss needs persistent chains: build the RBM with n_chains > 0.")
    rbm.chains.copy_(rbm.gibbs(rbm.chains, k, generator=generator))  # (M, D)
    return _contrast(model, v, rbm.chains)




# -- estimator ------------------------------------------------------------------------------
class RBM(TransformerMixin, _GenerativeEstimator):
    """A restricted Boltzmann machine as an estimator: ``fit`` on images or rows.

    Parameters
    ----------
    n_components : H, the number of binary hidden units.
    visible : ``"bernoulli"`` (data in [0, 1]: binary, or grey levels read as probabilities)
        or ``"gaussian"`` (any real rows; each feature is standardised, and the model has unit
        variance on that scale).
    cd_k : Gibbs sweeps per negative phase.
    persistent : persistent CD (Tieleman 2008) with ``batch_size`` fantasy particles started
        at random training rows, instead of CD-k restarted at the data.
    learning_rate, momentum, weight_decay : SGD with momentum; the L2 weight decay applies to
        the weights only, not the biases (Hinton 2010, secs. 9-10). The visible biases start
        at the training data's base rates, log p_i / (1 - p_i) (sec. 8).
    partition : how ``fit`` computes log Z for :meth:`score_samples`: ``"ais"`` (annealed
        importance sampling with ``n_betas`` intermediate distributions and ``n_ais_runs``
        runs from the training data's base-rate model), ``"exact"`` (enumeration, for
        n_components <= 20) or ``"auto"`` (exact up to 16 hidden units, else AIS).
    n_gibbs : Gibbs sweeps of :meth:`sample` from a random start.
    max_epochs, batch_size, checkpoint_dir, resume, verbose, device, dtype, random_state :
        training through :class:`bayesdl.train.Trainer` (see ``_GenerativeEstimator``).

    Attributes
    ----------
    module_ : the fitted :class:`BernoulliRBM` or :class:`GaussianBernoulliRBM`.
    base_rate_ : (D,) mean training row (on the standardised scale for Gaussian units); the
        base-rate model of AIS.
    mean_, scale_ : (D,) the standardisation of Gaussian visibles (None for Bernoulli ones).
    log_partition_, log_partition_stderr_ : log Z of ``module_`` and its standard error.
    """

    _parameter_constraints = {
        **_GenerativeEstimator._parameter_constraints,
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "visible": [StrOptions({"bernoulli", "gaussian"})],
        "cd_k": [Interval(Integral, 1, None, closed="left")],
        "persistent": ["boolean"],
        "momentum": [Interval(Real, 0, 1, closed="left")],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "partition": [StrOptions({"auto", "ais", "exact"})],
        "n_betas": [Interval(Integral, 3, None, closed="left")],
        "n_ais_runs": [Interval(Integral, 2, None, closed="left")],
        "n_gibbs": [Interval(Integral, 1, None, closed="left")],
    }

    def __init__(self, n_components: int = 64, *, visible: str = "bernoulli", cd_k: int = 1,
                 persistent: bool = False, learning_rate: float = 0.05, momentum: float = 0.5,
                 weight_decay: float = 1e-4, partition: str = "auto", n_betas: int = 3000,
                 n_ais_runs: int = 100, n_gibbs: int = 1000, max_epochs: int = 20,
                 batch_size: int = 20, checkpoint_dir=None, resume: bool = False,
                 verbose: bool = False, device="cpu", dtype: str = "float32",
                 random_state=None):
        self.n_components = n_components
        self.visible = visible
        self.cd_k = cd_k
        self.persistent = persistent
        self.learning_rate = learning_rate
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.partition = partition
        self.n_betas = n_betas
        self.n_ais_runs = n_ais_runs
        self.n_gibbs = n_gibbs
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.checkpoint_dir = checkpoint_dir
        self.resume = resume
        self.verbose = verbose
        self.device = device
        self.dtype = dtype
        self.random_state = random_state

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = [self.dtype]  # computes in self.dtype
        return tags

    # -- hooks of the generative base ----------------------------------------------------------
    def _support(self):
        return (0.0, 1.0) if self.visible == "bernoulli" else None

    def _build_module(self) -> _RBMModule:
        cls = BernoulliRBM if self.visible == "bernoulli" else GaussianBernoulliRBM
        return cls(self.n_features_in_, self.n_components,
                   self.batch_size if self.persistent else 0)

    # -- fitting -------------------------------------------------------------------------------
    def fit(self, X, y=None):
        """Train on images (N, H, W) / (N, C, H, W) or rows (N, D) by CD-k or PCD; then log Z."""
        self._validate_params()
        if self.partition == "exact" and self.n_components > MAX_EXACT_HIDDEN:
            raise ValueError(f"partition='exact' enumerates 2^n_components hidden states; "
                             f"n_components={self.n_components} > {MAX_EXACT_HIDDEN}. Use "
                             "partition='ais'.")
        x, _ = self._validate_data(X, reset=True)
        rows = x.reshape(x.shape[0], -1)  # (N, D)
        self.mean_ = self.scale_ = None
        if self.visible == "gaussian":
            mean, scale = rows.mean(0), rows.std(0)
            scale = torch.where(scale > 0, scale, torch.ones_like(scale))  # constant features
            self.mean_, self.scale_ = self._to_numpy(mean), self._to_numpy(scale)
            rows = (rows - mean) / scale
        self.base_rate_ = self._to_numpy(rows.mean(0))
        self.module_ = self._new_module()
        with torch.no_grad():
            # visible biases at the base rates, log p_i / (1 - p_i) (Hinton 2010, sec. 8)
            self.module_.visible_bias.copy_(self.module_._natural_from_mean(rows.mean(0)))
        if self.persistent:
            start = torch.randint(rows.shape[0], (self.batch_size,), device=rows.device,
                                  generator=self._torch_generator())
            self.module_.chains.copy_(rows[start])
        objective = pcd_loss if self.persistent else cd_loss
        m = self.module_

        def optimizer(params):  # weight decay on W only (Hinton 2010, sec. 10)
            return torch.optim.SGD(
                [{"params": [m.weight], "weight_decay": self.weight_decay},
                 {"params": [m.visible_bias, m.hidden_bias], "weight_decay": 0.0}],
                lr=self.learning_rate, momentum=self.momentum)

        self._train(lambda model, batch, step: objective(model, batch[0], self.cd_k), rows,
                    optimizer=optimizer)
        method = self.partition
        if method == "auto":
            method = "exact" if self.n_components <= _AUTO_EXACT_HIDDEN else "ais"
        log_z = self.log_partition(method)
        self.log_partition_, self.log_partition_stderr_ = log_z.value, log_z.stderr
        return self

    def log_partition(self, method: str = "ais", *, n_betas=None, n_runs=None,
                      random_state=None) -> LogPartition:
        """log Z of the fitted RBM (on the standardised scale for Gaussian visibles).

        ``"ais"`` starts from the training data's base-rate model; ``n_betas`` and ``n_runs``
        default to ``n_betas`` and ``n_ais_runs``; the generator is seeded by ``random_state``
        (default: the estimator's). ``"exact"`` enumerates the hidden states (H <= 20).
        """
        check_is_fitted(self)
        return self.module_.log_partition(
            method, data=self._to_torch(self.base_rate_)[None],
            n_betas=self.n_betas if n_betas is None else n_betas,
            n_runs=self.n_ais_runs if n_runs is None else n_runs,
            generator=self._torch_generator(random_state))

    # -- inference -----------------------------------------------------------------------------
    def _rows(self, X) -> torch.Tensor:
        """Validated X as (N, D) rows on the model's scale."""
        check_is_fitted(self)
        x, _ = self._validate_data(X, reset=False, min_samples=1)
        rows = x.reshape(x.shape[0], -1)
        if self.visible == "gaussian":
            rows = (rows - self._to_torch(self.mean_)) / self._to_torch(self.scale_)
        return rows

    def _as_data(self, rows: torch.Tensor) -> np.ndarray:
        """(n, D) rows on the model's scale -> numpy in the training data's shape and range."""
        if self.visible == "gaussian":
            rows = rows * self._to_torch(self.scale_) + self._to_torch(self.mean_)
        return self._as_output(rows.reshape(rows.shape[0], *self.data_shape_))

    @torch.no_grad()
    def transform(self, X) -> np.ndarray:
        """The hidden units' probabilities p(h_j = 1 | x) (N, n_components)."""
        return self._to_numpy(self.module_.p_h_given_v(self._rows(X)).mean)

    @torch.no_grad()
    def free_energy(self, X) -> np.ndarray:
        """F(x) (N,) on the model's scale (log p(x) = -F(x) - log Z)."""
        return self._to_numpy(self.module_.free_energy(self._rows(X)))

    @torch.no_grad()
    def gibbs(self, X, k: int = 1, random_state=None) -> np.ndarray:
        """One draw after ``k`` Gibbs sweeps from each row of X, in X's shape."""
        v = self.module_.gibbs(self._rows(X), k, generator=self._torch_generator(random_state))
        return self._as_data(v)

    @torch.no_grad()
    def sample(self, n: int, y=None, *, n_gibbs=None, mean: bool = True,
               random_state=None) -> np.ndarray:
        """``n`` samples from ``n_gibbs`` Gibbs sweeps of independent chains from a random start.

        With ``mean=True`` the last sweep returns E[v | h] (grey levels for Bernoulli units;
        the noise-free mean for Gaussian ones, Hinton 2010 sec. 13.2), else a draw of v.
        Returns numpy (n, *input shape) in the training data's range.
        """
        check_is_fitted(self)
        if y is not None:
            raise ValueError("the RBM is unconditional: call sample(n) without y.")
        if int(n) < 1:
            raise ValueError(f"n must be a positive number of samples, got {n}.")
        v = self.module_.sample(int(n), self.n_gibbs if n_gibbs is None else int(n_gibbs),
                                generator=self._torch_generator(random_state), mean=mean)
        return self._as_data(v)

    @torch.no_grad()
    def score_samples(self, X) -> np.ndarray:
        """log p(x) = -F(x) - log Z (N,), with log Z from ``fit`` (AIS or exact).

        A stochastic estimate when log Z came from AIS: its error is ``log_partition_stderr_``
        (the same for every row). Gaussian visibles include the standardisation's Jacobian,
        so the density is on the scale of X. Not the pseudo-likelihood: see
        :meth:`pseudo_likelihood`.
        """
        log_p = -self.module_.free_energy(self._rows(X)).double() - self.log_partition_
        if self.visible == "gaussian":
            log_p = log_p - float(np.log(self.scale_).sum())
        return self._to_numpy(log_p)

    def score(self, X, y=None) -> float:
        """The mean :meth:`score_samples` over the rows of X."""
        return float(np.mean(self.score_samples(X)))

    @torch.no_grad()
    def pseudo_likelihood(self, X, *, stochastic: bool = False, random_state=None) -> np.ndarray:
        """The log pseudo-likelihood of Bernoulli visibles (N,): NOT the log-likelihood.

        log PL(x) = sum_i log p(x_i | x_-i) = sum_i log sigmoid(F(x with bit i flipped) - F(x))
        (Besag 1975). With ``stochastic=True`` it is scikit-learn's ``BernoulliRBM.score_samples``:
        D log sigmoid(F(x~) - F(x)) with one bit per row flipped at the position
        ``check_random_state(random_state).randint(0, D, N)`` draws (an unbiased, noisy
        estimate of the sum; ``random_state`` defaults to the estimator's, as scikit-learn's
        does). Flipping means x_i -> 1 - x_i, as scikit-learn does for grey levels too.
        """
        if self.visible != "bernoulli":
            raise ValueError("the pseudo-likelihood flips binary units; it is defined for "
                             "visible='bernoulli' only. Use score_samples.")
        v = self._rows(X)  # (N, D)
        n, d = v.shape
        f = self.module_.free_energy(v)  # (N,)
        if stochastic:
            rng = check_random_state(self.random_state if random_state is None else random_state)
            flip = torch.as_tensor(rng.randint(0, d, n), device=v.device)  # (N,)
            v_ = v.clone()
            v_[torch.arange(n), flip] = 1 - v_[torch.arange(n), flip]
            return self._to_numpy(d * nn.functional.logsigmoid(self.module_.free_energy(v_) - f))
        total = torch.zeros_like(f)
        for i in range(d):
            v_ = v.clone()
            v_[:, i] = 1 - v_[:, i]
            total += nn.functional.logsigmoid(self.module_.free_energy(v_) - f)
        return self._to_numpy(total)


__all__ = ["RBM", "BernoulliRBM", "GaussianBernoulliRBM", "LogPartition", "ais_schedule",
           "cd_loss", "pcd_loss"]
