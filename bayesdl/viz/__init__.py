"""Figures: one function per figure, each returning a :class:`matplotlib.figure.Figure`.

Figures are built with ``matplotlib.figure.Figure`` directly, never through pyplot, so they
need no display and no global backend switch (the Agg canvas renders them to PNG).
"""

from ._common import legend_outside, new_figure

__all__ = ["legend_outside", "new_figure"]
