"""Principal component analysis: the directions of maximum variance (PRML 12.1).

The principal subspace of dimension ``k`` is spanned by the ``k`` leading eigenvectors of the
sample covariance ``S = 1/(N-1) sum_n (x_n - xbar)(x_n - xbar)^T`` (PRML 12.3, 12.5), and
the variance along each is its eigenvalue. Three ways to get them:

- ``"full"``: the thin SVD of the centred data ``X - xbar = U diag(s) V^T``; then
  ``components_ = V^T`` and the variances are ``s^2 / (N - 1)``;
- ``"covariance_eigh"``: the eigendecomposition of ``S``. ``S`` is a sum over rows, so it is
  an EM-engine statistic (:func:`covariance_statistics`): the data are read in chunks (a
  ``.npy`` file larger than memory, :class:`~bayesdl.core.em.Batches`), summed in float64
  and all-reduced under ``torch.distributed``. Chosen when ``N >> D`` and always for files;
- ``"randomized"``: Halko, Martinsson & Tropp (2011) randomised range finder with power
  iterations, for a few components of wide data.

``score_samples`` is the log-density under the probabilistic PCA model with the fitted
components and ``noise_variance_`` (Tipping & Bishop 1999), exactly as scikit-learn defines it.
"""

from __future__ import annotations

import math
import os
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils._param_validation import Interval, RealNotInt, StrOptions
from sklearn.utils.validation import check_is_fitted

from .._base import TorchEstimatorMixin
from ..core.em import Batches, DataSource, accumulate, data_source
from ..core import distributed

# Elements per chunk of the covariance pass: large GEMMs, a few tens of MB per chunk.
COVARIANCE_CHUNK_ELEMENTS = 2**21


def covariance_statistics(data: DataSource):
    """``(n, mean (D,), scatter (D, D))`` in float64, in one pass over ``data``.

    ``scatter = sum_n (x_n - xbar)(x_n - xbar)^T``. Rows are shifted by the first chunk's
    mean (rank 0's) before summing, so ``sum (x - c)(x - c)^T - n (xbar - c)(xbar - c)^T``
    does not cancel catastrophically when the mean is large.
    """
    (shift,) = distributed.broadcast([next(iter(data)).double().mean(0)])

    def chunk_stats(X):
        Xc = X.double() - shift  # (n, D)
        return {"s1": Xc.sum(0), "s2": Xc.T @ Xc}, Xc.new_zeros(())

    stats, _, n = accumulate(data, chunk_stats)
    d = stats["s1"] / n  # xbar - c
    return n, shift + d, stats["s2"] - n * torch.outer(d, d)


def _lu_normalised(Y: torch.Tensor) -> torch.Tensor:
    """``P L`` of the LU factorisation of ``Y``: a well-conditioned basis of its range, cheaper
    than QR (Halko et al. 2011, as scikit-learn's power iterations)."""
    P, L, _ = torch.linalg.lu(Y)
    return P @ L


def svd_flip(V: torch.Tensor) -> torch.Tensor:
    """Signs of the rows of ``V`` (k, D) fixed so each row's largest-magnitude entry is
    positive (scikit-learn's ``svd_flip(u_based_decision=False)``), so results are deterministic."""
    signs = torch.sign(V.gather(1, V.abs().argmax(1, keepdim=True)))  # (k, 1)
    return V * torch.where(signs == 0, torch.ones_like(signs), signs)


def _assess_dimension(spectrum: np.ndarray, rank: int, n_samples: int) -> float:
    """Minka (2000) "Automatic choice of dimensionality for PCA": log p(X | rank), the
    Laplace approximation of the evidence used by ``n_components="mle"`` (as scikit-learn)."""
    n_features = spectrum.shape[0]
    if spectrum[rank - 1] < 1e-15:
        return -math.inf
    pu = -rank * math.log(2.0)
    for i in range(1, rank + 1):
        pu += math.lgamma((n_features - i + 1) / 2.0) - math.log(math.pi) * (n_features - i + 1) / 2.0
    pl = -np.sum(np.log(spectrum[:rank])) * n_samples / 2.0
    v = max(1e-15, np.sum(spectrum[rank:]) / (n_features - rank))
    pv = -math.log(v) * n_samples * (n_features - rank) / 2.0
    m = n_features * rank - rank * (rank + 1.0) / 2.0
    pp = math.log(2.0 * math.pi) * (m + rank) / 2.0
    spectrum_ = spectrum.copy()
    spectrum_[rank:n_features] = v
    pa = 0.0
    for i in range(rank):
        for j in range(i + 1, len(spectrum)):
            pa += math.log((spectrum[i] - spectrum[j]) * (1.0 / spectrum_[j] - 1.0 / spectrum_[i])) \
                + math.log(n_samples)
    return pu + pl + pv + pp - pa / 2.0 - rank * math.log(n_samples) / 2.0


