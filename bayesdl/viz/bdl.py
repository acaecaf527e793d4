"""Figures of the Bayesian deep learning section (one function per figure)."""

from __future__ import annotations

import numpy as np

from ._common import legend_outside, new_figure


def rotated_digit(angles, images, accuracy, confidence, entropy, mutual_info):
    """Test digits rotated through ``angles``: accuracy against confidence, and the predictive
    entropy and mutual information (means over the test digits), after Gal & Ghahramani
    (2016) Figure 4. ``images`` (A, 8, 8) show one rotated digit along the top."""
    fig = new_figure(1, 1, width=8.0, height=6.0)[0]
    fig.clear()
    grid = fig.add_gridspec(3, len(angles), height_ratios=[0.7, 1.8, 1.8])
    for i, img in enumerate(images):
        ax = fig.add_subplot(grid[0, i])
        ax.imshow(img, cmap="gray_r")
        ax.set_axis_off()
    ax_a = fig.add_subplot(grid[1, :])
    ax_a.plot(angles, 100 * np.asarray(accuracy), "C0-o", ms=3, label="accuracy")
    ax_a.plot(angles, 100 * np.asarray(confidence), "C3--s", ms=3,
              label="mean top-class probability")
    ax_a.set_ylabel("%")
    ax_a.set_ylim(0, 100)
    ax_a.tick_params(labelbottom=False)
    legend_outside(ax_a)
    ax_e = fig.add_subplot(grid[2, :], sharex=ax_a)
    ax_e.plot(angles, entropy, "k-o", ms=3, label="predictive entropy")
    ax_e.plot(angles, mutual_info, "C2--s", ms=3, label="mutual information (epistemic)")
    ax_e.set_xlabel("rotation angle (degrees)")
    ax_e.set_ylabel("mean over test digits (nats)")
    ax_e.set_xticks(angles)
    ax_e.set_ylim(0, None)
    legend_outside(ax_e)
    return fig


def uncertainty_bands(x_train, y_train, x_grid, fits: dict, *, noise_sd=None, xlabel="x",
                      ylabel="y"):
    """Predictive mean with aleatoric and total (aleatoric + epistemic) 2-sigma bands.

    ``fits`` maps a model name to ``(mean, aleatoric_var, epistemic_var)`` on ``x_grid``.
    The top row shows data and bands (aleatoric filled, total as an outline so it stays
    visible where it barely exceeds the aleatoric band), the bottom row both standard
    deviations against x, with the true noise sd ``noise_sd`` on ``x_grid`` when known
    (Kendall & Gal 2017, Figure 1 style).
    """
    fig, axes = new_figure(2, len(fits), width=4.2, height=2.6, sharex=True)
    for j, (name, (mean, alea, epis)) in enumerate(fits.items()):
        top, bottom = axes[0][j], axes[1][j]
        sd_a, sd_t = np.sqrt(alea), np.sqrt(alea + epis)
        top.fill_between(x_grid, mean - 2 * sd_a, mean + 2 * sd_a, color="C1", alpha=0.35,
                         lw=0, label="aleatoric (2 sd)")
        top.plot(x_grid, mean - 2 * sd_t, "C0", lw=1.2, label="total (2 sd)")
        top.plot(x_grid, mean + 2 * sd_t, "C0", lw=1.2)
        top.plot(x_train, y_train, "k.", ms=3, alpha=0.6, label="data")
        top.plot(x_grid, mean, "C3", lw=1.5, label="predictive mean")
        top.set_title(name, fontsize=9)
        top.set_ylabel(ylabel)
        bottom.plot(x_grid, np.sqrt(epis), "C0", label="epistemic sd")
        bottom.plot(x_grid, sd_a, "C1", label="aleatoric sd")
        if noise_sd is not None:
            bottom.plot(x_grid, noise_sd, "k:", label="true noise sd")
        bottom.set_xlabel(xlabel)
        bottom.set_ylabel("sd")
        bottom.set_ylim(0, None)
    legend_outside(axes[0][-1])
    legend_outside(axes[1][-1])
    return fig


def snr_pruning(snr_db, fractions, errors, *, baseline=None, floor_db: float = -40.0):
    """Histogram of BBB weight signal-to-noise ratios (dB) and test error against the pruned
    fraction (Blundell et al. 2015, Figure 4 and Table 2)."""
    fig, axes = new_figure(1, 2, width=4.0, height=3.2)
    ax_h, ax_e = axes[0]
    # weights driven to mu ~ 0 (e.g. from always-blank pixels) sit far left: pile them at the edge
    ax_h.hist(np.clip(snr_db, floor_db, None), bins=60, color="C0")
    ax_h.set_xlabel("SNR = 10 log10(|mu| / sigma) (dB)")
    ax_h.set_title(f"SNR <= {floor_db:g} dB piled at the left edge", fontsize=9)
    ax_h.set_ylabel("number of weights")
    ax_e.plot(100 * np.asarray(fractions), 100 * np.asarray(errors), "o-")
    if baseline is not None:
        ax_e.axhline(100 * baseline, color="grey", ls="--", lw=1, label="deterministic MLP")
        legend_outside(ax_e)
    ax_e.set_xlabel("weights removed (%)")
    ax_e.set_ylabel("test error (%)")
    return fig
