"""fit_mle against scipy's fit / closed forms, parameter recovery within 3 standard errors, errors."""

import numpy as np
import pytest
import scipy.optimize
import scipy.special
import scipy.stats
import torch
from sklearn.exceptions import ConvergenceWarning
from torch.distributions import (Bernoulli, Beta, Binomial, Categorical, Dirichlet, Gamma, Multinomial,
                                 MultivariateNormal, Normal, Poisson)

from bayesdl.distributions import MLE_FAMILIES, fit_mle

def _rng():
    return np.random.default_rng(2024)


# -- agreement with scipy's fit or the closed form (1e-6) ------------------------------------

def test_bernoulli_binomial_poisson_closed_forms():
    rng = _rng()
    x = rng.binomial(1, 0.3, size=500)
    assert isinstance(fit_mle("bernoulli", x), Bernoulli)
    np.testing.assert_allclose(fit_mle("bernoulli", x).probs.item(), x.sum() / x.size, atol=1e-12)
    k = rng.binomial(12, 0.4, size=400)
    b = fit_mle("binomial", k, total_count=12)
    assert isinstance(b, Binomial) and b.total_count.item() == 12
    np.testing.assert_allclose(b.probs.item(), k.sum() / (12 * k.size), atol=1e-12)
    c = rng.poisson(3.5, size=300)
    np.testing.assert_allclose(fit_mle(Poisson, c).rate.item(), c.mean(), atol=1e-12)


def test_categorical_and_multinomial_closed_forms():
    rng = _rng()
    labels = rng.choice(4, p=[0.1, 0.2, 0.3, 0.4], size=1000)
    cat = fit_mle("categorical", labels)
    assert isinstance(cat, Categorical)
    np.testing.assert_allclose(cat.probs.numpy(), np.bincount(labels, minlength=4) / labels.size, atol=1e-12)
    # an unseen top class is kept when num_categories says so
    assert fit_mle("categorical", labels, num_categories=6).probs.shape == (6,)
    counts = rng.multinomial(20, [0.5, 0.3, 0.2], size=250)
    mult = fit_mle("multinomial", counts)
    assert isinstance(mult, Multinomial) and mult.total_count == 20
    np.testing.assert_allclose(mult.probs.numpy(), counts.sum(0) / (20 * 250), atol=1e-12)


def test_normal_matches_scipy_fit():
    x = _rng().normal(1.5, 2.5, size=400)
    loc, scale = scipy.stats.norm.fit(x)
    d = fit_mle("normal", x)
    assert isinstance(d, Normal) and d.loc.dtype == torch.float64
    np.testing.assert_allclose([d.loc.item(), d.scale.item()], [loc, scale], rtol=1e-6)


def test_multivariate_normal_uses_n_denominator():
    x = _rng().multivariate_normal([0, 1, 2], [[2, 0.5, 0], [0.5, 1, 0.3], [0, 0.3, 1.5]], size=300)
    d = fit_mle("MultivariateNormal", x)
    assert isinstance(d, MultivariateNormal)
    np.testing.assert_allclose(d.loc.numpy(), x.mean(0), atol=1e-12)
    np.testing.assert_allclose(d.covariance_matrix.numpy(), np.cov(x.T, bias=True), atol=1e-10)


def test_gamma_matches_scipy_fit():
    x = _rng().gamma(2.7, 1 / 1.9, size=800)
    a, _, scale = scipy.stats.gamma.fit(x, floc=0)
    d = fit_mle("gamma", x)
    assert isinstance(d, Gamma)
    np.testing.assert_allclose([d.concentration.item(), d.rate.item()], [a, 1 / scale], rtol=1e-6)


@pytest.mark.parametrize("a,b", [(2.0, 5.0), (0.3, 0.6), (40.0, 15.0)])
def test_beta_matches_scipy_fit(a, b):
    x = _rng().beta(a, b, size=1000)
    sa, sb, _, _ = scipy.stats.beta.fit(x, floc=0, fscale=1)
    d = fit_mle("beta", x)
    assert isinstance(d, Beta)
    np.testing.assert_allclose([d.concentration1.item(), d.concentration0.item()], [sa, sb], rtol=1e-6)


