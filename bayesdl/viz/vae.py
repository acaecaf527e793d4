"""Figures for autoencoders and VAEs: the learned manifold, image strips, ELBO against the
importance-weighted bound."""

from __future__ import annotations

import numpy as np

from ._common import new_figure


def _mosaic(images: np.ndarray, pad: float = 0.0) -> np.ndarray:
    """Tile images (rows, cols, H, W) into one (rows H + gaps, cols W + gaps) array, one pixel
    of ``pad`` between tiles."""
    r, c, h, w = images.shape
    out = np.full((r * (h + 1) - 1, c * (w + 1) - 1), pad, dtype=float)
    for i in range(r):
        for j in range(c):
            out[i * (h + 1): i * (h + 1) + h, j * (w + 1): j * (w + 1) + w] = images[i, j]
    return out


def latent_manifold(images, z1, z2, title: str):
    """Kingma & Welling (2014) Figure 4: decoded means E[x | z] on a grid of a 2-D latent
    space. ``images`` (len(z2), len(z1), H, W): row i decodes z_2 = z2[i] (top = largest)."""
    images = np.asarray(images)
    fig, axes = new_figure(1, 1, width=5.6, height=5.4)
    ax = axes[0, 0]
    ax.imshow(_mosaic(images[::-1], pad=1.0), cmap="gray_r", vmin=0, vmax=1)
    n2, n1, h, w = images.shape
    ax.set_xticks(np.arange(n1) * (w + 1) + (w - 1) / 2, [f"{v:.1f}" for v in z1])
    ax.set_yticks(np.arange(n2) * (h + 1) + (h - 1) / 2, [f"{v:.1f}" for v in z2[::-1]])
    ax.tick_params(labelsize=7)
    ax.set(title=title, xlabel="z_1", ylabel="z_2")
    return fig


def image_rows(rows, row_labels, title: str, *, width: float = 9.0):
    """Strips of images, one per row (``rows[r]`` is (n, H, W) in [0, 1]), labelled on the left."""
    fig, axes = new_figure(len(rows), 1, width=width, height=max(0.75, width / len(rows[0]) * 0.9))
    for ax, images, label in zip(axes[:, 0], rows, row_labels):
        ax.imshow(_mosaic(np.asarray(images)[None], pad=1.0), cmap="gray_r", vmin=0, vmax=1)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_ylabel(label, rotation=0, ha="right", va="center", fontsize=9)
    axes[0, 0].set_title(title)
    return fig


def bound_curve(ks, iwae_mean, iwae_se, elbo_mean, elbo_se, *, title: str):
    """The importance-weighted bound L_k (mean over test images, +- 2 standard errors)
    against k on a log axis, with the ELBO as a horizontal band: L_1 = ELBO <= L_k."""
    ks, m, se = np.asarray(ks), np.asarray(iwae_mean), np.asarray(iwae_se)
    fig, axes = new_figure(1, 1, width=6.0, height=3.8)
    ax = axes[0, 0]
    ax.axhspan(elbo_mean - 2 * elbo_se, elbo_mean + 2 * elbo_se, color="tab:red", alpha=0.2,
               lw=0)
    ax.axhline(elbo_mean, color="tab:red", lw=1.2, label="ELBO")
    ax.errorbar(ks, m, yerr=2 * se, fmt="o-", color="tab:blue", ms=4, capsize=3,
                label="IWAE estimate L_k")
    ax.set_xscale("log")
    ax.set(title=title, xlabel="importance samples k", ylabel="mean log-likelihood (nats)")
    ax.legend(loc="lower right")
    return fig


__all__ = ["bound_curve", "image_rows", "latent_manifold"]
