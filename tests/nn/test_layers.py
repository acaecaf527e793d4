"""Bayesian layers: KL closed form vs Monte Carlo, sampling-mode moments, nn.* equivalence."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import integrate, stats
from torch import nn

from bayesdl.nn import (BayesConv2d, BayesLinear, BayesLSTM, GaussianPrior, ScaleMixturePrior,
                        dnn_to_bnn, kl_divergence)



@pytest.fixture(autouse=True)
def _float64():
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


def _randomise(layer, seed=0):
    """Give the posterior non-trivial means and standard deviations (sigma in ~[0.1, 0.7])."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name in layer.variational_names():
            mu = getattr(layer, f"{name}_mu")
            mu.copy_(torch.randn(mu.shape, generator=g) * 0.5)
            getattr(layer, f"{name}_rho").copy_(torch.rand(mu.shape, generator=g) * 1.5 - 2.0)
    return layer


LAYERS = {
    "linear": lambda **kw: BayesLinear(4, 3, **kw),
    "conv": lambda **kw: BayesConv2d(2, 3, 3, padding=1, **kw),
    "lstm": lambda **kw: BayesLSTM(3, 2, batch_first=True, **kw),
}


@pytest.mark.parametrize("kind", list(LAYERS))
def test_closed_form_kl_matches_monte_carlo_within_4_se(kind):
    layer = _randomise(LAYERS[kind](prior=GaussianPrior(sigma=0.7, loc=0.1)))
    closed = layer.kl_divergence().item()
    with torch.no_grad():
        mc = layer.kl_divergence_mc(20000)
    se = mc.std().item() / math.sqrt(mc.numel())
    assert abs(mc.mean().item() - closed) < 4 * se
    # and the closed form is the textbook formula, summed over every weight
    expected = 0.0
    for name in layer.variational_names():
        mu = getattr(layer, f"{name}_mu").detach().numpy()
        s = F.softplus(getattr(layer, f"{name}_rho")).detach().numpy()
        expected += np.sum(np.log(0.7 / s) + (s**2 + (mu - 0.1) ** 2) / (2 * 0.7**2) - 0.5)
    assert closed == pytest.approx(expected, rel=1e-10)


def test_scale_mixture_kl_monte_carlo_matches_quadrature():
    prior = ScaleMixturePrior(pi=0.3, sigma1=1.0, sigma2=0.05)
    layer = _randomise(BayesLinear(2, 2, prior=prior))
    with torch.no_grad():
        mc = layer.kl_divergence_mc(20000)
    exact = 0.0
    for name in layer.variational_names():
        mus = getattr(layer, f"{name}_mu").detach().numpy().ravel()
        sds = F.softplus(getattr(layer, f"{name}_rho")).detach().numpy().ravel()
        for m, s in zip(mus, sds):
            def integrand(w, m=m, s=s):
                log_q = stats.norm.logpdf(w, m, s)
                log_p = np.logaddexp(np.log(0.3) + stats.norm.logpdf(w, 0, 1.0),
                                     np.log(0.7) + stats.norm.logpdf(w, 0, 0.05))
                return np.exp(log_q) * (log_q - log_p)
            exact += integrate.quad(integrand, m - 12 * s, m + 12 * s, points=[0.0], limit=200)[0]
    se = mc.std().item() / math.sqrt(mc.numel())
    assert abs(mc.mean().item() - exact) < 4 * se
    # kl_divergence() (the training objective) uses the Monte-Carlo estimator for this prior
    layer.kl_samples = 5000
    assert abs(kl_divergence(layer).item() - exact) < 4 * se * math.sqrt(20000 / 5000)


def _mc_moments(layer, x, n):
    with torch.no_grad():
        ys = torch.stack([layer(x) for _ in range(n)])
    return ys.mean(0), ys.var(0)


@pytest.mark.parametrize("kind,modes", [("linear", ["local", "flipout"]),
                                        ("conv", ["flipout"])])
def test_local_and_flipout_moments_match_reparam(kind, modes):
    torch.manual_seed(1)
    layer = _randomise(LAYERS[kind]())
    x = torch.randn(2, 4) if kind == "linear" else torch.randn(2, 2, 3, 3)
    op = layer._op
    w_mu, w_sd = layer.posterior_mean("weight"), layer.posterior_std("weight")
    b_mu, b_sd = layer.posterior_mean("bias"), layer.posterior_std("bias")
    with torch.no_grad():
        # closed-form moments of an affine map of independent Gaussians
        mean = op(x, w_mu, b_mu)
        var = op(x * x, w_sd**2, b_sd**2)
    n = 4000
    for mode in ["reparam", *modes]:
        layer.sampling = mode
        m, v = _mc_moments(layer, x, n)
        assert torch.all((m - mean).abs() < 4.5 * (var / n).sqrt()), mode
        # Var of a sample variance of Gaussians: 2 var^2 / (n - 1)
        assert torch.all((v - var).abs() < 4.5 * var * math.sqrt(2 / (n - 1))), mode


