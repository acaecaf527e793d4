"""The DDPM estimator: shapes and ranges, exact resume, save/load, data parallelism, errors,
and (slow) sample quality on the bundled digits by the shipped classifier."""

import copy

import numpy as np
import pytest
import torch
import torch.distributed as dist

import bayesdl
from bayesdl.datasets import load_digits_images
from bayesdl.generative import DDPM
from bayesdl.generative.diffusion import NoiseSchedule, UNet
from bayesdl.train import Trainer
from tests._distributed import assert_ranks_equal_single, fits_on_two_ranks


def _digits(n=64):
    X, y = load_digits_images()
    return X[:n], y[:n]


def _tiny(**kw):
    params = dict(n_timesteps=20, base_channels=8, max_epochs=2, batch_size=16,
                  random_state=0)
    return DDPM(**{**params, **kw})


def _weights(model):
    return {k: v.detach().numpy().copy() for k, v in model.module_.state_dict().items()}


def test_fit_and_sample_keep_the_training_shape_and_range():
    X, y = _digits()
    X3 = X * 0.5 + 0.25  # a range other than [0, 1]: [0.25, 0.75]
    model = _tiny().fit(X3)
    assert isinstance(model.module_, UNet)
    s = model.sample(5, random_state=1)
    assert s.shape == (5, 8, 8) and s.min() >= 0.25 and s.max() <= 0.75
    # DDIM over fewer steps gives the same shape; a fixed seed gives the same samples
    np.testing.assert_array_equal(model.sample(3, steps=5, random_state=2),
                                  model.sample(3, steps=5, random_state=2))
    # a conditional model on (N, 1, H, W) images returns (N, 1, H, W)
    cond = _tiny(max_epochs=1).fit(X[:, None], y)
    assert cond.sample(4, y=3, guidance=2.0, steps=4).shape == (4, 1, 8, 8)
    assert cond.sample(4, steps=4).shape == (4, 1, 8, 8)  # the null class: unconditional


def test_the_loss_is_the_simple_loss_of_the_schedule_and_training_lowers_it():
    X, _ = _digits(128)
    model = _tiny(max_epochs=4, learning_rate=3e-3).fit(X)
    losses = [h["loss"] for h in model.history_]
    assert model.n_iter_ == 4 and losses[-1] < losses[0]
    # the recorded loss is E||eps - eps_hat||^2 of the untrained network on the first epoch:
    # it starts near the variance of eps (1) for a network whose output starts near 0
    assert 0.3 < losses[0] < 1.5


def test_resume_continues_to_the_same_weights(tmp_path, monkeypatch):
    X, y = _digits()
    full = _tiny(max_epochs=3).fit(X, y)
    save = Trainer._save

    def save_then_die(self, epoch, *args):  # the process is killed after epoch 0's checkpoint
        save(self, epoch, *args)
        if epoch == 0:
            raise KeyboardInterrupt

    monkeypatch.setattr(Trainer, "_save", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        _tiny(max_epochs=3, checkpoint_dir=tmp_path).fit(X, y)
    monkeypatch.undo()
    resumed = _tiny(max_epochs=3, checkpoint_dir=tmp_path, resume=True).fit(X, y)
    for name, w in _weights(full).items():
        np.testing.assert_array_equal(_weights(resumed)[name], w, err_msg=name)
    assert resumed.history_ == full.history_


def test_save_load_round_trip(tmp_path):
    X, y = _digits()
    model = _tiny(max_epochs=1, schedule="cosine", prediction="v").fit(X, y)
    bayesdl.save(model, tmp_path / "ddpm.safetensors")
    loaded = bayesdl.load(tmp_path / "ddpm.safetensors")
    assert loaded.get_params() == model.get_params()
    np.testing.assert_array_equal(loaded.classes_, model.classes_)
    np.testing.assert_array_equal(loaded.sample(4, y=[0, 1, 2, 3], guidance=1.0, steps=3,
                                                random_state=5),
                                  model.sample(4, y=[0, 1, 2, 3], guidance=1.0, steps=3,
                                               random_state=5))


def _fit_distributed(model, X, y):
    model.fit(X, y)
    return _weights(model)


def _worker(rank, port, out):
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=2)
    try:
        X, y = _digits(32)
        # every rank gets the whole data; the Trainer's sampler gives each half of a batch
        out[rank] = [_fit_distributed(_tiny(batch_size=8, dtype="float64"), X, y)]
    finally:
        dist.destroy_process_group()