@pytest.mark.parametrize("alpha", [[0.5, 2.0, 3.0], [0.05, 0.1, 3.0, 1.0], [30.0, 10.0, 60.0]])
def test_dirichlet_solves_the_likelihood_equations(alpha):
    """Compare with an independent root-finder on psi(a_k) - psi(sum a) = mean ln p_k (Minka eq. 9)."""
    x = _rng().dirichlet(alpha, size=2000)
    d = fit_mle("dirichlet", x)
    assert isinstance(d, Dirichlet)
    mean_log = np.log(x).mean(0)

    def stationarity(log_alpha):
        a = np.exp(log_alpha)
        return scipy.special.digamma(a) - scipy.special.digamma(a.sum()) - mean_log

    reference = np.exp(scipy.optimize.root(stationarity, np.log(alpha), tol=1e-14).x)
    np.testing.assert_allclose(d.concentration.numpy(), reference, rtol=1e-6)
    np.testing.assert_allclose(stationarity(np.log(d.concentration.numpy())), 0, atol=1e-9)


def test_batch_axes_fit_each_column_independently():
    x = _rng().gamma([1.0, 3.0, 9.0], 1.0, size=(500, 3))
    batch = fit_mle("gamma", x)
    assert batch.batch_shape == (3,)
    for j in range(3):
        single = fit_mle("gamma", x[:, j])
        np.testing.assert_allclose(batch.concentration[j].item(), single.concentration.item(), rtol=1e-10)
    normal = fit_mle("normal", torch.as_tensor(x))
    np.testing.assert_allclose(normal.scale.numpy(), x.std(0), rtol=1e-12)


def test_float32_tensor_input_stays_float32():
    x = torch.randn(100, dtype=torch.float32)
    assert fit_mle("normal", x).loc.dtype == torch.float32


# -- recovery within 3 standard errors on n = 1e5 draws ---------------------------------------

N_LARGE = 100_000


def _observed_information_se(ctor, theta, x):
    """Standard errors from the inverse observed Fisher information (autograd Hessian)."""
    theta = tuple(t.detach().clone() for t in theta)

    def total_loglik(*params):
        return ctor(*params).log_prob(x).sum()

    hessian = torch.autograd.functional.hessian(total_loglik, theta)
    sizes = [t.numel() for t in theta]
    blocks = [[hessian[i][j].reshape(sizes[i], sizes[j]) for j in range(len(theta))] for i in range(len(theta))]
    cov = torch.linalg.inv(-torch.cat([torch.cat(row, 1) for row in blocks], 0))
    return cov.diagonal().sqrt()


@pytest.mark.parametrize("family,ctor,true_params,draw", [
    ("normal", Normal, (1.2, 0.7), lambda rng, n: rng.normal(1.2, 0.7, n)),
    ("gamma", Gamma, (2.5, 3.0), lambda rng, n: rng.gamma(2.5, 1 / 3.0, n)),
    ("beta", Beta, (0.8, 2.2), lambda rng, n: rng.beta(0.8, 2.2, n)),
    ("dirichlet", Dirichlet, ([0.7, 1.5, 4.0],), lambda rng, n: rng.dirichlet([0.7, 1.5, 4.0], n)),
])
def test_recovers_true_parameters_within_three_standard_errors(family, ctor, true_params, draw):
    x = torch.as_tensor(draw(np.random.default_rng(7), N_LARGE))
    fitted = fit_mle(family, x)
    names = {"normal": ("loc", "scale"), "gamma": ("concentration", "rate"),
             "beta": ("concentration1", "concentration0"), "dirichlet": ("concentration",)}[family]
    theta = tuple(getattr(fitted, n) for n in names)
    se = _observed_information_se(ctor, theta, x)
    estimate = torch.cat([t.reshape(-1) for t in theta])
    truth = torch.cat([torch.as_tensor(t, dtype=torch.float64).reshape(-1) for t in true_params])
    assert ((estimate - truth).abs() < 3 * se).all(), (estimate, truth, se)


