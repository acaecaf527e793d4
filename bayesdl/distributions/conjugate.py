"""Conjugate Bayesian updating: exact posteriors, posterior predictives and model evidence.

Each model holds the hyperparameters of its prior and of its current posterior:

===============================  ======================  ================================
model                            posterior (torch)       ``posterior_predictive()``
===============================  ======================  ================================
:class:`BetaBernoulliModel`      Beta                    Bernoulli
:class:`BetaBinomialModel`       Beta                    :class:`~.predictive.BetaBinomial`
:class:`DirichletCategoricalModel`  Dirichlet            Categorical
:class:`DirichletMultinomialModel`  Dirichlet            :class:`~.predictive.DirichletMultinomial`
:class:`GammaPoissonModel`       Gamma                   NegativeBinomial
:class:`NormalKnownVarianceModel`  Normal (the mean)     Normal
:class:`NormalGammaModel`        :class:`~.gaussian_priors.NormalGamma`    StudentT
:class:`NormalWishartModel`      :class:`~.gaussian_priors.NormalWishart`  :class:`~.predictive.MultivariateStudentT`
===============================  ======================  ================================

Common interface: ``prior`` and ``posterior`` (torch distributions), ``params`` (the posterior
hyperparameters by name), ``n_observations``, ``update(data)`` (a NEW model; the original is
unchanged, so ``m.update(x1).update(x2)`` equals ``m.update(concat(x1, x2))``),
``posterior_predictive()`` and ``log_marginal_likelihood(data)`` = :math:`\\ln p(D)` under the
current posterior (the evidence, for a fresh model). One-dimensional posteriors also have
``credible_interval(level)``.

Data have observations along the first axis: ``(N, *batch)`` for scalar models, ``(N, *batch,
K)`` or ``(N, *batch, D)`` for vector models; hyperparameters may carry a batch shape (e.g. one
Beta per arm of an A/B test). numpy arrays, lists and tensors are accepted; computation is in
torch, float64 unless the hyperparameters are float tensors of another dtype.

Example (PRML Figure 2.3)::

    >>> from bayesdl.distributions.conjugate import BetaBernoulliModel
    >>> model = BetaBernoulliModel(a=2.0, b=2.0).update([1])
    >>> model.params
    {'a': tensor(3., dtype=torch.float64), 'b': tensor(2., dtype=torch.float64)}
    >>> [round(float(v), 3) for v in model.credible_interval(0.95)]
    [0.194, 0.932]
"""

from __future__ import annotations

import copy
import math
from abc import ABC, abstractmethod

import numpy as np
import scipy.optimize
import scipy.stats
import torch
from torch.distributions import (Bernoulli, Beta, Categorical, Dirichlet, Distribution, Gamma,
                                 NegativeBinomial, Normal, StudentT)

from ._checks import (as_samples, as_tensor, check_binary, check_counts, check_event_size, check_positive,
                      check_positive_definite)
from .gaussian_priors import NormalGamma, NormalWishart
from .predictive import BetaBinomial, DirichletMultinomial, MultivariateStudentT

__all__ = [
    "BetaBernoulliModel",
    "BetaBinomialModel",
    "ConjugateModel",
    "DirichletCategoricalModel",
    "DirichletMultinomialModel",
    "GammaPoissonModel",
    "NormalGammaModel",
    "NormalKnownVarianceModel",
    "NormalWishartModel",
    "credible_interval",
]


