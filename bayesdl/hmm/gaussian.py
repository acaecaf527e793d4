"""GaussianHMM: hidden Markov model with Gaussian emissions ``p(x | z = k) = N(mu_k, Sigma_k)``
(PRML 13.2), with full, diagonal, tied or spherical covariances as hmmlearn's, and NaN entries
marginalised out (a missing timestep contributes nothing; a missing feature is integrated).

The M-step is hmmlearn's MAP update (Huang, Acero & Hon 2001, pp. 443-445): a normal prior on
the means (``means_prior``, ``means_weight``) and an inverse-gamma / inverse-Wishart-like prior
on the covariances (``covars_prior``, ``covars_weight``), so identical parameters give
identical fits. With missing entries the statistics are their expectations given the
observed entries and the state (Ghahramani & Jordan 1994), so EM stays exact.
"""

from __future__ import annotations

import math
from numbers import Real

import numpy as np
import torch
from sklearn.cluster import KMeans
from sklearn.utils._param_validation import Interval, StrOptions

from ..core.linalg import cholesky, inverse_cholesky_transpose, logdet_from_cholesky
from ._base import BaseHMM

COVARIANCE_TYPES = ("spherical", "diag", "full", "tied")
LOG_2PI = math.log(2 * math.pi)


class GaussianHMM(BaseHMM):
    """Hidden Markov model with Gaussian emissions, fitted by Baum-Welch on the EM engine.

    Parameters follow hmmlearn's ``GaussianHMM`` (same defaults), plus ``n_init``,
    ``warm_start``, ``chunk_size`` (timesteps per chunk), ``device`` and ``dtype``.
    ``covars_`` has hmmlearn's documented shape per ``covariance_type``: (K,) spherical,
    (K, d) diag, (d, d) tied, (K, d, d) full.
    """

    _parameter_constraints: dict = {
        **BaseHMM._parameter_constraints,
        "covariance_type": [StrOptions(set(COVARIANCE_TYPES))],
        "min_covar": [Interval(Real, 0, None, closed="left")],
        "means_prior": [Real, "array-like"],
        "means_weight": [Real, "array-like"],
        "covars_prior": [Real, "array-like"],
        "covars_weight": [Real, "array-like"],
    }
    _emission_letters = "mc"
    _emission_parameters = ("means_", "covars_")
    _allow_nan = True

    def __init__(self, n_components=1, covariance_type="diag", min_covar=1e-3,
                 startprob_prior=1.0, transmat_prior=1.0, means_prior=0, means_weight=0,
                 covars_prior=1e-2, covars_weight=1, algorithm="viterbi", random_state=None,
                 n_iter=10, tol=1e-2, verbose=False, params="stmc", init_params="stmc",
                 n_init=1, warm_start=False, chunk_size=None, device="cpu", dtype="float64"):
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.min_covar = min_covar
        self.startprob_prior = startprob_prior
        self.transmat_prior = transmat_prior
        self.means_prior = means_prior
        self.means_weight = means_weight
        self.covars_prior = covars_prior
        self.covars_weight = covars_weight
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

    # -- initialisation ---------------------------------------------------------------------
    def _init_emissions(self, X, random_state) -> None:
        """hmmlearn's start: k-means centres as means, the data covariance (+ min_covar) for
        every state. Rows with NaN are left out."""
        X = X[~np.isnan(X).any(1)]  # (n, d) complete rows
        K, d = self.n_components, self.n_features_in_
        if X.shape[0] < max(K, 2) and ("m" in self.init_params or "c" in self.init_params):
            raise ValueError(f"GaussianHMM needs at least {max(K, 2)} rows without NaN to "
                             f"initialise {K} states; got {X.shape[0]}. Set means_ and covars_ "
                             "yourself and drop 'm' and 'c' from init_params.")
        if "m" in self.init_params or not hasattr(self, "means_"):
            # scikit-learn's k-means, as hmmlearn: the same seed gives hmmlearn's start
            km = KMeans(K, n_init=10, random_state=random_state).fit(X)
            self.means_ = km.cluster_centers_.astype(np.float64)
        if "c" in self.init_params or not hasattr(self, "covars_"):
            cv = np.atleast_2d(np.cov(X.T)) + self.min_covar * np.eye(d)  # (d, d)
            self.covars_ = {"spherical": np.full(K, cv.diagonal().mean()),
                            "diag": np.tile(cv.diagonal(), (K, 1)),
                            "tied": cv,
                            "full": np.tile(cv, (K, 1, 1))}[self.covariance_type]
        self._check_emissions()

    def _check_emissions(self) -> None:
        K, d = self.n_components, self.n_features_in_
        shapes = {"spherical": (K,), "diag": (K, d), "tied": (d, d), "full": (K, d, d)}
        self.means_ = np.asarray(self.means_, dtype=np.float64)
        self.covars_ = np.asarray(self.covars_, dtype=np.float64)
        if self.means_.shape != (K, d):
            raise ValueError(f"means_ must have shape {(K, d)}, got {self.means_.shape}.")
        expected = shapes[self.covariance_type]
        if self.covars_.shape != expected:
            raise ValueError(f"covars_ must have shape {expected} for covariance_type="
                             f"{self.covariance_type!r}, got {self.covars_.shape}.")

    # -- the emission densities -------------------------------------------------------------
    def _full_covars(self) -> np.ndarray:
        """(K, d, d) covariances whatever the covariance type."""
        K, d = self.means_.shape
        c = self.covars_
        if self.covariance_type == "spherical":
            return c[:, None, None] * np.eye(d)
        if self.covariance_type == "diag":
            return np.stack([np.diag(row) for row in c])
        if self.covariance_type == "tied":
            return np.broadcast_to(c, (K, d, d)).copy()
        return c

    def _emission_constants(self) -> dict:
        covars = self._to_torch(self._full_covars())  # (K, d, d)
        L = cholesky(covars, error="GaussianHMM: a state covariance is not positive definite; "
                     "raise min_covar or covars_prior.")
        return {"means": self._to_torch(self.means_), "covars": covars,
                "U": inverse_cholesky_transpose(L), "logdet": logdet_from_cholesky(L), "L": L}

    def _log_emission(self, X, mask, c):
        """(B, T, K) ``log N(x_t | mu_k, Sigma_k)`` over the observed entries of each ``x_t``."""
        if torch.isnan(X).any():
            return self._missing(X, mask, c, want_stats=False)
        # ln N = -(d ln 2 pi + ln|Sigma|)/2 - |U^T (x - mu)|^2 / 2 with Sigma^-1 = U U^T  (PRML 2.43)
        diff = X[:, :, None, :] - c["means"]  # (B, T, K, d)
        maha = torch.einsum("btkd,kde->btke", diff, c["U"]).square().sum(-1)  # (B, T, K)
        return -0.5 * (X.shape[-1] * LOG_2PI + c["logdet"] + maha)

    def _missing(self, X, mask, c, *, want_stats: bool):
        """Per missing-value pattern: the marginal log-densities of the observed entries
        (PRML 2.98) or, with ``want_stats``, the conditional moments of each row,
        ``E[x | x_o, z=k]`` (N, K, d) and the (K, d, d) conditional covariance per pattern
        (PRML 2.81, 2.82), as ``(x_hat, cond_cov_of_row_pattern, pattern_index)``."""
        rows = X[mask]  # (N, d)
        N, d = rows.shape
        K = self.n_components
        observed = ~torch.isnan(rows)  # (N, d)
        patterns, which = torch.unique(observed, dim=0, return_inverse=True)
        log_p = rows.new_zeros(N, K)
        # observed entries as they are, missing ones filled per pattern below
        x_hat = torch.where(observed[:, None, :], rows.nan_to_num()[:, None, :], c["means"])
        cond = rows.new_zeros(len(patterns), K, d, d)  # (P, K, d, d)
        for p, o in enumerate(patterns):
            in_p = which == p
            m = ~o
            if not o.any():  # nothing observed: no evidence, x ~ N(mu_k, Sigma_k)
                cond[p] = c["covars"]
                continue
            S_oo = c["covars"][:, o][:, :, o]  # (K, o, o)
            L = torch.linalg.cholesky(S_oo)
            diff = rows[in_p][:, o][:, None, :] - c["means"][:, o]  # (n, K, o)
            sol = torch.linalg.solve_triangular(L, diff.permute(1, 2, 0), upper=False)  # (K, o, n)
            if not want_stats:
                # ln N(x_o | mu_o, Sigma_oo)  (PRML 2.98: the marginal of a Gaussian)
                log_p[in_p] = -0.5 * (int(o.sum()) * LOG_2PI + logdet_from_cholesky(L)[None]
                                      + sol.square().sum(1).T)
                continue
            if not m.any():
                continue
            S_mo = c["covars"][:, m][:, :, o]  # (K, m, o)
            gain = torch.cholesky_solve(S_mo.mT, L).mT  # (K, m, o) = Sigma_mo Sigma_oo^-1
            # E[x_m | x_o] = mu_m + Sigma_mo Sigma_oo^-1 (x_o - mu_o)  (PRML 2.81)
            filled = c["means"][:, m] + torch.einsum("kmo,nko->nkm", gain, diff)  # (n, K, m)
            block = x_hat[in_p]
            block[:, :, m] = filled
            x_hat[in_p] = block
            # cov[x_m | x_o] = Sigma_mm - Sigma_mo Sigma_oo^-1 Sigma_om  (PRML 2.82)
            C = c["covars"][:, m][:, :, m] - gain @ S_mo.mT  # (K, m, m)
            idx = torch.nonzero(m).squeeze(1)
            cond[p][:, idx[:, None], idx[None, :]] = C
        if want_stats:
            return x_hat, cond, which
        out = X.new_zeros(*mask.shape, K)
        out[mask] = log_p
        return out

    def _emission_stats(self, X, mask, gamma, c) -> dict:
        """Posterior-weighted moments per state: ``obs`` (K, d) and ``obs**2`` (K, d) or
        ``obs*obs.T`` (K, d, d); expectations over the missing entries when there are any."""
        second = "obs**2" if self.covariance_type in ("spherical", "diag") else "obs*obs.T"
        if not torch.isnan(X).any():
            stats = {"obs": torch.einsum("btk,btd->kd", gamma, X)}
            if second == "obs**2":
                stats[second] = torch.einsum("btk,btd->kd", gamma, X.square())
            else:
                stats[second] = torch.einsum("btk,btd,bte->kde", gamma, X, X)
            return stats
        x_hat, cond, which = self._missing(X, mask, c, want_stats=True)
        g = gamma[mask]  # (N, K)
        # per-pattern posterior mass (P, K): E[x x^T] = x_hat x_hat^T + cov[x | x_o]
        mass = g.new_zeros(cond.shape[0], g.shape[1]).index_add_(0, which, g)
        extra = torch.einsum("pk,pkde->kde", mass, cond)  # (K, d, d)
        stats = {"obs": torch.einsum("nk,nkd->kd", g, x_hat)}
        if second == "obs**2":
            stats[second] = torch.einsum("nk,nkd->kd", g, x_hat.square()) + extra.diagonal(
                dim1=-2, dim2=-1)
        else:
            stats[second] = torch.einsum("nk,nkd,nke->kde", g, x_hat, x_hat) + extra
        return stats

    # -- the M-step -------------------------------------------------------------------------
    def _m_step_emissions(self, stats, visited) -> None:
        """hmmlearn's MAP updates of the means and covariances (see the module docstring)."""
        post = stats["post"]  # (K,)
        denom = post[:, None]  # (K, 1)
        mp, mw = np.asarray(self.means_prior), np.asarray(self.means_weight)
        keep = ~visited
        if "m" in self.params:
            means = (mw * mp + stats["obs"]) / np.where(mw + denom > 0, mw + denom, 1)
            self.means_ = np.where(keep[:, None], self.means_, means)
        if "c" in self.params:
            cp, cw = np.asarray(self.covars_prior), np.asarray(self.covars_weight)
            mu = self.means_
            meandiff = mu - mp
            if self.covariance_type in ("spherical", "diag"):
                c_n = mw * meandiff**2 + stats["obs**2"] - 2 * mu * stats["obs"] + mu**2 * denom
                c_d = np.maximum(cw - 1, 0) + denom
                covars = (cp + c_n) / np.maximum(c_d, 1e-5)  # (K, d)
                if self.covariance_type == "spherical":
                    covars = covars.mean(1)
                    self.covars_ = np.where(keep, self.covars_, covars)
                else:
                    self.covars_ = np.where(keep[:, None], self.covars_, covars)
            else:
                obsmean = np.einsum("kd,ke->kde", stats["obs"], mu)
                c_n = (mw * np.einsum("kd,ke->kde", meandiff, meandiff) + stats["obs*obs.T"]
                       - obsmean - obsmean.transpose(0, 2, 1)
                       + np.einsum("kd,ke->kde", mu, mu) * post[:, None, None])
                cvweight = np.maximum(cw - self.n_features_in_, 0)
                if self.covariance_type == "tied":
                    self.covars_ = (cp + c_n.sum(0)) / np.maximum(cvweight + post.sum(), 1e-300)
                else:
                    covars = (cp + c_n) / np.maximum(cvweight + post[:, None, None], 1e-300)
                    self.covars_ = np.where(keep[:, None, None], self.covars_, covars)

    def _sample_emission(self, states, generator):
        c = self._constants
        eps = torch.randn(len(states), self.n_features_in_, generator=generator,
                          dtype=self._torch_dtype, device=self._torch_device)
        # x = mu_z + L_z eps, eps ~ N(0, I)
        return c["means"][states] + (c["L"][states] @ eps[..., None]).squeeze(-1)
