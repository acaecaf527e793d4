"""Trained autoencoders and VAEs on the digits: samples judged by the shipped digits classifier
(bayesdl.metrics), denoising.

Slow: each test trains models on the digits for ~3-5 s of CPU time."""

import numpy as np
import pytest

from bayesdl.datasets.images import load_digits_images, split_images
from bayesdl.generative import AutoEncoder, ConditionalVAE, VAE
from bayesdl.metrics import digits_logits, frechet_classifier_distance, sample_metrics

TRAIN = dict(max_epochs=30, learning_rate=3e-3, batch_size=64, random_state=0)


@pytest.fixture(scope="module")
def split():
    X, y = load_digits_images()
    train, _, test = split_images(X, y)
    return X[train], y[train], X[test]


@pytest.mark.slow
def test_conditional_vae_samples_are_classified_as_their_class(split):
    X, y, _ = split
    cvae = ConditionalVAE(latent_dim=2, **TRAIN).fit(X, y)
    labels = np.repeat(cvae.classes_, 50)
    samples = cvae.sample(len(labels), y=labels)
    predicted = digits_logits(samples).argmax(-1)
    for c in cvae.classes_:
        assert (predicted[labels == c] == c).mean() >= 0.8, c


@pytest.mark.slow
def test_vae_sample_distance_lies_between_the_real_floor_and_noise(split):
    X, _, X_test = split
    vae = VAE(latent_dim=8, **{**TRAIN, "max_epochs": 60, "learning_rate": 2e-3}).fit(X)
    m = sample_metrics(X_test, vae.sample(500))
    noise = np.random.default_rng(0).random((500, 8, 8))
    noise_fcd = frechet_classifier_distance(X_test[: m["n_real"]], noise[: m["n_real"]])
    assert m["fcd"] > 2 * m["fcd_floor"]  # not a copy of the data ...
    assert m["fcd"] < 0.5 * noise_fcd  # ... but far closer to it than noise is


@pytest.mark.slow
def test_denoising_autoencoder_restores_masked_digits_better(split):
    """Vincent et al. (2008): trained to undo masking noise, an AE reconstructs digits with
    30% of their pixels zeroed closer to the clean digits than a plain undercomplete AE."""
    X, _, X_test = split
    masked = X_test * (np.random.default_rng(0).random(X_test.shape) >= 0.3)
    errors = {}
    for noise in (None, "masking"):
        ae = AutoEncoder(latent_dim=8, noise=noise, noise_level=0.3 if noise else 0.0,
                         **TRAIN).fit(X)
        errors[noise] = ((ae.reconstruct(masked) - X_test) ** 2).mean()
    assert errors["masking"] < 0.8 * errors[None]
