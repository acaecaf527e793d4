"""Calibration figures for any classifier's predictive distribution."""

from __future__ import annotations

import numpy as np

from ..uncertainty import expected_calibration_error, reliability_curve
from ._common import legend_outside, new_figure


def reliability_diagram(dists: dict, y, n_bins: int = 15, strategy: str = "uniform",
                        ncols: int = 3):
    """One reliability diagram per model: accuracy against confidence of the top class.

    ``dists`` maps a model name to its ``Categorical`` predictive distribution on the same
    inputs, ``y`` holds the true class indices. Bars are per-bin accuracies (bins drawn at
    their mean confidence), the diagonal is perfect calibration, red is the gap, each title
    carries the ECE over the same ``n_bins`` bins (15 by default, as
    :func:`~bayesdl.uncertainty.expected_calibration_error`), and below each diagram a
    histogram counts the test points per confidence bin. Models fill ``ncols`` columns.
    """
    from matplotlib.figure import Figure

    ncols = min(ncols, len(dists))
    nrows = -(-len(dists) // ncols)
    fig = Figure(figsize=(3.4 * ncols, 4.0 * nrows), layout="constrained")
    grid = fig.add_gridspec(2 * nrows, ncols, height_ratios=[3, 1] * nrows)
    edges = np.linspace(0, 1, n_bins + 1)
    width = 1.0 / n_bins
    for i, (name, dist) in enumerate(dists.items()):
        row, col = divmod(i, ncols)
        ax = fig.add_subplot(grid[2 * row, col])
        conf, acc, counts = reliability_curve(dist, y, n_bins, strategy)
        ece = expected_calibration_error(dist, y, n_bins, strategy)
        ax.bar(conf, acc, width=width * 0.9, color="#4C72B0", edgecolor="k", lw=0.5,
               label="accuracy")
        ax.bar(conf, conf - acc, bottom=acc, width=width * 0.9, color="#DD5555", alpha=0.5,
               label="gap to the diagonal")
        ax.plot([0, 1], [0, 1], "k--", lw=1)
        ax.set(xlim=(0, 1), ylim=(0, 1), ylabel="accuracy")
        ax.set_title(f"{name}\nECE ({n_bins} bins) = {100 * ece:.2f}%", fontsize=9)
        ax.tick_params(labelbottom=False)
        hist = fig.add_subplot(grid[2 * row + 1, col], sharex=ax)
        hist.hist(np.asarray(dist.probs.max(-1).values.cpu()), bins=edges, color="grey")
        hist.set(xlabel="confidence (top-class probability)", ylabel="test points")
        if i == ncols - 1:
            legend_outside(ax)
    return fig


def interval_calibration(dists: dict, y, levels=None):
    """Regression reliability diagram: observed coverage of central predictive intervals
    against their nominal level (Kuleshov et al. 2018); the diagonal is perfect calibration.

    ``dists`` maps a model name to its predictive distribution on the same inputs ``y``.
    """
    from ..uncertainty import interval_coverage

    levels = np.linspace(0.05, 0.95, 10) if levels is None else np.asarray(levels)
    fig, axes = new_figure(1, 1, width=4.0, height=3.6)
    ax = axes[0][0]
    for name, dist in dists.items():
        observed = [interval_coverage(dist, y, float(level)) for level in levels]
        ax.plot(levels, observed, "o-", ms=3, label=name)
    ax.plot([0, 1], [0, 1], "k--", lw=1)
    ax.set_xlabel("nominal central-interval level")
    ax.set_ylabel("observed coverage")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.legend(fontsize=8)
    return fig
