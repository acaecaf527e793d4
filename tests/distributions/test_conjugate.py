"""Conjugate models: closed-form posteriors, sequential = batch, predictives vs scipy, evidence."""

import math

import numpy as np
import pytest
import scipy.integrate
import scipy.special
import scipy.stats
import torch
from torch.distributions import Bernoulli, Categorical

from bayesdl.distributions import BetaBinomial, DirichletMultinomial, MultivariateStudentT, NormalGamma, NormalWishart
from bayesdl.distributions.conjugate import (BetaBernoulliModel, BetaBinomialModel, DirichletCategoricalModel,
                                             DirichletMultinomialModel, GammaPoissonModel, NormalGammaModel,
                                             NormalKnownVarianceModel, NormalWishartModel, credible_interval)

RNG = np.random.default_rng(3)
BERNOULLI = RNG.binomial(1, 0.3, size=25).astype(float)
BINOMIAL = RNG.binomial(10, 0.4, size=15).astype(float)
LABELS = RNG.choice(3, p=[0.2, 0.3, 0.5], size=30).astype(float)
COUNTS = RNG.multinomial(6, [0.2, 0.3, 0.5], size=12).astype(float)
POISSON = RNG.poisson(3.0, size=20).astype(float)
GAUSS = RNG.normal(1.0, 1.5, size=20)
MVGAUSS = RNG.multivariate_normal([1.0, -1.0, 0.5], [[1.0, 0.3, 0.0], [0.3, 2.0, 0.4], [0.0, 0.4, 0.8]], size=25)
W0 = np.array([[0.5, 0.1, 0.0], [0.1, 0.8, 0.2], [0.0, 0.2, 1.2]])

MODELS = {
    "beta_bernoulli": (lambda: BetaBernoulliModel(2.0, 3.0), BERNOULLI),
    "beta_binomial": (lambda: BetaBinomialModel(1.5, 2.5, total_count=10), BINOMIAL),
    "dirichlet_categorical": (lambda: DirichletCategoricalModel([0.5, 1.0, 2.0]), LABELS),
    "dirichlet_multinomial": (lambda: DirichletMultinomialModel([0.5, 1.0, 2.0], total_count=6), COUNTS),
    "gamma_poisson": (lambda: GammaPoissonModel(2.0, 0.5), POISSON),
    "normal_known_variance": (lambda: NormalKnownVarianceModel(0.5, 2.0, sigma=1.5), GAUSS),
    "normal_gamma": (lambda: NormalGammaModel(0.0, 2.0, 3.0, 4.0), GAUSS),
    "normal_wishart": (lambda: NormalWishartModel([0.0, 0.0, 0.0], 0.5, 5.0, W0), MVGAUSS),
}


# -- posteriors equal the closed forms ------------------------------------------------------

def test_beta_posteriors_closed_form():
    m = BetaBernoulliModel(2.0, 3.0).update(BERNOULLI)
    ones = BERNOULLI.sum()
    # PRML eq. 2.18: Beta(mu | m + a, l + b)
    np.testing.assert_allclose([m.params["a"].item(), m.params["b"].item()], [2 + ones, 3 + 25 - ones], rtol=1e-15)
    assert m.n_observations == 25
    m = BetaBinomialModel(1.5, 2.5, total_count=10).update(BINOMIAL)
    np.testing.assert_allclose([m.params["a"].item(), m.params["b"].item()],
                               [1.5 + BINOMIAL.sum(), 2.5 + (10 - BINOMIAL).sum()], rtol=1e-15)


def test_dirichlet_and_gamma_posteriors_closed_form():
    m = DirichletCategoricalModel([0.5, 1.0, 2.0]).update(LABELS)
    np.testing.assert_allclose(m.params["alpha"].numpy(), [0.5, 1, 2] + np.bincount(LABELS.astype(int), minlength=3))
    m = DirichletMultinomialModel([0.5, 1.0, 2.0], total_count=6).update(COUNTS)
    np.testing.assert_allclose(m.params["alpha"].numpy(), [0.5, 1, 2] + COUNTS.sum(0))
    m = GammaPoissonModel(2.0, 0.5).update(POISSON)
    np.testing.assert_allclose([m.params["a"].item(), m.params["b"].item()], [2 + POISSON.sum(), 0.5 + 20])


