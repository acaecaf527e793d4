"""The cross-model section scores every offered sample set on one real set with one floor."""

import numpy as np
import pytest

from bayesdl.datasets.images import load_digits_images, split_images
from bayesdl.report import Section, build_report
from bayesdl.report.sections import generative_summary


def test_real_digits_score_at_the_floor_and_noise_far_above_it():
    X, y = load_digits_images()
    train = split_images(X, y)[0]
    rng = np.random.default_rng(0)
    offered = [Section("a", samples={"training digits": X[train][:300]}),
               Section("b", samples={"noise": rng.uniform(size=(150, 8, 8))})]
    section = generative_summary.build(quick=True, seed=0, previous=offered)
    # one real set for all: 2 x the smallest sample count (150)
    assert section.table["real digits / samples per model"] == "300 / 150"
    fcd = {name: float(section.table[f"{name} FCD"].split()[0]) for name in ("training digits", "noise")}
    floor = float(section.table["noise FCD"].split("floor ")[1].rstrip(")"))
    assert section.table["training digits FCD"].endswith(f"(floor {floor:.4g})")
    assert fcd["training digits"] < 2 * floor < fcd["noise"] / 5
    assert len(section.figures) == 1


def test_without_generative_sections_it_says_which_to_build(tmp_path):
    with pytest.raises(ValueError, match="no generative section was built"):
        generative_summary.build(quick=True, seed=0, previous=[Section("x")])
    path, failed = build_report(tmp_path, quick=True, only=["generative_summary"], progress=lambda s: None)
    assert failed == ["generative_summary"]
