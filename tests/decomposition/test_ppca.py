"""Probabilistic PCA: the closed form against PRML 12.44-12.46 and scipy, EM against the
closed form and against a naive PRML 12.54-12.57 step, and exact missing-data marginals."""

import warnings

import numpy as np
import pytest
from scipy.linalg import subspace_angles
from scipy.stats import multivariate_normal

from bayesdl.decomposition import ProbabilisticPCA

from ._data import low_rank, with_missing


@pytest.fixture(scope="module")
def data():
    return low_rank(n=500, d=8, q=3)


def _em(q=3, **kw):
    kw = {"solver": "em", "tol": 0.0, "max_iter": 20, **kw}
    return ProbabilisticPCA(q, **kw)


def _quiet_fit(model, X):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # fixed iteration counts: "did not converge" expected
        return model.fit(X)


def test_closed_form_is_prml_12_45_12_46(data):
    X, _ = data
    m = ProbabilisticPCA(3).fit(X)
    evals, evecs = np.linalg.eigh(np.cov(X.T, bias=True))
    evals, evecs = evals[::-1], evecs[:, ::-1]
    sigma2 = evals[3:].mean()
    assert m.noise_variance_ == pytest.approx(sigma2, rel=1e-12)
    W = evecs[:, :3] * np.sqrt(evals[:3] - sigma2)
    np.testing.assert_allclose(m.components_.T @ m.components_, W @ W.T, atol=1e-10)
    C = W @ W.T + sigma2 * np.eye(8)
    ref = multivariate_normal(X.mean(0), C).logpdf(X)
    np.testing.assert_allclose(m.score_samples(X), ref, rtol=1e-10)
    np.testing.assert_allclose(m.get_covariance(), C, atol=1e-10)
    assert m.lower_bound_ == pytest.approx(ref.mean(), rel=1e-12)  # PRML 12.44


def test_em_reaches_the_closed_form():
    X, _ = low_rank(n=300, d=8, q=3, noise=2.0)  # EM's speed falls with the noise level
    cf = ProbabilisticPCA(3).fit(X)
    em = ProbabilisticPCA(3, solver="em", init_params="random", tol=1e-12, max_iter=5000,
                          random_state=0).fit(X)
    assert em.converged_ and em.n_iter_ > 10
    assert em.score(X) == pytest.approx(cf.score(X), abs=1e-6)
    assert em.noise_variance_ == pytest.approx(cf.noise_variance_, rel=1e-5)
    np.testing.assert_allclose(em.get_covariance(), cf.get_covariance(), atol=1e-3)
    assert np.all(np.diff(em.lower_bounds_) > -1e-12)


def test_one_em_step_is_prml_12_54_to_12_57(data):
    X, _ = data
    m = _quiet_fit(_em(init_params="random", random_state=0, max_iter=0), X)
    W, mu, s2 = m.components_.T.copy(), m.mean_.copy(), m.noise_variance_
    m.set_params(warm_start=True, max_iter=1)
    _quiet_fit(m, X)
    # the naive step, row by row
    M = W.T @ W + s2 * np.eye(3)  # PRML 12.41
    Minv = np.linalg.inv(M)
    Ez = [Minv @ W.T @ (x - mu) for x in X]  # PRML 12.54
    Ezz = [s2 * Minv + np.outer(e, e) for e in Ez]  # PRML 12.55
    W_new = sum(np.outer(x - mu, e) for x, e in zip(X, Ez)) @ np.linalg.inv(sum(Ezz))  # 12.56
    s2_new = np.mean([(x - mu) @ (x - mu) - 2 * e @ W_new.T @ (x - mu)
                      + np.trace(S @ W_new.T @ W_new) for x, e, S in zip(X, Ez, Ezz)]) / 8  # 12.57
    np.testing.assert_allclose(m.mean_, mu, atol=1e-10)  # the mean stays at xbar
    np.testing.assert_allclose(m.components_.T, W_new, rtol=1e-10, atol=1e-12)
    assert m.noise_variance_ == pytest.approx(s2_new, rel=1e-10)


