"""The VAE objectives against closed forms: the linear Gaussian VAE is probabilistic PCA
(Lucas et al. 2019), the importance-weighted bound (Burda et al. 2015), the two KL estimators
of Kingma & Welling (2014)."""

import numpy as np
import pytest
import torch
from scipy.stats import multivariate_normal
from torch.distributions import kl_divergence

from bayesdl.decomposition import ProbabilisticPCA
from bayesdl.generative.likelihoods import BernoulliLikelihood, GaussianLikelihood
from bayesdl.generative.networks import MLPDecoder, MLPEncoder
from bayesdl.generative.vae import VAENetwork, elbo, gaussian_kl, iwae_bound, kl_warmup_weight

D, Q = 5, 2


def _ppca_data(n=400, seed=0):
    rng = np.random.default_rng(seed)
    W = rng.normal(size=(D, Q)) * np.array([3.0, 1.5])
    return rng.normal(size=(n, Q)) @ W.T + 0.5 * rng.normal(size=(n, D)) + 1.0


def _linear_vae():
    return VAENetwork(MLPEncoder((D,), 2 * Q, ()), MLPDecoder(Q, (D,), 1, ()),
                      GaussianLikelihood("learned"), Q).double()


def _set_to_ppca(vae, ppca):
    """The linear VAE at the PPCA maximum-likelihood solution with its exact posterior.

    p(z | x) = N(M^-1 W^T (x - mu), sigma^2 M^-1), M = W^T W + sigma^2 I (PRML 12.42): W's
    columns are orthogonal at the ML solution, so M and the posterior covariance are diagonal
    and a diagonal-Gaussian encoder with a constant variance represents it exactly.
    """
    W = torch.as_tensor(ppca.components_.T)  # (D, Q)
    mu = torch.as_tensor(ppca.mean_)
    s2 = float(ppca.noise_variance_)
    M = W.T @ W + s2 * torch.eye(Q)
    assert torch.allclose(M, torch.diag(torch.diag(M)), atol=1e-8)
    V = torch.linalg.solve(M, W.T)  # (Q, D)
    with torch.no_grad():
        enc, dec = vae.encoder.net[0], vae.decoder.net[0]
        enc.weight.copy_(torch.cat([V, torch.zeros(Q, D, dtype=V.dtype)]))
        enc.bias.copy_(torch.cat([-V @ mu, torch.log(s2 / torch.diag(M))]))
        dec.weight.copy_(W)
        dec.bias.copy_(mu)
        vae.likelihood.log_variance.fill_(np.log(s2))
    return vae


@pytest.fixture(scope="module")
def ppca_fit():
    X = _ppca_data()
    ppca = ProbabilisticPCA(Q).fit(X)
    C = ppca.components_.T @ ppca.components_ + ppca.noise_variance_ * np.eye(D)
    log_px = multivariate_normal(ppca.mean_, C).logpdf(X)  # (N,) closed form
    return torch.as_tensor(X), ppca, torch.as_tensor(log_px)


def test_linear_vae_elbo_at_the_ppca_optimum_is_the_ppca_log_likelihood(ppca_fit):
    X, ppca, log_px = ppca_fit
    vae = _set_to_ppca(_linear_vae(), ppca)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        # Monte-Carlo KL: with the exact posterior log p(x, z) - log q(z | x) = log p(x) for
        # every z, so even one draw gives the log-likelihood exactly
        # (to 1e-6: the PPCA fit's W^T W is diagonal to round-off only)
        torch.testing.assert_close(elbo(vae, X, kl="mc", generator=gen), log_px, rtol=0, atol=1e-6)
        # analytic KL: the expectation is log p(x); 2000 draws per row, 4 standard errors
        value = elbo(vae, X, n_samples=2000, generator=gen)
    assert abs(value.mean() - log_px.mean()) < 4 * value.std() / np.sqrt(len(value)) + 1e-9
    assert abs(value.mean() - log_px.mean()) < 5e-3


