"""A report section: prose, figures and a small table of key numbers."""

from __future__ import annotations

from dataclasses import dataclass, field

from matplotlib.figure import Figure


@dataclass
class Section:
    """What one model family contributes to the report.

    ``figures`` pairs a caption with a matplotlib ``Figure`` (from :mod:`bayesdl.viz`);
    ``table`` maps the name of a key number to its value. ``error`` holds a traceback when
    the section failed to build.
    """

    title: str
    summary: str = ""
    figures: list[tuple[str, Figure]] = field(default_factory=list)
    table: dict[str, float | int | str] = field(default_factory=dict)
    error: str | None = None
    seconds: float = 0.0
