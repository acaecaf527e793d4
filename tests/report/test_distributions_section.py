"""The "Distributions" report section builds quickly and its key numbers match closed forms."""

import numpy as np
import pytest
from matplotlib.figure import Figure

from bayesdl.cli import main
from bayesdl.report import SECTIONS
from bayesdl.report.sections import distributions


@pytest.fixture(scope="module")
def section():
    return distributions.build(quick=True, seed=0)


def test_section_builds_with_all_figures(section):
    assert "distributions" in SECTIONS
    assert section.title == distributions.TITLE == "Distributions" and section.error is None
    assert len(section.figures) == 8 and all(isinstance(f, Figure) for _, f in section.figures)
    captions = " ".join(c for c, _ in section.figures)
    for ref in ("Figure 2.3", "Figure 2.5", "Figure 2.12", "Central limit", "Figure 10.2", "Old Faithful", "A/B test"):
        assert ref in captions


def test_section_numbers_match_closed_forms(section):
    t = section.table
    # PRML eq. 10.12-10.13: the KL(q||p) factorised fit has variances 1 / Lambda_ii = 1 - rho^2
    np.testing.assert_allclose(t["KL(q||p) fit: variance of z1 (closed form 1/Lambda_11)"], 1 - 0.9 ** 2, rtol=1e-6)
    # KL(p||q) matches the marginal variance Sigma_11 = 1
    np.testing.assert_allclose(t["KL(p||q) fit: variance of z1 (closed form Sigma_11 = 1)"], 1.0, rtol=1e-6)
    assert t["95% credible interval for mu, lower"] < t["Beta posterior mean after 500 flips (true 0.7)"] \
        < t["95% credible interval for mu, upper"]
    np.testing.assert_allclose(t["A/B test 120/1000 vs 135/1000: P(B > A)"], 0.8422815, atol=1e-6)


def test_demo_writes_the_section(tmp_path, capsys):
    assert main(["demo", "--quick", "--only", "distributions", "--out", str(tmp_path)]) == 0
    html = (tmp_path / "index.html").read_text()
    assert "Distributions" in html and html.count("<figure") == 8
    assert [p.name for p in tmp_path.iterdir()] == ["index.html"]
