"""Bayesian linear regression against scikit-learn, closed forms and scipy."""

import warnings

import numpy as np
import pytest
import torch
from scipy.stats import multivariate_normal
from sklearn.datasets import load_diabetes
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import BayesianRidge

from bayesdl.datasets import make_sinusoidal
from bayesdl.linear_model import (BayesianLinearRegression, PolynomialBasis, UnderdeterminedWarning,
                                  select_degree)

# scikit-learn's BayesianRidge calls the noise precision alpha and the weight precision lambda.
SK_PRIORS = dict(alpha_1=1e-4, alpha_2=2e-4, lambda_1=3e-4, lambda_2=5e-4)
OUR_PRIORS = dict(beta_shape=1e-4, beta_rate=2e-4, alpha_shape=3e-4, alpha_rate=5e-4)


def _rel(a, b):
    return np.max(np.abs(np.asarray(a) - b) / np.abs(b))


@pytest.fixture(scope="module")
def diabetes():
    return load_diabetes(return_X_y=True)


@pytest.mark.parametrize("fit_intercept", [True, False])
def test_matches_sklearn_bayesian_ridge_on_diabetes(diabetes, fit_intercept):
    X, y = diabetes
    if not fit_intercept:
        y = y - y.mean()  # without an intercept, a centred target keeps the fit sensible
    sk = BayesianRidge(tol=1e-14, max_iter=5000, fit_intercept=fit_intercept, **SK_PRIORS).fit(X, y)
    us = BayesianLinearRegression(tol=1e-14, max_iter=5000, fit_intercept=fit_intercept,
                                  **OUR_PRIORS).fit(X, y)
    assert us.converged_
    assert _rel(us.coef_, sk.coef_) < 1e-10
    assert us.intercept_ == pytest.approx(sk.intercept_, rel=1e-10, abs=1e-12)
    assert _rel(us.beta_, sk.alpha_) < 1e-10
    assert _rel(us.alpha_, sk.lambda_) < 1e-10
    assert _rel(us.sigma_, sk.sigma_) < 1e-10
    mean_sk, std_sk = sk.predict(X[:50], return_std=True)
    mean, std = us.predict(X[:50], return_std=True)
    assert _rel(mean, mean_sk) < 1e-10
    # scikit-learn leaves out the intercept's posterior variance 1/(beta N); we include it.
    intercept_var = 1.0 / (us.beta_ * len(y)) if fit_intercept else 0.0
    assert _rel(std, np.sqrt(std_sk**2 + intercept_var)) < 1e-10


def test_sample_weight_matches_sklearn(diabetes):
    X, y = diabetes
    w = np.random.default_rng(0).uniform(0.1, 3.0, len(y))
    sk = BayesianRidge(tol=1e-14, max_iter=5000).fit(X, y, sample_weight=w)
    us = BayesianLinearRegression(tol=1e-14, max_iter=5000).fit(X, y, sample_weight=w)
    assert _rel(us.coef_, sk.coef_) < 1e-10
    assert _rel(us.beta_, sk.alpha_) < 1e-10 and _rel(us.alpha_, sk.lambda_) < 1e-10


