"""Metrics that say whether a model's uncertainty is honest.

Every metric takes a predictive distribution (a ``torch.distributions.Distribution``: what
``predict_dist`` returns for any bayesdl model) and the observed targets, and returns a float.
Classification metrics need a ``Categorical`` (class probabilities ``dist.probs`` (N, K),
targets are class indices 0..K-1); regression metrics need ``mean`` / ``log_prob`` / ``cdf``.
"""

from __future__ import annotations


import numpy as np
import torch
from scipy.stats import rankdata
from torch.distributions import Categorical, Distribution

_STRATEGIES = ("uniform", "adaptive")


def _targets(y, like: torch.Tensor) -> torch.Tensor:
    y = torch.as_tensor(np.asarray(y) if not isinstance(y, torch.Tensor) else y)
    if y.dim() != 1 or y.shape[0] != like.shape[0]:
        raise ValueError(f"targets must be 1-D with {like.shape[0]} entries (one per prediction), "
                         f"got shape {tuple(y.shape)}.")
    return y.to(like.device)


def _categorical(dist, y):
    if not isinstance(dist, Categorical):
        raise TypeError(f"this metric needs a Categorical predictive distribution, got "
                        f"{type(dist).__name__}.")
    probs = dist.probs  # (N, K)
    y = _targets(y, probs)
    if y.is_floating_point():
        if not torch.all(y == y.round()):
            raise ValueError("classification targets must be integer class indices.")
    y = y.long()
    bad = (y < 0) | (y >= probs.shape[-1])
    if bad.any():
        raise ValueError(
            f"label(s) {sorted(set(y[bad].tolist()))[:5]} are outside 0..{probs.shape[-1] - 1}: "
            "the model has never seen these classes. Map labels to indices with the model's "
            "classes_ first."
        )
    return probs, y


def encode_labels(y, classes) -> np.ndarray:
    """Class indices of labels ``y`` in the sorted ``classes`` (a classifier's ``classes_``);
    a ``ValueError`` names any label the model never saw at fit."""
    y, classes = np.asarray(y), np.asarray(classes)
    unseen = np.setdiff1d(np.unique(y), classes)
    if unseen.size:
        raise ValueError(f"label(s) {unseen[:5].tolist()} were not seen at fit; the model knows "
                         f"the classes {classes.tolist()}.")
    return np.searchsorted(classes, y)


def negative_log_likelihood(dist: Distribution, y) -> float:
    """-mean_n log p(y_n | x_n) under the predictive distribution (nats per example)."""
    if isinstance(dist, Categorical):
        _, yt = _categorical(dist, y)
    else:
        yt = _targets(y, dist.mean).to(dist.mean.dtype)
    return -dist.log_prob(yt).mean().item()


def rmse(dist: Distribution, y) -> float:
    """sqrt(mean_n (E[y_n] - y_n)^2) of the predictive mean."""
    mean = dist.mean
    return torch.sqrt(((mean - _targets(y, mean).to(mean.dtype)) ** 2).mean()).item()


def accuracy(dist: Categorical, y) -> float:
    """Fraction of examples whose most probable class is the true one."""
    probs, y = _categorical(dist, y)
    return (probs.argmax(-1) == y).double().mean().item()


def brier_score(dist: Categorical, y) -> float:
    """mean_n sum_k (p_nk - 1[y_n = k])^2 (Brier 1950, multi-class form; 0 is perfect, max 2)."""
    probs, y = _categorical(dist, y)
    onehot = torch.nn.functional.one_hot(y, probs.shape[-1]).to(probs.dtype)
    return ((probs - onehot) ** 2).sum(-1).mean().item()


