"""GANs: the losses against closed forms and finite differences, the networks' sizes and
initialisation, exact resumption and 2-process training through the Trainer's step hook."""

import numpy as np
import pytest
import torch

from bayesdl.generative.gan import (AdversarialNetworks, AdversarialStep, DCGANCritic,
                                    DCGANGenerator, MLPCritic, MLPGenerator, discriminator_loss,
                                    gradient_penalty, info_loss, minimax_generator_loss,
                                    nonsaturating_generator_loss, update_ema_,
                                    wasserstein_critic_loss)
from bayesdl.train import Trainer, load_checkpoint
from tests._distributed import assert_ranks_equal_single, fits_on_two_ranks


# -- losses ----------------------------------------------------------------------------------
def test_gradient_penalty_matches_a_finite_difference_gradient_norm():
    torch.manual_seed(0)
    critic = MLPCritic((5,), hidden=(7,)).double()
    real, fake = torch.randn(4, 5, dtype=torch.float64), torch.randn(4, 5, dtype=torch.float64)
    eps = torch.rand(4, dtype=torch.float64)
    penalty = gradient_penalty(critic, real, fake, eps)

    x_hat = eps[:, None] * real + (1 - eps[:, None]) * fake  # (4, 5)
    h = 1e-6
    norms = []
    for i in range(4):  # central differences of f at x_hat_i, coordinate by coordinate
        grad = [(critic(x_hat[i:i + 1] + h * e) - critic(x_hat[i:i + 1] - h * e)).item() / (2 * h)
                for e in torch.eye(5, dtype=torch.float64)]
        norms.append(np.linalg.norm(grad))
    expected = np.mean((np.array(norms) - 1) ** 2)
    assert penalty.item() == pytest.approx(expected, rel=1e-7)
    # the penalty is differentiable in the critic's weights (it trains the critic; biases
    # of a piecewise-linear net do not change its input gradient)
    penalty.backward()
    assert all(m.weight.grad.abs().sum() > 0 for m in critic.modules()
               if isinstance(m, torch.nn.Linear))


def test_nonsaturating_generator_loss_keeps_its_gradient_where_minimax_saturates():
    # at logit a: d/da -log D = -(1 - D) -> -1 as D = sigmoid(a) -> 0; d/da log(1 - D) = -D -> 0
    a = torch.tensor([-30.0, -10.0, -3.0, 0.0, 2.0], dtype=torch.float64, requires_grad=True)
    (g_ns,) = torch.autograd.grad(nonsaturating_generator_loss(a) * len(a), a)
    (g_mm,) = torch.autograd.grad(minimax_generator_loss(a) * len(a), a)
    d = torch.sigmoid(a.detach())
    torch.testing.assert_close(g_ns, -(1 - d), rtol=1e-12, atol=0)
    torch.testing.assert_close(g_mm, -d, rtol=1e-12, atol=0)
    assert g_ns[0].item() == pytest.approx(-1.0, abs=1e-12)  # D(G(z)) = 1e-13: full strength
    assert abs(g_mm[0].item()) < 1e-12  # ... where the minimax gradient has vanished
    # same fixed point: both push a up (D(G(z)) towards 1)
    assert (g_ns < 0).all() and (g_mm < 0).all()


def test_discriminator_and_wasserstein_losses_against_their_definitions():
    real = torch.tensor([2.0, -1.0, 0.5], dtype=torch.float64)
    fake = torch.tensor([-0.3, 1.5], dtype=torch.float64)
    d_real, d_fake = 1 / (1 + np.exp(-real.numpy())), 1 / (1 + np.exp(-fake.numpy()))
    expected = -np.mean(np.log(d_real)) - np.mean(np.log(1 - d_fake))  # Goodfellow eq. 1
    assert discriminator_loss(real, fake).item() == pytest.approx(expected, rel=1e-12)
    assert minimax_generator_loss(fake).item() == pytest.approx(np.mean(np.log(1 - d_fake)))
    assert nonsaturating_generator_loss(fake).item() == pytest.approx(-np.mean(np.log(d_fake)))
    assert wasserstein_critic_loss(real, fake).item() == pytest.approx(0.6 - 0.5)


