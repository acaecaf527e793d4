"""Figures for autoencoders and VAEs: the learned 2-D manifold (Kingma & Welling 2014,
Figure 4) and the ELBO against the importance-weighted bound (Burda et al. 2015). Image grids
and latent scatters are :func:`bayesdl.viz.generative.image_grid` and
:func:`bayesdl.viz.decomposition.latent_scatter`."""

from __future__ import annotations

import numpy as np

from ._common import new_figure
from .generative import image_grid


def latent_manifold(images, z1, z2, title: str):
    """Decoded means E[x | z] on a grid of a 2-D latent space, labelled by the z values.

    ``images`` (len(z2), len(z1), H, W): row i decodes z_2 = z2[i]; drawn with the largest
    z_2 at the top, as a plot's y axis.
    """
    images = np.asarray(images)
    n2, n1, h, w = images.shape
    fig = image_grid(images[::-1].reshape(n1 * n2, h, w), nrow=n1, title=title, scale=0.38)
    ax = fig.axes[0]
    def labels(values):  # one decimal, and no "-0.0" for a value within round-off of 0
        return [f"{round(v, 1) + 0.0:.1f}" for v in values]

    ax.set_xticks(np.arange(n1) * (w + 1) + (w - 1) / 2, labels(z1))
    ax.set_yticks(np.arange(n2) * (h + 1) + (h - 1) / 2, labels(z2[::-1]))
    ax.tick_params(labelsize=7, length=2)
    ax.set(xlabel="z_1", ylabel="z_2")
    return fig


def bound_curve(ks, iwae_mean, gain_se, elbo_mean, *, title: str):
    """The importance-weighted bound L_k (mean over test images) against k on a log axis,
    the ELBO as a horizontal line: L_1 estimates the ELBO and L_k rises towards log p(x).
    Error bars: 2 standard errors of the mean gain L_k - ELBO over the images."""
    ks, m, se = np.asarray(ks), np.asarray(iwae_mean), np.asarray(gain_se)
    fig, axes = new_figure(1, 1, width=6.0, height=3.8)
    ax = axes[0, 0]
    ax.axhline(elbo_mean, color="tab:red", lw=1.2, label="ELBO")
    ax.errorbar(ks, m, yerr=2 * se, fmt="o-", color="tab:blue", ms=4, capsize=3,
                label="IWAE estimate L_k")
    ax.set_xscale("log")
    ax.set(title=title, xlabel="importance samples k",
           ylabel="mean over test images (nats)")
    ax.legend(loc="lower right")
    return fig


__all__ = ["bound_curve", "latent_manifold"]
