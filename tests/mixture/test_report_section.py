"""The "Mixtures" report section builds quickly and reports the expected numbers."""

import numpy as np
from matplotlib.figure import Figure
from sklearn.mixture import GaussianMixture as SkGaussianMixture

from bayesdl.report import SECTIONS
from bayesdl.report.sections import mixtures


def test_mixtures_section_quick():
    assert "mixtures" in SECTIONS
    section = mixtures.build(quick=True, seed=0)
    assert section.title == "Mixtures" and section.error is None
    assert len(section.figures) == 4
    assert all(isinstance(fig, Figure) for _, fig in section.figures)
    assert section.table["VB-GMM active components (of 10)"] == 3
    faithful = mixtures.load_faithful().data
    X = (faithful - faithful.mean(0)) / faithful.std(0)
    bics = [SkGaussianMixture(k, random_state=0).fit(X).bic(X) for k in range(1, 6)]
    assert section.table["Old Faithful: components chosen by BIC (1..5)"] == 1 + np.argmin(bics)


def test_kmeans_objective_falls_at_every_step():
    faithful = mixtures.load_faithful().data
    X = (faithful - faithful.mean(0)) / faithful.std(0)
    J_e, J_m = mixtures._kmeans_steps(X, 4)
    J = np.ravel(np.column_stack([J_e, J_m]))
    assert np.all(np.diff(J) <= 1e-9)  # PRML Figure 9.2: neither step can raise J
    # J after the last M step is the within-cluster sum of squares of the final partition.
    labels = ((X[:, None] - mixtures.START[None]) ** 2).sum(-1).argmin(1)
    assert J_e[0] == ((X - mixtures.START[labels]) ** 2).sum()