def test_info_loss_is_the_negative_log_likelihood_of_the_codes():
    torch.manual_seed(1)
    q = torch.randn(6, 4 + 2, dtype=torch.float64)  # 4 categories, 2 continuous codes
    cat, cont = torch.randint(0, 4, (6,)), torch.rand(6, 2, dtype=torch.float64) * 2 - 1
    log_q = (torch.distributions.Categorical(logits=q[:, :4]).log_prob(cat)
             + torch.distributions.Normal(q[:, 4:], 1.0).log_prob(cont).sum(1))
    assert info_loss(q, cat, cont).item() == pytest.approx(-log_q.mean().item(), rel=1e-12)
    assert info_loss(q[:, 4:], None, cont).item() == pytest.approx(
        -torch.distributions.Normal(q[:, 4:], 1.0).log_prob(cont).sum(1).mean().item())


def test_ema_update_against_the_formula_with_warm_up():
    torch.manual_seed(0)
    live, average = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    before = average.weight.detach().clone()
    update_ema_(average, live, decay=0.999, n_updates=5)
    d = min(0.999, 6 / 15)
    torch.testing.assert_close(average.weight, d * before + (1 - d) * live.weight.detach())


# -- networks ---------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 28, 28), (3, 32, 32), (1, 7, 7)])
def test_dcgan_networks_fit_the_image_size(shape):
    g, c = DCGANGenerator(16, shape, base_channels=8), DCGANCritic(shape, 10, base_channels=8)
    x = g(torch.randn(3, 16))
    assert x.shape == (3, *shape) and x.abs().max() <= 1
    assert c(x, torch.zeros(3, 10)).shape == (3,)


def test_mlp_generator_trains_on_a_batch_of_one_with_its_running_statistics():
    torch.manual_seed(0)
    g = MLPGenerator(4, (3,), hidden=(5,))
    g(torch.randn(16, 4))  # training batches move the running statistics
    z = torch.randn(1, 4)
    one = g(z)  # a last batch of one sample: normalised by the running statistics
    torch.testing.assert_close(one, g.eval()(z))


def test_dcgan_initialisation_is_normal_with_std_0_02():
    g = DCGANGenerator(100, (3, 32, 32), base_channels=64)
    w = torch.cat([m.weight.detach().ravel() for m in g.modules()
                   if isinstance(m, (torch.nn.ConvTranspose2d, torch.nn.Linear))])
    se = 0.02 / np.sqrt(2 * len(w))  # standard error of a normal sample's std
    assert w.std().item() == pytest.approx(0.02, abs=5 * se)
    assert abs(w.mean().item()) < 5 * 0.02 / np.sqrt(len(w))


