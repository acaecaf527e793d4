"""Bayesian PCA: ARD switches off the columns of W the data do not need (PRML 12.2.3)."""

import warnings

import numpy as np
import pytest
from scipy.linalg import subspace_angles

from bayesdl.decomposition import BayesianPCA

from ._data import low_rank, with_missing


@pytest.fixture(scope="module")
def data():
    return low_rank(n=300, d=10, q=3, noise=0.5)


def test_switches_off_the_unneeded_dimensions(data):
    X, W_true = data
    m = BayesianPCA(max_iter=3000, tol=1e-6).fit(X)
    assert m.n_components_ == 9  # D - 1 columns to start with (PRML Figure 12.14)
    assert m.n_effective_components_ == 3
    active = np.argsort(m.alpha_)[:3]
    assert np.all(np.delete(m.alpha_, active) > 1e6 * m.alpha_[active].max())
    angle = np.degrees(subspace_angles(m.components_[active].T, W_true)).max()
    assert angle < 5.0
    Xm, _ = with_missing(X, 0.2)
    assert BayesianPCA(max_iter=3000, tol=1e-6).fit(Xm).n_effective_components_ == 3


def test_one_em_step_is_prml_12_62_12_63(data):
    X, _ = data
    m = BayesianPCA(4, init_params="random", random_state=0, max_iter=0).fit(X)
    W, mu, s2 = m.components_.T.copy(), m.mean_.copy(), m.noise_variance_
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m.set_params(warm_start=True, max_iter=1).fit(X)
    A = np.diag(10 / (W**2).sum(0))  # PRML 12.62
    Minv = np.linalg.inv(W.T @ W + s2 * np.eye(4))
    Ez = (X - mu) @ W @ Minv  # PRML 12.54
    sum_Ezz = len(X) * s2 * Minv + Ez.T @ Ez  # PRML 12.55
    W_new = (X - mu).T @ Ez @ np.linalg.inv(sum_Ezz + s2 * A)  # PRML 12.63
    np.testing.assert_allclose(m.components_.T, W_new, rtol=1e-10)
    np.testing.assert_allclose(m.alpha_, 10 / (W_new**2).sum(0), rtol=1e-10)