def test_normal_known_variance_posterior_prml_2_141():
    mu0, s0, s, n = 0.5, 2.0, 1.5, GAUSS.size
    m = NormalKnownVarianceModel(mu0, s0, sigma=s).update(GAUSS)
    mu_ml = GAUSS.mean()
    # PRML eqs. 2.141-2.142
    mu_n = s ** 2 / (n * s0 ** 2 + s ** 2) * mu0 + n * s0 ** 2 / (n * s0 ** 2 + s ** 2) * mu_ml
    var_n = 1 / (1 / s0 ** 2 + n / s ** 2)
    np.testing.assert_allclose([m.params["mu"].item(), m.params["sigma"].item() ** 2], [mu_n, var_n], rtol=1e-12)


def test_normal_gamma_posterior_natural_parameters():
    """Closed form via the natural parameters of the Normal-Gamma (Murphy 2007, eqs. 86-89)."""
    m0, k0, a0, b0 = 0.0, 2.0, 3.0, 4.0
    m = NormalGammaModel(m0, k0, a0, b0).update(GAUSS)
    n, sx, sxx = GAUSS.size, GAUSS.sum(), (GAUSS ** 2).sum()
    k_n = k0 + n
    m_n = (k0 * m0 + sx) / k_n
    # b_N = b_0 + 1/2 (k0 m0^2 + sum x^2 - k_N m_N^2)
    b_n = b0 + 0.5 * (k0 * m0 ** 2 + sxx - k_n * m_n ** 2)
    got = [m.params[k].item() for k in ("mu", "kappa", "a", "b")]
    np.testing.assert_allclose(got, [m_n, k_n, a0 + n / 2, b_n], rtol=1e-12)
    assert isinstance(m.posterior, NormalGamma)


def test_normal_wishart_posterior_prml_10_60():
    mu0, k0, nu0 = np.zeros(3), 0.5, 5.0
    m = NormalWishartModel(mu0, k0, nu0, W0).update(MVGAUSS)
    n = MVGAUSS.shape[0]
    xbar = MVGAUSS.mean(0)
    S = (MVGAUSS - xbar).T @ (MVGAUSS - xbar)
    # PRML eqs. 10.60-10.63 with responsibilities all one
    w_n_inv = np.linalg.inv(W0) + S + k0 * n / (k0 + n) * np.outer(xbar - mu0, xbar - mu0)
    np.testing.assert_allclose(m.params["mu"].numpy(), (k0 * mu0 + n * xbar) / (k0 + n), rtol=1e-12)
    np.testing.assert_allclose(m.params["W"].numpy(), np.linalg.inv(w_n_inv), rtol=1e-10)
    assert m.params["nu"].item() == nu0 + n and m.params["kappa"].item() == k0 + n
    assert isinstance(m.posterior, NormalWishart)


