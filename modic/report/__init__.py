"""A report a clinician can read: one self-contained HTML file (or a PDF) per study or batch.

The report says what was measured and on which series, gives the results endplate by
endplate in plain words, the figures of :mod:`modic.plot`, the warnings, the imaging
criterion of the FDA clearance of basivertebral nerve ablation as research information,
the software version, and that modic is a research tool, not a diagnosis. Images are
embedded as data URIs: the HTML references no URL and opens without a network. Patient
names and IDs appear only when asked for (``show_patient``).

Examples
--------
>>> import matplotlib
>>> matplotlib.use("Agg")
>>> import modic, modic.report, tempfile, pathlib
>>> name = "siemens_15T_type1_type2"
>>> study = modic.load_study(modic.data.sample_study_path(name))
>>> rois = modic.read_annotations(modic.data.sample_annotations_path(name))
>>> report = modic.report.study_report(study, rois, modic.classify(study, rois))
>>> path = modic.report.write_report(report, pathlib.Path(tempfile.mkdtemp()) / "report.html")
>>> "Research tool, not a diagnosis" in path.read_text(encoding="utf-8")
True

Command line: ``modic report STUDY|OUTDIR -o report.html`` (``--pdf report.pdf``;
``--figures DIR --format svg`` writes each figure as its own file too).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from .._io import atomic_write_bytes, atomic_write_text
from .batch import NoResultsError, batch_report, is_batch_output
from .document import Report, ReportFigure, StudySection, render_html, render_pdf
from .html import RESEARCH_NOTICE
from .study import study_report

__all__ = [
    "Report",
    "ReportFigure",
    "StudySection",
    "NoResultsError",
    "RESEARCH_NOTICE",
    "study_report",
    "batch_report",
    "is_batch_output",
    "render_html",
    "render_pdf",
    "write_report",
    "write_figures",
]


def write_report(report: Report, path: str | os.PathLike[str]) -> Path:
    """Write a report atomically: HTML for ``.html`` / ``.htm``, PDF for ``.pdf``.

    Raises
    ------
    ValueError
        For another suffix.
    """
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix in (".html", ".htm"):
        atomic_write_text(p, render_html(report))
    elif suffix == ".pdf":
        atomic_write_bytes(p, render_pdf(report))
    else:
        raise ValueError(f"{p}: a report is written as .html or .pdf, not {p.suffix or 'without a suffix'!r}")
    return p


def write_figures(
    report: Report, folder: str | os.PathLike[str], formats: Sequence[str] = ("png",)
) -> list[Path]:
    """Write every figure of a report as its own file, atomically.

    Files are named ``<name>.<format>`` for the cohort figures of a batch (``prevalence``,
    ``distributions``, ``confidence``, ``warnings``) and ``<study key>-<name>.<format>``
    for a study's (``images``, ``spine``, ``ratios``).

    Parameters
    ----------
    report : Report
    folder : path-like
        Created when missing.
    formats : sequence of {"png", "svg", "pdf"}

    Returns
    -------
    list of Path
    """
    from ..plot import save

    out = Path(folder)
    named = [(f.ident, f) for f in report.cohort_figures]
    named += [(f"{s.key}-{f.ident}", f) for s in report.studies for f in s.figures]
    paths = []
    for name, f in named:
        for fmt in formats:
            paths.append(save(f.figure, out / f"{name}.{fmt}"))
    return paths
