"""``modic report``: one self-contained HTML (or PDF) report of a study or of a batch."""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from ..report import Report

__all__ = ["add_report_arguments", "run_report"]

logger = logging.getLogger(__name__)

REPORT_EPILOG = """\
SOURCE is either
  a study folder, with its annotations beside it (STUDY.modic.json, or --annotations FILE):
    the study is loaded and classified, and the report shows the images at each level
    with a finding; or
  the output folder of 'modic batch ROOT -o OUTDIR' (results.jsonl or results.csv,
    summary.json, errors.csv): the report shows the cohort, then each study.

The HTML file is self-contained (figures embedded as data URIs, no network access) and
names studies by their pseudonymous key and description; patient name and ID appear only
with --show-patient. It states that modic is a research tool, not a diagnosis.
Exit status: 0 written, 1 nothing to report on (no results, no annotations), 2 usage error.
"""


def _report_path(text: str) -> Path:
    """argparse type: a path ending in .html, .htm or .pdf."""
    p = Path(text)
    if p.suffix.lower() not in (".html", ".htm", ".pdf"):
        raise argparse.ArgumentTypeError(f"the report is written as .html or .pdf, got {text!r}")
    return p


def add_report_arguments(p: argparse.ArgumentParser) -> None:
    """The arguments of ``modic report`` (series selection options are added by the caller)."""
    p.add_argument("source", metavar="STUDY|OUTDIR", help="a study folder, or a 'modic batch' output folder")
    p.add_argument(
        "-o",
        "--output",
        metavar="REPORT",
        required=True,
        type=_report_path,
        help="the report file: .html (self-contained) or .pdf",
    )
    p.add_argument(
        "--pdf",
        metavar="FILE",
        type=_report_path,
        help="also write the report as a PDF (matplotlib's PDF backend)",
    )
    p.add_argument(
        "--annotations",
        metavar="FILE",
        help="annotation file of a study (default: the sibling file STUDY.modic.json)",
    )
    p.add_argument(
        "--show-patient",
        action="store_true",
        help="show patient name and ID, study date and accession number (hidden by default)",
    )
    p.add_argument("--title", metavar="TEXT", help="the report's title")
    p.add_argument(
        "--figures",
        metavar="DIR",
        type=Path,
        help="also write every figure of the report to DIR as its own file (STUDY-NAME.FORMAT)",
    )
    p.add_argument(
        "--format",
        dest="figure_formats",
        metavar="FMT",
        action="append",
        choices=("png", "svg", "pdf"),
        help="file format of --figures: png (default), svg or pdf; repeatable",
    )


def _is_within(path: Path, folder: Path) -> bool:
    p, f = path.resolve(), folder.resolve()
    return p == f or f in p.parents


def _study_report(args: argparse.Namespace, study_dir: Path) -> Report | None:
    from ..annotations import ROI, annotation_path_for, read_annotations
    from ..batch import study_for_annotations
    from ..dicomfolder import scan
    from ..reading import classify
    from ..report import study_report
    from ..study import load_study

    ann_path = Path(args.annotations) if args.annotations else annotation_path_for(study_dir)
    if not ann_path.is_file() and not args.annotations and any(study_dir.glob("*.modic.json")):
        logger.error(
            "nothing to report on in %s: it holds annotated studies (NAME.modic.json beside NAME/); "
            "classify them with 'modic batch %s -o OUTDIR', then run 'modic report OUTDIR -o report.html' "
            "(or give one study folder)",
            study_dir,
            study_dir,
        )
        return None
    if not ann_path.is_file():
        how = "the file given with --annotations" if args.annotations else "the annotation file"
        logger.error(
            "nothing to report on in %s: it is not a 'modic batch' output folder (no results.csv) and %s "
            "is missing (expected at %s); draw the endplate and reference ROIs first (modic annotate), or "
            "name the file with --annotations FILE",
            study_dir,
            how,
            ann_path,
        )
        return None
    annotations = read_annotations(ann_path)
    roles = dict(args.role) if args.role else None
    found = study_for_annotations(scan(study_dir, roles=roles), annotations, args.study)
    study = load_study(found, t1=args.t1, t2=args.t2, stir=args.stir)
    errors: list[tuple[ROI, str]] = []
    log = logging.getLogger("modic.reading")
    level = log.level
    log.setLevel(max(logging.ERROR, level))  # their content is in the report
    try:
        results = classify(study, annotations, errors=errors)
    finally:
        log.setLevel(level)
    return study_report(
        study, annotations, results, errors=errors, show_patient=args.show_patient, title=args.title
    )


def run_report(args: argparse.Namespace) -> int:
    """Run ``modic report``; returns the exit code."""
    import matplotlib

    matplotlib.use("Agg")  # figures are only ever saved here
    from ..report import batch_report, is_batch_output, write_figures, write_report

    if args.figure_formats and args.figures is None:
        logger.error("--format is the file format of --figures DIR; give --figures too")
        return 2
    source = Path(args.source)
    if not source.exists():
        raise FileNotFoundError(f"{source}: no such file or folder")
    outputs = [args.output] + ([args.pdf] if args.pdf else [])
    if is_batch_output(source):
        report = batch_report(source, show_patient=args.show_patient, title=args.title)
    else:
        if not source.is_dir():
            logger.error("%s: give a study folder or a 'modic batch' output folder", source)
            return 1
        for out in outputs:
            if _is_within(out.parent, source):
                logger.error(
                    "%s lies inside the study folder %s; modic never writes into input folders: choose a "
                    "report path outside it",
                    out,
                    source,
                )
                return 2
        made = _study_report(args, source)
        if made is None:
            return 1
        report = made
    for out in outputs:
        path = write_report(report, out)
        print(f"wrote {os.fspath(path)}")
    if args.figures is not None:
        if not is_batch_output(source) and _is_within(args.figures, source):
            logger.error(
                "--figures %s lies inside the study folder %s; choose a folder outside it",
                args.figures,
                source,
            )
            return 2
        for path in write_figures(report, args.figures, args.figure_formats or ["png"]):
            print(f"wrote {os.fspath(path)}")
    return 0
