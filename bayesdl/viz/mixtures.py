"""Figures for K-means and Gaussian mixtures (PRML chapter 9 and section 10.2)."""

from __future__ import annotations

import numpy as np
from matplotlib.patches import Ellipse

from ._common import legend_outside, new_figure

_COLORS = np.array([[0.85, 0.1, 0.1], [0.1, 0.2, 0.85], [0.1, 0.65, 0.2]])  # red, blue, green


def _ellipse(ax, mean, cov, color, n_std: float = 1.0, **kw) -> None:
    """The ``n_std`` contour of N(mean, cov) (2-D)."""
    values, vectors = np.linalg.eigh(cov)
    angle = np.degrees(np.arctan2(vectors[1, -1], vectors[0, -1]))
    width, height = 2 * n_std * np.sqrt(values[::-1])
    ax.add_patch(Ellipse(mean, width, height, angle=angle, fill=False, color=color, lw=2, **kw))


def _blend(resp: np.ndarray) -> np.ndarray:
    """Colour each point by mixing the component colours with its responsibilities."""
    return np.clip(resp @ _COLORS[: resp.shape[1]], 0, 1)


def em_steps(X, snapshots, titles, *, xlabel="x1", ylabel="x2"):
    """PRML Figure 9.8: EM on a two-component mixture, one panel per stage.

    ``snapshots`` holds ``(means (K, 2), covariances (K, 2, 2), responsibilities (N, K))``
    per panel; points are coloured by their responsibilities (red/blue mixed).
    """
    fig, axes = new_figure(1, len(snapshots), width=2.9, height=3.0)
    for ax, (means, covs, resp), title in zip(axes[0], snapshots, titles):
        ax.scatter(X[:, 0], X[:, 1], s=8, c=_blend(resp), edgecolors="none")
        for k in range(len(means)):
            _ellipse(ax, means[k], covs[k], _COLORS[k])
        ax.set(title=title, xlim=(-2.5, 2.5), ylim=(-2.5, 2.5), aspect="equal",
               xlabel=xlabel, ylabel=ylabel)
        ax.set_xticks([-2, 0, 2])
        ax.set_yticks([-2, 0, 2])
    return fig


def kmeans_objective(J_e, J_m):
    """PRML Figure 9.2: the K-means objective J after each E step and each M step."""
    fig, axes = new_figure(width=5.0, height=3.2)
    ax = axes[0, 0]
    steps = np.arange(1, 2 * len(J_e) + 1)
    J = np.ravel(np.column_stack([J_e, J_m]))
    ax.plot(steps, J, color="0.4", lw=1)
    ax.plot(steps[::2], J_e, "o", color="tab:blue", label="after E step (assign)")
    ax.plot(steps[1::2], J_m, "o", color="tab:red", label="after M step (re-centre)")
    ax.set(xlabel="step", ylabel="J", title="K-means objective J (PRML 9.1)")
    ax.legend()
    return fig


def responsibilities(X, resp, means, covs):
    """PRML Figure 9.5(c): each point coloured by its responsibilities (red, blue, green)."""
    fig, axes = new_figure(width=4.5, height=4.0)
    ax = axes[0, 0]
    ax.scatter(X[:, 0], X[:, 1], s=10, c=_blend(resp), edgecolors="none")
    for k in range(len(means)):
        _ellipse(ax, means[k], covs[k], "0.2", n_std=2.0, ls="--")
    ax.set(title="responsibilities gamma(z_nk)", xlabel="x1", ylabel="x2")
    return fig


def vb_pruning(X, weights, means, covs, threshold):
    """The variational GMM: learned weights (bars) and the active components' 2-sigma
    ellipses on the data."""
    fig, axes = new_figure(1, 2, width=4.3, height=3.6)
    left, right = axes[0]
    active = weights > threshold
    left.bar(np.arange(len(weights)), weights, color=np.where(active, "tab:blue", "0.7"))
    left.axhline(threshold, color="tab:red", ls=":", label=f"threshold {threshold:g}")
    left.set(xlabel="component k", ylabel="E[pi_k]", title="learned weights",
             xticks=range(len(weights)))
    legend_outside(left)
    right.scatter(X[:, 0], X[:, 1], s=6, color="0.5", edgecolors="none")
    for k in np.flatnonzero(active):
        _ellipse(right, means[k], covs[k], "tab:blue", n_std=2.0)
    right.set(title=f"{int(active.sum())} active of {len(weights)} components", xlabel="x1",
              ylabel="x2")
    return fig
