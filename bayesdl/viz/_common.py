from __future__ import annotations

from matplotlib.figure import Figure


def new_figure(nrows: int = 1, ncols: int = 1, *, width: float = 5.0, height: float = 3.6, **kw):
    """A pyplot-free figure of ``nrows x ncols`` axes; returns ``(fig, axes)``."""
    fig = Figure(figsize=(width * ncols, height * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False, **kw)
    return fig, axes
