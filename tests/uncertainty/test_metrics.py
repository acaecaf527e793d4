"""Uncertainty metrics and decompositions against hand computations and scikit-learn."""

import numpy as np
import pytest
import torch
from scipy import optimize, stats
from sklearn.metrics import brier_score_loss, roc_auc_score
from torch.distributions import Categorical, Normal

from bayesdl.uncertainty import (MonteCarloCategorical, accuracy, brier_score, decompose,
                                 expected_calibration_error, interval_coverage,
                                 maximum_calibration_error, monte_carlo_normal,
                                 negative_log_likelihood, ood_auroc, predictive_quantile, rmse)

P = torch.tensor([[0.9, 0.1], [0.6, 0.4], [0.3, 0.7], [0.2, 0.8]], dtype=torch.float64)
Y = np.array([0, 1, 1, 1])


def test_nll_brier_accuracy_on_a_small_array_by_hand():
    d = Categorical(probs=P)
    # -(log .9 + log .4 + log .7 + log .8) / 4
    assert negative_log_likelihood(d, Y) == pytest.approx(
        -(np.log(0.9) + np.log(0.4) + np.log(0.7) + np.log(0.8)) / 4)
    # sum_k (p_k - onehot)^2 per row: 2*.1^2, 2*.6^2, 2*.3^2, 2*.2^2
    assert brier_score(d, Y) == pytest.approx(2 * (0.01 + 0.36 + 0.09 + 0.04) / 4)
    # binary Brier = half the two-class sum; scikit-learn as a second reference
    assert brier_score(d, Y) / 2 == pytest.approx(brier_score_loss(Y, P[:, 1].numpy()))
    assert accuracy(d, Y) == pytest.approx(0.75)


def test_ece_and_mce_by_hand():
    d = Categorical(probs=P)
    # confidences .9 (right), .6 (wrong), .7 (right), .8 (right); with 5 equal-width bins
    # (.6,.8] holds .7 and .8... bins: (.4,.6]: {.6 wrong}; (.6,.8]: {.7, .8 right}; (.8,1]: {.9}
    ece = (1 / 4) * abs(0 - 0.6) + (2 / 4) * abs(1 - 0.75) + (1 / 4) * abs(1 - 0.9)
    assert expected_calibration_error(d, Y, n_bins=5) == pytest.approx(ece)
    assert maximum_calibration_error(d, Y, n_bins=5) == pytest.approx(0.6)
    # adaptive with 2 bins: sorted confidences .6 .7 | .8 .9
    ece_adaptive = 0.5 * abs(0.5 - 0.65) + 0.5 * abs(1 - 0.85)
    assert expected_calibration_error(d, Y, 2, "adaptive") == pytest.approx(ece_adaptive)


def _naive_ece(probs, y, n_bins):
    conf, pred = probs.max(1), probs.argmax(1)
    total = 0.0
    for b in range(n_bins):
        lo, hi = b / n_bins, (b + 1) / n_bins
        idx = [i for i in range(len(y)) if lo < conf[i] <= hi]
        if idx:
            total += len(idx) / len(y) * abs(np.mean(pred[idx] == y[idx]) - np.mean(conf[idx]))
    return total


def test_ece_matches_a_naive_loop_on_random_data():
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(4) * 0.5, size=500)
    # labels drawn from distorted probabilities: flattened (p^0.3) where the model is confident,
    # sharpened (p^3) where it is not, so it is over-confident in the high bins and
    # under-confident in the low ones and the binning matters. Labels independent of the
    # probabilities give conf_b > acc_b in every bin, so the same ECE for every binning,
    # and cannot catch wrong bin edges.
    power = np.where(probs.max(1, keepdims=True) > 0.6, 0.3, 3.0)  # (N, 1)
    label_probs = probs ** power / (probs ** power).sum(1, keepdims=True)  # (N, 4)
    y = np.array([rng.choice(4, p=p) for p in label_probs])
    d = Categorical(probs=torch.as_tensor(probs))
    eces = []
    for n_bins in (1, 2, 3, 5, 10, 15, 37):
        eces.append(expected_calibration_error(d, y, n_bins))
        assert eces[-1] == pytest.approx(_naive_ece(probs, y, n_bins), rel=1e-12, abs=1e-15)
    assert np.ptp(eces) > 0.05  # the binning changes the answer on these data


