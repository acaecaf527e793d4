"""The "Diffusion models" report section builds (quick) with labelled figures and numbers."""

import pytest
from matplotlib.figure import Figure

from bayesdl.report import SECTIONS
from bayesdl.report.sections import diffusion
from tests._threads import one_torch_thread  # noqa: F401 (autouse fixture)


@pytest.mark.slow  # trains a U-Net for an epoch and runs a 1000-step chain: ~11 s of CPU
def test_section_builds_with_figures_and_numbers():
    section = diffusion.build(quick=True, seed=0)
    assert "diffusion" in SECTIONS and section.title == "Diffusion models"
    assert len(section.figures) == 5 and all(isinstance(f, Figure) for _, f in section.figures)
    for _, fig in section.figures:
        assert all(ax.get_xlabel() or ax.get_title() or not ax.get_visible()
                   for ax in fig.axes if ax.images == [] and ax.lines + ax.patches)
    t = section.table
    # a briefly trained model is further from the held-out digits than real digits are
    assert t["FCD at w = 0"] > t["FCD real vs real (floor)"] > 0
    assert 0 < t["DDIM-50: seconds per image"] < t["DDPM-1000: seconds per image"]
