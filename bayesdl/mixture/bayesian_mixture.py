"""Variational Bayesian Gaussian mixture (PRML 10.2), on the sufficient-statistics engine.

The model puts a Dirichlet (PRML 10.39) or a Dirichlet-process stick-breaking prior on the
weights and a Gauss-Wishart prior (PRML 10.40) on each component's mean and precision. The
variational E-step (PRML 10.46-10.49) forms responsibilities from expected log-weights and
expected log-densities; the M-step (PRML 10.58-10.63) updates the posterior's
hyper-parameters from the same summed statistics ``N_k``, ``x̄_k``, ``S_k`` (PRML 10.51-10.53)
that EM uses. Components the data do not need get ``N_k -> 0`` and their weight shrinks to
the prior's, which is how the variational mixture chooses the number of components.

Parameters, attributes, the update equations and the lower bound follow scikit-learn's
``BayesianGaussianMixture`` exactly (so both agree from the same initial responsibilities);
as there, ``lower_bound_`` is the ELBO up to a constant that does not depend on the
variational parameters, but does depend on K, N and the priors. ``elbo_`` is the true ELBO
(PRML 10.70-10.77, every normalising constant included): a lower bound on ``log p(X)``,
comparable across K and with other models' log evidence.
"""

from __future__ import annotations

import math
from numbers import Real

import numpy as np
import torch
from sklearn.utils import check_array
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted
from torch.distributions import Beta, Dirichlet, Wishart, kl_divergence

from ..core.em import accumulate
from ..distributions import MultivariateStudentT, expected_log_det_wishart
from ..distributions.kl import kl_wishart_wishart
from . import _suffstats as ss
from ._base import BaseGaussianMixture


def _log_wishart_norm(dof, log_det_precision_chol, n_features: int):
    """``log B(W, nu)`` of PRML B.79 with ``log|W|^{1/2} = log_det_precision_chol``, less
    its constant ``-D(D-1)/4 log pi`` (as scikit-learn computes it)."""
    i = torch.arange(n_features, dtype=torch.float64, device=dof.device)
    return -(dof * log_det_precision_chol + dof * n_features * 0.5 * math.log(2.0)
             + torch.lgamma(0.5 * (dof[..., None] - i)).sum(-1))


