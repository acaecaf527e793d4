"""``dnn_to_bnn``: turn the Linear, Conv2d and LSTM layers of a network into Bayesian ones."""

from __future__ import annotations

import copy
import warnings

import torch
from torch import nn

from .bayes_conv import BayesConv2d
from .bayes_linear import BayesLinear
from .bayes_rnn import BayesLSTM


def _inverse_softplus(sigma: torch.Tensor) -> torch.Tensor:
    # rho = log(exp(sigma) - 1), so that softplus(rho) = sigma
    return torch.log(torch.expm1(sigma))


def _bayesian_twin(layer: nn.Module, kw: dict):
    """The Bayesian layer matching ``layer`` and a map {its name: trained tensor}."""
    if isinstance(layer, nn.Linear):
        twin = BayesLinear(layer.in_features, layer.out_features, layer.bias is not None, **kw)
        return twin, {"weight": layer.weight, "bias": layer.bias}
    if isinstance(layer, nn.Conv2d):
        if layer.padding_mode != "zeros":
            raise ValueError(f"{layer} uses padding_mode={layer.padding_mode!r}; only 'zeros' "
                             "convolutions can be converted.")
        twin = BayesConv2d(layer.in_channels, layer.out_channels, layer.kernel_size,
                           layer.stride, layer.padding, layer.dilation, layer.groups,
                           layer.bias is not None, **kw)
        return twin, {"weight": layer.weight, "bias": layer.bias}
    if isinstance(layer, nn.LSTM):
        if layer.num_layers != 1 or layer.bidirectional or layer.proj_size:
            raise ValueError(
                f"{layer}: only single-layer, unidirectional LSTMs without projection can be "
                "converted; stack several nn.LSTM(num_layers=1) modules instead."
            )
        twin = BayesLSTM(layer.input_size, layer.hidden_size, layer.bias, layer.batch_first, **kw)
        bias = layer.bias_ih_l0 + layer.bias_hh_l0 if layer.bias else None
        return twin, {"weight_ih": layer.weight_ih_l0, "weight_hh": layer.weight_hh_l0,
                      "bias": bias}
    return None, None


def dnn_to_bnn(model: nn.Module, prior=None, *, sampling: str = "reparam", moped: bool = False,
               moped_delta: float = 0.1, posterior_rho_init: float = -5.0) -> nn.Module:
    """A copy of ``model`` with every ``nn.Linear``, ``nn.Conv2d`` and ``nn.LSTM`` made Bayesian.

    The trained weights are kept ONLY with ``moped=True``. With the default ``moped=False``
    every converted layer starts afresh: posterior means from the layer's random
    initialisation (as a new ``nn.Linear`` would), posterior standard deviations
    ``softplus(posterior_rho_init)``; the trained values are discarded, and a
    ``UserWarning`` says so. Use it to train a Bayesian twin of an architecture from scratch.

    With ``moped=True`` (Krishnan et al. 2020, "Specifying weight priors in Bayesian deep
    neural networks with empirical Bayes") the posterior means start at the trained weights
    and the posterior standard deviations at ``moped_delta * |w|``, so the converted network
    starts where the trained one ended.

    The original model is left untouched. A layer without a Bayesian counterpart
    (``nn.LSTM`` with ``num_layers > 1``, ...) raises a ``ValueError`` rather than silently
    staying deterministic. ``sampling`` is ``"reparam"`` (alias ``"reparameterization"``),
    ``"local"`` or ``"flipout"``; ``"local"`` applies to the linear layers, while
    convolutions and LSTMs, whose weights are shared across positions, get ``"flipout"``
    instead.
    """
    if moped and not moped_delta > 0:
        raise ValueError(f"moped_delta must be positive, got {moped_delta}.")
    if not moped:
        warnings.warn("dnn_to_bnn(moped=False) discards the trained weights: the Bayesian "
                      "layers start from a fresh random initialisation. Pass moped=True to "
                      "start the posterior means at the trained weights.", UserWarning,
                      stacklevel=2)
    model = copy.deepcopy(model)
    kw = {"prior": prior, "sampling": sampling, "posterior_rho_init": posterior_rho_init}
    return _convert(model, kw, moped, moped_delta)


def _convert(module: nn.Module, kw: dict, moped: bool, delta: float) -> nn.Module:
    layer_kw = dict(kw)
    if isinstance(module, (nn.LSTM, nn.Conv2d)) and kw["sampling"] == "local":
        layer_kw["sampling"] = "flipout"
    twin, trained = _bayesian_twin(module, layer_kw)
    if twin is None:
        for name, child in module.named_children():
            setattr(module, name, _convert(child, kw, moped, delta))
        return module
    ref = next(module.parameters())
    twin = twin.to(device=ref.device, dtype=ref.dtype)
    if moped:
        with torch.no_grad():
            for name, w in trained.items():
                if w is None:
                    continue
                getattr(twin, f"{name}_mu").copy_(w)
                sigma = (delta * w.abs()).clamp_min(1e-6)
                getattr(twin, f"{name}_rho").copy_(_inverse_softplus(sigma))
    return twin
