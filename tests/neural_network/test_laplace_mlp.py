"""BayesianMLP*(method="laplace"): the Laplace lowers the NLL and ECE of the MAP network it wraps."""

import numpy as np
import pytest
import torch
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split

from bayesdl import load, save
from bayesdl.datasets import load_mcycle
from bayesdl.neural_network import BayesianMLPClassifier, BayesianMLPRegressor
from bayesdl.uncertainty import decompose, negative_log_likelihood


def test_laplace_lowers_nll_of_the_map_network_it_wraps_on_breast_cancer():
    """Measured, not the issue's full claim: on breast cancer the evidence-tuned last-layer
    Laplace lowers the held-out NLL of its MAP network (0.139 vs 0.147) but raises the ECE
    (see docs/benchmarks.md; laplace-torch gives the same posterior)."""
    X, y = load_breast_cancer(return_X_y=True)
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, train_size=200, random_state=0, stratify=y)
    X_tr, _, y_tr, _ = train_test_split(X_tr, y_tr, test_size=0.25, random_state=0, stratify=y_tr)
    clf = BayesianMLPClassifier((50,), method="laplace", max_epochs=300, learning_rate=3e-3,
                                n_samples=100, prior_sigma=10.0, random_state=0).fit(X_tr, y_tr)
    laplace = clf.predict_dist(X_te)
    with torch.no_grad():  # the MAP network's own softmax
        logits = clf.network_(clf._standardise(clf._validate_X(X_te, reset=False)))
    map_dist = torch.distributions.Categorical(logits=logits)
    assert negative_log_likelihood(laplace, y_te) < negative_log_likelihood(map_dist, y_te)
    assert clf.prior_precision_ > 0


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
