"""Entropy, cross-entropy, KL, JS and mutual information against scipy, quadrature and Monte Carlo."""

import math

import numpy as np
import pytest
import scipy.integrate
import scipy.spatial.distance
import scipy.stats
import torch
from sklearn.metrics import mutual_info_score
from torch.distributions import (Bernoulli, Beta, Binomial, Categorical, Dirichlet, Gamma, Laplace,
                                 MultivariateNormal, Normal, Poisson, StudentT)

from bayesdl.distributions import BetaBinomial, info

f64 = dict(dtype=torch.float64)


def t(*v):
    return torch.tensor(v if len(v) > 1 else v[0], **f64)


# continuous 1-D pairs (p, q, scipy p, scipy q, integration range)
PAIRS_1D = {
    "normal": (Normal(t(0.3), t(1.2)), Normal(t(-0.5), t(0.8)),
               scipy.stats.norm(0.3, 1.2), scipy.stats.norm(-0.5, 0.8), (-np.inf, np.inf)),
    "gamma": (Gamma(t(2.5), t(1.5)), Gamma(t(1.2), t(0.7)),
              scipy.stats.gamma(2.5, scale=1 / 1.5), scipy.stats.gamma(1.2, scale=1 / 0.7), (0, np.inf)),
    "beta": (Beta(t(2.0), t(3.5)), Beta(t(1.5), t(1.2)),
             scipy.stats.beta(2.0, 3.5), scipy.stats.beta(1.5, 1.2), (0, 1)),
}


def _quad(f, lo, hi):
    return scipy.integrate.quad(f, lo, hi, epsabs=1e-13, epsrel=1e-12, limit=500)[0]


@pytest.mark.parametrize("name", list(PAIRS_1D))
def test_entropy_cross_entropy_kl_match_quadrature(name):
    p, q, sp, sq, (lo, hi) = PAIRS_1D[name]
    h = _quad(lambda x: -sp.pdf(x) * sp.logpdf(x), lo, hi)
    ce = _quad(lambda x: -sp.pdf(x) * sq.logpdf(x), lo, hi)
    np.testing.assert_allclose(info.entropy(p).item(), h, atol=1e-8)
    np.testing.assert_allclose(info.entropy(p).item(), sp.entropy(), atol=1e-8)
    np.testing.assert_allclose(info.cross_entropy(p, q).item(), ce, atol=1e-8)
    np.testing.assert_allclose(info.kl_divergence(p, q).item(), ce - h, atol=1e-8)


def test_multivariate_entropy_and_kl_match_scipy_and_closed_form():
    cov_p = np.array([[2.0, 0.6], [0.6, 1.0]])
    cov_q = np.array([[1.0, -0.2], [-0.2, 0.5]])
    mp, mq = np.array([0.5, -1.0]), np.array([0.0, 0.3])
    p = MultivariateNormal(torch.tensor(mp), torch.tensor(cov_p))
    q = MultivariateNormal(torch.tensor(mq), torch.tensor(cov_q))
    np.testing.assert_allclose(info.entropy(p).item(), scipy.stats.multivariate_normal(mp, cov_p).entropy(), atol=1e-10)
    # KL between Gaussians (Murphy MLaPP eq. 6.23 / PRML exercise 2.13), written in numpy
    iq = np.linalg.inv(cov_q)
    kl = 0.5 * (np.trace(iq @ cov_p) + (mq - mp) @ iq @ (mq - mp) - 2
                + np.log(np.linalg.det(cov_q) / np.linalg.det(cov_p)))
    np.testing.assert_allclose(info.kl_divergence(p, q).item(), kl, atol=1e-10)
    alpha = np.array([0.7, 2.0, 3.5])
    np.testing.assert_allclose(info.entropy(Dirichlet(torch.tensor(alpha))).item(),
                               scipy.stats.dirichlet(alpha).entropy(), atol=1e-10)


