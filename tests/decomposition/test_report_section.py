"""The "Latent linear models" report section builds and reports the expected numbers."""

from matplotlib.figure import Figure

from bayesdl.report import SECTIONS
from bayesdl.report.sections import decomposition


def test_decomposition_section_quick():
    assert "decomposition" in SECTIONS
    section = decomposition.build(quick=True, seed=0)
    assert section.title == "Latent linear models" and section.error is None
    assert len(section.figures) == 4
    assert all(isinstance(fig, Figure) for _, fig in section.figures)
    assert section.table["Bayesian PCA effective dimensionality (true 3, q = 9)"] == 3
    assert section.table["imputation RMSE, PPCA (30% missing)"] \
        < 0.8 * section.table["imputation RMSE, mean imputation"]
