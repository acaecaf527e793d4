"""Figures of Bayesian optimisation: surrogate and acquisition over steps, regret curves."""

from __future__ import annotations

import numpy as np

from ._common import legend_outside, new_figure


def steps_figure(grid, truth, steps):
    """One column per step: GP mean +- 2 sd with the observations (top), acquisition (bottom).

    ``steps``: dicts with ``n`` (observations so far), ``mean``, ``std``, ``acq`` (over the
    grid), ``x``, ``y`` (observed) and ``next`` (the point chosen next).
    """
    fig, axes = new_figure(2, len(steps), width=3.6, height=2.6, sharex=True)
    for j, s in enumerate(steps):
        top, bottom = axes[0, j], axes[1, j]
        top.plot(grid, truth, color="0.5", lw=1, ls="--", label="objective")
        top.plot(grid, s["mean"], color="C0", label="GP mean")
        top.fill_between(grid, s["mean"] - 2 * s["std"], s["mean"] + 2 * s["std"], color="C0",
                         alpha=0.2, label="mean $\\pm$ 2 sd")
        top.scatter(s["x"], s["y"], color="k", s=14, zorder=3, label="observations")
        top.axvline(s["next"], color="C3", lw=1)
        top.set_title(f"after {s['n']} evaluations", fontsize=9)
        bottom.plot(grid, s["acq"], color="C2")
        # log EI dives to -inf at observed points; show the top 15 nats where the choice is made
        top_acq = np.max(s["acq"])
        bottom.set_ylim(top_acq - 15, top_acq + 1)
        bottom.axvline(s["next"], color="C3", lw=1, label="next point")
        bottom.set_xlabel("x")
        top.set_ylabel("f(x)")
        bottom.set_ylabel("log EI")
    legend_outside(axes[0, -1])
    legend_outside(axes[1, -1])
    return fig


def regret_figure(curves: dict, title: str):
    """Median (line) and inter-quartile band of simple regret against evaluations, log scale.

    ``curves`` maps a method name to an (n_seeds, n_evaluations) array of regrets.
    """
    fig, axes = new_figure(1, 1, width=5.5, height=3.6)
    ax = axes[0, 0]
    for k, (name, R) in enumerate(curves.items()):
        R = np.maximum(np.asarray(R), 1e-12)
        n = np.arange(1, R.shape[1] + 1)
        ax.plot(n, np.median(R, 0), color=f"C{k}", label=f"{name} (median)")
        ax.fill_between(n, np.quantile(R, 0.25, 0), np.quantile(R, 0.75, 0), color=f"C{k}",
                        alpha=0.2)
    ax.set_yscale("log")
    ax.set_xlabel("evaluations")
    ax.set_ylabel("simple regret (best found - minimum)")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8, loc="upper right")
    return fig
