from __future__ import annotations

from matplotlib.figure import Figure


def new_figure(nrows: int = 1, ncols: int = 1, *, width: float = 5.0, height: float = 3.6, **kw):
    """A pyplot-free figure of ``nrows x ncols`` axes; returns ``(fig, axes)``."""
    fig = Figure(figsize=(width * ncols, height * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False, **kw)
    return fig, axes


def legend_outside(ax, **kw):
    """A legend to the right of ``ax``, outside the axes, so it never covers the data."""
    return ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0,
                     fontsize=8, frameon=False, **kw)
