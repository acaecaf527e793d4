"""The "Restricted Boltzmann machines" report section (quick) builds its figures, and its
numbers agree with independent checks."""

import numpy as np
import pytest
from matplotlib.figure import Figure

from bayesdl.report import SECTIONS
from bayesdl.report.sections import rbm


@pytest.fixture(scope="module")
def section():
    return rbm.build(quick=True, seed=0)


def test_section_is_registered_after_the_vae_and_builds_its_figures(section):
    assert SECTIONS.index("rbm") == SECTIONS.index("vae") + 1
    assert section.title == "Restricted Boltzmann machines" and section.error is None
    assert len(section.figures) == 3 and all(isinstance(f, Figure) for _, f in section.figures)
    for _, fig in section.figures:
        for ax in fig.axes:
            assert ax.get_xlabel() or ax.get_ylabel()


def _base_rate_log_likelihood():
    """Test log-likelihood of independent Bernoulli pixels at the training means (a loop)."""
    from bayesdl.datasets import load_digits_images, split_images

    X, y = load_digits_images()
    train, _, test = split_images(X, y, seed=0)
    X = (X > 0.5).astype(float).reshape(len(X), -1)
    p = np.clip(X[train].mean(0), 1e-3, 1 - 1e-3)
    total = 0.0
    for x in X[test]:
        total += sum(np.log(p[i]) if x[i] else np.log(1 - p[i]) for i in range(64))
    return total / len(test)


def test_section_numbers(section):
    t = section.table
    floor = _base_rate_log_likelihood()
    assert t["independent pixels at the training means: test log-likelihood"] == \
        pytest.approx(floor, abs=0.01)

    def log_lik(name):
        return float(t[f"{name}: test log-likelihood per image, AIS (nats)"].split()[0])

    # after 5 epochs CD-1 is clearly better than independent pixels; PCD-1 is no worse
    assert floor + 1 < log_lik("CD-1") < 0, (floor, log_lik("CD-1"))
    assert floor - 1 < log_lik("PCD-1") < 0, (floor, log_lik("PCD-1"))
    # the samples' Frechet classifier distance is above the floor of two real halves
    for name in ("CD-1 samples:", "PCD-1 samples:", "independent-pixel samples:"):
        fcd, floor_text = t[f"{name} FCD"].split(" (floor ")
        assert float(fcd) > float(floor_text.rstrip(")")) > 0
    # the largest K's AIS estimate is within 3 of its standard errors of the exact log Z
    last = [v for k, v in t.items() if k.startswith("12-unit RBM: AIS log Z - exact")][-1]
    gap, stderr = float(last.split()[0]), float(last.split()[1].strip("()"))
    assert abs(gap) < 3 * stderr


def test_gibbs_chains_record_visible_means():
    from bayesdl.datasets import load_digits_images
    from bayesdl.generative import RBM

    X, _ = load_digits_images()
    model = RBM(8, max_epochs=1, random_state=0).fit(X[:200])
    chains = rbm.gibbs_chains(model, n_chains=3, steps=(1, 4), seed=0)
    assert chains.shape == (3, 2, 64) and np.all((chains > 0) & (chains < 1))
