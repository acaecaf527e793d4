"""Signal-to-noise pruning of Bayes-by-Backprop weights (Blundell et al. 2015, section 5.1)."""

from __future__ import annotations

import torch
from torch import nn

from ._variational import BayesModule


def _weight_names(layer: BayesModule) -> list[str]:
    return [n for n in layer.variational_names() if n.startswith("weight")]


def signal_to_noise(model: nn.Module) -> torch.Tensor:
    """|mu| / sigma of every (unpruned) weight of every Bayesian layer, concatenated (1-D).

    Blundell et al. plot it in decibels, 10 log10(|mu| / sigma) (their Figure 4).
    """
    parts = []
    for layer in model.modules():
        if isinstance(layer, BayesModule):
            for name in _weight_names(layer):
                snr = getattr(layer, f"{name}_mu").abs() / layer.posterior_std(name)
                mask = layer.mask(name)
                parts.append((snr if mask is None else snr[mask.bool()]).detach().reshape(-1))
    if not parts:
        raise ValueError("the model has no Bayesian layers; convert it with dnn_to_bnn first.")
    return torch.cat(parts)


@torch.no_grad()
def signal_to_noise_prune(model: nn.Module, fraction: float) -> float:
    """Remove (set to exactly zero) the ``fraction`` of weights with the lowest SNR, in place.

    The threshold is global over all Bayesian layers, as in Blundell et al.'s Table 2. Pruned
    weights are masked: they contribute neither to the output nor to the KL. Returns the SNR
    threshold below which weights were removed. Biases are kept.
    """
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"fraction must be in [0, 1), got {fraction}.")
    snr = signal_to_noise(model)
    n_prune = int(round(fraction * snr.numel()))
    if n_prune == 0:
        return 0.0
    # the n_prune-th smallest SNR; ties at the threshold are all pruned
    threshold = torch.kthvalue(snr.double().cpu(), n_prune).values.item()
    for layer in model.modules():
        if isinstance(layer, BayesModule):
            for name in _weight_names(layer):
                snr_w = getattr(layer, f"{name}_mu").abs() / layer.posterior_std(name)
                keep = snr_w.double() > threshold
                old = layer.mask(name)
                layer.set_mask(name, keep if old is None else keep & old.bool())
    return threshold
