"""Factor analysis against scikit-learn's FactorAnalysis (the oracle) and PRML 12.66-12.70."""

import warnings

import numpy as np
import pytest
from scipy.stats import multivariate_normal
from sklearn.decomposition import FactorAnalysis as SkFactorAnalysis

from bayesdl.decomposition import FactorAnalysis

from ._data import low_rank, with_missing


@pytest.fixture(scope="module")
def X():
    X, _ = low_rank(n=400, d=6, q=2, noise=1.0)
    return X * np.linspace(0.5, 2.0, 6)  # unequal noise per feature


# EM creeps along the likelihood's ridge: at tol 1e-9 the likelihood agrees to 1e-7 and the
# noise variances to 1e-2; the slow run at tol 1e-13 pins those to 1e-4.
@pytest.mark.parametrize("tol, rtol", [
    (1e-9, 1e-2), pytest.param(1e-13, 1e-4, marks=pytest.mark.slow)])
def test_matches_sklearn_after_convergence(X, tol, rtol):
    ours = FactorAnalysis(2, tol=tol, max_iter=20000).fit(X)
    ref = SkFactorAnalysis(2, tol=1e-13, max_iter=100000).fit(X)
    assert ours.converged_
    assert ours.score(X) == pytest.approx(ref.score(X), abs=1e-6)
    np.testing.assert_allclose(ours.score_samples(X), ref.score_samples(X), atol=10 * rtol)
    np.testing.assert_allclose(ours.noise_variance_, ref.noise_variance_, rtol=rtol)
    np.testing.assert_allclose(ours.get_covariance(), ref.get_covariance(), rtol=rtol,
                               atol=rtol / 10)
    np.testing.assert_allclose(ours.mean_, ref.mean_, rtol=1e-10)
    np.testing.assert_allclose(ours.score_samples(X),
                               multivariate_normal(ours.mean_, ours.get_covariance()).logpdf(X),
                               rtol=1e-10)
    assert np.all(np.diff(ours.lower_bounds_) > -1e-12)


def test_one_em_step_is_prml_12_66_to_12_70(X):
    m = FactorAnalysis(2, init_params="random", random_state=0, max_iter=0).fit(X)
    W, mu, psi = m.components_.T.copy(), m.mean_.copy(), m.noise_variance_.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m.set_params(warm_start=True, max_iter=1).fit(X)
    G = np.linalg.inv(np.eye(2) + W.T @ np.diag(1 / psi) @ W)  # PRML 12.68
    Ez = (X - mu) @ (G @ W.T @ np.diag(1 / psi)).T  # PRML 12.66
    sum_Ezz = len(X) * G + Ez.T @ Ez  # PRML 12.67
    W_new = (X - mu).T @ Ez @ np.linalg.inv(sum_Ezz)  # PRML 12.69
    S = np.cov(X.T, bias=True)
    psi_new = np.diag(S - W_new @ ((X - mu).T @ Ez).T / len(X))  # PRML 12.70
    np.testing.assert_allclose(m.components_.T, W_new, rtol=1e-10)
    np.testing.assert_allclose(m.noise_variance_, psi_new, rtol=1e-10)


def test_missing_data_likelihood_and_monotone_em(X):
    Xm, mask = with_missing(X, 0.2)
    m = FactorAnalysis(2, tol=1e-5, max_iter=3000).fit(Xm)
    assert np.all(np.diff(m.lower_bounds_) > -1e-12)
    C, mu = m.get_covariance(), m.mean_
    logp = m.score_samples(Xm[:20])
    for n in range(20):
        o = ~mask[n]
        ref = multivariate_normal(mu[o], C[np.ix_(o, o)]).logpdf(Xm[n, o])
        assert logp[n] == pytest.approx(ref, rel=1e-10)
    full = FactorAnalysis(2, tol=1e-5, max_iter=3000).fit(X)
    np.testing.assert_allclose(m.noise_variance_, full.noise_variance_, rtol=0.3)
    assert m.converged_ and full.converged_


def test_bad_inputs(X):
    with pytest.raises(ValueError, match="n_components=7 is larger than n_features = 6"):
        FactorAnalysis(7).fit(X)
