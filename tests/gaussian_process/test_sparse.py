"""Sparse GPs against the exact GP: SGPR with Z = X is the exact GP; both bounds lie below the
exact log marginal likelihood; SVGP's test NLL against the exact GP's and the true noise model;
SVGP from .npy files, from streamed Batches (ELBO against a numpy evaluation of Hensman 2013,
eq. 4; the stream read once before training), its hashed-key sample of a stream against a
naive loop, and under 2-process gloo DDP from arrays, .npy files and sharded Batches."""

import functools
import math
import struct

import numpy as np
import pytest
import torch
from scipy import stats
from sklearn.gaussian_process import kernels as sk

from bayesdl.core import distributed
from bayesdl.core.em import Batches, DataSource

import bayesdl
from bayesdl.gaussian_process import (GaussianProcessRegressor, SparseGaussianProcessRegressor)
from bayesdl.gaussian_process import kernels as bk
from bayesdl.gaussian_process.sparse import _row_keys, _splitmix64
from tests._distributed import assert_ranks_equal_single, fits_on_two_ranks


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


def _numpy_elbo(model, X, y):
    """Hensman (2013) eq. 4 in numpy from the fitted attributes, with scikit-learn's kernel:
    sum_i E_q[log N(y_i | f_i, s2)] - KL(N(mu, R R^T) || N(0, I)), in normalised units."""
    kernel = (sk.ConstantKernel(model.kernel_.k1.constant_value)
              * sk.RBF(model.kernel_.k2.length_scale))
    Z, mu, R, s2 = model.inducing_points_, model.q_mu_, model.q_sqrt_, model.noise_
    y = (y - model.y_train_mean_) / model.y_train_std_
    L = np.linalg.cholesky(kernel(Z))
    A = np.linalg.solve(L, kernel(Z, X))  # (M, n)
    mean = A.T @ mu
    var = kernel.diag(X) - (A ** 2).sum(0) + ((R.T @ A) ** 2).sum(0)
    ell = -0.5 * (np.log(2 * np.pi * s2) + ((y - mean) ** 2 + var) / s2)
    S = R @ R.T
    kl = 0.5 * (np.trace(S) + mu @ mu - len(mu) - np.linalg.slogdet(S)[1])
    return ell.sum() - kl


def test_svgp_streams_batches_with_the_target_in_the_last_column():
    X, y, Xs = _data()
    rows = np.column_stack([X, y])  # (80, 3)
    reads = []  # the blocks read by each pass over the stream

    def blocks():  # 30, 30 and 20 rows
        reads.append(0)
        for i in range(0, 80, 30):
            reads[-1] += 1
            yield rows[i:i + 30]

    batches = Batches(blocks)
    model = SparseGaussianProcessRegressor(bk.ConstantKernel(1.0) * bk.RBF([1.0, 1.0]),
                                           n_inducing=15, noise=0.1, method="svgp",
                                           batch_size=20, max_epochs=5, random_state=0)
    model.fit(batches)
    # the first block for the data's width, ONE pass before training (n, the moments of y,
    # the sample; the Trainer is told the size instead of counting it), 5 epochs, the ELBO
    assert reads == [1, 3] + [3] * 5 + [3]
    assert model.n_features_in_ == 2
    assert model.y_train_mean_ == pytest.approx(y.mean(), rel=1e-12)
    assert model.y_train_std_ == pytest.approx(y.std(), rel=1e-12)
    assert model.lower_bound_ == pytest.approx(_numpy_elbo(model, X, y), rel=1e-9)
    exact = GaussianProcessRegressor(model.kernel_, alpha=model.noise_, optimizer=None).fit(
        X, (y - model.y_train_mean_) / model.y_train_std_)
    assert model.lower_bound_ <= exact.log_marginal_likelihood_value_
    assert model.history_[-1] < model.history_[0]
    assert model.predict(Xs).shape == (25,)
    with pytest.raises(ValueError, match="last column of each batch"):
        model.fit(batches, y)
    with pytest.raises(ValueError, match="method='svgp'"):
        SparseGaussianProcessRegressor(method="sgpr").fit(batches)
    with pytest.raises(ValueError, match="at least 2 columns"):
        SparseGaussianProcessRegressor(method="svgp").fit(Batches([X[:, :1]]))
    with pytest.raises(ValueError, match="NaN"):
        SparseGaussianProcessRegressor(method="svgp").fit(
            Batches([rows[:40], np.where(rows[40:] > 2.9, np.nan, rows[40:])]))
    with pytest.raises(ValueError, match="one-shot iterator"):
        Batches(iter([rows]))


