"""Figures for Bayesian linear regression (PRML Figures 3.7, 3.8 and 3.14)."""

from __future__ import annotations

import numpy as np
from scipy.stats import multivariate_normal

from ._common import legend_outside, new_figure


def draw_predictive_band(ax, x_train, t_train, x_grid, mean, std, *, truth=None, title=""):
    """Data, predictive mean and a +-1 std band (and the true function when given)."""
    if truth is not None:
        ax.plot(x_grid, truth, color="tab:green", lw=1.5, label="truth")
    ax.fill_between(x_grid, mean - std, mean + std, color="tab:red", alpha=0.2, label="mean ± 1 std")
    ax.plot(x_grid, mean, color="tab:red", lw=1.5, label="predictive mean")
    ax.scatter(x_train, t_train, s=18, facecolors="none", edgecolors="tab:blue", label="data")
    ax.set_title(title)


def sequential_learning_figure(snapshots, true_w, *, x_range=(-1.0, 1.0)):
    """PRML Figure 3.7: the posterior over (w0, w1) and sampled lines as data arrive.

    ``snapshots`` is a list of dicts with keys ``n`` (points seen), ``mean`` (2,), ``cov``
    (2, 2), ``x`` and ``t`` (points seen) and ``samples`` (S, 2) drawn from the posterior.
    """
    fig, axes = new_figure(2, len(snapshots), width=2.8, height=2.8)
    w0, w1 = np.meshgrid(np.linspace(-1, 1, 120), np.linspace(-1, 1, 120))
    grid = np.stack([w0, w1], axis=-1)
    xs = np.linspace(*x_range, 50)
    for j, snap in enumerate(snapshots):
        top, bottom = axes[0, j], axes[1, j]
        top.contourf(w0, w1, multivariate_normal(snap["mean"], snap["cov"]).pdf(grid), levels=20,
                     cmap="jet")
        top.plot(*true_w, "w+", ms=12, mew=2)
        n = snap["n"]
        top.set_title(f"posterior after {n} point{'s' if n != 1 else ''}" if n else "prior")
        top.set_xlabel("$w_0$")
        top.set_ylabel("$w_1$")
        for w in snap["samples"]:
            bottom.plot(xs, w[0] + w[1] * xs, color="tab:red", lw=1)
        bottom.scatter(snap["x"], snap["t"], s=25, facecolors="none", edgecolors="tab:blue")
        bottom.set_xlim(*x_range)
        bottom.set_ylim(-1, 1)
        bottom.set_xlabel("x")
        bottom.set_ylabel("y = w0 + w1 x (posterior samples)", fontsize=8)
    return fig


def predictive_panels_figure(panels):
    """PRML Figure 3.8: one predictive-distribution panel per training-set size.

    ``panels`` is a list of dicts with the arguments of :func:`draw_predictive_band`.
    """
    fig, axes = new_figure(1, len(panels), width=3.0, height=2.8)
    for ax, panel in zip(axes[0], panels):
        draw_predictive_band(ax, **panel)
        ax.set(ylim=(-1.6, 1.6), xlabel="x", ylabel="t")
    legend_outside(axes[0, -1])
    return fig


def evidence_figure(degrees, curves):
    """PRML Figure 3.14: log evidence against polynomial degree, one line per setting."""
    fig, axes = new_figure(width=4.8, height=3.4)
    ax = axes[0, 0]
    for label, log_ev in curves.items():
        ax.plot(degrees, log_ev, "o-", label=label)
        ax.plot(degrees[int(np.argmax(log_ev))], np.max(log_ev), "k*", ms=12)
    ax.set_xlabel("polynomial degree M")
    ax.set_ylabel("ln p(t | M)")
    ax.legend(fontsize=8)
    return fig


def regression_figure(x_train, t_train, x_grid, mean, std, *, xlabel, ylabel, title):
    """A 1-D regression with its +-1 and +-2 std predictive bands."""
    fig, axes = new_figure(width=5.5, height=3.6)
    ax = axes[0, 0]
    ax.fill_between(x_grid, mean - 2 * std, mean + 2 * std, color="tab:red", alpha=0.12,
                    label="mean ± 2 std")
    draw_predictive_band(ax, x_train, t_train, x_grid, mean, std, title=title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=8)
    return fig


def logistic_contours_figure(X, y, xx, yy, p_map, p_moderated):
    """PRML Figure 4.14 style: MAP decision boundary and probability contours (left) against
    the probit-moderated predictive's contours (right) on a 2-D grid."""
    fig, axes = new_figure(1, 2, width=4.6, height=4.0, sharey=True)
    levels = [0.1, 0.3, 0.5, 0.7, 0.9]
    for ax, p, title in ((axes[0, 0], p_map, "MAP: sigma(w_MAP^T phi)"),
                         (axes[0, 1], p_moderated, "moderated: sigma(kappa(s^2) mu)")):
        filled = ax.contourf(xx, yy, p, levels=np.linspace(0, 1, 11), cmap="RdBu_r", alpha=0.35)
        lines = ax.contour(xx, yy, p, levels=levels, colors="k", linewidths=0.8)
        ax.clabel(lines, fontsize=7)
        for label, marker, colour in ((0, "o", "tab:blue"), (1, "s", "tab:red")):
            ax.scatter(*X[y == label].T, marker=marker, s=14, c=colour, edgecolors="k",
                       linewidths=0.3, label=f"class {label}")
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("x1")
    axes[0, 0].set_ylabel("x2")
    axes[0, 0].legend(fontsize=7, loc="lower left")
    fig.colorbar(filled, ax=axes[0, 1], label="p(class 1 | x)")
    return fig
