"""Sparse GP regression with M inducing points Z: SGPR (Titsias 2009) and SVGP (Hensman 2013).

Both use the whitened variational posterior over the inducing values u = f(Z): with
K_mm = L L^T and u = L v, q(v) = N(mu, S), S = R R^T, the latent at x has (Hensman 2013, 7)

    mean  a(x)^T mu,   variance  k(x, x) - |a(x)|^2 + |R^T a(x)|^2,   a(x) = L^-1 k(Z, x)   (M,)

- ``method="sgpr"`` (data in memory): q(v) is optimal and integrated out, leaving the collapsed
  bound (Titsias 2009, eq. 9)
      F = log N(y | 0, Q_nn + s2 I) - tr(K_nn - Q_nn) / (2 s2),   Q_nn = K_nm K_mm^-1 K_mn,
  maximised over the kernel's log hyper-parameters, the noise s2 and Z by L-BFGS-B. With
  A = L^-1 K_mn / s (M, n) and B = I + A A^T = L_B L_B^T the optimal q(v) is S = B^-1,
  mu = B^-1 A y / s.
- ``method="svgp"`` (data too large for an n x n or n x M pass at once): mu, R, Z, the kernel and
  the noise are learned by Adam on mini-batches through :class:`bayesdl.train.Trainer` (so
  ``torchrun`` gives data-parallel training), maximising the uncollapsed bound (Hensman 2013, 4)
      ELBO = sum_i E_q[log N(y_i | f_i, s2)] - KL(q(v) || N(0, I)),
  estimated per batch as N/|B| sum_{i in B} (...). Memory is O(batch M + M^2) whatever n is.
  The data: arrays, ``.npy`` files, or the EM engine's :class:`~bayesdl.core.em.Batches` of
  rows with the target in the last column, read through its :class:`~bayesdl.core.em.DataSource`.
  Under ``torch.distributed`` (``torchrun``) the ranks train data-parallel and end with the
  same parameters, those of one process with the same global batch: arrays and ``.npy`` files
  are the whole data on every rank (the Trainer's sampler hands each rank its rows of every
  global batch), Batches are each rank's own shard.

Both are lower bounds on the exact log marginal likelihood at the same hyper-parameters; with
Z = X the SGPR bound equals it. The inducing points start at k-means centres of X.
"""

from __future__ import annotations

import math
import os
import warnings
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import BaseEstimator, RegressorMixin, clone
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, check_random_state
from torch import nn

from .._base import TorchEstimatorMixin
from ..cluster import KMeans
from ..core import distributed
from ..core.em import Batches, Candidates, DataSource
from ..core.threads import torch_threads
from ..train import Trainer
from .gpr import batched_lbfgsb, cholesky_with_jitter
from .kernels import RBF, ConstantKernel, Kernel

_LOG_2PI = math.log(2 * math.pi)
_PREDICT_ROWS = 65536  # rows per block when predicting (bounds memory)
_KMEANS_ROWS = 100_000  # rows k-means looks at to place the inducing points
_SVGP_INIT_ROWS = 2000  # rows of the SGPR fit that starts SVGP


def _whitened_predictive(kernel, theta, Z, X, q_mu, q_sqrt):
    """Mean (B,) and variance (B,) of q(f(X)) (Hensman 2013, 7), differentiable in everything."""
    L, _ = cholesky_with_jitter(kernel.gram(Z, None, theta), strict=False)  # K_mm = L L^T
    A = torch.linalg.solve_triangular(L, kernel.gram(Z, X, theta), upper=False)  # (M, B)
    mean = A.T @ q_mu  # (B,)
    RtA = q_sqrt.T @ A  # (M, B)
    var = kernel.diag(X, theta) - (A * A).sum(0) + (RtA * RtA).sum(0)  # (B,)
    return mean, var


def _expected_log_lik(y, mean, var, noise):
    """E_{N(f | mean, var)} log N(y | f, noise), elementwise (Hensman 2013, 4)."""
    return -0.5 * (_LOG_2PI + torch.log(noise) + ((y - mean) ** 2 + var) / noise)


