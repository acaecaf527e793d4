"""The "Autoencoders and VAEs" report section: builds in quick mode, its numbers are sane."""

import pytest
from matplotlib.figure import Figure

from bayesdl.report import SECTIONS
from bayesdl.report.sections import vae


@pytest.fixture(scope="module")
def section():
    return vae.build(quick=True, seed=0)


def test_section_is_registered_after_optimize_and_has_its_figures(section):
    assert SECTIONS.index("vae") == SECTIONS.index("optimize") + 1
    assert section.title == "Autoencoders and VAEs" and section.error is None
    assert len(section.figures) == 6 and all(isinstance(f, Figure) for _, f in section.figures)
    assert "Kingma & Welling Figure 4" in section.figures[0][0]


def test_section_numbers(section):
    t = section.table
    iwae = [v for k, v in t.items() if k.startswith("VAE test IWAE L_")]
    # L_1 is a one-draw estimate of the ELBO: the means agree to Monte-Carlo error
    assert abs(iwae[0] - t["VAE test ELBO (nats)"]) < 1.0
    # the bound rises with k (to Monte-Carlo error) and ends above the ELBO
    assert all(b > a - 0.1 for a, b in zip(iwae, iwae[1:])) and iwae[-1] > t["VAE test ELBO (nats)"]
    assert float(t["CVAE conditional accuracy"]) >= 0.8
    fcd, floor = t["VAE FCD"].replace(")", "").split(" (floor ")
    assert float(fcd) > float(floor)
