"""Closed-form KL divergences that torch's registry lacks, registered with ``register_kl``.

Importing :mod:`bayesdl.distributions` registers them, after which plain
``torch.distributions.kl_divergence(q, p)`` (and :func:`bayesdl.distributions.info.kl_divergence`)
uses them:

- Wishart || Wishart (needed by variational Gaussian mixtures and Normal-Wishart posteriors);
- NormalGamma || NormalGamma and NormalWishart || NormalWishart (KL between conjugate posteriors
  and priors, e.g. in a variational lower bound);
- BetaBinomial || BetaBinomial (exact sum over the finite support) and
  Multinomial || Multinomial (``n`` times the Categorical KL; infinite for different ``n``).

torch already has Dirichlet || Dirichlet, Beta || Beta, Gamma || Gamma, Normal || Normal and
MultivariateNormal || MultivariateNormal.
"""

from __future__ import annotations

import torch
from torch.distributions import Multinomial, Wishart, kl_divergence, register_kl

from .gaussian_priors import NormalGamma, NormalWishart
from .predictive import BetaBinomial

__all__ = ["kl_wishart_wishart"]


def _multi_digamma(x: torch.Tensor, d: int) -> torch.Tensor:
    # psi_D(x) = sum_{i=1}^D psi(x + (1 - i) / 2)
    i = torch.arange(1, d + 1, dtype=x.dtype, device=x.device)
    return torch.digamma(x.unsqueeze(-1) + (1 - i) / 2).sum(-1)


@register_kl(Wishart, Wishart)
def kl_wishart_wishart(q: Wishart, p: Wishart) -> torch.Tensor:
    r"""KL(W(W_q, nu_q) || W(W_p, nu_p)) from the Wishart log-density (PRML eq. B.78):

    .. math:: \frac{\nu_p}{2}(\ln|W_p| - \ln|W_q|) + \ln\Gamma_D(\tfrac{\nu_p}{2})
              - \ln\Gamma_D(\tfrac{\nu_q}{2}) + \frac{\nu_q - \nu_p}{2}\psi_D(\tfrac{\nu_q}{2})
              + \frac{\nu_q}{2}\big(\mathrm{tr}(W_p^{-1} W_q) - D\big)
    """
    d = q.event_shape[-1]
    lq, lp = q._unbroadcasted_scale_tril, p._unbroadcasted_scale_tril
    log_det_q = 2 * lq.diagonal(dim1=-2, dim2=-1).log().sum(-1)
    log_det_p = 2 * lp.diagonal(dim1=-2, dim2=-1).log().sum(-1)
    # tr(W_p^{-1} W_q) = ||L_p^{-1} L_q||_F^2
    lp, lq = torch.broadcast_tensors(lp, lq)
    trace = torch.linalg.solve_triangular(lp, lq, upper=False).pow(2).sum((-2, -1))
    nu_q, nu_p = q.df, p.df
    return (nu_p / 2 * (log_det_p - log_det_q)
            + torch.mvlgamma(nu_p / 2, d) - torch.mvlgamma(nu_q / 2, d)
            + (nu_q - nu_p) / 2 * _multi_digamma(nu_q / 2, d)
            + nu_q / 2 * (trace - d))


@register_kl(NormalGamma, NormalGamma)
def _kl_normal_gamma(q: NormalGamma, p: NormalGamma) -> torch.Tensor:
    # KL = KL(Gam_q || Gam_p) + E_q[ KL(N(m_q, 1/(k_q l)) || N(m_p, 1/(k_p l))) ]
    #    = KL_Gam + 1/2 [k_p/k_q - 1 - ln(k_p/k_q) + k_p E[l] (m_q - m_p)^2],  E[l] = a_q / b_q
    ratio = p.kappa / q.kappa
    expected_lam = q.concentration / q.rate
    gaussian = 0.5 * (ratio - 1 - ratio.log() + p.kappa * expected_lam * (q.loc - p.loc).pow(2))
    return kl_divergence(q.marginal_precision(), p.marginal_precision()) + gaussian


@register_kl(NormalWishart, NormalWishart)
def _kl_normal_wishart(q: NormalWishart, p: NormalWishart) -> torch.Tensor:
    # KL = KL(W_q || W_p) + E_q[ KL(N(m_q, (k_q L)^{-1}) || N(m_p, (k_p L)^{-1})) ]
    #    = KL_W + 1/2 [D (k_p/k_q - 1 - ln(k_p/k_q)) + k_p nu_q (m_q - m_p)^T W_q (m_q - m_p)]
    d = q.loc.shape[-1]
    ratio = p.kappa / q.kappa
    diff = (q.loc - p.loc).unsqueeze(-1)  # (..., D, 1)
    # (m_q - m_p)^T W_q (m_q - m_p) = ||L_q^T (m_q - m_p)||^2
    quad = (q.scale_tril.mT @ diff).squeeze(-1).pow(2).sum(-1)
    gaussian = 0.5 * (d * (ratio - 1 - ratio.log()) + p.kappa * q.df * quad)
    return kl_divergence(q.marginal_precision(), p.marginal_precision()) + gaussian


@register_kl(BetaBinomial, BetaBinomial)
def _kl_beta_binomial(q: BetaBinomial, p: BetaBinomial) -> torch.Tensor:
    # KL = sum_k q(k) [ln q(k) - ln p(k)] over k = 0..n_q; infinite where n_q > n_p
    values = q._support_grid()  # (max n_q + 1, *batch)
    log_q, log_p = q._masked_log_prob(values), p._masked_log_prob(values)
    terms = torch.where(log_q > -torch.inf, log_q.exp() * (log_q - log_p), 0.0)
    return terms.sum(0)


@register_kl(Multinomial, Multinomial)
def _kl_multinomial(q: Multinomial, p: Multinomial) -> torch.Tensor:
    # KL = n sum_k q_k (ln q_k - ln p_k) for equal n (the multinomial coefficients cancel);
    # infinite for different n (disjoint supports)
    if q.total_count != p.total_count:
        return torch.full(torch.broadcast_shapes(q.batch_shape, p.batch_shape), torch.inf,
                          dtype=q.probs.dtype, device=q.probs.device)
    return q.total_count * kl_divergence(q._categorical, p._categorical)