def _kl_standard(q_mu, q_sqrt):
    """KL(N(mu, R R^T) || N(0, I)) = 1/2 (tr S + mu^T mu - M - log|S|)."""
    diag = torch.diagonal(q_sqrt)
    return 0.5 * ((q_sqrt * q_sqrt).sum() + q_mu @ q_mu - q_mu.shape[0]
                  - 2.0 * torch.log(diag.abs()).sum())


class SVGP(nn.Module):
    """The SVGP parameters as an ``nn.Module`` for the Trainer (and DDP under torchrun).

    ``theta`` holds the kernel's free log hyper-parameters, ``log_noise`` the log noise
    variance, ``Z`` the inducing inputs, ``q_mu`` and ``q_tril`` (lower triangle, log
    diagonal) the whitened q(v). Log parameters are clamped to their bounds in ``forward``.
    """

    def __init__(self, kernel: Kernel, Z, noise: float, noise_bounds, learn_inducing: bool):
        super().__init__()
        self.kernel = kernel
        self.register_buffer("theta_bounds", torch.as_tensor(kernel.bounds, dtype=Z.dtype).reshape(-1, 2))
        self.register_buffer("noise_bounds", torch.as_tensor(np.log(noise_bounds), dtype=Z.dtype))
        self.theta = nn.Parameter(torch.as_tensor(kernel.theta, dtype=Z.dtype))
        self.log_noise = nn.Parameter(torch.as_tensor(math.log(noise), dtype=Z.dtype))
        self.Z = nn.Parameter(Z.clone(), requires_grad=learn_inducing)
        M = Z.shape[0]
        self.q_mu = nn.Parameter(Z.new_zeros(M))
        self.q_tril = nn.Parameter(Z.new_zeros(M, M))  # R = tril(q_tril, -1) + diag(exp(diag))

    def hyperparameters(self):
        theta = torch.minimum(torch.maximum(self.theta, self.theta_bounds[:, 0]), self.theta_bounds[:, 1])
        log_noise = self.log_noise.clamp(self.noise_bounds[0], self.noise_bounds[1])
        return theta, log_noise.exp()

    def q_sqrt(self):
        return torch.tril(self.q_tril, -1) + torch.diag(torch.diagonal(self.q_tril).exp())

    def forward(self, X):
        theta, noise = self.hyperparameters()
        mean, var = _whitened_predictive(self.kernel, theta, self.Z, X, self.q_mu, self.q_sqrt())
        return mean, var, noise

    def elbo_terms(self, X, y):
        """(sum of expected log-likelihoods over the batch, KL)."""
        mean, var, noise = self(X)
        return _expected_log_lik(y, mean, var, noise).sum(), _kl_standard(self.q_mu, self.q_sqrt())


def _svgp_loss(model, batch, step):
    """-ELBO / N estimated on one batch: -(1/|B|) sum_B E log p(y|f) + KL / N."""
    X, y = batch
    module = model.module if hasattr(model, "module") else model
    mean, var, noise = model(X)
    return -_expected_log_lik(y, mean, var, noise).mean() + _kl_standard(
        module.q_mu, module.q_sqrt()) / step.n_train


class _TargetLastColumn(torch.utils.data.IterableDataset):
    """A stream of (X (B, D), normalised y (B,)) mini-batches read from a DataSource of rows
    [x, y] (the batches' rows re-cut into chunks of at most ``batch_size``).

    ``n_rows`` and ``n_batches`` (this rank's, counted by the sampling pass) tell the Trainer
    the stream's size, so it does not read the stream once more to count them.
    """

    def __init__(self, source: DataSource, mean: float, std: float, n_rows: int, n_batches: int):
        self.source, self.mean, self.std = source, mean, std
        self.n_rows, self.n_batches = n_rows, n_batches

    def __iter__(self):
        for chunk in self.source:  # (B, D + 1)
            yield chunk[:, :-1], (chunk[:, -1] - self.mean) / self.std


