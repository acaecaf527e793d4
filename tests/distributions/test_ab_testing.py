"""compare_beta_arms against the closed form for integer Beta parameters and Monte Carlo."""

import numpy as np
import pytest
import scipy.special
import scipy.stats

from bayesdl.distributions import compare_beta_arms


def _prob_b_beats_a(a_a, b_a, a_b, b_b):
    """Closed form for integer a_b (Cook 2005; Miller 2015):
    P(p_B > p_A) = sum_{i=0}^{a_B - 1} B(a_A + i, b_A + b_B) / ((b_B + i) B(1 + i, b_B) B(a_A, b_A))."""
    lb = scipy.special.betaln
    i = np.arange(int(a_b))
    terms = lb(a_a + i, b_a + b_b) - np.log(b_b + i) - lb(1 + i, b_b) - lb(a_a, b_a)
    return np.exp(scipy.special.logsumexp(terms))


def test_two_arms_match_closed_form_and_conjugate_posterior():
    r = compare_beta_arms([120, 135], [1000, 1000])
    np.testing.assert_allclose(r.a, [121, 136])
    np.testing.assert_allclose(r.b, [881, 866])
    np.testing.assert_allclose(r.prob_best[1], _prob_b_beats_a(121, 881, 136, 866), atol=1e-9)
    np.testing.assert_allclose(r.prob_best.sum(), 1, atol=1e-9)
    np.testing.assert_allclose(r.lower, scipy.stats.beta(r.a, r.b).ppf(0.025), atol=1e-12)
    np.testing.assert_allclose(r.upper, scipy.stats.beta(r.a, r.b).ppf(0.975), atol=1e-12)


def test_small_counts_and_informative_prior_match_closed_form():
    r = compare_beta_arms([3, 7], [10, 12], prior_a=2, prior_b=5)
    np.testing.assert_allclose(r.prob_best[1], _prob_b_beats_a(5, 12, 9, 10), atol=1e-9)


def test_expected_loss_and_three_arms_against_monte_carlo():
    successes, trials = [30, 42, 38], [400, 410, 390]
    r = compare_beta_arms(successes, trials, names=["x", "y", "z"], level=0.9)
    rng = np.random.default_rng(0)
    n = 400_000
    draws = rng.beta(r.a, r.b, size=(n, 3))
    best = draws.argmax(1)
    loss = draws.max(1, keepdims=True) - draws  # (n, 3)
    for i in range(3):
        p = (best == i).mean()
        assert abs(r.prob_best[i] - p) < 4 * np.sqrt(p * (1 - p) / n)
        assert abs(r.expected_loss[i] - loss[:, i].mean()) < 4 * loss[:, i].std() / np.sqrt(n)
    assert r.names == ["x", "y", "z"] and r.level == 0.9


@pytest.mark.parametrize("kwargs,match", [
    (dict(successes=[1], trials=[10]), "at least two arms"),
    (dict(successes=[1, 2], trials=[10, 10, 10]), "equal length"),
    (dict(successes=[1, 12], trials=[10, 10]), "cannot exceed"),
    (dict(successes=[1, 2], trials=[10, 10], names=["a"]), "arm names"),
])
def test_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        compare_beta_arms(**kwargs)
