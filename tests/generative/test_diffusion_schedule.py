"""The noise schedule against closed forms, direct Gaussian conditioning and Monte Carlo."""

import math

import numpy as np
import pytest
import torch
from scipy import stats

from bayesdl.generative.diffusion import (NoiseSchedule, UNet, DenoisingMLP,
                                          default_channel_mults,
                                          discretized_gaussian_log_likelihood, guided_output,
                                          nats_to_bits_per_dim, timestep_embedding)


def test_linear_schedule_matches_ho_et_al_and_abar_is_the_product():
    s = NoiseSchedule.linear()
    assert s.n_timesteps == 1000
    assert s.betas[0].item() == pytest.approx(1e-4) and s.betas[-1].item() == pytest.approx(0.02)
    betas = np.linspace(1e-4, 0.02, 1000)
    # abar_t = prod_{s<=t} (1 - beta_s), by a naive loop
    abar, ref = 1.0, []
    for b in betas:
        abar *= 1 - b
        ref.append(abar)
    np.testing.assert_allclose(s.alphas_cumprod.numpy(), ref, rtol=1e-12)
    # the last step leaves almost pure noise (Ho et al.: L_T ~ 1e-5 bits per dimension)
    assert s.alphas_cumprod[-1].item() == pytest.approx(4.04e-5, rel=0.01)
    # other T: the ends scale by 1000/T (Nichol & Dhariwal's code), capped below 1
    short = NoiseSchedule.linear(100)
    np.testing.assert_allclose(short.betas.numpy(), np.linspace(1e-3, 0.2, 100), rtol=1e-12)
    assert NoiseSchedule.linear(10).betas[-1].item() == 0.999


def test_cosine_schedule_follows_nichol_dhariwal_eq17():
    T, s = 1000, 0.008
    sched = NoiseSchedule.cosine(T)
    f = lambda t: math.cos((t / T + s) / (1 + s) * math.pi / 2) ** 2  # noqa: E731
    ref = np.array([f(t) / f(0) for t in range(1, T + 1)])
    unclipped = sched.betas.numpy() < 0.999  # only the last betas are clipped
    assert unclipped[:-1].all()
    np.testing.assert_allclose(sched.alphas_cumprod.numpy()[:-1], ref[:-1], rtol=1e-10)


@pytest.mark.parametrize("t", [0, 1, 999])
def test_q_xt_given_x0_moments_by_monte_carlo_and_by_iterating_one_step(t):
    s = NoiseSchedule.linear()
    g = torch.Generator().manual_seed(t)
    x0 = torch.tensor([[0.7, -0.4]], dtype=torch.float64)
    n = 20_000
    xt = s.add_noise(x0.expand(n, 2), torch.randn(n, 2, generator=g, dtype=torch.float64), t)
    # the same marginal by running q(x_s | x_{s-1}) = N(sqrt(1-beta_s) x_{s-1}, beta_s) t+1 times
    x = x0.expand(n, 2).clone()
    noise = torch.randn(t + 1, n, 2, generator=g, dtype=torch.float64)
    for k in range(t + 1):
        x = (1 - s.betas[k]).sqrt() * x + s.betas[k].sqrt() * noise[k]
    abar = s.alphas_cumprod[t].item()
    mean, var = math.sqrt(abar) * x0[0].numpy(), 1 - abar
    for sample in (xt, x):
        se_mean = math.sqrt(var / n)
        assert np.all(np.abs(sample.mean(0).numpy() - mean) < 5 * se_mean)
        se_var = var * math.sqrt(2 / (n - 1))  # standard error of a Gaussian sample variance
        assert np.all(np.abs(sample.var(0).numpy() - var) < 5 * se_var)


@pytest.mark.parametrize("kind", ["linear", "cosine"])
@pytest.mark.parametrize("t", [1, 2, 250, 999])
def test_posterior_equals_direct_gaussian_conditioning(kind, t):
    s = getattr(NoiseSchedule, kind)()
    x0 = torch.tensor([[0.3, -0.8]], dtype=torch.float64)
    xt = torch.tensor([[1.1, 0.2]], dtype=torch.float64)
    mean, var = s.posterior(x0, xt, t)
    # joint of (x_{t-1}, x_t) given x_0: x_{t-1} ~ N(sqrt(abar_{t-1}) x0, 1 - abar_{t-1}),
    # x_t = sqrt(alpha_t) x_{t-1} + sqrt(beta_t) n; condition with the Gaussian formulas
    a_prev, alpha = s.alphas_cumprod[t - 1].item(), s.alphas[t].item()
    mu1, v1 = math.sqrt(a_prev) * x0.numpy(), 1 - a_prev
    mu2, v2 = math.sqrt(alpha) * mu1, alpha * v1 + (1 - alpha)
    cov = math.sqrt(alpha) * v1
    np.testing.assert_allclose(mean.numpy(), mu1 + cov / v2 * (xt.numpy() - mu2), rtol=1e-10)
    np.testing.assert_allclose(var.numpy(), v1 - cov ** 2 / v2, rtol=1e-10)


