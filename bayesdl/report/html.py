"""Render built sections to ``index.html`` with the figures as PNG files beside it."""

from __future__ import annotations

import html
import numbers
from pathlib import Path

from ..io import atomic_write_bytes

_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; color: #222; }
h1 { border-bottom: 2px solid #345; } h2 { margin-top: 2em; border-bottom: 1px solid #aaa; }
figure { display: inline-block; margin: 0.5em; max-width: 520px; vertical-align: top; }
figure img { max-width: 100%; } figcaption { font-size: 0.9em; color: #444; }
table { border-collapse: collapse; margin: 1em 0; } td, th { border: 1px solid #ccc; padding: 3px 8px; }
td.num { text-align: right; font-family: monospace; } pre.error { background: #fee; padding: 1em; }
"""


def _fmt(value) -> str:
    if isinstance(value, numbers.Integral):
        return str(value)
    if isinstance(value, numbers.Real):
        return f"{value:.4g}"
    return html.escape(str(value))


def write_report(out_dir, sections) -> Path:
    """Write ``out_dir/index.html`` for ``sections`` (a list of ``(name, Section)``)."""
    out = Path(out_dir)
    (out / "figures").mkdir(parents=True, exist_ok=True)
    body = ["<h1>bayesdl demo report</h1><ul>"]
    body += [f'<li><a href="#{name}">{html.escape(s.title)}</a></li>' for name, s in sections]
    body.append("</ul>")
    for name, s in sections:
        body.append(f'<h2 id="{name}">{html.escape(s.title)}</h2>')
        body.append(f"<p><small>built in {s.seconds:.1f} s</small></p>")
        if s.error:
            body.append(f'<pre class="error">{html.escape(s.error)}</pre>')
            continue
        if s.summary:
            body.append(f"<p>{html.escape(s.summary)}</p>")
        if s.table:
            rows = "".join(
                f'<tr><th>{html.escape(k)}</th><td class="num">{_fmt(v)}</td></tr>'
                for k, v in s.table.items()
            )
            body.append(f"<table>{rows}</table>")
        for i, (caption, fig) in enumerate(s.figures):
            rel = f"figures/{name}_{i}.png"
            fig.savefig(out / rel, dpi=90, bbox_inches="tight")
            body.append(
                f'<figure><img src="{rel}" alt="{html.escape(caption)}">'
                f"<figcaption>{html.escape(caption)}</figcaption></figure>"
            )
    page = (
        '<!doctype html><html><head><meta charset="utf-8"><title>bayesdl demo report</title>'
        f"<style>{_STYLE}</style></head><body>{''.join(body)}</body></html>"
    )
    return atomic_write_bytes(out / "index.html", page.encode())
