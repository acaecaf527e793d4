"""The "Gaussian processes" report section builds (quick) with its figures and sane numbers."""

import numpy as np
import pytest
from matplotlib.figure import Figure

from bayesdl.report import SECTIONS
from bayesdl.report.sections import gaussian_process


@pytest.fixture(scope="module")
def section():
    return gaussian_process.build(quick=True, seed=0)


def test_section_builds_with_its_figures(section):
    assert "gaussian_process" in SECTIONS and section.title == "Gaussian processes"
    assert len(section.figures) == 4 and all(isinstance(f, Figure) for _, f in section.figures)
    captions = " ".join(c for c, _ in section.figures)
    for ref in ("Fig. 6.8", "length-scale", "Mauna Loa", "inducing points"):
        assert ref in captions
    for _, fig in section.figures:
        for ax in fig.axes:
            assert ax.get_xlabel()


def test_section_numbers(section):
    t = section.table
    # the evidence-optimal length-scale beats both fixed ones shown beside it (0.3 and 3)
    assert 0.3 < t["toy data: evidence-optimal RBF length-scale"] < 3.0
    # the CO2 forecast for 2015 lies within 10 ppm of the ~401 ppm observed since
    assert abs(float(t["CO2: forecast for mid-2015, ppm (observed about 401)"].split()[0]) - 401) < 12
    for method in ("SGPR", "SVGP"):
        assert t[f"{method}: RMSE of the mean against the true function"] < 0.1
        assert t[f"{method}: fitted noise std (true 0.2)"] == pytest.approx(0.2, rel=0.15)
    assert np.isfinite(t["CO2: log marginal likelihood"])
