"""Figures of generative adversarial networks: training curves against sample quality."""

from __future__ import annotations

import numpy as np

from ._common import new_figure


def gan_training_curves(wasserstein, quality: dict, *, floor: float, noise: float,
                        metric: str = "FCD", critic: str = "WGAN-GP"):
    """Left: the critic's Wasserstein estimate per epoch; right: sample quality during training.

    ``wasserstein``: (epochs,) the critic's per-epoch estimate E f(x) - E f(G(z));
    ``quality``: ``{model: (epochs (K,), values (K,))}``, e.g. the Fréchet classifier
    distance every few epochs (lower is better), drawn on a log axis between the real-data
    ``floor`` and the value of uniform ``noise`` images (dashed lines).
    """
    fig, axes = new_figure(1, 2, width=4.6, height=3.4)
    ax = axes[0][0]
    epochs = np.arange(1, len(wasserstein) + 1)
    ax.plot(epochs, wasserstein, color="C2", marker="o", markersize=3)
    ax.set_xlabel("epoch")
    ax.set_ylabel(f"{critic} critic: Wasserstein estimate")
    ax.set_title("the critic's distance estimate falls")
    ax = axes[0][1]
    for k, (name, (ep, values)) in enumerate(quality.items()):
        ax.plot(ep, values, marker="o", markersize=3, color=f"C{k}", label=name)
    ax.axhline(floor, color="black", linestyle="--", linewidth=1)
    ax.axhline(noise, color="grey", linestyle="--", linewidth=1)
    ax.set_yscale("log")
    right = max(max(ep) for ep, _ in quality.values())
    ax.text(right, floor * 1.08, "real-data floor", ha="right", va="bottom", fontsize=8)
    ax.text(right, noise * 0.92, "uniform noise", ha="right", va="top", fontsize=8,
            color="grey")
    ax.set_xlabel("epoch")
    ax.set_ylabel(f"{metric} to held-out digits (log)")
    ax.set_title("sample quality rises")
    ax.legend(loc="upper center", fontsize=8, frameon=False, ncol=len(quality),
              bbox_to_anchor=(0.5, -0.18))
    return fig
