"""The distributions torch lacks (Beta-Binomial, Dirichlet-Multinomial, multivariate Student-t,
Normal-Gamma, Normal-Wishart) and the KL pairs registered for them, against scipy, quadrature
and Monte Carlo."""

import math

import numpy as np
import pytest
import scipy.integrate
import scipy.stats
import torch
from torch.distributions import Gamma, Multinomial, Wishart, kl_divergence

from bayesdl.distributions import (BetaBinomial, DirichletMultinomial, MultivariateStudentT, NormalGamma,
                                   NormalWishart, expected_log_det_wishart, sample_wishart)
from bayesdl.distributions.kl import kl_wishart_wishart

f64 = dict(dtype=torch.float64)


def _spd(d, seed):
    a = np.random.default_rng(seed).normal(size=(d, d))
    return torch.tensor(a @ a.T + d * np.eye(d), **f64)


def _within_four_se(estimate, exact):
    values, n = estimate
    return abs(values.mean().item() - exact) < 4 * values.std().item() / math.sqrt(n)


# -- Beta-Binomial -------------------------------------------------------------------------

def test_beta_binomial_matches_scipy():
    a, b, n = 2.5, 0.7, 12
    d = BetaBinomial(torch.tensor(a, **f64), torch.tensor(b, **f64), total_count=n)
    ref = scipy.stats.betabinom(n, a, b)
    k = torch.arange(n + 1, **f64)
    np.testing.assert_allclose(d.log_prob(k).numpy(), ref.logpmf(k.numpy()), atol=1e-10)
    np.testing.assert_allclose([d.mean.item(), d.variance.item(), d.entropy().item()],
                               [ref.mean(), ref.var(), ref.entropy()], rtol=1e-10)
    torch.manual_seed(0)
    samples = d.sample((20000,))
    assert samples.min() >= 0 and samples.max() <= n
    assert abs(samples.mean().item() - ref.mean()) < 4 * ref.std() / math.sqrt(20000)


def test_beta_binomial_batch_with_different_trials():
    d = BetaBinomial(torch.tensor([1.0, 2.0], **f64), torch.tensor([3.0, 0.5], **f64), torch.tensor([4.0, 9.0], **f64))
    ref = [scipy.stats.betabinom(4, 1, 3).entropy(), scipy.stats.betabinom(9, 2, 0.5).entropy()]
    np.testing.assert_allclose(d.entropy().numpy(), ref, rtol=1e-10)
    with pytest.raises(ValueError):
        d.log_prob(torch.tensor([5.0, 1.0], **f64))  # 5 > 4 trials is outside the support


# -- Dirichlet-Multinomial -------------------------------------------------------------------

def test_dirichlet_multinomial_matches_scipy():
    alpha = np.array([0.4, 2.0, 1.3])
    d = DirichletMultinomial(torch.tensor(alpha, **f64), total_count=7)
    ref = scipy.stats.dirichlet_multinomial(alpha, 7)
    x = np.array([[7, 0, 0], [2, 3, 2], [1, 1, 5]], dtype=float)
    np.testing.assert_allclose(d.log_prob(torch.tensor(x, **f64)).numpy(), ref.logpmf(x), atol=1e-10)
    np.testing.assert_allclose(d.mean.numpy(), ref.mean(), rtol=1e-12)
    np.testing.assert_allclose(d.variance.numpy(), np.diag(ref.cov()), rtol=1e-12)
    torch.manual_seed(1)
    s = d.sample((20000,))
    assert (s.sum(-1) == 7).all()
    assert (np.abs(s.mean(0).numpy() - ref.mean()) < 4 * np.sqrt(np.diag(ref.cov()) / 20000)).all()


# -- multivariate Student-t ------------------------------------------------------------------

def test_multivariate_student_t_matches_scipy():
    loc = torch.tensor([0.5, -1.0, 2.0], **f64)
    shape = _spd(3, 0)
    d = MultivariateStudentT(4.5, loc, scale_matrix=shape)
    ref = scipy.stats.multivariate_t(loc.numpy(), shape.numpy(), df=4.5)
    x = np.random.default_rng(1).normal(size=(20, 3)) * 3
    np.testing.assert_allclose(d.log_prob(torch.tensor(x, **f64)).numpy(), ref.logpdf(x), atol=1e-10)
    np.testing.assert_allclose(d.entropy().item(), ref.entropy(), atol=1e-10)
    np.testing.assert_allclose(d.covariance_matrix.numpy(), 4.5 / 2.5 * shape.numpy(), rtol=1e-12)