def test_posterior_matches_direct_solve_prml_3_53_3_54():
    rng = np.random.default_rng(1)
    Phi = rng.normal(size=(40, 6))
    t = Phi @ rng.normal(size=6) + 0.3 * rng.normal(size=40)
    alpha, beta = 2.0, 11.0
    model = BayesianLinearRegression(alpha=alpha, beta=beta, fit_intercept=False).fit(Phi, t)
    S_N = np.linalg.inv(alpha * np.eye(6) + beta * Phi.T @ Phi)  # PRML 3.54
    m_N = beta * S_N @ Phi.T @ t  # PRML 3.53
    np.testing.assert_allclose(model.sigma_, S_N, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(model.coef_, m_N, rtol=1e-10)
    # predictive variance 1/beta + phi^T S_N phi  (PRML 3.59)
    mean, std = model.predict(Phi[:5], return_std=True)
    np.testing.assert_allclose(mean, Phi[:5] @ m_N, rtol=1e-10)
    np.testing.assert_allclose(std**2, 1 / beta + np.einsum("ni,ij,nj->n", Phi[:5], S_N, Phi[:5]),
                               rtol=1e-10)
    # the evidence (PRML 3.86) is the Gaussian marginal N(t | 0, 1/beta I + 1/alpha Phi Phi^T)
    cov = np.eye(40) / beta + Phi @ Phi.T / alpha
    assert model.log_evidence_ == pytest.approx(multivariate_normal(np.zeros(40), cov).logpdf(t),
                                                rel=1e-10)


def test_evidence_maximisation_is_a_stationary_point_of_the_evidence():
    """At the learned alpha, beta the scipy evidence is maximal along both axes."""
    x, t = make_sinusoidal(30, 0.2, random_state=3)
    Phi = PolynomialBasis(degree=4, include_bias=True).fit_transform(x)
    kw = dict(alpha_shape=0, alpha_rate=0, beta_shape=0, beta_rate=0, fit_intercept=False)
    model = BayesianLinearRegression(tol=1e-12, max_iter=10000, **kw).fit(Phi, t)

    def log_ev(a, b):
        cov = np.eye(len(t)) / b + Phi @ Phi.T / a
        return multivariate_normal(np.zeros(len(t)), cov).logpdf(t)

    best = log_ev(model.alpha_, model.beta_)
    assert best == pytest.approx(model.log_evidence_, rel=1e-9)
    for f in (0.9, 1.1):
        assert log_ev(model.alpha_ * f, model.beta_) < best
        assert log_ev(model.alpha_, model.beta_ * f) < best


@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("fixed", [True, False])
def test_partial_fit_in_10_chunks_equals_batch(diabetes, fit_intercept, fixed):
    X, y = diabetes
    kw = dict(alpha=1e-2, beta=3e-4) if fixed else dict(tol=1e-14, max_iter=5000)
    batch = BayesianLinearRegression(fit_intercept=fit_intercept, **kw).fit(X, y)
    seq = BayesianLinearRegression(fit_intercept=fit_intercept, **kw)
    for rows in np.array_split(np.arange(len(y)), 10):
        seq.partial_fit(X[rows], y[rows])
    for name in ["coef_", "sigma_", "intercept_", "alpha_", "beta_", "log_evidence_"]:
        np.testing.assert_allclose(getattr(seq, name), getattr(batch, name), rtol=1e-10, atol=1e-12,
                                   err_msg=name)


def test_fit_forgets_previous_partial_fits(diabetes):
    X, y = diabetes
    model = BayesianLinearRegression().partial_fit(X[:100] * 3, y[:100])
    np.testing.assert_allclose(model.fit(X, y).coef_, BayesianLinearRegression().fit(X, y).coef_)


def test_prml_figure_3_14_evidence_peaks_at_degree_3():
    # PRML Figure 1.2 data: N = 10 evenly spaced x, noise std 0.3; PRML fixes alpha = 5e-3
    # and beta = 1 / 0.3^2 for Figure 3.14.
    x, t = make_sinusoidal(10, 0.3, random_state=6, uniform_grid=True)
    result = select_degree(x, t, range(10), alpha=5e-3, beta=1 / 0.09, fit_intercept=False)
    assert result.best_degree == 3
    # Each evidence is the Gaussian marginal likelihood, computed independently by scipy.
    for m, log_ev in zip(result.degrees, result.log_evidence):
        Phi = np.vander(x[:, 0], m + 1, increasing=True)
        cov = 0.09 * np.eye(10) + Phi @ Phi.T / 5e-3
        assert log_ev == pytest.approx(multivariate_normal(np.zeros(10), cov).logpdf(t), rel=1e-8)


def test_predict_dist_is_a_torch_normal_consistent_with_predict(diabetes):
    X, y = diabetes
    model = BayesianLinearRegression().fit(X, y)
    dist = model.predict_dist(X[:7])
    assert isinstance(dist, torch.distributions.Normal) and dist.mean.dtype == torch.float64
    mean, std = model.predict(X[:7], return_std=True)
    np.testing.assert_allclose(dist.mean.numpy(), mean)
    np.testing.assert_allclose(dist.stddev.numpy(), std)
    assert model.score(X, y) == pytest.approx(BayesianRidge().fit(X, y).score(X, y), rel=1e-4)


def test_sample_posterior_moments(diabetes):
    X, y = diabetes
    model = BayesianLinearRegression(random_state=0).fit(X, y)
    coef, intercept = model.sample_posterior(20000)
    assert coef.shape == (20000, X.shape[1]) and intercept.shape == (20000,)
    se = np.sqrt(np.diag(model.sigma_) / 20000)
    assert np.all(np.abs(coef.mean(0) - model.coef_) < 5 * se)
    np.testing.assert_allclose(np.cov(coef.T), model.sigma_, rtol=0.1, atol=0.05 * np.abs(model.sigma_).max())
    # function draws at the training mean have the intercept variance 1/(beta N)
    at_mean = intercept + coef @ model.X_offset_
    assert np.var(at_mean) == pytest.approx(1 / (model.beta_ * len(y)), rel=0.05)
    again, _ = model.sample_posterior(20000)
    np.testing.assert_array_equal(again, coef)  # random_state makes draws reproducible


def test_float32_agrees_with_float64(diabetes):
    X, y = diabetes
    m64 = BayesianLinearRegression().fit(X, y)
    m32 = BayesianLinearRegression(dtype="float32", tol=1e-6).fit(X, y)
    assert m32.predict_dist(X).mean.dtype == torch.float32
    np.testing.assert_allclose(m32.predict(X), m64.predict(X), rtol=1e-4)


def test_float32_returns_float32_posterior(diabetes):
    X, y = diabetes
    m64 = BayesianLinearRegression().fit(X, y)
    m32 = BayesianLinearRegression(dtype="float32").fit(X.astype(np.float32), y)
    assert m32.coef_.dtype == np.float32 and m32.sigma_.dtype == np.float32
    assert m64.coef_.dtype == np.float64 and m64.sigma_.dtype == np.float64
    np.testing.assert_allclose(m32.coef_, m64.coef_, rtol=1e-3)
    coef, _ = m32.sample_posterior(3, random_state=0)
    assert coef.dtype == np.float32


def test_fewer_rows_than_parameters_warns_that_beta_comes_from_the_prior():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(4, 3))
    y = X @ [1.0, 2.0, 3.0] + 0.3 * rng.normal(size=4)  # the case: true noise sd 0.3
    with pytest.warns(UnderdeterminedWarning, match=r"4 rows for 4 parameters \(3 coefficients "
                      r"\+ intercept\).*Fix the noise with beta=1/sigma\^2, or fit on more rows"):
        model = BayesianLinearRegression().fit(X, y)
    assert model.beta_ ** -0.5 < 0.01  # interpolation: a noise sd set by the hyper-prior
    with pytest.warns(UnderdeterminedWarning, match="3 rows for 3 parameters"):
        BayesianLinearRegression(fit_intercept=False).fit(X[:3], y[:3])
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnderdeterminedWarning)
        BayesianLinearRegression(beta=4.0).fit(X, y)  # the noise is fixed: nothing to warn
        BayesianLinearRegression(fit_intercept=False).fit(X, y)  # 4 rows, 3 parameters
        X5, y5 = rng.normal(size=(5, 3)), rng.normal(size=5)
        BayesianLinearRegression().fit(X5, y5)
        # Zero-weight rows do not count; rows seen by partial_fit do.
        streamed = BayesianLinearRegression().partial_fit(X5, y5)
        streamed.partial_fit(X, y)
    assert streamed.n_rows_seen_ == 9
    with pytest.warns(UnderdeterminedWarning, match="4 rows for 4 parameters"):
        BayesianLinearRegression().fit(X5, y5, sample_weight=[1, 1, 0, 1, 1])


