"""Laplace GP classification against scikit-learn's GaussianProcessClassifier (same maths),
autograd gradients against its hand-written ones and gradcheck, quadrature against the
probit mixture."""

import numpy as np
import pytest
import torch
from sklearn.datasets import load_iris
from sklearn.gaussian_process import GaussianProcessClassifier as SkGPC
from sklearn.gaussian_process import kernels as sk
from threadpoolctl import threadpool_limits

import bayesdl
from bayesdl.gaussian_process import GaussianProcessClassifier
from bayesdl.gaussian_process import kernels as bk
from bayesdl.gaussian_process.gpc import laplace_evidence


def _binary(n=50, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 2))
    y = (X[:, 0] + 0.5 * X[:, 1] + 0.5 * rng.normal(size=n) > 0).astype(int)
    return X, np.where(y == 1, "yes", "no"), rng.normal(size=(20, 2))


@pytest.mark.parametrize("make", [lambda m: m.ConstantKernel(2.0) * m.RBF([1.0, 0.7]),
                                  lambda m: m.Matern(1.2, nu=2.5) + m.DotProduct(0.5)])
def test_binary_fixed_kernel_matches_sklearn(make):
    X, y, Xs = _binary()
    ref = SkGPC(make(sk), optimizer=None).fit(X, y)
    ours = GaussianProcessClassifier(make(bk), optimizer=None).fit(X, y)
    np.testing.assert_allclose(ours.predict_proba(Xs), ref.predict_proba(Xs), rtol=0, atol=1e-6)
    np.testing.assert_array_equal(ours.predict(Xs), ref.predict(Xs))
    assert ours.log_marginal_likelihood_value_ == pytest.approx(ref.log_marginal_likelihood_value_,
                                                                rel=1e-8)
    theta = ours.kernel_.theta + 0.3
    lml_ref, grad_ref = ref.log_marginal_likelihood(theta, eval_gradient=True)
    lml, grad = ours.log_marginal_likelihood(theta, eval_gradient=True)
    assert lml == pytest.approx(lml_ref, rel=1e-8)
    np.testing.assert_allclose(grad, grad_ref, rtol=1e-6, atol=1e-8)


def test_multiclass_one_vs_rest_matches_sklearn():
    X, y = load_iris(return_X_y=True)
    ref = SkGPC(sk.ConstantKernel(1.0) * sk.RBF(1.0), optimizer=None).fit(X, y)
    ours = GaussianProcessClassifier(bk.ConstantKernel(1.0) * bk.RBF(1.0), optimizer=None).fit(X, y)
    np.testing.assert_allclose(ours.predict_proba(X), ref.predict_proba(X), rtol=0, atol=1e-6)
    assert ours.log_marginal_likelihood_value_ == pytest.approx(ref.log_marginal_likelihood_value_,
                                                                rel=1e-8)


def test_optimised_evidence_at_least_sklearns():
    X, y, Xs = _binary(seed=1)
    with threadpool_limits(1):
        ref = SkGPC(sk.ConstantKernel(1.0) * sk.RBF([1.0, 1.0])).fit(X, y)
    ours = GaussianProcessClassifier(bk.ConstantKernel(1.0) * bk.RBF([1.0, 1.0])).fit(X, y)
    assert ours.log_marginal_likelihood_value_ >= ref.log_marginal_likelihood_value_ - 1e-6
    np.testing.assert_allclose(ours.predict_proba(Xs), ref.predict_proba(Xs), atol=1e-4)


def test_laplace_evidence_passes_gradcheck():
    X, y, _ = _binary(n=15)
    kernel = bk.ConstantKernel(2.0) * bk.Matern([1.0, 0.5], nu=1.5)
    t = torch.tensor((y == "yes").astype(float))
    theta = torch.tensor(np.stack([kernel.theta, kernel.theta - 0.4]), requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda th: laplace_evidence(kernel, th, torch.tensor(X), t.expand(2, -1), 100), (theta,),
        atol=1e-6)


