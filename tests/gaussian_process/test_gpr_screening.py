"""Restart screening of the exact GP fit (``screen_subsample``): the leave-one-out densities
against an explicit leave-one-out loop (scipy), the screened fit against scikit-learn's
gradient (a full-data stationary point) and against the unscreened fit, on a unimodal and a
multimodal (signal-vs-noise) evidence."""

import numpy as np
import pytest
import torch
from scipy.stats import norm
from sklearn.gaussian_process import GaussianProcessRegressor as SkGPR
from sklearn.gaussian_process import kernels as sk

from bayesdl.gaussian_process import GaussianProcessRegressor
from bayesdl.gaussian_process import gpr
from bayesdl.gaussian_process import kernels as bk
from bayesdl.gaussian_process.gpr import (log_evidence, loo_log_predictive, minimize_starts,
                                          restart_points)


def _smooth(n, seed):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-2, 2, size=(n, 2))
    return X, np.sin(2 * X[:, 0]) + 0.5 * X[:, 1] ** 2 + 0.1 * rng.normal(size=n)


def _ard(m):
    return m.ConstantKernel(1.0) * m.RBF([1.0, 1.0]) + m.WhiteKernel(0.1)


def test_loo_log_predictive_is_the_explicit_leave_one_out():
    """R&W 5.12 from one factorisation equals n conditionals of the joint Gaussian."""
    X, y = _smooth(25, 0)
    Y = np.column_stack([y, np.cos(X[:, 1])])  # two outputs: the densities add up
    kernel = _ard(bk)
    thetas = np.stack([kernel.theta, kernel.theta + 0.4])  # (2, P)
    got = loo_log_predictive(kernel, torch.tensor(thetas), torch.tensor(X), torch.tensor(Y),
                             torch.tensor(1e-6, dtype=torch.float64)).numpy()  # (2, n)
    for theta, row in zip(thetas, got):
        K = _ard(sk).clone_with_theta(theta)(X) + 1e-6 * np.eye(len(X))
        for i in range(len(X)):
            rest = np.arange(len(X)) != i
            w = np.linalg.solve(K[np.ix_(rest, rest)], K[rest, i])  # (n - 1,)
            mean, var = Y[rest].T @ w, K[i, i] - K[i, rest] @ w  # (T,), scalar
            np.testing.assert_allclose(row[i], norm.logpdf(Y[i], mean, np.sqrt(var)).sum(),
                                       rtol=1e-9)


@pytest.mark.parametrize("seed", [0, 2])
def test_screened_fit_is_a_full_data_optimum_at_least_the_unscreened_one(seed):
    X, y = _smooth(250, seed)
    fit = {screen: GaussianProcessRegressor(_ard(bk), n_restarts_optimizer=3,
                                            screen_subsample=screen, random_state=seed).fit(X, y)
           for screen in (60, None)}
    screened, full = fit[60], fit[None]
    assert len(screened.starts_kept_) < 4  # the screen dropped starts ...
    np.testing.assert_array_equal(full.starts_kept_, np.arange(4))
    # ... and still ends at the evidence of the fit that ran every start on all the data
    assert screened.log_marginal_likelihood_value_ >= full.log_marginal_likelihood_value_ - 1e-6
    # a stationary point of the full-data evidence: scikit-learn's gradient there (at the
    # 4 starts it is 1e1-1e3; the optimiser stops on a relative reduction of 2e-9)
    theta, bounds = screened.kernel_.theta, screened.kernel_.bounds
    assert ((theta > bounds[:, 0] + 1e-6) & (theta < bounds[:, 1] - 1e-6)).all()
    _, grad = SkGPR(_ard(sk), optimizer=None).fit(X, y).log_marginal_likelihood(
        theta, eval_gradient=True)
    assert np.abs(grad).max() < 0.02


def test_multimodal_evidence_keeps_the_start_that_wins_on_all_the_data():
    """A weak sine under strong noise: the evidence has a signal mode (length-scale ~0.3) and
    a noise mode (length-scale at its bound, all variance in the WhiteKernel). On the 30-row
    screening subsample the noise mode is the best optimum; on all 300 rows the signal mode
    wins by ~17 nats. The screen must keep a start that reaches it."""
    rng = np.random.default_rng(2)
    X = rng.uniform(0, 5, size=(300, 1))
    y = 0.25 * np.sin(3 * X[:, 0]) + 0.5 * rng.normal(size=300)
    kernel = bk.ConstantKernel(1.0, (1e-3, 1e3)) * bk.RBF(10.0, (1e-2, 1e3)) + bk.WhiteKernel(
        1.0, (1e-5, 1e1))
    screened = GaussianProcessRegressor(kernel, n_restarts_optimizer=5, screen_subsample=30,
                                        random_state=2).fit(X, y)
    # the case is what it claims (the same starts and rows as the fit draws them), and every
    # start run on all the data is what the unscreened fit does
    rs = np.random.RandomState(2)
    starts = restart_points(kernel, 5, rs)
    rows = np.sort(rs.choice(300, 30, replace=False))
    alpha = torch.tensor(1e-10, dtype=torch.float64)

    def optima(Xa, ya):
        Xt, yt = torch.tensor(Xa), torch.tensor(ya)[:, None]
        return minimize_starts(lambda g, t: log_evidence(kernel, t, Xt, yt, alpha, strict=False),
                               starts, kernel.bounds, like=Xt)

    sub = optima(X[rows], y[rows])
    assert np.exp(min(sub, key=lambda r: r.fun).x[1]) > 100  # noise mode best on the subsample
    every = np.array([-r.fun for r in optima(X, y)])
    assert every.max() - every.min() > 10  # genuinely multimodal on all the data
    assert len(screened.starts_kept_) < 6
    assert screened.log_marginal_likelihood_value_ >= every.max() - 1e-6
    assert np.exp(screened.kernel_.theta[1]) < 1  # the signal mode


def test_auto_screens_from_screen_min_samples_rows_and_never_without_restarts(monkeypatch):
    X, y = _smooth(120, 4)
    kw = dict(n_restarts_optimizer=3, random_state=0)
    # below SCREEN_MIN_SAMPLES (and for an int >= n) every start runs on all the data
    for screen in ("auto", 120):
        model = GaussianProcessRegressor(_ard(bk), screen_subsample=screen, **kw).fit(X, y)
        np.testing.assert_array_equal(model.starts_kept_, np.arange(4))
    monkeypatch.setattr(gpr, "SCREEN_MIN_SAMPLES", 100)
    monkeypatch.setattr(gpr, "SCREEN_ROWS", 40)
    auto = GaussianProcessRegressor(_ard(bk), screen_subsample="auto", **kw).fit(X, y)
    forty = GaussianProcessRegressor(_ard(bk), screen_subsample=40, **kw).fit(X, y)
    assert len(auto.starts_kept_) < 4
    np.testing.assert_array_equal(auto.starts_kept_, forty.starts_kept_)
    alone = GaussianProcessRegressor(_ard(bk), screen_subsample="auto", random_state=0).fit(X, y)
    np.testing.assert_array_equal(alone.starts_kept_, [0])
    assert GaussianProcessRegressor(_ard(bk), optimizer=None).fit(X, y).starts_kept_ is None


def test_bad_screen_subsample_is_refused():
    X, y = _smooth(30, 0)
    with pytest.raises(ValueError, match="screen_subsample"):
        GaussianProcessRegressor(_ard(bk), screen_subsample=1).fit(X, y)
    with pytest.raises(ValueError, match="screen_subsample"):
        GaussianProcessRegressor(_ard(bk), screen_subsample="half").fit(X, y)
