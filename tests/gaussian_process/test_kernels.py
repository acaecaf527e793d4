"""Kernels against scikit-learn's (the same maths): Gram matrices, diagonals, theta, bounds,
repr; batched theta against a loop; autograd gradients against sklearn's hand-written ones."""

import numpy as np
import pytest
import torch
from sklearn.gaussian_process import kernels as sk

from bayesdl.gaussian_process import kernels as bk


def _pairs():
    return [
        (sk.RBF(0.7), bk.RBF(0.7)),
        (sk.RBF([0.5, 2.0, 1.0]), bk.RBF([0.5, 2.0, 1.0])),
        (sk.Matern(0.8, nu=0.5), bk.Matern(0.8, nu=0.5)),
        (sk.Matern([0.8, 1.5, 0.3], nu=1.5), bk.Matern([0.8, 1.5, 0.3], nu=1.5)),
        (sk.Matern(1.3, nu=2.5), bk.Matern(1.3, nu=2.5)),
        (sk.Matern(1.3, nu=np.inf), bk.Matern(1.3, nu=np.inf)),
        (sk.RationalQuadratic(0.9, 2.5), bk.RationalQuadratic(0.9, 2.5)),
        (sk.ExpSineSquared(1.2, 2.1), bk.ExpSineSquared(1.2, 2.1)),
        (sk.DotProduct(0.4), bk.DotProduct(0.4)),
        (sk.WhiteKernel(0.3), bk.WhiteKernel(0.3)),
        (sk.ConstantKernel(2.5), bk.ConstantKernel(2.5)),
        (sk.ConstantKernel(2.0) * sk.RBF([1.0, 0.5, 3.0]) + sk.WhiteKernel(0.1),
         bk.ConstantKernel(2.0) * bk.RBF([1.0, 0.5, 3.0]) + bk.WhiteKernel(0.1)),
        (sk.RBF(1.5) * sk.ExpSineSquared(0.8, 1.7, periodicity_bounds="fixed") + sk.DotProduct(1.0),
         bk.RBF(1.5) * bk.ExpSineSquared(0.8, 1.7, periodicity_bounds="fixed") + bk.DotProduct(1.0)),
        (sk.Matern(0.6, nu=2.5) ** 2.0, bk.Matern(0.6, nu=2.5) ** 2.0),
        (3.0 * sk.RBF(1.0) + 0.5, 3.0 * bk.RBF(1.0) + 0.5),
    ]


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(30, 3))
    X[5] = X[2]  # a duplicate row: distance exactly 0
    return X, rng.normal(size=(12, 3))


