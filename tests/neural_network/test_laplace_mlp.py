"""BayesianMLP*(method="laplace"): the Laplace lowers the NLL and ECE of the MAP network it wraps."""

import numpy as np
import pytest
import torch
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split

from bayesdl import load, save
from bayesdl.datasets import load_mcycle
from bayesdl.neural_network import BayesianMLPClassifier, BayesianMLPRegressor
from bayesdl.uncertainty import decompose, expected_calibration_error, negative_log_likelihood


def _split(load, seed):
    X, y = load(return_X_y=True)
    return train_test_split(X, y, test_size=0.3, random_state=seed, stratify=y)


def _map_dist(clf, X):
    """The MAP network's own softmax predictive."""
    with torch.no_grad():
        return torch.distributions.Categorical(
            logits=clf.network_(clf._standardise(clf._validate_X(X, reset=False))))


def test_laplace_wraps_a_map_at_a_mode_and_lowers_its_nll_on_breast_cancer():
    """The default trains the MAP for the whole budget with an annealed step, so its gradient
    is near zero (early stopping's network had |grad| 0.018 here, this one 0.004); a short
    budget is flagged. The held-out rows do not find the evidence's predictive
    under-confident, so its prior is kept. Over 5 splits the Laplace lowers the NLL in every
    one (slow test below); this checks the first."""
    X_tr, X_te, y_tr, y_te = _split(load_breast_cancer, 0)
    clf = BayesianMLPClassifier((50,), method="laplace", random_state=0).fit(X_tr, y_tr)
    assert clf.map_gradient_norm_ < 1e-2
    la = clf._laplace
    assert clf.prior_precision_ == la._optimise_prior(la.log_marginal_likelihood)
    assert (negative_log_likelihood(clf.predict_dist(X_te), y_te)
            < negative_log_likelihood(_map_dist(clf, X_te), y_te) - 0.003)
    with pytest.warns(ConvergenceWarning, match="not at a mode"):
        BayesianMLPClassifier((50,), method="laplace", max_steps=30, random_state=0).fit(X_tr, y_tr)


def test_laplace_regressor_predicts_wider_than_noise_away_from_data_and_saves(tmp_path):
    d = load_mcycle()
    reg = BayesianMLPRegressor((20,), method="laplace", max_epochs=50, n_samples=200,
                               random_state=0).fit(d.data, d.target)
    far = np.array([[-30.0], [10.0], [100.0]])
    mean, std = reg.predict(far, return_std=True)
    parts = decompose(reg.predict_dist(far))
    assert parts.epistemic[0] > parts.epistemic[1] and parts.epistemic[2] > parts.epistemic[1]
    back = load(save(reg, tmp_path / "reg.safetensors"))
    np.testing.assert_allclose(back.predict(far, return_std=True)[1], std, rtol=1e-9)
    with pytest.raises(ValueError, match="heteroscedastic=False"):
        BayesianMLPRegressor(method="laplace", heteroscedastic=True, max_epochs=1).fit(d.data, d.target)


def test_held_out_rows_reject_the_evidences_under_confident_prior_on_digits():
    """On digits the MAP fits its training rows closely, so the last layer's GGN is near zero
    there and the evidence picks a small prior precision: a much too wide predictive. The
    default ("auto") sees that on the held-out rows and tunes the prior on them instead,
    which keeps the Laplace near the (here already calibrated) MAP."""
    X_tr, X_te, y_tr, y_te = _split(load_digits, 0)
    clf = BayesianMLPClassifier((100,), method="laplace", input_scaling="global", max_steps=600,
                                n_samples=100, random_state=0).fit(X_tr, y_tr)
    map_dist = _map_dist(clf, X_te)
    la, chosen = clf._laplace, clf.prior_precision_
    evidence = la._optimise_prior(la.log_marginal_likelihood)  # laplace_prior="marglik"'s
    ece, nll = {}, {}
    for key, delta in (("marglik", evidence), ("auto", chosen)):
        la._set_prior(delta)
        ece[key] = expected_calibration_error(clf.predict_dist(X_te), y_te, 15)
        nll[key] = negative_log_likelihood(clf.predict_dist(X_te), y_te)
    assert ece["marglik"] > 0.05 and nll["marglik"] > 1.5 * negative_log_likelihood(map_dist, y_te)
    assert ece["auto"] < expected_calibration_error(map_dist, y_te, 15) + 0.01
    # tuned on 126 held-out rows: near the MAP's NLL (here 0.098 against 0.091), far from
    # the evidence's (above 1.5 times the MAP's)
    assert nll["auto"] < 1.1 * negative_log_likelihood(map_dist, y_te)
    assert chosen > 10 * evidence
    with pytest.raises(ValueError, match="needs held-out rows"):
        BayesianMLPClassifier(method="laplace", laplace_prior="val_nll", early_stopping=False,
                              max_epochs=1).fit(X_tr[:50], y_tr[:50])


def _calibration(load, params, seeds=range(5)):
    """Per split: test (NLL, ECE) of the MAP network and of its default Laplace: (S, 2) each."""
    scores = {"map": [], "laplace": []}
    for seed in seeds:
        X_tr, X_te, y_tr, y_te = _split(load, seed)
        clf = BayesianMLPClassifier(method="laplace", random_state=seed, **params).fit(X_tr, y_tr)
        for key, dist in (("map", _map_dist(clf, X_te)), ("laplace", clf.predict_dist(X_te))):
            scores[key].append((negative_log_likelihood(dist, y_te),
                                expected_calibration_error(dist, y_te, 15)))
    return np.array(scores["map"]), np.array(scores["laplace"])


@pytest.mark.slow
def test_calibration_claim_over_five_splits():
    """Issue 11: "on breast-cancer and digits, Laplace lowers the NLL and ECE of the MAP
    network it wraps", the default estimator on five 70/30 splits (docs/benchmarks.md).

    Breast cancer: the evidence's prior is kept; the NLL falls on every split and the mean
    ECE falls. Digits: the MAP (prior N(0, 1)) is not over-confident, so a Laplace, which
    can only moderate, has nothing to correct; the held-out rows reject the evidence's
    under-confident prior, and the Laplace stays within noise of the MAP. The digits half of
    the claim is not met (see docs/benchmarks.md)."""
    base, laplace = _calibration(load_breast_cancer, dict(hidden_layer_sizes=(50,)))
    assert (laplace[:, 0] < base[:, 0]).all()
    assert laplace[:, 1].mean() < base[:, 1].mean()
    base, laplace = _calibration(load_digits, dict(hidden_layer_sizes=(100,),
                                                   input_scaling="global"))
    assert laplace[:, 0].mean() < base[:, 0].mean() + 0.005
    assert laplace[:, 1].mean() < base[:, 1].mean() + 0.005