def credible_interval(distribution: Distribution, level: float = 0.95,
                      kind: str = "equal_tailed") -> tuple[torch.Tensor, torch.Tensor]:
    """A ``level`` credible interval ``(lower, upper)`` of a 1-D distribution.

    ``kind="equal_tailed"`` cuts ``(1 - level) / 2`` from each tail; ``kind="hpd"`` gives the
    highest-posterior-density (shortest) interval, which for a skewed posterior (few successes
    in a Beta, a Gamma near zero) differs from the equal-tailed one. Supports torch ``Beta``,
    ``Gamma``, ``Normal`` and ``StudentT`` (the 1-D posteriors and marginals produced by the
    conjugate models), all unimodal; quantiles come from scipy.
    """
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), e.g. 0.95; got {level}.")
    if kind not in ("equal_tailed", "hpd"):
        raise ValueError(f"kind must be 'equal_tailed' or 'hpd'; got {kind!r}.")
    d = distribution
    if isinstance(d, Beta):
        frozen = scipy.stats.beta(_np(d.concentration1), _np(d.concentration0))
    elif isinstance(d, Gamma):
        frozen = scipy.stats.gamma(_np(d.concentration), scale=1 / _np(d.rate))
    elif isinstance(d, Normal):
        frozen = scipy.stats.norm(_np(d.loc), _np(d.scale))
    elif isinstance(d, StudentT):
        frozen = scipy.stats.t(_np(d.df), _np(d.loc), _np(d.scale))
    else:
        raise ValueError(f"credible_interval supports Beta, Gamma, Normal and StudentT; got "
                         f"{type(d).__name__}. For a multivariate posterior use its marginals.")
    if kind == "equal_tailed":
        tail = np.full(d.batch_shape, (1 - level) / 2)
    else:
        tail = _hpd_lower_tail(frozen, level, d.batch_shape)
    like = d.mean
    return (torch.as_tensor(frozen.ppf(tail), dtype=like.dtype, device=like.device),
            torch.as_tensor(frozen.ppf(tail + level), dtype=like.dtype, device=like.device))


def _hpd_lower_tail(frozen, level: float, batch_shape) -> np.ndarray:
    """Lower-tail mass t of the shortest interval [F^{-1}(t), F^{-1}(t + level)], per batch element.

    For a unimodal density the width is convex in t, so a bounded scalar minimisation finds it.
    """
    args = [np.broadcast_to(a, batch_shape) for a in frozen.args]
    kwds = {k: np.broadcast_to(v, batch_shape) for k, v in frozen.kwds.items()}
    tails = np.empty(batch_shape)
    for idx in np.ndindex(*batch_shape):
        one = frozen.dist(*(a[idx] for a in args), **{k: v[idx] for k, v in kwds.items()})
        def width(t):
            return one.ppf(t + level) - one.ppf(t)

        res = scipy.optimize.minimize_scalar(width, bounds=(0, 1 - level), method="bounded", options={"xatol": 1e-12})
        # a monotone density (e.g. Beta(1, b)) has its shortest interval at an end point
        tails[idx] = min((0.0, res.x, 1 - level), key=width)
    return tails


def _np(t: torch.Tensor):
    return t.detach().cpu().numpy()


class ConjugateModel(ABC):
    """A prior conjugate to a likelihood; subclasses define the family-specific pieces.

    Subclasses implement ``_check_data(x) -> tensor``, ``_posterior_params(params, x)``,
    ``_log_normalizer(params)`` (log of the prior's normalising constant), ``_log_base_measure(x)``
    (the data terms of the likelihood that do not involve the parameters, summed over N;
    broadcastable to the batch shape),
    ``_distribution(params)`` and ``posterior_predictive()``. Then, for any conjugate
    exponential family,

    .. math:: \\ln p(D) = \\ln Z(\\text{posterior}) - \\ln Z(\\text{prior}) + \\sum_n \\ln h(x_n).
    """

    _event_dims = 0  # trailing event dimensions of one observation

    def __init__(self, params: dict[str, torch.Tensor]):
        self.prior_params = params
        self.params = params
        self.n_observations = 0

    # -- public interface -------------------------------------------------------------------
    @property
    def prior(self) -> Distribution:
        """The prior as a torch distribution."""
        return self._distribution(self.prior_params)

    @property
    def posterior(self) -> Distribution:
        """The current posterior as a torch distribution (the prior before any update)."""
        return self._distribution(self.params)

    def update(self, data) -> "ConjugateModel":
        """A new model whose posterior has also seen ``data`` (observations along axis 0)."""
        x = self._prepare(data)
        new = copy.copy(self)
        new.params = self._posterior_params(self.params, x)
        new.n_observations = self.n_observations + x.shape[0]
        return new

    def log_marginal_likelihood(self, data) -> torch.Tensor:
        """:math:`\\ln p(D)` with the parameters integrated over the current posterior."""
        x = self._prepare(data)
        posterior = self._posterior_params(self.params, x)
        return self._log_normalizer(posterior) - self._log_normalizer(self.params) + self._log_base_measure(x)

    @abstractmethod
    def posterior_predictive(self) -> Distribution:
        """The distribution of a new observation given the data seen so far."""

    # -- family-specific pieces ---------------------------------------------------------------
    @abstractmethod
    def _posterior_params(self, params: dict, x: torch.Tensor) -> dict:
        """Hyperparameters after seeing ``x`` (observations along axis 0), starting from ``params``."""

    @abstractmethod
    def _log_normalizer(self, params: dict) -> torch.Tensor:
        """ln Z of the prior/posterior with hyperparameters ``params``."""

    @abstractmethod
    def _log_base_measure(self, x: torch.Tensor) -> torch.Tensor:
        """sum_n ln h(x_n): the likelihood's factors free of the parameters."""

    @abstractmethod
    def _distribution(self, params: dict) -> Distribution:
        """The torch distribution with hyperparameters ``params``."""

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v.tolist() if v.numel() <= 4 else tuple(v.shape)}" for k, v in self.params.items())
        return f"{type(self).__name__}({params}; n_observations={self.n_observations})"

    # -- helpers ----------------------------------------------------------------------------
    @property
    def _like(self) -> torch.Tensor:
        return next(iter(self.params.values()))

    @property
    def batch_shape(self) -> torch.Size:
        """Batch shape of the prior (data with more batch axes broadcast the posterior to them)."""
        return self.prior.batch_shape

    def _prepare(self, data) -> torch.Tensor:
        x = as_samples(data, "data", event_dim=self._event_dims).to(self._like)
        expected = self.batch_shape + self._data_event_shape()
        try:
            torch.broadcast_shapes(x.shape[1:], expected)
        except RuntimeError:
            raise ValueError(f"data of shape {tuple(x.shape)} does not fit this model: one observation "
                             f"must broadcast to {tuple(expected)} (batch shape + event shape); pass data "
                             f"of shape (N, {', '.join(map(str, expected))}).") from None
        return self._check_data(x)

    def _data_event_shape(self) -> torch.Size:
        """Shape of one observation (without batch): () for scalar data."""
        return torch.Size()

    def _check_data(self, x: torch.Tensor) -> torch.Tensor:
        return x