# -- training through the Trainer's step hook -----------------------------------------------------
def _digit_like(n=48, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 3
    x = torch.tanh(torch.randn(n, 6, generator=g, dtype=dtype) + y[:, None].to(dtype))
    return x, y


def _gan(loss, **kw):
    torch.manual_seed(0)
    return AdversarialNetworks(MLPGenerator(4 + 3 + 2 + 1, (6,), hidden=(8,), batch_norm=False),
                               MLPCritic((6,), n_cond=3, hidden=(8,)), latent_dim=4, n_classes=3,
                               n_categorical=2, n_continuous=1, **kw).double()


def _trainer(model, loss, batch_size, **kw):
    opt = (lambda ps: torch.optim.Adam(ps, 1e-3, betas=(0.0, 0.9)))
    return Trainer(model, step_fn=AdversarialStep(loss, n_critic=2), progress=False, seed=1,
                   optimizers={"critic": lambda m: opt([*m.critic.parameters(),
                                                        *m.q_head.parameters()]),
                               "generator": lambda m: opt(m.generator.parameters())},
                   max_epochs=4, batch_size=batch_size, **kw)


def test_gan_resumes_exactly_from_a_checkpoint(tmp_path):
    data = _digit_like()
    full = _gan("wasserstein-gp")
    reference = _trainer(full, "wasserstein-gp", 12).fit(data)
    assert {"critic_loss", "generator_loss", "wasserstein"} <= reference.history[0].keys()

    step = AdversarialStep("wasserstein-gp", n_critic=2)

    def interrupted(model, batch, s, optimizers):
        if s.epoch == 2 and s.batch_index == 1:
            raise KeyboardInterrupt
        return step(model, batch, s, optimizers)

    run = _trainer(_gan("wasserstein-gp"), "wasserstein-gp", 12, checkpoint_dir=tmp_path)
    run.step_fn = interrupted
    with pytest.raises(KeyboardInterrupt):
        run.fit(data)
    tensors, meta = load_checkpoint(tmp_path / "last.safetensors")
    assert meta["epoch"] == 1 and set(meta["optimizer"]) == {"critic", "generator"}
    assert any(k.startswith("model.generator_ema.") for k in tensors)
    resumed = _gan("wasserstein-gp")
    torch.nn.init.zeros_(resumed.generator.net[0].weight)  # a fresh process's other weights
    after = _trainer(resumed, "wasserstein-gp", 12, checkpoint_dir=tmp_path, resume=True)
    after.fit(data)
    for (k, a), b in zip(full.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), k
    assert after.history == reference.history


def _fitted(model):
    return {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}


def _worker(rank, port, out):
    import torch.distributed as dist
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=2)
    try:
        model = _gan("wasserstein-gp")
        history = _trainer(model, "wasserstein-gp", 8).fit(_digit_like()).history
        out[rank] = [_fitted(model), {k: np.array([h[k] for h in history])
                                      for k in history[0]}]
    finally:
        dist.destroy_process_group()


@pytest.mark.slow  # spawning two torch processes takes ~30 s on 2 shared cores
def test_two_process_gloo_run_equals_one_process_with_the_same_global_batch():
    # conditional InfoGAN with a gradient penalty: labels, codes, double backward, EMA
    model = _gan("wasserstein-gp")
    history = _trainer(model, "wasserstein-gp", 16).fit(_digit_like()).history
    single = [_fitted(model), {k: np.array([h[k] for h in history]) for k in history[0]}]
    assert_ranks_equal_single(fits_on_two_ranks(_worker), single, rtol=1e-9, atol=1e-12)


# -- estimators ---------------------------------------------------------------------------------
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

import bayesdl  # noqa: E402
from bayesdl.datasets.images import load_digits_images  # noqa: E402
from bayesdl.generative import DCGAN, GAN, WGANGP  # noqa: E402
from tests._estimators import small_instance  # noqa: E402


@parametrize_with_checks([small_instance(GAN), small_instance(DCGAN), small_instance(WGANGP)])
def test_sklearn_compatible(estimator, check):
    check(estimator)


def _digits(n=120):
    X, y = load_digits_images()
    return X[:n], y[:n]


def _small(cls, **kw):
    opts = dict(latent_dim=8, max_epochs=2, batch_size=32, random_state=0)
    opts.update(kw)
    return cls(**opts)


def test_samples_have_the_training_shape_and_range():
    X, y = _digits()
    X = 0.2 + 0.4 * X  # (N, 8, 8) in [0.2, 0.6]
    for est in (_small(GAN, hidden=(16,)), _small(DCGAN, base_channels=4)):
        s = est.fit(X).sample(9)
        assert s.shape == (9, 8, 8) and s.dtype == np.float32
        assert s.min() >= 0.2 - 1e-6 and s.max() <= 0.6 + 1e-6
    rows = np.random.default_rng(0).normal(3.0, 2.0, size=(60, 5))  # real rows: any range
    est = _small(GAN, hidden=(16,)).fit(rows)
    assert est.sample(4).shape == (4, 5)
    # the linear map to the generator's [-1, 1] and back is the identity
    x = est._to_torch(rows)
    torch.testing.assert_close(est._from_model_space(est._to_model_space(x)), x)
    assert est._to_model_space(x).min() == -1 and est._to_model_space(x).max() == 1


