"""Figures of the Bayesian deep learning section (one function per figure)."""

from __future__ import annotations

import numpy as np

from ._common import new_figure


def rotated_digit(angles, images, member_probs, entropy, mutual_info, classes):
    """MC-dropout softmax samples and predictive entropy of a digit rotated through ``angles``.

    Gal & Ghahramani (2016) Figure 4: ``member_probs`` (A, S, K) are the class probabilities
    of S sampled networks at each angle; ``classes`` picks the classes to scatter;
    ``images`` (A, 8, 8) are shown along the top.
    """
    fig = new_figure(1, 1, width=7.5, height=6.0)[0]
    fig.clear()
    grid = fig.add_gridspec(3, len(angles), height_ratios=[0.7, 2.2, 1.6])
    for i, img in enumerate(images):
        ax = fig.add_subplot(grid[0, i])
        ax.imshow(img, cmap="gray_r")
        ax.set_axis_off()
    ax_p = fig.add_subplot(grid[1, :])
    colors = ["C0", "C1", "C2", "C3", "C4"]
    S = member_probs.shape[1]
    for c, color in zip(classes, colors):
        jitter = np.repeat(angles[:, None], S, axis=1)
        ax_p.scatter(jitter.ravel(), member_probs[:, :, c].ravel(), s=4, alpha=0.25, color=color)
        ax_p.plot(angles, member_probs[:, :, c].mean(1), color=color, lw=2, label=f"class {c}")
    ax_p.set_ylabel("softmax output (samples)")
    ax_p.set_xticks(angles)
    ax_p.set_xticklabels([])
    ax_p.legend(fontsize=8, ncol=len(classes), loc="upper center")
    ax_e = fig.add_subplot(grid[2, :], sharex=ax_p)
    ax_e.plot(angles, entropy, "k-o", ms=3, label="predictive entropy")
    ax_e.plot(angles, mutual_info, "r--s", ms=3, label="mutual information (epistemic)")
    ax_e.set_xlabel("rotation angle (degrees)")
    ax_e.set_ylabel("nats")
    ax_e.set_xticks(angles)
    ax_e.set_xticklabels([f"{a:.0f}" for a in angles], fontsize=7)
    ax_e.legend(fontsize=8)
    return fig


def uncertainty_bands(x_train, y_train, x_grid, fits: dict, *, xlabel="x", ylabel="y"):
    """Predictive mean with aleatoric and total (aleatoric + epistemic) 2-sigma bands.

    ``fits`` maps a model name to ``(mean, aleatoric_var, epistemic_var)`` on ``x_grid``.
    The top row shows data and bands, the bottom row both standard deviations against x
    (Kendall & Gal 2017, Figure 1 style).
    """
    fig, axes = new_figure(2, len(fits), width=4.2, height=2.6, sharex=True)
    for j, (name, (mean, alea, epis)) in enumerate(fits.items()):
        top, bottom = axes[0][j], axes[1][j]
        sd_a, sd_t = np.sqrt(alea), np.sqrt(alea + epis)
        top.fill_between(x_grid, mean - 2 * sd_t, mean + 2 * sd_t, color="C0", alpha=0.25,
                         label="total (2 sd)")
        top.fill_between(x_grid, mean - 2 * sd_a, mean + 2 * sd_a, color="C1", alpha=0.35,
                         label="aleatoric (2 sd)")
        top.plot(x_train, y_train, "k.", ms=3, alpha=0.6)
        top.plot(x_grid, mean, "C3", lw=1.5, label="predictive mean")
        top.set_title(name, fontsize=9)
        top.set_ylabel(ylabel)
        bottom.plot(x_grid, np.sqrt(epis), "C0", label="epistemic sd")
        bottom.plot(x_grid, sd_a, "C1", label="aleatoric sd")
        bottom.set_xlabel(xlabel)
        bottom.set_ylabel("sd")
    axes[0][0].legend(fontsize=7, loc="upper left")
    axes[1][0].legend(fontsize=7, loc="upper left")
    return fig


def snr_pruning(snr_db, fractions, errors, *, baseline=None, floor_db: float = -40.0):
    """Histogram of BBB weight signal-to-noise ratios (dB) and test error against the pruned
    fraction (Blundell et al. 2015, Figure 4 and Table 2)."""
    fig, axes = new_figure(1, 2, width=4.0, height=3.2)
    ax_h, ax_e = axes[0]
    # weights driven to mu ~ 0 (e.g. from always-blank pixels) sit far left: pile them at the edge
    ax_h.hist(np.clip(snr_db, floor_db, None), bins=60, color="C0")
    ax_h.set_xlabel(f"SNR 10 log10(|mu| / sigma) in dB (<= {floor_db:g} at the left edge)")
    ax_h.set_ylabel("number of weights")
    ax_e.plot(100 * np.asarray(fractions), 100 * np.asarray(errors), "o-")
    if baseline is not None:
        ax_e.axhline(100 * baseline, color="grey", ls="--", lw=1, label="deterministic MLP")
        ax_e.legend(fontsize=8)
    ax_e.set_xlabel("weights removed (%)")
    ax_e.set_ylabel("test error (%)")
    return fig