class _OneDimensional:
    """Mixin for models whose posterior is a one-dimensional distribution."""

    def credible_interval(self, level: float = 0.95, kind: str = "equal_tailed") -> tuple[torch.Tensor, torch.Tensor]:
        """``level`` credible interval of the posterior, ``(lower, upper)``; ``kind`` is
        ``"equal_tailed"`` or ``"hpd"`` (see :func:`credible_interval`)."""
        return credible_interval(self.posterior, level, kind)


def _hyper(value, name: str, like=None) -> torch.Tensor:
    t = as_tensor(value, name) if like is None else as_tensor(value, name).to(like)
    return check_positive(t, name)


class BetaBinomialModel(_OneDimensional, ConjugateModel):
    """Beta prior on the success probability of Binomial counts out of a known ``total_count``.

    Each observation is a number of successes k out of ``total_count`` = n trials. Posterior
    ``Beta(a + sum k, b + sum (n - k))`` (PRML eq. 2.18); predictive Beta-Binomial.

    Args:
        a, b: Beta prior pseudo-counts of successes and failures (positive; broadcastable
            batch, e.g. one per arm of an A/B test).
        total_count: trials per observation (non-negative integer; broadcastable).
    """

    def __init__(self, a=1.0, b=1.0, total_count=1):
        a = _hyper(a, "a")
        b = _hyper(b, "b", a)
        n = check_counts(as_tensor(total_count, "total_count").to(a), "total_count")
        a, b, self.total_count = torch.broadcast_tensors(a, b, n)
        super().__init__({"a": a, "b": b})

    def _check_data(self, x):
        return check_counts(x, "data (successes)", upper=self.total_count)

    def _posterior_params(self, p, x):
        successes = x.sum(0)
        failures = (self.total_count - x).sum(0)
        return {"a": p["a"] + successes, "b": p["b"] + failures}

    def _log_normalizer(self, p):
        # Z = B(a, b)  (PRML eq. 2.13)
        return torch.lgamma(p["a"]) + torch.lgamma(p["b"]) - torch.lgamma(p["a"] + p["b"])

    def _log_base_measure(self, x):
        n = self.total_count
        # sum_n ln C(n, k_n)
        log_choose = torch.lgamma(n + 1) - torch.lgamma(x + 1) - torch.lgamma(n - x + 1)
        return log_choose.sum(0)

    def _distribution(self, p):
        return Beta(p["a"], p["b"])

    def posterior_predictive(self) -> BetaBinomial:
        return BetaBinomial(self.params["a"], self.params["b"], self.total_count)


