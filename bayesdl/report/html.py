"""Render built sections to one self-contained ``index.html``.

Every figure is embedded: line plots as inline SVG (glyphs drawn as paths, so no font files
are needed, and every ``id`` prefixed per figure so two figures never share one), image-like
figures (``imshow``, colour meshes, thousands of points) as PNG ``data:`` URIs, which are far
smaller than the equivalent vector drawing. The page references nothing outside itself: it
can be mailed, attached to a CI run or opened from anywhere.

Each figure sits in a ``<details>`` element: a click opens it over the whole window and a
second click closes it (pure CSS, no script). Figures wider than :data:`WIDE_INCHES` span the
page width.
"""

from __future__ import annotations

import base64
import html
import io
import numbers
import re
from pathlib import Path

import matplotlib
from matplotlib.collections import PolyCollection, QuadMesh, TriMesh

from ..io import atomic_write_bytes

# a figure at least this wide (multi-panel) spans the page; narrower ones sit side by side
WIDE_INCHES = 7.0
# PNG resolution, and the SVG size above which a figure is embedded as PNG instead
DPI = 100
MAX_SVG_BYTES = 200_000
# figures with more markers or polygons than this are drawn as PNG (an SVG path each is heavy)
_MANY_ELEMENTS = 1000

_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1200px; margin: 2em auto; padding: 0 1em;
       color: #222; }
h1 { border-bottom: 2px solid #345; } h2 { margin-top: 2em; border-bottom: 1px solid #aaa; }
figure { display: inline-table; margin: 0.5em; vertical-align: top; max-width: 100%; }
figure > figcaption { display: table-caption; caption-side: bottom; }
figure.wide { display: block; margin: 1em 0; }
figure.wide > figcaption { display: block; }
figure svg, figure img { display: block; max-width: 100%; height: auto; }
figure.wide svg, figure.wide img { width: 100%; }
figcaption { font-size: 0.9em; color: #444; }
details > summary { list-style: none; cursor: zoom-in; }
details > summary::-webkit-details-marker { display: none; }
details[open] > summary { position: fixed; inset: 0; z-index: 10; background: #fff;
                          padding: 1em; overflow: auto; cursor: zoom-out; }
details[open] > summary svg, details[open] > summary img { width: 100%; height: calc(100vh - 4em);
                                                           max-width: none; object-fit: contain; }
table { border-collapse: collapse; margin: 1em 0; }
td, th { border: 1px solid #ccc; padding: 3px 8px; text-align: left; }
td.num { text-align: right; font-family: monospace; } pre.error { background: #fee; padding: 1em; }
"""


def _fmt(value) -> str:
    if isinstance(value, numbers.Integral):
        return str(value)
    if isinstance(value, numbers.Real):
        return f"{value:.4g}"
    return html.escape(str(value))


def _image_like(fig) -> bool:
    """True for figures that are pictures rather than lines: images, colour meshes, or
    collections of more than :data:`_MANY_ELEMENTS` markers or polygons in all."""
    elements = 0
    for ax in fig.get_axes():
        if ax.get_images():
            return True
        for c in ax.collections:
            if isinstance(c, (QuadMesh, TriMesh)):
                return True
            elements += (len(c.get_paths()) if isinstance(c, PolyCollection)
                         else len(c.get_offsets()))
    return elements > _MANY_ELEMENTS


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _svg(fig, prefix: str) -> str:
    """The figure as an inline ``<svg>`` element, every id (and reference to it) prefixed."""
    buf = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "path", "svg.hashsalt": prefix}):
        fig.savefig(buf, format="svg", bbox_inches="tight")
    svg = buf.getvalue()
    svg = svg[svg.index("<svg"):]  # drop the XML declaration and DOCTYPE
    # inline in HTML the namespaces are implied and the RDF metadata is noise: without them
    # the page names no outside address at all
    svg = re.sub(r"<metadata>.*?</metadata>", "", svg, flags=re.S)
    svg = re.sub(r'\sxmlns(:\w+)?="[^"]*"', "", svg)
    ids = set(re.findall(r'\bid="([^"]+)"', svg))
    svg = re.sub(r'\bid="([^"]+)"', lambda m: f'id="{prefix}-{m.group(1)}"', svg)
    # references: href="#id" and url(#id)
    return re.sub(r"#([A-Za-z_][\w.\-]*)",
                  lambda m: f"#{prefix}-{m.group(1)}" if m.group(1) in ids else m.group(0), svg)


def figure_html(fig, caption: str, key: str) -> str:
    """One ``<figure>``: the embedded drawing, clickable to full size, and its caption.

    ``key`` makes the SVG ids unique on the page (use a different one per figure).
    """
    drawing = None
    if not _image_like(fig):
        drawing = _svg(fig, key)
        if len(drawing) > MAX_SVG_BYTES:
            drawing = None
        else:  # the caption is the drawing's accessible name, as alt is an <img>'s
            label = f'<svg role="img" aria-label="{html.escape(caption)}"'
            drawing = drawing.replace("<svg", label, 1)
    if drawing is None:
        drawing = f'<img src="data:image/png;base64,{_png(fig)}" alt="{html.escape(caption)}">'
    wide = " wide" if fig.get_figwidth() >= WIDE_INCHES else ""
    return (f'<figure class="fig{wide}"><details><summary>{drawing}</summary></details>'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>")


def write_report(out_dir, sections) -> Path:
    """Write ``out_dir/index.html`` for ``sections`` (a list of ``(name, Section)``)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    body = ["<h1>bayesdl demo report</h1><ul>"]
    body += [f'<li><a href="#{name}">{html.escape(s.title)}</a></li>' for name, s in sections]
    body.append("</ul><p><small>Click a figure to see it full size; click again to close."
                "</small></p>")
    for name, s in sections:
        body.append(f'<h2 id="{name}">{html.escape(s.title)}</h2>')
        body.append(f"<p><small>built in {s.seconds:.1f} s</small></p>")
        if s.error:
            body.append(f'<pre class="error">{html.escape(s.error)}</pre>')
            continue
        # a blank line in the summary starts a new paragraph
        body += [f"<p>{html.escape(p)}</p>" for p in s.summary.split("\n\n") if p.strip()]
        if s.table:
            rows = "".join(
                f'<tr><th>{html.escape(k)}</th><td class="num">{_fmt(v)}</td></tr>'
                for k, v in s.table.items()
            )
            body.append(f"<table>{rows}</table>")
        body += [figure_html(fig, caption, f"{name}-{i}")
                 for i, (caption, fig) in enumerate(s.figures)]
    page = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        "<title>bayesdl demo report</title>"
        f"<style>{_STYLE}</style></head><body>{''.join(body)}</body></html>"
    )
    return atomic_write_bytes(out / "index.html", page.encode())