def test_discrete_entropy_and_cross_entropy():
    probs_p, probs_q = np.array([0.1, 0.2, 0.3, 0.4]), np.array([0.25, 0.25, 0.4, 0.1])
    p, q = Categorical(torch.tensor(probs_p)), Categorical(torch.tensor(probs_q))
    np.testing.assert_allclose(info.entropy(p).item(), scipy.stats.entropy(probs_p), atol=1e-12)
    np.testing.assert_allclose(info.kl_divergence(p, q).item(), scipy.stats.entropy(probs_p, probs_q), atol=1e-12)
    np.testing.assert_allclose(info.cross_entropy(p, q).item(), -(probs_p * np.log(probs_q)).sum(), atol=1e-12)
    # Beta-Binomial has no closed-form entropy: an exact sum over its support
    bb = BetaBinomial(t(2.0), t(0.5), total_count=9)
    value, se = info.entropy(bb, return_stderr=True)
    np.testing.assert_allclose(value.item(), scipy.stats.betabinom(9, 2.0, 0.5).entropy(), atol=1e-10)
    assert se.item() == 0
    # Binomial vs Beta-Binomial KL is not in torch's registry: exact enumeration
    binom = Binomial(9, probs=t(0.7))
    k = np.arange(10)
    ref = (scipy.stats.binom.pmf(k, 9, 0.7) * (scipy.stats.binom.logpmf(k, 9, 0.7)
                                               - scipy.stats.betabinom.logpmf(k, 9, 2.0, 0.5))).sum()
    np.testing.assert_allclose(info.kl_divergence(binom, bb, method="exact").item(), ref, atol=1e-10)


def test_monte_carlo_kl_within_four_standard_errors():
    # Student-t || Normal is not in torch's registry; exact value by quadrature
    p, q = StudentT(t(5.0), t(0.2), t(1.1)), Normal(t(0.0), t(1.5))
    sp, sq = scipy.stats.t(5.0, 0.2, 1.1), scipy.stats.norm(0.0, 1.5)
    exact = _quad(lambda x: sp.pdf(x) * (sp.logpdf(x) - sq.logpdf(x)), -np.inf, np.inf)
    value, se = info.kl_divergence(p, q, return_stderr=True, seed=0, num_samples=20000)
    assert se.item() > 0 and abs(value.item() - exact) < 4 * se.item()
    # forcing Monte Carlo on a pair with a closed form agrees too
    p, q = Gamma(t(2.0), t(1.0)), Gamma(t(3.0), t(2.0))
    value, se = info.kl_divergence(p, q, method="mc", return_stderr=True, seed=1)
    assert abs(value.item() - info.kl_divergence(p, q).item()) < 4 * se.item()


def test_monte_carlo_entropy_for_poisson():
    p = Poisson(t(4.0))
    value, se = info.entropy(p, return_stderr=True, seed=2, num_samples=40000)
    assert abs(value.item() - scipy.stats.poisson(4.0).entropy()) < 4 * se.item()


def test_monte_carlo_kl_gradient_equals_finite_differences():
    # With a fixed seed the reparameterised Monte Carlo KL is a smooth function of the
    # parameters: its autograd gradient must equal central finite differences (gradcheck).
    target = StudentT(t(4.0), t(0.0), t(1.0))

    def kl(loc, scale):
        return info.kl_divergence(Laplace(loc, scale), target, method="mc", seed=3, num_samples=2000)

    loc, scale = t(0.5).requires_grad_(), t(1.3).requires_grad_()
    assert torch.autograd.gradcheck(kl, (loc, scale), eps=1e-6, atol=1e-8, rtol=1e-6)
    # and it estimates the exact derivative (quadrature, central differences in loc)
    sq = scipy.stats.t(4.0, 0.0, 1.0)

    def exact(m):
        sp = scipy.stats.laplace(m, 1.3)
        return scipy.integrate.quad(lambda x: sp.pdf(x) * (sp.logpdf(x) - sq.logpdf(x)),
                                    m - 60, m + 60, points=[m], epsabs=1e-13, limit=500)[0]

    (grad,) = torch.autograd.grad(info.kl_divergence(Laplace(loc, t(1.3)), target, method="mc",
                                                     seed=3, num_samples=40000), loc)
    np.testing.assert_allclose(grad.item(), (exact(0.5 + 1e-4) - exact(0.5 - 1e-4)) / 2e-4,
                               atol=0.02)


@pytest.mark.parametrize("p", [
    Normal(t(0.3), t(1.2)), Gamma(t(2.5), t(1.5)), Beta(t(2.0), t(3.5)), Dirichlet(t(0.5, 1.0, 4.0)),
    Categorical(t(0.2, 0.3, 0.5)), Bernoulli(t(0.3)), Poisson(t(3.0)),
    MultivariateNormal(t(0.0, 1.0), torch.tensor([[1.0, 0.4], [0.4, 2.0]], **f64)),
])
def test_kl_of_a_distribution_with_itself_is_zero(p):
    assert abs(info.kl_divergence(p, p).item()) < 1e-12
    assert abs(info.js_divergence(p, p, seed=0).item()) < 1e-12


