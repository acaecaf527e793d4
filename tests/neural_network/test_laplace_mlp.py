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
    is near zero (early stopping's network had |grad| 0.018 on split 0, this one 0.006); a
    short budget is flagged. On this split the held-out rows do not find the evidence's
    predictive under-confident, so its prior is kept, and it lowers the test NLL (over five
    splits: the slow test below)."""
    X_tr, X_te, y_tr, y_te = _split(load_breast_cancer, 3)
    clf = BayesianMLPClassifier((50,), method="laplace", random_state=3).fit(X_tr, y_tr)
    assert clf.map_gradient_norm_ < 1e-2
    la = clf._laplace
    assert clf.prior_method_ == "marglik"
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


def test_held_out_rows_narrow_the_evidences_under_confident_prior_on_digits():
    """On digits the MAP fits its training rows closely, so the last layer's GGN is near zero
    there and the evidence picks a small prior precision: a much too wide predictive. The
    default ("auto") sees that on the held-out rows and raises the precision until they are
    no longer under-confident, which takes the Laplace most of the way back to its MAP (here
    already calibrated: ECE 1.0%, so no Laplace of it does better)."""
    X_tr, X_te, y_tr, y_te = _split(load_digits, 0)
    clf = BayesianMLPClassifier((100,), method="laplace", input_scaling="global", max_steps=600,
                                n_samples=100, random_state=0).fit(X_tr, y_tr)
    map_nll = negative_log_likelihood(_map_dist(clf, X_te), y_te)
    la, chosen = clf._laplace, clf.prior_precision_
    evidence = la._optimise_prior(la.log_marginal_likelihood)  # laplace_prior="marglik"'s
    ece, nll = {}, {}
    for key, delta in (("marglik", evidence), ("auto", chosen)):
        la._set_prior(delta)
        ece[key] = expected_calibration_error(clf.predict_dist(X_te), y_te, 15)
        nll[key] = negative_log_likelihood(clf.predict_dist(X_te), y_te)
    assert clf.prior_method_ == "calibrated" and chosen > 5 * evidence  # here 16 against 2.4
    # evidence: NLL 0.176, ECE 10.0%; default: 0.107, 3.3%; the MAP network: 0.091, 1.0%
    assert ece["marglik"] > 0.05 and nll["marglik"] > 1.5 * map_nll
    assert ece["auto"] < ece["marglik"] / 2
    assert nll["auto"] - map_nll < (nll["marglik"] - map_nll) / 3
    with pytest.raises(ValueError, match="needs held-out rows"):
        BayesianMLPClassifier(method="laplace", laplace_prior="val_nll", early_stopping=False,
                              max_epochs=1).fit(X_tr[:50], y_tr[:50])


def _calibration(load, params, seeds=range(5)):
    """Per split: test (NLL, ECE) of the MAP network and of its default Laplace: (S, 2) each,
    and the MAP's mean top-class confidence minus its accuracy: (S,)."""
    scores, gaps = {"map": [], "laplace": []}, []
    for seed in seeds:
        X_tr, X_te, y_tr, y_te = _split(load, seed)
        clf = BayesianMLPClassifier(method="laplace", random_state=seed, **params).fit(X_tr, y_tr)
        map_dist = _map_dist(clf, X_te)
        for key, dist in (("map", map_dist), ("laplace", clf.predict_dist(X_te))):
            scores[key].append((negative_log_likelihood(dist, y_te),
                                expected_calibration_error(dist, y_te, 15)))
        conf, label = map_dist.probs.max(-1)
        gaps.append(float(conf.mean()) - float((clf.classes_[label.numpy()] == y_te).mean()))
    return np.array(scores["map"]), np.array(scores["laplace"]), np.array(gaps)


BREAST_CANCER = dict(hidden_layer_sizes=(50,))
DIGITS = dict(hidden_layer_sizes=(100,), input_scaling="global")


@pytest.mark.slow
def test_calibration_claim_over_five_splits():
    """Issue 11: "on breast-cancer and digits, Laplace lowers the NLL and ECE of the MAP
    network it wraps", the default estimator on five 70/30 splits (docs/benchmarks.md).

    With the default prior N(0, 1) it holds on breast cancer, whose MAP networks are
    over-confident (mean confidence above accuracy on every split). It cannot hold on
    digits: there the MAP networks are under-confident on every split, so a Laplace, whose
    predictive only moderates the MAP's, can lower neither (the test-NLL-optimal prior
    precision is the MAP's limit on all five); the default stays within noise of the MAP.
    With prior_sigma=10 both MAPs are over-confident and the claim holds on both."""
    base, laplace, gap = _calibration(load_breast_cancer, BREAST_CANCER)
    assert (gap > 0).all()
    assert laplace[:, 0].mean() < base[:, 0].mean() and laplace[:, 1].mean() < base[:, 1].mean()
    base, laplace, gap = _calibration(load_digits, DIGITS)
    assert (gap < 0).all()
    assert laplace[:, 0].mean() < base[:, 0].mean() + 0.005
    assert laplace[:, 1].mean() < base[:, 1].mean() + 0.005
    for load, params in ((load_breast_cancer, BREAST_CANCER), (load_digits, DIGITS)):
        base, laplace, gap = _calibration(load, {**params, "prior_sigma": 10.0})
        assert (gap > 0).all()
        assert (laplace[:, 0] < base[:, 0]).all()
        assert laplace[:, 1].mean() < base[:, 1].mean()