def test_bad_input_errors(diabetes):
    X, y = diabetes
    model = BayesianLinearRegression()
    with pytest.raises(ValueError, match="NaN"):
        model.fit(np.where(X == X[0, 0], np.nan, X), y)
    with pytest.raises(ValueError, match="infinity"):
        model.fit(np.where(X == X[0, 0], np.inf, X), y)
    with pytest.raises(ValueError, match="Expected 2D array"):
        model.fit(X[:, 0], y)
    with pytest.raises(ValueError, match="0 sample"):
        model.fit(X[:0], y[:0])
    with pytest.raises(ValueError, match="minimum of 2 is required"):
        model.fit(X[:1], y[:1])
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        model.fit(X, y[:-1])
    model.fit(X, y)
    with pytest.raises(ValueError, match="features"):
        model.predict(X[:, :5])
    with pytest.raises(ValueError, match="dtype"):
        BayesianLinearRegression(dtype="float16").fit(X, y)
    with pytest.raises(ValueError, match="alpha"):
        BayesianLinearRegression(alpha=-1.0).fit(X, y)
    with pytest.raises(ValueError, match="no CUDA GPU") if not torch.cuda.is_available() else _nullcontext():
        BayesianLinearRegression(device="cuda").fit(X, y)
    with pytest.raises(ValueError, match="sample_weight"):
        model.fit(X, y, sample_weight=-np.ones(len(y)))


def test_convergence_warning_when_max_iter_too_small(diabetes):
    X, y = diabetes
    with pytest.warns(ConvergenceWarning, match="increase max_iter"):
        BayesianLinearRegression(max_iter=2).fit(X, y)


class _nullcontext:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False