def test_timestep_indexing_at_the_ends():
    s = NoiseSchedule.linear(clip_sample=False)
    x0 = torch.tensor([[0.5, -0.25]], dtype=torch.float64)
    noise = torch.tensor([[1.0, 2.0]], dtype=torch.float64)
    # t = 0 is the paper's t = 1: x_1 = sqrt(1 - beta_1) x0 + sqrt(beta_1) eps
    b1 = 1e-4
    np.testing.assert_allclose(s.add_noise(x0, noise, 0).numpy(),
                               math.sqrt(1 - b1) * x0.numpy() + math.sqrt(b1) * noise.numpy())
    # t = 1 conditions on abar_0 = 1 - beta_1 (not 1, not abar_1)
    assert s.alphas_cumprod_prev[1].item() == pytest.approx(1 - b1, rel=1e-14)
    assert s.alphas_cumprod_prev[0].item() == 1.0
    # t = T-1 uses the last abar (the product of all 1000 factors)
    ab = s.alphas_cumprod[-1].item()
    np.testing.assert_allclose(s.add_noise(x0, noise, 999).numpy(),
                               math.sqrt(ab) * x0.numpy() + math.sqrt(1 - ab) * noise.numpy())
    # a step from t = 0 returns the predicted x_0 without noise (Ho Algorithm 2: z = 0)
    x1 = s.add_noise(x0, noise, 0)
    out = s.step(noise, 0, x1, torch.Generator().manual_seed(0))
    np.testing.assert_allclose(out.numpy(), x0.numpy(), atol=1e-12)
    # the samplers visit T-1 .. 0 exactly once (DDPM) and end at 0 (DDIM)
    assert s.timesteps() == list(range(999, -1, -1))
    sub = s.timesteps(50)
    assert len(sub) == 50 and sub[0] == 999 and sub[-1] == 0
    assert s.ddim_step(noise, 0, -1, x1).numpy() == pytest.approx(x0.numpy(), abs=1e-12)


