"""The report is one self-contained HTML file: figures embedded, nothing referenced outside."""

import base64
import re
from collections import Counter
from xml.etree import ElementTree

import numpy as np
import pytest

from bayesdl.report import Section, write_report
from bayesdl.viz import new_figure


def _line_figure(ncols=1):
    fig, axes = new_figure(1, ncols, width=3.0)
    for ax in axes[0]:
        ax.plot([0, 1, 2], [0, 1, 0], label="tent")
        ax.set(xlabel="x", ylabel="y", title="a line")
    return fig


def _image_figure():
    fig, axes = new_figure(1, 1)
    axes[0, 0].imshow(np.arange(64.0).reshape(8, 8))
    return fig


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("report")
    sections = [("lines", Section(title="Lines", figures=[("one", _line_figure()),
                                                          ("same again", _line_figure()),
                                                          ("three panels", _line_figure(3))])),
                ("images", Section(title="Images", figures=[("pixels", _image_figure())]))]
    path = write_report(tmp_path, sections)
    return tmp_path, path.read_text()


def test_one_file_with_every_figure_embedded_and_no_outside_reference(report):
    tmp_path, page = report
    assert [p.name for p in tmp_path.iterdir()] == ["index.html"]
    assert page.count("<figure") == 4
    # line plots are inline SVG with the text drawn as paths (no font to fetch) ...
    assert page.count("<svg") == 3 and "<text" not in page
    assert page.count('<svg role="img" aria-label="') == 3 and 'alt="pixels"' in page
    # ... image-like figures a PNG data URI that decodes to a PNG
    pngs = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(pngs) == 1 and base64.b64decode(pngs[0])[:8] == b"\x89PNG\r\n\x1a\n"
    assert not re.search(r"https?:", page)
    assert not re.search(r'\bsrc="(?!data:)', page)
    assert all(h.startswith("#") for h in re.findall(r'\bhref="([^"]*)"', page))
    assert "<script" not in page and "<link" not in page


def test_svg_ids_are_unique_and_every_reference_resolves(report):
    _, page = report
    ids = re.findall(r'\bid="([^"]+)"', page)
    assert [i for i, n in Counter(ids).items() if n > 1] == []
    refs = set(re.findall(r'href="#([^"]+)"', page)) | set(re.findall(r"url\(#([^)]+)\)", page))
    assert refs and refs <= set(ids)
    # every embedded SVG is well-formed XML once the (HTML-implied) namespaces are added back
    for svg in re.findall(r"<svg.*?</svg>", page, flags=re.S):
        ElementTree.fromstring(svg.replace("<svg", '<svg xmlns="http://www.w3.org/2000/svg" '
                                           'xmlns:xlink="http://www.w3.org/1999/xlink"', 1))


def test_multi_panel_figures_span_the_page_and_every_figure_opens_full_size(report):
    _, page = report
    classes = re.findall(r'<figure class="([^"]*)">', page)
    assert classes == ["fig", "fig", "fig wide", "fig"]
    # the click-to-enlarge is a <details> toggled by the figure itself, styled by CSS alone
    assert page.count("<details><summary>") == 4
    assert "details[open] > summary" in page and "position: fixed" in page


def test_thousands_of_markers_are_embedded_as_png_and_a_few_as_svg():
    from bayesdl.report.html import figure_html

    xy = np.random.default_rng(0).normal(size=(2, 1500))
    fig, axes = new_figure()
    axes[0, 0].scatter(*xy, s=2)
    assert 'src="data:image/png;base64,' in figure_html(fig, "many", "k1")
    fig, axes = new_figure()
    axes[0, 0].scatter(*xy[:, :50], s=2)
    assert figure_html(fig, "few", "k2").count("<svg") == 1
