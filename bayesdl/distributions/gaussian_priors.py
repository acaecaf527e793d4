"""Joint conjugate priors over a Gaussian's mean and precision, as torch distributions.

- :class:`NormalGamma` -- :math:`p(\\mu, \\lambda) = N(\\mu | m, (\\kappa\\lambda)^{-1})\\,
  \\mathrm{Gam}(\\lambda | a, b)` (PRML eq. 2.154, with PRML's :math:`\\beta` written
  :math:`\\kappa`). A value is the pair ``[mu, lambda]`` on the last axis (event shape ``(2,)``).
- :class:`NormalWishart` -- :math:`p(\\mu, \\Lambda) = N(\\mu | m, (\\kappa\\Lambda)^{-1})\\,
  \\mathcal{W}(\\Lambda | W, \\nu)` (PRML eq. 2.157). A value packs the mean and the precision
  matrix side by side as a ``(D, D + 1)`` tensor: column 0 is :math:`\\mu`, columns 1.. are
  :math:`\\Lambda`; use :meth:`NormalWishart.pack` / :meth:`NormalWishart.unpack`.

Both have exact ``log_prob``, reparameterised ``rsample``, ``entropy``, their marginals
(Student-t for the mean, Gamma/Wishart for the precision) and closed-form KL divergences
registered with ``torch.distributions.kl`` (see :mod:`bayesdl.distributions.kl`).

Example::

    >>> import torch
    >>> from bayesdl.distributions import NormalGamma
    >>> ng = NormalGamma(torch.tensor(0.0, dtype=torch.float64), 2.0, 3.0, 4.0)
    >>> ng.marginal_precision().mean  # a / b
    tensor(0.7500, dtype=torch.float64)
"""

from __future__ import annotations

import math
import warnings

import torch
from torch.distributions import (Distribution, Gamma, MultivariateNormal, Normal, StudentT, Wishart,
                                 constraints)
from torch.distributions.utils import broadcast_all

from ._checks import check_positive_definite
from .predictive import MultivariateStudentT

__all__ = ["NormalGamma", "NormalWishart", "expected_log_det_wishart", "sample_wishart"]


def expected_log_det_wishart(df: torch.Tensor, scale_tril: torch.Tensor) -> torch.Tensor:
    r""":math:`E[\ln|\Lambda|]` for :math:`\Lambda \sim \mathcal{W}(W, \nu)`, ``W = L L^T``.

    PRML eq. (B.81): :math:`\sum_{i=1}^D \psi(\frac{\nu + 1 - i}{2}) + D \ln 2 + \ln|W|`.
    """
    d = scale_tril.shape[-1]
    i = torch.arange(1, d + 1, dtype=scale_tril.dtype, device=scale_tril.device)
    log_det_w = 2 * scale_tril.diagonal(dim1=-2, dim2=-1).log().sum(-1)
    return torch.digamma((df.unsqueeze(-1) + 1 - i) / 2).sum(-1) + d * math.log(2) + log_det_w


