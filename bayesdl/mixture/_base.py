"""What GaussianMixture and BayesianGaussianMixture share: data handling, initialisation,
the E-step over sufficient statistics, and the prediction methods.

Subclasses implement the engine hooks ``_initialize(data, random_state)`` (from
``_initial_resp_statistics``), ``_m_step(stats)``, ``_get_parameters`` and
``_set_parameters`` (which must end with ``_prepare_e_step()``), plus ``_log_offsets()``:
the per-component additive term of the E-step, ``log pi_k`` for EM, ``E[log pi_k] + ...``
for VB (PRML 9.23 and 10.46).
"""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import BaseEstimator, DensityMixin
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, check_random_state

from .._base import TorchEstimatorMixin
from ..core import distributed
from ..core.em import DataSource, EMMixin, accumulate, data_source
from ..core.linalg import log_normalize
from . import _suffstats as ss

# Rows used by the k-means++ initialisation when the data are larger (a uniform subset).
INIT_MAX_ROWS = 100_000
# The most memory a fit on an in-memory array spends on caching its chunks' E-step features
# ``T(x - c)`` (N x F values, e.g. 243 MB for 200,000 rows at d = 16, full covariance). Larger
# fits, and fits on files or Batches, recompute the features at every E-step.
FEATURE_CACHE_BYTES = 2**30


