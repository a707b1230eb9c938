"""A report as data (:class:`Report`, :class:`StudySection`), and its HTML and PDF forms.

The study and batch builders (:mod:`modic.report.study`, :mod:`modic.report.batch`) fill
the dataclasses; :func:`render_html` writes one self-contained page (figures as base64 PNG
data URIs, inline CSS, no URL) and :func:`render_pdf` the same content through
matplotlib's PDF backend (a text page per study, then its figures).
"""

from __future__ import annotations

import io
import textwrap
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .content import (
    candidacy_section,
    finding_words,
    method_section,
    results_table,
    sort_rows,
    warnings_section,
)
from .html import RESEARCH_NOTICE, esc, figure_html, page, paragraphs, section, table

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

    from ..plot import _Row

__all__ = ["ReportFigure", "StudySection", "Report", "render_html", "render_pdf"]


@dataclass
class ReportFigure:
    """A figure of a report: ``ident`` (HTML id), the figure, its alternative text and caption."""

    ident: str
    figure: Figure
    alt: str
    caption: str = ""


@dataclass
class StudySection:
    """What the report says about one study.

    Attributes
    ----------
    key : str
        Pseudonymous study key.
    description : str
        The study description (StudyDescription), may be empty.
    identity : list of str
        Patient lines (name, ID, date), only when asked for (``--show-patient``).
    summary : str
    series : list of list of str
        Rows of the "measured on" table (role, series, description, detail, why chosen).
    contrast : str
        The study's measured contrast in words.
    rows : list
        Endplate rows (:mod:`modic.plot`).
    figures : list of ReportFigure
    candidacy : Candidacy or None
    other_warnings : list of str
        Warnings not tied to one endplate result (series, ROIs not measured).
    """

    key: str
    description: str
    identity: list[str]
    summary: str
    series: list[list[str]]
    contrast: str
    rows: list[_Row]
    figures: list[ReportFigure] = field(default_factory=list)
    candidacy: Any = None
    other_warnings: list[str] = field(default_factory=list)


@dataclass
class Report:
    """A whole report: one study, or a batch (a cohort part, then each study)."""

    title: str
    kind: str  # "study" or "batch"
    version: str
    generated: str
    summary: str
    studies: list[StudySection]
    meta: list[str] = field(default_factory=list)
    cohort_figures: list[ReportFigure] = field(default_factory=list)
    errors: list[list[str]] = field(default_factory=list)


_SERIES_HEADERS = ["Sequence", "Series", "Description", "Images", "Why this series"]


def _study_html(s: StudySection, level: int, *, with_summary: bool = True) -> str:
    h = level
    parts = [paragraphs(s.summary, cls="summary")] if with_summary else []
    if s.identity:
        parts.append(paragraphs(*s.identity, cls="meta"))
    measured = ""
    if s.series:
        measured += table(_SERIES_HEADERS, s.series, table_id=f"series-{s.key}")
    if s.contrast:
        measured += paragraphs(f"Measured contrast of this study: {s.contrast}.")
    parts.append(
        section(
            "What was measured, on which series",
            measured or paragraphs("-"),
            section_id=f"measured-{s.key}",
            level=h + 1,
        )
    )
    parts.append(
        section(
            "Results, endplate by endplate",
            results_table(s.rows, table_id=f"results-{s.key}"),
            section_id=f"results-section-{s.key}",
            level=h + 1,
        )
    )
    if s.figures:
        figs = "\n".join(
            figure_html(f.figure, f.alt, f.caption, figure_id=f"{f.ident}-{s.key}") for f in s.figures
        )
        parts.append(
            section(
                "Figures", f'<div class="figures">{figs}</div>', section_id=f"figures-{s.key}", level=h + 1
            )
        )
    parts.append(candidacy_section(s.candidacy, section_id=f"candidacy-{s.key}", level=h + 1))
    parts.append(warnings_section(s.rows, s.other_warnings, section_id=f"warnings-{s.key}", level=h + 1))
    return "\n".join(p for p in parts if p)


def render_html(report: Report) -> str:
    """The report as one self-contained HTML document."""
    meta = paragraphs(*report.meta, f"modic {report.version}; report made {report.generated}.", cls="meta")
    body: list[str] = [section("Summary", paragraphs(report.summary, cls="summary"), section_id="summary")]
    if report.kind == "batch":
        if report.cohort_figures:
            figs = "\n".join(
                figure_html(f.figure, f.alt, f.caption, figure_id=f.ident) for f in report.cohort_figures
            )
            body.append(section("The cohort", figs, section_id="cohort"))
        if report.errors:
            body.append(
                section(
                    "Studies and regions that could not be measured",
                    table(["Study", "Stage", "What went wrong"], report.errors, table_id="errors"),
                    section_id="errors",
                )
            )
        for s in report.studies:
            head = f"Study {s.key}" + (f": {s.description}" if s.description else "")
            body.append(section(head, _study_html(s, 2), section_id=f"study-{s.key}"))
    else:
        (s,) = report.studies
        body.append(_study_html(s, 1, with_summary=False))
    body.append(method_section())
    footer = esc(
        f"Made by modic {report.version} on {report.generated}. {RESEARCH_NOTICE} "
        "The classifier, its thresholds and their sources are described in docs/classifier.md of the "
        "modic source."
    )
    return page(report.title, "\n".join(body), meta=meta, footer=footer, version=report.version)