def _wishart_kl_by_scipy(nu_q, W_q, nu_p, W_p):
    """KL = -H(q) - E_q[log p(L)], with H from scipy and log p(L) = c + (nu_p - D - 1)/2
    log|L| - tr(W_p^{-1} L)/2 linear in E_q[log|L|] (PRML B.81) and E_q[L] = nu_q W_q."""
    from scipy.special import digamma

    d = W_q.shape[0]
    p = scipy.stats.wishart(nu_p, W_p)
    W_p_inv = np.linalg.inv(W_p)
    c = p.logpdf(np.eye(d)) + 0.5 * np.trace(W_p_inv)  # log p at L = I, less its terms in L
    e_log_det = digamma((nu_q - np.arange(d)) / 2).sum() + d * np.log(2) + np.linalg.slogdet(W_q)[1]
    e_log_p = c + 0.5 * (nu_p - d - 1) * e_log_det - 0.5 * nu_q * np.trace(W_p_inv @ W_q)
    return -scipy.stats.wishart(nu_q, W_q).entropy() - e_log_p


def test_bayesdl_registered_kl_pairs_on_random_parameters():
    # The pairs bayesdl.distributions.kl registers (torch has none of them), against scipy:
    # Wishart by entropy and expectations, BetaBinomial and Multinomial by exact enumeration.
    from itertools import product

    from torch.distributions import Multinomial, Wishart

    rng = np.random.default_rng(0)
    for _ in range(5):
        d = int(rng.integers(1, 4))
        W_q, W_p = (a @ a.T + 0.3 * np.eye(d) for a in rng.normal(size=(2, d, d)))
        nu_q, nu_p = d - 1 + rng.uniform(0.5, 6, size=2)
        ours = info.kl_divergence(Wishart(t(nu_q), torch.tensor(W_q)),
                                  Wishart(t(nu_p), torch.tensor(W_p)))
        np.testing.assert_allclose(ours.item(), _wishart_kl_by_scipy(nu_q, W_q, nu_p, W_p),
                                   rtol=1e-10, atol=1e-10)

        n = int(rng.integers(1, 12))
        a_q, b_q, a_p, b_p = rng.uniform(0.2, 5, size=4)
        k = np.arange(n + 1)
        log_q = scipy.stats.betabinom.logpmf(k, n, a_q, b_q)
        ref = np.sum(np.exp(log_q) * (log_q - scipy.stats.betabinom.logpmf(k, n, a_p, b_p)))
        ours = info.kl_divergence(BetaBinomial(t(a_q), t(b_q), total_count=n),
                                  BetaBinomial(t(a_p), t(b_p), total_count=n))
        np.testing.assert_allclose(ours.item(), ref, rtol=1e-10, atol=1e-12)

        m = int(rng.integers(1, 6))
        p_q, p_p = rng.dirichlet(np.ones(3), size=2)
        counts = np.array([c for c in product(range(m + 1), repeat=3) if sum(c) == m])
        log_q = scipy.stats.multinomial.logpmf(counts, m, p_q)
        ref = np.sum(np.exp(log_q) * (log_q - scipy.stats.multinomial.logpmf(counts, m, p_p)))
        ours = info.kl_divergence(Multinomial(m, torch.tensor(p_q)),
                                  Multinomial(m, torch.tensor(p_p)))
        np.testing.assert_allclose(ours.item(), ref, rtol=1e-10, atol=1e-12)
    # Different supports: q puts mass where p has none.
    assert info.kl_divergence(Multinomial(3, t(0.2, 0.8)), Multinomial(4, t(0.2, 0.8))) == np.inf
    assert info.kl_divergence(BetaBinomial(t(1.0), t(2.0), total_count=5),
                              BetaBinomial(t(1.0), t(2.0), total_count=3)) == np.inf


def test_js_divergence_discrete_matches_scipy():
    probs_p, probs_q = np.array([0.1, 0.2, 0.3, 0.4]), np.array([0.5, 0.25, 0.2, 0.05])
    p, q = Categorical(torch.tensor(probs_p)), Categorical(torch.tensor(probs_q))
    ref = scipy.spatial.distance.jensenshannon(probs_p, probs_q) ** 2  # natural log by default
    np.testing.assert_allclose(info.js_divergence(p, q).item(), ref, atol=1e-12)
    np.testing.assert_allclose(info.js_divergence(q, p).item(), ref, atol=1e-12)
    disjoint = info.js_divergence(Categorical(t(1.0, 0.0)), Categorical(t(0.0, 1.0)))
    np.testing.assert_allclose(disjoint.item(), math.log(2), atol=1e-12)


