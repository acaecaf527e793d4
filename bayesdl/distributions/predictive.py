"""Compound (posterior-predictive) distributions that ``torch.distributions`` lacks.

- :class:`BetaBinomial` -- Binomial counts whose success probability is Beta distributed; the
  posterior predictive of the Beta-Binomial conjugate model.
- :class:`DirichletMultinomial` -- Multinomial counts with Dirichlet probabilities (Polya); the
  posterior predictive of the Dirichlet-Multinomial model.
- :class:`MultivariateStudentT` -- the multivariate Student-t (PRML eq. 2.162); the posterior
  predictive of the Normal-Wishart model and the marginal of its mean.

They follow torch's conventions (``batch_shape``/``event_shape``, ``log_prob``, ``sample``,
``expand``, ``mean``, ``variance``, ``entropy``), so they work with ``torch.distributions.kl``
and with :mod:`bayesdl.distributions.info`.

Example::

    >>> import torch
    >>> from bayesdl.distributions import BetaBinomial
    >>> d = BetaBinomial(torch.tensor(2.0), torch.tensor(3.0), total_count=10)
    >>> float(d.log_prob(torch.tensor(4.0)).exp())  # doctest: +ELLIPSIS
    0.1398...
"""

from __future__ import annotations

import math

import torch
from torch.distributions import Beta, Binomial, Chi2, Dirichlet, Distribution, Multinomial, constraints
from torch.distributions.utils import broadcast_all

from ._checks import check_positive_definite

__all__ = ["BetaBinomial", "DirichletMultinomial", "MultivariateStudentT"]