def test_ddim_with_eta_one_on_consecutive_steps_is_the_ddpm_step():
    s = NoiseSchedule.linear(clip_sample=False)
    x_t = torch.randn(5000, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    eps = torch.randn(5000, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    for t in (1, 10, 500, 999):
        # the same mean and variance: with the same noise draw the same sample
        ddpm = s.step(eps, t, x_t, torch.Generator().manual_seed(t))
        ddim = s.ddim_step(eps, t, t - 1, x_t, eta=1.0, generator=torch.Generator().manual_seed(t))
        np.testing.assert_allclose(ddim.numpy(), ddpm.numpy(), rtol=1e-9, atol=1e-12)
    # and the variance of that step is the posterior variance beta~_t (Ho eq. 7)
    t = 500
    draws = torch.stack([s.ddim_step(eps[:1], t, t - 1, x_t[:1], eta=1.0,
                                     generator=torch.Generator().manual_seed(k))
                         for k in range(4000)])
    v = s.posterior_variance[t].item()
    assert abs(draws.var(0).mean().item() - v) < 5 * v * math.sqrt(2 / 4000)


def test_predictions_convert_consistently():
    for prediction in ("epsilon", "x0", "v"):
        s = NoiseSchedule.cosine(prediction=prediction, clip_sample=False)
        g = torch.Generator().manual_seed(0)
        x0 = torch.randn(4, 3, dtype=torch.float64, generator=g)
        noise = torch.randn(4, 3, dtype=torch.float64, generator=g)
        t = torch.tensor([0, 5, 500, 999])
        xt = s.add_noise(x0, noise, t)
        x0_hat, eps_hat = s.predict_x0_eps(s.target(x0, noise, t), xt, t)
        np.testing.assert_allclose(x0_hat.numpy(), x0.numpy(), rtol=1e-6, atol=1e-8)
        np.testing.assert_allclose(eps_hat.numpy(), noise.numpy(), rtol=1e-6, atol=1e-8)


def _gaussian_denoiser(schedule, mu, cov):
    """The exact E[eps | x_t] for x_0 ~ N(mu, cov): sqrt(1-abar) (abar S + (1-abar) I)^-1
    (x_t - sqrt(abar) mu)."""
    def denoise(x, t):
        ab = schedule.alphas_cumprod[t].item()
        marg = ab * cov + (1 - ab) * torch.eye(len(mu), dtype=x.dtype)
        return math.sqrt(1 - ab) * torch.linalg.solve(marg, (x - math.sqrt(ab) * mu).T).T
    return denoise


@pytest.mark.parametrize("method,steps", [("ddpm", None), ("ddim", 100)])
def test_perfect_epsilon_predictor_reproduces_gaussian_data(method, steps):
    mu = torch.tensor([0.5, -0.3], dtype=torch.float64)
    cov = torch.tensor([[0.5, 0.2], [0.2, 0.3]], dtype=torch.float64)
    s = NoiseSchedule.linear(clip_sample=False)
    n = 10_000
    x = s.sample(_gaussian_denoiser(s, mu, cov), (n, 2), steps=steps, method=method,
                 generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    m, c = x.mean(0), torch.cov(x.T)
    # Monte-Carlo standard errors: sd(mean_i) = sqrt(S_ii/n); sd(S_ij) = sqrt((S_ii S_jj + S_ij^2)/n)
    se_mean = (cov.diagonal() / n).sqrt()
    se_cov = ((cov.diagonal()[:, None] * cov.diagonal()[None] + cov ** 2) / n).sqrt()
    assert ((m - mu).abs() < 4 * se_mean).all(), (m, mu)
    assert ((c - cov).abs() < 4 * se_cov).all(), (c, cov)


def test_discretized_decoder_sums_to_one_and_matches_scipy():
    n_bins = 17
    grid = torch.linspace(-1, 1, n_bins, dtype=torch.float64)
    for mean, var in ((0.1, 0.01), (-0.95, 1e-4), (0.99, 0.3), (5.0, 0.01)):
        logp = discretized_gaussian_log_likelihood(grid, torch.full_like(grid, mean),
                                                   torch.full_like(grid, var), n_bins)
        assert logp.exp().sum().item() == pytest.approx(1.0, abs=1e-10)
        h, sd = 1 / (n_bins - 1), math.sqrt(var)
        # P(a < X < b), through the survival function above the mean (no cancellation)
        cdf, sf = (lambda z: stats.norm.cdf(z, mean, sd)), (lambda z: stats.norm.sf(z, mean, sd))
        ref = [cdf(x + h) - cdf(x - h) if x <= mean else sf(x - h) - sf(x + h)
               for x in grid.numpy()]
        ref[0], ref[-1] = cdf(-1 + h), sf(1 - h)
        finite = np.array(ref) > 1e-300
        np.testing.assert_allclose(logp.numpy()[finite], np.log(np.array(ref)[finite]),
                                   rtol=1e-7)
    # the upper tail keeps its precision where 1 - Phi would round to zero in float64
    far = discretized_gaussian_log_likelihood(torch.tensor([0.5], dtype=torch.float64),
                                              torch.tensor([-0.5], dtype=torch.float64),
                                              torch.tensor([0.0025], dtype=torch.float64), 17)
    ref = stats.norm.logsf((0.5 - 1 / 16 + 0.5) / 0.05) + math.log1p(
        -math.exp(stats.norm.logsf((0.5 + 1 / 16 + 0.5) / 0.05)
                  - stats.norm.logsf((0.5 - 1 / 16 + 0.5) / 0.05)))
    assert far.item() == pytest.approx(ref, rel=1e-8)


def test_vlb_terms_and_unbiased_timestep_subsampling():
    s = NoiseSchedule.linear(20, beta_start=1e-3, beta_end=0.2)
    g = torch.Generator().manual_seed(0)
    x0 = (torch.randint(0, 17, (3, 4), generator=g) / 8.0 - 1).double()
    # a crude denoiser: predicts eps from x_t as if x_0 were 0
    denoise = lambda x, t: x * math.sqrt(1 - s.alphas_cumprod[t].item())  # noqa: E731
    exact = s.vlb(denoise, x0, n_bins=17, generator=torch.Generator().manual_seed(1))
    # the prior term alone is KL(N(sqrt(abar_T) x0, 1-abar_T) || N(0, 1)) by torch.distributions
    abT = s.alphas_cumprod[-1]
    prior = torch.distributions.kl_divergence(
        torch.distributions.Normal(abT.sqrt() * x0, (1 - abT).sqrt()),
        torch.distributions.Normal(0.0, 1.0)).sum(1)
    assert (exact > prior).all()
    # the subsampled estimate averages to the exact sum (each term is itself an MC draw over
    # x_t, so compare both averages over many seeds)
    exacts = torch.stack([s.vlb(denoise, x0, n_bins=17, generator=torch.Generator().manual_seed(k))
                          for k in range(30)])
    estimates = torch.stack([s.vlb(denoise, x0, n_bins=17, timesteps=5,
                                   generator=torch.Generator().manual_seed(k)) for k in range(300)])
    se = (estimates.var(0) / 300 + exacts.var(0) / 30).sqrt()
    assert ((estimates.mean(0) - exacts.mean(0)).abs() < 4 * se).all()
    assert nats_to_bits_per_dim(exact, 4).numpy() == pytest.approx(exact.numpy() / (4 * math.log(2)))


def test_timestep_embedding_is_the_sinusoid():
    t = torch.tensor([0, 7, 999])
    emb = timestep_embedding(t, 6)
    freqs = [10000 ** (-k / 3) for k in range(3)]
    ref = [[math.sin(tt * f) for f in freqs] + [math.cos(tt * f) for f in freqs] for tt in (0, 7, 999)]
    np.testing.assert_allclose(emb.numpy(), ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("size,levels", [(8, 2), (28, 3), (32, 3), (16, 3)])
def test_unet_keeps_the_image_shape_at_the_supported_sizes(size, levels):
    mults = default_channel_mults(size)
    assert len(mults) == levels
    net = UNet(2, 8, mults, 1, n_classes=3)
    x = torch.randn(2, 2, size, size)
    out = net(x, torch.tensor([0, 999]), torch.tensor([1, 3]))  # 3 = the null class
    assert out.shape == x.shape


def test_guided_output_combines_conditional_and_null_outputs():
    torch.manual_seed(0)
    net = DenoisingMLP(3, hidden=16, n_blocks=1, n_classes=4)
    x, t, y = torch.randn(5, 3), torch.full((5,), 3), torch.tensor([0, 1, 2, 3, 0])
    cond, uncond = net(x, t, y), net(x, t, torch.full_like(y, 4))
    # a model without labels uses the null class
    torch.testing.assert_close(net(x, t), uncond)
    torch.testing.assert_close(guided_output(net, x, t, y, 0.0, 4), cond)
    # Ho & Salimans eq. 6 with w = 2
    torch.testing.assert_close(guided_output(net, x, t, y, 2.0, 4), 3 * cond - 2 * uncond)


@pytest.mark.parametrize("kind,name", [("linear", "linear"), ("cosine", "squaredcos_cap_v2")])
def test_schedule_and_steps_equal_diffusers(kind, name):
    diffusers = pytest.importorskip("diffusers")
    ours = getattr(NoiseSchedule, kind)(1000, clip_sample=False)
    ref = diffusers.DDPMScheduler(num_train_timesteps=1000, beta_schedule=name, clip_sample=False,
                                  variance_type="fixed_small")
    g = torch.Generator().manual_seed(0)
    x, noise, out = (torch.randn(3, 1, 4, 4, generator=g) for _ in range(3))
    # diffusers keeps its tables in float32: the cumulative product of 1000 factors carries
    # a relative error ~1e-5, which x0 = (x_t - sqrt(1 - abar) eps) / sqrt(abar) amplifies
    # up to 1 / sqrt(abar_T) ~ 160 times near t = T
    tol = dict(rtol=1e-4, atol=5e-4)
    np.testing.assert_allclose(ours.alphas_cumprod.numpy(), ref.alphas_cumprod.double().numpy(),
                               rtol=1e-4)
    for t in (0, 1, 2, 500, 998, 999):
        tt = torch.full((3,), t)
        torch.testing.assert_close(ours.add_noise(x, noise, tt), ref.add_noise(x, noise, tt))
        # the same noise draw from the same generator: the same ancestral sample
        torch.testing.assert_close(
            ours.step(out, t, x, torch.Generator().manual_seed(t)),
            ref.step(out, t, x, generator=torch.Generator().manual_seed(t)).prev_sample, **tol)
    ddim = diffusers.DDIMScheduler(num_train_timesteps=1000, beta_schedule=name,
                                   clip_sample=False, set_alpha_to_one=True)
    ddim.set_timesteps(50)  # diffusers' "leading" spacing: 980, 960, ..., 0
    for t in ddim.timesteps.tolist():
        torch.testing.assert_close(ours.ddim_step(out, t, t - 20, x),
                                   ddim.step(out, t, x, eta=0.0).prev_sample, **tol)
