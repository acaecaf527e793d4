"""Bayesian 2-D convolution (Bayes by Backprop; reparameterisation or flipout)."""

from __future__ import annotations

import math

import torch.nn.functional as F
from torch import nn
from torch.nn.modules.utils import _pair

from ._variational import BayesAffine


class BayesConv2d(BayesAffine):
    """A drop-in for ``nn.Conv2d`` whose kernel and bias have a Gaussian posterior.

    Samplings: ``"reparam"`` and ``"flipout"`` (signs per example and channel, so an example's
    output pixels stay correlated through their shared kernel). The local reparameterisation
    trick is not offered: sampling each output pixel independently would drop exactly that
    correlation, a different model from a posterior over the kernel.
    Arguments are ``nn.Conv2d``'s plus ``prior``, ``sampling``, ``posterior_rho_init`` and
    ``kl_samples`` as in :class:`~bayesdl.nn.BayesLinear`.
    """

    supported_samplings = ("reparam", "flipout")

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 dilation=1, groups: int = 1, bias: bool = True, *, prior=None,
                 sampling: str = "reparam", posterior_rho_init: float = -5.0,
                 kl_samples: int = 1):
        super().__init__(prior, sampling, posterior_rho_init, kl_samples)
        if in_channels % groups or out_channels % groups:
            raise ValueError(
                f"in_channels ({in_channels}) and out_channels ({out_channels}) must both be "
                f"divisible by groups ({groups})."
            )
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.kernel_size, self.stride = _pair(kernel_size), _pair(stride)
        self.padding = padding if isinstance(padding, str) else _pair(padding)
        self.dilation, self.groups = _pair(dilation), int(groups)
        self._add_variational(
            "weight", (self.out_channels, self.in_channels // self.groups, *self.kernel_size)
        )
        if bias:
            self._add_variational("bias", (self.out_channels,))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.kaiming_uniform_(self.weight_mu, a=math.sqrt(5))
        if "bias" in self._variational:
            fan_in = self.weight_mu[0].numel()
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
            nn.init.uniform_(self.bias_mu, -bound, bound)

    def _op(self, x, weight, bias):
        return F.conv2d(x, weight, bias, self.stride, self.padding, self.dilation, self.groups)

    def _bias_view(self, bias):
        return bias[:, None, None]  # (C, 1, 1) against (N, C, H, W)

    def _channel_dim(self, t):
        return 1 if t.dim() == 4 else 0  # (N, C, H, W), or unbatched (C, H, W)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}, {super().extra_repr()}")