def test_discrete_and_gaussian_closed_forms_recover_parameters():
    rng = np.random.default_rng(11)
    n = N_LARGE
    p = 0.35
    est = fit_mle("bernoulli", rng.binomial(1, p, n)).probs.item()
    assert abs(est - p) < 3 * np.sqrt(p * (1 - p) / n)
    est = fit_mle("binomial", rng.binomial(8, p, n), total_count=8).probs.item()
    assert abs(est - p) < 3 * np.sqrt(p * (1 - p) / (8 * n))
    lam = 4.2
    est = fit_mle("poisson", rng.poisson(lam, n)).rate.item()
    assert abs(est - lam) < 3 * np.sqrt(lam / n)
    probs = np.array([0.2, 0.5, 0.3])
    est = fit_mle("categorical", rng.choice(3, p=probs, size=n)).probs.numpy()
    assert (np.abs(est - probs) < 3 * np.sqrt(probs * (1 - probs) / n)).all()
    est = fit_mle("multinomial", rng.multinomial(5, probs, size=n)).probs.numpy()
    assert (np.abs(est - probs) < 3 * np.sqrt(probs * (1 - probs) / (5 * n))).all()
    cov = np.array([[1.0, 0.6], [0.6, 2.0]])
    mvn = fit_mle("mvn", rng.multivariate_normal([1.0, -1.0], cov, size=n))
    assert (np.abs(mvn.loc.numpy() - [1.0, -1.0]) < 3 * np.sqrt(np.diag(cov) / n)).all()
    # Var(S_ij) = (S_ii S_jj + S_ij^2) / n for the Gaussian sample covariance
    se_cov = np.sqrt((np.outer(np.diag(cov), np.diag(cov)) + cov ** 2) / n)
    assert (np.abs(mvn.covariance_matrix.numpy() - cov) < 3 * se_cov).all()


# -- convergence checks and errors --------------------------------------------------------

def test_non_convergence_warns():
    x = _rng().dirichlet([0.3, 5.0, 2.0], size=200)
    with pytest.warns(ConvergenceWarning, match="max_iter=1"):
        fit_mle("dirichlet", x, max_iter=1)


@pytest.mark.parametrize("family,x,kwargs,match", [
    ("bernoulli", [0, 1, 2], {}, "0 or 1"),
    ("beta", [0.2, 1.0, 0.5], {}, r"\(0, 1\)"),
    ("beta", [0.2, -0.1, 0.5], {}, r"\(0, 1\)"),
    ("gamma", [1.0, 0.0, 2.0], {}, "strictly positive"),
    ("gamma", [2.0, 2.0, 2.0], {}, "All values of x are equal"),
    ("dirichlet", [[0.2, 0.8], [0.5, 0.6]], {}, "sum to 1"),
    ("dirichlet", [[0.0, 1.0], [0.5, 0.5]], {}, "zero proportions"),
    ("dirichlet", [[1.2, -0.2], [0.5, 0.5]], {}, r"\[0, 1\]"),
    ("poisson", [1, -2, 3], {}, "non-negative"),
    ("poisson", [1, 2.5, 3], {}, "whole numbers"),
    ("binomial", [1, 2, 3], {}, "total_count=n"),
    ("binomial", [1, 2, 7], {"total_count": 5}, "cannot exceed"),
    ("multinomial", [[1, 2], [2, 2]], {}, "same total count"),
    ("categorical", [0, 1, 5], {"num_categories": 3}, "cannot exceed"),
    ("multivariate_normal", [[1.0, 2.0], [2.0, 4.0], [3.0, 6.0]], {}, "singular"),
    ("multivariate_normal", [1.0, 2.0, 3.0], {}, r"shape \(N, D\)"),
    ("normal", [1.0, float("nan")], {}, "NaN"),
    ("laplace", [1.0, 2.0], {}, "does not know the family"),
])
def test_bad_input_gives_a_clear_error(family, x, kwargs, match):
    with pytest.raises(ValueError, match=match):
        fit_mle(family, x, **kwargs)


def test_every_family_is_covered():
    assert set(MLE_FAMILIES) == {"bernoulli", "binomial", "categorical", "multinomial", "poisson", "normal",
                                 "multivariate_normal", "gamma", "beta", "dirichlet"}