def test_linear_vae_ppca_solution_is_a_stationary_point_of_the_elbo(ppca_fit):
    X, ppca, _ = ppca_fit

    def grad_norm(vae):
        vae.zero_grad()
        gen = torch.Generator().manual_seed(1)
        elbo(vae, X, n_samples=500, generator=gen).mean().backward()
        return torch.cat([p.grad.flatten() for p in vae.parameters()]).norm().item()

    vae = _set_to_ppca(_linear_vae(), ppca)
    at_optimum = grad_norm(vae)
    with torch.no_grad():
        vae.decoder.net[0].weight.mul_(1.1)  # W 10% off: no longer the optimum
    assert at_optimum < 0.01 * grad_norm(vae)


def test_iwae_equals_true_log_likelihood_for_an_exact_posterior(ppca_fit):
    X, ppca, log_px = ppca_fit
    vae = _set_to_ppca(_linear_vae(), ppca)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for k in (1, 10, 500):
            torch.testing.assert_close(iwae_bound(vae, X, k=k, generator=gen), log_px,
                                       rtol=0, atol=1e-6)


def _random_vae(seed=0):
    """An untrained VAE whose decoder depends strongly on z (so q(z | x) is far from the
    posterior and the IWAE bound rises clearly with k)."""
    torch.manual_seed(seed)
    vae = VAENetwork(MLPEncoder((12,), 6, (16,)), MLPDecoder(3, (12,), 1, (16,)),
                     BernoulliLikelihood(), 3).double()
    with torch.no_grad():
        vae.decoder.net[0].weight.mul_(4)
    return vae


def _binary_rows(n=4, seed=0):
    return torch.as_tensor(np.random.default_rng(seed).random((n, 12)) < 0.3, dtype=torch.float64)


def test_iwae_with_one_sample_is_the_monte_carlo_kl_elbo_and_its_mean_the_elbo():
    vae, x = _random_vae(), _binary_rows()
    with torch.no_grad():
        # the same draw: L_1 = log p(x | z) + log p(z) - log q(z | x), the SGVB-A integrand
        one = iwae_bound(vae, x, k=1, generator=torch.Generator().manual_seed(3))
        sgvb_a = elbo(vae, x, kl="mc", generator=torch.Generator().manual_seed(3))
        torch.testing.assert_close(one, sgvb_a)
        R = 20000
        draws = iwae_bound(vae, x.repeat(R, 1), k=1,
                           generator=torch.Generator().manual_seed(4)).view(R, -1)
        reference = elbo(vae, x, n_samples=R, generator=torch.Generator().manual_seed(5))
    se = draws.std(0) / np.sqrt(R)
    assert torch.all((draws.mean(0) - reference).abs() < 4 * se * np.sqrt(2))


def test_iwae_is_non_decreasing_in_k_within_monte_carlo_error():
    vae, x = _random_vae(), _binary_rows()
    R = 400
    means, ses = [], []
    with torch.no_grad():
        for i, k in enumerate((1, 2, 5, 20, 100)):
            v = iwae_bound(vae, x.repeat(R, 1), k=k,
                           generator=torch.Generator().manual_seed(10 + i)).view(R, -1).mean(1)
            means.append(v.mean().item())
            ses.append(v.std().item() / np.sqrt(R))
    for a, b, sa, sb in zip(means[:-1], means[1:], ses[:-1], ses[1:]):
        assert b > a - 3 * np.hypot(sa, sb)
    # and it does rise: the gap between L_1 and L_100 is many standard errors
    assert means[-1] - means[0] > 10 * np.hypot(ses[0], ses[-1])


def test_iwae_chunked_and_unchunked_agree_and_log_mean_exp_is_stable():
    vae, x = _random_vae(), _binary_rows()
    R = 2000
    with torch.no_grad():
        whole = iwae_bound(vae, x.repeat(R, 1), k=8, generator=torch.Generator().manual_seed(0))
        # one draw per chunk: 8 chunks combined by logaddexp
        chunked = iwae_bound(vae, x.repeat(R, 1), k=8, max_elements=1,
                             generator=torch.Generator().manual_seed(1))
    diff = whole.view(R, -1).mean(0) - chunked.view(R, -1).mean(0)
    se = np.sqrt(2) * whole.view(R, -1).std(0) / np.sqrt(R)
    assert torch.all(diff.abs() < 4 * se)
    # log-weights near -1e4 (a Gaussian decoder with a tiny variance far from the data):
    # exp underflows, the log-mean-exp does not
    far = VAENetwork(MLPEncoder((12,), 6, ()), MLPDecoder(3, (12,), 1, ()),
                     GaussianLikelihood(1e-3), 3).double()
    with torch.no_grad():
        value = iwae_bound(far, torch.full((2, 12), 3.0, dtype=torch.float64), k=50)
    assert torch.all(torch.isfinite(value)) and torch.all(value < -1e3)


