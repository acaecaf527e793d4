"""Gaussian mixture fitted by EM (PRML 9.2), on the sufficient-statistics engine.

``GaussianMixture`` follows scikit-learn's estimator of the same name (same parameters,
attributes and update equations, so both agree to rounding from the same initial
parameters) and adds what large data need: chunked, memory-mapped or batched input, torch
on CPU or GPU, and ``torch.distributed`` data parallelism (see :mod:`bayesdl.core.em`).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import torch
from sklearn.utils import check_array

from ..core.em import Candidates
from . import _suffstats as ss
from ._base import BaseGaussianMixture

# A component whose responsibilities sum to fewer points than this has collapsed: one point
# (or none) gives it zero variance, the singularity of the likelihood of PRML 9.2.1.
MIN_COMPONENT_COUNT = 2.0


class GaussianMixture(BaseGaussianMixture):
    """Gaussian mixture model, maximum likelihood by EM (PRML 9.2.2).

    Parameters are scikit-learn's (``n_components``, ``covariance_type`` in full / tied /
    diag / spherical, ``tol``, ``reg_covar``, ``max_iter``, ``n_init``, ``init_params`` in
    kmeans / k-means++ / random / random_from_data, ``weights_init``, ``means_init``,
    ``precisions_init``, ``random_state``, ``warm_start``, ``verbose``) plus ``chunk_size``
    (rows per E-step chunk; None picks a cache-sized one), ``device`` and ``dtype``.
    ``init_params`` draws the same rows as scikit-learn for the same ``random_state``, and
    the initial parameters are scikit-learn's, including its tied covariance after
    ``random_from_data`` or ``k-means++`` (the scatter of all rows about the origin over K:
    large, and not shift-invariant, but the same starting point).

    ``fit`` takes an array, a path to a ``.npy`` file (memory-mapped) or
    :class:`bayesdl.core.em.Batches`. A component that collapses onto fewer than two points
    is reseeded at the worst-explained data point with a warning instead of turning into a
    singularity.

    Attributes (scikit-learn's): ``weights_``, ``means_``, ``covariances_``,
    ``precisions_``, ``precisions_cholesky_``, ``converged_``, ``n_iter_``,
    ``lower_bound_`` (mean log-likelihood), ``lower_bounds_``, ``n_features_in_``.
    """

    _parameter_constraints: dict = {
        **BaseGaussianMixture._parameter_constraints,
        "weights_init": ["array-like", None],
        "means_init": ["array-like", None],
        "precisions_init": ["array-like", None],
    }

    def __init__(self, n_components=1, *, covariance_type="full", tol=1e-3, reg_covar=1e-6,
                 max_iter=100, n_init=1, init_params="kmeans", weights_init=None,
                 means_init=None, precisions_init=None, random_state=None, warm_start=False,
                 verbose=0, chunk_size=None, device="cpu", dtype="float64"):
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.tol = tol
        self.reg_covar = reg_covar
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.weights_init = weights_init
        self.means_init = means_init
        self.precisions_init = precisions_init
        self.random_state = random_state
        self.warm_start = warm_start
        self.verbose = verbose
        self.chunk_size = chunk_size
        self.device = device
        self.dtype = dtype

    # -- initialisation ---------------------------------------------------------------------
    def _user_init(self):
        """The validated ``(weights_init, means_init, precisions_init)`` (None where unset)."""
        K, D = self.n_components, self.n_features_in_
        shapes = {"full": (K, D, D), "tied": (D, D), "diag": (K, D), "spherical": (K,)}
        out = []
        for name, shape in [("weights_init", (K,)), ("means_init", (K, D)),
                            ("precisions_init", shapes[self.covariance_type])]:
            value = getattr(self, name)
            if value is not None:
                value = check_array(value, dtype=np.float64, ensure_2d=False, allow_nd=True,
                                    input_name=name)
                if value.shape != shape:
                    raise ValueError(f"{name} must have shape {shape} for {K} components, "
                                     f"{D} features and covariance_type="
                                     f"{self.covariance_type!r}; got {value.shape}.")
            out.append(value)
        weights, _, precisions = out
        if weights is not None and (np.any(weights < 0) or not np.isclose(weights.sum(), 1.0)):
            raise ValueError(f"weights_init must be non-negative and sum to 1; got {weights}.")
        if precisions is not None and self.covariance_type in ("diag", "spherical") \
                and np.any(precisions <= 0):
            raise ValueError("precisions_init must be positive for covariance_type="
                             f"{self.covariance_type!r}.")
        return out

    def _initialize(self, data, random_state):
        weights, means, precisions = self._user_init()
        t = self._float64
        if weights is None or means is None or precisions is None:
            stats, shift = self._initial_resp_statistics(data, random_state)
            _, nk, est_means, cov = self._gaussian_estimates(stats, shift)
            # scikit-learn initialises the weights as N_k / N (not renormalised).
            weights = nk / data.n_samples if weights is None else t(weights)
            means = est_means if means is None else t(means)
        else:
            weights, means = t(weights), t(means)
        if precisions is None:
            U = ss.precision_cholesky(cov, self.covariance_type, self.reg_covar)
        else:
            U = ss.precision_cholesky_from_precisions(t(precisions), self.covariance_type)
            cov = ss.covariances_from_cholesky(U, self.covariance_type)
        self._set_parameters(tuple(self._to_numpy(a.to(self._torch_dtype))
                                   for a in (weights, means, cov, U)))

    # -- EM ---------------------------------------------------------------------------------
    def _log_offsets(self) -> torch.Tensor:
        return torch.log(self._to_torch(self.weights_))  # log pi_k

    def _extra_statistics(self, stats, X, log_prob, log_norm, resp) -> None:
        # The worst-explained rows: where a collapsed component is reseeded.
        stats["worst"] = Candidates.top(-log_norm, X, self.n_components)

    def _m_step(self, stats):
        """PRML 9.24-9.26 from the summed statistics, with collapsed components reseeded."""
        shift = self._coef.shift.to(torch.float64)
        N, nk, means, cov = self._gaussian_estimates(stats, shift)
        collapsed = torch.nonzero(N < MIN_COMPONENT_COUNT).reshape(-1)
        if collapsed.numel():
            nk, means, cov = self._reseed(collapsed, stats, shift, nk, means, cov)
        weights = nk / nk.sum()  # PRML 9.26
        U = ss.precision_cholesky(cov, self.covariance_type, self.reg_covar)
        self._set_parameters(tuple(self._to_numpy(a.to(self._torch_dtype))
                                   for a in (weights, means, cov, U)))

    def _reseed(self, collapsed, stats, shift, nk, means, cov):
        """Move collapsed components to the worst-explained rows, with the data covariance
        and an equal share of the weight."""
        warnings.warn(
            f"GaussianMixture: component(s) {collapsed.tolist()} collapsed onto fewer than "
            f"{MIN_COMPONENT_COUNT:g} points (a singularity of the likelihood, PRML 9.2.1) and "
            "were reseeded at the worst-explained data points. If this repeats, use fewer "
            "components, increase reg_covar or scale the data.",
            UserWarning, stacklevel=4)
        worst = stats["worst"].rows.to(means)  # (m, D) data rows, unshifted
        m = min(collapsed.numel(), worst.shape[0])
        collapsed = collapsed[:m]
        nk, means, cov = nk.clone(), means.clone(), cov.clone()
        means[collapsed] = worst[:m]
        nk[collapsed] = nk.sum() / self.n_components
        if self.covariance_type != "tied":
            # The covariance of all the data, from the statistics summed over components.
            total = {"N": stats["N"].sum(0, keepdim=True), "ZR": stats["ZR"].sum(1, keepdim=True)}
            _, _, _, data_cov = self._gaussian_estimates(total, shift)
            cov[collapsed] = data_cov[0]
        return nk, means, cov

    def _get_parameters(self):
        return self.weights_, self.means_, self.covariances_, self.precisions_cholesky_

    def _set_parameters(self, params):
        self.weights_, self.means_, self.covariances_, self.precisions_cholesky_ = params
        U = torch.as_tensor(self.precisions_cholesky_)
        self.precisions_ = self._to_numpy(ss.precisions_from_cholesky(U, self.covariance_type))
        self._prepare_e_step()

    # -- model selection --------------------------------------------------------------------
    def _n_parameters(self) -> int:
        """Free parameters: means, covariances and K - 1 weights."""
        K, D = self.means_.shape
        cov = {"full": K * D * (D + 1) / 2, "diag": K * D, "tied": D * (D + 1) / 2,
               "spherical": K}[self.covariance_type]
        return int(cov + K * D + K - 1)

    def bic(self, X):
        """Bayesian information criterion ``-2 log L + p log N`` (lower is better)."""
        n = np.shape(X)[0]
        return -2 * self.score(X) * n + self._n_parameters() * math.log(n)

    def aic(self, X):
        """Akaike information criterion ``-2 log L + 2 p`` (lower is better)."""
        return -2 * self.score(X) * np.shape(X)[0] + 2 * self._n_parameters()
