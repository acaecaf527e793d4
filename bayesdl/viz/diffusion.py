"""Figures of diffusion models: the forward and reverse chains, the noise schedules, the
guidance trade-off and the cost of ancestral against DDIM sampling."""

from __future__ import annotations

import numpy as np

from ._common import new_figure


def chains_figure(forward, reverse, timesteps, lo: float = 0.0, hi: float = 1.0):
    """Two rows of images at the same timesteps: the forward process noising one image
    (x_0 -> x_T, top) and the reverse chain denoising pure noise (x_T -> x_0, bottom).

    ``forward`` and ``reverse``: k images (H, W) at ``timesteps`` (the paper's t, ascending:
    0 is the data, T pure noise), shown on the data range [lo, hi] (the colour map clips
    values outside).
    """
    k = len(timesteps)
    fig, axes = new_figure(2, k, width=1.25, height=1.55)
    for row, (images, name) in enumerate(((forward, "forward q"), (reverse, "reverse p"))):
        for j, t in enumerate(timesteps):
            ax = axes[row, j]
            ax.imshow(np.asarray(images[j]), cmap="gray_r", vmin=lo, vmax=hi)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_xlabel(f"t = {t}", fontsize=8)
        axes[row, 0].set_ylabel(name, fontsize=9)
    axes[0, -1].set_title("x_T: noise", fontsize=8)
    axes[0, 0].set_title("x_0: data", fontsize=8)
    return fig


def schedules_figure(schedules: dict):
    """abar_t (the signal variance kept in x_t) against t/T for each named schedule."""
    fig, axes = new_figure(1, 1, width=4.6, height=3.2)
    ax = axes[0, 0]
    for k, (name, schedule) in enumerate(schedules.items()):
        abar = schedule.alphas_cumprod.numpy()
        ax.plot(np.arange(1, len(abar) + 1) / len(abar), abar, color=f"C{k}", label=name)
    ax.set_xlabel("t / T")
    ax.set_ylabel(r"$\bar\alpha_t$ (signal variance kept)")
    ax.legend(fontsize=8, loc="upper right")
    return fig


def guidance_figure(weights, fcd, fcd_floor, accuracy):
    """Sample quality (Frechet classifier distance, lower is better, with the real-data floor)
    and conditional accuracy against the classifier-free guidance weight w."""
    fig, axes = new_figure(1, 2, width=3.8, height=3.0)
    left, right = axes[0]
    left.plot(weights, fcd, "o-", color="C0", label="samples")
    left.axhline(fcd_floor, color="0.4", ls="--", lw=1, label="real held-out digits")
    left.set_xlabel("guidance weight w")
    left.set_ylabel("Frechet classifier distance")
    left.legend(fontsize=8, loc="best")
    right.plot(weights, 100 * np.asarray(accuracy), "o-", color="C2")
    right.set_xlabel("guidance weight w")
    right.set_ylabel("classified as the asked class (%)")
    right.set_ylim(0, 102)
    return fig


def samplers_figure(names, seconds_per_image, accuracy_percent):
    """Time per image (log scale) and conditional accuracy (%) of each sampler."""
    fig, axes = new_figure(1, 2, width=3.4, height=3.0)
    left, right = axes[0]
    colours = [f"C{k}" for k in range(len(names))]
    left.bar(names, seconds_per_image, color=colours)
    left.set_yscale("log")
    left.set_ylabel("seconds per image")
    left.set_xlabel("sampler")
    right.bar(names, accuracy_percent, color=colours)
    right.set_ylim(0, 105)
    right.set_ylabel("classified as the asked class (%)")
    right.set_xlabel("sampler")
    return fig