def test_svgp_test_nll_is_close_to_the_exact_gps_on_a_subsample():
    """SVGP on all 4,000 rows against the exact GP (hyper-parameters optimised) on a 500-row
    subsample, where the exact GP still runs in seconds. "Close": SVGP's mean test NLL at most
    0.05 nats/point above the exact GP's, i.e. a predictive density within a factor
    e^0.05 = 1.05 (a 5% error in the predictive std costs 0.05 nats). Both must also be within
    0.05 nats of the true noise model N(f(x), 0.1^2), the best any predictor can do here."""
    rng = np.random.default_rng(0)

    def f(X):
        return np.sin(2 * X[:, 0]) + 0.5 * X[:, 1] ** 2 - 0.3 * X[:, 0] * X[:, 1]

    X = rng.uniform(-2, 2, size=(4000, 2))
    y = f(X) + 0.1 * rng.normal(size=4000)
    Xt = rng.uniform(-2, 2, size=(500, 2))
    yt = torch.tensor(f(Xt) + 0.1 * rng.normal(size=500))
    sub = rng.choice(4000, 500, replace=False)
    exact = GaussianProcessRegressor(bk.ConstantKernel(1.0) * bk.RBF([1.0, 1.0])
                                     + bk.WhiteKernel(0.1), normalize_y=True).fit(X[sub], y[sub])
    mean, std = exact.predict(Xt, return_std=True)  # std includes the WhiteKernel
    nll_exact = -torch.distributions.Normal(torch.tensor(mean), torch.tensor(std)).log_prob(yt).mean()
    svgp = SparseGaussianProcessRegressor(bk.ConstantKernel(1.0) * bk.RBF([1.0, 1.0]),
                                          n_inducing=64, method="svgp", noise=0.1,
                                          batch_size=500, max_epochs=3, max_iter=100,
                                          random_state=0).fit(X, y)
    nll_svgp = -svgp.predict_dist(Xt, observation_noise=True).log_prob(yt).mean()
    floor = -torch.distributions.Normal(torch.tensor(f(Xt)), 0.1).log_prob(yt).mean()
    assert nll_svgp <= nll_exact + 0.05
    assert abs(nll_exact - floor) < 0.05 and abs(nll_svgp - floor) < 0.05
    assert math.isfinite(svgp.lower_bound_)


def _splitmix64_naive(z: int) -> int:
    """splitmix64's output for state z, in Python integers (Vigna's splitmix64.c)."""
    z = (z + 0x9E3779B97F4A7C15) % 2**64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) % 2**64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) % 2**64
    return z ^ (z >> 31)