@pytest.mark.parametrize("pair", _pairs(), ids=lambda p: repr(p[1]))
def test_kernel_matches_sklearn(pair, data):
    ref, ours = pair
    X, Y = data
    np.testing.assert_allclose(ours(X).numpy(), ref(X), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(ours(X, Y).numpy(), ref(X, Y), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(ours.diag(X).numpy(), ref.diag(X), rtol=1e-12, atol=1e-14)
    np.testing.assert_array_equal(ours.theta, ref.theta)
    np.testing.assert_array_equal(ours.bounds, ref.bounds)
    assert repr(ours) == repr(ref)
    assert ours.get_params().keys() - ref.get_params().keys() <= {
        k for k in ours.get_params() if k.endswith("_prior")}


@pytest.mark.parametrize("pair", _pairs(), ids=lambda p: repr(p[1]))
def test_autograd_gradient_matches_sklearn(pair, data):
    """d k(X, X) / d theta by autograd equals scikit-learn's hand-written Jacobian."""
    ref, ours = pair
    X = data[0][:10]
    if ours.n_dims == 0:
        return
    _, ref_grad = ref(X, eval_gradient=True)  # (N, N, P)
    theta = torch.tensor(ours.theta, requires_grad=True)
    jac = torch.autograd.functional.jacobian(lambda t: ours.gram(X, None, t), theta)  # (N, N, P)
    np.testing.assert_allclose(jac.numpy(), ref_grad, rtol=1e-10, atol=1e-12)
    # scikit-learn's own call, answered by autograd
    K, grad = ours(X, eval_gradient=True)
    np.testing.assert_allclose(K.numpy(), ref(X), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(grad.numpy(), ref_grad, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("pair", _pairs()[-4:], ids=lambda p: repr(p[1]))
def test_batched_theta_equals_a_loop(pair, data):
    _, ours = pair
    X, Y = data
    rng = np.random.default_rng(1)
    thetas = ours.theta + rng.normal(scale=0.3, size=(4, ours.n_dims))
    batched = ours.gram(X, Y, torch.tensor(thetas)).numpy()  # (4, N, M)
    for r, theta in enumerate(thetas):
        single = ours.clone_with_theta(theta)
        np.testing.assert_allclose(batched[r], single(X, Y).numpy(), rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(ours.diag(X, torch.tensor(thetas)).numpy()[2],
                               ours.clone_with_theta(thetas[2]).diag(X).numpy(), rtol=1e-13)


def test_kernel_runs_in_the_dtype_and_device_of_X(data):
    X, _ = data
    k = bk.ConstantKernel(2.0) * bk.Matern([1.0, 2.0, 0.5], nu=2.5) + bk.WhiteKernel(0.1)
    K32 = k(torch.tensor(X, dtype=torch.float32))
    assert K32.dtype == torch.float32 and K32.device.type == "cpu"
    np.testing.assert_allclose(K32.numpy(), k(X).numpy(), rtol=1e-5)


def test_log_prior_is_the_sum_of_prior_log_densities():
    k = (bk.ConstantKernel(2.0, constant_value_prior=torch.distributions.Gamma(2.0, 0.5))
         * bk.RBF([0.5, 3.0], length_scale_prior=torch.distributions.LogNormal(0.0, 1.0))
         + bk.WhiteKernel(0.1, noise_level_bounds="fixed"))
    from scipy.stats import gamma, lognorm
    expected = (gamma(2.0, scale=2.0).logpdf(2.0) + lognorm(1.0).logpdf(0.5)
                + lognorm(1.0).logpdf(3.0))
    assert k.has_prior
    assert float(k.log_prior(torch.tensor(k.theta))) == pytest.approx(expected, rel=1e-12)


def test_unsupported_options_are_refused():
    with pytest.raises(ValueError, match="nu=0.7"):
        bk.Matern(nu=0.7)(np.zeros((2, 1)))
    with pytest.raises(ValueError, match="Distribution"):
        bk.RBF(length_scale_prior=3.0)
    with pytest.raises(ValueError, match="when Y is None"):
        bk.RBF()(np.zeros((2, 1)), np.zeros((3, 1)), eval_gradient=True)



def test_equality_compares_priors_by_value_as_clone_keeps_them():
    from sklearn.base import clone
    Gamma = torch.distributions.Gamma
    k = bk.ConstantKernel(2.0) * bk.Matern([1.0, 2.0], nu=2.5, length_scale_prior=Gamma(3.0, 6.0))
    assert k == clone(k)  # the prior is deep-copied by clone: a new object, equal arguments
    restored = type(k).from_config(k.get_config())  # what a saved model reads back
    assert restored == k and isinstance(restored.k2.length_scale, np.ndarray)
    assert k != k.clone_with_theta(k.theta + 0.1)
    assert k != bk.ConstantKernel(2.0) * bk.Matern([1.0, 2.0], nu=2.5,
                                                   length_scale_prior=Gamma(3.0, 5.0))
    # as scikit-learn's own equality where there are no priors
    assert (bk.RBF(1.0) + bk.WhiteKernel(0.1) == bk.RBF(1.0) + bk.WhiteKernel(0.1)) == (
        sk.RBF(1.0) + sk.WhiteKernel(0.1) == sk.RBF(1.0) + sk.WhiteKernel(0.1))


def test_mixing_with_sklearn_kernels_and_wrong_ard_length_are_clear_errors():
    with pytest.raises(ValueError, match="import every kernel from bayesdl"):
        bk.RBF(1.0) + sk.WhiteKernel(0.1)
    with pytest.raises(ValueError, match="3 length-scales .* X has 2 features"):
        bk.RBF([1.0, 2.0, 3.0])(np.zeros((4, 2)))


def test_eval_gradient_of_a_fixed_kernel_is_empty_as_sklearns():
    X = np.random.default_rng(3).normal(size=(6, 2))
    K, grad = bk.RBF(0.5, "fixed")(X, eval_gradient=True)
    K_ref, grad_ref = sk.RBF(0.5, "fixed")(X, eval_gradient=True)
    np.testing.assert_allclose(K.numpy(), K_ref, rtol=1e-12)
    assert tuple(grad.shape) == grad_ref.shape == (6, 6, 0)
