"""The "GANs" report section: it builds quickly, and (slow) its full run shows what it says."""

import numpy as np
import pytest
from matplotlib.figure import Figure

from bayesdl.report import SECTIONS
from bayesdl.report.sections import gan
from tests._threads import one_torch_thread  # noqa: F401 (autouse fixture)


def test_quick_section_builds_with_its_figures_and_table():
    section = gan.build(quick=True, seed=0)
    assert "gan" in SECTIONS and section.title == gan.TITLE == "GANs"
    assert len(section.figures) == 4 and all(isinstance(f, Figure) for _, f in section.figures)
    for name in gan.MODELS:
        assert f"{name} FCD" in section.table and f"{name} recall" in section.table


@pytest.mark.slow
def test_full_run_trains_gans_to_digits_and_the_wasserstein_estimate_falls():
    run = gan.train_gans(quick=False, seed=0)
    noise, floor = run["noise_fcd"], run["floor_fcd"]
    models = run["models"]
    for name in models:  # well below noise; the FCD falls during training
        fcd = models[name]["curve"][1]
        assert fcd[-1] < noise / 2 and fcd[-1] < fcd[0] / 3, (name, fcd)
        assert models[name]["metrics"]["recall"] > 0.3
    assert floor < min(models[name]["curve"][1][-1] for name in models)
    # the WGAN-GP critic's estimate falls from its peak as the samples improve
    w = np.array([h["wasserstein"] for h in models["WGAN-GP"]["model"].history_])
    assert w[-1] < 0.5 * w.max() and np.argmax(w) < len(w) // 2
    # every model draws every digit (no mode collapse in these runs)
    for name, m in models.items():
        assert (m["metrics"]["class_histogram"] > 0.03).all(), name