def test_multivariate_student_t_batch_broadcasting():
    shapes = torch.stack([_spd(2, 10), _spd(2, 11)])  # batch of two scale matrices
    d = MultivariateStudentT(torch.tensor([3.0, 7.0], **f64), torch.zeros(2, **f64), scale_matrix=shapes)
    x = torch.tensor([0.4, -1.3], **f64)  # one value scored under both batch members
    ref = [scipy.stats.multivariate_t([0, 0], shapes[i].numpy(), df=nu).logpdf(x.numpy()) for i, nu in enumerate((3.0, 7.0))]
    np.testing.assert_allclose(d.log_prob(x).numpy(), ref, atol=1e-10)
    assert d.sample((5,)).shape == (5, 2, 2)


def test_multivariate_student_t_sampling_and_gradients():
    torch.manual_seed(2)
    loc = torch.tensor([1.0, -2.0], **f64, requires_grad=True)
    d = MultivariateStudentT(6.0, loc, scale_matrix=torch.tensor([[2.0, 0.5], [0.5, 1.0]], **f64))
    x = d.rsample((40000,))
    x.sum().backward()
    assert torch.allclose(loc.grad, torch.full((2,), 40000.0, **f64))  # dx/dloc = I
    cov = torch.cov(x.detach().T)
    np.testing.assert_allclose(cov.numpy(), d.covariance_matrix.detach().numpy(), rtol=0.1)
    np.testing.assert_allclose(x.detach().mean(0).numpy(), [1.0, -2.0], atol=0.03)
    # log_prob is differentiable in every parameter (float64 gradcheck)
    scale_tril = torch.linalg.cholesky(torch.tensor([[2.0, 0.5], [0.5, 1.0]], **f64)).requires_grad_()
    df = torch.tensor(6.0, **f64, requires_grad=True)
    value = torch.tensor([[0.3, -1.0], [2.0, 0.1]], **f64)
    assert torch.autograd.gradcheck(
        lambda nu, m, L: MultivariateStudentT(nu, m, scale_tril=L.tril()).log_prob(value), (df, loc.detach().requires_grad_(), scale_tril))


# -- Normal-Gamma ---------------------------------------------------------------------------

NG = dict(loc=0.3, kappa=1.7, concentration=2.5, rate=1.8)


def _ng():
    return NormalGamma(*(torch.tensor(v, **f64) for v in NG.values()))


def _ng_logpdf(mu, lam):
    # ln N(mu | m, 1/(kappa lam)) + ln Gam(lam | a, b), written out
    m, k, a, b = NG.values()
    return (0.5 * math.log(k * lam / (2 * math.pi)) - 0.5 * k * lam * (mu - m) ** 2
            + a * math.log(b) - math.lgamma(a) + (a - 1) * math.log(lam) - b * lam)


def test_normal_gamma_log_prob_matches_scipy():
    pts = np.array([[0.0, 0.5], [1.2, 2.0], [-2.0, 0.1]])
    ref = [scipy.stats.norm.logpdf(m, NG["loc"], 1 / math.sqrt(NG["kappa"] * l))
           + scipy.stats.gamma.logpdf(l, NG["concentration"], scale=1 / NG["rate"]) for m, l in pts]
    np.testing.assert_allclose(_ng().log_prob(torch.tensor(pts, **f64)).numpy(), ref, atol=1e-12)
    np.testing.assert_allclose([_ng_logpdf(m, l) for m, l in pts], ref, atol=1e-12)


def test_normal_gamma_entropy_by_2d_quadrature():
    def inner(lam):
        # integrate over mu = m + s z with s the conditional standard deviation
        s = 1 / math.sqrt(NG["kappa"] * lam)

        def f(z):
            lp = _ng_logpdf(NG["loc"] + s * z, lam)
            return -math.exp(lp) * lp * s

        return scipy.integrate.quad(f, -40, 40, epsabs=1e-14, epsrel=1e-13, limit=200)[0]

    ref = scipy.integrate.quad(inner, 0, np.inf, epsabs=1e-13, epsrel=1e-13, limit=200)[0]
    np.testing.assert_allclose(_ng().entropy().item(), ref, atol=1e-8)


def test_normal_gamma_marginal_of_mean_is_student_t_by_quadrature():
    marginal = _ng().marginal_loc()
    for mu in (-1.0, 0.3, 2.0):
        ref, _ = scipy.integrate.quad(lambda lam: math.exp(_ng_logpdf(mu, lam)), 0, np.inf, epsabs=1e-13)
        np.testing.assert_allclose(marginal.log_prob(torch.tensor(mu, **f64)).exp().item(), ref, rtol=1e-9)


def test_normal_gamma_sampling_moments():
    torch.manual_seed(3)
    s = _ng().rsample((100000,))
    var = _ng().variance
    assert ((s.mean(0) - _ng().mean).abs() < 4 * (var / 100000).sqrt()).all()