def test_conv_flipout_keeps_the_spatial_correlation_of_reparam():
    """Flipout must perturb each example's *weights*: two output pixels of one example that
    share a kernel are correlated exactly as under plain reparameterisation."""
    torch.manual_seed(3)
    layer = _randomise(BayesConv2d(2, 1, 3, padding=1, bias=False))
    x = torch.randn(1, 2, 4, 4)
    n = 6000

    def pixel_pair(mode):
        layer.sampling = mode
        with torch.no_grad():
            ys = torch.stack([layer(x)[0, 0] for _ in range(n)])  # (n, 4, 4)
        return ys[:, 1, 1], ys[:, 1, 2]

    a, b = pixel_pair("reparam")
    c, d = pixel_pair("flipout")
    corr_r = torch.corrcoef(torch.stack([a, b]))[0, 1]
    corr_f = torch.corrcoef(torch.stack([c, d]))[0, 1]
    # standard error of a correlation coefficient: (1 - rho^2) / sqrt(n)
    assert abs(corr_r) > 0.1
    assert abs(corr_f - corr_r) < 4.5 * (1 - corr_r**2) / math.sqrt(n) * math.sqrt(2)


def test_lstm_flipout_moments_match_reparam():
    torch.manual_seed(2)
    layer = _randomise(BayesLSTM(3, 2, batch_first=True))
    x = torch.randn(2, 4, 3)
    layer.sampling = "reparam"
    m1, v1 = _lstm_moments(layer, x)
    layer.sampling = "flipout"
    m2, v2 = _lstm_moments(layer, x)
    se = ((v1 + v2) / 4000).sqrt()
    assert torch.all((m1 - m2).abs() < 4.5 * se)
    # the output is a squashed (non-Gaussian) variable: compare variances by a 15% margin
    assert torch.allclose(v1, v2, rtol=0.15)


def _lstm_moments(layer, x, n=4000):
    with torch.no_grad():
        ys = torch.stack([layer(x)[0] for _ in range(n)])
    return ys.mean(0), ys.var(0)


def test_local_reparameterisation_only_where_it_applies():
    with pytest.raises(ValueError, match="not supported by BayesLSTM"):
        BayesLSTM(2, 2, sampling="local")
    with pytest.raises(ValueError, match="not supported by BayesConv2d"):
        BayesConv2d(2, 2, 3, sampling="local")
    with pytest.raises(ValueError, match="Use sampling='flipout'"):
        BayesLinear(3, 2, sampling="local")(torch.randn(4, 5, 3))


@pytest.mark.parametrize("make,shape", [
    (lambda: nn.Sequential(nn.Linear(4, 5), nn.Tanh(), nn.Linear(5, 2)), (3, 4)),
    (lambda: nn.Sequential(nn.Conv2d(2, 3, 3, stride=2, padding=1), nn.ReLU()), (2, 2, 6, 6)),
    (lambda: nn.LSTM(3, 4, batch_first=True), (2, 5, 3)),
])
def test_dnn_to_bnn_with_vanishing_sigma_reproduces_the_network(make, shape):
    net = make()
    x = torch.randn(shape)
    bnn = dnn_to_bnn(net, moped=True)
    for m in bnn.modules():
        if hasattr(m, "variational_names"):
            for name in m.variational_names():
                getattr(m, f"{name}_rho").data.fill_(-60.0)  # sigma = softplus(-60) ~ 1e-26
    out, ref = bnn(x), net(x)
    out, ref = (out[0], ref[0]) if isinstance(ref, tuple) else (out, ref)
    torch.testing.assert_close(out, ref, atol=1e-12, rtol=0)
    assert not any(isinstance(m, (nn.Linear, nn.Conv2d, nn.LSTM)) for m in bnn.modules())
    # the original is untouched
    assert any(isinstance(m, (nn.Linear, nn.Conv2d, nn.LSTM)) for m in net.modules())


