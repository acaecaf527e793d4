"""Probability distributions: maximum likelihood, conjugate updating and information theory.

Built on ``torch.distributions``; this package adds the Bayesian layer and the pieces torch
lacks.

- :func:`fit_mle` -- maximum-likelihood fits of ten standard families (:mod:`.mle`).
- :mod:`.conjugate` -- conjugate prior/likelihood models with exact posteriors, posterior
  predictives, log marginal likelihoods and credible intervals.
- :mod:`.info` -- entropy, cross-entropy, KL and JS divergences, mutual information.
- New torch distributions: :class:`BetaBinomial`, :class:`DirichletMultinomial`,
  :class:`MultivariateStudentT`, :class:`NormalGamma`, :class:`NormalWishart`; closed-form KL
  divergences for Wishart, Normal-Gamma, Normal-Wishart and Beta-Binomial pairs are registered
  with ``torch.distributions.kl`` on import (:mod:`.kl`).
- :func:`compare_beta_arms` -- Bayesian A/B testing on Beta posteriors (:mod:`.ab_testing`).

Usage::

    import numpy as np
    from bayesdl.distributions import fit_mle, info
    from bayesdl.distributions.conjugate import NormalGammaModel

    x = np.random.default_rng(0).normal(2.0, 0.5, size=200)
    fit_mle("normal", x)                          # torch Normal(loc=x.mean(), scale=x.std())
    model = NormalGammaModel(mu0=0.0, kappa0=1.0, a0=1.0, b0=1.0).update(x)
    model.posterior                               # NormalGamma over (mean, precision)
    model.posterior_predictive()                  # torch StudentT
    NormalGammaModel().log_marginal_likelihood(x)  # log evidence ln p(x)
    model.log_marginal_likelihood(x_new)          # ln p(x_new | x) for further data
    info.kl_divergence(model.posterior, model.prior)  # closed form, registered here
"""

from . import conjugate, info, kl
from .ab_testing import compare_beta_arms
from .gaussian_priors import NormalGamma, NormalWishart, expected_log_det_wishart, sample_wishart
from .mle import MLE_FAMILIES, fit_mle
from .predictive import BetaBinomial, DirichletMultinomial, MultivariateStudentT

__all__ = [
    "BetaBinomial",
    "DirichletMultinomial",
    "MLE_FAMILIES",
    "MultivariateStudentT",
    "NormalGamma",
    "NormalWishart",
    "compare_beta_arms",
    "conjugate",
    "expected_log_det_wishart",
    "fit_mle",
    "info",
    "kl",
    "sample_wishart",
]