def test_normal_gamma_kl_against_monte_carlo_and_properties():
    q, p = _ng(), NormalGamma(*(torch.tensor(v, **f64) for v in (-0.5, 0.6, 4.0, 2.5)))
    exact = kl_divergence(q, p).item()
    torch.manual_seed(4)
    x = q.sample((200000,))
    assert _within_four_se((q.log_prob(x) - p.log_prob(x), 200000), exact)
    assert exact > 0 and abs(kl_divergence(q, q).item()) < 1e-12


# -- Wishart and Normal-Wishart ----------------------------------------------------------------

def test_wishart_kl_in_one_dimension_equals_gamma_kl():
    """W(lambda | w, nu) in D = 1 is Gam(nu / 2, rate = 1 / (2 w))."""
    q = Wishart(torch.tensor(3.5, **f64), covariance_matrix=torch.tensor([[0.7]], **f64))
    p = Wishart(torch.tensor(6.0, **f64), covariance_matrix=torch.tensor([[0.2]], **f64))
    gq, gp = Gamma(torch.tensor(1.75, **f64), torch.tensor(1 / 1.4, **f64)), Gamma(torch.tensor(3.0, **f64), torch.tensor(2.5, **f64))
    np.testing.assert_allclose(kl_divergence(q, p).item(), kl_divergence(gq, gp).item(), atol=1e-12)


def test_wishart_kl_against_monte_carlo_and_properties():
    q = Wishart(torch.tensor(7.0, **f64), covariance_matrix=_spd(3, 1) / 5)
    p = Wishart(torch.tensor(5.0, **f64), covariance_matrix=_spd(3, 2) / 4)
    exact = kl_wishart_wishart(q, p).item()
    torch.manual_seed(5)
    x = sample_wishart(q, (100000,))
    assert _within_four_se((q.log_prob(x) - p.log_prob(x), 100000), exact)
    assert exact > 0 and abs(kl_divergence(q, q).item()) < 1e-10


def test_expected_log_det_wishart_against_monte_carlo_and_scipy_entropy_route():
    scale = _spd(3, 3) / 6
    w = Wishart(torch.tensor(6.0, **f64), covariance_matrix=scale)
    exact = expected_log_det_wishart(w.df, w.scale_tril).item()
    torch.manual_seed(6)
    logdet = torch.linalg.slogdet(sample_wishart(w, (100000,)))[1]
    assert _within_four_se((logdet, 100000), exact)
    np.testing.assert_allclose(w.entropy().item(), scipy.stats.wishart(6.0, scale.numpy()).entropy(), atol=1e-10)


def _nw(loc, kappa, df, scale):
    return NormalWishart(torch.tensor(loc, **f64), kappa, df, scale_matrix=torch.as_tensor(scale, **f64))


def test_normal_wishart_log_prob_matches_scipy():
    scale = _spd(2, 4) / 5
    d = _nw([0.5, -0.5], 2.0, 4.0, scale)
    torch.manual_seed(7)
    value = d.sample((5,))
    mu, lam = NormalWishart.unpack(value)
    ref = [scipy.stats.multivariate_normal.logpdf(m, [0.5, -0.5], np.linalg.inv(2.0 * l))
           + scipy.stats.wishart.logpdf(l, 4.0, scale.numpy()) for m, l in zip(mu.numpy(), lam.numpy())]
    np.testing.assert_allclose(d.log_prob(value).numpy(), ref, atol=1e-10)
    assert torch.equal(NormalWishart.pack(mu, lam), value)


def test_normal_wishart_in_one_dimension_equals_normal_gamma():
    nw = _nw([0.3], 1.7, 5.0, [[0.4]])
    ng = NormalGamma(*(torch.tensor(v, **f64) for v in (0.3, 1.7, 2.5, 1 / 0.8)))
    np.testing.assert_allclose(nw.entropy().item(), ng.entropy().item(), atol=1e-12)
    nw2 = _nw([-1.0], 0.5, 3.0, [[1.5]])
    ng2 = NormalGamma(*(torch.tensor(v, **f64) for v in (-1.0, 0.5, 1.5, 1 / 3.0)))
    np.testing.assert_allclose(kl_divergence(nw, nw2).item(), kl_divergence(ng, ng2).item(), atol=1e-12)
    value = torch.tensor([[0.1, 0.9]], **f64)
    np.testing.assert_allclose(nw.log_prob(value).item(), ng.log_prob(value[0]).item(), atol=1e-12)
    t1, t2 = nw.marginal_loc(), ng.marginal_loc()
    np.testing.assert_allclose(t1.log_prob(torch.tensor([0.7], **f64)).item(),
                               t2.log_prob(torch.tensor(0.7, **f64)).item(), atol=1e-12)