class BaseGaussianMixture(EMMixin, DensityMixin, TorchEstimatorMixin, BaseEstimator):
    _parameter_constraints: dict = {
        **TorchEstimatorMixin._parameter_constraints,
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "covariance_type": [StrOptions(set(ss.COVARIANCE_TYPES))],
        "tol": [Interval(Real, 0.0, None, closed="left")],
        "reg_covar": [Interval(Real, 0.0, None, closed="left")],
        "max_iter": [Interval(Integral, 0, None, closed="left")],
        "n_init": [Interval(Integral, 1, None, closed="left")],
        "init_params": [StrOptions({"kmeans", "k-means++", "random", "random_from_data"})],
        "warm_start": ["boolean"],
        "verbose": ["verbose"],
        "chunk_size": [Interval(Integral, 1, None, closed="left"), None],
    }

    # -- fitting ----------------------------------------------------------------------------
    def fit(self, X, y=None):
        """Fit by EM (or VB) on ``X``: an array, a path to a ``.npy`` file (memory-mapped and
        read in chunks), or :class:`bayesdl.core.em.Batches`. Returns ``self``.

        On an in-memory array the E-step features of every chunk (module ``_suffstats``:
        N x (D(D+1)/2 + D) values for full covariance, 9.5 times the data at D = 16) are
        computed once and kept for the fit when they take at most ``FEATURE_CACHE_BYTES``
        (1 GiB); files and batches recompute them, so their memory stays one chunk."""
        self._validate_params()
        data = self._data_source(X)
        # One shift c for the whole fit (module _suffstats): rank 0's first-chunk mean, so a
        # chunk's features T(x - c) are the same at every E-step and can be cached.
        (shift,) = distributed.broadcast([next(iter(data)).mean(0).double()])
        width = ss.n_statistics_features(self.n_features_in_, self.covariance_type)
        cache = data.in_memory and (
            data.n_samples * width * data.dtype.itemsize <= FEATURE_CACHE_BYTES)
        self._fit_shift, self._cache_features = shift, cache
        try:
            self._fit_em(data)
            self._finish_fit(data)
        finally:
            del self._fit_shift, self._cache_features  # predictions shift by the mixture mean
        return self

    def fit_predict(self, X, y=None):
        """Fit, then label ``X`` with a final E-step, so the labels equal ``fit(X).predict(X)``."""
        return self.fit(X).predict(X)

    def _data_source(self, X) -> DataSource:
        data = data_source(self, X, reset=True, min_samples=2)
        if self.reg_covar == 0 and isinstance(data.data, np.ndarray):
            constant = np.flatnonzero(np.ptp(data.data, axis=0) == 0)
            if constant.size:
                raise ValueError(
                    f"Feature(s) {constant.tolist()} are constant, so their variance is zero "
                    "and with reg_covar=0 the covariances cannot be inverted. Drop the "
                    "constant features or set reg_covar > 0 (the default is 1e-6)."
                )
        if data.n_samples < self.n_components:
            raise ValueError(
                f"Expected n_samples >= n_components but got n_components = "
                f"{self.n_components}, n_samples = {data.n_samples}: a mixture needs at least "
                "one sample per component. Use fewer components or more data."
            )
        return data

    def _initial_resp_statistics(self, data: DataSource, random_state) -> tuple[dict, torch.Tensor]:
        """Statistics of the initial responsibilities chosen by ``init_params``.

        As in scikit-learn: ``kmeans`` uses the labels of a K-means fit, ``k-means++`` and
        ``random_from_data`` one-hot responsibilities at K chosen rows, ``random`` uniform
        random responsibilities normalised per row. Returns ``(stats, shift)``.
        """
        from ..cluster.kmeans import KMeans, kmeans_plusplus

        K, cov_type = self.n_components, self.covariance_type
        # The fit's shift of the statistics (module _suffstats). This pass runs in float64
        # whatever the dtype: the one-row components of k-means++ and random_from_data would
        # lose their (reg_covar-sized) covariance to float32 rounding of S2 - N mu mu^T.
        shift = self._fit_shift

        def one_hot_rows(rows):
            Z = ss.features(rows.double() - shift, cov_type)
            return ss.chunk_statistics(Z, torch.eye(K, dtype=Z.dtype, device=Z.device), cov_type)

        if self.init_params in ("k-means++", "random_from_data"):
            if self.init_params == "k-means++":
                head = data.head(INIT_MAX_ROWS, random_state)
                _, indices = kmeans_plusplus(head, K, random_state=random_state)
                rows = head[indices]
            else:
                rows = data.take(random_state.choice(data.n_samples, size=K, replace=False))
            if cov_type == "tied":
                # scikit-learn's tied covariance is (sum_n x_n x_n^T - sum_k N_k mu_k mu_k^T)
                # / sum_k N_k, which assumes each row's responsibilities sum to one. With
                # one-hot rows at K points, sum_n runs over ALL rows while sum_k N_k = K, so
                # its initial covariance is about N / K times the second moment about the
                # origin (not shift-invariant). We reproduce it, unshifted, so that the same
                # seed gives scikit-learn's initial parameters and fit.
                shift = torch.zeros_like(shift)
                sums, _, _ = accumulate(data, lambda c: (
                    {"XX": c.double().T @ c.double()}, c.new_zeros(())))
            stats = one_hot_rows(rows)
            if cov_type == "tied":
                stats["XX"] = sums["XX"]  # (D, D) over all rows
        else:
            if self.init_params == "kmeans":
                km = KMeans(n_clusters=K, n_init=1, random_state=random_state,
                            device=self.device, dtype=self.dtype, chunk_size=self.chunk_size)
                centers = km._fit_source(data).cluster_centers_
                centers = torch.as_tensor(centers, device=shift.device)  # the model's dtype

                def resp_of(chunk):  # hard assignments to the nearest centre
                    labels = torch.cdist(chunk, centers).argmin(1)
                    return torch.nn.functional.one_hot(labels, K).to(chunk.dtype)
            else:  # random: the same uniform draws as scikit-learn, chunk after chunk

                def resp_of(chunk):
                    u = random_state.uniform(size=(chunk.shape[0], K))
                    u = torch.as_tensor(u, dtype=chunk.dtype, device=chunk.device)
                    return u / u.sum(1, keepdim=True)

            def chunk_stats(chunk):
                Z = ss.features(chunk.double() - shift, cov_type)
                resp = resp_of(chunk).double().T  # (K, N)
                return ss.chunk_statistics(Z, resp, cov_type), Z.new_zeros(())

            # Random draws must follow row order, so that pass runs on one thread.
            stats, _, _ = accumulate(data, chunk_stats,
                                     parallel=self.init_params != "random")
        return {k: v.to(torch.float64) for k, v in stats.items()}, shift

    def _gaussian_estimates(self, stats: dict, shift: torch.Tensor):
        """``(N_k, N_k + 10 eps, mu_k, Sigma_k)`` from summed statistics (float64 tensors)."""
        N, S1, S2 = ss.moments(stats, self.covariance_type, self.n_features_in_)
        eps = float(np.finfo(self._numpy_dtype).eps)
        nk, means, cov = ss.estimate_gaussian_parameters(
            N, S1, S2, self.reg_covar, self.covariance_type, eps)
        return N, nk, means + shift, cov

    def _float64(self, a) -> torch.Tensor:
        """A fitted array (or number) as a float64 tensor on ``device``, for the M-step."""
        return torch.as_tensor(np.array(a, dtype=np.float64), device=self._torch_device)

    # -- the E-step -------------------------------------------------------------------------
    def _e_step_constants(self):
        """Log-density coefficients and per-component offsets. Rows are shifted by the fit's
        shift while fitting, else by the mixture mean."""
        means = self._to_torch(self.means_)
        U = self._to_torch(self.precisions_cholesky_)
        fitting = getattr(self, "_fit_shift", None)
        shift = self._to_torch(self.weights_) @ means if fitting is None else fitting.to(means)
        coef = ss.log_prob_coefficients(means, U, self.covariance_type, shift)
        return coef, self._log_offsets()

    def _prepare_e_step(self):
        self._coef, self._offsets = self._e_step_constants()

    def _weighted_log_prob(self, X, Z=None, constants=None):
        """(K, N) ``log p(x | z = k) + offset_k`` (PRML 9.23 before normalisation)."""
        coef, offsets = constants or (self._coef, self._offsets)
        return coef.log_prob(X, Z, offsets)

    def _e_step_stats(self, X, Z=None):
        """PRML 9.23 on one chunk: responsibilities, then their summed statistics (``Z``: the
        chunk's features, if already computed)."""
        if Z is None:
            Z = ss.features(X - self._coef.shift, self.covariance_type)  # (F, N)
        log_prob = self._weighted_log_prob(X, Z)  # (K, N)
        log_norm, resp = ss.responsibilities(log_prob)  # (N,), (K, N)
        stats = ss.chunk_statistics(Z, resp, self.covariance_type)
        self._extra_statistics(stats, X, log_prob, log_norm, resp)
        return stats, log_norm.sum()

    def _e_step_stats_stateful(self, X, state):
        """:meth:`_e_step_stats` with the chunk's features ``T(x - c)`` kept in its ``state``
        from the first E-step of the run on (the engine replays the same chunks), when the
        fit caches them (``FEATURE_CACHE_BYTES``). The shift c is fixed for the fit, so the
        cached and recomputed features are the same numbers."""
        if self._cache_features and "Z" not in state:
            state["Z"] = ss.features(X - self._coef.shift, self.covariance_type)  # (F, N)
        return self._e_step_stats(X, state.get("Z"))

    def _extra_statistics(self, stats, X, log_prob, log_norm, resp) -> None:
        """Hook: add model-specific statistics of a chunk to ``stats`` (``log_prob`` (K, N): the
        weighted log-densities, ``log_norm`` (N,) their normalisers, ``resp`` (K, N) PRML 9.23)."""

    def _finish_fit(self, data: DataSource) -> None:
        """Hook: model-specific attributes computed from the data after the EM loop."""

    # -- prediction -------------------------------------------------------------------------
    def _chunked_log_prob(self, X) -> torch.Tensor:
        """(N, K) weighted log-probabilities of validated ``X``, computed chunk by chunk."""
        check_is_fitted(self)
        X = self._validate_X(X, reset=False)
        constants = self._e_step_constants()
        data = DataSource(X, dtype=self._torch_dtype, device=self._torch_device,
                          chunk_size=self.chunk_size)
        return torch.cat([self._weighted_log_prob(c, constants=constants).T for c in data])

    def score_samples(self, X):
        """Log-density ``log p(x)`` of each row (N,)."""
        return self._to_numpy(torch.logsumexp(self._chunked_log_prob(X), dim=1))

    def score(self, X, y=None):
        """Mean log-density per row."""
        return float(np.mean(self.score_samples(X)))

    def predict(self, X):
        """The most probable component of each row (N,)."""
        return self._to_numpy(self._chunked_log_prob(X).argmax(1))

    def predict_proba(self, X):
        """Responsibilities ``gamma(z_nk)`` (PRML 9.23), shape (N, K)."""
        return self._to_numpy(log_normalize(self._chunked_log_prob(X))[1].exp())

    def predict_dist(self, X) -> torch.distributions.Categorical:
        """The posterior over the latent component of each row, ``p(z | x)`` (PRML 9.23)."""
        return torch.distributions.Categorical(logits=log_normalize(self._chunked_log_prob(X))[1])

    def _full_covariances(self) -> torch.Tensor:
        """(K, D, D) covariances whatever the covariance type."""
        K, D = self.means_.shape
        cov = self._to_torch(self.covariances_)
        if self.covariance_type == "tied":
            return cov.expand(K, D, D)
        if self.covariance_type == "diag":
            return torch.diag_embed(cov)
        if self.covariance_type == "spherical":
            return cov[:, None, None] * torch.eye(D, dtype=cov.dtype, device=cov.device)
        return cov

    def to_distribution(self) -> torch.distributions.MixtureSameFamily:
        """The fitted mixture ``sum_k pi_k N(x | mu_k, Sigma_k)`` (PRML 9.7) as a torch
        distribution (``log_prob``, ``sample``, ``mean``, ``variance``)."""
        check_is_fitted(self)
        D = torch.distributions
        components = D.MultivariateNormal(
            self._to_torch(self.means_), scale_tril=torch.linalg.cholesky(self._full_covariances()))
        return D.MixtureSameFamily(D.Categorical(probs=self._to_torch(self.weights_)), components)

    def sample(self, n_samples=1):
        """Draw ``n_samples`` rows from the fitted mixture; returns ``(X, labels)`` sorted by
        component, as scikit-learn does."""
        check_is_fitted(self)
        if n_samples < 1:
            raise ValueError(f"n_samples must be at least 1, got {n_samples}.")
        rng = check_random_state(self.random_state)
        weights = np.asarray(self.weights_, dtype=np.float64)
        counts = rng.multinomial(n_samples, weights / weights.sum())  # (K,)
        labels = torch.repeat_interleave(torch.arange(len(counts)), torch.as_tensor(counts))
        labels = labels.to(self._torch_device)
        L = torch.linalg.cholesky(self._full_covariances())  # (K, D, D)
        eps = torch.randn(n_samples, self.means_.shape[1], generator=self._torch_generator(rng),
                          dtype=self._torch_dtype, device=self._torch_device)
        # x = mu_z + L_z eps with eps ~ N(0, I)
        X = self._to_torch(self.means_)[labels] + (L[labels] @ eps.unsqueeze(-1)).squeeze(-1)
        return self._to_numpy(X), self._to_numpy(labels)