def test_quadrature_integrates_the_logistic():
    """64-point Gauss-Hermite against scipy's adaptive quadrature of sigma(f) N(f | m, v)."""
    from scipy.integrate import quad
    from scipy.special import expit
    from scipy.stats import norm
    X, y, Xs = _binary()
    model = GaussianProcessClassifier(bk.ConstantKernel(4.0) * bk.RBF(1.0), optimizer=None,
                                      integration="quadrature").fit(X, y)
    mean, var = (v.numpy()[0] for v in model._latent(Xs))
    exact = [quad(lambda f: expit(f) * norm.pdf(f, m, np.sqrt(s)), -np.inf, np.inf)[0]
             for m, s in zip(mean, var)]
    np.testing.assert_allclose(model.predict_proba(Xs)[:, 1], exact, atol=1e-9)


def test_save_load_and_errors(tmp_path):
    X, y = load_iris(return_X_y=True)
    model = GaussianProcessClassifier(bk.RBF(1.0), optimizer=None).fit(X, y)
    loaded = bayesdl.load(bayesdl.save(model, tmp_path / "gpc.safetensors"))
    np.testing.assert_allclose(loaded.predict_proba(X), model.predict_proba(X), rtol=1e-11)
    assert isinstance(model.predict_dist(X[:3]), torch.distributions.Categorical)
    with pytest.raises(ValueError, match="at least 2 classes"):
        GaussianProcessClassifier().fit(X[:10], y[:10])
    with pytest.raises(ValueError, match="NaN"):
        GaussianProcessClassifier().fit(np.where(X > 7, np.nan, X), y)


def test_multiclass_evidence_at_theta_is_sklearns_mean_over_one_vs_rest():
    """scikit-learn's rule: one kernel's theta for every class, or one theta per class."""
    from sklearn.datasets import load_wine
    X, y = load_wine(return_X_y=True)
    X = (X - X.mean(0)) / X.std(0)
    ref = SkGPC(sk.ConstantKernel(1.0) * sk.Matern(3.0, nu=1.5), optimizer=None,
                multi_class="one_vs_rest").fit(X, y)
    ours = GaussianProcessClassifier(bk.ConstantKernel(1.0) * bk.Matern(3.0, nu=1.5),
                                     optimizer=None, multi_class="one_vs_rest").fit(X, y)
    shared = np.log([2.0, 1.5])
    per_class = np.log([2.0, 1.5, 0.5, 4.0, 1.0, 2.5])
    for theta in (shared, per_class):
        assert ours.log_marginal_likelihood(theta) == pytest.approx(
            ref.log_marginal_likelihood(theta), rel=1e-9)
    with pytest.raises(NotImplementedError, match="binary"):
        ours.log_marginal_likelihood(shared, eval_gradient=True)
    with pytest.raises(ValueError, match="2 values .* or 6"):
        ours.log_marginal_likelihood(np.zeros(3))
    with pytest.raises(ValueError, match="one_vs_rest"):
        GaussianProcessClassifier(multi_class="one_vs_one").fit(X, y)


def test_float32_probabilities_match_sklearn_to_float32_precision():
    """The probit mixture's terms (~3500) cancel to a probability: computed in float32 they
    were off by 3e-4; the mixture now runs in float64 whatever the model's dtype."""
    X, y, Xs = _binary(n=80, seed=2)
    ref = SkGPC(sk.ConstantKernel(3.0) * sk.RBF(0.8), optimizer=None).fit(X, y)
    ours = GaussianProcessClassifier(bk.ConstantKernel(3.0) * bk.RBF(0.8), optimizer=None,
                                     dtype="float32").fit(X, y)
    proba = ours.predict_proba(Xs)
    assert proba.dtype == np.float32
    np.testing.assert_allclose(proba, ref.predict_proba(Xs), rtol=0, atol=5e-6)
