"""Factor analysis (PRML 12.2.4): ``x = W z + mu + eps`` with ``z ~ N(0, I_q)`` and
diagonal noise ``eps ~ N(0, Psi)``, so ``p(x) = N(mu, W W^T + Psi)`` (PRML 12.64-12.65).

Fitted by EM on the engine (PRML 12.66-12.70), with missing entries (NaN) marginalised out
exactly (:mod:`bayesdl.decomposition._latent`). scikit-learn's ``FactorAnalysis`` maximises
the same likelihood by an SVD-based iteration: at convergence ``W W^T``, ``Psi`` and the
log-likelihood agree (``W`` itself only up to a rotation, PRML 12.2.4).
"""

from __future__ import annotations

import numpy as np
import torch

from ._latent import _LatentLinearGaussian


class FactorAnalysis(_LatentLinearGaussian):
    """Factor analysis by EM, with missing data.

    Parameters
    ----------
    n_components : int or None
        Number of factors ``q`` (None: ``n_features``, as scikit-learn).
    tol, max_iter, n_init, warm_start, verbose : EM controls (``tol`` on the change of the
        mean log-likelihood per row).
    init_params : {"pca", "random"}
        The start: PCA loadings of the observed pairs' covariance, or a random ``W``.

    Attributes: ``components_`` (q, D) ``= W^T``, ``mean_`` (D,), ``noise_variance_`` (D,)
    (the diagonal of ``Psi``), ``n_components_``, ``lower_bound_(s)``, ``n_iter_``, ``converged_``.
    """

    def __init__(self, n_components=None, *, tol=1e-6, max_iter=1000, n_init=1,
                 init_params="pca", warm_start=False, verbose=0, random_state=None,
                 device="cpu", dtype="float64", chunk_size=None):
        self.n_components = n_components
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

    def _initial_noise(self, var: torch.Tensor, sigma2: float) -> torch.Tensor:
        return var.clone()

    def _noise_update(self, resid, counts, floor) -> torch.Tensor:
        # PRML 12.70 per feature, over the rows observing it
        return torch.maximum(resid / counts, floor)

    def _noise_attribute(self, psi: torch.Tensor) -> np.ndarray:
        return self._to_numpy(psi)
