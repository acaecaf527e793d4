"""Figures for PCA, probabilistic PCA and Bayesian PCA (PRML chapter 12)."""

from __future__ import annotations

import matplotlib
import numpy as np
from matplotlib.patches import Rectangle

from ._common import new_figure


def latent_scatter(Z, labels, title: str):
    """2-D latent coordinates coloured by class, with a legend beside the axes."""
    fig, axes = new_figure(1, 1, width=6.2, height=4.6)
    ax = axes[0, 0]
    cmap = matplotlib.colormaps["tab10"]
    for c in np.unique(labels):
        rows = labels == c
        ax.scatter(Z[rows, 0], Z[rows, 1], s=6, color=cmap(int(c) % 10), label=str(c), alpha=0.7)
    ax.set(title=title, xlabel="E[z_1 | x]", ylabel="E[z_2 | x]")
    ax.legend(title="digit", loc="upper left", bbox_to_anchor=(1.01, 1.0), markerscale=2,
              frameon=False)
    return fig


def explained_variance(ratio):
    """Explained variance ratio per component (bars) and its running sum (line)."""
    fig, axes = new_figure(1, 1, width=6.0, height=3.4)
    ax = axes[0, 0]
    k = np.arange(1, len(ratio) + 1)
    ax.bar(k, ratio, color="tab:blue", label="per component")
    ax.plot(k, np.cumsum(ratio), "o-", color="tab:red", ms=3, label="cumulative")
    ax.set(xlabel="principal component", ylabel="fraction of variance", ylim=(0, 1.02))
    ax.legend(loc="center right")
    return fig


def hinton(matrices, titles):
    """Hinton diagrams (PRML Figure 12.14): each entry a square whose area is its magnitude,
    white positive, black negative, on grey; one panel per matrix (D rows, q columns)."""
    fig, axes = new_figure(1, len(matrices), width=3.0, height=3.6)
    for ax, W, title in zip(axes[0], matrices, titles):
        W = np.asarray(W)
        scale = np.abs(W).max() or 1.0
        ax.set_facecolor("0.55")
        for (i, j), w in np.ndenumerate(W):
            side = np.sqrt(abs(w) / scale)
            ax.add_patch(Rectangle(
                (j - side / 2, i - side / 2), side, side, color="white" if w > 0 else "black"))
        ax.set(title=title, xlim=(-0.6, W.shape[1] - 0.4), ylim=(W.shape[0] - 0.4, -0.6),
               aspect="equal", xlabel="latent dimension (column of W)", ylabel="feature")
        ax.set_xticks(range(W.shape[1]))
        ax.set_yticks(range(W.shape[0]))
    return fig


def imputed_images(rows, titles, row_labels, shape=(8, 8)):
    """A grid of images: one row per method (``rows[r]`` is (n, H*W), NaN shown red)."""
    n = rows[0].shape[0]
    fig, axes = new_figure(len(rows), n, width=1.1, height=1.25)
    for r, (images, label) in enumerate(zip(rows, row_labels)):
        for c in range(n):
            ax = axes[r, c]
            img = np.ma.masked_invalid(images[c].reshape(shape))
            cmap = matplotlib.colormaps["gray_r"].with_extremes(bad="tab:red")
            ax.imshow(img, cmap=cmap, vmin=0, vmax=16)
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(label, fontsize=8)
            if r == 0 and titles:
                ax.set_title(titles[c], fontsize=8)
    return fig
