"""The RBM estimator: normalised densities, scikit-learn's pseudo-likelihood on the same
weights, sampling shape and range, clear errors, save/load and exact resume."""

import itertools
import math

import numpy as np
import pytest
import scipy.integrate
import torch
from sklearn.datasets import load_digits
from sklearn.neural_network import BernoulliRBM as SklearnBernoulliRBM

import bayesdl
from bayesdl.generative import RBM


@pytest.fixture(scope="module")
def digits():
    return load_digits().data.reshape(-1, 8, 8) / 16.0  # (1797, 8, 8) in [0, 1]


def _binary_states(n):
    return np.array(list(itertools.product([0, 1], repeat=n)), dtype=float)


def test_exp_score_samples_sums_to_one_over_all_binary_images():
    rng = np.random.default_rng(0)
    X = (rng.random((60, 2, 4)) < np.linspace(0.1, 0.9, 8).reshape(2, 4)).astype(float)
    m = RBM(3, max_epochs=5, dtype="float64", random_state=0).fit(X)  # auto: exact log Z
    states = _binary_states(8).reshape(-1, 2, 4)
    assert np.exp(m.score_samples(states)).sum() == pytest.approx(1.0, rel=1e-10)
    assert m.log_partition_stderr_ == 0.0
    assert m.score(X) == pytest.approx(m.score_samples(X).mean())


def test_gaussian_density_integrates_to_one_on_the_scale_of_the_data():
    rng = np.random.default_rng(0)
    X = np.r_[rng.normal(-3, 0.5, (50, 1)), rng.normal(4, 0.5, (50, 1))]  # scale 3.5, not 1
    m = RBM(4, visible="gaussian", max_epochs=20, dtype="float64", random_state=0).fit(X)
    total = scipy.integrate.quad(lambda x: math.exp(m.score_samples([[x]])[0]), -40, 40,
                                 limit=200)[0]
    assert total == pytest.approx(1.0, rel=1e-6)


def test_ais_score_samples_agree_with_exact_within_three_standard_errors(digits):
    X = digits[:600]
    exact = RBM(12, max_epochs=3, partition="exact", random_state=0).fit(X)
    ais = RBM(12, max_epochs=3, partition="ais", n_betas=1000, random_state=0).fit(X)
    np.testing.assert_array_equal(exact.transform(X[:5]), ais.transform(X[:5]))  # same model
    gap = ais.score_samples(X[:5]) - exact.score_samples(X[:5])
    assert 0 < ais.log_partition_stderr_ < 0.1
    np.testing.assert_array_less(np.abs(gap), 3 * ais.log_partition_stderr_ + 1e-4)


def _ours_with_sklearn_weights(sk, X):
    ours = RBM(sk.n_components, max_epochs=1, dtype="float64", partition="exact",
               random_state=0).fit(X)
    with torch.no_grad():
        ours.module_.weight.copy_(torch.from_numpy(sk.components_.T))
        ours.module_.visible_bias.copy_(torch.from_numpy(sk.intercept_visible_))
        ours.module_.hidden_bias.copy_(torch.from_numpy(sk.intercept_hidden_))
    return ours


def test_pseudo_likelihood_is_sklearns_score_samples_on_the_same_weights(digits):
    X = (digits[:300].reshape(300, 64) > 0.5).astype(float)
    sk = SklearnBernoulliRBM(n_components=16, n_iter=3, random_state=0).fit(X)
    ours = _ours_with_sklearn_weights(sk, X)
    np.testing.assert_allclose(ours.transform(X), sk.transform(X), rtol=1e-12)
    # the same flipped bits: scikit-learn draws them from check_random_state(random_state)
    for seed in (0, 1):
        sk.set_params(random_state=seed)
        np.testing.assert_allclose(ours.pseudo_likelihood(X, stochastic=True, random_state=seed),
                                   sk.score_samples(X), rtol=1e-10)
    # its expectation over the flipped bit: the sum over every bit, from scikit-learn's F
    expected = np.zeros(len(X))
    f = sk._free_energy(X)
    for i in range(64):
        flipped = X.copy()
        flipped[:, i] = 1 - flipped[:, i]
        expected += -np.logaddexp(0, -(sk._free_energy(flipped) - f))
    np.testing.assert_allclose(ours.pseudo_likelihood(X), expected, rtol=1e-10)