def test_js_divergence_continuous_within_four_standard_errors_of_quadrature():
    sp, sq = scipy.stats.norm(0.0, 1.0), scipy.stats.norm(1.5, 0.7)

    def half(a):
        return lambda x: a.pdf(x) * (a.logpdf(x) - np.logaddexp(sp.logpdf(x), sq.logpdf(x)) + math.log(2))

    exact = 0.5 * (_quad(half(sp), -np.inf, np.inf) + _quad(half(sq), -np.inf, np.inf))
    value, se = info.js_divergence(Normal(t(0.0), t(1.0)), Normal(t(1.5), t(0.7)), return_stderr=True, seed=4)
    assert 0 < value.item() < math.log(2) and abs(value.item() - exact) < 4 * se.item()


def test_method_options():
    p, q = StudentT(t(5.0)), Normal(t(0.0), t(1.0))
    with pytest.raises(NotImplementedError, match="method='auto' or 'mc'"):
        info.kl_divergence(p, q, method="exact")
    with pytest.raises(ValueError, match="method must be one of"):
        info.entropy(p, method="quadrature")
    with pytest.raises(ValueError, match="num_samples"):
        info.kl_divergence(p, q, num_samples=1)
    # seeded Monte Carlo is reproducible and leaves the global RNG alone
    state = torch.get_rng_state()
    assert info.kl_divergence(p, q, seed=5) == info.kl_divergence(p, q, seed=5)
    assert torch.equal(state, torch.get_rng_state())


# -- mutual information ------------------------------------------------------------------

def test_mutual_information_of_independent_table_is_zero():
    px, py = np.array([0.2, 0.3, 0.5]), np.array([0.6, 0.1, 0.1, 0.2])
    assert abs(info.mutual_information(np.outer(px, py)).item()) < 1e-14


def test_mutual_information_of_x_with_itself_is_its_entropy():
    px = np.array([0.1, 0.2, 0.3, 0.4])
    np.testing.assert_allclose(info.mutual_information(np.diag(px)).item(), scipy.stats.entropy(px), atol=1e-14)
    np.testing.assert_allclose(info.mutual_information(np.diag(px), base=2).item(), scipy.stats.entropy(px, base=2),
                               atol=1e-14)


def test_mutual_information_is_symmetric_and_matches_definition():
    table = np.random.default_rng(0).random((3, 5))
    table /= table.sum()
    mi = info.mutual_information(table).item()
    np.testing.assert_allclose(mi, info.mutual_information(table.T).item(), atol=1e-14)
    # I = H(X) + H(Y) - H(X, Y)
    ref = scipy.stats.entropy(table.sum(1)) + scipy.stats.entropy(table.sum(0)) - scipy.stats.entropy(table.ravel())
    np.testing.assert_allclose(mi, ref, atol=1e-12)


def test_mutual_information_from_samples_matches_scikit_learn():
    rng = np.random.default_rng(1)
    x = rng.choice(["a", "b", "c"], size=500)
    y = np.where(rng.random(500) < 0.6, x, rng.choice(["a", "b", "c", "d"], size=500))
    mi = info.mutual_information_from_samples(x, y)
    np.testing.assert_allclose(mi.item(), mutual_info_score(x, y), atol=1e-12)
    np.testing.assert_allclose(info.mutual_information_from_samples(y, x).item(), mi.item(), atol=1e-14)
    np.testing.assert_allclose(info.mutual_information_from_samples(x, x).item(),
                               scipy.stats.entropy(np.unique(x, return_counts=True)[1]), atol=1e-12)


@pytest.mark.parametrize("call,match", [
    (lambda: info.mutual_information([[0.5, 0.6], [0.1, -0.2]]), r"\[0, 1\]"),
    (lambda: info.mutual_information([[0.2, 0.2], [0.2, 0.2]]), "must sum to 1"),
    (lambda: info.mutual_information([0.5, 0.5]), "2-D table"),
    (lambda: info.mutual_information_from_samples([1, 2, 3], [1, 2]), "equal length"),
    (lambda: info.mutual_information_from_samples([], []), "empty"),
])
def test_mutual_information_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()