def test_two_process_gloo_fit_equals_one_process_with_the_same_global_batch():
    X, y = _digits(32)
    # float64, so that the different order of the gradient sums stays far below the tolerance
    single = [_fit_distributed(_tiny(batch_size=16, dtype="float64"), X, y)]
    assert_ranks_equal_single(fits_on_two_ranks(_worker), single, rtol=1e-9, atol=1e-11)


def test_rows_train_a_denoising_mlp_and_the_bound_is_per_row():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 2)) @ np.array([[1.0, 0.5], [0.0, 0.5]])
    model = DDPM(n_timesteps=30, max_epochs=3, random_state=0).fit(X)
    assert model.sample(7, random_state=0).shape == (7, 2)
    Xq = np.clip(X[:5], X.min(0), X.max(0))
    full = model.score_samples(Xq, timesteps=4)
    # a row's bound does not depend on the rows evaluated with it
    np.testing.assert_allclose(model.score_samples(Xq[2:3], timesteps=4), full[2:3], rtol=1e-10)
    assert model.bits_per_dim(Xq, timesteps=4) == pytest.approx(-full.mean() / (2 * np.log(2)))


def test_the_bound_is_the_schedules_variational_bound_of_the_network():
    X, _ = _digits(32)
    model = _tiny(max_epochs=1).fit(X)
    got = model.score_samples(X[:4], n_bins=17)
    # exact over all T = 20 terms: NoiseSchedule.vlb of the float64 network on the data mapped
    # from [0, 1] to [-1, 1], with the noise stream the estimator draws from its random_state
    net = copy.deepcopy(model.module_).double()
    with torch.no_grad():
        ref = NoiseSchedule.linear(20).vlb(
            lambda x, t: net(x, torch.full((len(x),), t)),
            torch.as_tensor(X[:4, None] * 2 - 1, dtype=torch.float64), n_bins=17,
            generator=model._torch_generator())
    np.testing.assert_allclose(got, -ref.numpy(), rtol=1e-10)
    # the bound is below log 1 = 0 for discrete data, and in bits/dim positive and finite
    assert (got < 0).all() and 0 < model.bits_per_dim(X[:4], n_bins=17) < 20


def test_bad_input_gets_clear_errors():
    X, y = _digits()
    uncond = _tiny(max_epochs=1).fit(X)
    with pytest.raises(ValueError, match="guidance needs a class-conditional model"):
        uncond.sample(2, guidance=2.0)
    with pytest.raises(ValueError, match="fitted without labels"):
        uncond.sample(2, y=1)
    cond = _tiny(max_epochs=1).fit(X, y)
    # a refit without labels forgets the classes
    assert not hasattr(_tiny(max_epochs=1).fit(X, y).fit(X), "classes_")
    with pytest.raises(ValueError, match="guidance needs labels"):
        cond.sample(2, guidance=1.0)
    with pytest.raises(ValueError, match="label"):
        cond.sample(2, y=12)  # digits have labels 0..9
    with pytest.raises(ValueError, match="2 samples"):
        cond.sample(2, y=[1, 2, 3])
    with pytest.raises(ValueError, match="guidance must be a weight"):
        cond.sample(2, y=1, guidance=-1.0)
    with pytest.raises(ValueError, match="steps"):
        cond.sample(2, steps=100)  # more than T = 20
    with pytest.raises(ValueError, match="size|shape"):
        cond.score_samples(np.zeros((3, 7, 7)))
    with pytest.raises(ValueError, match="range"):
        cond.score_samples(X[:3] + 2.0)
    with pytest.raises(ValueError, match="halved"):
        _tiny(channel_mults=(1, 2, 2, 2, 2)).fit(X)  # 8 pixels cannot be halved 4 times


@pytest.mark.slow
def test_trained_ddpm_covers_every_digit():
    from bayesdl.metrics import class_histogram

    X, _ = load_digits_images()
    model = DDPM(max_epochs=20, random_state=0).fit(X)
    shares = class_histogram(model.sample(1000, steps=50, random_state=0))  # DDIM-50
    assert len(shares) == 10 and shares.min() >= 0.05 and shares.max() <= 0.15, shares


@pytest.mark.slow
def test_guided_samples_are_classified_as_their_class():
    from bayesdl.metrics import conditional_accuracy

    X, y = load_digits_images()
    model = DDPM(max_epochs=20, random_state=0).fit(X, y)
    labels = np.arange(500) % 10
    samples = model.sample(500, y=labels, guidance=2.0, steps=50, random_state=1)
    assert conditional_accuracy(samples, labels) >= 0.9
