"""Maximum-likelihood fits of the standard families, returned as ``torch.distributions`` objects.

``fit_mle(family, x)`` estimates the parameters from samples along the first axis of ``x``.
Extra leading axes after the first are a batch: ``x`` of shape ``(N, *batch)`` (scalar
families) or ``(N, *batch, K)`` (vector families) gives a distribution with that
``batch_shape``, fitted independently per batch element.

Closed forms (PRML chapter 2): Bernoulli (eq. 2.7), Binomial with known ``n``, Categorical and
Multinomial (eq. 2.33), Poisson, Normal (eqs. 1.55-1.56) and MultivariateNormal (eqs.
2.121-2.122, with the N-denominator covariance, i.e. the biased MLE). Gamma, Beta and Dirichlet
have no closed form; they use Minka's Newton iterations ("Estimating a Gamma distribution",
2002; "Estimating a Dirichlet distribution", 2000/2012) with convergence checks.

Example::

    >>> import numpy as np
    >>> from bayesdl.distributions import fit_mle
    >>> x = np.random.default_rng(0).gamma(shape=3.0, scale=0.5, size=20000)
    >>> g = fit_mle("gamma", x)      # torch.distributions.Gamma
    >>> round(float(g.concentration), 1), round(float(g.rate), 1)
    (3.0, 2.0)
"""

from __future__ import annotations

import warnings

import torch
from sklearn.exceptions import ConvergenceWarning
from torch.distributions import (Bernoulli, Beta, Binomial, Categorical, Dirichlet, Distribution, Gamma,
                                 Multinomial, MultivariateNormal, Normal, Poisson)

from ._checks import (as_samples, as_tensor, check_binary, check_counts, check_positive,
                      check_probabilities, check_simplex)

__all__ = ["fit_mle", "MLE_FAMILIES"]


def _fit_bernoulli(x, **_):
    x = check_binary(as_samples(x), "x")
    # mu_ML = (1/N) sum_n x_n  (PRML eq. 2.7)
    return Bernoulli(probs=x.mean(0))


def _fit_binomial(x, total_count=None, **_):
    if total_count is None:
        raise ValueError("The Binomial MLE needs the known number of trials: "
                         "fit_mle('binomial', x, total_count=n).")
    x = as_samples(x)
    n = check_counts(as_tensor(total_count, "total_count", dtype=x.dtype), "total_count")
    check_counts(x, "x", upper=n)
    # p_ML = mean(x) / n
    return Binomial(total_count=n.expand(x.shape[1:]), probs=x.mean(0) / n)


def _fit_categorical(x, num_categories=None, **_):
    x = check_counts(as_samples(x), "x (category labels 0..K-1)")
    k = int(x.max()) + 1 if num_categories is None else int(num_categories)
    check_counts(x, "x (category labels)", upper=k - 1)
    counts = torch.nn.functional.one_hot(x.long(), k).to(x.dtype).sum(0)  # (*batch, K)
    # mu_k = m_k / N  (PRML eq. 2.33)
    return Categorical(probs=counts / x.shape[0])


def _fit_multinomial(x, total_count=None, **_):
    x = check_counts(as_samples(x, event_dim=1), "x (count vectors)")
    totals = x.sum(-1)
    n = totals.flatten()[0] if total_count is None else torch.as_tensor(float(total_count), dtype=x.dtype)
    if not (totals == n).all():
        raise ValueError("Every row of x must have the same total count n (a Multinomial has a fixed "
                         f"number of trials); row totals range from {totals.min().item():g} to "
                         f"{totals.max().item():g}.")
    # mu_k = sum_n x_nk / (N n)
    return Multinomial(int(n), probs=x.sum(0) / (x.shape[0] * n))


def _fit_poisson(x, **_):
    x = check_counts(as_samples(x), "x")
    # lambda_ML = mean(x)
    return Poisson(x.mean(0))


def _fit_normal(x, **_):
    x = as_samples(x, min_samples=2)
    mu = x.mean(0)
    # sigma^2_ML = (1/N) sum_n (x_n - mu_ML)^2  (PRML eq. 1.56)
    sigma = (x - mu).pow(2).mean(0).sqrt()
    if not (sigma > 0).all():
        raise ValueError("All values of x are equal, so the Normal MLE has zero variance; "
                         "the data need at least two distinct values.")
    return Normal(mu, sigma)


