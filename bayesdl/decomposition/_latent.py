"""What probabilistic PCA, factor analysis and Bayesian PCA share: the linear-Gaussian latent
variable model ``x = W z + mu + eps``, ``z ~ N(0, I_q)``, ``eps ~ N(0, Psi)`` with ``Psi``
diagonal (``sigma^2 I`` for PPCA), fitted by EM on the engine, with missing entries.

A row with observed entries ``o`` (the others NaN) has (PRML 12.41-12.42 and 12.68,
restricted to ``o``; ``M`` here is PRML's ``M / sigma^2``):

- ``M_o = I + W_o^T Psi_o^{-1} W_o``  (q, q), one per missing pattern;
- ``E[z] = M_o^{-1} W_o^T Psi_o^{-1} (x_o - mu_o)``,  ``cov[z] = M_o^{-1}``;
- ``log p(x_o) = log N(x_o | mu_o, W_o W_o^T + Psi_o)``, with ``log|C_o| = log|M_o| +
  sum_o log psi`` and ``r^T C_o^{-1} r = r^T Psi_o^{-1} r - b^T M_o^{-1} b``,
  ``b = W_o^T Psi_o^{-1} r`` (Woodbury, PRML C.7).

The only latent variable is ``z`` and the likelihood of a row is that of its observed entries,
so the M-step is, for every feature ``i``, a regression of the observed ``x_ni`` on
``E[z~_n]`` with ``z~ = (z, 1)`` (the intercept is ``mu_i``) over the rows that observe it
(PRML 12.56 with the mean re-estimated; with no missing entries and ``mu`` at the sample mean
it is PRML 12.56 exactly):

    (w_i, mu_i) = (sum_{n: i obs} E[z~ z~^T]_n)^{-1} sum_{n: i obs} x_ni E[z~_n]

and the expected squared residuals give ``Psi`` (PRML 12.57 for PPCA, 12.70 for FA). Each EM
step increases the likelihood of the observed entries; rows are grouped by missing pattern so
``M_o`` is factorised once per pattern. Missing entries are only possible with in-memory
arrays (``.npy`` files and Batches must be complete).
"""

from __future__ import annotations

import math
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, check_random_state, validate_data

from .._base import TorchEstimatorMixin, _host
from ..core import distributed
from ..core.em import DataSource, EMMixin, accumulate, data_source
from .pca import is_streamed, svd_flip

LOG_2PI = math.log(2 * math.pi)