def test_conditional_infogan_samples_and_round_trips_through_save(tmp_path):
    X, y = _digits()
    est = _small(DCGAN, base_channels=4, conditional=True, info_codes=(3, 2)).fit(X, y)
    a = est.sample(6, y=[0, 1, 2, 3, 4, 5], categorical=2, continuous=[0.5, -0.5],
                   random_state=1)
    b = bayesdl.load(bayesdl.save(est, tmp_path / "gan.safetensors")).sample(
        6, y=[0, 1, 2, 3, 4, 5], categorical=2, continuous=[0.5, -0.5], random_state=1)
    np.testing.assert_array_equal(a, b)
    # the label and the codes reach the generator: changing them changes the sample
    c = est.sample(6, y=9, categorical=2, continuous=[0.5, -0.5], random_state=1)
    assert not np.allclose(a, c)
    assert est.history_[-1].keys() == {"epoch", "critic_loss", "generator_loss", "info_loss"}


def test_estimator_resumes_exactly_from_its_checkpoint(tmp_path):
    X, _ = _digits(96)
    full = _small(WGANGP, base_channels=4, max_epochs=3, n_critic=2).fit(X)
    _small(WGANGP, base_channels=4, max_epochs=1, n_critic=2, checkpoint_dir=tmp_path).fit(X)
    resumed = _small(WGANGP, base_channels=4, max_epochs=3, n_critic=2, checkpoint_dir=tmp_path,
                     resume=True).fit(X)
    for (k, a), b in zip(full.module_.state_dict().items(),
                         resumed.module_.state_dict().values()):
        assert torch.equal(a, b), k
    assert resumed.history_ == full.history_


def test_bad_input_gets_clear_errors():
    X, y = _digits(60)
    est = _small(GAN, hidden=(8,), conditional=True).fit(X, y)
    with pytest.raises(ValueError, match="no guidance weight.*DDPM"):
        est.sample(4, y=1, guidance=2.0)
    with pytest.raises(ValueError, match=r"label\(s\) \[12\] are not among the classes"):
        est.sample(4, y=12)
    with pytest.raises(ValueError, match="one value or 4 values"):
        est.sample(4, y=[1, 2])
    with pytest.raises(ValueError, match="n must be a positive integer"):
        est.sample(0)
    with pytest.raises(ValueError, match="unconditional"):
        _small(GAN, hidden=(8,)).fit(X, y).sample(3, y=1)
    with pytest.raises(ValueError, match="needs labels"):
        _small(GAN, conditional=True).fit(X)
    with pytest.raises(ValueError, match="divide by 255"):
        _small(GAN).fit(X * 255)
    with pytest.raises(ValueError, match="info_codes must be"):
        _small(GAN, info_codes=(1, 2)).fit(X)
    with pytest.raises(ValueError, match="categorical must be integers in"):
        _small(GAN, hidden=(8,), info_codes=(3, 0)).fit(X).sample(2, categorical=3)
    with pytest.raises(ValueError, match="continuous must have 0 values"):
        est.sample(2, y=1, continuous=[0.1])
    with pytest.raises(ValueError, match="greyscale images"):
        _small(DCGAN).fit(X[:, :, :, None, None])