class BetaBernoulliModel(BetaBinomialModel):
    """Beta prior on the success probability of Bernoulli (0/1) outcomes (PRML section 2.1.1).

    The Beta-Binomial model with one trial per observation. Posterior ``Beta(a + m, b + l)``
    with m ones and l zeros (PRML eq. 2.18); predictive ``Bernoulli(a_N / (a_N + b_N))``
    (PRML eq. 2.20).

    Args:
        a, b: Beta prior pseudo-counts of ones and zeros (positive; broadcastable batch).
    """

    def __init__(self, a=1.0, b=1.0):
        super().__init__(a, b, total_count=1)

    def _check_data(self, x):
        return check_binary(x, "data")

    def posterior_predictive(self) -> Bernoulli:
        # p(x = 1 | D) = a_N / (a_N + b_N)  (PRML eq. 2.20)
        return Bernoulli(probs=self.params["a"] / (self.params["a"] + self.params["b"]))


class DirichletCategoricalModel(ConjugateModel):
    """Dirichlet prior on the probabilities of a K-way categorical variable (PRML section 2.2.1).

    Observations are integer labels 0..K-1. Posterior ``Dir(alpha + m)`` with counts ``m``
    (PRML eq. 2.41); predictive ``Categorical(alpha_N / sum alpha_N)``.

    Args:
        alpha: Dirichlet concentration, shape ``(*batch, K)``, positive.
    """

    def __init__(self, alpha):
        alpha = _hyper(alpha, "alpha")
        if alpha.dim() < 1 or alpha.shape[-1] < 2:
            raise ValueError(f"alpha must be a vector of K >= 2 concentrations; got shape {tuple(alpha.shape)}.")
        super().__init__({"alpha": alpha})

    @property
    def num_categories(self) -> int:
        return self.params["alpha"].shape[-1]

    def _check_data(self, x):
        return check_counts(x, f"data (labels 0..{self.num_categories - 1})", upper=self.num_categories - 1)

    def _counts(self, x):
        # m_k = sum_n [x_n = k]  (PRML eq. 2.33);  (*batch, K)
        return torch.nn.functional.one_hot(x.long(), self.num_categories).to(x.dtype).sum(0)

    def _posterior_params(self, p, x):
        return {"alpha": p["alpha"] + self._counts(x)}

    def _log_normalizer(self, p):
        # Z = prod_k Gamma(alpha_k) / Gamma(alpha_0)  (PRML eq. 2.38)
        alpha = p["alpha"]
        return torch.lgamma(alpha).sum(-1) - torch.lgamma(alpha.sum(-1))

    def _log_base_measure(self, x):
        return x.new_zeros(())

    def _distribution(self, p):
        return Dirichlet(p["alpha"])

    def posterior_predictive(self) -> Categorical:
        alpha = self.params["alpha"]
        return Categorical(probs=alpha / alpha.sum(-1, keepdim=True))


class DirichletMultinomialModel(DirichletCategoricalModel):
    """Dirichlet prior on Multinomial probabilities; observations are count vectors.

    Each observation is a length-K count vector summing to ``total_count``. Posterior
    ``Dir(alpha + sum_n x_n)`` (PRML eq. 2.41); predictive Dirichlet-Multinomial.

    Args:
        alpha: Dirichlet concentration, shape ``(*batch, K)``.
        total_count: trials per observation (non-negative integer).
    """

    _event_dims = 1

    def __init__(self, alpha, total_count: int = 1):
        super().__init__(alpha)
        if int(total_count) != total_count or total_count < 0:
            raise ValueError(f"total_count must be a non-negative integer; got {total_count!r}.")
        self.total_count = int(total_count)

    def _data_event_shape(self):
        return torch.Size((self.num_categories,))

    def _check_data(self, x):
        check_event_size(x, self.num_categories, "data", "categories")
        check_counts(x, "data (counts)")
        if (x.sum(-1) != self.total_count).any():
            raise ValueError(f"every count vector must sum to total_count={self.total_count}; found row "
                             f"sums from {x.sum(-1).min().item():g} to {x.sum(-1).max().item():g}.")
        return x

    def _counts(self, x):
        return x.sum(0)

    def _log_base_measure(self, x):
        # sum_n ln( n! / prod_k x_nk! )
        log_coef = torch.lgamma(x.sum(-1) + 1) - torch.lgamma(x + 1).sum(-1)
        return log_coef.sum(0)

    def posterior_predictive(self) -> DirichletMultinomial:
        return DirichletMultinomial(self.params["alpha"], self.total_count)