def _splitmix64(z: np.ndarray) -> np.ndarray:
    """splitmix64 (Steele, Lea & Flood 2014) on an array of uint64 words (arithmetic mod 2^64)."""
    z = z + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def _row_keys(rows: torch.Tensor, seed: int) -> torch.Tensor:
    """A uniform [0, 1) key (B,) for each row (B, D) that is a hash of the row's float64 bit
    pattern and ``seed`` alone: the same row gets the same key however the rows are ordered,
    batched or sharded over ranks."""
    words = rows.double().contiguous().numpy().view(np.uint64)  # (B, D)
    h = np.full(words.shape[0], seed, dtype=np.uint64)
    for column in words.T:
        h = _splitmix64(h ^ column)
    return torch.from_numpy((h >> np.uint64(11)).astype(np.float64) * 2.0 ** -53)


def _load(data, name):
    """An array, or a read-only memory map of a ``.npy`` path (rows are read when used)."""
    if isinstance(data, (str, os.PathLike)):
        if not str(data).endswith(".npy"):
            raise ValueError(f"{name} as a path must be a .npy file, got {data!r}.")
        if not os.path.isfile(data):
            raise FileNotFoundError(f"No {name} file at {data}.")
        return np.load(data, mmap_mode="r")
    return data


class SparseGaussianProcessRegressor(TorchEstimatorMixin, RegressorMixin, BaseEstimator):
    """Sparse variational GP regression: SGPR (collapsed, in memory) or SVGP (mini-batches).

    Parameters
    ----------
    kernel : Kernel or None, default=None
        Prior covariance of the latent f, without a WhiteKernel (the noise is ``noise``).
        None means ``ConstantKernel(1.0) * RBF(1.0)``.
    n_inducing : int, default=256
        Number of inducing points M (at most n), placed by k-means.
    method : {"sgpr", "svgp"}, default="sgpr"
    noise : float, default=1.0
        Initial Gaussian noise variance s2; ``noise_bounds="fixed"`` keeps it.
    noise_bounds : pair of floats or "fixed", default=(1e-6, 1e5)
    learn_inducing : bool, default=True
        Optimise the inducing inputs Z (else they stay at the k-means centres).
    optimizer : "fmin_l_bfgs_b" or None, default="fmin_l_bfgs_b"
        SGPR: L-BFGS-B on the collapsed bound; None keeps kernel, noise and Z as given and
        only computes the optimal q(u).
    inducing_points : array (M, D) or None, default=None
        Start Z here instead of at k-means centres (``n_inducing`` is then ignored).
    normalize_y : bool, default=True
        Standardise y before fitting.
    max_iter : int, default=500
        L-BFGS-B iterations of SGPR (for SVGP: of the SGPR fit on a subsample that starts it).
    batch_size, max_epochs, lr : SVGP mini-batch size, epochs and Adam step size (default
        1e-3). SVGP starts near the optimum (from SGPR on a subsample) and Adam's first steps
        move every entry of q(v) by about ``lr``: at 1e-2 that threw a fit on 4,000 rows from
        a test NLL of -0.87 to +0.30 nats/point, at 1e-3 it stayed at -0.87. With Batches the
        mini-batches are the Batches' rows cut into chunks of at most ``batch_size``.
    progress : bool, default=False
        SVGP progress bar.
    device, dtype, random_state

    Attributes
    ----------
    kernel_, noise_ : fitted kernel and noise variance (in normalised units of y)
    inducing_points_ : ndarray (M, D)
    q_mu_ : ndarray (M,), q_sqrt_ : ndarray (M, M)   whitened q(v) = N(q_mu, q_sqrt q_sqrt^T)
    y_train_mean_, y_train_std_ : float
    lower_bound_ : float     the bound maximised (SGPR: F; SVGP: the ELBO over all the data)
    history_ : list          SVGP per-epoch losses (-ELBO / N)
    """

    _parameter_constraints: dict = {
        **TorchEstimatorMixin._parameter_constraints,
        "kernel": [None, Kernel],
        "n_inducing": [Interval(Integral, 1, None, closed="left")],
        "method": [StrOptions({"sgpr", "svgp"})],
        "noise": [Interval(Real, 0, None, closed="neither")],
        "noise_bounds": [tuple, list, StrOptions({"fixed"})],
        "learn_inducing": ["boolean"],
        "optimizer": [StrOptions({"fmin_l_bfgs_b"}), None],
        "inducing_points": ["array-like", None],
        "normalize_y": ["boolean"],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "max_epochs": [Interval(Integral, 1, None, closed="left")],
        "lr": [Interval(Real, 0, None, closed="neither")],
        "progress": ["boolean"],
    }

    def __init__(self, kernel=None, *, n_inducing=256, method="sgpr", noise=1.0,
                 noise_bounds=(1e-6, 1e5), learn_inducing=True, optimizer="fmin_l_bfgs_b",
                 inducing_points=None,
                 normalize_y=True, max_iter=500, batch_size=1024, max_epochs=10, lr=1e-3,
                 progress=False, device="cpu", dtype="float64", random_state=None):
        self.kernel = kernel
        self.n_inducing = n_inducing
        self.method = method
        self.noise = noise
        self.noise_bounds = noise_bounds
        self.learn_inducing = learn_inducing
        self.optimizer = optimizer
        self.inducing_points = inducing_points
        self.normalize_y = normalize_y
        self.max_iter = max_iter
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.lr = lr
        self.progress = progress
        self.device = device
        self.dtype = dtype
        self.random_state = random_state

    # -- data and initialisation ------------------------------------------------------------
    def _validated(self, X, y):
        X, y = _load(X, "X"), _load(y, "y")
        if isinstance(X, np.memmap) or isinstance(y, np.memmap):
            X, y = np.asarray(X), np.asarray(y)  # views on the map: no copy
            if X.ndim != 2 or y.ndim != 1 or X.shape[0] != y.shape[0]:
                raise ValueError(f"X must be (n, D) and y (n,) with the same n; got {X.shape} and "
                                 f"{y.shape}.")
            for start in range(0, X.shape[0], _PREDICT_ROWS):  # NaN/inf check in blocks
                rows = slice(start, start + _PREDICT_ROWS)
                if not (np.isfinite(X[rows]).all() and np.isfinite(y[rows]).all()):
                    raise ValueError("Input contains NaN or infinity; clean the data first.")
            self.n_features_in_ = X.shape[1]
            return X, y
        return self._validate_X_y(X, y, min_samples=2)

    def _initial_inducing(self, X) -> np.ndarray:
        if self.inducing_points is not None:
            Z = np.asarray(self.inducing_points, dtype=self._numpy_dtype)
            if Z.ndim != 2 or Z.shape[1] != X.shape[1]:
                raise ValueError(f"inducing_points must be (M, {X.shape[1]}), got {Z.shape}.")
            return Z
        M = min(self.n_inducing, X.shape[0])
        rng = check_random_state(self.random_state)
        rows = (np.sort(rng.choice(X.shape[0], _KMEANS_ROWS, replace=False))
                if X.shape[0] > _KMEANS_ROWS else slice(None))
        sample = np.asarray(X[rows], dtype=self._numpy_dtype)
        if M == sample.shape[0]:
            return sample.copy()
        km = KMeans(M, n_init=1, max_iter=25, random_state=self.random_state, dtype=self.dtype)
        return km.fit(sample).cluster_centers_.astype(self._numpy_dtype)

    # -- fitting ----------------------------------------------------------------------------
    def fit(self, X, y=None):
        """Fit the inducing points, kernel, noise and q(u) (SGPR or SVGP).

        ``X`` (n, D) with targets ``y`` (n,), as arrays or ``.npy`` paths (memory-mapped); or,
        with ``method="svgp"`` and ``y=None``, :class:`~bayesdl.core.em.Batches` of rows
        ``[x, y]`` (the target in the last column, as the EM engine's supervised models take
        them), for data that is read block by block and never held in memory.

        Under ``torch.distributed`` (SVGP): arrays and ``.npy`` paths are the whole data, the
        same on every rank, and ``batch_size`` rows of each global batch of ``batch_size`` x
        world size go to each rank (as the Trainer's ``DistributedSampler`` deals them); Batches
        are each rank's own shard, with the same number of ``batch_size``-row chunks on every
        rank (one process reading the ranks' chunks side by side, batch_size x world size rows
        at a time, fits the same model when the ranks' chunks of each step are equally long,
        since DDP averages the ranks' mean losses). The inducing points and the SGPR start
        come from a uniform sample of all the ranks' rows, the same on every rank.
        """
        self._validate_params()
        if isinstance(X, Batches):
            if y is not None:
                raise ValueError("With Batches the targets are the last column of each batch; "
                                 "call fit(Batches(...)) with y=None.")
            if self.method != "svgp":
                raise ValueError("Batches are streamed by SVGP; set method='svgp' (SGPR needs "
                                 "the data in memory).")
            self.kernel_ = (ConstantKernel(1.0) * RBF(1.0)) if self.kernel is None else clone(self.kernel)
            with torch_threads(1):
                self._fit_svgp_stream(X)
            return self
        if y is None:
            raise ValueError(f"This {type(self).__name__} estimator requires y to be passed, but "
                             "the target y is None (or give X as Batches with the target in the "
                             "last column).")
        X, y = self._validated(X, y)
        if self.normalize_y:
            self.y_train_mean_ = float(np.mean(y))
            std = float(np.std(y))
            self.y_train_std_ = std if std > 0 else 1.0
        else:
            self.y_train_mean_, self.y_train_std_ = 0.0, 1.0
        self.kernel_ = (ConstantKernel(1.0) * RBF(1.0)) if self.kernel is None else clone(self.kernel)
        Z0 = self._initial_inducing(X)
        # The per-step work (an M x batch kernel block) is too small to split over threads,
        # which on shared cores mostly wait for each other.
        with torch_threads(1):
            if self.method == "sgpr":
                self._fit_sgpr(X, y, Z0)
            else:
                self._fit_svgp(X, y, Z0)
        return self

    def _noise_log_bounds(self):
        if isinstance(self.noise_bounds, str):
            return np.log([self.noise, self.noise])
        low, high = self.noise_bounds
        if not 0 < low <= self.noise <= high:
            raise ValueError(f"noise={self.noise} must lie within noise_bounds={self.noise_bounds} "
                             "(both positive).")
        return np.log([low, high])

    def _collapsed_bound(self, theta, log_noise, Z, X, y, scale: float = 1.0):
        """Titsias (2009) eq. 9 and the optimal whitened q(v): (F, mu, R).

        ``scale`` = n / len(X) treats (X, y) as a uniform subsample of n rows: the data terms
        of q(v) are multiplied by it (used to start SVGP; F is then not a bound).
        """
        noise = log_noise.exp() / scale
        M, n = Z.shape[0], X.shape[0]
        eye = torch.eye(M, dtype=X.dtype, device=X.device)
        L, _ = cholesky_with_jitter(self.kernel_.gram(Z, None, theta), strict=False)
        A = torch.linalg.solve_triangular(L, self.kernel_.gram(Z, X, theta), upper=False)
        A = A / noise.sqrt()  # (M, n)
        L_B, _ = cholesky_with_jitter(eye + A @ A.T, strict=False)  # B = I + A A^T
        c = torch.linalg.solve_triangular(L_B, (A @ y)[:, None], upper=False)[:, 0] / noise.sqrt()
        # F = -n/2 log 2pi - log|L_B| - n/2 log s2 - y^T y / (2 s2) + c^T c / 2
        #     - tr(K_nn) / (2 s2) + tr(A A^T) / 2
        bound = (-0.5 * n * _LOG_2PI - torch.log(torch.diagonal(L_B)).sum()
                 - 0.5 * n * torch.log(noise) - 0.5 * (y @ y) / noise + 0.5 * (c @ c)
                 - 0.5 * self.kernel_.diag(X, theta).sum() / noise + 0.5 * (A * A).sum())
        # q(v) = N(B^-1 A y / s, B^-1): mu = L_B^-T c, R = L_B^-T
        R = torch.linalg.solve_triangular(L_B.T, eye, upper=True)
        return bound, R @ c, R

    def _fit_sgpr(self, X, y, Z0):
        Xt = self._to_torch(X)
        yt = (self._to_torch(y) - self.y_train_mean_) / self.y_train_std_
        theta, log_noise, Z = self._optimize_collapsed(Xt, yt, Z0)
        with torch.no_grad():
            bound, mu, R = self._collapsed_bound(theta, log_noise, Z, Xt, yt)
        self._store(theta, log_noise.exp(), Z, mu, R, float(bound))

    def _optimize_collapsed(self, Xt, yt, Z0):
        """Maximise the collapsed bound over theta, log noise and Z (unless optimizer=None)."""
        P, (M, D) = self.kernel_.n_dims, Z0.shape
        nb = self._noise_log_bounds()
        z_bounds = np.full((M * D, 2), [-np.inf, np.inf]) if self.learn_inducing else None
        bounds = np.vstack([self.kernel_.bounds.reshape(-1, 2), nb[None]]
                           + ([z_bounds] if z_bounds is not None else []))
        start = np.concatenate([self.kernel_.theta, [math.log(self.noise)]]
                               + ([Z0.ravel()] if z_bounds is not None else []))
        Z_fixed = self._to_torch(Z0)

        def unpack(v):
            Z = v[P + 1:].reshape(M, D) if z_bounds is not None else Z_fixed
            return v[:P], v[P], Z

        def loss_and_grad(index, flat):
            v = torch.tensor(flat[0], dtype=Xt.dtype, device=Xt.device, requires_grad=True)
            theta, log_noise, Z = unpack(v)
            bound = self._collapsed_bound(theta, log_noise, Z, Xt, yt)[0]
            (grad,) = torch.autograd.grad(bound, v)
            return -bound.detach().cpu().numpy()[None], -grad.cpu().numpy()[None]

        self.n_iter_ = 0
        if self.optimizer is not None:
            (result,) = batched_lbfgsb(loss_and_grad, start[None], bounds,
                                       options={"maxiter": self.max_iter})
            start, self.n_iter_ = result.x, int(result.nit)
        return unpack(torch.as_tensor(start, dtype=Xt.dtype, device=Xt.device))

    def _store(self, theta, noise, Z, q_mu, q_sqrt, bound):
        if self.kernel_.n_dims:
            self.kernel_.theta = theta.detach().cpu().numpy()
        self.noise_ = float(noise)
        self.inducing_points_ = self._to_numpy(Z)
        self.q_mu_, self.q_sqrt_ = self._to_numpy(q_mu), self._to_numpy(q_sqrt)
        self.lower_bound_ = bound

    def _fit_svgp(self, X, y, Z0):
        # zero-copy CPU views of the arrays or memory maps; the Trainer moves each batch
        Xt = self._host_view(X)
        yt = (self._host_view(y) - self.y_train_mean_) / self.y_train_std_
        n = Xt.shape[0]
        rng = check_random_state(self.random_state)
        rows = np.sort(rng.choice(n, _SVGP_INIT_ROWS, replace=False)) if n > _SVGP_INIT_ROWS else slice(None)
        module = self._svgp_start(Xt[rows], yt[rows], Z0, n)
        own = distributed.shard(n)  # the final ELBO pass reads this rank's block of the rows
        self._train_svgp(module, (Xt, yt), [(Xt[i:min(i + _PREDICT_ROWS, own.stop)],
                                             yt[i:min(i + _PREDICT_ROWS, own.stop)])
                                            for i in range(own.start, own.stop, _PREDICT_ROWS)])

    def _fit_svgp_stream(self, batches: Batches):
        """SVGP on a stream of [x, y] rows: one pass for n, the mean and std of y and a uniform
        sample of rows (k-means and the SGPR start), then the Trainer's epochs (told the
        stream's size, so they are its only other passes) and one pass for the ELBO."""
        source = DataSource(batches, dtype=self._torch_dtype, device=torch.device("cpu"),
                            chunk_size=self.batch_size)
        if source.n_features < 2:
            raise ValueError(f"Each batch must hold the inputs and the target in its last "
                             f"column (at least 2 columns), got {source.n_features}.")
        self.n_features_in_ = source.n_features - 1
        sample, (rows, chunks, total, squares) = self._stream_sample(
            source, max(_KMEANS_ROWS, _SVGP_INIT_ROWS))
        n, total, squares = (float(v) for v in distributed.all_reduce_sum([rows, total, squares]))
        if n < 2:
            raise ValueError(f"Found {int(n)} sample(s) in the Batches; SVGP needs at least 2.")
        self.y_train_mean_, self.y_train_std_ = 0.0, 1.0
        if self.normalize_y:
            self.y_train_mean_ = total / n
            std = math.sqrt(max(squares / n - self.y_train_mean_ ** 2, 0.0))
            self.y_train_std_ = std if std > 0 else 1.0
        Z0 = self._initial_inducing(sample[:, :-1].numpy())
        start = sample[:_SVGP_INIT_ROWS]  # the sample is in random order: a uniform subsample
        module = self._svgp_start(start[:, :-1], (start[:, -1] - self.y_train_mean_) / self.y_train_std_,
                                  Z0, int(n))
        stream = _TargetLastColumn(source, self.y_train_mean_, self.y_train_std_, int(rows),
                                   int(chunks))
        self._train_svgp(module, stream, stream)

    def _stream_sample(self, source: DataSource, size: int):
        """One pass over ``source``: a uniform sample of ``size`` rows without replacement, the
        same on every rank and in one process however the rows are sharded, ordered or batched,
        and this rank's float64 (rows, chunks, sum y, sum y^2).

        Bottom-k sampling (Cohen & Kaplan 2007) with hashed keys: every row gets a key that is a
        hash of its values (:func:`_row_keys`, uniform on [0, 1) for distinct rows) and the
        sample is the ``size`` rows with the smallest keys over all ranks (each rank keeps its
        own ``size`` smallest, then they are gathered), in key order, i.e. in random order.
        Equal rows share a key, so duplicates enter the sample together.
        """
        seed = int(check_random_state(self.random_state).randint(2**31 - 1))
        keys, rows = torch.empty(0, dtype=torch.float64), []
        sums = torch.zeros(4, dtype=torch.float64)
        for chunk in source:  # (B, D + 1)
            y = chunk[:, -1].double()
            sums += torch.stack([y.new_tensor(float(y.shape[0])), y.new_tensor(1.0), y.sum(),
                                 y @ y])
            keys = torch.cat([keys, _row_keys(chunk, seed)])
            rows.append(chunk)
            if keys.shape[0] >= 2 * size:  # prune the buffer back to the sample
                keep = torch.topk(keys, size, largest=False).indices
                keys, rows = keys[keep], [torch.cat(rows)[keep]]
        best = Candidates.top(-keys, torch.cat(rows), size)  # the largest -key first
        scores, sample = best.scores, best.rows
        missing = size - scores.shape[0]
        if distributed.is_distributed() and missing:  # all_gather needs equal shapes
            scores = torch.cat([scores, scores.new_full((missing,), -math.inf)])
            sample = torch.cat([sample, sample.new_zeros(missing, sample.shape[1])])
        best = Candidates(scores, sample).all_gather()
        return best.rows[best.scores > -math.inf], list(sums)

    def _train_svgp(self, module, train_data, blocks):
        """Adam on the mini-batch ELBO through the Trainer, then the ELBO over all the rows:
        ``blocks`` are this rank's rows (all of them in one process), summed over the ranks."""
        trainer = Trainer(module, _svgp_loss, lr=self.lr, max_epochs=self.max_epochs,
                          batch_size=self.batch_size, seed=int(check_random_state(
                              self.random_state).randint(2**31 - 1)),
                          device=self._torch_device, progress=self.progress)
        trainer.fit(train_data)
        self.history_ = [h["loss"] for h in trainer.history]
        with torch.no_grad():
            theta, noise = module.hyperparameters()
            self._store(theta, noise, module.Z, module.q_mu, module.q_sqrt(), 0.0)
            # Hensman 2013, 4: sum of the expected log-likelihoods over all rows, minus the KL
            data_term = sum(float(module.elbo_terms(X.to(self._torch_device),
                                                    y.to(self._torch_device))[0]) for X, y in blocks)
            (data_term,) = distributed.all_reduce_sum([torch.tensor([data_term],
                                                                    dtype=torch.float64)])
            self.lower_bound_ = float(data_term) - float(_kl_standard(module.q_mu, module.q_sqrt()))

    def _svgp_start(self, X, y, Z0, n) -> SVGP:
        """SVGP initialised from SGPR on a uniform subsample (X, y) of the n rows.

        The collapsed bound sets theta, the noise and Z on the subsample; q(v) is its optimal
        one with the data terms scaled by n / rows, so the mini-batch ascent starts near the
        optimum instead of at q(v) = N(0, I).
        """
        Xs, ys = self._to_torch(X), self._to_torch(y)
        theta, log_noise, Z = self._optimize_collapsed(Xs, ys, Z0)
        module = SVGP(self.kernel_.clone_with_theta(theta.detach().cpu().numpy()) if self.kernel_.n_dims
                      else self.kernel_, Z.detach(), float(log_noise.exp()),
                      np.exp(self._noise_log_bounds()), self.learn_inducing)
        with torch.no_grad():
            _, mu, R = self._collapsed_bound(theta, log_noise, Z, Xs, ys, scale=n / Xs.shape[0])
            module.q_mu.copy_(mu)
            # q_tril holds the lower factor with a log diagonal: R R^T = S, R lower (Cholesky of S)
            lower = torch.linalg.cholesky(R @ R.T)
            module.q_tril.copy_(torch.tril(lower, -1) + torch.diag(torch.log(torch.diagonal(lower))))
        return module.to(self._torch_device)

    def _host_view(self, a):
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
            return torch.as_tensor(np.asarray(a, dtype=self._numpy_dtype))

    # -- prediction -------------------------------------------------------------------------
    def _latent(self, X):
        check_is_fitted(self)
        X = self._validate_X(X, reset=False)
        Z, q_mu, q_sqrt = (self._to_torch(a) for a in (self.inducing_points_, self.q_mu_, self.q_sqrt_))
        means, variances = [], []
        with torch.no_grad():
            for start in range(0, X.shape[0], _PREDICT_ROWS):
                block = self._to_torch(X[start:start + _PREDICT_ROWS])
                m, v = _whitened_predictive(self.kernel_, None, Z, block, q_mu, q_sqrt)
                means.append(m)
                variances.append(v.clamp_min(0.0))
        scale = self.y_train_std_
        return torch.cat(means) * scale + self.y_train_mean_, torch.cat(variances) * scale ** 2

    def predict(self, X, return_std=False):
        """Mean of q(f(X)) and optionally its std (latent f, without the noise)."""
        mean, var = self._latent(X)
        if return_std:
            return self._to_numpy(mean), self._to_numpy(var.sqrt())
        return self._to_numpy(mean)

    def predict_dist(self, X, observation_noise: bool = False) -> torch.distributions.Normal:
        """Independent Normals for f(X), or for y(X) with ``observation_noise``."""
        mean, var = self._latent(X)
        if observation_noise:
            var = var + self.noise_ * self.y_train_std_ ** 2
        return torch.distributions.Normal(mean, var.sqrt())