def test_resuming_on_images_of_another_size_is_refused(tmp_path):
    X, _ = _digits(40)
    _small(DCGAN, base_channels=4, max_epochs=1, checkpoint_dir=tmp_path).fit(X)
    bigger = np.kron(X, np.ones((1, 2, 2)))  # (40, 16, 16)
    with pytest.raises(ValueError, match="written for another model.*same model settings and "
                                         "data"):
        _small(DCGAN, base_channels=4, checkpoint_dir=tmp_path, resume=True).fit(bigger)


@pytest.mark.slow
def test_conditional_dcgan_on_digits_draws_the_asked_digits_far_better_than_noise():
    from bayesdl.datasets.images import split_images
    from bayesdl.metrics import frechet_classifier_distance, sample_metrics

    X, y = load_digits_images()
    train, val, test = split_images(X, y)
    fit = np.concatenate([train, val])
    model = DCGAN(latent_dim=32, base_channels=16, learning_rate=1e-3, max_epochs=18,
                  conditional=True, random_state=0).fit(X[fit], y[fit])
    labels = np.arange(1000) % 10
    samples = model.sample(1000, y=labels)
    noise = np.random.default_rng(0).uniform(size=(1000, 8, 8))
    noise_fcd = frechet_classifier_distance(X[test], noise)
    m = sample_metrics(X[test], samples, labels=labels)
    assert m["fcd"] < noise_fcd / 4, (m["fcd"], noise_fcd)
    # the label reaches the generator: the shipped classifier reads the asked digit (chance 0.1)
    assert m["conditional_accuracy"] > 0.6, m["conditional_accuracy"]
    assert (m["class_histogram"] > 0.05).all()  # every class is drawn


@pytest.mark.slow
def test_infogan_codes_carry_their_information_and_pick_up_the_digit_class():
    from bayesdl.metrics import class_histogram

    X, _ = load_digits_images()
    model = GAN(latent_dim=16, hidden=(128, 128), learning_rate=1e-3, info_codes=(10, 0),
                max_epochs=15, random_state=0).fit(X)
    # the variational bound I(c; G(z, c)) >= H(c) - info_loss nearly reaches H(c) = ln 10
    first, last = model.history_[0]["info_loss"], model.history_[-1]["info_loss"]
    assert first > 0.8 * np.log(10) and last < 0.1 * np.log(10), (first, last)
    # without labels, the categorical code picks up the digit: most codes mean most one class
    majority = [class_histogram(model.sample(200, categorical=c, random_state=c)).argmax()
                for c in range(10)]
    assert len(set(majority)) >= 7, majority


@pytest.mark.parametrize("make, optimiser, lr, betas, n_critic", [
    (lambda: DCGAN(), "Adam", 2e-4, (0.5, 0.999), 1),  # Radford et al. 2016
    (lambda: DCGAN("wasserstein-clip"), "RMSprop", 5e-5, None, 5),  # Arjovsky et al. 2017
    (lambda: WGANGP(), "Adam", 1e-4, (0.0, 0.9), 5),  # Gulrajani et al. 2017
])
def test_each_loss_trains_with_its_papers_optimiser_and_critic_steps(tmp_path, make, optimiser,
                                                                     lr, betas, n_critic):
    X, _ = _digits(96)
    est = make().set_params(latent_dim=8, base_channels=4, max_epochs=2, batch_size=32,
                            random_state=0, checkpoint_dir=tmp_path).fit(X)
    _, meta = load_checkpoint(tmp_path / "last.safetensors")
    for name in ("critic", "generator"):
        group = meta["optimizer"][name]["param_groups"][0]
        assert group["lr"] == lr and ("alpha" in group) == (optimiser == "RMSprop")
        if betas is not None:
            assert tuple(group["betas"]) == betas
    # 2 epochs of 3 batches: one generator (and EMA) update every n_critic critic updates
    assert int(est.module_.ema_updates) == 6 // n_critic
    if optimiser == "RMSprop":  # WGAN's weight clipping after every critic step
        assert max(p.abs().max().item() for p in est.module_.critic.parameters()) <= 0.01
