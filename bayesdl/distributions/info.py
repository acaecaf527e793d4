"""Information theory on distribution objects: entropy, cross-entropy, KL, JS, mutual information.

Every function takes ``torch.distributions`` objects (including bayesdl's own families) and
picks the most exact method available (``method="auto"``):

1. a closed form -- ``Distribution.entropy()`` or torch's KL registry (extended by
   :mod:`bayesdl.distributions.kl` with Wishart, Normal-Gamma, Normal-Wishart and
   Beta-Binomial pairs);
2. an exact sum over the support when the distribution is discrete with a finite support
   (``has_enumerate_support``);
3. otherwise a Monte-Carlo estimate from ``num_samples`` draws (reparameterised when the
   distribution supports ``rsample``, so gradients flow), whose standard error is returned
   with ``return_stderr=True``.

``method="exact"`` refuses to fall back to Monte Carlo; ``method="mc"`` forces it. Results are
in nats and have the distributions' batch shape.

Example::

    >>> import torch
    >>> from torch.distributions import Normal
    >>> from bayesdl.distributions import info
    >>> p, q = Normal(0.0, 1.0), Normal(1.0, 2.0)
    >>> round(float(info.kl_divergence(p, q)), 4)
    0.4431
    >>> value, se = info.js_divergence(p, q, return_stderr=True, seed=0)  # Monte Carlo
    >>> bool(se > 0)
    True
    >>> round(float(info.mutual_information([[0.25, 0.25], [0.25, 0.25]])), 12)
    0.0
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch
from torch.distributions import Distribution

from ._checks import as_tensor, check_probabilities

__all__ = [
    "cross_entropy",
    "entropy",
    "js_divergence",
    "kl_divergence",
    "mutual_information",
    "mutual_information_from_samples",
]

_METHODS = ("auto", "exact", "mc")


def entropy(p: Distribution, *, method: str = "auto", num_samples: int = 10_000,
            return_stderr: bool = False, seed: int | None = None):
    """Differential or discrete entropy :math:`H[p] = -E_p[\\ln p(x)]`."""
    return _estimate(
        method, return_stderr,
        closed=lambda: p.entropy(),
        enumerated=lambda: _expect_enumerated(p, lambda log_p, x: -log_p),
        monte_carlo=lambda: _expect_mc(p, lambda log_p, x: -log_p, num_samples, seed),
    )


def kl_divergence(p: Distribution, q: Distribution, *, method: str = "auto", num_samples: int = 10_000,
                  return_stderr: bool = False, seed: int | None = None):
    """Kullback-Leibler divergence :math:`KL(p\\|q) = E_p[\\ln p(x) - \\ln q(x)]` (PRML eq. 1.113)."""
    return _estimate(
        method, return_stderr,
        closed=lambda: torch.distributions.kl_divergence(p, q),
        enumerated=lambda: _expect_enumerated(p, lambda log_p, x: log_p - q.log_prob(x)),
        monte_carlo=lambda: _expect_mc(p, lambda log_p, x: log_p - q.log_prob(x), num_samples, seed),
    )


def cross_entropy(p: Distribution, q: Distribution, *, method: str = "auto", num_samples: int = 10_000,
                  return_stderr: bool = False, seed: int | None = None):
    """Cross-entropy :math:`H(p, q) = -E_p[\\ln q(x)] = H[p] + KL(p\\|q)`."""
    return _estimate(
        method, return_stderr,
        closed=lambda: p.entropy() + torch.distributions.kl_divergence(p, q),
        enumerated=lambda: _expect_enumerated(p, lambda log_p, x: -q.log_prob(x)),
        monte_carlo=lambda: _expect_mc(p, lambda log_p, x: -q.log_prob(x), num_samples, seed),
    )


def js_divergence(p: Distribution, q: Distribution, *, method: str = "auto", num_samples: int = 10_000,
                  return_stderr: bool = False, seed: int | None = None):
    """Jensen-Shannon divergence :math:`\\tfrac12 KL(p\\|m) + \\tfrac12 KL(q\\|m)`, :math:`m = (p + q)/2`.

    Between 0 and :math:`\\ln 2`. Exact for finite discrete supports; Monte Carlo otherwise
    (half the draws from each of ``p`` and ``q``).
    """

    def log_m(x):
        # ln m(x) = ln((p(x) + q(x)) / 2)
        return torch.logaddexp(p.log_prob(x), q.log_prob(x)) - math.log(2)

    def enumerated():
        # both halves summed over the support of p (it must equal that of q)
        half_p = _expect_enumerated(p, lambda log_p, x: log_p - log_m(x))
        half_q = _expect_enumerated(q, lambda log_q, x: log_q - log_m(x))
        return 0.5 * (half_p + half_q)

    def monte_carlo():
        half = max(num_samples // 2, 2)
        mean_p, se_p = _expect_mc(p, lambda log_p, x: log_p - log_m(x), half, seed)
        mean_q, se_q = _expect_mc(q, lambda log_q, x: log_q - log_m(x), half,
                                  None if seed is None else seed + 1)
        # independent halves: Var = (Var_p + Var_q) / 4
        return 0.5 * (mean_p + mean_q), 0.5 * (se_p.pow(2) + se_q.pow(2)).sqrt()

    return _estimate(method, return_stderr, closed=None, enumerated=enumerated, monte_carlo=monte_carlo)


def mutual_information(joint, *, base: float | None = None) -> torch.Tensor:
    """Mutual information :math:`I[X; Y]` of a joint probability table ``joint[x, y]`` (PRML eq. 1.120).

    :math:`I = \\sum_{x,y} p(x, y) \\ln \\frac{p(x, y)}{p(x)p(y)}` with :math:`0 \\ln 0 = 0`; in nats,
    or in units of ``log(base)`` (``base=2`` for bits). ``joint`` must be a non-negative 2-D
    table summing to one.
    """
    table = as_tensor(joint, "joint")
    if table.dim() != 2:
        raise ValueError(f"joint must be a 2-D table p(x, y); got shape {tuple(table.shape)}.")
    check_probabilities(table, "joint")
    total = table.sum()
    if abs(total.item() - 1) > 1e-6:
        raise ValueError(f"joint must sum to 1 (got {total.item():.6g}); normalise it (joint / joint.sum()), "
                         "or pass paired samples to mutual_information_from_samples.")
    px = table.sum(1, keepdim=True)  # (X, 1)
    py = table.sum(0, keepdim=True)  # (1, Y)
    terms = table * (table.log() - px.log() - py.log())
    mi = torch.where(table > 0, terms, torch.zeros_like(terms)).sum().clamp_min(0)
    return mi if base is None else mi / math.log(base)


def mutual_information_from_samples(x, y, *, base: float | None = None) -> torch.Tensor:
    """Plug-in mutual information of paired discrete samples ``(x_n, y_n)``.

    The labels may be any hashable values (numbers or strings); the joint table is the
    empirical frequency of each pair. The plug-in estimate is biased upwards by about
    ``(|X| - 1)(|Y| - 1) / (2N)`` nats for independent variables.
    """
    x, y = np.asarray(x), np.asarray(y)
    if x.ndim != 1 or y.ndim != 1 or x.shape != y.shape:
        raise ValueError(f"x and y must be 1-D arrays of paired labels of equal length; got shapes "
                         f"{x.shape} and {y.shape}.")
    if x.size == 0:
        raise ValueError("x and y are empty; mutual information needs at least one pair.")
    _, xi = np.unique(x, return_inverse=True)
    _, yi = np.unique(y, return_inverse=True)
    counts = np.zeros((xi.max() + 1, yi.max() + 1))
    np.add.at(counts, (xi, yi), 1.0)
    return mutual_information(counts / x.size, base=base)


# -- estimation machinery ------------------------------------------------------------------

def _estimate(method, return_stderr, *, closed, enumerated, monte_carlo):
    """Try closed form, then exact enumeration, then Monte Carlo, as ``method`` allows."""
    if method not in _METHODS:
        raise ValueError(f"method must be one of {_METHODS}; got {method!r}.")
    value = None
    if method != "mc":
        for exact in (closed, enumerated):
            if exact is None:
                continue
            try:
                value = exact()
                break
            except NotImplementedError:
                continue
        if value is None and method == "exact":
            raise NotImplementedError("No closed form or finite support for these distributions; use "
                                      "method='auto' or 'mc' for a Monte-Carlo estimate.")
    if value is not None:
        return (value, torch.zeros_like(value)) if return_stderr else value
    value, stderr = monte_carlo()
    return (value, stderr) if return_stderr else value


def _expect_enumerated(p: Distribution, f: Callable) -> torch.Tensor:
    """:math:`\\sum_x p(x) f(\\ln p(x), x)` over the finite support of ``p``."""
    if not p.has_enumerate_support:
        raise NotImplementedError
    values = p.enumerate_support(expand=True)  # (S, *batch, *event)
    log_p = p.log_prob(values)  # (S, *batch)
    fx = f(log_p, values)
    weight = log_p.exp()
    return torch.where(weight > 0, weight * fx, torch.zeros_like(fx)).sum(0)


def _expect_mc(p: Distribution, f: Callable, num_samples: int, seed: int | None):
    """Monte-Carlo mean of ``f(ln p(x), x)`` over ``x ~ p`` and its standard error."""
    if num_samples < 2:
        raise ValueError(f"num_samples must be at least 2 for a Monte-Carlo estimate; got {num_samples}.")
    with torch.random.fork_rng(devices=[], enabled=seed is not None):
        if seed is not None:
            torch.manual_seed(seed)
        x = p.rsample((num_samples,)) if p.has_rsample else p.sample((num_samples,))
    values = f(p.log_prob(x), x)  # (S, *batch)
    return values.mean(0), values.std(0) / math.sqrt(num_samples)
