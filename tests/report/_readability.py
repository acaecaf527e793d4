"""Checks that a matplotlib figure is readable: labelled axes, no legend over the data, no
"1 points". Used by the report's figure tests; each returns a list of problems (empty = fine)."""

from __future__ import annotations

import re

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import Collection
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.spines import Spine
from matplotlib.text import Text

_SINGULAR_PLURAL = re.compile(r"(?<![\d.])1 (points|evaluations|flips|draws|samples|steps)\b")


def _data_axes(fig):
    """Axes that plot data: not colour bars, not hidden image strips."""
    for ax in fig.get_axes():
        if ax.get_label() == "<colorbar>" or not ax.axison:
            continue
        yield ax


def _tick_labels_shown(axis) -> bool:
    return any(t.get_visible() and t.get_text() for t in axis.get_ticklabels())


def unlabelled_axes(fig) -> list[str]:
    """An axis whose tick labels are shown must have a label."""
    FigureCanvasAgg(fig).draw()  # tick labels exist only once drawn
    problems = []
    for ax in _data_axes(fig):
        name = ax.get_title() or ax.get_title("left") or repr(ax)
        if _tick_labels_shown(ax.xaxis) and not ax.get_xlabel():
            problems.append(f"{name}: no x label")
        if _tick_labels_shown(ax.yaxis) and not ax.get_ylabel():
            problems.append(f"{name}: no y label")
    return problems


def _densify(xy: np.ndarray, per_segment: int = 25) -> np.ndarray:
    """Points along a polyline (display coordinates), so a line crossing a box is caught."""
    xy = xy[np.all(np.isfinite(xy), axis=1)]
    if len(xy) < 2:
        return xy
    t = np.linspace(0, 1, per_segment)[:, None, None]
    return (xy[:-1] + t * (xy[1:] - xy[:-1])).reshape(-1, 2)


def _inside(points: np.ndarray, box) -> bool:
    return bool(np.any((points[:, 0] > box.x0) & (points[:, 0] < box.x1)
                       & (points[:, 1] > box.y0) & (points[:, 1] < box.y1)))


def legends_over_data(fig) -> list[str]:
    """A legend must not cover a line, a marker or a bar of the axes it sits in (or any axes
    its box overlaps)."""
    canvas = FigureCanvasAgg(fig)  # a figure built without pyplot has no renderer yet
    canvas.draw()
    renderer = canvas.get_renderer()
    problems = []
    legends = [(ax, ax.get_legend()) for ax in fig.get_axes() if ax.get_legend() is not None]
    for owner, legend in legends:
        box = legend.get_window_extent(renderer)
        for ax in _data_axes(fig):
            if not box.overlaps(ax.get_window_extent(renderer)):
                continue
            clip = ax.get_window_extent(renderer)
            for artist in ax.get_children():
                if not artist.get_visible() or artist is legend:
                    continue
                if isinstance(artist, Line2D):
                    xy = _densify(artist.get_transform().transform(artist.get_xydata()))
                elif isinstance(artist, Collection) and len(artist.get_offsets()):
                    xy = artist.get_offset_transform().transform(artist.get_offsets())
                elif isinstance(artist, Patch) and not isinstance(artist, Spine) \
                        and artist is not ax.patch:
                    # the outline, and for a filled patch (a bar) its whole area
                    xy = _densify(artist.get_transform().transform(artist.get_path().vertices))
                    if artist.get_fill():
                        e = artist.get_window_extent(renderer)
                        grid = np.stack(np.meshgrid(np.linspace(e.x0, e.x1, 12),
                                                    np.linspace(e.y0, e.y1, 12)), -1)
                        xy = np.concatenate([xy, grid.reshape(-1, 2)])
                else:
                    continue
                if not len(xy):
                    continue
                xy = xy[(xy[:, 0] >= clip.x0) & (xy[:, 0] <= clip.x1)
                        & (xy[:, 1] >= clip.y0) & (xy[:, 1] <= clip.y1)]
                if len(xy) and _inside(xy, box):
                    label = artist.get_label() if not str(artist.get_label()).startswith("_") \
                        else type(artist).__name__
                    problems.append(f"legend of {owner.get_title()!r} covers {label!r}")
                    break
    return problems


def bad_plurals(fig) -> list[str]:
    """'after 1 points' and the like, in any text of the figure."""
    return [t.get_text() for t in fig.findobj(Text) if _SINGULAR_PLURAL.search(t.get_text())]


def problems(fig) -> list[str]:
    return unlabelled_axes(fig) + legends_over_data(fig) + bad_plurals(fig)
