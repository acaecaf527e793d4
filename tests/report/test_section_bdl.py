"""The Bayesian deep learning report section and the experiments behind its claims."""

import numpy as np
from matplotlib.figure import Figure

from bayesdl.report.sections import bdl
from tests._threads import one_torch_thread  # noqa: F401 (autouse fixture)


def test_section_builds_quickly_with_all_figures():
    section = bdl.build(quick=True, seed=0)
    assert section.error is None and section.title == bdl.TITLE
    assert len(section.figures) == 5
    assert all(isinstance(fig, Figure) for _, fig in section.figures)
    assert any(k.startswith("digits BBB (scale mixture)") for k in section.table)


def test_rotated_digit_entropy_at_90_degrees_exceeds_entropy_at_0():
    r = bdl.rotated_digit_experiment(quick=False, seed=0)
    i90 = int(np.argmin(np.abs(r["angles"] - 90)))
    assert r["angles"][i90] == 90
    assert r["entropy"][i90] > r["entropy"][0]
    # the decomposition is internally consistent: 0 <= mutual information <= entropy
    assert np.all(r["mutual_info"] >= -1e-6) and np.all(r["mutual_info"] <= r["entropy"] + 1e-6)


def test_mc_dropout_and_bbb_are_better_calibrated_than_the_deterministic_mlp():
    """Held-out digits, 300 training images, every network trained the same way (Adam, 400
    epochs); the deterministic MLP is the one-member 'ensemble' (no dropout, no weight noise)."""
    res = bdl.digits_calibration(quick=False, seed=0, methods=[
        "deterministic", "MC dropout", "BBB (Gaussian prior)"])["results"]
    assert res["MC dropout"]["ece"] < res["deterministic"]["ece"]
    assert res["BBB (Gaussian prior)"]["ece"] < res["deterministic"]["ece"]