def reliability_curve(dist: Categorical, y, n_bins: int = 15, strategy: str = "uniform"):
    """Per-bin mean confidence, accuracy and count of the top-class predictions.

    ``strategy="uniform"``: equal-width bins (lo, hi] over [0, 1] (Guo et al. 2017);
    ``"adaptive"``: bins with (nearly) equal counts (Nixon et al. 2019). Empty bins are left out.
    Returns numpy arrays ``(confidence, accuracy, counts)``.
    """
    if strategy not in _STRATEGIES:
        raise ValueError(f"strategy must be one of {_STRATEGIES}, got {strategy!r}.")
    if int(n_bins) < 1:
        raise ValueError(f"n_bins must be a positive integer, got {n_bins}.")
    probs, y = _categorical(dist, y)
    conf, pred = probs.max(-1)  # (N,)
    correct = (pred == y).to(probs.dtype)
    if strategy == "uniform":
        edges = torch.linspace(0, 1, int(n_bins) + 1, dtype=probs.dtype, device=probs.device)
        bins = torch.bucketize(conf, edges[1:-1])  # bin b holds conf in (edges[b], edges[b+1]]
    else:
        order = torch.argsort(conf, stable=True)
        bins = torch.empty_like(order)
        bins[order] = torch.arange(len(conf), device=conf.device) * int(n_bins) // len(conf)
    counts = torch.bincount(bins, minlength=int(n_bins)).to(probs.dtype)
    conf_sum = torch.zeros_like(counts).index_add_(0, bins, conf)
    acc_sum = torch.zeros_like(counts).index_add_(0, bins, correct)
    keep = counts > 0
    return ((conf_sum[keep] / counts[keep]).cpu().numpy(),
            (acc_sum[keep] / counts[keep]).cpu().numpy(), counts[keep].cpu().numpy())


def expected_calibration_error(dist: Categorical, y, n_bins: int = 15,
                               strategy: str = "uniform") -> float:
    """ECE = sum_b (n_b / N) |acc_b - conf_b| (Naeini et al. 2015; Guo et al. 2017 eq. 3)."""
    conf, acc, counts = reliability_curve(dist, y, n_bins, strategy)
    return float(np.sum(counts / counts.sum() * np.abs(acc - conf)))


def maximum_calibration_error(dist: Categorical, y, n_bins: int = 15,
                              strategy: str = "uniform") -> float:
    """MCE = max_b |acc_b - conf_b| over non-empty bins (Guo et al. 2017 eq. 5)."""
    conf, acc, _ = reliability_curve(dist, y, n_bins, strategy)
    return float(np.max(np.abs(acc - conf)))


def ood_auroc(score_in, score_out) -> float:
    """AUROC of telling out-of-distribution inputs from in-distribution ones by a score.

    Any uncertainty score works (predictive entropy, mutual information, predictive std);
    larger must mean "more likely OOD". Computed as the Mann-Whitney U statistic with
    average ranks for ties: AUROC = (R_out - n_out (n_out + 1) / 2) / (n_in n_out), the
    probability that a random OOD input scores above a random in-distribution one.
    """
    s_in = np.asarray(torch.as_tensor(score_in).detach().cpu(), dtype=np.float64).ravel()
    s_out = np.asarray(torch.as_tensor(score_out).detach().cpu(), dtype=np.float64).ravel()
    if s_in.size == 0 or s_out.size == 0:
        raise ValueError("ood_auroc needs at least one in-distribution and one OOD score.")
    if not (np.isfinite(s_in).all() and np.isfinite(s_out).all()):
        raise ValueError("ood_auroc: scores contain NaN or infinity.")
    ranks = rankdata(np.concatenate([s_in, s_out]))
    r_out = ranks[s_in.size:].sum()
    return float((r_out - s_out.size * (s_out.size + 1) / 2) / (s_in.size * s_out.size))


def predictive_quantile(dist: Distribution, q: float) -> torch.Tensor:
    """The q-quantile of each predictive distribution: ``icdf`` where torch has it, else
    bisection on the (monotone) ``cdf`` (e.g. for Monte-Carlo mixtures)."""
    try:
        return dist.icdf(torch.full_like(dist.mean, q))
    except NotImplementedError:
        pass
    width = 40 * dist.stddev + 1e-12
    lo, hi = dist.mean - width, dist.mean + width
    for _ in range(100):  # 2^-100 of the bracket: exact to floating point
        mid = 0.5 * (lo + hi)
        below = dist.cdf(mid) < q
        lo, hi = torch.where(below, mid, lo), torch.where(below, hi, mid)
    return 0.5 * (lo + hi)


def interval_coverage(dist: Distribution, y, level: float = 0.95) -> float:
    """Fraction of targets inside the central ``level`` predictive interval (ideally ``level``)."""
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}.")
    lower = predictive_quantile(dist, (1 - level) / 2)
    upper = predictive_quantile(dist, (1 + level) / 2)
    y = _targets(y, lower).to(lower.dtype)
    return ((y >= lower) & (y <= upper)).double().mean().item()


__all__ = [
    "accuracy", "brier_score", "encode_labels", "expected_calibration_error", "interval_coverage",
    "maximum_calibration_error", "negative_log_likelihood", "ood_auroc", "predictive_quantile",
    "reliability_curve", "rmse",
]
