"""Calibration figures for any classifier's predictive distribution."""

from __future__ import annotations

import numpy as np

from ..uncertainty import expected_calibration_error, reliability_curve
from ._common import new_figure


def reliability_diagram(dists: dict, y, n_bins: int = 10, strategy: str = "uniform"):
    """One reliability diagram per model: accuracy against confidence of the top class.

    ``dists`` maps a model name to its ``Categorical`` predictive distribution on the same
    inputs, ``y`` holds the true class indices. Bars are per-bin accuracies (equal-width bins
    drawn at their mean confidence), the diagonal is perfect calibration, red is the gap,
    and each title carries the ECE.
    """
    fig, axes = new_figure(1, len(dists), width=3.2, height=3.4, sharey=True)
    for ax, (name, dist) in zip(axes[0], dists.items()):
        conf, acc, counts = reliability_curve(dist, y, n_bins, strategy)
        ece = expected_calibration_error(dist, y, n_bins, strategy)
        width = 1.0 / n_bins
        ax.bar(conf, acc, width=width * 0.9, color="#4C72B0", edgecolor="k", lw=0.5,
               label="accuracy")
        ax.bar(conf, conf - acc, bottom=acc, width=width * 0.9, color="#DD5555", alpha=0.5,
               label="gap")
        ax.plot([0, 1], [0, 1], "k--", lw=1)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_title(f"{name}\nECE = {100 * ece:.2f}%", fontsize=9)
        ax.set_xlabel("confidence")
        inset = ax.inset_axes([0.05, 0.62, 0.35, 0.3])
        inset.hist(np.asarray(dist.probs.max(-1).values.cpu()), bins=np.linspace(0, 1, n_bins + 1),
                   color="grey")
        inset.set_xticks([])
        inset.set_yticks([])
        inset.set_title("confidences", fontsize=6)
    axes[0][0].set_ylabel("accuracy")
    axes[0][0].legend(loc="lower right", fontsize=7)
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
