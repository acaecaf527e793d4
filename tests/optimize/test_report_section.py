"""The "Bayesian optimisation" report section builds (quick) with labelled figures and numbers."""

from matplotlib.figure import Figure

from bayesdl.report import SECTIONS
from bayesdl.report.sections import optimize


def test_section_builds_with_figures_and_numbers():
    section = optimize.build(quick=True, seed=0)
    assert SECTIONS.index("optimize") == SECTIONS.index("gaussian_process") + 1
    assert section.title == "Bayesian optimisation"
    assert len(section.figures) == 2 and all(isinstance(f, Figure) for _, f in section.figures)
    for _, fig in section.figures:
        bottom_row = fig.axes[-1]
        assert bottom_row.get_xlabel() and fig.axes[0].get_ylabel()
    # within 0.1 of the Forrester minimum (-6.0207) after a handful of evaluations
    assert section.table["Forrester: best value found (minimum -6.0207)"] < -5.9
    t = section.table
    bo = next(v for k, v in t.items() if k.startswith("Branin: median regret of BO"))
    rs = next(v for k, v in t.items() if k.startswith("Branin: median regret of random"))
    assert 0 <= bo < rs