def _fit_multivariate_normal(x, **_):
    x = as_samples(x, event_dim=1, min_samples=2)
    mu = x.mean(0)
    centred = x - mu  # (N, *batch, D)
    # Sigma_ML = (1/N) sum_n (x_n - mu)(x_n - mu)^T  (PRML eq. 2.122)
    cov = torch.einsum("n...i,n...j->...ij", centred, centred) / x.shape[0]
    _, info = torch.linalg.cholesky_ex(cov)
    if (info != 0).any():
        raise ValueError(f"The ML covariance of x is singular (N={x.shape[0]} samples in D={x.shape[-1]} "
                         "dimensions, or collinear columns); use more samples than dimensions and drop "
                         "duplicated or constant columns.")
    return MultivariateNormal(mu, covariance_matrix=cov)


def _fit_gamma(x, max_iter=100, tol=1e-12, **_):
    x = check_positive(as_samples(x, min_samples=2), "x (Gamma data)")
    mean, mean_log = x.mean(0), x.log().mean(0)
    # s = ln(mean x) - mean(ln x) >= 0 (Jensen); the MLE solves ln a - psi(a) = s
    s = mean.log() - mean_log
    if not (s > 0).all():
        raise ValueError("All values of x are equal, so the Gamma MLE does not exist (the shape "
                         "diverges); the data need at least two distinct values.")
    # Minka (2002), initial approximation: a_0 = (3 - s + sqrt((s - 3)^2 + 24 s)) / (12 s)
    a = (3 - s + ((s - 3).pow(2) + 24 * s).sqrt()) / (12 * s)
    for _ in range(max_iter):
        # generalised Newton step (Minka 2002):
        # 1/a_new = 1/a + (mean ln x - ln mean x + ln a - psi(a)) / (a^2 (1/a - psi'(a)))
        grad = -s + a.log() - torch.digamma(a)
        a_new = 1 / (1 / a + grad / (a.pow(2) * (1 / a - torch.polygamma(1, a))))
        converged = ((a_new - a).abs() <= tol * a).all()
        a = a_new
        if converged:
            break
    else:
        _warn_not_converged("Gamma", max_iter)
    # b_ML = a / mean(x)
    return Gamma(a, a / mean)


def _fit_beta(x, max_iter=100, tol=1e-12, **_):
    x = check_probabilities(as_samples(x, min_samples=2), "x (Beta data)", open_interval=True)
    # the Beta is the K = 2 Dirichlet on (x, 1 - x); its moments and mean log-proportions
    m, m2 = x.mean(0), x.pow(2).mean(0)
    mean_p = torch.stack([m, 1 - m], -1)  # (*batch, 2)
    mean_p2 = torch.stack([m2, 1 - 2 * m + m2], -1)
    mean_log_p = torch.stack([x.log().mean(0), torch.log1p(-x).mean(0)], -1)
    alpha = _dirichlet_newton(mean_p, mean_p2, mean_log_p, max_iter, tol, "Beta")
    return Beta(alpha[..., 0], alpha[..., 1])


def _fit_dirichlet(x, max_iter=100, tol=1e-12, **_):
    x = check_simplex(as_samples(x, event_dim=1, min_samples=2), "x (Dirichlet data)", strictly_positive=True)
    return Dirichlet(_dirichlet_newton(x.mean(0), x.pow(2).mean(0), x.log().mean(0), max_iter, tol, "Dirichlet"))


def _dirichlet_log_likelihood(alpha, mean_log_p):
    # (1/N) ln p(D|alpha) = ln Gamma(sum_k a_k) - sum_k ln Gamma(a_k) + sum_k (a_k - 1) mean ln p_k
    return torch.lgamma(alpha.sum(-1)) - torch.lgamma(alpha).sum(-1) + ((alpha - 1) * mean_log_p).sum(-1)


