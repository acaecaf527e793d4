"""Bayesian PCA (Bishop 1999; PRML 12.2.3): probabilistic PCA with an automatic relevance
determination prior on the columns of ``W``,

    p(W | alpha) = prod_i (alpha_i / 2 pi)^{D/2} exp(-alpha_i w_i^T w_i / 2)     (PRML 12.60)

Each ``alpha_i`` is re-estimated by maximising the evidence, ``alpha_i = D / w_i^T w_i``
(PRML 12.62), inside EM, whose M-step for ``W`` becomes (PRML 12.63)

    W = [sum_n (x_n - xbar) E[z_n]^T] [sum_n E[z_n z_n^T] + sigma^2 A]^{-1},  A = diag(alpha).

A column the data do not support is driven to zero (``alpha_i -> inf``), so the latent space
switches off unneeded dimensions; ``n_effective_components_`` counts the columns left.
"""

from __future__ import annotations

import torch

from .ppca import ProbabilisticPCA

# A column of W counts as switched off when its squared norm falls below this fraction of the
# largest column's.
ACTIVE_RATIO = 1e-4


class BayesianPCA(ProbabilisticPCA):
    """Probabilistic PCA with ARD priors on the columns of ``W`` (PRML 12.2.3), fitted by EM
    (missing entries allowed).

    Parameters as :class:`ProbabilisticPCA` without ``solver``; ``n_components=None`` uses the
    largest useful latent dimension, ``n_features - 1`` (PRML Figure 12.14).

    Attributes: those of :class:`ProbabilisticPCA`, plus ``alpha_`` (q,) the ARD precisions and
    ``n_effective_components_``, the number of columns of ``W`` not switched off.
    """

    _parameter_constraints: dict = {
        k: v for k, v in ProbabilisticPCA._parameter_constraints.items() if k != "solver"}

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

    def _n_latent(self, n_features: int) -> int:
        if self.n_components is None:
            return max(n_features - 1, 1)
        return int(self.n_components)

    def fit(self, X, y=None):
        """Fit by EM with ARD on ``X`` (array with NaN = missing, ``.npy`` path or Batches)."""
        self._validate_params()
        self._fit_em(self._data_source(X))
        return self

    @staticmethod
    def _alpha(W: torch.Tensor) -> torch.Tensor:
        # PRML 12.62: alpha_i = D / w_i^T w_i (capped where a column has vanished)
        norms = (W * W).sum(0)  # (q,)
        return W.shape[0] / norms.clamp_min(torch.finfo(W.dtype).tiny / torch.finfo(W.dtype).eps)

    def _ridge(self, W: torch.Tensor, psi: torch.Tensor) -> torch.Tensor:
        # sigma^2 A in the normal equations of PRML 12.63; the intercept is not penalised
        return torch.diag(torch.nn.functional.pad(psi[0] * self._alpha(W), (0, 1)))

    def _set_parameters(self, params):
        super()._set_parameters(params)
        W = self._W.double()
        self.alpha_ = self._to_numpy(self._alpha(W))
        norms = (W * W).sum(0)
        self.n_effective_components_ = int((norms > ACTIVE_RATIO * norms.max()).sum())