def test_missing_entries_are_marginalised_exactly(data):
    X, _ = data
    Xm, mask = with_missing(X[:60], 0.3)
    m = ProbabilisticPCA(3).fit(X)
    W, mu, C = m.components_.T, m.mean_, m.get_covariance()
    logp, Ez = m.score_samples(Xm), m.transform(Xm)
    filled, std = m.impute(Xm, return_std=True)
    dist = m.predict_dist(Xm)
    for n, x in enumerate(Xm):
        o, u = ~mask[n], mask[n]
        Coo = C[np.ix_(o, o)]
        r = x[o] - mu[o]
        assert logp[n] == pytest.approx(multivariate_normal(mu[o], Coo).logpdf(x[o]), rel=1e-10)
        # p(z | x_o) by Gaussian conditioning (PRML 2.116 on the joint of z and x_o)
        K = W[o].T @ np.linalg.inv(Coo)  # cov[z, x_o] C_oo^{-1}
        np.testing.assert_allclose(Ez[n], K @ r, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(dist.covariance_matrix[n].numpy(), np.eye(3) - K @ W[o],
                                   atol=1e-10)
        # p(x_m | x_o) (PRML 2.81-2.82)
        G = C[np.ix_(u, o)] @ np.linalg.inv(Coo)
        np.testing.assert_allclose(filled[n, u], mu[u] + G @ r, rtol=1e-9)
        np.testing.assert_allclose(filled[n, o], x[o])
        cond = C[np.ix_(u, u)] - G @ C[np.ix_(o, u)]
        np.testing.assert_allclose(std[n, u], np.sqrt(np.diag(cond)), rtol=1e-9)
        assert np.all(std[n, o] == 0)


def test_one_em_step_with_missing_data_is_a_naive_row_loop(data):
    X, _ = data
    Xm, mask = with_missing(X[:80], 0.25)
    m = _quiet_fit(_em(init_params="random", random_state=1, max_iter=0), Xm)
    W, mu, s2 = m.components_.T.copy(), m.mean_.copy(), m.noise_variance_
    m.set_params(warm_start=True, max_iter=1)
    _quiet_fit(m, Xm)
    # Naive: for each feature, regress its observed values on E[(z, 1)] of the rows observing it.
    q, d = 3, 8
    Ez1, Ezz1 = [], []
    for n, x in enumerate(Xm):
        o = ~mask[n]
        Minv = np.linalg.inv(np.eye(q) + W[o].T @ W[o] / s2)
        e = Minv @ W[o].T @ (x[o] - mu[o]) / s2
        e1 = np.append(e, 1.0)
        S = np.zeros((q + 1, q + 1))
        S[:q, :q] = Minv
        Ez1.append(e1)
        Ezz1.append(S + np.outer(e1, e1))
    rows, resid = [], 0.0
    for i in range(d):
        obs = np.flatnonzero(~mask[:, i])
        A = sum(Ezz1[n] for n in obs)
        b = sum(Xm[n, i] * Ez1[n] for n in obs)
        w = np.linalg.solve(A, b)
        rows.append(w)
        resid += sum(Xm[n, i] ** 2 - 2 * Xm[n, i] * w @ Ez1[n] + w @ Ezz1[n] @ w for n in obs)
    Wt = np.array(rows)
    np.testing.assert_allclose(m.components_.T, Wt[:, :q], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(m.mean_, Wt[:, q], rtol=1e-9)
    assert m.noise_variance_ == pytest.approx(resid / (~mask).sum(), rel=1e-9)


def test_em_with_20_percent_missing_recovers_the_model(data):
    X, W_true = data
    Xm, mask = with_missing(X, 0.2)
    m = ProbabilisticPCA(3, solver="em", tol=1e-7, max_iter=2000).fit(Xm)
    assert m.converged_
    bounds = np.array(m.lower_bounds_)
    assert np.all(np.diff(bounds) >= -1e-12 * np.abs(bounds[1:]))  # never decreases
    # each bound is the mean observed-data log-likelihood before that iteration's M-step, so
    # the final parameters score at least the last one, by less than the tolerance
    assert 0 <= m.score(Xm) - bounds[-1] < 1e-6
    angle = np.degrees(subspace_angles(m.components_.T, W_true)).max()
    assert angle < 5.0
    rmse = np.sqrt(((m.impute(Xm) - X)[mask] ** 2).mean())
    columns = np.nonzero(mask)[1]  # mean imputation: each column's observed mean
    mean_rmse = np.sqrt(((np.nanmean(Xm, 0)[columns] - X[mask]) ** 2).mean())
    assert rmse < 0.5 * mean_rmse


def test_chunked_and_npy_fits_equal_in_memory(data, tmp_path):
    X = data[0][:200]
    ref = _quiet_fit(_em(), X)
    path = tmp_path / "x.npy"
    np.save(path, X)
    for source, kw in ((X, {"chunk_size": 7}), (str(path), {"chunk_size": 33})):
        ours = _quiet_fit(_em(**kw), source)
        np.testing.assert_allclose(ours.components_, ref.components_, rtol=0, atol=1e-10)
        np.testing.assert_allclose(ours.noise_variance_, ref.noise_variance_, rtol=1e-10)
        np.testing.assert_allclose(ours.lower_bounds_, ref.lower_bounds_, rtol=1e-12)
    Xm, _ = with_missing(X, 0.2)
    ref = _quiet_fit(_em(), Xm)
    ours = _quiet_fit(_em(chunk_size=9), Xm)
    np.testing.assert_allclose(ours.components_, ref.components_, rtol=0, atol=1e-10)
    cf = ProbabilisticPCA(3, chunk_size=5).fit(str(path))
    np.testing.assert_allclose(cf.get_covariance(), ProbabilisticPCA(3).fit(X).get_covariance(),
                               atol=1e-10)


def test_sample_has_the_model_covariance(data):
    X, _ = data
    m = ProbabilisticPCA(3, random_state=0).fit(X)
    S = m.sample(200_000)
    np.testing.assert_allclose(S.mean(0), m.mean_, atol=0.05)
    np.testing.assert_allclose(np.cov(S.T), m.get_covariance(), atol=0.15)
    np.testing.assert_allclose(m.inverse_transform(np.zeros((1, 3)))[0], m.mean_)


def test_float32_agrees_with_float64(data):
    X, _ = data
    Xm, _ = with_missing(X, 0.1)
    for solver in ("closed_form", "em"):
        Xs = X if solver == "closed_form" else Xm
        m32 = _quiet_fit(ProbabilisticPCA(3, solver=solver, dtype="float32", max_iter=30), Xs)
        m64 = _quiet_fit(ProbabilisticPCA(3, solver=solver, max_iter=30), Xs)
        assert m32.transform(Xs).dtype == np.float32
        np.testing.assert_allclose(m32.score(Xs), m64.score(Xs), rtol=1e-4)


def test_bad_inputs_have_clear_errors(data):
    X, _ = data
    bad = X[:20].copy()
    bad[3] = np.nan
    with pytest.raises(ValueError, match=r"Row\(s\) \[3\] of X are entirely NaN"):
        ProbabilisticPCA(2).fit(bad)
    bad = X[:20].copy()
    bad[:, 5] = np.nan
    with pytest.raises(ValueError, match=r"Feature\(s\) \[5\] of X are entirely NaN"):
        ProbabilisticPCA(2).fit(bad)
    with pytest.raises(ValueError, match="n_components=9 is larger than n_features = 8"):
        ProbabilisticPCA(9).fit(X)
    with pytest.raises(ValueError, match="closed_form.*NaN"):
        ProbabilisticPCA(2, solver="closed_form").fit(with_missing(X, 0.1)[0])
    with pytest.raises(ValueError, match="infinity"):
        ProbabilisticPCA(2).fit(np.where(np.eye(*X.shape) > 0, np.inf, X))
    m = ProbabilisticPCA(2).fit(X)
    with pytest.raises(ValueError, match="entirely NaN"):
        m.transform(np.full((1, 8), np.nan))
