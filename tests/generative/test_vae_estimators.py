"""The AutoEncoder / VAE / ConditionalVAE estimators: bad input, exact resume, save/load,
the linear VAE against probabilistic PCA, and the IWAE estimate on a trained model."""

import numpy as np
import pytest
import torch
from scipy.stats import multivariate_normal

import bayesdl
from bayesdl.datasets.images import load_digits_images
from bayesdl.decomposition import ProbabilisticPCA
from bayesdl.generative import AutoEncoder, ConditionalVAE, VAE

SMALL = dict(latent_dim=2, hidden_sizes=(32,), max_epochs=2, batch_size=64, random_state=0)


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits_images()
    return X[:300], y[:300]


@pytest.mark.parametrize("cls", [AutoEncoder, VAE])
def test_bad_input_is_refused_with_the_fix(cls, digits):
    X, _ = digits
    with pytest.raises(ValueError, match="divide by 255"):
        cls(**SMALL).fit(X * 255)
    bad = X.copy()
    bad[3, 2, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        cls(**SMALL).fit(bad)
    with pytest.raises(ValueError, match="at least 8x8"):
        cls(**{**SMALL, "architecture": "conv"}).fit(X[:, :6, :6])
    with pytest.raises(ValueError, match="architecture='mlp' for table rows"):
        cls(**{**SMALL, "architecture": "conv"}).fit(X.reshape(len(X), -1))
    with pytest.raises(ValueError, match="binarize='dynamic' makes binary data"):
        cls(**{**SMALL, "decoder": "gaussian", "binarize": "dynamic"}).fit(X)
    conv = cls(**{**SMALL, "architecture": "conv", "max_epochs": 1}).fit(X)
    with pytest.raises(ValueError, match=r"fitted on samples of shape \(8, 8\).*\(10, 10\)"):
        conv.transform(np.zeros((4, 10, 10)))
    # a Gaussian decoder models any real values
    cls(**{**SMALL, "decoder": "gaussian", "max_epochs": 1}).fit(X * 255 - 3)


def test_conditional_and_iwae_options_are_checked(digits):
    X, y = digits
    with pytest.raises(ValueError, match="requires y"):
        ConditionalVAE(**SMALL).fit(X)
    with pytest.raises(ValueError, match="use beta=1 and kl_warmup=0"):
        VAE(**{**SMALL, "n_importance_samples": 5, "beta": 0.5}).fit(X)
    cvae = ConditionalVAE(**SMALL).fit(X, y)
    with pytest.raises(ValueError, match=r"label\(s\) \[11\] are not among"):
        cvae.sample(3, y=11)
    with pytest.raises(ValueError, match="unconditional"):
        VAE(**SMALL).fit(X).sample(3, y=1)


@pytest.mark.parametrize("options", [
    dict(binarize="dynamic", kl_warmup=1.5),  # RNG draws in the loss and a step-dependent beta
    dict(n_importance_samples=3, architecture="conv"),
])
def test_training_resumes_exactly_after_an_interrupt(options, digits, tmp_path):
    X, _ = digits
    params = {**SMALL, **options, "max_epochs": 4}
    whole = VAE(**params).fit(X)
    VAE(**{**params, "max_epochs": 2, "checkpoint_dir": tmp_path}).fit(X)  # "interrupted"
    resumed = VAE(**{**params, "checkpoint_dir": tmp_path, "resume": True}).fit(X)
    for name, value in whole.module_.state_dict().items():
        assert torch.equal(value, resumed.module_.state_dict()[name]), name
    assert [h["loss"] for h in resumed.history_] == [h["loss"] for h in whole.history_]


@pytest.mark.parametrize("cls, options", [
    (AutoEncoder, dict(noise="masking", noise_level=0.2)),
    (VAE, dict(decoder="categorical", architecture="conv")),
    (VAE, dict(decoder="gaussian", gaussian_variance="learned")),
    (ConditionalVAE, dict(decoder="continuous_bernoulli")),
])
def test_save_load_round_trip(cls, options, digits, tmp_path):
    X, y = digits
    model = cls(**SMALL, **options)
    model.fit(X, y) if cls is ConditionalVAE else model.fit(X)
    path = bayesdl.save(model, tmp_path / "model.safetensors")
    loaded = bayesdl.load(path)
    assert type(loaded) is cls
    assert str(loaded.get_params()) == str(model.get_params()).replace("(32,)", "[32]")
    np.testing.assert_array_equal(loaded.transform(X[:20]), model.transform(X[:20]))
    np.testing.assert_array_equal(loaded.sample(7), model.sample(7))
    np.testing.assert_array_equal(loaded.reconstruct(X[:5]), model.reconstruct(X[:5]))
    if cls is not AutoEncoder:
        np.testing.assert_array_equal(loaded.score_samples(X[:10]), model.score_samples(X[:10]))


def test_outputs_have_the_training_shape_and_range(digits):
    X, y = digits
    vae = VAE(**SMALL).fit(X)
    samples = vae.sample(9)
    assert samples.shape == (9, 8, 8) and samples.min() >= 0 and samples.max() <= 1
    binary = vae.sample(9, noise=True)
    assert set(np.unique(binary)) <= {0.0, 1.0}
    assert vae.transform(X).shape == (300, 2) and vae.reconstruct(X[:4]).shape == (4, 8, 8)
    posterior = vae.encode(X[:4])
    np.testing.assert_allclose(posterior.mean.numpy(), vae.transform(X[:4]))
    np.testing.assert_allclose(vae.decode(vae.transform(X[:4])), vae.reconstruct(X[:4]))
    rows = VAE(**{**SMALL, "decoder": "gaussian"}).fit(X.reshape(300, -1) * 4 - 2)
    assert rows.sample(5).shape == (5, 64) and rows.sample(5).min() >= -2
    cvae = ConditionalVAE(**SMALL).fit(X, y)
    assert cvae.sample(4, y=[3, 3, 5, 0]).shape == (4, 8, 8)
    # without y a conditional model marginalises the label: log sum_y p(y) p(x | y)
    per_class = np.stack([cvae.log_likelihood(X[:6], np.full(6, c), n_samples=50)
                          for c in cvae.classes_])
    marginal = cvae.log_likelihood(X[:6], n_samples=50)
    expected = np.logaddexp.reduce(per_class + np.log(cvae.class_prior_)[:, None], axis=0)
    np.testing.assert_allclose(marginal, expected, rtol=1e-5)


@pytest.mark.slow  # 2000 Adam steps: ~2 s of CPU, ~10 s on a loaded machine
def test_linear_gaussian_vae_estimator_reaches_the_ppca_log_likelihood():
    """Lucas et al. (2019): the ELBO of a trained linear VAE approaches the PPCA optimum
    (tests/generative/test_vae_objectives.py checks it at the optimum itself)."""
    rng = np.random.default_rng(0)
    W = rng.normal(size=(5, 2)) * np.array([3.0, 1.5])
    X = rng.normal(size=(500, 2)) @ W.T + 0.5 * rng.normal(size=(500, 5))
    ppca = ProbabilisticPCA(2).fit(X)
    C = ppca.components_.T @ ppca.components_ + ppca.noise_variance_ * np.eye(5)
    log_px = multivariate_normal(ppca.mean_, C).logpdf(X).mean()  # the optimum of the ELBO
    vae = VAE(latent_dim=2, hidden_sizes=(), decoder="gaussian", max_epochs=1000,
              batch_size=250, learning_rate=1e-2, dtype="float64", random_state=0).fit(X)
    elbo = vae.elbo(X, n_samples=1000).mean()
    # a bound: not above log p(x) beyond Monte-Carlo error, and within 0.02 nats of it
    assert -0.005 < log_px - elbo < 0.02
    # the IWAE estimate closes most of the remaining gap
    iwae = vae.log_likelihood(X, n_samples=1000).mean()
    assert elbo < iwae and abs(log_px - iwae) < 0.005