class GammaPoissonModel(_OneDimensional, ConjugateModel):
    """Gamma prior on a Poisson rate (shape ``a``, rate ``b``).

    Posterior ``Gam(a + sum x, b + N)``; predictive negative binomial
    ``NB(k | a_N, p = 1 / (b_N + 1))`` (torch's ``NegativeBinomial(total_count=a_N, probs=p)``).

    Args:
        a: Gamma shape (positive). b: Gamma rate (positive).
    """

    def __init__(self, a=1.0, b=1.0):
        a = _hyper(a, "a")
        b = _hyper(b, "b", a)
        super().__init__(dict(zip(("a", "b"), torch.broadcast_tensors(a, b))))

    def _check_data(self, x):
        return check_counts(x, "data (Poisson counts)")

    def _posterior_params(self, p, x):
        return {"a": p["a"] + x.sum(0), "b": p["b"] + x.shape[0]}

    def _log_normalizer(self, p):
        # Z = Gamma(a) / b^a  (PRML eq. 2.146)
        return torch.lgamma(p["a"]) - p["a"] * p["b"].log()

    def _log_base_measure(self, x):
        # Poisson: h(x) = 1 / x!
        return -torch.lgamma(x + 1).sum(0)

    def _distribution(self, p):
        return Gamma(p["a"], p["b"])

    def posterior_predictive(self) -> NegativeBinomial:
        return NegativeBinomial(total_count=self.params["a"], probs=1 / (self.params["b"] + 1))


class NormalKnownVarianceModel(_OneDimensional, ConjugateModel):
    """Normal prior ``N(mu | mu0, sigma0^2)`` on the mean of ``N(x | mu, sigma^2)`` with known sigma.

    Posterior (PRML eqs. 2.141-2.142): :math:`1/\\sigma_N^2 = 1/\\sigma_0^2 + N/\\sigma^2`,
    :math:`\\mu_N = \\sigma_N^2(\\mu_0/\\sigma_0^2 + \\sum_n x_n/\\sigma^2)`; predictive
    ``N(mu_N, sigma_N^2 + sigma^2)``.

    Args:
        mu0, sigma0: prior mean and standard deviation of the unknown mean.
        sigma: the known observation standard deviation.
    """

    def __init__(self, mu0=0.0, sigma0=1.0, sigma=1.0):
        mu0 = as_tensor(mu0, "mu0")
        mu0, sigma0, self.sigma = torch.broadcast_tensors(mu0, _hyper(sigma0, "sigma0", mu0), _hyper(sigma, "sigma", mu0))
        super().__init__({"mu": mu0, "sigma": sigma0})

    def _posterior_params(self, p, x):
        noise_var = self.sigma.pow(2)
        # 1/sigma_N^2 = 1/sigma_0^2 + N/sigma^2  (PRML eq. 2.142)
        var_n = 1 / (1 / p["sigma"].pow(2) + x.shape[0] / noise_var)
        # mu_N = sigma_N^2 (mu_0/sigma_0^2 + sum x / sigma^2)  (PRML eq. 2.141 rearranged)
        mu_n = var_n * (p["mu"] / p["sigma"].pow(2) + x.sum(0) / noise_var)
        return {"mu": mu_n, "sigma": var_n.sqrt()}

    def _log_normalizer(self, p):
        # N(mu|m, s^2) = exp(m mu / s^2 - mu^2 / (2 s^2)) / Z,  ln Z = 1/2 ln(2 pi s^2) + m^2 / (2 s^2)
        var = p["sigma"].pow(2)
        return 0.5 * torch.log(2 * math.pi * var) + p["mu"].pow(2) / (2 * var)

    def _log_base_measure(self, x):
        # h(x) = N(x | 0, sigma^2), the likelihood's parameter-free factor
        return Normal(torch.zeros_like(self.sigma), self.sigma).log_prob(x).sum(0)

    def _distribution(self, p):
        return Normal(p["mu"], p["sigma"])

    def posterior_predictive(self) -> Normal:
        # p(x|D) = N(x | mu_N, sigma_N^2 + sigma^2)  (PRML eq. 2.115 with 2.141-2.142)
        return Normal(self.params["mu"], (self.params["sigma"].pow(2) + self.sigma.pow(2)).sqrt())


