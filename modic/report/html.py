"""The pieces of a self-contained HTML page: escaping, tables, embedded figures, the page.

Everything is built with the standard library (:func:`html.escape`,
:class:`string.Template`). Figures are embedded as ``data:image/png;base64`` URIs and the
style sheet is inline, so the file opens anywhere without a network: the page references
no URL at all (``tests/test_report.py`` checks every ``src`` and ``href``).
"""

from __future__ import annotations

import base64
import html
from collections.abc import Iterable, Sequence
from string import Template
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

__all__ = ["esc", "table", "figure_html", "section", "paragraphs", "bullet_list", "page", "RESEARCH_NOTICE"]

#: The statement at the top of every report.
RESEARCH_NOTICE = (
    "Research tool, not a diagnosis. modic measures image signal in regions a reader drew and "
    "applies published criteria automatically; it is not a medical device and is not cleared "
    "for clinical use. Every finding must be checked on the images by a qualified radiologist "
    "before it informs any decision about a patient."
)

_CSS = """
body{font-family:"DejaVu Sans",Arial,Helvetica,sans-serif;color:#1b1b1b;max-width:1100px;
 margin:1.5em auto;padding:0 1.2em;line-height:1.45;font-size:15px}
h1{font-size:1.6em;margin-bottom:.2em}h2{font-size:1.25em;border-bottom:2px solid #ddd;
 padding-bottom:.2em;margin-top:1.8em}h3{font-size:1.05em;margin-top:1.3em}
.notice{border:2px solid #B03A00;background:#FFF4EC;padding:.7em 1em;border-radius:6px;
 font-weight:bold;color:#6B2300}
.meta{color:#555;font-size:.92em}
.summary{font-size:1.05em;background:#F5F7FA;border-left:4px solid #0072B2;padding:.6em 1em}
table{border-collapse:collapse;margin:.6em 0;font-size:.9em;width:100%}
th,td{border:1px solid #ccc;padding:.3em .5em;text-align:left;vertical-align:top}
th{background:#EEF1F4}tr.change td{background:#FFF8E5}tr.indeterminate td{background:#EAF3FA}
.swatch{display:inline-block;width:.9em;height:.9em;border:1px solid #333;vertical-align:-.1em;
 margin-right:.35em}
.swatch.striped{background-image:repeating-linear-gradient(45deg,#0072B2 0 3px,#fff 3px 5px)}
figure{margin:1em 0}
.figures{display:flex;flex-wrap:wrap;gap:0 1.2em;align-items:flex-start}
figure img{max-width:100%;height:auto;border:1px solid #ddd}
figure{display:table}figcaption{display:table-caption;caption-side:bottom;color:#444;font-size:.9em;
 margin-top:.3em}
.warnings li{margin:.2em 0}.research{border:1px dashed #777;padding:.6em 1em;background:#FAFAFA}
footer{margin-top:2.5em;color:#555;font-size:.85em;border-top:1px solid #ddd;padding-top:.6em}
@media print{body{max-width:none}figure{break-inside:avoid}}
"""

_PAGE = Template(
    """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="modic $version">
<title>$title</title>
<style>$css</style>
</head>
<body>
<header>
<h1>$title</h1>
<p class="notice" id="research-notice">$notice</p>
$meta
</header>
<main>
$body
</main>
<footer id="software">$footer</footer>
</body>
</html>
"""
)


def esc(text: object) -> str:
    """Text made safe for HTML (``&``, ``<``, ``>`` and quotes escaped)."""
    return html.escape(str(text), quote=True)


def table(
    headers: Sequence[str],
    rows: Iterable[Sequence[str]],
    *,
    row_classes: Sequence[str] | None = None,
    raw_columns: Iterable[int] = (),
    table_id: str = "",
) -> str:
    """An HTML table; cells are escaped except in ``raw_columns`` (already HTML)."""
    raw = set(raw_columns)
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = []
    for i, row in enumerate(rows):
        cls = f' class="{esc(row_classes[i])}"' if row_classes and row_classes[i] else ""
        cells = "".join(f"<td>{c if j in raw else esc(c)}</td>" for j, c in enumerate(row))
        body.append(f"<tr{cls}>{cells}</tr>")
    ident = f' id="{esc(table_id)}"' if table_id else ""
    return f"<table{ident}><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def figure_html(fig: Figure, alt: str, caption: str = "", *, dpi: float = 100, figure_id: str = "") -> str:
    """A figure embedded as a base64 PNG data URI, with its alternative text and caption."""
    from ..plot import figure_bytes

    data = base64.b64encode(figure_bytes(fig, "png", dpi=dpi)).decode("ascii")
    ident = f' id="{esc(figure_id)}"' if figure_id else ""
    cap = f"<figcaption>{esc(caption)}</figcaption>" if caption else ""
    return f'<figure{ident}><img alt="{esc(alt)}" src="data:image/png;base64,{data}">{cap}</figure>'


def section(title: str, body: str, *, section_id: str = "", level: int = 2) -> str:
    """A ``<section>`` with a heading (``title`` escaped, ``body`` already HTML)."""
    ident = f' id="{esc(section_id)}"' if section_id else ""
    return f"<section{ident}><h{level}>{esc(title)}</h{level}>\n{body}\n</section>"


def paragraphs(*texts: str, cls: str = "") -> str:
    """Escaped paragraphs."""
    c = f' class="{esc(cls)}"' if cls else ""
    return "\n".join(f"<p{c}>{esc(t)}</p>" for t in texts if t)


def bullet_list(items: Iterable[str], *, cls: str = "") -> str:
    """An escaped ``<ul>``."""
    c = f' class="{esc(cls)}"' if cls else ""
    return f"<ul{c}>" + "".join(f"<li>{esc(i)}</li>" for i in items) + "</ul>"


def page(title: str, body: str, *, meta: str, footer: str, version: str) -> str:
    """The whole document (``body``, ``meta`` and ``footer`` already HTML)."""
    return _PAGE.substitute(
        title=esc(title),
        css=_CSS,
        notice=esc(RESEARCH_NOTICE),
        meta=meta,
        body=body,
        footer=footer,
        version=esc(version),
    )