class BayesianGaussianMixture(BaseGaussianMixture):
    """Variational Bayesian Gaussian mixture (PRML 10.2), scikit-learn's parameters.

    ``weight_concentration_prior_type`` is "dirichlet_process" (stick-breaking, the default)
    or "dirichlet_distribution"; ``weight_concentration_prior`` (alpha_0, default 1/K),
    ``mean_precision_prior`` (beta_0, default 1), ``mean_prior`` (m_0, default the data mean),
    ``degrees_of_freedom_prior`` (nu_0, default D) and ``covariance_prior`` (W_0^{-1}, default
    the data covariance) set the priors. ``weight_threshold`` (default 0.01) decides which
    components count as active (``n_active_components_``). Otherwise as
    :class:`GaussianMixture`: arrays, ``.npy`` paths or Batches, CPU or GPU, distributed.

    As in scikit-learn, ``score_samples`` and ``predict_proba`` use the variational E-step's
    ``E[log pi_k] + E[log N(x | mu_k, Lambda_k)]`` (PRML 10.46); the predictive density of a
    new point, a Student-t mixture (PRML 10.81), is :meth:`to_distribution`.

    Two bounds are recorded. ``lower_bound_`` and ``lower_bounds_`` are scikit-learn's: the
    ELBO less a constant that grows with K (so it drives convergence, iteration for
    iteration as in scikit-learn, but cannot compare fits with different K). ``elbo_`` is the
    true ELBO ``L(q) <= log p(X)`` (PRML 10.70-10.77) of the fitted ``q``, computed after
    one more E-step: it is comparable across K, priors and other models' log evidence.
    For "full" each component has a Gauss-Wishart posterior; "tied" one shared Wishart
    precision; "diag" one Gauss-Gamma (a 1-D Gauss-Wishart) per feature; "spherical" one
    Gamma precision shared by the features of a component. For "full" and "diag"
    scikit-learn's M-step is the exact VB optimum (with one component ``elbo_`` is the
    conjugate log evidence). For "spherical" it is close to it. For "tied" it is not:
    scikit-learn gives the shared precision nu_0 + N/K degrees of freedom, as if each
    component owned it with N/K points. ``elbo_`` is then still a valid bound on the tied
    model's evidence, but a looser one that falls as K grows: compare K with "full" or
    "diag", not with "tied".
    """

    # The ELBO is evaluated with the variational factors the M-step has just set, so the
    # engine ranks n_init runs by it directly (bayesdl.core.em: which run is kept).
    _bound_after_m_step = True

    _parameter_constraints: dict = {
        **BaseGaussianMixture._parameter_constraints,
        "weight_concentration_prior_type": [
            StrOptions({"dirichlet_process", "dirichlet_distribution"})],
        "weight_concentration_prior": [None, Interval(Real, 0.0, None, closed="neither")],
        "mean_precision_prior": [None, Interval(Real, 0.0, None, closed="neither")],
        "mean_prior": [None, "array-like"],
        "degrees_of_freedom_prior": [None, Interval(Real, 0.0, None, closed="neither")],
        "covariance_prior": [None, "array-like", Interval(Real, 0.0, None, closed="neither")],
        "weight_threshold": [Interval(Real, 0.0, 1.0, closed="both")],
    }

    def __init__(self, *, n_components=1, covariance_type="full", tol=1e-3, reg_covar=1e-6,
                 max_iter=100, n_init=1, init_params="kmeans",
                 weight_concentration_prior_type="dirichlet_process",
                 weight_concentration_prior=None, mean_precision_prior=None, mean_prior=None,
                 degrees_of_freedom_prior=None, covariance_prior=None, random_state=None,
                 warm_start=False, verbose=0, weight_threshold=0.01, chunk_size=None,
                 device="cpu", dtype="float64"):
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.tol = tol
        self.reg_covar = reg_covar
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.weight_concentration_prior_type = weight_concentration_prior_type
        self.weight_concentration_prior = weight_concentration_prior
        self.mean_precision_prior = mean_precision_prior
        self.mean_prior = mean_prior
        self.degrees_of_freedom_prior = degrees_of_freedom_prior
        self.covariance_prior = covariance_prior
        self.random_state = random_state
        self.warm_start = warm_start
        self.verbose = verbose
        self.weight_threshold = weight_threshold
        self.chunk_size = chunk_size
        self.device = device
        self.dtype = dtype

    @property
    def _dp(self) -> bool:
        return self.weight_concentration_prior_type == "dirichlet_process"

    @property
    def n_active_components_(self) -> int:
        """Components with weight above ``weight_threshold``."""
        return int(np.sum(np.asarray(self.weights_) > self.weight_threshold))

    # -- priors -----------------------------------------------------------------------------
    def _set_priors(self, data):
        """The prior hyper-parameters, defaulting to scikit-learn's data-based choices."""
        D, ct = self.n_features_in_, self.covariance_type
        K = self.n_components
        self.weight_concentration_prior_ = (1.0 / K if self.weight_concentration_prior is None
                                            else float(self.weight_concentration_prior))
        self.mean_precision_prior_ = (1.0 if self.mean_precision_prior is None
                                      else float(self.mean_precision_prior))
        if self.degrees_of_freedom_prior is None:
            self.degrees_of_freedom_prior_ = float(D)
        elif self.degrees_of_freedom_prior > D - 1.0:
            self.degrees_of_freedom_prior_ = float(self.degrees_of_freedom_prior)
        else:
            raise ValueError(f"degrees_of_freedom_prior must be greater than {D - 1} (the "
                             f"number of features - 1), got {self.degrees_of_freedom_prior}.")
        need_moments = self.mean_prior is None or self.covariance_prior is None
        if need_moments:
            # The data mean and unbiased covariance, in one pass (shifted for accuracy).
            shift = self._fit_shift.to(self._torch_dtype)  # the fit's (module _suffstats)
            m, _, n = accumulate(data, lambda c: (
                {"s1": (c - shift).sum(0), "s2": (c - shift).T @ (c - shift)}, c.new_zeros(())))
            mean = m["s1"] / n + shift.to(torch.float64)
            cov = (m["s2"] - torch.outer(m["s1"], m["s1"]) / n) / (n - 1)
        if self.mean_prior is None:
            self.mean_prior_ = self._to_numpy(mean.to(self._torch_dtype))
        else:
            self.mean_prior_ = check_array(self.mean_prior, dtype=self._numpy_dtype,
                                           ensure_2d=False, input_name="mean_prior")
            if self.mean_prior_.shape != (D,):
                raise ValueError(f"mean_prior must have shape ({D},), got "
                                 f"{self.mean_prior_.shape}.")
        if self.covariance_prior is None:
            prior = {"full": cov, "tied": cov, "diag": cov.diagonal(),
                     "spherical": cov.diagonal().mean()}[ct]
            self.covariance_prior_ = self._to_numpy(prior.to(self._torch_dtype))
        elif ct == "spherical":
            self.covariance_prior_ = float(self.covariance_prior)
        else:
            shape = (D, D) if ct in ("full", "tied") else (D,)
            prior = check_array(self.covariance_prior, dtype=self._numpy_dtype, ensure_2d=False,
                                input_name="covariance_prior")
            if prior.shape != shape:
                raise ValueError(f"covariance_prior must have shape {shape} for "
                                 f"covariance_type={ct!r}, got {prior.shape}.")
            if (ct in ("full", "tied") and not (np.allclose(prior, prior.T)
                                                 and np.all(np.linalg.eigvalsh(prior) > 0))) \
                    or (ct == "diag" and np.any(prior <= 0)):
                raise ValueError(f"covariance_prior must be symmetric positive definite for "
                                 f"covariance_type={ct!r}.")
            self.covariance_prior_ = prior

    def _initialize(self, data, random_state):
        self._set_priors(data)
        stats, shift = self._initial_resp_statistics(data, random_state)
        self._update_posterior(stats, shift)

    # -- VB M-step --------------------------------------------------------------------------
    def _m_step(self, stats):
        self._update_posterior(stats, self._coef.shift.to(torch.float64))

    def _update_posterior(self, stats, shift):
        """PRML 10.58-10.63 (and stick-breaking for the Dirichlet process)."""
        t = self._float64
        _, nk, xk, sk = self._gaussian_estimates(stats, shift)  # PRML 10.51-10.53
        K, ct = self.n_components, self.covariance_type
        alpha0, beta0, nu0 = (self.weight_concentration_prior_, self.mean_precision_prior_,
                              self.degrees_of_freedom_prior_)
        m0, W0_inv = t(self.mean_prior_), t(self.covariance_prior_)
        if self._dp:
            # Stick-breaking Beta(1 + N_k, alpha0 + sum_{j>k} N_j) posteriors.
            tail = torch.cat([torch.flip(torch.cumsum(torch.flip(nk, [0]), 0), [0])[1:],
                              nk.new_zeros(1)])
            concentration = torch.stack([1.0 + nk, alpha0 + tail])  # (2, K)
        else:
            concentration = alpha0 + nk  # PRML 10.58
        beta = beta0 + nk  # PRML 10.60
        means = (beta0 * m0 + nk[:, None] * xk) / beta[:, None]  # PRML 10.61
        diff = xk - m0  # (K, D)
        if ct == "full":
            dof = nu0 + nk  # PRML 10.63
            # W_k^{-1} = W_0^{-1} + N_k S_k + beta0 N_k / (beta0 + N_k) (xbar - m0)(xbar - m0)^T
            cov = (W0_inv + nk[:, None, None] * sk
                   + (nk * beta0 / beta)[:, None, None] * diff[:, :, None] * diff[:, None, :])
            cov = cov / dof[:, None, None]
        elif ct == "tied":
            dof = nu0 + nk.sum() / K
            cov = (W0_inv + sk * nk.sum() / K
                   + beta0 / K * ((nk / beta)[:, None] * diff).T @ diff) / dof
        elif ct == "diag":
            dof = nu0 + nk
            cov = (W0_inv + nk[:, None] * (sk + (beta0 / beta)[:, None] * diff**2)) / dof[:, None]
        else:
            dof = nu0 + nk
            cov = (W0_inv + nk * (sk + beta0 / beta * (diff**2).mean(1))) / dof
        U = ss.precision_cholesky(cov, ct, self.reg_covar)
        params = tuple(self._to_numpy(a.to(self._torch_dtype))
                       for a in (concentration, beta, means, dof, cov, U))
        self._set_parameters(params)

    # -- VB E-step --------------------------------------------------------------------------
    def _expected_log_weights(self) -> torch.Tensor:
        """``E[log pi_k]``: PRML 10.66, or its stick-breaking form for the Dirichlet process."""
        c = self._to_torch(self.weight_concentration_).to(torch.float64)
        dg = torch.special.digamma
        if self._dp:
            a, b = c[0], c[1]
            dg_sum = dg(a + b)
            # E[log v_k] + sum_{j<k} E[log(1 - v_j)]
            earlier = torch.cumsum(dg(b) - dg_sum, 0)[:-1]
            return dg(a) - dg_sum + torch.cat([c.new_zeros(1), earlier])
        return dg(c) - dg(c.sum())

    def _log_offsets(self) -> torch.Tensor:
        """E[log pi_k] + 1/2 E[log|Lambda_k|] - D/(2 beta_k) less the plug-in Gaussian's
        log-determinant (PRML 10.46 with 10.64-10.65)."""
        D = self.n_features_in_
        dof = torch.as_tensor(np.asarray(self.degrees_of_freedom_), dtype=torch.float64,
                              device=self._torch_device)
        beta = self._to_torch(self.mean_precision_).to(torch.float64)
        i = torch.arange(D, dtype=torch.float64, device=dof.device)
        # PRML 10.65: E[log|Lambda_k|] = sum_i psi((nu_k - i)/2) + D log 2 + log|W_k|
        log_lambda = D * math.log(2.0) + torch.special.digamma(0.5 * (dof[..., None] - i)).sum(-1)
        offsets = (-0.5 * D * torch.log(dof) + 0.5 * (log_lambda - D / beta)
                   + self._expected_log_weights())
        return offsets.to(self._torch_dtype)

    def _extra_statistics(self, stats, X, log_prob, log_norm, resp) -> None:
        log_resp = log_prob - log_norm  # (K, N) log gamma_kn
        stats["resp_log_resp"] = (resp * log_resp).sum()  # for the entropy of q(Z)

    def _compute_lower_bound(self, stats, log_lik_sum, n_samples):
        """The ELBO (PRML 10.70) up to a constant, as scikit-learn computes it."""
        D, ct = self.n_features_in_, self.covariance_type
        f64 = self._float64
        dof = f64(self.degrees_of_freedom_)
        log_det = (ss.log_det_cholesky(f64(self.precisions_cholesky_), ct, D)
                   - 0.5 * D * torch.log(dof))
        log_wishart = _log_wishart_norm(dof, log_det, D)
        log_wishart = self.n_components * log_wishart if ct == "tied" else log_wishart.sum()
        c = f64(self.weight_concentration_)
        if self._dp:
            a, b = c[0], c[1]
            log_norm_weight = -(torch.lgamma(a) + torch.lgamma(b) - torch.lgamma(a + b)).sum()
        else:
            log_norm_weight = torch.lgamma(c.sum()) - torch.lgamma(c).sum()
        bound = (-stats["resp_log_resp"] - log_wishart - log_norm_weight
                 - 0.5 * D * torch.log(f64(self.mean_precision_)).sum())
        return float(bound)

    def _finish_fit(self, data):
        """``elbo_``: the true ELBO after one more E-step with the fitted ``q(pi, mu, Lambda)``."""
        stats, _, _ = accumulate(data, self._e_step_stats)
        self.elbo_ = self._elbo(stats, self._coef.shift.to(torch.float64))

    def _elbo(self, stats, shift) -> float:
        """The ELBO (PRML 10.70) of ``q(Z)`` (summed in ``stats``, rows shifted by ``shift``)
        and the current ``q(pi) q(mu, Lambda)``, with all normalising constants.

        L = E[log p(X|Z,mu,Lambda)] + E[log p(Z|pi)] - KL(q(pi)||p(pi))
            - KL(q(mu,Lambda)||p(mu,Lambda)) + H[q(Z)]                    (PRML 10.70-10.77)
        """
        f64 = self._float64
        D, K, ct = self.n_features_in_, self.n_components, self.covariance_type
        N, S1, S2 = ss.moments(stats, ct, D)  # (K,), (K, D), S2 in the layout of ``P``
        P = f64(self.precisions_)  # E[Lambda_k] = nu_k W_k (PRML B.80)
        dof, beta = f64(self.degrees_of_freedom_), f64(self.mean_precision_)  # nu_k, beta_k
        m = f64(self.means_) - shift  # (K, D) posterior means, in the stats' coordinates
        m0 = f64(self.mean_prior_) - shift  # (D,)
        cov0 = f64(self.covariance_prior_)  # W_0^{-1}
        nu0, beta0 = self.degrees_of_freedom_prior_, self.mean_precision_prior_

        # q(Lambda): E[log|Lambda_k|] (K,) (PRML 10.65) and KL(q(Lambda) || p(Lambda)).
        if ct in ("full", "tied"):
            # W = E[Lambda] / nu; W_0 = (W_0^{-1})^{-1}
            q_lambda = Wishart(dof, scale_tril=torch.linalg.cholesky(P / dof[..., None, None]))
            p_lambda = Wishart(f64(nu0), scale_tril=torch.linalg.cholesky(torch.inverse(cov0)))
            P_full = P.expand(K, D, D)  # (K, D, D)
        else:  # Gamma = 1-D Wishart factors: (K, D) for diag, (K,) for spherical
            nu = dof[:, None].expand(K, D) if ct == "diag" else dof
            q_lambda = Wishart(nu, scale_tril=(P / nu).sqrt()[..., None, None])
            p_lambda = Wishart(f64(nu0), scale_tril=cov0.rsqrt()[..., None, None])
            eye = torch.eye(D, dtype=P.dtype, device=P.device)
            P_full = torch.diag_embed(P) if ct == "diag" else P[:, None, None] * eye
        e_log_det = expected_log_det_wishart(q_lambda.df, q_lambda.scale_tril)
        kl_lambda = kl_wishart_wishart(q_lambda, p_lambda)
        if ct == "diag":
            e_log_det = e_log_det.sum(-1)  # log|Lambda_k| = sum_d log lambda_kd
        elif ct == "spherical":
            e_log_det = D * e_log_det  # Lambda_k = lambda_k I
        e_log_det = e_log_det.expand(K)  # (K,) (one shared value when tied)

        # PRML 10.71: sum_k 1/2 N_k (E log|Lambda_k| - D/beta_k - D log 2 pi)
        #   - 1/2 sum_nk r_nk (x_n - m_k)^T E[Lambda_k] (x_n - m_k), from the moments.
        Pm = (P_full @ m[:, :, None]).squeeze(-1)  # (K, D)
        scatter = (P * S2).sum() - 2 * (S1 * Pm).sum() + (N * (m * Pm).sum(1)).sum()
        e_log_lik = (0.5 * (N * (e_log_det - D / beta - D * math.log(2 * math.pi))).sum()
                     - 0.5 * scatter)
        # PRML 10.74 - 10.77 for the means: E_Lambda KL(N(m_k, (beta_k Lambda)^{-1}) ||
        # N(m_0, (beta_0 Lambda)^{-1})) = 1/2 (D beta0/beta_k - D + D log(beta_k/beta0)
        #                                      + beta0 (m_k - m0)^T E[Lambda_k] (m_k - m0))
        diff = m - m0  # (K, D)
        quad = (diff * (P_full @ diff[:, :, None]).squeeze(-1)).sum(1)  # (K,)
        kl_mean = 0.5 * (D * beta0 / beta - D + D * torch.log(beta / beta0) + beta0 * quad)

        # PRML 10.72, 10.73, 10.76 for the weights: E[log p(Z|pi)] - KL(q(pi) || p(pi)).
        c, alpha0 = f64(self.weight_concentration_), self.weight_concentration_prior_
        if self._dp:  # sum_k KL(Beta(a_k, b_k) || Beta(1, alpha0)) over the sticks
            kl_pi = kl_divergence(Beta(c[0], c[1]), Beta(torch.ones_like(c[0]),
                                                         torch.full_like(c[1], alpha0))).sum()
        else:
            kl_pi = kl_divergence(Dirichlet(c), Dirichlet(torch.full_like(c, alpha0)))
        e_log_p_z = (N * self._expected_log_weights()).sum()

        elbo = (e_log_lik + e_log_p_z - kl_pi - kl_mean.sum() - kl_lambda.sum()
                - stats["resp_log_resp"])  # - E[log q(Z)] (PRML 10.75)
        return float(elbo)

    # -- predictive density -----------------------------------------------------------------
    def to_distribution(self) -> torch.distributions.MixtureSameFamily:
        """The variational predictive density of a new point (PRML 10.81): a mixture of
        Student-t distributions ``sum_k E[pi_k] St(x | m_k, L_k, nu_k + 1 - D)`` with
        precision ``L_k = (nu_k + 1 - D) beta_k / (1 + beta_k) W_k`` (PRML 10.82)."""
        check_is_fitted(self)
        D = self.n_features_in_
        dof = torch.as_tensor(np.asarray(self.degrees_of_freedom_, dtype=np.float64),
                              dtype=self._torch_dtype, device=self._torch_device)
        dof = dof.expand(self.n_components)  # (K,) (one shared value when tied)
        beta = self._to_torch(self.mean_precision_)
        df = dof + 1 - D
        # W_k^{-1} = nu_k Sigma_k in scikit-learn's parameterisation (covariances_).
        W_inv = dof[:, None, None] * self._full_covariances()  # (K, D, D)
        scale = ((1 + beta) / (df * beta))[:, None, None] * W_inv  # L_k^{-1}
        components = MultivariateStudentT(df, self._to_torch(self.means_),
                                          scale_tril=torch.linalg.cholesky(scale))
        weights = torch.distributions.Categorical(probs=self._to_torch(self.weights_))
        return torch.distributions.MixtureSameFamily(weights, components)

    # -- parameters -------------------------------------------------------------------------
    def _get_parameters(self):
        return (self.weight_concentration_, self.mean_precision_, self.means_,
                self.degrees_of_freedom_, self.covariances_, self.precisions_cholesky_)

    def _set_parameters(self, params):
        (self.weight_concentration_, self.mean_precision_, self.means_,
         self.degrees_of_freedom_, self.covariances_, self.precisions_cholesky_) = params
        c = np.asarray(self.weight_concentration_, dtype=np.float64)
        if self._dp:
            # E[pi_k] = E[v_k] prod_{j<k} E[1 - v_j]
            stick = c[1] / (c[0] + c[1])
            weights = c[0] / (c[0] + c[1]) * np.hstack([1.0, np.cumprod(stick[:-1])])
        else:
            weights = c
        self.weights_ = (weights / weights.sum()).astype(self._numpy_dtype)
        U = torch.as_tensor(self.precisions_cholesky_)
        self.precisions_ = self._to_numpy(ss.precisions_from_cholesky(U, self.covariance_type))
        self._prepare_e_step()