def _log_beta(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    # log B(a, b) = log Gamma(a) + log Gamma(b) - log Gamma(a + b)
    return torch.lgamma(a) + torch.lgamma(b) - torch.lgamma(a + b)


class BetaBinomial(Distribution):
    r"""Beta-Binomial: ``k | p ~ Binomial(n, p)``, ``p ~ Beta(concentration1, concentration0)``.

    .. math:: p(k) = \binom{n}{k} \frac{B(k + \alpha, n - k + \beta)}{B(\alpha, \beta)}

    Args:
        concentration1: :math:`\alpha` (pseudo-count of successes), positive.
        concentration0: :math:`\beta` (pseudo-count of failures), positive.
        total_count: number of trials :math:`n` (non-negative integer, broadcastable).
    """

    arg_constraints = {
        "concentration1": constraints.positive,
        "concentration0": constraints.positive,
        "total_count": constraints.nonnegative_integer,
    }
    has_enumerate_support = True

    def __init__(self, concentration1, concentration0, total_count=1, validate_args=None):
        self.concentration1, self.concentration0, self.total_count = broadcast_all(
            concentration1, concentration0, total_count
        )
        self.total_count = self.total_count.type_as(self.concentration1)
        super().__init__(self.concentration1.shape, validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(BetaBinomial, _instance)
        batch_shape = torch.Size(batch_shape)
        new.concentration1 = self.concentration1.expand(batch_shape)
        new.concentration0 = self.concentration0.expand(batch_shape)
        new.total_count = self.total_count.expand(batch_shape)
        super(BetaBinomial, new).__init__(batch_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

    @constraints.dependent_property(is_discrete=True, event_dim=0)
    def support(self):
        return constraints.integer_interval(0, self.total_count)

    @property
    def mean(self):
        # E[k] = n alpha / (alpha + beta)
        return self.total_count * self.concentration1 / (self.concentration1 + self.concentration0)

    @property
    def variance(self):
        # Var[k] = n a b (a + b + n) / ((a + b)^2 (a + b + 1))
        a, b, n = self.concentration1, self.concentration0, self.total_count
        s = a + b
        return n * a * b * (s + n) / (s.pow(2) * (s + 1))

    def sample(self, sample_shape=torch.Size()):
        with torch.no_grad():
            p = Beta(self.concentration1, self.concentration0).sample(sample_shape)
            return Binomial(self.total_count.expand_as(p), probs=p).sample()

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        a, b, n = self.concentration1, self.concentration0, self.total_count
        # log C(n, k) = log Gamma(n + 1) - log Gamma(k + 1) - log Gamma(n - k + 1)
        log_choose = torch.lgamma(n + 1) - torch.lgamma(value + 1) - torch.lgamma(n - value + 1)
        return log_choose + _log_beta(value + a, n - value + b) - _log_beta(a, b)

    def enumerate_support(self, expand=True):
        total = int(self.total_count.max())
        if not (self.total_count == total).all():
            raise NotImplementedError("Inhomogeneous total_count not supported by `enumerate_support`.")
        values = torch.arange(1 + total, dtype=self.concentration1.dtype, device=self.concentration1.device)
        values = values.view((-1,) + (1,) * len(self._batch_shape))
        return values.expand((-1,) + self._batch_shape) if expand else values

    def _support_grid(self) -> torch.Tensor:
        """0..max(n) along a new leading axis, broadcast over the batch; (max(n) + 1, *batch)."""
        total = int(self.total_count.max())
        values = torch.arange(1 + total, dtype=self.concentration1.dtype, device=self.concentration1.device)
        return values.view((-1,) + (1,) * len(self._batch_shape)).expand((-1,) + self._batch_shape)

    def _masked_log_prob(self, values: torch.Tensor) -> torch.Tensor:
        """log p(values) with -inf where a value exceeds its element's total_count."""
        inside = values <= self.total_count
        return torch.where(inside, self.log_prob(torch.minimum(values, self.total_count)), -math.inf)

    def entropy(self):
        # H = -sum_k p(k) log p(k), summed exactly over the finite support
        log_p = self._masked_log_prob(self._support_grid())
        return -(log_p.exp() * torch.nan_to_num(log_p, neginf=0.0)).sum(0)


class DirichletMultinomial(Distribution):
    r"""Dirichlet-Multinomial (multivariate Polya): ``x | p ~ Mult(n, p)``, ``p ~ Dir(alpha)``.

    .. math:: p(x) = \frac{n!\,\Gamma(\alpha_0)}{\Gamma(n + \alpha_0)}
              \prod_k \frac{\Gamma(x_k + \alpha_k)}{x_k!\,\Gamma(\alpha_k)},
              \quad \alpha_0 = \textstyle\sum_k \alpha_k

    Args:
        concentration: :math:`\alpha`, shape ``(*batch, K)``, positive.
        total_count: number of trials :math:`n` (a non-negative Python integer).
    """

    arg_constraints = {"concentration": constraints.independent(constraints.positive, 1)}

    def __init__(self, concentration, total_count: int = 1, validate_args=None):
        if int(total_count) != total_count or total_count < 0:
            raise ValueError(f"total_count must be a non-negative integer; got {total_count!r}.")
        if concentration.dim() < 1:
            raise ValueError("concentration must have at least one dimension (the K categories).")
        self.concentration = concentration
        self.total_count = int(total_count)
        super().__init__(concentration.shape[:-1], concentration.shape[-1:], validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(DirichletMultinomial, _instance)
        batch_shape = torch.Size(batch_shape)
        new.concentration = self.concentration.expand(batch_shape + self._event_shape)
        new.total_count = self.total_count
        super(DirichletMultinomial, new).__init__(batch_shape, self._event_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

    @constraints.dependent_property(is_discrete=True, event_dim=1)
    def support(self):
        return constraints.multinomial(self.total_count)

    @property
    def mean(self):
        # E[x] = n alpha / alpha_0
        return self.total_count * self.concentration / self.concentration.sum(-1, keepdim=True)

    @property
    def variance(self):
        # Var[x_k] = n p_k (1 - p_k) (n + alpha_0) / (1 + alpha_0),  p = alpha / alpha_0
        alpha0 = self.concentration.sum(-1, keepdim=True)
        p = self.concentration / alpha0
        return self.total_count * p * (1 - p) * (self.total_count + alpha0) / (1 + alpha0)

    def sample(self, sample_shape=torch.Size()):
        with torch.no_grad():
            p = Dirichlet(self.concentration).sample(sample_shape)
            return Multinomial(self.total_count, probs=p).sample()

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        alpha = self.concentration
        alpha0 = alpha.sum(-1)
        n = value.sum(-1)
        log_coef = torch.lgamma(n + 1) - torch.lgamma(value + 1).sum(-1)
        return (log_coef + torch.lgamma(alpha0) - torch.lgamma(n + alpha0)
                + (torch.lgamma(value + alpha) - torch.lgamma(alpha)).sum(-1))


class MultivariateStudentT(Distribution):
    r"""Multivariate Student-t with ``df`` degrees of freedom, location and scale matrix.

    .. math:: \mathrm{St}(x|\mu, \Sigma, \nu) = \frac{\Gamma(\frac{\nu + D}{2})}
              {\Gamma(\frac{\nu}{2}) (\nu\pi)^{D/2} |\Sigma|^{1/2}}
              \Big[1 + \frac{(x - \mu)^\top \Sigma^{-1} (x - \mu)}{\nu}\Big]^{-\frac{\nu + D}{2}}

    (PRML eq. 2.162 with precision :math:`\Lambda = \Sigma^{-1}`). It is a scale mixture of
    Gaussians, :math:`x = \mu + L z / \sqrt{u / \nu}`, ``z ~ N(0, I)``, ``u ~ chi^2(nu)``, which
    gives a reparameterised sampler. The covariance is :math:`\frac{\nu}{\nu - 2}\Sigma` for
    :math:`\nu > 2`.

    Args:
        df: degrees of freedom :math:`\nu > 0`.
        loc: :math:`\mu`, shape ``(*batch, D)``.
        scale_tril: lower Cholesky factor ``L`` of the scale matrix :math:`\Sigma = L L^\top`;
            or give ``scale_matrix`` instead.
    """

    arg_constraints = {
        "df": constraints.positive,
        "loc": constraints.real_vector,
        "scale_tril": constraints.lower_cholesky,
    }
    support = constraints.real_vector
    has_rsample = True

    def __init__(self, df, loc, scale_tril=None, scale_matrix=None, validate_args=None):
        if (scale_tril is None) == (scale_matrix is None):
            raise ValueError("Give exactly one of scale_tril or scale_matrix.")
        if loc.dim() < 1:
            raise ValueError("loc must be at least one-dimensional (the D coordinates).")
        if scale_tril is None:
            scale_tril = check_positive_definite(scale_matrix, "scale_matrix")
        df = torch.as_tensor(df, dtype=loc.dtype, device=loc.device)
        batch_shape = torch.broadcast_shapes(df.shape, loc.shape[:-1], scale_tril.shape[:-2])
        event_shape = loc.shape[-1:]
        self.df = df.expand(batch_shape)
        self.loc = loc.expand(batch_shape + event_shape)
        self.scale_tril = scale_tril.expand(batch_shape + event_shape + event_shape)
        super().__init__(batch_shape, event_shape, validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(MultivariateStudentT, _instance)
        batch_shape = torch.Size(batch_shape)
        new.df = self.df.expand(batch_shape)
        new.loc = self.loc.expand(batch_shape + self._event_shape)
        new.scale_tril = self.scale_tril.expand(batch_shape + self._event_shape + self._event_shape)
        super(MultivariateStudentT, new).__init__(batch_shape, self._event_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

    @property
    def scale_matrix(self):
        return self.scale_tril @ self.scale_tril.mT

    @property
    def mean(self):
        return torch.where(self.df.unsqueeze(-1) > 1, self.loc, math.nan)

    @property
    def mode(self):
        return self.loc

    @property
    def covariance_matrix(self):
        # Cov[x] = nu / (nu - 2) Sigma  (PRML eq. 2.164), infinite for 1 < nu <= 2
        nu = self.df[..., None, None]
        cov = self.scale_matrix * nu / (nu - 2)
        return torch.where(nu > 2, cov, math.inf)

    @property
    def variance(self):
        return self.covariance_matrix.diagonal(dim1=-2, dim2=-1)

    def rsample(self, sample_shape=torch.Size()):
        shape = self._extended_shape(sample_shape)  # (*S, *batch, D)
        z = torch.randn(shape, dtype=self.loc.dtype, device=self.loc.device)
        u = Chi2(self.df).rsample(sample_shape)  # (*S, *batch)
        # x = mu + L z sqrt(nu / u)
        return self.loc + (self.scale_tril @ z.unsqueeze(-1)).squeeze(-1) * (self.df / u).sqrt().unsqueeze(-1)

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        d = self._event_shape[0]
        nu = self.df
        diff = (value - self.loc).unsqueeze(-1)  # (..., D, 1)
        batch = torch.broadcast_shapes(diff.shape[:-2], self.scale_tril.shape[:-2])
        L = self.scale_tril.expand(batch + (d, d))
        diff = diff.expand(batch + (d, 1))
        # Mahalanobis distance M = ||L^{-1} (x - mu)||^2
        maha = torch.linalg.solve_triangular(L, diff, upper=False).squeeze(-1).pow(2).sum(-1)
        half_log_det = self.scale_tril.diagonal(dim1=-2, dim2=-1).log().sum(-1)
        # PRML eq. 2.162
        return (torch.lgamma((nu + d) / 2) - torch.lgamma(nu / 2) - d / 2 * torch.log(nu * math.pi)
                - half_log_det - (nu + d) / 2 * torch.log1p(maha / nu))

    def entropy(self):
        # H = log Gamma(nu/2) - log Gamma((nu+D)/2) + D/2 log(nu pi) + log|L|
        #     + (nu + D)/2 [psi((nu + D)/2) - psi(nu/2)]
        d = self._event_shape[0]
        nu = self.df
        half_log_det = self.scale_tril.diagonal(dim1=-2, dim2=-1).log().sum(-1)
        return (torch.lgamma(nu / 2) - torch.lgamma((nu + d) / 2) + d / 2 * torch.log(nu * math.pi)
                + half_log_det + (nu + d) / 2 * (torch.digamma((nu + d) / 2) - torch.digamma(nu / 2)))