def test_normal_wishart_entropy_and_kl_against_monte_carlo():
    q = _nw([0.5, -0.5, 0.0], 2.0, 6.0, _spd(3, 5) / 8)
    p = _nw([0.0, 0.0, 1.0], 0.7, 4.0, _spd(3, 6) / 5)
    torch.manual_seed(8)
    x = q.sample((100000,))
    log_q = q.log_prob(x)
    assert _within_four_se((-log_q, 100000), q.entropy().item())
    exact = kl_divergence(q, p).item()
    assert _within_four_se((log_q - p.log_prob(x), 100000), exact)
    assert exact > 0 and abs(kl_divergence(q, q).item()) < 1e-10
    # sample moments: E[mu] = m, E[Lambda] = nu W
    np.testing.assert_allclose(x.mean(0).numpy(), q.mean.numpy(), atol=0.1)


def test_constructors_reject_ambiguous_scale():
    with pytest.raises(ValueError, match="exactly one"):
        MultivariateStudentT(3.0, torch.zeros(2, **f64))
    with pytest.raises(ValueError, match="exactly one"):
        NormalWishart(torch.zeros(2, **f64), 1.0, 3.0)
    bad = torch.tensor([[1.0, 2.0], [2.0, 1.0]], **f64)
    with pytest.raises(ValueError, match="not positive definite"):
        MultivariateStudentT(3.0, torch.zeros(2, **f64), scale_matrix=bad)
    with pytest.raises(ValueError, match="not positive definite"):
        NormalWishart(torch.zeros(2, **f64), 1.0, 3.0, scale_matrix=bad)
    with pytest.raises(ValueError, match="total_count"):
        DirichletMultinomial(torch.ones(3, **f64), total_count=-1)


@pytest.mark.parametrize("make", [
    lambda: BetaBinomial(t2(2.0, 3.0), t2(1.0, 0.5), t2(4.0, 4.0)),
    lambda: DirichletMultinomial(torch.tensor([[1.0, 2.0, 0.5], [3.0, 1.0, 1.0]], **f64), total_count=4),
    lambda: MultivariateStudentT(t2(3.0, 5.0), torch.zeros(2, 3, **f64), scale_matrix=_spd(3, 12)),
    lambda: NormalGamma(t2(0.0, 1.0), t2(1.0, 2.0), t2(2.0, 3.0), t2(1.0, 1.5)),
    lambda: _nw([0.0, 1.0], 2.0, 4.0, _spd(2, 13) / 3).expand((2,)),
])
def test_expand_broadcasts_parameters(make):
    d = make()
    big = d.expand((3,) + d.batch_shape)
    torch.manual_seed(9)
    x = d.sample()
    assert big.batch_shape == (3, 2)
    torch.testing.assert_close(big.log_prob(x), d.log_prob(x).expand(3, 2))


def t2(a, b):
    return torch.tensor([a, b], **f64)


def test_beta_binomial_kl_exact_including_different_trials():
    q = BetaBinomial(t2(1.0, 2.0), t2(1.0, 3.0), t2(4.0, 6.0))
    p = BetaBinomial(t2(2.0, 2.0), t2(1.0, 1.0), t2(5.0, 5.0))
    kl = kl_divergence(q, p)
    # element 0: n_q = 4 <= n_p = 5, a finite sum; element 1: n_q = 6 > n_p = 5, infinite
    k = np.arange(5)
    ref = (scipy.stats.betabinom.pmf(k, 4, 1, 1) * (scipy.stats.betabinom.logpmf(k, 4, 1, 1)
                                                    - scipy.stats.betabinom.logpmf(k, 5, 2, 1))).sum()
    np.testing.assert_allclose(kl[0].item(), ref, atol=1e-12)
    assert kl[1].item() == math.inf and abs(kl_divergence(q, q)).max().item() < 1e-12


def test_multinomial_kl_is_n_times_categorical_kl():
    pq, pp = np.array([0.2, 0.3, 0.5]), np.array([0.4, 0.4, 0.2])
    q, p = Multinomial(5, torch.tensor(pq)), Multinomial(5, torch.tensor(pp))
    np.testing.assert_allclose(kl_divergence(q, p).item(), 5 * scipy.stats.entropy(pq, pp), atol=1e-12)
    torch.manual_seed(10)
    x = q.sample((100000,))
    assert _within_four_se((q.log_prob(x) - p.log_prob(x), 100000), kl_divergence(q, p).item())
    assert kl_divergence(q, Multinomial(6, torch.tensor(pp))).item() == math.inf