@pytest.mark.parametrize("name", list(MODELS))
def test_sequential_updates_equal_one_batch_update(name):
    make, data = MODELS[name]
    batch = make().update(data)
    seq = make()
    for i in range(len(data)):
        seq = seq.update(data[i:i + 1])
    assert seq.n_observations == batch.n_observations == len(data)
    for key in batch.params:
        np.testing.assert_allclose(seq.params[key].numpy(), batch.params[key].numpy(), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("name", list(MODELS))
def test_update_returns_a_new_model_and_keeps_the_prior(name):
    make, data = MODELS[name]
    model = make()
    before = {k: v.clone() for k, v in model.params.items()}
    post = model.update(data)
    assert post is not model and model.n_observations == 0
    for key in before:
        assert torch.equal(model.params[key], before[key])
        assert torch.equal(post.prior_params[key], before[key])


@pytest.mark.parametrize("name", list(MODELS))
def test_numpy_list_and_tensor_data_agree(name):
    make, data = MODELS[name]
    a = make().update(data)
    b = make().update(torch.as_tensor(data))
    c = make().update(data.tolist())
    for key in a.params:
        assert torch.equal(a.params[key], b.params[key]) and torch.equal(a.params[key], c.params[key])
        assert a.params[key].dtype == torch.float64


# -- posterior predictives equal scipy's ----------------------------------------------------

def test_beta_binomial_predictive_matches_scipy():
    m = BetaBinomialModel(1.5, 2.5, total_count=10).update(BINOMIAL)
    pred = m.posterior_predictive()
    assert isinstance(pred, BetaBinomial)
    k = torch.arange(11, dtype=torch.float64)
    ref = scipy.stats.betabinom.logpmf(k.numpy(), 10, m.params["a"].item(), m.params["b"].item())
    np.testing.assert_allclose(pred.log_prob(k).numpy(), ref, atol=1e-8)


def test_bernoulli_and_categorical_predictives():
    m = BetaBernoulliModel(2.0, 3.0).update(BERNOULLI)
    pred = m.posterior_predictive()
    assert isinstance(pred, Bernoulli)
    # PRML eq. 2.20: p(x = 1 | D) = (m + a) / (m + a + l + b)
    np.testing.assert_allclose(pred.probs.item(), (BERNOULLI.sum() + 2) / (25 + 5), rtol=1e-14)
    m = DirichletCategoricalModel([0.5, 1.0, 2.0]).update(LABELS)
    pred = m.posterior_predictive()
    assert isinstance(pred, Categorical)
    alpha = np.array([0.5, 1, 2]) + np.bincount(LABELS.astype(int), minlength=3)
    np.testing.assert_allclose(pred.probs.numpy(), alpha / alpha.sum(), rtol=1e-14)


def test_dirichlet_multinomial_predictive_matches_scipy():
    m = DirichletMultinomialModel([0.5, 1.0, 2.0], total_count=6).update(COUNTS)
    pred = m.posterior_predictive()
    assert isinstance(pred, DirichletMultinomial)
    values = torch.as_tensor(COUNTS[:5])
    ref = scipy.stats.dirichlet_multinomial.logpmf(COUNTS[:5], m.params["alpha"].numpy(), 6)
    np.testing.assert_allclose(pred.log_prob(values).numpy(), ref, atol=1e-8)


def test_gamma_poisson_predictive_is_scipy_nbinom():
    m = GammaPoissonModel(2.0, 0.5).update(POISSON)
    a, b = m.params["a"].item(), m.params["b"].item()
    k = torch.arange(15, dtype=torch.float64)
    ref = scipy.stats.nbinom.logpmf(k.numpy(), a, b / (b + 1))
    np.testing.assert_allclose(m.posterior_predictive().log_prob(k).numpy(), ref, atol=1e-8)


def test_normal_predictives_match_scipy():
    x = torch.linspace(-4, 6, 21, dtype=torch.float64)
    m = NormalKnownVarianceModel(0.5, 2.0, sigma=1.5).update(GAUSS)
    ref = scipy.stats.norm.logpdf(x.numpy(), m.params["mu"].item(), math.sqrt(m.params["sigma"].item() ** 2 + 1.5 ** 2))
    np.testing.assert_allclose(m.posterior_predictive().log_prob(x).numpy(), ref, atol=1e-8)
    m = NormalGammaModel(0.0, 2.0, 3.0, 4.0).update(GAUSS)
    mu, k, a, b = (m.params[n].item() for n in ("mu", "kappa", "a", "b"))
    ref = scipy.stats.t.logpdf(x.numpy(), 2 * a, mu, math.sqrt(b * (k + 1) / (a * k)))
    np.testing.assert_allclose(m.posterior_predictive().log_prob(x).numpy(), ref, atol=1e-8)


def test_normal_wishart_predictive_matches_scipy_multivariate_t():
    m = NormalWishartModel(np.zeros(3), 0.5, 5.0, W0).update(MVGAUSS)
    pred = m.posterior_predictive()
    assert isinstance(pred, MultivariateStudentT)
    p = m.params
    dof = p["nu"].item() - 3 + 1
    shape = (p["kappa"].item() + 1) / (p["kappa"].item() * dof) * np.linalg.inv(p["W"].numpy())
    x = RNG.normal(size=(10, 3))
    ref = scipy.stats.multivariate_t.logpdf(x, p["mu"].numpy(), shape, df=dof)
    np.testing.assert_allclose(pred.log_prob(torch.as_tensor(x)).numpy(), ref, atol=1e-8)


# -- log marginal likelihood -----------------------------------------------------------------

def _log_integral(log_f, lo, hi, center):
    """ln int_lo^hi exp(log_f(t)) dt, rescaled by the integrand's value at ``center``."""
    c = log_f(center)
    value, _ = scipy.integrate.quad(lambda t: math.exp(log_f(t) - c), lo, hi, points=[center],
                                    epsabs=0, epsrel=1e-13, limit=500)
    return c + math.log(value)


def test_log_marginal_likelihood_by_quadrature_beta_models():
    m = BetaBernoulliModel(2.0, 3.0)
    log_f = lambda p: (scipy.stats.bernoulli.logpmf(BERNOULLI, p).sum() + scipy.stats.beta.logpdf(p, 2.0, 3.0))
    ref = _log_integral(log_f, 0, 1, 0.3)
    np.testing.assert_allclose(m.log_marginal_likelihood(BERNOULLI).item(), ref, atol=1e-8)
    m = BetaBinomialModel(1.5, 2.5, total_count=10)
    log_f = lambda p: (scipy.stats.binom.logpmf(BINOMIAL, 10, p).sum() + scipy.stats.beta.logpdf(p, 1.5, 2.5))
    ref = _log_integral(log_f, 0, 1, 0.4)
    np.testing.assert_allclose(m.log_marginal_likelihood(BINOMIAL).item(), ref, atol=1e-8)


def test_log_marginal_likelihood_by_quadrature_gamma_poisson_and_normal():
    m = GammaPoissonModel(2.0, 0.5)
    log_f = lambda lam: (scipy.stats.poisson.logpmf(POISSON, lam).sum() + scipy.stats.gamma.logpdf(lam, 2.0, scale=2.0))
    ref = _log_integral(log_f, 1e-12, 30, POISSON.mean())
    np.testing.assert_allclose(m.log_marginal_likelihood(POISSON).item(), ref, atol=1e-8)
    m = NormalKnownVarianceModel(0.5, 2.0, sigma=1.5)
    log_f = lambda mu: (scipy.stats.norm.logpdf(GAUSS, mu, 1.5).sum() + scipy.stats.norm.logpdf(mu, 0.5, 2.0))
    ref = _log_integral(log_f, -20, 20, GAUSS.mean())
    np.testing.assert_allclose(m.log_marginal_likelihood(GAUSS).item(), ref, atol=1e-8)


def test_log_marginal_likelihood_normal_gamma_by_2d_quadrature():
    x = GAUSS[:8]
    m = NormalGammaModel(0.0, 2.0, 3.0, 4.0)
    post = m.update(x).params

    def log_joint(mu, lam):
        return (scipy.stats.norm.logpdf(x, mu, 1 / math.sqrt(lam)).sum() + scipy.stats.gamma.logpdf(lam, 3.0, scale=0.25)
                + scipy.stats.norm.logpdf(mu, 0.0, 1 / math.sqrt(2.0 * lam)))

    mu_c, lam_c = post["mu"].item(), (post["a"] / post["b"]).item()
    c = log_joint(mu_c, lam_c)
    value, _ = scipy.integrate.dblquad(lambda mu, lam: math.exp(log_joint(mu, lam) - c), 1e-9, 8.0,
                                       mu_c - 8.0, mu_c + 8.0, epsabs=1e-13, epsrel=1e-11)
    np.testing.assert_allclose(m.log_marginal_likelihood(x).item(), c + math.log(value), atol=1e-7)


def test_dirichlet_evidence_closed_form():
    alpha = np.array([0.5, 1.0, 2.0])
    m_k = np.bincount(LABELS.astype(int), minlength=3)
    gl = scipy.special.gammaln
    ref = gl(alpha.sum()) - gl(alpha.sum() + m_k.sum()) + (gl(alpha + m_k) - gl(alpha)).sum()
    np.testing.assert_allclose(DirichletCategoricalModel(alpha).log_marginal_likelihood(LABELS).item(), ref, atol=1e-10)


@pytest.mark.parametrize("name", list(MODELS))
def test_evidence_equals_product_of_one_step_predictives(name):
    """Chain rule: ln p(D) = sum_n ln p(x_n | x_1..x_{n-1}), each term from the predictive."""
    make, data = MODELS[name]
    model = make()
    chain = 0.0
    for i in range(len(data)):
        chain += model.posterior_predictive().log_prob(torch.as_tensor(data[i])).item()
        model = model.update(data[i:i + 1])
    np.testing.assert_allclose(make().log_marginal_likelihood(data).item(), chain, atol=1e-8)


@pytest.mark.parametrize("name", list(MODELS))
def test_evidence_of_new_data_after_update_chains(name):
    make, data = MODELS[name]
    first, second = data[:5], data[5:]
    model = make()
    split = model.log_marginal_likelihood(first) + model.update(first).log_marginal_likelihood(second)
    np.testing.assert_allclose(split.item(), model.log_marginal_likelihood(data).item(), atol=1e-10)


# -- credible intervals ------------------------------------------------------------------

def test_credible_intervals_match_scipy():
    m = BetaBernoulliModel(2.0, 2.0).update([1])  # PRML Figure 2.3: Beta(3, 2)
    lo, hi = m.credible_interval(0.9)
    np.testing.assert_allclose([lo.item(), hi.item()], scipy.stats.beta(3, 2).interval(0.9), atol=1e-12)
    m = GammaPoissonModel(2.0, 0.5).update(POISSON)
    ref = scipy.stats.gamma(m.params["a"].item(), scale=1 / m.params["b"].item()).interval(0.95)
    np.testing.assert_allclose([v.item() for v in m.credible_interval()], ref, atol=1e-12)
    m = NormalKnownVarianceModel(0.5, 2.0, 1.5).update(GAUSS)
    ref = scipy.stats.norm(m.params["mu"].item(), m.params["sigma"].item()).interval(0.8)
    np.testing.assert_allclose([v.item() for v in m.credible_interval(0.8)], ref, atol=1e-12)
    ng = NormalGammaModel().update(GAUSS)
    lo, hi = credible_interval(ng.posterior.marginal_loc(), 0.95)
    p = ng.params
    ref = scipy.stats.t(2 * p["a"].item(), p["mu"].item(), math.sqrt(p["b"].item() / (p["a"].item() * p["kappa"].item())))
    np.testing.assert_allclose([lo.item(), hi.item()], ref.interval(0.95), atol=1e-12)


def test_hpd_intervals_are_the_shortest_with_equal_density_ends():
    beta = BetaBernoulliModel(2.0, 2.0).update([0, 0, 0, 1, 0, 0])  # skewed Beta(3, 7)
    lo, hi = beta.credible_interval(0.9, kind="hpd")
    ref = scipy.stats.beta(3, 7)
    np.testing.assert_allclose(ref.cdf(hi.item()) - ref.cdf(lo.item()), 0.9, atol=1e-10)
    np.testing.assert_allclose(ref.pdf(lo.item()), ref.pdf(hi.item()), rtol=1e-5)
    eq_lo, eq_hi = beta.credible_interval(0.9)
    assert hi - lo < eq_hi - eq_lo
    # a monotone density: the interval starts at 0
    lo, hi = BetaBernoulliModel(1.0, 1.0).update([0, 0, 0]).credible_interval(0.95, kind="hpd")
    assert lo.item() == 0 and abs(hi.item() - scipy.stats.beta(1, 4).ppf(0.95)) < 1e-12
    # batched Gamma posteriors; a symmetric Normal's HPD is the equal-tailed interval
    gp = GammaPoissonModel([2.0, 5.0], [0.5, 1.0]).update(POISSON)
    lo, hi = gp.credible_interval(0.8, kind="hpd")
    for i in range(2):
        g = scipy.stats.gamma(gp.params["a"][i].item(), scale=1 / gp.params["b"][i].item())
        np.testing.assert_allclose(g.pdf(lo[i].item()), g.pdf(hi[i].item()), rtol=1e-5)
    normal = NormalKnownVarianceModel(0.5, 2.0, 1.5).update(GAUSS)
    torch.testing.assert_close(normal.credible_interval(0.9, "hpd"), normal.credible_interval(0.9), rtol=1e-7, atol=1e-7)


def test_batched_models_update_each_arm():
    m = BetaBinomialModel(1.0, 1.0, total_count=[1000, 800]).update([[120, 135]])
    np.testing.assert_allclose(m.params["a"].numpy(), [121, 136])
    np.testing.assert_allclose(m.params["b"].numpy(), [881, 666])
    lo, hi = m.credible_interval()
    assert lo.shape == (2,) and (lo < m.posterior.mean).all() and (m.posterior.mean < hi).all()


def test_shared_prior_broadcasts_over_batched_data():
    shared = BetaBinomialModel(1.0, 1.0, total_count=1000)
    post = shared.update([[120, 135]])
    np.testing.assert_allclose(post.params["a"].numpy(), [121, 136])
    lml = shared.log_marginal_likelihood([[120, 135]])
    one = BetaBinomialModel(1.0, 1.0, total_count=1000).log_marginal_likelihood([135])
    assert lml.shape == (2,)
    np.testing.assert_allclose(lml[1].item(), one.item(), rtol=1e-14)


def test_float32_hyperparameters_compute_in_float32():
    m = GammaPoissonModel(torch.tensor(2.0, dtype=torch.float32), torch.tensor(1.0, dtype=torch.float32))
    assert m.update(POISSON).posterior.concentration.dtype == torch.float32


# -- bad input ---------------------------------------------------------------------------

@pytest.mark.parametrize("make,data,match", [
    (lambda: BetaBernoulliModel(), [0, 1, 2], "0 or 1"),
    (lambda: BetaBernoulliModel(), [0.5], "0 or 1"),
    (lambda: BetaBinomialModel(total_count=5), [1, 6], "cannot exceed"),
    (lambda: GammaPoissonModel(), [1, -1], "non-negative"),
    (lambda: GammaPoissonModel(), [1.5], "whole numbers"),
    (lambda: DirichletCategoricalModel([1, 1, 1]), [0, 3], "cannot exceed"),
    (lambda: DirichletMultinomialModel([1, 1, 1], total_count=4), [[1, 1, 1]], "sum to total_count"),
    (lambda: DirichletMultinomialModel([1, 1, 1], total_count=2), [[1, 1]], "does not fit"),
    (lambda: NormalWishartModel([0.0, 0.0]), np.zeros((4, 3)), "does not fit"),
    (lambda: NormalWishartModel([0.0, 0.0]), np.zeros(4), r"\(N, D\)"),
    (lambda: BetaBinomialModel(total_count=[5, 5]), [[1, 2, 3]], "does not fit"),
    (lambda: NormalGammaModel(), [1.0, float("inf")], "NaN or infinite"),
])
def test_bad_data_gives_a_clear_error(make, data, match):
    with pytest.raises(ValueError, match=match):
        make().update(data)


@pytest.mark.parametrize("make,match", [
    (lambda: BetaBernoulliModel(a=-1.0), "a must be strictly positive"),
    (lambda: GammaPoissonModel(b=0.0), "b must be strictly positive"),
    (lambda: DirichletCategoricalModel([1.0, -0.5]), "alpha must be strictly positive"),
    (lambda: NormalKnownVarianceModel(sigma=0.0), "sigma must be strictly positive"),
    (lambda: NormalWishartModel([0.0, 0.0], W0=[[1.0, 2.0], [2.0, 1.0]]), "not positive definite"),
    (lambda: NormalWishartModel([0.0, 0.0], W0=[[1.0, 0.5], [0.0, 1.0]]), "symmetric"),
    (lambda: NormalWishartModel([0.0, 0.0], W0=np.eye(3)), r"shape \(D, D\)"),
    (lambda: NormalWishartModel([0.0, 0.0, 0.0], nu0=1.5), "nu0 must exceed"),
    (lambda: DirichletMultinomialModel([1.0, 1.0], total_count=2.5), "non-negative integer"),
    (lambda: credible_interval(torch.distributions.Dirichlet(torch.ones(3))), "supports Beta"),
    (lambda: BetaBernoulliModel().credible_interval(1.5), "level must be in"),
    (lambda: BetaBernoulliModel().credible_interval(0.9, kind="central"), "kind must be"),
])
def test_bad_hyperparameters_give_a_clear_error(make, match):
    with pytest.raises(ValueError, match=match):
        make()
