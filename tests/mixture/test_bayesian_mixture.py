"""BayesianGaussianMixture against scikit-learn and the PRML 10.2 formulas."""

import warnings

import numpy as np
import pytest
import torch
from scipy.special import betaln, digamma, gammaln, logsumexp
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import BayesianGaussianMixture as SkBayesianGaussianMixture

import bayesdl
from bayesdl.datasets import make_gaussian_blobs
from bayesdl.mixture import BayesianGaussianMixture
from bayesdl.mixture._suffstats import COVARIANCE_TYPES

PRIORS = ["dirichlet_process", "dirichlet_distribution"]


@pytest.fixture(scope="module")
def blobs():
    X, _ = make_gaussian_blobs(300, means=((0, 0, 0), (4, 4, 0), (0, 5, 3)), random_state=0)
    return X


@pytest.mark.parametrize("prior", PRIORS)
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_matches_sklearn_from_identical_initial_responsibilities(blobs, covariance_type, prior):
    # init_params="random" draws the initial responsibilities from the same RandomState
    # stream in both libraries; max_iter=0 checks that they start from the same state.
    kw = dict(n_components=5, covariance_type=covariance_type, init_params="random",
              weight_concentration_prior_type=prior, random_state=3, tol=0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for max_iter in (0, 10):
            ref = SkBayesianGaussianMixture(max_iter=max_iter, **kw).fit(blobs)
            ours = BayesianGaussianMixture(max_iter=max_iter, **kw).fit(blobs)
            np.testing.assert_allclose(ours.weights_, ref.weights_, rtol=1e-10, atol=1e-14)
            np.testing.assert_allclose(ours.means_, ref.means_, rtol=1e-10, atol=1e-12)
            np.testing.assert_allclose(ours.covariances_, ref.covariances_, rtol=1e-10)
            np.testing.assert_allclose(ours.precisions_cholesky_, ref.precisions_cholesky_,
                                       rtol=1e-10, atol=1e-12)
            np.testing.assert_allclose(np.asarray(ours.weight_concentration_),
                                       np.asarray(ref.weight_concentration_), rtol=1e-10)
            np.testing.assert_allclose(ours.mean_precision_, ref.mean_precision_, rtol=1e-10)
            np.testing.assert_allclose(ours.degrees_of_freedom_, ref.degrees_of_freedom_,
                                       rtol=1e-10)
    np.testing.assert_allclose(ours.lower_bound_, ref.lower_bound_, rtol=1e-10)
    np.testing.assert_allclose(ours.lower_bounds_, np.ravel(ref.lower_bounds_), rtol=1e-10)
    np.testing.assert_allclose(ours.predict_proba(blobs), ref.predict_proba(blobs), atol=1e-10)
    np.testing.assert_allclose(ours.score_samples(blobs), ref.score_samples(blobs), rtol=1e-10)


@pytest.mark.parametrize("prior", PRIORS)
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_elbo_never_decreases(blobs, covariance_type, prior):
    vb = BayesianGaussianMixture(n_components=6, covariance_type=covariance_type,
                                 weight_concentration_prior_type=prior, init_params="random",
                                 warm_start=True, max_iter=1, tol=0.0, random_state=0)
    bounds = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for _ in range(25):
            bounds.append(vb.fit(blobs).lower_bound_)
    assert np.all(np.diff(bounds) >= -1e-9 * np.abs(bounds[:-1])), np.diff(bounds).min()
    assert bounds[-1] > bounds[0]


def test_vb_prunes_ten_components_to_the_three_clusters():
    X, _ = make_gaussian_blobs(600, means=((0, 0), (8, 8), (0, 10)), random_state=1)
    vb = BayesianGaussianMixture(n_components=10, weight_concentration_prior=1e-3,
                                 weight_concentration_prior_type="dirichlet_distribution",
                                 max_iter=1000, random_state=0).fit(X)
    assert vb.converged_
    assert np.sum(vb.weights_ > 0.01) == 3 == vb.n_active_components_
    np.testing.assert_allclose(np.sort(vb.weights_)[-3:].sum(), 1.0, atol=1e-3)


def test_variational_responsibilities_follow_prml_10_46_to_10_49(blobs):
    vb = BayesianGaussianMixture(n_components=4, weight_concentration_prior_type=
                                 "dirichlet_distribution", random_state=0).fit(blobs)
    X, (K, D) = blobs[::10], vb.means_.shape
    alpha, beta, nu = vb.weight_concentration_, vb.mean_precision_, vb.degrees_of_freedom_
    log_rho = np.empty((len(X), K))
    for k in range(K):
        W = np.linalg.inv(vb.covariances_[k] * nu[k])  # Wishart scale W_k
        e_log_pi = digamma(alpha[k]) - digamma(alpha.sum())  # PRML 10.66
        e_log_lambda = (sum(digamma((nu[k] - i) / 2) for i in range(D)) + D * np.log(2)
                        + np.linalg.slogdet(W)[1])  # PRML 10.65
        for n, x in enumerate(X):
            d = x - vb.means_[k]
            e_quad = D / beta[k] + nu[k] * d @ W @ d  # PRML 10.64
            log_rho[n, k] = (e_log_pi + 0.5 * e_log_lambda - 0.5 * D * np.log(2 * np.pi)
                             - 0.5 * e_quad)  # PRML 10.46
    resp = np.exp(log_rho - logsumexp(log_rho, axis=1, keepdims=True))  # PRML 10.49
    np.testing.assert_allclose(vb.predict_proba(X), resp, atol=1e-10)


def test_save_load_roundtrip(blobs, tmp_path):
    for prior in PRIORS:
        vb = BayesianGaussianMixture(n_components=4, weight_concentration_prior_type=prior,
                                     covariance_type="tied", random_state=0).fit(blobs)
        path = vb.save(tmp_path / "vb.safetensors")
        back = bayesdl.load(path)
        np.testing.assert_array_equal(back.predict_proba(blobs), vb.predict_proba(blobs))
        assert back.n_active_components_ == vb.n_active_components_
        assert back.elbo_ == vb.elbo_ and back.lower_bound_ == vb.lower_bound_


def test_clear_errors(blobs):
    with pytest.raises(ValueError, match="degrees_of_freedom_prior must be greater than 2"):
        BayesianGaussianMixture(degrees_of_freedom_prior=1.0).fit(blobs)
    with pytest.raises(ValueError, match="covariance_prior must have shape"):
        BayesianGaussianMixture(covariance_prior=np.eye(2)).fit(blobs)
    with pytest.raises(ValueError, match="n_samples >= n_components"):
        BayesianGaussianMixture(n_components=10).fit(blobs[:5])


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_predictive_density_is_the_student_t_mixture_of_prml_10_81(blobs, covariance_type):
    from scipy.stats import multivariate_t

    vb = BayesianGaussianMixture(n_components=3, covariance_type=covariance_type,
                                 weight_concentration_prior_type="dirichlet_distribution",
                                 random_state=0).fit(blobs)
    X, (K, D) = blobs[::15], vb.means_.shape
    alpha, beta = vb.weight_concentration_, vb.mean_precision_
    nu = np.broadcast_to(vb.degrees_of_freedom_, (K,))
    covs = vb._to_numpy(vb._full_covariances())
    density = np.zeros(len(X))
    for k in range(K):
        W = np.linalg.inv(covs[k] * nu[k])
        L = (nu[k] + 1 - D) * beta[k] / (1 + beta[k]) * W  # PRML 10.82
        density += alpha[k] / alpha.sum() * multivariate_t(
            vb.means_[k], np.linalg.inv(L), df=nu[k] + 1 - D).pdf(X)
    predictive = vb.to_distribution()
    np.testing.assert_allclose(predictive.log_prob(torch.as_tensor(X)).numpy(), np.log(density),
                               rtol=1e-10)
    assert predictive.sample((5,)).shape == (5, D)


def _normal_wishart_log_evidence(X, m0, beta0, nu0, W0_inv):
    from bayesdl.distributions.conjugate import NormalWishartModel

    t = torch.as_tensor
    model = NormalWishartModel(t(m0, dtype=torch.float64), kappa0=beta0, nu0=nu0,
                               W0=t(np.linalg.inv(W0_inv)))
    return float(model.log_marginal_likelihood(t(X)))


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag"])
def test_elbo_with_one_component_is_the_normal_wishart_log_evidence(covariance_type):
    # With K = 1 the VB posterior is exact (reg_covar = 0), so the ELBO is log p(X): the
    # Normal-Wishart evidence (full, tied), or one Normal-Gamma per feature (diag).
    rng = np.random.RandomState(0)
    X = rng.multivariate_normal([1.0, 2.0, -1.0], [[1, .5, 0], [.5, 2, .3], [0, .3, .5]], 40)
    m0, beta0, nu0 = np.array([0.5, 0.0, 0.0]), 0.5, 4.0
    cov0 = np.array([[2.0, 0.3, 0.0], [0.3, 1.0, 0.1], [0.0, 0.1, 1.5]])
    if covariance_type == "diag":
        cov0 = np.diag(cov0)
        evidence = sum(_normal_wishart_log_evidence(X[:, [d]], m0[[d]], beta0, nu0,
                                                    cov0[[d]][:, None]) for d in range(3))
    else:
        evidence = _normal_wishart_log_evidence(X, m0, beta0, nu0, cov0)
    kw = dict(n_components=1, covariance_type=covariance_type, reg_covar=0.0, mean_prior=m0,
              mean_precision_prior=beta0, degrees_of_freedom_prior=nu0, covariance_prior=cov0)
    vb = BayesianGaussianMixture(weight_concentration_prior_type="dirichlet_distribution",
                                 **kw).fit(X)
    np.testing.assert_allclose(vb.elbo_, evidence, rtol=1e-10)
    # The truncated stick-breaking prior gives the one component weight v ~ Beta(1, alpha0),
    # so p(X) gains the factor E[v^N] = alpha0 B(N + 1, alpha0).
    alpha0 = 0.7
    dp = BayesianGaussianMixture(weight_concentration_prior=alpha0, **kw).fit(X)
    log_stick = np.log(alpha0) + betaln(len(X) + 1, alpha0)
    np.testing.assert_allclose(dp.elbo_, evidence + log_stick, rtol=1e-10)


def test_spherical_elbo_bounds_the_evidence_by_quadrature():
    # One component with Lambda = lambda I: p(X) = int Gamma(lambda) prod_d
    # N(x_d | m0_d 1, (I + 1 1^T / beta0) / lambda) dlambda, by 1-D quadrature.
    from scipy import integrate
    from scipy.stats import gamma, multivariate_normal

    X = np.random.RandomState(1).normal([0.0, 1.0], 0.8, size=(15, 2))
    m0, beta0, nu0, s0 = np.array([0.2, 0.5]), 0.5, 3.0, 1.5
    n = len(X)
    cov = np.eye(n) + np.ones((n, n)) / beta0

    def log_joint(lam):  # lambda ~ Gamma(nu0 / 2, rate s0 / 2): a 1-D Wishart(1/s0, nu0)
        return gamma(nu0 / 2, scale=2 / s0).logpdf(lam) + sum(
            multivariate_normal(np.full(n, m0[d]), cov / lam).logpdf(X[:, d]) for d in range(2))

    peak = -200.0  # log p(X) is about here; scale out before exponentiating
    value, _ = integrate.quad(lambda lam: np.exp(log_joint(lam) - peak), 0, np.inf, limit=200)
    evidence = np.log(value) + peak
    vb = BayesianGaussianMixture(n_components=1, covariance_type="spherical", reg_covar=0.0,
                                 weight_concentration_prior_type="dirichlet_distribution",
                                 mean_prior=m0, mean_precision_prior=beta0,
                                 degrees_of_freedom_prior=nu0, covariance_prior=s0).fit(X)
    assert evidence - 1.0 < vb.elbo_ <= evidence + 1e-9


@pytest.mark.parametrize("covariance_type", ["full", "diag", "spherical"])
def test_elbo_does_not_depend_on_the_number_of_pruned_components(covariance_type):
    # Three clusters fitted with K = 3, 10 and 50 components: the extra ones are pruned and
    # their posteriors return to the prior, so the ELBO changes only by what the evidence
    # of a finite Dir(alpha0) mixture changes with K, log G(K a0) - log G(N + K a0) (PRML
    # B.23). scikit-learn's bound, lower_bound_, moves by far more. ("tied" is left out:
    # scikit-learn's tied update, nu0 + N/K, is not the VB optimum, see the class docstring.)
    X, _ = make_gaussian_blobs(300, means=((0, 0), (6, 6), (0, 8)), random_state=1)
    alpha0, Ks = 1e-2, np.array([3, 10, 50])
    fits = [BayesianGaussianMixture(n_components=K, covariance_type=covariance_type,
                                    weight_concentration_prior_type="dirichlet_distribution",
                                    weight_concentration_prior=alpha0, max_iter=1000,
                                    random_state=0).fit(X) for K in Ks]
    assert [vb.n_active_components_ for vb in fits] == [3, 3, 3]
    weight_prior = gammaln(Ks * alpha0) - gammaln(len(X) + Ks * alpha0)
    elbos = np.array([vb.elbo_ for vb in fits]) - weight_prior
    np.testing.assert_allclose(elbos, elbos[0], atol=1e-3)
    sklearn_bounds = np.array([vb.lower_bound_ for vb in fits])
    assert np.ptp(sklearn_bounds) > 50


def test_elbo_ranks_the_number_of_clusters():
    # Comparable across models: a 3-cluster data set has a higher ELBO with K = 3 than
    # with K = 1 or K = 2 allowed components.
    X, _ = make_gaussian_blobs(300, means=((0, 0), (6, 6), (0, 8)), random_state=1)
    elbo = {K: BayesianGaussianMixture(n_components=K, weight_concentration_prior=1e-2,
                                       max_iter=500, random_state=0).fit(X).elbo_
            for K in (1, 2, 3)}
    assert elbo[1] < elbo[2] < elbo[3]