def infer_dimension(spectrum: np.ndarray, n_samples: int) -> int:
    """The rank maximising Minka's evidence :func:`_assess_dimension`."""
    ll = [-math.inf] + [_assess_dimension(spectrum, r, n_samples) for r in range(1, len(spectrum))]
    return int(np.argmax(ll))


def n_components_from(n_components, explained_variance: np.ndarray, n_samples: int) -> int:
    """The number of components that ``n_components`` (int, fraction, "mle", None) asks for."""
    if n_components is None:
        return len(explained_variance)
    if n_components == "mle":
        return infer_dimension(explained_variance, n_samples)
    if isinstance(n_components, Integral):
        return int(n_components)
    ratio = explained_variance / explained_variance.sum()
    # The smallest k whose cumulative explained ratio exceeds the fraction (scikit-learn's rule).
    return int(np.searchsorted(np.cumsum(ratio), n_components, side="right") + 1)


class PCA(ClassNamePrefixFeaturesOutMixin, TransformerMixin, TorchEstimatorMixin, BaseEstimator):
    """Principal component analysis (PRML 12.1), scikit-learn's ``PCA`` computed in torch.

    Parameters
    ----------
    n_components : int, float in (0, 1), "mle" or None
        Components kept: a count; the fraction of variance to explain; Minka's MLE; or all
        ``min(n_samples, n_features)``.
    whiten : bool
        ``transform`` divides each projection by its standard deviation.
    svd_solver : {"auto", "full", "covariance_eigh", "randomized"}
        See the module docstring. ``"auto"``: the covariance when ``N >= 10 D`` and
        ``D <= 1000`` (always for ``.npy`` files and Batches), randomized for fewer than 80% of
        the components of data larger than 500 x 500, else full.
    iterated_power, n_oversamples : the randomised solver's power iterations and extra
        random directions ("auto": 7 power iterations when k < 0.1 min(N, D), else 4).
    chunk_size : rows per chunk of the covariance pass (default: about 2M values).
    """

    _parameter_constraints: dict = {
        **TorchEstimatorMixin._parameter_constraints,
        "n_components": [Interval(Integral, 0, None, closed="left"),
                         Interval(RealNotInt, 0, 1, closed="neither"), StrOptions({"mle"}), None],
        "whiten": ["boolean"],
        "svd_solver": [StrOptions({"auto", "full", "covariance_eigh", "randomized"})],
        "iterated_power": [Interval(Integral, 0, None, closed="left"), StrOptions({"auto"})],
        "n_oversamples": [Interval(Integral, 1, None, closed="left")],
        "chunk_size": [Interval(Integral, 1, None, closed="left"), None],
    }

    def __init__(self, n_components=None, *, whiten=False, svd_solver="auto",
                 iterated_power="auto", n_oversamples=10, random_state=None, device="cpu",
                 dtype="float64", chunk_size=None):
        self.n_components = n_components
        self.whiten = whiten
        self.svd_solver = svd_solver
        self.iterated_power = iterated_power
        self.n_oversamples = n_oversamples
        self.random_state = random_state
        self.device = device
        self.dtype = dtype
        self.chunk_size = chunk_size

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = [self.dtype]
        return tags

    # -- fitting ----------------------------------------------------------------------------
    def fit(self, X, y=None):
        """Fit on ``X``: an array, a path to a ``.npy`` file (read in chunks) or
        :class:`~bayesdl.core.em.Batches`. Returns ``self``."""
        self._validate_params()
        data = data_source(self, X, reset=True, min_samples=2,
                           chunk_elements=COVARIANCE_CHUNK_ELEMENTS)
        n, d = data.n_samples, data.n_features
        solver = self._solver(data)
        if self.n_components == "mle" and n < d:
            raise ValueError(f"n_components='mle' needs n_samples >= n_features, got "
                             f"{n} < {d}. Pass an integer n_components.")
        if isinstance(self.n_components, Integral) and self.n_components > min(n, d):
            raise ValueError(f"n_components={self.n_components} must be between 0 and "
                             f"min(n_samples, n_features)={min(n, d)} (n_features = {d}); "
                             "ask for fewer components.")
        if solver == "randomized":
            if not isinstance(self.n_components, Integral) or self.n_components >= min(n, d):
                raise ValueError("svd_solver='randomized' needs an integer n_components below "
                                 f"min(n_samples, n_features)={min(n, d)}; use svd_solver='full' "
                                 "otherwise.")
        fit = {"full": self._fit_full, "covariance_eigh": self._fit_covariance,
               "randomized": self._fit_randomized}[solver]
        mean, V, variances, total_var = fit(data)  # (D,), (r, D), (r,), float
        self.n_samples_, self._fit_svd_solver = n, solver
        explained = self._to_numpy(variances).astype(np.float64)
        k = n_components_from(self.n_components, explained, n) if solver != "randomized" \
            else self.n_components
        self.n_components_ = k
        self.mean_ = self._to_numpy(mean.to(self._torch_dtype))
        self.components_ = self._to_numpy(svd_flip(V[:k]).to(self._torch_dtype))
        self.explained_variance_ = explained[:k].astype(self._numpy_dtype)
        self.explained_variance_ratio_ = (explained[:k] / total_var).astype(self._numpy_dtype)
        self.singular_values_ = np.sqrt(explained[:k] * (n - 1)).astype(self._numpy_dtype)
        # PRML 12.46: the ML noise variance is the mean variance of the discarded directions.
        rest = min(n, d) - k
        self.noise_variance_ = float((total_var - explained[:k].sum()) / rest) if rest > 0 \
            else 0.0
        return self

    def _solver(self, data: DataSource) -> str:
        if self.svd_solver != "auto":
            if data.path is not None or data.is_batches:
                if self.svd_solver != "covariance_eigh":
                    raise ValueError(f"svd_solver={self.svd_solver!r} needs the data in memory; "
                                     "a .npy file or Batches are streamed through the covariance "
                                     "(svd_solver='covariance_eigh' or 'auto').")
            return self.svd_solver
        n, d = data.n_samples, data.n_features
        if data.path is not None or data.is_batches or (d <= 1000 and n >= 10 * d):
            return "covariance_eigh"
        if max(n, d) > 500 and isinstance(self.n_components, Integral) \
                and 1 <= self.n_components < 0.8 * min(n, d):
            return "randomized"
        return "full"

    def _centred(self, data: DataSource):
        X = self._to_torch(data.data)  # (N, D)
        mean = X.mean(0)
        return X - mean, mean

    def _fit_full(self, data: DataSource):
        Xc, mean = self._centred(data)
        _, s, Vt = torch.linalg.svd(Xc, full_matrices=False)  # X - xbar = U diag(s) V^T
        variances = s**2 / (data.n_samples - 1)
        return mean, Vt, variances, float(variances.double().sum())

    def _fit_covariance(self, data: DataSource):
        n, mean, scatter = covariance_statistics(data)
        S = scatter / (n - 1)  # (D, D) PRML 12.3 (unbiased, as scikit-learn)
        evals, evecs = torch.linalg.eigh(S)  # ascending
        evals = evals.flip(0).clamp_min(0.0)
        V = evecs.flip(1).T  # (D, D), rows = eigenvectors, largest eigenvalue first
        total = float(torch.diagonal(S).sum())
        r = min(n, data.n_features)
        return mean, V[:r], evals[:r], total

    def _fit_randomized(self, data: DataSource):
        """Halko et al. (2011) Algorithms 4.3/4.4: range finder with LU-normalised power
        iterations on ``A = X - xbar``, then the SVD of the small ``Q^T A``."""
        A, mean = self._centred(data)
        n, d = A.shape
        k = self.n_components
        n_iter = self.iterated_power
        if n_iter == "auto":
            n_iter = 7 if k < 0.1 * min(n, d) else 4
        transpose = n < d  # work on the smaller side, as scikit-learn
        if transpose:
            A = A.T
        gen = self._torch_generator()
        Q = torch.randn(A.shape[1], k + self.n_oversamples, generator=gen,
                        dtype=A.dtype, device=A.device)  # (D, k + p) Gaussian test matrix
        for _ in range(n_iter):  # power iterations sharpen the spectrum (Halko 4.4)
            Q = _lu_normalised(A @ Q)
            Q = _lu_normalised(A.T @ Q)
        Q, _ = torch.linalg.qr(A @ Q)  # (N, k + p) orthonormal basis of the range
        Uh, s, Vt = torch.linalg.svd(Q.T @ A, full_matrices=False)
        if transpose:  # A^T = Q Uh S Vt, so A = Vt^T S (Q Uh)^T
            Vt = (Q @ Uh).T
        variances = s[:k] ** 2 / (data.n_samples - 1)
        total = float((A.double() ** 2).sum()) / (data.n_samples - 1)
        return mean, Vt[:k], variances, total

    # -- transforming -----------------------------------------------------------------------
    def _checked_X(self, X) -> torch.Tensor:
        check_is_fitted(self)
        return self._to_torch(self._validate_X(X, reset=False))

    def transform(self, X):
        """Project ``X`` on the principal components (N, k); divided by their standard
        deviations when ``whiten``."""
        Z = (self._checked_X(X) - self._to_torch(self.mean_)) @ self._to_torch(self.components_).T
        if self.whiten:
            Z = Z / self._to_torch(np.sqrt(self.explained_variance_))
        return self._to_numpy(Z)

    def inverse_transform(self, X):
        """Map projections (N, k) back to the data space (N, D)."""
        check_is_fitted(self)
        Z = self._to_torch(np.asarray(X))
        V = self._to_torch(self.components_)  # (k, D)
        if self.whiten:
            V = V * self._to_torch(np.sqrt(self.explained_variance_))[:, None]
        return self._to_numpy(Z @ V + self._to_torch(self.mean_))

    @property
    def _n_features_out(self):
        return self.components_.shape[0]

    # -- the probabilistic PCA density ------------------------------------------------------
    def _density_factors(self):
        """``(V (k, D), Lambda - sigma^2 (k,))`` in float64 as scikit-learn forms them (with
        ``whiten``, scikit-learn scales V by the standard deviations; we keep that parity)."""
        V = torch.as_tensor(self.components_, dtype=torch.float64)
        ev = torch.as_tensor(self.explained_variance_, dtype=torch.float64)
        if self.whiten:
            V = V * ev.sqrt()[:, None]
        return V, (ev - self.noise_variance_).clamp_min(0.0)

    def get_covariance(self):
        """``C = V^T (Lambda - sigma^2 I) V + sigma^2 I`` (D, D) (PRML 12.36 with the ML W)."""
        check_is_fitted(self)
        V, excess = self._density_factors()
        C = V.T @ (excess[:, None] * V)
        C.diagonal().add_(self.noise_variance_)
        return C.numpy()

    def get_precision(self):
        """``C^{-1}`` (D, D) by the matrix inversion lemma, as scikit-learn computes it."""
        check_is_fitted(self)
        d = self.components_.shape[1]
        if self.n_components_ == 0:
            return np.eye(d) / self.noise_variance_
        if self.noise_variance_ == 0.0:
            return np.linalg.inv(self.get_covariance())
        V, excess = self._density_factors()
        # (sigma^2 I + V^T E V)^{-1} by the Woodbury identity (PRML C.7)
        inner = V @ V.T / self.noise_variance_
        inner.diagonal().add_(1.0 / excess)
        P = -V.T @ torch.linalg.solve(inner, V) / self.noise_variance_**2
        P.diagonal().add_(1.0 / self.noise_variance_)
        return P.numpy()

    def score_samples(self, X):
        """``log N(x_n | xbar, C)`` per row (N,), the probabilistic PCA log-likelihood."""
        Xr = self._checked_X(X).double() - torch.as_tensor(self.mean_, dtype=torch.float64,
                                                           device=self._torch_device)
        P = torch.as_tensor(self.get_precision(), device=self._torch_device)
        d = Xr.shape[1]
        logdet = torch.linalg.slogdet(P)[1]
        log_like = -0.5 * ((Xr @ P) * Xr).sum(1) - 0.5 * (d * math.log(2 * math.pi) - logdet)
        return log_like.cpu().numpy()

    def score(self, X, y=None):
        """Mean log-likelihood per row."""
        return float(np.mean(self.score_samples(X)))


def is_streamed(X) -> bool:
    """Whether ``X`` is read chunk by chunk (a ``.npy`` path or Batches)."""
    return isinstance(X, (str, os.PathLike, Batches))