def _dirichlet_newton(m, m2, mean_log_p, max_iter, tol, name):
    """Minka's Newton iteration for the Dirichlet MLE, vectorised over the batch.

    ``m``, ``m2``: (*batch, K) first and second moments of the proportions (for the
    moment-matching start); ``mean_log_p``: (*batch, K) mean log-proportions, the sufficient
    statistic.
    """
    var = m2 - m.pow(2)
    if not (var.amax(-1) > 0).all():
        raise ValueError(f"All rows of x are equal, so the {name} MLE does not exist (the precision "
                         "diverges); the data need some spread.")
    # moment matching start (Minka 2000): sum_k alpha_k = (m_k - E[p_k^2]) / var_k, averaged over k
    precision = ((m - m2) / var.clamp_min(1e-300)).clamp_min(1e-3).log().mean(-1, keepdim=True).exp()
    alpha = precision * m  # (*batch, K)
    loglik = _dirichlet_log_likelihood(alpha, mean_log_p)
    for _ in range(max_iter):
        total = alpha.sum(-1, keepdim=True)
        # gradient per sample (Minka 2000): g_k = psi(sum a) - psi(a_k) + mean ln p_k
        g = torch.digamma(total) - torch.digamma(alpha) + mean_log_p
        # Hessian H = diag(q) + z 1 1^T, q_k = -psi'(a_k), z = psi'(sum a)  (Minka 2000)
        q = -torch.polygamma(1, alpha)
        z = torch.polygamma(1, total)
        # (H^{-1} g)_k = (g_k - b) / q_k,  b = sum_j (g_j / q_j) / (1/z + sum_j 1/q_j)  (matrix inversion lemma)
        b = (g / q).sum(-1, keepdim=True) / (1 / z + (1 / q).sum(-1, keepdim=True))
        step = (g - b) / q
        # backtrack (halve the step) where the Newton step leaves alpha > 0 or lowers the likelihood
        scale = torch.ones_like(total)
        for _halving in range(50):
            candidate = alpha - scale * step
            cand_loglik = _dirichlet_log_likelihood(candidate.clamp_min(1e-300), mean_log_p)
            bad = ((candidate <= 0).any(-1) | (cand_loglik < loglik - 1e-12 * loglik.abs())).unsqueeze(-1)
            if not bad.any():
                break
            scale = torch.where(bad, scale / 2, scale)
        # converged: parameters stable, or the (concave) likelihood cannot rise at machine precision
        stable = ((candidate - alpha).abs() <= tol * alpha).all(-1)
        flat = (cand_loglik - loglik).abs() <= 8 * torch.finfo(loglik.dtype).eps * loglik.abs()
        converged = (stable | flat).all()
        alpha, loglik = candidate, cand_loglik
        if converged:
            break
    else:
        _warn_not_converged(name, max_iter)
    return alpha


def _warn_not_converged(name: str, max_iter: int) -> None:
    warnings.warn(f"The {name} MLE did not converge in max_iter={max_iter} Newton steps; the "
                  "estimate may be inaccurate. Increase max_iter or check the data for outliers "
                  "near the boundary of the support.", ConvergenceWarning, stacklevel=3)


_FITTERS = {
    "bernoulli": _fit_bernoulli,
    "binomial": _fit_binomial,
    "categorical": _fit_categorical,
    "multinomial": _fit_multinomial,
    "poisson": _fit_poisson,
    "normal": _fit_normal,
    "multivariate_normal": _fit_multivariate_normal,
    "gamma": _fit_gamma,
    "beta": _fit_beta,
    "dirichlet": _fit_dirichlet,
}
MLE_FAMILIES = tuple(_FITTERS)
_ALIASES = {"multivariatenormal": "multivariate_normal", "mvn": "multivariate_normal", "gaussian": "normal"}


def fit_mle(family, x, *, total_count=None, num_categories=None, max_iter: int = 100,
            tol: float = 1e-12) -> Distribution:
    """Maximum-likelihood estimate of ``family`` from samples ``x``; a torch distribution.

    Args:
        family: a name from :data:`MLE_FAMILIES` (``"normal"``, ``"gamma"``, ...; case-insensitive,
            ``"mvn"`` accepted) or the torch class itself (``torch.distributions.Gamma``).
        x: samples along the first axis; numpy, list or tensor. Integer data become float64.
            Shapes: ``(N, *batch)`` for scalar families, ``(N, *batch, K)`` for Multinomial,
            MultivariateNormal and Dirichlet (rows on the simplex), integer labels ``(N, *batch)``
            for Categorical.
        total_count: the known number of trials (Binomial, required); for Multinomial it is read
            from the row sums and, if given, checked.
        num_categories: number of classes K for Categorical (default: largest label + 1).
        max_iter, tol: Newton iterations for Gamma, Beta and Dirichlet; converged when every
            parameter changes by less than ``tol`` relative. A ``ConvergenceWarning`` is issued
            otherwise.

    Returns:
        The fitted ``torch.distributions`` object (e.g. ``Normal``, ``Dirichlet``).

    Raises:
        ValueError: unknown family, data outside the family's support (e.g. zeros for a Gamma,
            values outside (0, 1) for a Beta, rows off the simplex for a Dirichlet, non-integer
            counts), degenerate data or shape mismatches.
    """
    name = family.__name__ if isinstance(family, type) else str(family)
    key = name.lower().replace("-", "_").replace(" ", "_")
    key = _ALIASES.get(key, key)
    if key not in _FITTERS:
        raise ValueError(f"fit_mle does not know the family {name!r}; choose one of {list(MLE_FAMILIES)}.")
    return _FITTERS[key](x, total_count=total_count, num_categories=num_categories,
                         max_iter=max_iter, tol=tol)