def test_ood_auroc_matches_scikit_learn_with_ties():
    rng = np.random.default_rng(1)
    s_in = rng.integers(0, 5, size=40).astype(float)
    s_out = rng.integers(2, 8, size=30).astype(float)
    ref = roc_auc_score(np.r_[np.zeros(40), np.ones(30)], np.r_[s_in, s_out])
    assert ood_auroc(torch.as_tensor(s_in), s_out) == pytest.approx(ref)


def test_interval_coverage_and_quantiles():
    rng = np.random.default_rng(2)
    loc, scale = rng.normal(size=(50, 4)), rng.uniform(0.2, 1.5, size=(50, 4))
    mix = monte_carlo_normal(torch.as_tensor(loc), torch.as_tensor(scale))
    q = predictive_quantile(mix, 0.9).numpy()
    for n in range(5):
        ref = optimize.brentq(lambda t: stats.norm.cdf(t, loc[n], scale[n]).mean() - 0.9, -20, 20)
        assert q[n] == pytest.approx(ref, abs=1e-9)
    normal = Normal(torch.zeros(4000, dtype=torch.float64), 1.0)
    y = torch.as_tensor(rng.normal(size=4000))
    inside = np.mean(np.abs(y.numpy()) <= stats.norm.ppf(0.975))
    assert interval_coverage(normal, y, 0.95) == pytest.approx(inside)
    assert rmse(normal, y) == pytest.approx(np.sqrt(np.mean(y.numpy() ** 2)))
    assert negative_log_likelihood(normal, y) == pytest.approx(-stats.norm.logpdf(y.numpy()).mean())
    assert negative_log_likelihood(mix, torch.zeros(50)) == pytest.approx(
        -np.log(stats.norm.pdf(0, loc, scale).mean(1)).mean())


def test_regression_decomposition_identity_and_reference():
    rng = np.random.default_rng(3)
    loc, scale = rng.normal(size=(7, 20)), rng.uniform(0.1, 2, size=(7, 20))
    d = decompose(monte_carlo_normal(torch.as_tensor(loc), torch.as_tensor(scale)))
    np.testing.assert_allclose(d.aleatoric.numpy(), (scale**2).mean(1), rtol=1e-12)
    np.testing.assert_allclose(d.epistemic.numpy(), loc.var(1), rtol=1e-12)
    np.testing.assert_allclose(d.total.numpy(), (d.aleatoric + d.epistemic).numpy(), rtol=1e-12)


def test_classification_decomposition_identity_and_reference():
    rng = np.random.default_rng(4)
    p = rng.dirichlet(np.ones(5), size=(6, 30))  # (N, S, K)
    d = decompose(MonteCarloCategorical(torch.as_tensor(p)))
    pbar = p.mean(1)
    H = lambda q: -(q * np.log(q)).sum(-1)  # noqa: E731
    np.testing.assert_allclose(d.total.numpy(), H(pbar), rtol=1e-12)
    np.testing.assert_allclose(d.aleatoric.numpy(), H(p).mean(1), rtol=1e-12)
    # mutual information computed as the mean KL to the mixture, independently of H
    mi = (p * (np.log(p) - np.log(pbar[:, None]))).sum(-1).mean(1)
    np.testing.assert_allclose(d.epistemic.numpy(), mi, rtol=1e-10)
    np.testing.assert_allclose(d.total.numpy(), (d.aleatoric + d.epistemic).numpy(), rtol=1e-12)
    with pytest.raises(TypeError, match="carries no samples"):
        decompose(Normal(0.0, 1.0))


def test_bad_labels_are_rejected_clearly():
    with pytest.raises(ValueError, match="never seen these classes"):
        brier_score(Categorical(probs=P), [0, 1, 2, 1])
    with pytest.raises(ValueError, match="one per prediction"):
        accuracy(Categorical(probs=P), [0, 1])
