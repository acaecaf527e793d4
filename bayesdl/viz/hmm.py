"""Figures for hidden Markov models and the linear dynamical system (PRML chapter 13)."""

from __future__ import annotations

import numpy as np
from scipy.stats import norm

from ._common import new_figure

_STATE_COLORS = ["tab:blue", "tab:red", "tab:green", "tab:purple", "tab:orange"]


def viterbi_path(x, states, means, *, ylabel: str):
    """A 1-D series with each step coloured by its Viterbi state and the state means as a
    step line: the decoded path over the series."""
    fig, axes = new_figure(width=10, height=3.4)
    ax = axes[0, 0]
    t = np.arange(len(x))
    ax.plot(t, x, color="0.75", lw=0.8, zorder=1)
    for k in np.unique(states):
        on = states == k
        ax.scatter(t[on], x[on], s=12, color=_STATE_COLORS[k % 5], zorder=2,
                   label=f"state {k} (mean {means[k]:.2f})")
    ax.step(t, means[states], where="mid", color="k", lw=1, alpha=0.6, label="Viterbi state mean")
    ax.set_xlabel("eruption number")
    ax.set_ylabel(ylabel)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    return fig


def state_densities(x, means, variances, occupancy, *, xlabel: str):
    """Histogram of the observations with each state's Gaussian density, weighted by the
    fraction of time spent in the state, and their sum."""
    fig, axes = new_figure(width=6, height=3.6)
    ax = axes[0, 0]
    ax.hist(x, bins=30, density=True, color="0.85", edgecolor="0.6", label="observations")
    grid = np.linspace(x.min() - 0.5, x.max() + 0.5, 400)
    total = np.zeros_like(grid)
    for k, (m, v, w) in enumerate(zip(means, variances, occupancy)):
        density = w * norm(m, np.sqrt(v)).pdf(grid)
        total += density
        ax.plot(grid, density, color=_STATE_COLORS[k % 5], lw=2,
                label=f"state {k}: {w:.2f} N({m:.2f}, {np.sqrt(v):.2f}^2)")
    ax.plot(grid, total, "k--", lw=1, label="sum")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("density")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    return fig


def local_level(t, y, smoothed, smoothed_std, t_future, forecast, lower, upper, *,
                ylabel: str, level: float = 0.95):
    """A local-level model: the series, its smoothed level with a band, and the forecast
    with its predictive band."""
    fig, axes = new_figure(width=10, height=3.6)
    ax = axes[0, 0]
    z = norm.ppf(0.5 + level / 2)
    ax.plot(t, y, "o", ms=3, color="0.4", label="observed")
    ax.plot(t, smoothed, color="tab:blue", lw=2, label="smoothed level")
    ax.fill_between(t, smoothed - z * smoothed_std, smoothed + z * smoothed_std,
                    color="tab:blue", alpha=0.2, label=f"{level:.0%} band of the level")
    ax.plot(t_future, forecast, color="tab:red", lw=2, label="forecast")
    ax.fill_between(t_future, lower, upper, color="tab:red", alpha=0.2,
                    label=f"{level:.0%} predictive band")
    ax.set_xlabel("year")
    ax.set_ylabel(ylabel)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    return fig
