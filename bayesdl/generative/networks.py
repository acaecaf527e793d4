"""Encoder and decoder networks for autoencoders and VAEs: MLPs and small convnets.

The contracts (any module that keeps them can replace these):

- an encoder maps ``x`` (N, *data_shape) and an optional ``context`` (N, K) (a one-hot
  label of a conditional model) to (N, ``out_features``);
- a decoder maps a code ``z`` (N, L) and the optional ``context`` to likelihood parameters
  (N, *data_shape, P) (P per pixel; see :mod:`bayesdl.generative.likelihoods`).

``data_shape`` is ``(D,)`` for table rows and ``(C, H, W)`` for images. The MLPs take either
(they flatten); the convnets need images of at least 8x8: two stride-2 convolutions
(Radford et al. 2016 style, ReLU) take H x W to ceil(H/4) x ceil(W/4), and the decoder's two
stride-2 transposed convolutions go back up, cropping the result to H x W, so any size works.
The context joins the flattened input of an MLP and the flattened features of a convnet.
"""

from __future__ import annotations

import math

import torch
from torch import nn

MIN_IMAGE_SIZE = 8
_CONV_CHANNELS = (32, 64)


def _mlp(sizes: list[int]) -> nn.Sequential:
    """Linear layers of the given widths with ReLU between them (none after the last)."""
    layers = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def _with_context(h: torch.Tensor, context: torch.Tensor | None, n_context: int):
    if n_context == 0:
        return h
    if context is None or context.shape != (h.shape[0], n_context):
        got = None if context is None else tuple(context.shape)
        raise ValueError(f"this network is conditional: it needs a context of shape "
                         f"({h.shape[0]}, {n_context}) (one-hot labels), got {got}.")
    return torch.cat([h, context.to(h.dtype)], dim=-1)


def _check_input(x: torch.Tensor, data_shape: tuple, what: str) -> None:
    if tuple(x.shape[1:]) != tuple(data_shape):
        shape = ", ".join(map(str, data_shape))
        raise ValueError(f"this {what} was built for inputs of shape (N, {shape}) but got "
                         f"{tuple(x.shape)}: resize the data to the size it was fitted on.")


def check_image_shape(data_shape: tuple) -> None:
    """Refuse what a convolutional network cannot take: rows, or images under 8x8."""
    if len(data_shape) != 3:
        raise ValueError(f"a convolutional network needs images (C, H, W), got data of shape "
                         f"{tuple(data_shape)}; use architecture='mlp' for table rows.")
    if min(data_shape[1:]) < MIN_IMAGE_SIZE:
        raise ValueError(f"a convolutional network needs images of at least {MIN_IMAGE_SIZE}x"
                         f"{MIN_IMAGE_SIZE}, got {data_shape[1]}x{data_shape[2]}; use "
                         "architecture='mlp'.")


class MLPEncoder(nn.Module):
    """x (N, *data_shape) [+ context (N, K)] -> (N, out_features) through ReLU layers."""

    def __init__(self, data_shape, out_features: int, hidden_sizes=(256, 128), n_context: int = 0):
        super().__init__()
        self.data_shape, self.n_context = tuple(data_shape), int(n_context)
        self.net = _mlp([math.prod(self.data_shape) + self.n_context, *hidden_sizes, out_features])

    def forward(self, x, context=None):
        _check_input(x, self.data_shape, "encoder")
        return self.net(_with_context(x.flatten(1), context, self.n_context))  # (N, out)


class MLPDecoder(nn.Module):
    """z (N, L) [+ context (N, K)] -> (N, *data_shape, n_params) through ReLU layers."""

    def __init__(self, latent_dim: int, data_shape, n_params: int = 1, hidden_sizes=(128, 256),
                 n_context: int = 0):
        super().__init__()
        self.data_shape, self.n_params = tuple(data_shape), int(n_params)
        self.n_context = int(n_context)
        self.net = _mlp([int(latent_dim) + self.n_context, *hidden_sizes,
                         math.prod(self.data_shape) * self.n_params])

    def forward(self, z, context=None):
        out = self.net(_with_context(z, context, self.n_context))  # (N, D * P)
        return out.view(z.shape[0], *self.data_shape, self.n_params)


