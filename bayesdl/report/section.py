"""A report section: prose, figures and a small table of key numbers."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from matplotlib.figure import Figure


@dataclass
class Section:
    """What one model family contributes to the report.

    ``summary`` is plain text (a blank line starts a new paragraph). ``figures`` pairs a
    caption with a matplotlib ``Figure`` (from :mod:`bayesdl.viz`); the report embeds line
    plots as SVG and image-like figures (images, meshes, over 1000 markers) as PNG, and a
    figure 7 inches wide or more spans the page. ``table`` maps the name of a key number to
    its value. ``error`` holds a traceback when the section failed to build. A generative
    family offers ``samples``: generated 8x8 digits (N, 8, 8) in [0, 1] by model name, which
    the "Generative models compared" section scores side by side.
    """

    title: str
    summary: str = ""
    figures: list[tuple[str, Figure]] = field(default_factory=list)
    table: dict[str, float | int | str] = field(default_factory=dict)
    samples: dict[str, np.ndarray] = field(default_factory=dict)
    error: str | None = None
    seconds: float = 0.0
