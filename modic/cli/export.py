"""``modic export`` (a study's ROIs and results as DICOM SR / SEG) and ``modic import``
(the ROIs of a DICOM SR as a modic annotation file); see :mod:`modic.sr`, :mod:`modic.seg`."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from ..annotations import ROI

__all__ = ["add_export_arguments", "add_import_arguments", "run_export", "run_import"]

logger = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2

_IDENTIFIERS_NOTE = (
    "the DICOM objects carry the patient and study modules (name, ID, dates) of the source "
    "images, as DICOM requires"
)


def add_export_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``modic export``."""
    p.add_argument("study_dir", metavar="STUDY", help="study folder (scanned recursively)")
    p.add_argument("-o", "--outdir", metavar="DIR", required=True, help="output folder (created)")
    p.add_argument("--sr", action="store_true", help="write a DICOM SR measurement report (TID 1500)")
    p.add_argument("--seg", action="store_true", help="write a DICOM SEG (BINARY), one segment per ROI")
    p.add_argument(
        "--annotations", metavar="FILE", help="annotation file (default: the sibling file STUDY.modic.json)"
    )
    p.add_argument(
        "--no-results",
        action="store_true",
        help="write the ROIs only, without classifying them (no ratios or Modic types in the SR)",
    )
    p.add_argument("--force", action="store_true", help="replace output files that exist")


def add_import_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``modic import``."""
    p.add_argument("sr_file", metavar="SR", help="DICOM SR measurement report (modic, OHIF, 3D Slicer)")
    p.add_argument("study_dir", metavar="STUDY", help="the study folder the SR refers to")
    p.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        help="annotation file to write (default: the sibling file STUDY.modic.json)",
    )
    p.add_argument("--force", action="store_true", help="replace the annotation file if it exists")


def _inside(path: Path, folder: Path) -> bool:
    p, f = path.resolve(), folder.resolve()
    return p == f or f in p.parents


def _check_writable(paths: list[Path], force: bool) -> str | None:
    existing = [p for p in paths if p.exists()]
    if existing and not force:
        return f"{existing[0]} exists; choose another output folder or pass --force to replace it"
    return None


def run_export(args: argparse.Namespace) -> int:
    """Run ``modic export``; returns the exit code."""
    from ..annotations import annotation_path_for, read_annotations
    from ..batch import study_for_annotations
    from ..dicomfolder import scan
    from ..study import load_study

    if not (args.sr or args.seg):
        logger.error("nothing to export: choose --sr and/or --seg")
        return EXIT_USAGE
    study_dir = Path(args.study_dir)
    if not study_dir.exists():
        raise FileNotFoundError(f"{study_dir}: no such file or folder")
    outdir = Path(args.outdir)
    if study_dir.is_dir() and _inside(outdir, study_dir):
        logger.error(
            "the output folder %s lies inside the study folder %s; modic never writes into input "
            "folders: choose a folder outside it",
            outdir,
            study_dir,
        )
        return EXIT_USAGE
    ann_path = Path(args.annotations) if args.annotations else annotation_path_for(study_dir)
    if not ann_path.is_file():
        logger.error(
            "no annotations for %s at %s; draw the ROIs first or name the file with --annotations FILE",
            study_dir,
            ann_path,
        )
        return EXIT_FAILED
    annotations = read_annotations(ann_path)
    roles = dict(args.role) if getattr(args, "role", None) else None
    found = study_for_annotations(scan(study_dir, roles=roles), annotations, getattr(args, "study", None))
    key = found.key
    sr_path = outdir / f"{key}-sr.dcm"
    seg_path = outdir / f"{key}-seg.dcm"
    planned = ([sr_path] if args.sr else []) + ([seg_path] if args.seg else [])
    problem = _check_writable(planned, args.force)
    if problem:
        logger.error("%s", problem)
        return EXIT_USAGE
    written: list[Path] = []
    if args.sr:
        from ..sr import write_sr

        results = None
        study = None
        if not args.no_results:
            from ..reading import classify

            study = load_study(found, t1=args.t1, t2=args.t2, stir=args.stir)
            errors: list[tuple[ROI, str]] = []
            results = classify(study, annotations, errors=errors)
            for roi, message in errors:
                logger.warning(
                    "not measured (its group has no results): %s %s: %s", roi.label, roi.id, message
                )
        written.append(write_sr(study if study is not None else found, annotations, results, sr_path))
    if args.seg:
        from ..seg import write_seg

        written += write_seg(found, annotations, seg_path)
    for p in written:
        sys.stdout.write(f"{p}\n")
    logger.info("%s", _IDENTIFIERS_NOTE)
    return EXIT_OK


def run_import(args: argparse.Namespace) -> int:
    """Run ``modic import``; returns the exit code."""
    from ..annotations import annotation_path_for, write_annotations
    from ..dicomfolder import scan
    from ..sr import read_sr

    sr_file = Path(args.sr_file)
    study_dir = Path(args.study_dir)
    for p in (sr_file, study_dir):
        if not p.exists():
            raise FileNotFoundError(f"{p}: no such file or folder")
    out = Path(args.output) if args.output else annotation_path_for(study_dir)
    if study_dir.is_dir() and _inside(out, study_dir):
        logger.error(
            "%s lies inside the study folder %s; modic never writes into input folders", out, study_dir
        )
        return EXIT_USAGE
    problem = _check_writable([out], args.force)
    if problem:
        logger.error("%s", problem)
        return EXIT_USAGE
    skipped: list[str] = []
    annotations = read_sr(sr_file, scan(study_dir), skipped=skipped)
    for line in skipped:
        logger.warning("%s: skipped %s", sr_file, line)
    if not annotations.rois:
        logger.error("%s: no ROI modic can use (see the lines above)", sr_file)
        return EXIT_FAILED
    write_annotations(annotations, out, overwrite=True)
    sys.stdout.write(f"{len(annotations.rois)} ROIs from {sr_file} written to {os.fspath(out)}\n")
    for roi in annotations.rois:
        sys.stdout.write(f"  {roi.label}  ({roi.origin})\n")
    return EXIT_OK