class ConvEncoder(nn.Module):
    """Images (N, C, H, W) [+ context] -> (N, out_features): two stride-2 3x3 convolutions,
    then a linear layer on the flattened (64, ceil(H/4), ceil(W/4)) features."""

    def __init__(self, data_shape, out_features: int, n_context: int = 0,
                 channels=_CONV_CHANNELS):
        super().__init__()
        check_image_shape(tuple(data_shape))
        self.data_shape, self.n_context = tuple(data_shape), int(n_context)
        c, h, w = self.data_shape
        c1, c2 = channels
        self.features = nn.Sequential(
            nn.Conv2d(c, c1, 3, stride=2, padding=1), nn.ReLU(),   # (N, c1, ceil(H/2), ceil(W/2))
            nn.Conv2d(c1, c2, 3, stride=2, padding=1), nn.ReLU(),  # (N, c2, ceil(H/4), ceil(W/4))
            nn.Flatten())
        n_flat = c2 * math.ceil(math.ceil(h / 2) / 2) * math.ceil(math.ceil(w / 2) / 2)
        self.head = nn.Linear(n_flat + self.n_context, out_features)

    def forward(self, x, context=None):
        _check_input(x, self.data_shape, "convolutional encoder")
        return self.head(_with_context(self.features(x), context, self.n_context))


class ConvDecoder(nn.Module):
    """z (N, L) [+ context] -> (N, C, H, W, n_params): a linear layer to (64, ceil(H/4),
    ceil(W/4)), two stride-2 4x4 transposed convolutions (x4 in size), cropped to H x W."""

    def __init__(self, latent_dim: int, data_shape, n_params: int = 1, n_context: int = 0,
                 channels=_CONV_CHANNELS):
        super().__init__()
        check_image_shape(tuple(data_shape))
        self.data_shape, self.n_params = tuple(data_shape), int(n_params)
        self.n_context = int(n_context)
        c, h, w = self.data_shape
        c1, c2 = channels
        self.base = (c2, math.ceil(h / 4), math.ceil(w / 4))
        self.head = nn.Sequential(nn.Linear(int(latent_dim) + self.n_context, math.prod(self.base)),
                                  nn.ReLU())
        self.up = nn.Sequential(
            nn.ConvTranspose2d(c2, c1, 4, stride=2, padding=1), nn.ReLU(),  # (N, c1, 2h0, 2w0)
            nn.ConvTranspose2d(c1, c * self.n_params, 4, stride=2, padding=1))  # (N, C P, 4h0, 4w0)

    def forward(self, z, context=None):
        c, h, w = self.data_shape
        out = self.up(self.head(_with_context(z, context, self.n_context)).view(-1, *self.base))
        out = out[:, :, :h, :w].reshape(z.shape[0], self.n_params, c, h, w)
        return out.permute(0, 2, 3, 4, 1)  # (N, C, H, W, P)


def make_networks(architecture: str, data_shape, latent_dim: int, encoder_outputs: int,
                  n_params: int, hidden_sizes=(256, 128), n_context: int = 0):
    """(encoder, decoder) of ``architecture`` ``"mlp"`` or ``"conv"``; the MLP decoder mirrors
    the encoder's hidden widths."""
    if architecture == "mlp":
        hidden = [int(h) for h in hidden_sizes]
        return (MLPEncoder(data_shape, encoder_outputs, hidden, n_context),
                MLPDecoder(latent_dim, data_shape, n_params, hidden[::-1], n_context))
    if architecture == "conv":
        return (ConvEncoder(data_shape, encoder_outputs, n_context),
                ConvDecoder(latent_dim, data_shape, n_params, n_context))
    raise ValueError(f"architecture must be 'mlp' or 'conv', got {architecture!r}.")


__all__ = ["ConvDecoder", "ConvEncoder", "MLPDecoder", "MLPEncoder", "check_image_shape",
           "make_networks"]
