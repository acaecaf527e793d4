"""GMMHMM: hidden Markov model whose emissions are Gaussian mixtures,
``p(x | z = k) = sum_m w_km N(x | mu_km, Sigma_km)`` (hmmlearn's ``GMMHMM``; PRML 9.2 inside
13.2), with diagonal or full covariances.

Baum-Welch splits each state's posterior ``gamma(z_tk)`` over its components with the
mixture responsibilities (PRML 9.23), ``gamma_tkm = gamma_tk r_tkm``, and the M-step is the
mixture's (PRML 9.24-9.26) with ``gamma_tkm`` as weights; ``min_covar`` is added to every
covariance diagonal (as scikit-learn's ``reg_covar``). Unlike hmmlearn's, the M-step has no
priors on the mixture parameters, so it is maximum likelihood for them.
"""

from __future__ import annotations

import math
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.cluster import KMeans
from sklearn.utils._param_validation import Interval, StrOptions

from ..core.linalg import cholesky, inverse_cholesky_transpose, logdet_from_cholesky
from ._base import BaseHMM

LOG_2PI = math.log(2 * math.pi)


class GMMHMM(BaseHMM):
    """Hidden Markov model with Gaussian-mixture emissions, fitted by Baum-Welch on the engine.

    ``weights_`` (K, M), ``means_`` (K, M, d), ``covars_`` (K, M, d) for ``"diag"`` or
    (K, M, d, d) for ``"full"``; ``params`` / ``init_params`` letters ``s t w m c``.
    """

    _parameter_constraints: dict = {
        **BaseHMM._parameter_constraints,
        "n_mix": [Interval(Integral, 1, None, closed="left")],
        "covariance_type": [StrOptions({"diag", "full"})],
        "min_covar": [Interval(Real, 0, None, closed="left")],
    }
    _emission_letters = "wmc"
    _emission_parameters = ("weights_", "means_", "covars_")

    def __init__(self, n_components=1, n_mix=1, covariance_type="diag", min_covar=1e-3,
                 startprob_prior=1.0, transmat_prior=1.0, algorithm="viterbi",
                 random_state=None, n_iter=10, tol=1e-2, verbose=False, params="stmcw",
                 init_params="stmcw", n_init=1, warm_start=False, chunk_size=None,
                 device="cpu", dtype="float64"):
        self.n_components = n_components
        self.n_mix = n_mix
        self.covariance_type = covariance_type
        self.min_covar = min_covar
        self.startprob_prior = startprob_prior
        self.transmat_prior = transmat_prior
        self.algorithm = algorithm
        self.random_state = random_state
        self.n_iter = n_iter
        self.tol = tol
        self.verbose = verbose
        self.params = params
        self.init_params = init_params
        self.n_init = n_init
        self.warm_start = warm_start
        self.chunk_size = chunk_size
        self.device = device
        self.dtype = dtype

    def _init_emissions(self, X, random_state) -> None:
        """k-means with K clusters for the states, then n_mix clusters inside each; the data
        covariance (+ min_covar) for every component; uniform weights."""
        K, M, d = self.n_components, self.n_mix, self.n_features_in_
        if X.shape[0] < K * M:
            raise ValueError(f"GMMHMM needs at least n_components * n_mix = {K * M} rows to "
                             f"initialise; got {X.shape[0]}.")
        if "w" in self.init_params or not hasattr(self, "weights_"):
            self.weights_ = np.full((K, M), 1.0 / M)
        if "m" in self.init_params or not hasattr(self, "means_"):
            states = KMeans(K, n_init=10, random_state=random_state).fit(X)
            means = np.empty((K, M, d))
            for k in range(K):
                rows = X[states.labels_ == k]
                if len(rows) >= M:
                    means[k] = KMeans(M, n_init=3, random_state=random_state).fit(
                        rows).cluster_centers_
                else:  # too few rows: jitter the state centre
                    means[k] = states.cluster_centers_[k] + 1e-3 * random_state.randn(M, d)
            self.means_ = means
        if "c" in self.init_params or not hasattr(self, "covars_"):
            cv = np.atleast_2d(np.cov(X.T)) + self.min_covar * np.eye(d)
            self.covars_ = (np.tile(cv.diagonal(), (K, M, 1)) if self.covariance_type == "diag"
                            else np.tile(cv, (K, M, 1, 1)))
        shapes = {"weights_": (K, M), "means_": (K, M, d),
                  "covars_": (K, M, d) if self.covariance_type == "diag" else (K, M, d, d)}
        for name, shape in shapes.items():
            setattr(self, name, np.asarray(getattr(self, name), dtype=np.float64))
            if getattr(self, name).shape != shape:
                raise ValueError(f"{name} must have shape {shape}, got "
                                 f"{getattr(self, name).shape}.")

    def _emission_constants(self) -> dict:
        covars = self._to_torch(self.covars_)
        if self.covariance_type == "diag":
            covars = torch.diag_embed(covars)
        L = cholesky(covars, error="GMMHMM: a component covariance is not positive definite; "
                     "raise min_covar.")  # (K, M, d, d)
        with np.errstate(divide="ignore"):
            log_w = self._to_torch(np.log(self.weights_))
        return {"means": self._to_torch(self.means_), "U": inverse_cholesky_transpose(L),
                "logdet": logdet_from_cholesky(L), "L": L, "log_w": log_w}

    def _log_components(self, X, c):
        """(B, T, K, M) ``ln w_km + ln N(x_t | mu_km, Sigma_km)`` (PRML 2.43)."""
        diff = X[:, :, None, None, :] - c["means"]  # (B, T, K, M, d)
        maha = torch.einsum("btkmd,kmde->btkme", diff, c["U"]).square().sum(-1)
        return c["log_w"] - 0.5 * (X.shape[-1] * LOG_2PI + c["logdet"] + maha)

    def _log_emission(self, X, mask, c):
        # ln p(x | z = k) = ln sum_m w_km N(x | mu_km, Sigma_km)  (PRML 9.7)
        return torch.logsumexp(self._log_components(X, c), dim=-1)

    def _emission_stats(self, X, mask, gamma, c) -> dict:
        log_comp = self._log_components(X, c)  # (B, T, K, M)
        # gamma_tkm = gamma_tk r_tkm, r the responsibilities inside state k  (PRML 9.23)
        g = gamma[..., None] * torch.softmax(log_comp, dim=-1)  # (B, T, K, M)
        stats = {"post_mix": g.sum((0, 1)), "obs": torch.einsum("btkm,btd->kmd", g, X)}
        if self.covariance_type == "diag":
            stats["obs2"] = torch.einsum("btkm,btd->kmd", g, X.square())
        else:
            stats["obs2"] = torch.einsum("btkm,btd,bte->kmde", g, X, X)
        return stats

    def _m_step_emissions(self, stats, visited) -> None:
        """The mixture M-step (PRML 9.24-9.26) weighted by gamma_tkm; components (and states)
        with no posterior mass keep their parameters."""
        n = stats["post_mix"]  # (K, M)
        alive = n > 1e-10 * max(n.sum(), 1.0)
        safe = np.where(alive, n, 1.0)
        if "w" in self.params:
            totals = n.sum(1, keepdims=True)
            self.weights_ = np.where(visited[:, None], n / np.where(totals > 0, totals, 1),
                                     self.weights_)
        if "m" in self.params:
            means = stats["obs"] / safe[..., None]
            self.means_ = np.where(alive[..., None], means, self.means_)
        if "c" in self.params:
            mu = self.means_
            d = mu.shape[-1]
            if self.covariance_type == "diag":
                # Sigma = E[x^2] - mu^2 + min_covar  (PRML 9.25, diagonal)
                cov = stats["obs2"] / safe[..., None] - mu**2 + self.min_covar
                self.covars_ = np.where(alive[..., None], cov, self.covars_)
            else:
                cov = (stats["obs2"] / safe[..., None, None] - np.einsum("kmd,kme->kmde", mu, mu)
                       + self.min_covar * np.eye(d))
                self.covars_ = np.where(alive[..., None, None], cov, self.covars_)

    def _sample_emission(self, states, generator):
        c = self._constants
        w = self._to_torch(self.weights_)[states]  # (n, M)
        comp = torch.multinomial(w, 1, generator=generator).squeeze(1)  # (n,)
        eps = torch.randn(len(states), self.n_features_in_, generator=generator,
                          dtype=self._torch_dtype, device=self._torch_device)
        return c["means"][states, comp] + (c["L"][states, comp] @ eps[..., None]).squeeze(-1)
