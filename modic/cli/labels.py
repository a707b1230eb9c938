"""``--labels FILE``: ROIs derived from a vertebra label map, for ``modic classify`` and
``modic annotate`` (see :mod:`modic.labelmap`)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from ..annotations import Annotations
    from ..study import LoadedStudy

__all__ = ["add_labels_arguments", "derived_annotations", "check_outside"]

logger = logging.getLogger(__name__)


def add_labels_arguments(p: argparse.ArgumentParser) -> None:
    """``--labels FILE``, ``--labels-convention NAME``, ``--labels-semantic FILE``,
    ``--replace-derived``."""
    from ..labelconventions import convention_names

    names = convention_names()
    g = p.add_argument_group("ROIs from a vertebra label map (TotalSpineSeg, SPINEPS, TotalSegmentator)")
    g.add_argument(
        "--labels",
        metavar="FILE",
        help="vertebra segmentation (NIfTI, NRRD or DICOM SEG) to derive endplate bands, body outlines "
        "and reference ROIs from; they are added where the annotation file has no ROI of that label "
        "(ROIs a person drew are never replaced)",
    )
    g.add_argument(
        "--labels-convention",
        metavar="NAME",
        type=str.lower,
        choices=names,
        help=f"which tool made the label map: {', '.join(names)} (required for NIfTI and NRRD; a DICOM "
        "SEG or a 3D Slicer .seg.nrrd is read by its segment names by default)",
    )
    g.add_argument(
        "--labels-semantic", metavar="FILE", help="SPINEPS only: its semantic mask, to take the body from it"
    )
    g.add_argument(
        "--replace-derived",
        action="store_true",
        help="replace ROIs derived earlier (from a label map) by the new ones",
    )


def check_outside(path: Path, study_dir: Path) -> None:
    """Refuse to write ``path`` inside the study's DICOM folder."""
    try:
        inside = path.resolve().is_relative_to(study_dir.resolve())
    except OSError:
        inside = False
    if inside:
        raise ValueError(
            f"{path}: inside the study folder {study_dir}; modic never writes into a DICOM folder: "
            "choose a file beside it"
        )


def derived_annotations(
    args: argparse.Namespace, study: LoadedStudy, existing: Annotations | None
) -> Annotations | None:
    """The annotations with ROIs derived from ``--labels`` merged in (None without ``--labels``).

    The merge is logged (what was added, what was left out because a drawn ROI exists).
    """
    if not getattr(args, "labels", None):
        if getattr(args, "labels_convention", None) or getattr(args, "labels_semantic", None):
            raise ValueError("--labels-convention and --labels-semantic go with --labels FILE")
        return None
    from ..labelmap import merge_derived, rois_from_labelmap

    derived = rois_from_labelmap(
        study,
        args.labels,
        args.labels_convention,
        semantic=args.labels_semantic,
        author=getattr(args, "author", "") or "",
    )
    merged, report = merge_derived(existing, derived, replace_derived=args.replace_derived)
    logger.info("%s: %s", Path(args.labels).name, report.summary())
    return merged
