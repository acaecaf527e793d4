"""Objectives for Bayesian deep learning: the mini-batch ELBO and the likelihoods of
Kendall & Gal (2017), "What Uncertainties Do We Need in Bayesian Deep Learning?".
"""

from __future__ import annotations

import math

import torch

_SCHEMES = ("uniform", "blundell")


def blundell_kl_weight(batch_index: int, n_batches: int) -> float:
    """Blundell et al. eq. 9: pi_i = 2^(M-i) / (2^M - 1) for batch i = 1..M (0-based here).

    Large for the first batches of an epoch and small for the last, summing to 1; computed
    as 2^-i / (1 - 2^-M), the same number without overflow for large M.
    """
    M, i = int(n_batches), int(batch_index) + 1
    if not 1 <= i <= M:
        raise ValueError(f"batch_index must be in [0, n_batches={M}), got {batch_index}.")
    return 2.0 ** (-i) / -math.expm1(-M * math.log(2.0))


def elbo_loss(nll: torch.Tensor, kl: torch.Tensor, n_train: int, batch_index: int | None = None,
              scheme: str = "uniform", n_batches: int | None = None) -> torch.Tensor:
    """The negative ELBO of one mini-batch, per training example.

    With N training examples split into M mini-batches D_1..D_M, Blundell et al. (eq. 8) write
    the full negative ELBO as a sum of per-batch terms

        F = sum_i F_i,   F_i = pi_i KL(q || p) - E_q[log p(D_i | w)],   sum_i pi_i = 1.

    ``nll`` is the *mean* negative log-likelihood over the batch (what ``F.cross_entropy`` or
    :func:`heteroscedastic_gaussian_nll` return by default), so -E_q[log p(D_i|w)] ~= B nll
    for a batch of B = N / M examples. This function returns M F_i / N:

        uniform  (pi_i = 1/M):   nll + KL / N
        blundell (eq. 9):        nll + M pi_i KL / N

    whose average over the batches of an epoch is F / N, the negative ELBO per example: the
    same scale as an ordinary mean loss, so learning rates carry over, and the KL is weighted
    correctly whatever the batch size (the usual mistake is adding the KL un-scaled, or
    dividing it by the batch size instead of N).

    ``n_train`` is the number of likelihood terms in the whole training set that ``nll`` is
    the mean of. When ``nll`` also averages over time steps (a sequence model such as
    :class:`~bayesdl.nn.BayesLSTM` with a per-step loss) or pixels, ``n_train`` is sequences x
    steps (x pixels), not the number of sequences that ``Trainer``'s ``step.n_train`` counts:
    ``elbo_loss(nll, kl, step.n_train * T)``. Passing the number of sequences weights the KL
    T times too heavily.
    """
    n_train = int(n_train)
    if n_train < 1:
        raise ValueError("n_train must be the (positive) number of training examples, got "
                         f"{n_train}.")
    if scheme == "uniform":
        return nll + kl / n_train
    if scheme != "blundell":
        raise ValueError(f"scheme must be one of {_SCHEMES}, got {scheme!r}.")
    if batch_index is None or n_batches is None:
        raise ValueError("scheme='blundell' needs batch_index and n_batches (batches per epoch).")
    return nll + (int(n_batches) * blundell_kl_weight(batch_index, n_batches)) * kl / n_train


def heteroscedastic_gaussian_nll(mean: torch.Tensor, log_var: torch.Tensor, target: torch.Tensor,
                                 reduction: str = "mean") -> torch.Tensor:
    """-log N(y | mean, exp(log_var)) for a network that predicts its own noise.

    Kendall & Gal eq. 8 (with the constant): 1/2 exp(-s) (y - f)^2 + 1/2 s + 1/2 log 2 pi,
    with s = log sigma^2 predicted per example, which keeps the loss stable where sigma is
    small. ``reduction`` is ``"mean"``, ``"sum"`` or ``"none"``.
    """
    if mean.shape != target.shape or log_var.shape != target.shape:
        raise ValueError(
            f"mean {tuple(mean.shape)}, log_var {tuple(log_var.shape)} and target "
            f"{tuple(target.shape)} must have the same shape."
        )
    nll = 0.5 * (torch.exp(-log_var) * (target - mean) ** 2 + log_var + math.log(2 * math.pi))
    return _reduce(nll, reduction)


def logit_noise_nll(logits: torch.Tensor, log_var: torch.Tensor, target: torch.Tensor,
                    n_samples: int = 10, generator: torch.Generator | None = None,
                    reduction: str = "mean") -> torch.Tensor:
    """Heteroscedastic classification loss of Kendall & Gal (eq. 10-12).

    The network predicts logits f (N, K) and their log-variances s (N, K); the class
    probabilities are those of the noisy logits x_t = f + exp(s / 2) o eps_t, eps_t ~ N(0, I),
    averaged over T = ``n_samples`` draws:

        L = -sum_n log (1/T) sum_t softmax(x_{n,t})_{y_n}
          = -sum_n [ logsumexp_t log_softmax(x_{n,t})_{y_n} - log T ]      (eq. 12)

    computed in log space for stability. ``target`` holds class indices (N,).
    """
    if logits.shape != log_var.shape or logits.dim() != 2:
        raise ValueError(f"logits and log_var must both be (N, K); got {tuple(logits.shape)} and "
                         f"{tuple(log_var.shape)}.")
    if int(n_samples) < 1:
        raise ValueError(f"n_samples must be a positive integer, got {n_samples}.")
    T = int(n_samples)
    eps = torch.randn((T, *logits.shape), dtype=logits.dtype, device=logits.device,
                      generator=generator)  # (T, N, K)
    x = logits + torch.exp(0.5 * log_var) * eps  # (T, N, K)
    log_p = torch.log_softmax(x, dim=-1)  # (T, N, K)
    log_p_y = log_p.gather(-1, target.long().view(1, -1, 1).expand(T, -1, 1)).squeeze(-1)  # (T, N)
    nll = -(torch.logsumexp(log_p_y, dim=0) - math.log(T))  # (N,)
    return _reduce(nll, reduction)


def _reduce(values: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "mean":
        return values.mean()
    if reduction == "sum":
        return values.sum()
    if reduction == "none":
        return values
    raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}.")