class NormalGammaModel(ConjugateModel):
    """Normal-Gamma prior on the unknown mean and precision of a Gaussian (PRML eq. 2.154).

    Posterior (Murphy 2007, eqs. 86-89): :math:`\\kappa_N = \\kappa_0 + N`,
    :math:`\\mu_N = (\\kappa_0\\mu_0 + N\\bar x)/\\kappa_N`, :math:`a_N = a_0 + N/2`,
    :math:`b_N = b_0 + \\frac12\\sum_n (x_n - \\bar x)^2 + \\frac{\\kappa_0 N(\\bar x - \\mu_0)^2}{2\\kappa_N}`;
    predictive Student-t with ``2 a_N`` degrees of freedom, location ``mu_N`` and scale
    :math:`\\sqrt{b_N(\\kappa_N + 1)/(a_N\\kappa_N)}`.

    Args:
        mu0: prior mean. kappa0: prior pseudo-observations for the mean (PRML's beta).
        a0, b0: Gamma shape and rate of the precision.
    """

    def __init__(self, mu0=0.0, kappa0=1.0, a0=1.0, b0=1.0):
        mu0 = as_tensor(mu0, "mu0")
        values = [mu0, _hyper(kappa0, "kappa0", mu0), _hyper(a0, "a0", mu0), _hyper(b0, "b0", mu0)]
        super().__init__(dict(zip(("mu", "kappa", "a", "b"), torch.broadcast_tensors(*values))))

    def _posterior_params(self, p, x):
        n = x.shape[0]
        xbar = x.mean(0)
        kappa_n = p["kappa"] + n
        scatter = (x - xbar).pow(2).sum(0)
        return {
            "mu": (p["kappa"] * p["mu"] + n * xbar) / kappa_n,
            "kappa": kappa_n,
            "a": p["a"] + n / 2,
            "b": p["b"] + 0.5 * scatter + p["kappa"] * n * (xbar - p["mu"]).pow(2) / (2 * kappa_n),
        }

    def _log_normalizer(self, p):
        # Z = Gamma(a) b^{-a} (2 pi / kappa)^{1/2}
        return torch.lgamma(p["a"]) - p["a"] * p["b"].log() + 0.5 * torch.log(2 * math.pi / p["kappa"])

    def _log_base_measure(self, x):
        # prod_n N(x_n | mu, 1/lambda) = (2 pi)^{-N/2} * (terms absorbed into the posterior)
        return x.new_tensor(-0.5 * x.shape[0] * math.log(2 * math.pi))

    def _distribution(self, p):
        return NormalGamma(p["mu"], p["kappa"], p["a"], p["b"])

    def posterior_predictive(self) -> StudentT:
        p = self.params
        # St(x | mu_N, a_N kappa_N / (b_N (kappa_N + 1)), 2 a_N)  (Murphy 2007, eq. 100)
        scale = (p["b"] * (p["kappa"] + 1) / (p["a"] * p["kappa"])).sqrt()
        return StudentT(2 * p["a"], p["mu"], scale)