def test_analytic_and_monte_carlo_kl_agree_within_standard_error():
    vae, x = _random_vae(), _binary_rows()
    S = 20000
    with torch.no_grad():
        # the same draws of z: the two ELBOs differ by KL_mc - KL_analytic only
        analytic, _, kl_a = elbo(vae, x, n_samples=S, generator=torch.Generator().manual_seed(0),
                                 return_terms=True)
        mu, log_var = vae.encode(x)
        eps = torch.randn((S, *mu.shape), generator=torch.Generator().manual_seed(7),
                          dtype=mu.dtype)
        z = mu + torch.exp(0.5 * log_var) * eps
        q = torch.distributions.Normal(mu, torch.exp(0.5 * log_var))
        p = torch.distributions.Normal(torch.zeros_like(mu), torch.ones_like(mu))
        kl_draws = (q.log_prob(z) - p.log_prob(z)).sum(-1)  # (S, N) by torch.distributions
        _, _, kl_mc = elbo(vae, x, kl="mc", n_samples=S,
                           generator=torch.Generator().manual_seed(7), return_terms=True)
    torch.testing.assert_close(kl_mc, kl_draws.mean(0))
    se = kl_draws.std(0) / np.sqrt(S)
    assert torch.all((kl_mc - kl_a).abs() < 4 * se)
    # the analytic KL is torch's closed form
    torch.testing.assert_close(kl_a, kl_divergence(q, p).sum(-1))
    torch.testing.assert_close(gaussian_kl(mu, log_var), kl_a)


def test_beta_weighs_the_kl_and_warmup_rises_linearly():
    vae, x = _random_vae(), _binary_rows()
    with torch.no_grad():
        v1, rec, kl = elbo(vae, x, beta=0.25, generator=torch.Generator().manual_seed(0),
                           return_terms=True)
    torch.testing.assert_close(v1, rec - 0.25 * kl)
    assert kl_warmup_weight(0, 0, 4, 2) == pytest.approx(1 / 8)
    assert kl_warmup_weight(1, 1, 4, 2) == pytest.approx(6 / 8)
    assert kl_warmup_weight(5, 0, 4, 2) == 1.0 and kl_warmup_weight(0, 0, 4, 0) == 1.0


def test_conditional_network_needs_labels():
    vae = VAENetwork(MLPEncoder((12,), 6, (8,), n_context=3), MLPDecoder(3, (12,), 1, (8,), 3),
                     BernoulliLikelihood(), 3, n_classes=3)
    x = _binary_rows().float()
    with pytest.raises(ValueError, match="conditional"):
        elbo(vae, x)
    y = torch.tensor([0, 1, 2, 1])
    assert elbo(vae, x, y).shape == (4,)
    assert iwae_bound(vae, x, y, k=3, max_elements=1).shape == (4,)


def test_shared_draws_make_a_rows_estimate_independent_of_the_other_rows():
    vae, x = _random_vae(), _binary_rows(6)
    eps = torch.randn(40, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    with torch.no_grad():
        full = iwae_bound(vae, x, k=40, eps=eps, max_elements=100)
        alone = iwae_bound(vae, x[2:3], k=40, eps=eps)
        torch.testing.assert_close(full[2:3], alone)
        # nor does its ELBO depend on the order of the rows
        e_full = elbo(vae, x, n_samples=40, eps=eps)
        e_rev = elbo(vae, x.flip(0), n_samples=40, eps=eps)
        torch.testing.assert_close(e_full, e_rev.flip(0))
    with pytest.raises(ValueError, match="eps holds 40 draws but k = 5"):
        iwae_bound(vae, x, k=5, eps=eps)
