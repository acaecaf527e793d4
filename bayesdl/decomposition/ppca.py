"""Probabilistic PCA (Tipping & Bishop 1999; PRML 12.2): ``x = W z + mu + eps`` with
``z ~ N(0, I_q)`` and isotropic noise ``eps ~ N(0, sigma^2 I)``, so ``p(x) = N(mu, W W^T +
sigma^2 I)`` (PRML 12.35-12.36).

Two fits:

- ``solver="closed_form"``: the maximum-likelihood solution (PRML 12.45-12.46) from the
  eigendecomposition of the ML covariance ``S`` (one streamed pass over the data):
  ``W = U_q (L_q - sigma^2 I)^{1/2}``, ``sigma^2`` the mean of the ``D - q`` discarded
  eigenvalues;
- ``solver="em"``: EM (PRML 12.54-12.57) on the engine, which also handles missing entries
  (NaN) exactly (:mod:`bayesdl.decomposition._latent`). ``"auto"`` takes the closed form for
  complete data and EM otherwise.
"""

from __future__ import annotations

import torch
from sklearn.utils._param_validation import StrOptions

from ._latent import LOG_2PI, _LatentLinearGaussian
from .pca import covariance_statistics


class ProbabilisticPCA(_LatentLinearGaussian):
    """Probabilistic PCA by maximum likelihood (closed form or EM), with missing data.

    Parameters
    ----------
    n_components : int or None
        Latent dimension ``q`` (None: ``n_features``).
    solver : {"auto", "closed_form", "em"}
        See the module docstring; ``"closed_form"`` needs complete data.
    tol, max_iter, n_init, warm_start, verbose : EM controls (``tol`` on the change of the
        mean log-likelihood per row).
    init_params : {"pca", "random"}
        EM's start: PRML 12.45 on the covariance of the observed pairs, or a random ``W``.
    chunk_size : rows per E-step chunk.

    Attributes: ``components_`` (q, D) ``= W^T``, ``mean_`` (D,), ``noise_variance_``
    (``sigma^2``), ``n_components_``, and EM's ``lower_bound_(s)``, ``n_iter_``, ``converged_``.
    """

    _parameter_constraints: dict = {
        **_LatentLinearGaussian._parameter_constraints,
        "solver": [StrOptions({"auto", "closed_form", "em"})],
    }

    def __init__(self, n_components=2, *, solver="auto", tol=1e-6, max_iter=1000, n_init=1,
                 init_params="pca", warm_start=False, verbose=0, random_state=None,
                 device="cpu", dtype="float64", chunk_size=None):
        self.n_components = n_components
        self.solver = solver
        self.tol = tol
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.warm_start = warm_start
        self.verbose = verbose
        self.random_state = random_state
        self.device = device
        self.dtype = dtype
        self.chunk_size = chunk_size

    def fit(self, X, y=None):
        """Fit on ``X``: an array (NaN = missing entry), a path to a ``.npy`` file or
        :class:`~bayesdl.core.em.Batches`. Returns ``self``."""
        self._validate_params()
        data = self._data_source(X)
        closed_form = self.solver == "closed_form" or (self.solver == "auto"
                                                       and not self._has_missing)
        if not closed_form:
            return self._fit_em(data)
        if self._has_missing:
            raise ValueError("solver='closed_form' needs complete data but X has NaN entries; "
                             "use solver='em' (or 'auto'), which marginalises them out.")
        n, mean, scatter = covariance_statistics(data)
        evals, evecs = torch.linalg.eigh(scatter / n)  # ascending; S of PRML 12.44
        evals, evecs = evals.flip(0).clamp_min(0.0), evecs.flip(1)
        q, d = self.n_components_, len(mean)
        # PRML 12.46: sigma^2 = the mean of the discarded eigenvalues
        sigma2 = evals[q:].mean() if q < d else evals.new_zeros(())
        sigma2 = torch.maximum(sigma2, self._noise_floor(evals.mean()))
        # PRML 12.45 with R = I
        W = evecs[:, :q] * (evals[:q] - sigma2).clamp_min(0.0).sqrt()  # (D, q)
        psi = sigma2.expand(d).clone()
        self._set_parameters(tuple(t.to(self._torch_dtype) for t in (W, mean, psi)))
        # PRML 12.44 at the optimum, per row: log|C| = sum_q log l_i + (D - q) log sigma^2 and
        # tr(C^{-1} S) = q + sum_{i > q} l_i / sigma^2
        log_det = evals[:q].clamp_min(float(sigma2)).log().sum() + (d - q) * sigma2.log()
        trace = q + evals[q:].sum() / sigma2
        self.lower_bound_ = float(-0.5 * (d * LOG_2PI + log_det + trace))
        # one pass over the data
        self.lower_bounds_, self.n_iter_, self.converged_ = [self.lower_bound_], 1, True
        return self

    # -- the isotropic noise ----------------------------------------------------------------
    def _initial_noise(self, var: torch.Tensor, sigma2: float) -> torch.Tensor:
        return var.new_full(var.shape, float(sigma2))

    def _noise_update(self, resid, counts, floor) -> torch.Tensor:
        # PRML 12.57: sigma^2 = the expected squared residual per observed entry
        sigma2 = torch.maximum(resid.sum() / counts.sum(), floor.mean())
        return sigma2.expand(resid.shape[0]).clone()

    def _noise_attribute(self, psi: torch.Tensor) -> float:
        return float(psi[0])