def test_stream_sample_is_the_rows_with_the_smallest_hashed_keys_however_batched():
    # splitmix64 seeded with 1234567 first outputs 6457827717110365317 (its published test
    # vector; the state advances by the golden gamma before each output)
    assert _splitmix64_naive(1234567) == 6457827717110365317
    states = np.array([1234567 + k * 0x9E3779B97F4A7C15 % 2**64 for k in range(3)], np.uint64)
    assert [int(v) for v in _splitmix64(states)] == [
        _splitmix64_naive(1234567 + k * 0x9E3779B97F4A7C15 % 2**64) for k in range(3)]
    rng = np.random.default_rng(0)
    rows = np.column_stack([rng.normal(size=(300, 2)), rng.normal(size=300)])  # (300, 3)

    def naive_key(row, seed):  # chain splitmix64 over the row's float64 bit patterns
        h = seed
        for v in row:
            h = _splitmix64_naive(h ^ struct.unpack("<Q", struct.pack("<d", v))[0])
        return (h >> 11) / 2.0**53

    np.testing.assert_array_equal(_row_keys(torch.as_tensor(rows), 5).numpy(),
                                  [naive_key(r, 5) for r in rows])
    assert stats.kstest(_row_keys(torch.as_tensor(rng.normal(size=(20000, 3))), 5).numpy(),
                        "uniform").pvalue > 0.01  # uniform on [0, 1)
    model = SparseGaussianProcessRegressor(random_state=0)
    seed = int(np.random.RandomState(0).randint(2**31 - 1))  # the seed the model draws
    smallest = rows[np.argsort([naive_key(r, seed) for r in rows])[:50]]
    # one 300-row block in 7-row chunks (43); shuffled 45-row blocks in 13-row chunks (6 x 4 + 3)
    for order, block, chunk, n_chunks in ((slice(None), 300, 7, 43),
                                          (rng.permutation(300), 45, 13, 27)):
        source = DataSource(Batches([rows[order][i:i + block] for i in range(0, 300, block)]),
                            dtype=torch.float64, device=torch.device("cpu"), chunk_size=chunk)
        sample, (n, chunks, total, squares) = model._stream_sample(source, 50)
        np.testing.assert_array_equal(sample.numpy(), smallest)  # in the same (key) order
        assert (n, chunks) == (300, n_chunks)
        assert float(total) == pytest.approx(rows[:, -1].sum(), rel=1e-12)
        assert float(squares) == pytest.approx(rows[:, -1] @ rows[:, -1], rel=1e-12)


def _svgp(batch_size):
    return SparseGaussianProcessRegressor(bk.RBF(1.0), n_inducing=8, noise=0.1, method="svgp",
                                          batch_size=batch_size, max_epochs=3, lr=0.05,
                                          random_state=0)


def _svgp_fits(tmp, world: int) -> list:
    """The fitted attributes of SVGP with global batches of 20 rows (20 / world per rank) from
    arrays, .npy files (the whole data on every rank) and Batches of [x, y] rows (each rank its
    own shard, 10-row blocks; in one process the ranks' blocks side by side)."""
    X, y, Xs = _data()
    rows = np.column_stack([X, y])  # (80, 3)
    if world == 2:
        blocks = [rows[distributed.shard(80)][i:i + 10] for i in range(0, 40, 10)]
    else:  # global batch b = rank 0's block b over rank 1's block b
        blocks = [np.vstack([rows[i:i + 10], rows[40 + i:40 + i + 10]]) for i in range(0, 40, 10)]
    fits = []
    for data in ((X, y), (f"{tmp}/X.npy", f"{tmp}/y.npy"), (Batches(blocks),)):
        model = _svgp(batch_size=20 // world).fit(*data)
        mean, std = model.predict(Xs, return_std=True)
        fits.append({"theta": model.kernel_.theta, "noise": model.noise_,
                     "Z": model.inducing_points_, "q_mu": model.q_mu_, "q_sqrt": model.q_sqrt_,
                     "y_moments": [model.y_train_mean_, model.y_train_std_],
                     "lower_bound": model.lower_bound_, "history": model.history_,
                     "mean": mean, "std": std})
    return fits


def _ddp_worker(tmp, rank, port, out):
    import torch.distributed as dist
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=2)
    try:
        out[rank] = _svgp_fits(tmp, world=2)
    finally:
        dist.destroy_process_group()


@pytest.mark.slow  # two spawned interpreters, 3 fits each: ~60 s on busy shared cores
def test_two_process_gloo_svgp_equals_one_process_with_the_same_global_batch(tmp_path):
    """Every rank ends with the parameters, bound, losses and predictions of one process with the
    same global batch, to 1e-9 relative (the ranks' partial sums of y, of the gradients and of
    the ELBO are added in another order: rounding, 1e-16 relative, grown by the optimisers)."""
    X, y, _ = _data()
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", y)
    single = _svgp_fits(tmp_path, world=1)
    assert_ranks_equal_single(fits_on_two_ranks(functools.partial(_ddp_worker, str(tmp_path))),
                              single, rtol=1e-9, atol=1e-12)


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