class _LatentLinearGaussian(ClassNamePrefixFeaturesOutMixin, TransformerMixin, EMMixin,
                           TorchEstimatorMixin, BaseEstimator):
    """Base of :class:`ProbabilisticPCA`, :class:`FactorAnalysis` and :class:`BayesianPCA`.

    Subclasses implement ``_noise_update(resid, counts, floor) -> psi (D,)`` (the M-step for
    the noise from the expected squared residuals per feature), ``_initial_noise(var,
    sigma2) -> psi (D,)``, ``_noise_attribute(psi)`` (the public ``noise_variance_``) and may add ``_ridge(psi)`` (a
    penalty added to the regression's normal equations: Bayesian PCA's ARD prior).
    Fitted state: ``components_`` (q, D) ``= W^T``, ``mean_`` (D,), ``noise_variance_``.
    """

    _parameter_constraints: dict = {
        **TorchEstimatorMixin._parameter_constraints,
        "n_components": [Interval(Integral, 1, None, closed="left"), None],
        "tol": [Interval(Real, 0.0, None, closed="left")],
        "max_iter": [Interval(Integral, 0, None, closed="left")],
        "n_init": [Interval(Integral, 1, None, closed="left")],
        "init_params": [StrOptions({"pca", "random"})],
        "warm_start": ["boolean"],
        "verbose": ["verbose"],
        "chunk_size": [Interval(Integral, 1, None, closed="left"), None],
    }

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.transformer_tags.preserves_dtype = [self.dtype]
        return tags

    # -- data -------------------------------------------------------------------------------
    def _validated(self, X, *, reset: bool) -> np.ndarray:
        """``X`` as a 2-D float array in which NaN marks a missing entry (inf is refused)."""
        X = validate_data(self, _host(X), reset=reset, dtype=self._numpy_dtype,
                          ensure_all_finite="allow-nan", ensure_min_samples=1 if not reset else 2)
        missing = np.isnan(X)
        if missing.any():
            empty_rows = np.flatnonzero(missing.all(1))
            if empty_rows.size:
                raise ValueError(f"Row(s) {empty_rows[:10].tolist()} of X are entirely NaN: a "
                                 "row needs at least one observed entry. Drop those rows.")
            if reset:
                empty_cols = np.flatnonzero(missing.all(0))
                if empty_cols.size:
                    raise ValueError(f"Feature(s) {empty_cols[:10].tolist()} of X are entirely "
                                     "NaN, so nothing can be learnt about them. Drop those "
                                     "columns.")
        return X

    def _data_source(self, X) -> DataSource:
        """Validate ``X`` (array with NaN allowed, ``.npy`` path or Batches) for ``fit``."""
        if is_streamed(X):
            data = data_source(self, X, reset=True, min_samples=2)
            self._has_missing = False
        else:
            X = self._validated(X, reset=True)
            # Every rank must sum statistics of the same shapes: one NaN anywhere decides.
            (flag,) = distributed.all_reduce_sum([torch.tensor(float(np.isnan(X).any()))])
            self._has_missing = bool(flag > 0)
            data = DataSource(X, dtype=self._torch_dtype, device=self._torch_device,
                              chunk_size=self.chunk_size)
        q = self._n_latent(data.n_features)
        if q > data.n_features:
            raise ValueError(f"n_components={q} is larger than n_features = {data.n_features}: "
                             "a latent space cannot have more dimensions than the data. Ask "
                             "for fewer components.")
        self.n_components_ = q
        return data

    def _n_latent(self, n_features: int) -> int:
        return n_features if self.n_components is None else int(self.n_components)

    def fit(self, X, y=None):
        """Fit by EM on ``X``: an array (NaN = missing entry), a path to a ``.npy`` file or
        :class:`~bayesdl.core.em.Batches`. Returns ``self``."""
        self._validate_params()
        data = self._data_source(X)
        return self._fit_em(data)

    # -- initialisation ---------------------------------------------------------------------
    def _initialize(self, data: DataSource, random_state):
        """``mu`` = the mean of the observed entries; ``W`` from the leading eigenvectors of
        the pairwise covariance of the observed entries (``init_params="pca"``), or random."""
        q = self.n_components_

        def observed_sums(X):
            obs = ~torch.isnan(X)  # (N, D)
            return {"n": obs.double().sum(0), "s1": torch.where(obs, X.double(), 0.0).sum(0)}, \
                X.new_zeros(())

        def centred_products(X):
            R = torch.nan_to_num(X.double() - mean)  # (N, D), 0 where missing
            O = (~torch.isnan(X)).double()
            return {"s2": R.T @ R, "nn": O.T @ O}, X.new_zeros(())

        stats, _, _ = accumulate(data, observed_sums)
        mean = stats["s1"] / stats["n"]  # (D,) the mean of the observed entries
        stats, _, _ = accumulate(data, centred_products)
        # Covariance of each pair of features over the rows observing both, (D, D).
        S = stats["s2"] / stats["nn"].clamp_min(1.0)
        var = torch.diagonal(S).clone()  # (D,)
        scale = float(var.mean()) or 1.0
        if self.init_params == "pca":
            evals, evecs = torch.linalg.eigh(S)
            evals, evecs = evals.flip(0), svd_flip(evecs.flip(1).T).T  # signs independent of rounding
            sigma2 = float(evals[q:].mean()) if q < len(evals) else 0.0
            sigma2 = max(sigma2, 1e-3 * scale)
            # PRML 12.45 on this covariance
            W = evecs[:, :q] * (evals[:q] - sigma2).clamp_min(1e-3 * scale).sqrt()
        else:
            rng = check_random_state(random_state)
            W = torch.as_tensor(rng.standard_normal((len(mean), q)), dtype=torch.float64,
                                device=mean.device) * math.sqrt(scale / q)
            sigma2 = scale
        psi = self._initial_noise(var.clamp_min(1e-6 * scale), sigma2)
        self._set_parameters(tuple(t.to(self._torch_dtype) for t in (W, mean, psi)))

    # -- parameters -------------------------------------------------------------------------
    # The fitted attributes are the state (so a loaded model works); these are their tensors.
    @property
    def _W(self) -> torch.Tensor:
        return self._to_torch(self.components_.T)  # (D, q)

    @property
    def _mu(self) -> torch.Tensor:
        return self._to_torch(self.mean_)  # (D,)

    @property
    def _psi(self) -> torch.Tensor:
        return self._to_torch(np.broadcast_to(self.noise_variance_, self.mean_.shape))  # (D,)

    def _get_parameters(self):
        return self._W, self._mu, self._psi

    def _set_parameters(self, params):
        W, mu, psi = params  # (D, q), (D,), (D,)
        self.components_ = self._to_numpy(W.T)
        self.mean_ = self._to_numpy(mu)
        self.noise_variance_ = self._noise_attribute(psi)

    @property
    def _n_features_out(self):
        return self.components_.shape[0]

    # -- the E-step -------------------------------------------------------------------------
    def _posterior(self, X: torch.Tensor):
        """The posterior over ``z`` for each row of ``X`` (N, D) with NaN = missing.

        Returns ``(Ez (N, q), cov (P, q, q), pattern (N,) or None, R (N, D), log_lik (N,),
        obs (P, D) or None)``: the posterior covariance of each missing pattern ``p`` and the
        pattern index of each row (None: every row complete, P = 1), the residuals ``x - mu``
        (zero where missing) and ``log p(x_o)``.
        """
        W, mu, psi = (t.to(X.dtype) for t in (self._W, self._mu, self._psi))
        q = W.shape[1]
        missing = torch.isnan(X)
        eye = torch.eye(q, dtype=X.dtype, device=X.device)
        if missing.any():
            patterns, pattern = torch.unique(~missing, dim=0, return_inverse=True)  # (P, D), (N,)
            O = patterns.to(X.dtype)  # (P, D)
            # M_o = I + W_o^T Psi_o^{-1} W_o per pattern (PRML 12.41 on the observed rows)
            M = eye + torch.einsum("pd,di,dj->pij", O / psi, W, W)  # (P, q, q)
            log_det_psi = O @ psi.log()  # (P,)
            n_obs = O.sum(1)  # (P,)
            R = torch.where(missing, 0.0, X - mu)  # (N, D)
        else:
            patterns, pattern = None, None
            M = (eye + (W / psi[:, None]).T @ W)[None]  # (1, q, q)
            log_det_psi = psi.log().sum()[None]
            n_obs = torch.full((1,), X.shape[1], dtype=X.dtype, device=X.device)
            R = X - mu
        L = torch.linalg.cholesky(M)  # (P, q, q)
        cov = torch.cholesky_inverse(L)  # (P, q, q) cov[z | x_o] = M_o^{-1}
        b = (R / psi) @ W  # (N, q) W_o^T Psi_o^{-1} (x_o - mu_o)
        Lr = L[pattern] if pattern is not None else L.expand(X.shape[0], q, q)
        Ez = torch.cholesky_solve(b.unsqueeze(-1), Lr).squeeze(-1)  # (N, q) PRML 12.48
        log_det = 2 * torch.diagonal(L, dim1=1, dim2=2).log().sum(1) + log_det_psi  # (P,)
        idx = pattern if pattern is not None else torch.zeros(X.shape[0], dtype=torch.long,
                                                              device=X.device)
        quad = (R * R / psi).sum(1) - (b * Ez).sum(1)  # (N,) r^T C_o^{-1} r
        log_lik = -0.5 * (n_obs[idx] * LOG_2PI + log_det[idx] + quad)
        return Ez, cov, pattern, R, log_lik, patterns

    def _e_step_stats(self, X):
        """Regression statistics of the observed entries on ``E[z~]`` for the M-step."""
        Ez, cov, pattern, R, log_lik, patterns = self._posterior(X)
        N, q = Ez.shape
        Ez1 = torch.cat([Ez, Ez.new_ones(N, 1)], 1)  # (N, q + 1) E[z~] with z~ = (z, 1)
        pad = torch.nn.functional.pad(cov, (0, 1, 0, 1))  # (P, q + 1, q + 1) cov[z~]
        if pattern is None:
            # sum_n E[z~ z~^T] = sum_n E[z~] E[z~]^T + N cov[z~]  (PRML 12.55), shared by all i
            zz = Ez1.T @ Ez1 + N * pad[0]  # (q + 1, q + 1)
            counts = torch.full((X.shape[1],), float(N), dtype=X.dtype, device=X.device)
            if self._has_missing:  # other chunks hold per-feature sums: same shape here
                zz = zz.expand(X.shape[1], q + 1, q + 1)
        else:
            O = (~torch.isnan(X)).to(X.dtype)  # (N, D)
            rows_per_pattern = torch.bincount(pattern, minlength=patterns.shape[0]).to(X.dtype)
            weight = rows_per_pattern[:, None] * patterns.to(X.dtype)  # (P, D)
            # per feature i, over the rows observing it
            zz = torch.einsum("nd,ni,nj->dij", O, Ez1, Ez1) \
                + torch.einsum("pd,pij->dij", weight, pad)  # (D, q + 1, q + 1)
            counts = O.sum(0)
        stats = {"zz": zz, "xz": R.T @ Ez1, "xx": (R * R).sum(0), "n": counts}
        return stats, log_lik.sum()

    def _m_step(self, stats):
        """Per feature, the regression of ``x_i - mu_i`` on ``E[z~]`` (PRML 12.56), then the
        noise from the expected squared residuals (PRML 12.57 / 12.70)."""
        W, mu, psi = (t.double() for t in (self._W, self._mu, self._psi))
        q = W.shape[1]
        zz, xz, xx, n = stats["zz"], stats["xz"], stats["xx"], stats["n"]
        ridge = self._ridge(W, psi)  # (q + 1, q + 1)
        if zz.dim() == 2:  # no missing entries: one system for every feature
            Wt = torch.linalg.solve(zz + ridge, xz.T).T  # (D, q + 1) rows (w_i, mu_i - mu_old_i)
            quad = ((Wt @ zz) * Wt).sum(1)  # (D,)
        else:
            Wt = torch.linalg.solve(zz + ridge, xz.unsqueeze(-1)).squeeze(-1)
            quad = torch.einsum("di,dij,dj->d", Wt, zz, Wt)
        # E[|x_i - w~_i^T z~|^2] summed over the rows observing i, with the new w~_i
        resid = (xx - 2 * (Wt * xz).sum(1) + quad).clamp_min(0.0)  # (D,)
        psi_new = self._noise_update(resid, n, self._noise_floor(xx / n))
        W_new, mu_new = Wt[:, :q], mu + Wt[:, q]
        self._set_parameters(tuple(t.to(self._torch_dtype) for t in (W_new, mu_new, psi_new)))

    def _ridge(self, W: torch.Tensor, psi: torch.Tensor) -> torch.Tensor:
        """Penalty (q + 1, q + 1) added to the normal equations; none for maximum likelihood."""
        return W.new_zeros(W.shape[1] + 1, W.shape[1] + 1)

    def _noise_floor(self, scale: torch.Tensor) -> torch.Tensor:
        """The smallest noise variance kept, ``10 eps`` relative to ``scale`` (as the mixtures'
        ``+ 10 eps``), so ``Psi`` stays invertible when a feature is fitted exactly."""
        return 10 * float(np.finfo(self._numpy_dtype).eps) * scale.clamp_min(1e-300)

    # -- after fitting ----------------------------------------------------------------------
    def _checked(self, X) -> torch.Tensor:
        check_is_fitted(self)
        return self._to_torch(self._validated(X, reset=False))

    def _posterior_of(self, X):
        """``_posterior`` over chunks of validated ``X``, concatenated."""
        X = self._checked(X)
        size = self.chunk_size or max(256, 2**15 // max(X.shape[1], 1))
        parts = [self._posterior(X[s:s + size]) for s in range(0, X.shape[0], size)]
        return X, parts

    def transform(self, X):
        """The posterior mean ``E[z | x_o]`` of each row (N, q) (PRML 12.48); missing entries
        (NaN) are marginalised out."""
        _, parts = self._posterior_of(X)
        return self._to_numpy(torch.cat([p[0] for p in parts]))

    def predict_dist(self, X) -> torch.distributions.MultivariateNormal:
        """The posterior ``p(z | x_o) = N(E[z], M_o^{-1})`` of each row (batch shape (N,))."""
        _, parts = self._posterior_of(X)
        mean = torch.cat([p[0] for p in parts])
        cov = torch.cat([p[1][p[2]] if p[2] is not None else p[1].expand(len(p[0]), -1, -1)
                         for p in parts])
        return torch.distributions.MultivariateNormal(mean, covariance_matrix=cov)

    def inverse_transform(self, Z):
        """``W z + mu`` (N, D): the mean of ``x`` given latent coordinates ``z``."""
        check_is_fitted(self)
        return self._to_numpy(self._to_torch(np.asarray(Z)) @ self._W.T + self._mu)

    def score_samples(self, X):
        """``log p(x_o)`` of each row (N,): the marginal likelihood of its observed entries."""
        _, parts = self._posterior_of(X)
        return self._to_numpy(torch.cat([p[4] for p in parts]))

    def score(self, X, y=None):
        """Mean log-likelihood per row."""
        return float(np.mean(self.score_samples(X)))

    def get_covariance(self):
        """The model covariance ``C = W W^T + Psi`` (D, D) (PRML 12.36)."""
        check_is_fitted(self)
        return self._to_numpy(self._W @ self._W.T + torch.diag(self._psi))

    def impute(self, X, return_std: bool = False):
        """``X`` with each NaN replaced by its conditional mean ``E[x_m | x_o] = mu_m + W_m
        E[z | x_o]``; with ``return_std``, also the standard deviations (N, D) of
        ``p(x_m | x_o)`` (zero for observed entries): ``diag(W_m M_o^{-1} W_m^T) + psi_m``."""
        X, parts = self._posterior_of(X)
        Ez = torch.cat([p[0] for p in parts])  # (N, q)
        filled = torch.where(torch.isnan(X), Ez @ self._W.T + self._mu, X)
        if not return_std:
            return self._to_numpy(filled)
        L = torch.cat([torch.linalg.cholesky(p[1])[p[2]] if p[2] is not None
                       else torch.linalg.cholesky(p[1]).expand(len(p[0]), -1, -1)
                       for p in parts])  # (N, q, q) cov[z | x_o] = L L^T
        var = (torch.einsum("dq,nqr->ndr", self._W, L) ** 2).sum(-1) + self._psi  # (N, D)
        std = torch.where(torch.isnan(X), var.sqrt(), 0.0)
        return self._to_numpy(filled), self._to_numpy(std)

    def sample(self, n_samples=1):
        """Draw ``n_samples`` rows ``x = W z + mu + eps`` (PRML 12.33) (n_samples, D)."""
        check_is_fitted(self)
        if n_samples < 1:
            raise ValueError(f"n_samples must be at least 1, got {n_samples}.")
        gen = self._torch_generator()
        kw = dict(generator=gen, dtype=self._torch_dtype, device=self._torch_device)
        z = torch.randn(n_samples, self._W.shape[1], **kw)
        eps = torch.randn(n_samples, self._W.shape[0], **kw) * self._psi.sqrt()
        return self._to_numpy(z @ self._W.T + self._mu + eps)
