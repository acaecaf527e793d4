"""The Bayesian deep learning report section and the experiments behind its claims.

The quick experiments run once (module fixture) and every claim of the page is checked on
those very numbers; the full-size runs behind the default report are slow tests."""

import re

import numpy as np
import pytest
from matplotlib.figure import Figure
from matplotlib.text import Text

from bayesdl.report.sections import bdl
from bayesdl.uncertainty import expected_calibration_error
from tests._threads import one_torch_thread  # noqa: F401 (autouse fixture)

BAYESIAN = ["MC dropout", "BBB (Gaussian prior)", "BBB (scale mixture)", "deep ensemble",
            "Laplace (last layer)"]


@pytest.fixture(scope="module")
def quick():
    import torch

    with torch.random.fork_rng():
        experiments = bdl.run_experiments(quick=True, seed=0)
    return experiments, bdl.compose(experiments)


def test_section_builds_quickly_with_all_figures(quick):
    _, section = quick
    assert section.error is None and section.title == bdl.TITLE
    assert len(section.figures) == 5
    assert all(isinstance(fig, Figure) for _, fig in section.figures)
    assert any(k.startswith("digits BBB (scale mixture)") for k in section.table)


def test_one_ece_definition_in_the_table_and_the_reliability_diagram_titles(quick):
    experiments, section = quick
    results, y = experiments["digits"]["results"], experiments["digits"]["y_test"]
    fig = next(f for caption, f in section.figures if caption.startswith("Reliability"))
    titles = {t.get_text().split("\n")[0]: t.get_text() for t in fig.findobj(Text)
              if "ECE" in t.get_text()}
    assert set(titles) == set(results)
    for name, r in results.items():
        # the 15 equal-width bins of the metric, recomputed here, in the table and the title
        ece = expected_calibration_error(r["dist"], y, n_bins=15, strategy="uniform")
        assert r["ece"] == pytest.approx(ece, abs=1e-12)
        row = section.table[f"digits {name}: error / NLL / ECE (15 bins) / OOD AUROC / s"]
        assert row.split(" / ")[2] == f"{100 * ece:.2f}%"
        assert re.search(rf"ECE \(15 bins\) = {100 * ece:.2f}%", titles[name])
    assert "15 equal-width confidence bins" in section.summary


def test_rotated_digits_raise_entropy_and_mutual_information_from_0_to_90_degrees(quick):
    r = quick[0]["rotated"]
    upto90 = (r["angles"] > 0) & (r["angles"] <= 90)
    assert r["angles"][0] == 0 and 90 in r["angles"]
    # every turned angle up to 90 degrees is more uncertain than the upright digits
    assert np.all(r["entropy"][upto90] > r["entropy"][0])
    assert np.all(r["mutual_info"][upto90] > r["mutual_info"][0])
    # while the accuracy collapses: the uncertainty is about something real
    assert r["accuracy"][0] > 0.8 and np.all(r["accuracy"][r["angles"] == 90] < 0.3)
    # the decomposition is internally consistent: 0 <= mutual information <= entropy
    assert np.all(r["mutual_info"] >= -1e-6) and np.all(r["mutual_info"] <= r["entropy"] + 1e-6)


def test_ood_auroc_beats_chance_for_every_bayesian_method_with_image_scaling(quick):
    results = quick[0]["digits"]["results"]
    for name in BAYESIAN:
        assert results[name]["model"].input_scaling == "global"
        assert results[name]["ood_auroc"] > 0.5, (name, results[name]["ood_auroc"])


def test_gap_regression_shows_the_split_the_text_claims(quick):
    experiments, section = quick
    gap = experiments["gap"]
    ensemble, dropout = (bdl._gap_summary(gap, name) for name in gap["fits"])
    # the deep ensemble: aleatoric sd follows the true noise, epistemic sd rises in the gap
    assert ensemble["aleatoric_error"] < 0.15
    assert ensemble["gap_ratio"] > 2.0
    # MC dropout: far less in-between uncertainty, as the text says
    assert dropout["gap_ratio"] < ensemble["gap_ratio"]
    assert f"{ensemble['gap_ratio']:.1f} times larger in the gap" in section.summary
    assert f"rises only {dropout['gap_ratio']:.1f}-fold" in section.summary


@pytest.mark.slow
def test_full_size_experiments_keep_the_claims():
    """The default (non-quick) report: same claims at full training budgets."""
    r = bdl.rotated_digit_experiment(quick=False, seed=0)
    upto90 = (r["angles"] > 0) & (r["angles"] <= 90)
    assert np.all(r["entropy"][upto90] > r["entropy"][0])
    assert np.all(r["mutual_info"][upto90] > r["mutual_info"][0])
    gap = bdl.gap_regression(quick=False, seed=0)
    ensemble, dropout = (bdl._gap_summary(gap, n) for n in gap["fits"])
    assert ensemble["aleatoric_error"] < 0.15 and ensemble["gap_ratio"] > 2.0
    assert dropout["gap_ratio"] < ensemble["gap_ratio"]
    res = bdl.digits_calibration(quick=False, seed=0)["results"]
    assert all(res[name]["ood_auroc"] > 0.5 for name in BAYESIAN)


@pytest.mark.slow
def test_mc_dropout_is_better_calibrated_than_the_deterministic_mlp():
    """Held-out digits, 300 training images, every network trained the same way (Adam, 400
    epochs); the deterministic MLP is the one-member 'ensemble' (no dropout, no weight noise)."""
    res = bdl.digits_calibration(quick=False, seed=0, methods=[
        "deterministic", "MC dropout"])["results"]
    assert res["MC dropout"]["ece"] < res["deterministic"]["ece"]
