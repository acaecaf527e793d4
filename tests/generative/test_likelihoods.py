"""Decoder observation models against torch.distributions, scipy quadrature and mpmath."""

import math

import mpmath
import numpy as np
import pytest
import torch
from scipy import integrate, stats
from torch.distributions import Bernoulli, ContinuousBernoulli, Normal

from bayesdl.generative.likelihoods import (BernoulliLikelihood, CategoricalLikelihood,
                                            ContinuousBernoulliLikelihood, GaussianLikelihood,
                                            continuous_bernoulli_log_normalizer,
                                            continuous_bernoulli_mean, make_likelihood)

LOGITS = [-40.0, -5.0, -0.3, -0.0501, -0.0499, -1e-3, 0.0, 1e-6, 0.0499, 0.0501, 0.3, 5.0, 40.0]


def _exact_log_norm(eta):
    eta = mpmath.mpf(eta)
    return mpmath.log(2) if eta == 0 else mpmath.log(eta / mpmath.tanh(eta / 2))


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_continuous_bernoulli_log_normalizer_matches_high_precision(dtype):
    eta = torch.tensor(LOGITS, dtype=dtype)
    ours = continuous_bernoulli_log_normalizer(eta).double()
    exact = torch.tensor([float(_exact_log_norm(e)) for e in LOGITS], dtype=torch.float64)
    tol = 1e-12 if dtype == torch.float64 else 1e-6
    torch.testing.assert_close(ours, exact, rtol=tol, atol=tol)


def test_continuous_bernoulli_log_normalizer_gradient():
    eta = torch.tensor([-3.0, -0.06, -0.04, 0.0, 0.02, 0.07, 2.0], dtype=torch.float64,
                       requires_grad=True)
    assert torch.autograd.gradcheck(continuous_bernoulli_log_normalizer, (eta,))
    # d/deta log C at the Taylor switch is continuous: eta/6 - 7 eta^3/360 on both sides
    g, = torch.autograd.grad(continuous_bernoulli_log_normalizer(eta).sum(), eta)
    assert torch.isfinite(g).all() and g[3] == 0


def test_continuous_bernoulli_density_matches_torch_and_integrates_to_one():
    lik = ContinuousBernoulliLikelihood()
    eta = torch.tensor([-5.0, -0.3, -1e-3, 0.0, 0.04, 0.3, 5.0], dtype=torch.float64)
    x = torch.rand(7, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    ref = ContinuousBernoulli(logits=eta).log_prob(x)
    torch.testing.assert_close(lik.log_prob_pixels(eta[:, None], x), ref, rtol=0, atol=1e-8)
    for e in [-40.0, -0.0499, 0.0, 0.0501, 12.0]:
        params = torch.tensor([[e]], dtype=torch.float64)

        def density(v, params=params):
            return lik.log_prob_pixels(params, torch.tensor([v], dtype=torch.float64)).exp().item()

        total, _ = integrate.quad(density, 0, 1, points=[1e-3, 0.999], limit=200)
        assert total == pytest.approx(1.0, abs=1e-7)
        mean, _ = integrate.quad(lambda v: v * density(v), 0, 1, points=[1e-3, 0.999], limit=200)
        assert continuous_bernoulli_mean(params[0, 0]).item() == pytest.approx(mean, abs=1e-7)


def test_continuous_bernoulli_samples_follow_its_cdf():
    lik = ContinuousBernoulliLikelihood()
    for e in [-30.0, -2.0, 0.0, 1e-7, 0.7, 30.0]:
        params = torch.full((20000, 1), e, dtype=torch.float64)
        draws = lik.sample(params, torch.Generator().manual_seed(0)).numpy()
        if e == 0.0 or abs(e) < 1e-6:
            cdf = stats.uniform.cdf
        else:
            # Loaiza-Ganem & Cunningham: F(x) = (lam^x (1-lam)^(1-x) + lam - 1) / (2 lam - 1),
            # divided through by 1 - lam: (e^(eta x) - 1) / (e^eta - 1), exact for |eta| = 30
            def cdf(v, e=e):
                return np.expm1(v * e) / math.expm1(e)
        assert stats.kstest(draws, cdf).pvalue > 1e-3


def test_bernoulli_and_gaussian_match_torch_distributions():
    g = torch.Generator().manual_seed(0)
    eta = torch.randn(4, 6, 1, generator=g, dtype=torch.float64)
    x = (torch.rand(4, 6, generator=g, dtype=torch.float64) < 0.5).double()
    torch.testing.assert_close(BernoulliLikelihood().log_prob(eta, x),
                               Bernoulli(logits=eta[..., 0]).log_prob(x).sum(-1))
    params = torch.randn(4, 6, 2, generator=g, dtype=torch.float64)
    xr = torch.randn(4, 6, generator=g, dtype=torch.float64)
    per_pixel = GaussianLikelihood("per_pixel", min_variance=1e-4).double()
    var = params[..., 1].exp() + 1e-4
    torch.testing.assert_close(per_pixel.log_prob(params, xr),
                               Normal(params[..., 0], var.sqrt()).log_prob(xr).sum(-1))
    fixed = GaussianLikelihood(0.3).double()
    torch.testing.assert_close(fixed.log_prob(params[..., :1], xr),
                               Normal(params[..., 0], math.sqrt(0.3)).log_prob(xr).sum(-1))


def test_categorical_is_normalised_over_its_levels():
    lik = CategoricalLikelihood(17)
    params = torch.randn(3, 5, 17, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    levels = torch.arange(17, dtype=torch.float64) / 16
    # the probabilities of the 17 values of one pixel sum to one
    p = torch.stack([lik.log_prob_pixels(params[:, :1], v.expand(3, 1)) for v in levels]).exp()
    torch.testing.assert_close(p.sum(0), torch.ones(3, 1, dtype=torch.float64))
    torch.testing.assert_close(lik.mean(params[:, :1])[:, 0], (p[:, :, 0].T * levels).sum(-1))
    draws = lik.sample(params, torch.Generator().manual_seed(1))
    assert torch.equal(draws * 16, torch.round(draws * 16))


def test_unknown_options_are_refused():
    with pytest.raises(ValueError, match="unknown decoder likelihood"):
        make_likelihood("poisson")
    with pytest.raises(ValueError, match="variance"):
        GaussianLikelihood("sometimes")
    with pytest.raises(ValueError, match="positive"):
        GaussianLikelihood(0.0)
