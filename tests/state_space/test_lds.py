"""The linear dynamical system against a dense joint Gaussian, statsmodels' Kalman filter,
EM's monotonicity and the engine's chunked / .npy paths."""

import warnings

import numpy as np
import pytest
from scipy.stats import multivariate_normal

from bayesdl.state_space import LinearGaussianStateSpace

A = np.array([[0.9, 0.2], [-0.1, 0.8]])
C = np.array([[1.0, 0.5], [-0.3, 1.2], [0.7, -0.4]])
Q = np.array([[0.35, 0.05], [0.05, 0.3]])
R = np.array([[0.5, 0.1, 0.0], [0.1, 0.25, 0.05], [0.0, 0.05, 0.35]])
MU0 = np.array([1.0, -1.0])
V0 = np.array([[1.0, 0.3], [0.3, 2.0]])


def _model(**kw):
    return LinearGaussianStateSpace(A, C, Q, R, MU0, V0, **kw)


def _dense_joint(T):
    """Mean and covariance of (x_1, ..., x_T) stacked: the LDS as one Gaussian."""
    n = A.shape[0]
    means, P = [MU0], [V0]
    for _ in range(1, T):
        means.append(A @ means[-1])
        P.append(A @ P[-1] @ A.T + Q)
    Czz = np.zeros((T * n, T * n))
    for s in range(T):
        for t in range(s, T):  # cov(z_t, z_s) = A^(t-s) P_s for t >= s
            block = np.linalg.matrix_power(A, t - s) @ P[s]
            Czz[t * n:(t + 1) * n, s * n:(s + 1) * n] = block
            Czz[s * n:(s + 1) * n, t * n:(t + 1) * n] = block.T
    big_C = np.kron(np.eye(T), C)
    return big_C @ np.concatenate(means), big_C @ Czz @ big_C.T + np.kron(np.eye(T), R)


def _with_missing(x):
    x = x.copy()
    x[2] = np.nan  # a whole timestep
    x[4, 1] = np.nan  # one entry
    return x


@pytest.mark.parametrize("missing", [False, True])
def test_filter_log_likelihood_is_the_dense_joint_gaussian_density(missing):
    _, x = _model().sample(7, random_state=0)
    x = _with_missing(x) if missing else x
    mean, cov = _dense_joint(7)
    o = ~np.isnan(x.ravel())
    expected = multivariate_normal(mean[o], cov[np.ix_(o, o)]).logpdf(x.ravel()[o])
    np.testing.assert_allclose(_model().score(x), expected, rtol=1e-12)


def test_log_likelihood_equals_statsmodels_kalman_filter():
    from statsmodels.tsa.statespace.mlemodel import MLEModel

    _, x = _model().sample(40, random_state=1)
    x = _with_missing(x)
    mod = MLEModel(x, k_states=2, initialization="known", initial_state=MU0,
                   initial_state_cov=V0)
    mod.ssm["design"], mod.ssm["obs_cov"], mod.ssm["transition"] = C, R, A
    mod.ssm["selection"], mod.ssm["state_cov"] = np.eye(2), Q
    np.testing.assert_allclose(_model().score(x), mod.ssm.loglike(), rtol=1e-10)
    res = mod.ssm.smooth()
    means, covs = _model().smooth(x)
    np.testing.assert_allclose(means, res.smoothed_state.T, atol=1e-10)
    np.testing.assert_allclose(covs, res.smoothed_state_cov.transpose(2, 0, 1), atol=1e-10)
    f_means, f_covs = _model().filter(x)
    np.testing.assert_allclose(f_means, res.filtered_state.T, atol=1e-10)
    np.testing.assert_allclose(f_covs, res.filtered_state_cov.transpose(2, 0, 1), atol=1e-10)


def test_local_level_forecast_bands_match_statsmodels():
    import statsmodels.api as sm

    y = np.cumsum(np.random.RandomState(0).randn(60)) + 10
    res = sm.tsa.UnobservedComponents(y, "llevel").fit(disp=False)
    obs_var, level_var = res.params
    model = LinearGaussianStateSpace(1.0, 1.0, level_var, obs_var, 0.0, 1e6 * np.var(y))
    fc = model.forecast(y, 5)
    ref = res.get_forecast(5)
    np.testing.assert_allclose(fc.mean[:, 0], ref.predicted_mean, rtol=1e-4)
    np.testing.assert_allclose(fc.lower[:, 0], ref.conf_int(alpha=0.05)[:, 0], rtol=1e-4)


def _many_sequences(n_seq=12, T=40):
    X = np.concatenate([_model().sample(T, random_state=i)[1] for i in range(n_seq)])
    X[np.random.RandomState(0).rand(*X.shape) < 0.1] = np.nan
    return X, [T] * n_seq


def _fit(model, X, lengths):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return model.fit(X, lengths)


def test_em_never_decreases_the_likelihood_and_learns_the_noise():
    X, lengths = _many_sequences()
    start = np.array([[0.5, 0.0], [0.2, -0.1], [0.1, 0.4]])
    model = _fit(LinearGaussianStateSpace(n_dim_state=2, observation_matrices=start,
                                          em_vars="all", n_iter=15, tol=0), X, lengths)
    bounds = np.asarray(model.lower_bounds_)
    assert np.all(np.diff(bounds) >= -1e-8 * np.abs(bounds[1:]))
    # the learned model explains the data at least as well as the truth, up to EM's progress
    assert model.score(X, lengths) > _model().score(X, lengths) - 60
    for name in ("transition_covariance_", "observation_covariance_"):
        assert np.all(np.linalg.eigvalsh(getattr(model, name)) > 0)
    # with A, C and the initial state fixed at the truth, R and Q are recovered
    fixed = _fit(_model(em_vars=["transition_covariance", "observation_covariance"],
                        n_iter=20, tol=0), *_many_sequences(30, 60))
    np.testing.assert_allclose(fixed.observation_covariance_, R, atol=0.08)
    np.testing.assert_allclose(fixed.transition_covariance_, Q, atol=0.12)


def test_chunked_and_npy_em_equal_the_in_memory_em(tmp_path):
    X, lengths = _many_sequences()
    kw = dict(em_vars="all", n_iter=6, tol=0, n_dim_state=2,
              observation_matrices=np.array([[0.5, 0.0], [0.2, -0.1], [0.1, 0.4]]))
    whole = _fit(LinearGaussianStateSpace(**kw), X, lengths)
    np.save(tmp_path / "x.npy", X)
    for other in (_fit(LinearGaussianStateSpace(chunk_size=90, **kw), X, lengths),
                  _fit(LinearGaussianStateSpace(chunk_size=130, **kw), str(tmp_path / "x.npy"),
                       lengths)):
        for name in ("transition_matrices_", "observation_matrices_", "observation_covariance_",
                     "transition_covariance_", "initial_state_mean_"):
            np.testing.assert_allclose(getattr(other, name), getattr(whole, name), rtol=0,
                                       atol=1e-10, err_msg=name)


def test_errors_are_one_line_and_clear():
    with pytest.raises(ValueError, match="observation_matrices must have shape"):
        LinearGaussianStateSpace(np.eye(3), C).score(np.zeros((5, 3)))
    with pytest.raises(ValueError, match="steps must be at least 1"):
        _model().forecast(np.zeros((5, 3)), 0)
    with pytest.raises(ValueError, match="em_vars has unknown names"):
        _model(em_vars=["transition"]).fit(np.zeros((5, 3)))