def sample_wishart(wishart: Wishart, sample_shape=torch.Size()) -> torch.Tensor:
    """``wishart.rsample`` without torch's spurious "Singular sample detected" warning.

    torch 2.x flags *valid* Bartlett samples as singular (it tests ``support.check`` where it
    means its negation) and redraws them once; the redrawn samples have the right distribution,
    so only the misleading warning is silenced here.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Singular sample detected")
        return wishart.rsample(sample_shape)


class NormalGamma(Distribution):
    r"""Normal-Gamma distribution over a Gaussian's mean and precision (PRML eq. 2.154).

    .. math:: p(\mu, \lambda) = N(\mu | m, (\kappa\lambda)^{-1})\,\mathrm{Gam}(\lambda | a, b)

    Args:
        loc: :math:`m`, the prior mean of :math:`\mu`.
        kappa: :math:`\kappa > 0`, how many observations the prior mean is worth.
        concentration: :math:`a > 0`, the Gamma shape of the precision.
        rate: :math:`b > 0`, the Gamma rate of the precision.
    """

    arg_constraints = {
        "loc": constraints.real,
        "kappa": constraints.positive,
        "concentration": constraints.positive,
        "rate": constraints.positive,
    }
    support = constraints.independent(constraints.cat([constraints.real, constraints.positive],
                                                      dim=-1, lengths=[1, 1]), 1)
    has_rsample = True

    def __init__(self, loc, kappa, concentration, rate, validate_args=None):
        self.loc, self.kappa, self.concentration, self.rate = broadcast_all(loc, kappa, concentration, rate)
        super().__init__(self.loc.shape, torch.Size((2,)), validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(NormalGamma, _instance)
        batch_shape = torch.Size(batch_shape)
        for name in ("loc", "kappa", "concentration", "rate"):
            setattr(new, name, getattr(self, name).expand(batch_shape))
        super(NormalGamma, new).__init__(batch_shape, self._event_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

    def marginal_precision(self) -> Gamma:
        """:math:`p(\\lambda) = \\mathrm{Gam}(a, b)`."""
        return Gamma(self.concentration, self.rate)

    def marginal_loc(self) -> StudentT:
        """:math:`p(\\mu) = \\mathrm{St}(\\mu | m, \\kappa a / b, 2a)` (PRML eq. 2.159)."""
        scale = (self.rate / (self.concentration * self.kappa)).sqrt()
        return StudentT(2 * self.concentration, self.loc, scale)

    @property
    def mean(self):
        # E[mu] = m,  E[lambda] = a / b
        return torch.stack([self.loc, self.concentration / self.rate], -1)

    @property
    def variance(self):
        # Var[mu] = b / (kappa (a - 1)) for a > 1,  Var[lambda] = a / b^2
        var_mu = torch.where(self.concentration > 1,
                             self.rate / (self.kappa * (self.concentration - 1)), math.inf)
        return torch.stack([var_mu, self.concentration / self.rate.pow(2)], -1)

    def rsample(self, sample_shape=torch.Size()):
        lam = self.marginal_precision().rsample(sample_shape)
        # mu | lambda ~ N(m, 1 / (kappa lambda))
        mu = Normal(self.loc, (self.kappa * lam).rsqrt()).rsample()
        return torch.stack([mu, lam], -1)

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        mu, lam = value[..., 0], value[..., 1]
        return (Normal(self.loc, (self.kappa * lam).rsqrt()).log_prob(mu)
                + self.marginal_precision().log_prob(lam))

    def entropy(self):
        # H = H[Gam(a, b)] + E_lambda H[N(m, 1/(kappa lambda))]
        #   = H[Gam] + 1/2 (1 + ln 2 pi) - 1/2 ln kappa - 1/2 E[ln lambda],  E[ln lambda] = psi(a) - ln b
        expected_log_lam = torch.digamma(self.concentration) - self.rate.log()
        return (self.marginal_precision().entropy() + 0.5 * (1 + math.log(2 * math.pi))
                - 0.5 * self.kappa.log() - 0.5 * expected_log_lam)


class _PackedMeanPrecision(constraints.Constraint):
    """``(D, D + 1)`` values whose columns 1.. hold a positive-definite matrix."""

    event_dim = 2

    def check(self, value):
        return constraints.positive_definite.check(value[..., 1:])


class NormalWishart(Distribution):
    r"""Normal-Wishart distribution over a Gaussian's mean and precision (PRML eq. 2.157).

    .. math:: p(\mu, \Lambda) = N(\mu | m, (\kappa\Lambda)^{-1})\,\mathcal{W}(\Lambda | W, \nu)

    with :math:`E[\Lambda] = \nu W` (PRML eq. B.80). Values are ``(D, D + 1)`` tensors packing
    ``[mu | Lambda]``; :meth:`pack` and :meth:`unpack` convert.

    Args:
        loc: :math:`m`, shape ``(*batch, D)``.
        kappa: :math:`\kappa > 0` (PRML's :math:`\beta`).
        df: :math:`\nu > D - 1`.
        scale_tril: lower Cholesky factor of the Wishart scale matrix :math:`W`; or give
            ``scale_matrix`` (= :math:`W`) instead.
    """

    arg_constraints = {
        "loc": constraints.real_vector,
        "kappa": constraints.positive,
        "df": constraints.positive,
        "scale_tril": constraints.lower_cholesky,
    }
    support = _PackedMeanPrecision()
    has_rsample = True

    def __init__(self, loc, kappa, df, scale_tril=None, scale_matrix=None, validate_args=None):
        if (scale_tril is None) == (scale_matrix is None):
            raise ValueError("Give exactly one of scale_tril or scale_matrix.")
        if scale_tril is None:
            scale_tril = check_positive_definite(scale_matrix, "scale_matrix")
        kappa = torch.as_tensor(kappa, dtype=loc.dtype, device=loc.device)
        df = torch.as_tensor(df, dtype=loc.dtype, device=loc.device)
        d = loc.shape[-1]
        batch_shape = torch.broadcast_shapes(loc.shape[:-1], kappa.shape, df.shape, scale_tril.shape[:-2])
        self.loc = loc.expand(batch_shape + (d,))
        self.kappa = kappa.expand(batch_shape)
        self.df = df.expand(batch_shape)
        self.scale_tril = scale_tril.expand(batch_shape + (d, d))
        super().__init__(batch_shape, torch.Size((d, d + 1)), validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(NormalWishart, _instance)
        batch_shape = torch.Size(batch_shape)
        d = self.loc.shape[-1]
        new.loc = self.loc.expand(batch_shape + (d,))
        new.kappa = self.kappa.expand(batch_shape)
        new.df = self.df.expand(batch_shape)
        new.scale_tril = self.scale_tril.expand(batch_shape + (d, d))
        super(NormalWishart, new).__init__(batch_shape, self._event_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

    @staticmethod
    def pack(mu: torch.Tensor, precision: torch.Tensor) -> torch.Tensor:
        """``(..., D)`` and ``(..., D, D)`` -> ``(..., D, D + 1)``."""
        return torch.cat([mu.unsqueeze(-1), precision], -1)

    @staticmethod
    def unpack(value: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(..., D, D + 1)`` -> ``(mu (..., D), precision (..., D, D))``."""
        return value[..., 0], value[..., 1:]

    @property
    def scale_matrix(self):
        return self.scale_tril @ self.scale_tril.mT

    def marginal_precision(self) -> Wishart:
        """:math:`p(\\Lambda) = \\mathcal{W}(W, \\nu)`."""
        return Wishart(self.df, scale_tril=self.scale_tril)

    def marginal_loc(self) -> MultivariateStudentT:
        """:math:`p(\\mu) = \\mathrm{St}(m, [\\kappa(\\nu - D + 1)]^{-1} W^{-1}, \\nu - D + 1)`.

        (Murphy 2007, "Conjugate Bayesian analysis of the Gaussian distribution", eq. 255.)
        """
        d = self.loc.shape[-1]
        dof = self.df - d + 1
        eye = torch.eye(d, dtype=self.loc.dtype, device=self.loc.device)
        w_inv = torch.cholesky_solve(eye, self.scale_tril)
        return MultivariateStudentT(dof, self.loc, scale_matrix=w_inv / (self.kappa * dof)[..., None, None])

    @property
    def mean(self):
        # E[mu] = m,  E[Lambda] = nu W  (PRML eq. B.80)
        return self.pack(self.loc, self.df[..., None, None] * self.scale_matrix)

    def rsample(self, sample_shape=torch.Size()):
        precision = sample_wishart(self.marginal_precision(), sample_shape)  # (*S, *batch, D, D)
        # mu | Lambda ~ N(m, (kappa Lambda)^{-1}): mu = m + L^{-T} z / sqrt(kappa), Lambda = L L^T
        chol = torch.linalg.cholesky(precision)
        z = torch.randn(precision.shape[:-1], dtype=precision.dtype, device=precision.device)
        offset = torch.linalg.solve_triangular(chol.mT, z.unsqueeze(-1), upper=True).squeeze(-1)
        return self.pack(self.loc + offset / self.kappa.sqrt().unsqueeze(-1), precision)

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        mu, precision = self.unpack(value)
        conditional = MultivariateNormal(self.loc, precision_matrix=self.kappa[..., None, None] * precision)
        return conditional.log_prob(mu) + self.marginal_precision().log_prob(precision)

    def entropy(self):
        # H = H[W(W, nu)] + E_Lambda H[N(m, (kappa Lambda)^{-1})]
        #   = H[W] + D/2 (1 + ln 2 pi) - D/2 ln kappa - 1/2 E[ln|Lambda|]   (E[ln|Lambda|]: PRML B.81)
        d = self.loc.shape[-1]
        return (self.marginal_precision().entropy() + d / 2 * (1 + math.log(2 * math.pi))
                - d / 2 * self.kappa.log() - 0.5 * expected_log_det_wishart(self.df, self.scale_tril))