# -- PDF ----------------------------------------------------------------------------------
_PAGE_SIZE = (8.27, 11.69)  # A4 portrait, inches


def _text_pages(lines: list[tuple[str, float, str]]) -> list[Figure]:
    """Figures of wrapped text: ``(text, font size, weight)`` lines, flowing over A4 pages."""
    from matplotlib.figure import Figure

    pages: list[Figure] = []
    fig, y = None, 0.0
    for text, size, weight in lines:
        width = int((92 if weight == "bold" else 104) * 9 / size)
        wrapped = textwrap.wrap(text, width) or [""]
        for w in wrapped:
            step = size * 1.45 / 72 / _PAGE_SIZE[1]
            if fig is None or y - step < 0.05:
                fig = Figure(figsize=_PAGE_SIZE)
                pages.append(fig)
                y = 0.95
            fig.text(0.07, y, w, fontsize=size, fontweight=weight, va="top", family="DejaVu Sans")
            y -= step
        y -= size * 0.5 / 72 / _PAGE_SIZE[1]
    return pages


def _study_lines(s: StudySection, *, heading: bool = True) -> list[tuple[str, float, str]]:
    """The text of a study's section; without ``heading``, no title and summary (the page
    already has them)."""
    out: list[tuple[str, float, str]] = []
    if heading:
        out.append((f"Study {s.key}" + (f": {s.description}" if s.description else ""), 13, "bold"))
    out += [(line, 9, "normal") for line in s.identity]
    if heading:
        out.append((s.summary, 10, "normal"))
    if s.series:
        out.append(("Measured on", 11, "bold"))
        out += [(" - " + " | ".join(row), 8.5, "normal") for row in s.series]
    if s.contrast:
        out.append((f"Measured contrast: {s.contrast}", 8.5, "normal"))
    out.append(("Results, endplate by endplate", 11, "bold"))
    for r in sort_rows(s.rows):
        sir = ", ".join(f"{k} {v[0]:.2f}x" for k, v in r.sir.items())
        conf = "" if r.confidence is None else f", confidence {r.confidence:.0%}"
        out.append((f"{r.level} {r.vertebra} {r.endplate}: {finding_words(r)}{conf}; {sir}", 8.5, "normal"))
        out += [(f"    warning: {w}", 8, "normal") for w in r.warnings]
    if s.candidacy is not None:
        out.append(
            ("Basivertebral nerve ablation: imaging criterion (research information, not advice)", 11, "bold")
        )
        out.append((s.candidacy.text, 8.5, "normal"))
    if s.other_warnings:
        out.append(("Warnings", 11, "bold"))
        out += [(w, 8.5, "normal") for w in s.other_warnings]
    return out


def render_pdf(report: Report) -> bytes:
    """The report as a PDF (matplotlib's PDF backend): text pages, then the figures."""
    from matplotlib.backends.backend_pdf import PdfPages

    head: list[tuple[str, float, str]] = [(report.title, 16, "bold"), (RESEARCH_NOTICE, 10, "bold")]
    head += [(m, 9, "normal") for m in report.meta]
    head += [
        (f"modic {report.version}; report made {report.generated}.", 9, "normal"),
        (report.summary, 10, "normal"),
    ]
    if report.errors:
        head.append(("Could not be measured", 11, "bold"))
        head += [(" - " + " | ".join(e), 8.5, "normal") for e in report.errors]
    buf = io.BytesIO()
    with PdfPages(buf, metadata={"Creator": f"modic {report.version}", "CreationDate": None}) as pdf:
        studies = list(report.studies)
        if report.kind == "study":  # one study: its text follows the title on the first page
            head += _study_lines(studies[0], heading=False)
        for fig in _text_pages(head):
            pdf.savefig(fig)
        for f in report.cohort_figures:
            pdf.savefig(f.figure)
        for s in studies:
            if report.kind != "study":
                for fig in _text_pages(_study_lines(s)):
                    pdf.savefig(fig)
            for f in s.figures:
                pdf.savefig(f.figure, facecolor=f.figure.get_facecolor())
    return buf.getvalue()
