"""Forward-backward and Viterbi for a batch of padded sequences at once (PRML 13.2.2-13.2.5).

Every function takes the emission log-densities ``log_b[b, t, k] = log p(x_t | z_t = k)`` of
``B`` sequences padded to ``T`` steps, with ``mask[b, t]`` true at the real steps, and runs
one recursion over ``t`` for all sequences together (one matrix product per step), on the
device of the tensors.

The emissions stay in log space; the forward-backward recursion is the scaled one
(Rabiner 1989; PRML 13.59-13.65): each step's emissions are divided by their largest value
``m_t`` and the messages renormalised by ``c_t``, so nothing under- or overflows, and the
log-likelihood is ``sum_t (log c_t + m_t)`` (PRML 13.63), exact, as the log-sum-exp form.
Viterbi runs in log space (PRML 13.68-13.70).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class Posteriors:
    """What the E-step needs from forward-backward."""

    log_likelihood: torch.Tensor  # (B,) log p(X_b)
    gamma: torch.Tensor  # (B, T, K) p(z_t = k | X_b), zero at padded steps
    xi_sum: torch.Tensor  # (K, K) sum over b and t of p(z_{t-1} = i, z_t = j | X_b)


def _scaled_emissions(log_b: torch.Tensor, mask: torch.Tensor):
    """``(b, m)``: emissions divided by their per-step maximum ``exp(m_t)``; padded steps
    get ``b = 1`` and ``m = 0`` so they neither change the messages nor the likelihood."""
    log_b = log_b.masked_fill(~mask[..., None], 0.0)
    m = log_b.amax(-1, keepdim=True)  # (B, T, 1)
    m = torch.where(torch.isfinite(m), m, torch.zeros_like(m))
    return torch.exp(log_b - m), m.squeeze(-1)


def forward_backward(log_b: torch.Tensor, mask: torch.Tensor, startprob: torch.Tensor,
                     transmat: torch.Tensor) -> Posteriors:
    """Posteriors of ``B`` padded sequences: ``log_b`` (B, T, K), ``mask`` (B, T),
    ``startprob`` (K,), ``transmat`` (K, K) with rows summing to one."""
    B, T, K = log_b.shape
    b, m = _scaled_emissions(log_b, mask)  # (B, T, K), (B, T)
    alpha = torch.empty_like(b)  # (B, T, K) normalised alpha-hat (PRML 13.59)
    c = torch.ones(B, T, dtype=b.dtype, device=b.device)  # (B, T) scaling factors
    # alpha(z_1) = p(z_1) p(x_1 | z_1)  (PRML 13.37)
    a = startprob * b[:, 0]
    c[:, 0] = a.sum(-1)
    alpha[:, 0] = a / c[:, 0, None]
    for t in range(1, T):
        # c_t alpha-hat(z_t) = p(x_t | z_t) sum_{z_{t-1}} alpha-hat(z_{t-1}) p(z_t | z_{t-1})  (PRML 13.59)
        a = (alpha[:, t - 1] @ transmat) * b[:, t]
        c[:, t] = a.sum(-1)
        alpha[:, t] = a / c[:, t, None]
    c = torch.where(mask, c, torch.ones_like(c))
    # ln p(X) = sum_t ln c_t  (PRML 13.63), plus the emission scale m_t taken out above
    log_likelihood = ((torch.log(c) + m) * mask).sum(-1)

    beta = torch.ones_like(b)  # (B, T, K) beta-hat (PRML 13.62); 1 at and after the last step
    for t in range(T - 2, -1, -1):
        # c_{t+1} beta-hat(z_t) = sum_{z_{t+1}} beta-hat(z_{t+1}) p(x_{t+1} | z_{t+1}) p(z_{t+1} | z_t)
        message = ((b[:, t + 1] * beta[:, t + 1]) @ transmat.T) / c[:, t + 1, None]
        beta[:, t] = torch.where(mask[:, t + 1, None], message, beta[:, t])
    # gamma(z_t) = alpha-hat(z_t) beta-hat(z_t)  (PRML 13.64)
    gamma = alpha * beta * mask[..., None]
    # xi(z_{t-1}, z_t) = alpha-hat(z_{t-1}) p(x_t | z_t) p(z_t | z_{t-1}) beta-hat(z_t) / c_t  (PRML 13.65)
    weight = (b * beta / c[..., None] * mask[..., None])[:, 1:]  # (B, T-1, K)
    xi_sum = transmat * torch.einsum("bti,btj->ij", alpha[:, :-1], weight)
    return Posteriors(log_likelihood, gamma, xi_sum)


def viterbi(log_b: torch.Tensor, mask: torch.Tensor, log_startprob: torch.Tensor,
            log_transmat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The most probable state paths (PRML 13.68-13.70): ``(log p(X_b, Z_b*) (B,),
    Z* (B, T))``; padded steps repeat the last state."""
    B, T, K = log_b.shape
    log_b = log_b.masked_fill(~mask[..., None], 0.0)
    # omega(z_1) = ln p(z_1) + ln p(x_1 | z_1)  (PRML 13.69)
    omega = log_startprob + log_b[:, 0]  # (B, K)
    pointers = torch.empty(B, T, K, dtype=torch.long, device=log_b.device)
    stay = torch.arange(K, device=log_b.device).expand(B, K)
    pointers[:, 0] = stay
    for t in range(1, T):
        # omega(z_t) = ln p(x_t | z_t) + max_{z_{t-1}} [ln p(z_t | z_{t-1}) + omega(z_{t-1})]  (PRML 13.68)
        best, arg = (omega[:, :, None] + log_transmat).max(1)  # (B, K)
        live = mask[:, t, None]
        omega = torch.where(live, best + log_b[:, t], omega)
        pointers[:, t] = torch.where(live, arg, stay)
    log_prob, state = omega.max(-1)  # (B,), (B,)
    path = torch.empty(B, T, dtype=torch.long, device=log_b.device)
    path[:, T - 1] = state
    for t in range(T - 1, 0, -1):
        # back-tracking: z*_{t-1} = psi(z*_t)  (PRML 13.71)
        state = pointers[:, t].gather(1, state[:, None]).squeeze(1)
        path[:, t - 1] = state
    return log_prob, path
