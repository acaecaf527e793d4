"""Bayesian linear regression with evidence maximisation (PRML sections 3.3-3.5).

Model (PRML 3.8, 3.52):  t = w^T phi(x) + b + eps,  eps ~ N(0, 1/beta),  w ~ N(0, 1/alpha I).

Everything the fit needs is a handful of sufficient statistics of the (weighted, centred)
data: the scatter matrix C = Phi^T Phi, the vector Phi^T t, t^T t and the sample count. They are
accumulated in one pass over the rows, merged exactly between batches (so ``partial_fit`` in
chunks gives the batch posterior), and the type-II maximum-likelihood iterations for alpha and
beta (PRML 3.91-3.95) then run on one eigendecomposition of C in O(D) per iteration.

The intercept ``b`` has a flat prior, as in scikit-learn's ``BayesianRidge``: the data are
centred, so the intercept at the data mean is independent of ``w`` a posteriori, with variance
1/(beta N). That term is part of the predictive variance here (scikit-learn leaves it out); the
hyper-parameter updates use N, as PRML and scikit-learn do.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import _check_sample_weight, check_is_fitted

from .._base import TorchEstimatorMixin

_CHUNK_ROWS = 65536  # rows per block when accumulating the scatter matrix (bounds memory)


class UnderdeterminedWarning(UserWarning):
    """No more rows than parameters while the noise precision is learned: the posterior
    mean can interpolate the targets, so beta is set by its hyper-prior alone."""


@dataclass
class _Stats:
    """Weighted sufficient statistics of a batch, centred at its own weighted means."""

    n: torch.Tensor  # ()      sum of sample weights
    x_mean: torch.Tensor  # (D,)
    t_mean: torch.Tensor  # ()
    xx: torch.Tensor  # (D, D)  sum_n w_n (x_n - x_mean)(x_n - x_mean)^T
    xt: torch.Tensor  # (D,)    sum_n w_n (x_n - x_mean)(t_n - t_mean)
    tt: torch.Tensor  # ()      sum_n w_n (t_n - t_mean)^2

    def merge(self, other: _Stats) -> _Stats:
        """Combine two batches exactly (Chan, Golub & LeVeque 1979, pairwise update)."""
        n = self.n + other.n
        dx, dt = other.x_mean - self.x_mean, other.t_mean - self.t_mean  # (D,), ()
        f = self.n * other.n / n
        return _Stats(
            n=n,
            x_mean=self.x_mean + dx * (other.n / n),
            t_mean=self.t_mean + dt * (other.n / n),
            xx=self.xx + other.xx + f * torch.outer(dx, dx),
            xt=self.xt + other.xt + f * dx * dt,
            tt=self.tt + other.tt + f * dt * dt,
        )


class BayesianLinearRegression(TorchEstimatorMixin, RegressorMixin, BaseEstimator):
    """Bayesian linear regression with Gaussian prior and type-II maximum likelihood.

    Parameters
    ----------
    alpha : float or None, default=None
        Precision of the prior w ~ N(0, alpha^-1 I). ``None`` learns it by maximising the
        evidence (initialised at 1); a number keeps it fixed.
    beta : float or None, default=None
        Noise precision. ``None`` learns it (initialised at 1/var(t)); a number keeps it fixed.
    alpha_shape, alpha_rate, beta_shape, beta_rate : float, default=1e-6
        Gamma hyper-priors on alpha and beta, used in the fixed-point updates exactly as
        scikit-learn's ``BayesianRidge`` uses ``lambda_1, lambda_2, alpha_1, alpha_2`` (note
        the swapped names: scikit-learn's ``alpha`` is our noise precision ``beta``). Set all
        four to 0 for the plain evidence maximisation of PRML 3.92 and 3.95.
    fit_intercept : bool, default=True
        Fit an unpenalised intercept (flat prior) by centring the data.
    max_iter : int, default=300
        Maximum number of evidence-maximisation iterations.
    tol : float, default=1e-8
        Stop when the relative change of both alpha and beta is below ``tol``.
    device, dtype, random_state
        Torch device, ``"float64"`` or ``"float32"``, and the seed for ``sample_posterior``.

    Attributes
    ----------
    coef_ : ndarray (n_features,)      posterior mean m_N (PRML 3.53)
    sigma_ : ndarray (n_features, n_features)  posterior covariance S_N (PRML 3.54)
    intercept_ : float
    alpha_, beta_ : float               final hyper-parameters
    gamma_ : float                      effective number of parameters (PRML 3.91)
    log_evidence_ : float               ln p(t | alpha, beta) (PRML 3.86)
    n_iter_ : int, converged_ : bool
    n_samples_seen_ : float             sum of sample weights seen (fit + partial_fit)
    n_rows_seen_ : int                  rows with positive weight seen (fit + partial_fit)
    X_offset_, y_offset_, scatter_xx_, scatter_xt_, scatter_tt_
        the sufficient statistics (centred when ``fit_intercept``), kept for ``partial_fit``.
    """

    _parameter_constraints: dict = {
        **TorchEstimatorMixin._parameter_constraints,
        "alpha": [Interval(Real, 0, None, closed="neither"), None],
        "beta": [Interval(Real, 0, None, closed="neither"), None],
        "alpha_shape": [Interval(Real, 0, None, closed="left")],
        "alpha_rate": [Interval(Real, 0, None, closed="left")],
        "beta_shape": [Interval(Real, 0, None, closed="left")],
        "beta_rate": [Interval(Real, 0, None, closed="left")],
        "fit_intercept": ["boolean"],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
    }

    def __init__(self, *, alpha=None, beta=None, alpha_shape=1e-6, alpha_rate=1e-6,
                 beta_shape=1e-6, beta_rate=1e-6, fit_intercept=True, max_iter=300, tol=1e-8,
                 device="cpu", dtype="float64", random_state=None):
        self.alpha = alpha
        self.beta = beta
        self.alpha_shape = alpha_shape
        self.alpha_rate = alpha_rate
        self.beta_shape = beta_shape
        self.beta_rate = beta_rate
        self.fit_intercept = fit_intercept
        self.max_iter = max_iter
        self.tol = tol
        self.device = device
        self.dtype = dtype
        self.random_state = random_state

    # -- fitting ----------------------------------------------------------------------------
    def fit(self, X, y, sample_weight=None):
        """Compute the posterior and, for hyper-parameters left as None, maximise the evidence."""
        for name in [k for k in vars(self) if k.endswith("_") and not k.startswith("_")]:
            delattr(self, name)  # a refit forgets everything, including partial_fit state
        return self.partial_fit(X, y, sample_weight)

    def partial_fit(self, X, y, sample_weight=None):
        """Add rows to the data seen so far and recompute the posterior (PRML 3.3.1).

        The statistics of all rows seen are merged exactly, and the hyper-parameters are
        re-estimated from scratch on them, so any split into chunks gives the batch fit.
        """
        first = not hasattr(self, "n_samples_seen_")
        if first:
            self._validate_params()
        # Learning alpha or beta from one row is degenerate; with both fixed one row is fine.
        learn = self.alpha is None or self.beta is None
        X, y = self._validate_X_y(X, y, reset=first, min_samples=2 if first and learn else 1)
        sw = _check_sample_weight(sample_weight, X, dtype=self._numpy_dtype)
        if np.any(sw < 0) or sw.sum() <= 0:
            raise ValueError("sample_weight must be non-negative with a positive sum.")
        stats = self._batch_stats(self._to_torch(X), self._to_torch(y), self._to_torch(sw))
        if not first:
            stats = self._stored_stats().merge(stats)
        self._store_stats(stats)
        self.n_rows_seen_ = int(np.count_nonzero(sw)) + (0 if first else self.n_rows_seen_)
        self._solve(stats)
        self._warn_if_underdetermined()
        return self

    def _warn_if_underdetermined(self) -> None:
        """Warn when the rows cannot pin down the noise: N <= D (+1 with an intercept)."""
        n_params = self.n_features_in_ + int(self.fit_intercept)
        if self.beta is None and self.n_rows_seen_ <= n_params:
            what = f"{self.n_features_in_} coefficients" + (
                " + intercept" if self.fit_intercept else "")
            warnings.warn(
                f"BayesianLinearRegression: {self.n_rows_seen_} rows for {n_params} parameters "
                f"({what}), so the fit can interpolate the targets and the learned noise "
                f"precision beta is set by its hyper-prior alone (noise sd "
                f"{self.beta_ ** -0.5:.3g}). Fix the noise with beta=1/sigma^2, or fit on more "
                "rows than parameters.", UnderdeterminedWarning, stacklevel=3)

    def _batch_stats(self, X, t, w) -> _Stats:
        """One pass of weighted sums over (N, D) rows, in blocks of ``_CHUNK_ROWS``.

        The pass runs in the estimator's dtype; the statistics, the merge and the D x D solve
        are then float64 whatever ``dtype`` is, since they cost O(D^2) memory and O(D^3) time.
        """
        n = w.sum()
        if self.fit_intercept:
            x_mean, t_mean = w @ X / n, w @ t / n  # (D,), ()
        else:
            x_mean, t_mean = X.new_zeros(X.shape[1]), t.new_zeros(())
        wtc = w * (t - t_mean)  # (N,) weighted centred targets
        xx = X.new_zeros(X.shape[1], X.shape[1])
        xt = X.new_zeros(X.shape[1])
        for start in range(0, X.shape[0], _CHUNK_ROWS):
            rows = slice(start, start + _CHUNK_ROWS)
            block = X[rows] - x_mean  # (B, D)
            xx += block.T @ (block * w[rows, None])
            xt += block.T @ wtc[rows]
        stats = _Stats(n=n, x_mean=x_mean, t_mean=t_mean, xx=xx, xt=xt, tt=wtc @ (t - t_mean))
        return _Stats(**{k: v.double() for k, v in vars(stats).items()})

    def _solve(self, s: _Stats) -> None:
        """Evidence maximisation on the eigenbasis of C = Phi^T Phi (PRML 3.87-3.95)."""
        # C = V diag(lam) V^T, computed once; all iterations are O(D) in this basis.
        lam, V = torch.linalg.eigh(s.xx)  # (D,), (D, D)
        # The statistics are only as precise as the dtype they were summed in: eigenvalues
        # below that round-off (a numerical rank, as in numpy's matrix_rank) are zero, and
        # the residual is floored at it, so beta cannot run off to fit rounding noise.
        eps = torch.finfo(self._torch_dtype).eps
        lam = torch.where(lam > eps * lam.shape[0] * lam.max().clamp_min(0), lam, 0.0)
        # Phi^T t in the eigenbasis; it lies in the range of C, so its null-space part is noise.
        z = torch.where(lam > 0, V.T @ s.xt, 0.0)  # (D,)
        n = s.n

        def posterior_terms(alpha, beta):
            # m_N = beta S_N Phi^T t with S_N^-1 = alpha I + beta C (PRML 3.53-3.54), so in the
            # eigenbasis u_i = beta z_i / (alpha + beta lam_i).
            u = beta * z / (alpha + beta * lam)
            # E_D = ||t - Phi m_N||^2 = t^T t - 2 m^T Phi^T t + m^T C m, floored at round-off.
            rss = (s.tt - 2 * (u @ z) + (lam * u) @ u).clamp_min(eps * s.tt)
            return u, rss

        alpha = torch.as_tensor(self.alpha if self.alpha is not None else 1.0, dtype=lam.dtype,
                                device=lam.device)
        beta = torch.as_tensor(self.beta if self.beta is not None else 1.0 / (s.tt / n + eps),
                               dtype=lam.dtype, device=lam.device)
        learn = self.alpha is None or self.beta is None
        converged, n_iter = not learn, 0
        for n_iter in range(1, (self.max_iter if learn else 0) + 1):
            u, rss = posterior_terms(alpha, beta)
            # gamma = sum_i beta lam_i / (alpha + beta lam_i)  (PRML 3.91)
            gamma = (beta * lam / (alpha + beta * lam)).sum()
            new_alpha, new_beta = alpha, beta
            if self.alpha is None:
                # alpha = gamma / m^T m  (PRML 3.92), with the Gamma hyper-prior terms
                new_alpha = (gamma + 2 * self.alpha_shape) / (u @ u + 2 * self.alpha_rate)
                # alpha -> infinity (every weight pruned, gamma -> 0) can be the maximum; cap it
                # where the prior outweighs the likelihood by 1/eps, i.e. numerically infinite.
                new_alpha = new_alpha.clamp_max((beta * lam.max() + 1) / eps)
            if self.beta is None:
                # 1/beta = E_D / (N - gamma)  (PRML 3.95), with the Gamma hyper-prior terms
                new_beta = (n - gamma + 2 * self.beta_shape) / (rss + 2 * self.beta_rate)
            change = max(abs(new_alpha / alpha - 1), abs(new_beta / beta - 1))
            alpha, beta = new_alpha, new_beta
            if change < self.tol:
                converged = True
                break
        if not converged:
            warnings.warn(
                f"Evidence maximisation did not converge in max_iter={self.max_iter} iterations "
                f"(tol={self.tol}); increase max_iter or fix alpha/beta.", ConvergenceWarning,
                stacklevel=4)  # points at the caller of fit/partial_fit

        u, rss = posterior_terms(alpha, beta)
        d = lam.shape[0]
        # ln p(t|alpha,beta) = D/2 ln alpha + N/2 ln beta - E(m_N) - 1/2 ln|A| - N/2 ln 2pi,
        # E(m_N) = beta/2 E_D + alpha/2 m^T m and |A| = prod_i (alpha + beta lam_i)  (PRML 3.86)
        log_evidence = (0.5 * d * torch.log(alpha) + 0.5 * n * torch.log(beta)
                        - 0.5 * beta * rss - 0.5 * alpha * (u @ u)
                        - 0.5 * torch.log(alpha + beta * lam).sum() - 0.5 * n * math.log(2 * math.pi))
        coef = V @ u  # (D,)
        sigma = (V / (alpha + beta * lam)) @ V.T  # S_N = V diag(1/(alpha + beta lam)) V^T
        # The solve runs in float64; the posterior is returned in the dtype asked for.
        self.coef_ = self._to_numpy(coef.to(self._torch_dtype))
        self.sigma_ = self._to_numpy(sigma.to(self._torch_dtype))
        self.intercept_ = float(s.t_mean - s.x_mean @ coef) if self.fit_intercept else 0.0
        self.alpha_, self.beta_ = float(alpha), float(beta)
        self.gamma_ = float((beta * lam / (alpha + beta * lam)).sum())
        self.log_evidence_ = float(log_evidence)
        self.n_iter_, self.converged_ = n_iter, converged

    def _store_stats(self, s: _Stats) -> None:
        self.n_samples_seen_ = float(s.n)
        self.X_offset_ = self._to_numpy(s.x_mean)
        self.y_offset_ = float(s.t_mean)
        self.scatter_xx_ = self._to_numpy(s.xx)
        self.scatter_xt_ = self._to_numpy(s.xt)
        self.scatter_tt_ = float(s.tt)

    def _stored_stats(self) -> _Stats:
        def t(a):
            return torch.as_tensor(a, dtype=torch.float64, device=self._torch_device)

        return _Stats(n=t(self.n_samples_seen_), x_mean=t(self.X_offset_), t_mean=t(self.y_offset_),
                      xx=t(self.scatter_xx_), xt=t(self.scatter_xt_), tt=t(self.scatter_tt_))

    # -- prediction -------------------------------------------------------------------------
    def predict_dist(self, X) -> torch.distributions.Normal:
        """Predictive distribution N(m_N^T phi(x), sigma^2(x)) for each row (PRML 3.57-3.59).

        sigma^2(x) = 1/beta + (x - xbar)^T S_N (x - xbar) [+ 1/(beta N) for the intercept].
        """
        check_is_fitted(self)
        X = self._to_torch(self._validate_X(X, reset=False))
        Xc = X - self._to_torch(self.X_offset_)  # (N, D)
        mean = Xc @ self._to_torch(self.coef_) + self.y_offset_
        var = (Xc @ self._to_torch(self.sigma_) * Xc).sum(1) + 1.0 / self.beta_
        if self.fit_intercept:
            var = var + 1.0 / (self.beta_ * self.n_samples_seen_)
        return torch.distributions.Normal(mean, var.sqrt())

    def predict(self, X, return_std=False):
        """Predictive mean (and standard deviation when ``return_std``), as numpy arrays."""
        dist = self.predict_dist(X)
        mean = self._to_numpy(dist.mean)
        return (mean, self._to_numpy(dist.stddev)) if return_std else mean

    def sample_posterior(self, n_samples: int = 1, random_state=None):
        """Draw ``(coef, intercept)`` from the posterior: shapes (n_samples, D) and (n_samples,).

        w ~ N(m_N, S_N); with an intercept, the intercept at the data mean is drawn from
        N(ybar, 1/(beta N)) independently and shifted: b = b_mean - xbar^T w.
        """
        check_is_fitted(self)
        if not isinstance(n_samples, Integral) or n_samples < 1:
            raise ValueError(f"n_samples must be a positive integer, got {n_samples!r}.")
        gen = self._torch_generator(random_state)
        dev, dt = self._torch_device, self._torch_dtype
        # S_N = R R^T with R = V diag(sqrt(lambda)): a square root that, unlike Cholesky, also
        # exists when alpha is so large that S_N is singular to working precision.
        lam, V = torch.linalg.eigh(self._to_torch(self.sigma_))
        root = V * lam.clamp_min(0).sqrt()  # (D, D)
        eps = torch.randn(n_samples, root.shape[0], generator=gen, device=dev, dtype=dt)
        coef = self._to_torch(self.coef_) + eps @ root.T  # (S, D)
        intercept = torch.zeros(n_samples, device=dev, dtype=dt)
        if self.fit_intercept:
            b_mean = self.y_offset_ + math.sqrt(1.0 / (self.beta_ * self.n_samples_seen_)) * torch.randn(
                n_samples, generator=gen, device=dev, dtype=dt)
            intercept = b_mean - coef @ self._to_torch(self.X_offset_)
        return self._to_numpy(coef), self._to_numpy(intercept)