def test_sample_returns_the_training_shape_and_range(digits):
    m = RBM(16, max_epochs=2, random_state=0).fit(digits[:200])
    s = m.sample(7, n_gibbs=20)
    assert s.shape == (7, 8, 8) and s.min() >= 0 and s.max() <= 1
    np.testing.assert_array_equal(m.sample(7, n_gibbs=20), s)  # seeded by random_state
    binary = m.sample(7, n_gibbs=20, mean=False)
    assert set(np.unique(binary)) <= {0.0, 1.0}
    assert m.transform(digits[:5]).shape == (5, 16)
    assert m.gibbs(digits[:5], k=3).shape == (5, 8, 8)
    rows = np.random.default_rng(0).normal(10, 2, size=(100, 3))
    g = RBM(4, visible="gaussian", max_epochs=2, random_state=0).fit(rows)
    s = g.sample(50, n_gibbs=20)
    assert s.shape == (50, 3) and s.min() >= rows.min() and s.max() <= rows.max()
    assert abs(s.mean() - 10) < 2  # the standardisation is undone


def test_clear_errors(digits):
    with pytest.raises(ValueError, match="255"):
        RBM(4, max_epochs=1).fit(digits[:50] * 16)  # 0-16 grey levels into Bernoulli units
    bad = digits[:50].copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        RBM(4, max_epochs=1).fit(bad)
    m = RBM(4, max_epochs=1, random_state=0).fit(digits[:50])
    with pytest.raises(ValueError, match="size|shape"):
        m.transform(np.zeros((3, 7, 7)))
    with pytest.raises(ValueError, match="unconditional"):
        m.sample(3, y=[1, 2, 3])
    with pytest.raises(ValueError, match="partition='ais'"):
        RBM(21, partition="exact").fit(digits[:50])
    with pytest.raises(ValueError, match="visible='bernoulli'"):
        RBM(4, visible="gaussian", max_epochs=1).fit(digits[:50]).pseudo_likelihood(digits[:5])
    with pytest.raises(ValueError, match="visible"):
        RBM(4, visible="poisson").fit(digits[:50])
    # Gaussian visibles take any real values
    RBM(4, visible="gaussian", max_epochs=1).fit(digits[:50] * 16 - 3)


@pytest.mark.parametrize("visible", ["bernoulli", "gaussian"])
def test_save_load_round_trip_keeps_the_model_and_the_persistent_chains(tmp_path, digits,
                                                                         visible):
    m = RBM(8, visible=visible, persistent=True, max_epochs=2, random_state=0).fit(digits[:200])
    path = bayesdl.save(m, tmp_path / "rbm.safetensors")
    loaded = bayesdl.load(path)
    assert type(loaded) is RBM and loaded.get_params() == m.get_params()
    for name, value in m.module_.state_dict().items():
        assert torch.equal(loaded.module_.state_dict()[name], value), name
    assert loaded.module_.chains.shape == (20, 64)
    assert not torch.equal(m.module_.chains, torch.zeros_like(m.module_.chains))
    np.testing.assert_array_equal(loaded.score_samples(digits[:10]), m.score_samples(digits[:10]))
    np.testing.assert_array_equal(loaded.sample(3, n_gibbs=5), m.sample(3, n_gibbs=5))


def test_persistent_fit_resumes_exactly_from_a_checkpoint(tmp_path, digits):
    X = digits[:300]
    straight = RBM(16, persistent=True, max_epochs=4, partition="exact", random_state=0).fit(X)
    RBM(16, persistent=True, max_epochs=2, partition="exact", random_state=0,
        checkpoint_dir=tmp_path).fit(X)
    resumed = RBM(16, persistent=True, max_epochs=4, partition="exact", random_state=0,
                  checkpoint_dir=tmp_path, resume=True).fit(X)
    for name, value in straight.module_.state_dict().items():
        assert torch.equal(resumed.module_.state_dict()[name], value), name
