"""Figures of the Gaussian-process section: prior/posterior samples, length-scales, CO2
forecast, sparse GP with its inducing points. Each returns a matplotlib Figure."""

from __future__ import annotations

import numpy as np

from ._common import new_figure


def _band(ax, x, mean, std, *, label="mean ± 2 sd", color="tab:blue"):
    ax.fill_between(x, mean - 2 * std, mean + 2 * std, color=color, alpha=0.18, label=label)
    ax.plot(x, mean, color=color, lw=1.8, label="mean")


def prior_posterior_figure(x_grid, prior, posterior, x_train, t_train):
    """Samples from the GP prior and posterior with their 2-sd bands (PRML Fig. 6.8 style).

    ``prior`` and ``posterior`` are dicts with ``mean``, ``std`` (G,) and ``samples`` (G, S).
    """
    fig, axes = new_figure(1, 2, width=5.0, height=3.6, sharey=True)
    for ax, part, title in ((axes[0, 0], prior, "prior"), (axes[0, 1], posterior, "posterior")):
        ax.plot(x_grid, part["samples"], color="tab:gray", lw=0.8, alpha=0.8)
        _band(ax, x_grid, part["mean"], part["std"])
        ax.set_title(f"GP {title}: samples and mean ± 2 sd")
        ax.set_xlabel("x")
    axes[0, 1].scatter(x_train, t_train, s=25, color="tab:red", zorder=3, label="data")
    axes[0, 0].set_ylabel("f(x)")
    axes[0, 1].legend(fontsize=8, loc="lower left")
    return fig


def length_scale_figure(x_grid, fits, x_train, t_train):
    """Posterior means and bands under several fixed length-scales (+ the evidence-optimal).

    ``fits``: list of dicts with ``title``, ``mean``, ``std``.
    """
    fig, axes = new_figure(1, len(fits), width=3.8, height=3.3, sharey=True)
    for ax, fit in zip(axes[0], fits):
        _band(ax, x_grid, fit["mean"], fit["std"])
        ax.scatter(x_train, t_train, s=14, color="tab:red", zorder=3, label="data")
        ax.set_title(fit["title"], fontsize=9)
        ax.set_xlabel("x")
    axes[0, 0].set_ylabel("y")
    axes[0, 0].legend(fontsize=7, loc="lower left")
    return fig


def co2_figure(year, co2, grid, mean, std, split):
    """Mauna Loa CO2 with the composite-kernel GP fit and its extrapolation past ``split``."""
    fig, axes = new_figure(width=9.0, height=3.8)
    ax = axes[0, 0]
    _band(ax, grid, mean, std, color="tab:orange")
    ax.scatter(year, co2, s=2, color="black", zorder=3, label="monthly mean (data)")
    ax.axvline(split, color="tab:gray", ls="--", lw=0.8, label="end of data")
    ax.set_xlabel("year")
    ax.set_ylabel("CO2 (ppm)")
    ax.set_title("Mauna Loa CO2: composite GP kernel, forecast with ± 2 sd")
    ax.legend(fontsize=8, loc="upper left")
    return fig


def sparse_figure(x, y, grid, panels):
    """Sparse GP fits on a large 1-D set; ``panels`` dicts: title, mean, std, inducing (M,), f_z (M,)."""
    fig, axes = new_figure(1, len(panels), width=5.0, height=3.6, sharey=True)
    shown = np.random.default_rng(0).choice(len(x), min(len(x), 2000), replace=False)
    for ax, panel in zip(axes[0], panels):
        ax.scatter(x[shown], y[shown], s=2, color="tab:gray", alpha=0.4, label="data (2,000 shown)")
        _band(ax, grid, panel["mean"], panel["std"], color="tab:green")
        ax.scatter(panel["inducing"], panel["f_z"], marker="x", color="tab:red", s=30, zorder=3,
                   label="inducing points")
        ax.set_title(panel["title"], fontsize=9)
        ax.set_xlabel("x")
    axes[0, 0].set_ylabel("y")
    axes[0, 0].legend(fontsize=7, loc="lower left")
    return fig