class NormalWishartModel(ConjugateModel):
    """Normal-Wishart prior on the mean and precision matrix of a D-variate Gaussian (PRML eq. 2.157).

    :math:`p(\\mu, \\Lambda) = N(\\mu|\\mu_0, (\\kappa_0\\Lambda)^{-1})\\,\\mathcal W(\\Lambda|W_0, \\nu_0)`.
    Posterior (PRML eqs. 10.60-10.63 with one component; Murphy 2007 eqs. 244-248):
    :math:`\\kappa_N = \\kappa_0 + N`, :math:`\\nu_N = \\nu_0 + N`,
    :math:`\\mu_N = (\\kappa_0\\mu_0 + N\\bar x)/\\kappa_N`,
    :math:`W_N^{-1} = W_0^{-1} + S + \\frac{\\kappa_0 N}{\\kappa_N}(\\bar x - \\mu_0)(\\bar x - \\mu_0)^\\top`
    with scatter :math:`S = \\sum_n (x_n - \\bar x)(x_n - \\bar x)^\\top`. Predictive multivariate
    Student-t with :math:`\\nu_N - D + 1` degrees of freedom and scale
    :math:`\\frac{\\kappa_N + 1}{\\kappa_N(\\nu_N - D + 1)} W_N^{-1}` (PRML eqs. 10.81-10.82).

    Args:
        mu0: prior mean, shape ``(D,)``.
        kappa0: pseudo-observations for the mean (PRML's beta_0), positive.
        nu0: Wishart degrees of freedom, ``> D - 1`` (default D).
        W0: Wishart scale matrix ``(D, D)``, symmetric positive definite (default identity);
            :math:`E[\\Lambda] = \\nu_0 W_0`.
    """

    _event_dims = 1

    def __init__(self, mu0, kappa0=1.0, nu0=None, W0=None):
        mu0 = as_tensor(mu0, "mu0")
        if mu0.dim() != 1:
            raise ValueError(f"mu0 must be a vector of shape (D,); got shape {tuple(mu0.shape)}.")
        d = mu0.shape[0]
        W0 = torch.eye(d, dtype=mu0.dtype, device=mu0.device) if W0 is None else as_tensor(W0, "W0").to(mu0)
        if W0.shape != (d, d):
            raise ValueError(f"W0 must have shape (D, D) = ({d}, {d}) to match mu0; got {tuple(W0.shape)}.")
        check_positive_definite(W0, "W0")
        nu0 = as_tensor(float(d) if nu0 is None else nu0, "nu0").to(mu0)
        if not (nu0 > d - 1).all():
            raise ValueError(f"nu0 must exceed D - 1 = {d - 1} for a proper Wishart prior; got {nu0.item():g}.")
        super().__init__({"mu": mu0, "kappa": _hyper(kappa0, "kappa0", mu0), "nu": nu0, "W": W0})

    @property
    def batch_shape(self):
        return torch.Size()

    def _data_event_shape(self):
        return self.params["mu"].shape

    def _check_data(self, x):
        if x.dim() != 2:
            raise ValueError(f"data must have shape (N, D); got {tuple(x.shape)}.")
        return check_event_size(x, self.params["mu"].shape[0], "data", "features")

    def _posterior_params(self, p, x):
        n = x.shape[0]
        xbar = x.mean(0)  # (D,)
        centred = x - xbar  # (N, D)
        kappa_n = p["kappa"] + n
        diff = (xbar - p["mu"]).unsqueeze(-1)  # (D, 1)
        # W_N^{-1} = W_0^{-1} + S + kappa_0 N / kappa_N (xbar - mu_0)(xbar - mu_0)^T
        w_inv = (_spd_inverse(p["W"]) + centred.mT @ centred + p["kappa"] * n / kappa_n * (diff @ diff.mT))
        return {"mu": (p["kappa"] * p["mu"] + n * xbar) / kappa_n, "kappa": kappa_n,
                "nu": p["nu"] + n, "W": _spd_inverse(w_inv)}

    def _log_normalizer(self, p):
        # Z = (2 pi / kappa)^{D/2} 2^{nu D / 2} |W|^{nu / 2} Gamma_D(nu / 2)  (PRML eq. B.79)
        d = p["mu"].shape[-1]
        log_det_w = torch.linalg.slogdet(p["W"])[1]
        return (d / 2 * torch.log(2 * math.pi / p["kappa"]) + p["nu"] * d / 2 * math.log(2)
                + p["nu"] / 2 * log_det_w + torch.mvlgamma(p["nu"] / 2, d))

    def _log_base_measure(self, x):
        return x.new_tensor(-0.5 * x.numel() * math.log(2 * math.pi))

    def _distribution(self, p):
        return NormalWishart(p["mu"], p["kappa"], p["nu"], scale_matrix=p["W"])

    def posterior_predictive(self) -> MultivariateStudentT:
        p = self.params
        d = p["mu"].shape[-1]
        dof = p["nu"] - d + 1
        # St(x | mu_N, L, nu_N + 1 - D), L^{-1} = (1 + kappa_N) / (kappa_N (nu_N + 1 - D)) W_N^{-1}  (PRML 10.81-10.82)
        scale = (p["kappa"] + 1) / (p["kappa"] * dof) * _spd_inverse(p["W"])
        return MultivariateStudentT(dof, p["mu"], scale_matrix=scale)


def _spd_inverse(matrix: torch.Tensor) -> torch.Tensor:
    """Inverse of a symmetric positive-definite matrix through its Cholesky factor."""
    eye = torch.eye(matrix.shape[-1], dtype=matrix.dtype, device=matrix.device)
    inv = torch.cholesky_solve(eye, torch.linalg.cholesky(matrix))
    return (inv + inv.mT) / 2