def test_dnn_to_bnn_moped_sets_sigma_to_delta_abs_w():
    net = nn.Linear(3, 2)
    bnn = dnn_to_bnn(net, moped=True, moped_delta=0.2)
    torch.testing.assert_close(bnn.posterior_std("weight"),
                               (0.2 * net.weight.abs()).clamp_min(1e-6))
    with pytest.raises(ValueError, match="single-layer"):
        dnn_to_bnn(nn.LSTM(2, 2, num_layers=2))
    # the local trick does not apply to shared weights: LSTMs and convolutions get flipout
    converted = dnn_to_bnn(nn.Sequential(nn.Linear(2, 2), nn.LSTM(2, 2), nn.Conv2d(1, 1, 1)),
                           sampling="local", moped=True)
    assert [m.sampling for m in converted] == ["local", "flipout", "flipout"]


def test_dnn_to_bnn_without_moped_warns_that_the_trained_weights_are_dropped():
    torch.manual_seed(0)
    net = nn.Linear(3, 2)
    with pytest.warns(UserWarning, match="discards the trained weights.*moped=True"):
        fresh = dnn_to_bnn(net)
    assert not torch.equal(fresh.weight_mu, net.weight)  # a fresh initialisation
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        kept = dnn_to_bnn(net, moped=True)
    torch.testing.assert_close(kept.weight_mu, net.weight, rtol=0, atol=0)


@pytest.mark.parametrize("alias", ["reparameterization", "reparameterisation"])
def test_reparameterization_is_an_alias_of_reparam(alias):
    torch.manual_seed(0)
    layers = [BayesLinear(3, 2, sampling=alias), BayesConv2d(1, 2, 3, sampling=alias),
              BayesLSTM(2, 3, sampling=alias), dnn_to_bnn(nn.Linear(3, 2), sampling=alias,
                                                           moped=True)]
    assert [m.sampling for m in layers] == ["reparam"] * 4
    # same draws as sampling="reparam" from the same seed
    ref = BayesLinear(3, 2, sampling="reparam")
    ref.load_state_dict(layers[0].state_dict())
    x = torch.randn(4, 3)
    torch.manual_seed(1)
    a = layers[0](x)
    torch.manual_seed(1)
    torch.testing.assert_close(a, ref(x), rtol=0, atol=0)
    with pytest.raises(ValueError, match="'reparameterization' is an alias"):
        BayesLinear(3, 2, sampling="reparametrisation")


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf")])
def test_prior_with_non_positive_sigma_is_rejected(bad):
    with pytest.raises(ValueError, match="sigma must be a positive"):
        GaussianPrior(sigma=bad)
    with pytest.raises(ValueError, match="sigma2 must be a positive"):
        ScaleMixturePrior(sigma2=bad)
    with pytest.raises(ValueError, match="pi must be strictly between"):
        ScaleMixturePrior(pi=1.0)


def test_conjugate_bayes_linear_converges_to_exact_posterior():
    """Pyro-style NormalNormal check: BBB on y = X w + N(0, s^2), prior N(0, s0^2 I).

    With orthogonal columns (X^T X = N I) the exact posterior (PRML eq. 3.53-3.54) is
    factorised, so the mean-field Gaussian family contains it and the ELBO optimum is exact.
    """
    rng = np.random.default_rng(0)
    N, D, noise, s0 = 200, 3, 0.5, 1.0
    Q, _ = np.linalg.qr(rng.standard_normal((N, D)))
    X = Q * np.sqrt(N)
    y = X @ np.array([1.0, -0.5, 2.0]) + noise * rng.standard_normal(N)
    # S_N^-1 = s0^-2 I + s^-2 X^T X,  m_N = s^-2 S_N X^T y  (PRML eq. 3.53-3.54, beta = s^-2)
    S_N = np.linalg.inv(np.eye(D) / s0**2 + X.T @ X / noise**2)
    m_N = S_N @ X.T @ y / noise**2
    sd_N = np.sqrt(np.diag(S_N))

    torch.manual_seed(0)
    layer = BayesLinear(D, 1, bias=False, prior=GaussianPrior(s0), sampling="local",
                        posterior_rho_init=-2.0)
    Xt, yt = torch.as_tensor(X), torch.as_tensor(y)
    opt = torch.optim.Adam(layer.parameters(), lr=0.02)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=3000)
    from bayesdl.nn import elbo_loss
    for _ in range(3000):
        opt.zero_grad()
        pred = layer(Xt).squeeze(-1)
        nll = -torch.distributions.Normal(pred, noise).log_prob(yt).mean()
        elbo_loss(nll, kl_divergence(layer), N).backward()
        opt.step()
        sched.step()
    mean = layer.weight_mu.detach().numpy().ravel()
    sd = layer.posterior_std("weight").detach().numpy().ravel()
    np.testing.assert_allclose(mean, m_N, rtol=0.05)
    np.testing.assert_allclose(sd, sd_N, rtol=0.10)
