"""Sparse GPs against the exact GP: SGPR with Z = X is the exact GP; both bounds lie below the
exact log marginal likelihood; SVGP from .npy files and under 2-process gloo DDP."""

import numpy as np
import pytest
import torch

import bayesdl
from bayesdl.gaussian_process import (GaussianProcessRegressor, SparseGaussianProcessRegressor)
from bayesdl.gaussian_process import kernels as bk


def _data(n=80, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-3, 3, size=(n, 2))
    y = np.sin(X[:, 0]) + 0.3 * X[:, 1] ** 2 + 0.1 * rng.normal(size=n)
    return X, y, rng.uniform(-3, 3, size=(25, 2))


def _exact(model, X, y):
    """The exact GP at the sparse model's hyper-parameters (same units: normalize_y=False)."""
    return GaussianProcessRegressor(model.kernel_, alpha=model.noise_, optimizer=None).fit(X, y)


def test_sgpr_with_inducing_points_at_the_data_is_the_exact_gp():
    X, y, Xs = _data()
    kernel = bk.ConstantKernel(1.5) * bk.RBF([1.0, 0.8])
    sparse = SparseGaussianProcessRegressor(kernel, inducing_points=X, noise=0.05,
                                            normalize_y=False, optimizer=None).fit(X, y)
    exact = _exact(sparse, X, y)
    assert sparse.lower_bound_ == pytest.approx(exact.log_marginal_likelihood_value_, rel=1e-10)
    for a, b in zip(sparse.predict(Xs, return_std=True), exact.predict(Xs, return_std=True)):
        np.testing.assert_allclose(a, b, rtol=1e-8, atol=1e-10)


def test_sgpr_fit_bound_is_below_the_exact_evidence_and_close_with_enough_points():
    X, y, Xs = _data(n=60)
    sparse = SparseGaussianProcessRegressor(bk.ConstantKernel(1.0) * bk.RBF([1.0, 1.0]),
                                            n_inducing=20, noise=0.1, normalize_y=False,
                                            max_iter=150, random_state=0).fit(X, y)
    exact = _exact(sparse, X, y)
    assert sparse.lower_bound_ <= exact.log_marginal_likelihood_value_ + 1e-9
    assert sparse.lower_bound_ >= exact.log_marginal_likelihood_value_ - 1.0
    np.testing.assert_allclose(sparse.predict(Xs), exact.predict(Xs), atol=0.05)


def test_svgp_elbo_is_below_the_exact_evidence(tmp_path):
    X, y, Xs = _data()
    kwargs = dict(kernel=bk.ConstantKernel(1.0) * bk.RBF([1.0, 1.0]), n_inducing=15, noise=0.1,
                  method="svgp", batch_size=20, max_epochs=10, lr=0.02, normalize_y=False,
                  random_state=0)
    svgp = SparseGaussianProcessRegressor(**kwargs).fit(X, y)
    exact = _exact(svgp, X, y)
    assert svgp.lower_bound_ <= exact.log_marginal_likelihood_value_
    assert svgp.lower_bound_ >= exact.log_marginal_likelihood_value_ - 15.0  # it did learn
    assert svgp.history_[-1] < svgp.history_[0]
    # the same fit streamed from .npy files (memory maps) gives the same model
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", y)
    from_files = SparseGaussianProcessRegressor(**kwargs).fit(str(tmp_path / "X.npy"),
                                                              str(tmp_path / "y.npy"))
    np.testing.assert_allclose(from_files.predict(Xs), svgp.predict(Xs), rtol=1e-12)
    loaded = bayesdl.load(bayesdl.save(svgp, tmp_path / "svgp.safetensors"))
    np.testing.assert_allclose(loaded.predict(Xs, return_std=True)[1],
                               svgp.predict(Xs, return_std=True)[1], rtol=1e-12)
    dist = svgp.predict_dist(Xs, observation_noise=True)
    np.testing.assert_allclose(dist.variance.numpy(),
                               svgp.predict(Xs, return_std=True)[1] ** 2 + svgp.noise_, rtol=1e-12)


def _svgp(batch_size):
    return SparseGaussianProcessRegressor(bk.RBF(1.0), n_inducing=8, noise=0.1, method="svgp",
                                          batch_size=batch_size, max_epochs=3, lr=0.05,
                                          random_state=0)


def _ddp_worker(rank, tmp):
    import torch.distributed as dist
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{tmp}/rendezvous", rank=rank,
                            world_size=2)
    try:
        X, y, Xs = _data()
        model = _svgp(batch_size=10).fit(X, y)  # 10 rows per rank = a global batch of 20
        np.save(f"{tmp}/pred{rank}.npy", np.stack(model.predict(Xs, return_std=True)))
        np.save(f"{tmp}/z{rank}.npy", model.inducing_points_)
    finally:
        dist.destroy_process_group()


@pytest.mark.slow  # two spawned interpreters: ~50 s on busy shared cores
def test_two_process_gloo_svgp_equals_one_process_with_the_same_global_batch(tmp_path):
    import torch.multiprocessing as mp
    mp.spawn(_ddp_worker, args=(str(tmp_path),), nprocs=2, join=True)
    X, y, Xs = _data()
    single = _svgp(batch_size=20).fit(X, y)
    expected = np.stack(single.predict(Xs, return_std=True))
    for rank in (0, 1):
        np.testing.assert_allclose(np.load(tmp_path / f"pred{rank}.npy"), expected, rtol=1e-9)
        np.testing.assert_allclose(np.load(tmp_path / f"z{rank}.npy"), single.inducing_points_,
                                   rtol=1e-9)


def test_bad_input_is_refused(tmp_path):
    X, y, _ = _data()
    with pytest.raises(ValueError, match="NaN"):
        SparseGaussianProcessRegressor().fit(np.where(X > 2.9, np.nan, X), y)
    with pytest.raises(ValueError, match="noise_bounds"):
        SparseGaussianProcessRegressor(noise=1e-9).fit(X, y)
    with pytest.raises(FileNotFoundError, match="No X file"):
        SparseGaussianProcessRegressor(method="svgp").fit(str(tmp_path / "nope.npy"), y)
    with pytest.raises(ValueError, match="inducing_points must be"):
        SparseGaussianProcessRegressor(inducing_points=np.zeros((3, 5))).fit(X, y)
