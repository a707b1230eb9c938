"""``modic propose``: endplate bands, body outlines and references proposed from the image."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

__all__ = ["add_propose_parser", "run_propose"]

logger = logging.getLogger(__name__)


def _anchor(text: str) -> tuple[str, tuple[float, float, float]]:
    """argparse type for ``LEVEL:X,Y,Z`` (an LPS point in mm inside that body)."""
    try:
        level, xyz = text.split(":", 1)
        pt = tuple(float(v) for v in xyz.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected LEVEL:X,Y,Z (e.g. L5:0,-20,-60), got {text!r}") from None
    if len(pt) != 3:
        raise argparse.ArgumentTypeError(f"expected three coordinates X,Y,Z (LPS mm), got {text!r}")
    return level.strip().upper(), (pt[0], pt[1], pt[2])


def _mm(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a length in mm, got {text!r}") from None


def add_propose_parser(sub: Any, add_selection_options: Any) -> None:
    """Register ``modic propose`` on the ``modic`` sub-parsers."""
    p = sub.add_parser(
        "propose",
        description=(
            "Find the lumbar vertebral bodies T12-S1 on the sagittal T1 of STUDY, name them by "
            "counting up from the sacrum, outline each on its midline slice and propose for every "
            "endplate a band of marrow next to it and one reference ROI of central marrow per "
            "vertebra (docs/propose.md). The ROIs are marked origin 'proposed'; open them in "
            "'modic annotate' to accept or edit them. Uncertain levels are warned about."
        ),
    )
    p.add_argument("study_dir", metavar="STUDY", help="folder (or file) of the study's DICOM files")
    p.add_argument(
        "-o", "--output", metavar="FILE",
        help="annotation file to write (default: STUDY.modic.json beside the study folder, never "
             "inside it)",
    )
    p.add_argument(
        "--merge", action="store_true",
        help="the output file exists: add the proposed ROIs to it, keeping every ROI a person drew "
             "(earlier proposed ROIs are replaced)",
    )
    p.add_argument("--anchor", metavar="LEVEL:X,Y,Z", type=_anchor,
                   help="the body containing this LPS point (mm) is LEVEL; the others are counted from it")
    p.add_argument("--shift", metavar="N", type=int, default=0,
                   help="shift every proposed label N vertebrae down (+1: L4 -> L5) after counting")
    p.add_argument("--band-height", metavar="MM", type=_mm, default=None,
                   help="height of the endplate bands (default 5 mm, modic.bands)")
    p.add_argument("--band-inset", metavar="MM", type=_mm, default=None,
                   help="distance of the bands from the endplate surface (default 1 mm)")
    p.add_argument("--author", default="", help="written into every proposed ROI")
    p.add_argument("--json", action="store_true", help="what was found, as JSON on stdout")
    add_selection_options(p)
    p.set_defaults(func=run_propose)


def run_propose(args: argparse.Namespace) -> int:
    """Run ``modic propose``; returns the exit code."""
    from ..annotations import annotation_path_for, read_annotations, write_annotations
    from ..bands import BandSettings
    from ..dicomfolder import scan
    from ..propose import merge_proposed, propose, relabel
    from ..study import load_study, select_study
    from .labels import check_outside

    study_dir = Path(args.study_dir)
    if not study_dir.exists():
        raise FileNotFoundError(f"{study_dir}: no such file or folder")
    out = Path(args.output) if args.output else annotation_path_for(study_dir)
    check_outside(out, study_dir)
    existing = None
    if out.exists():
        existing = read_annotations(out)
        if not args.merge:
            drawn = sum(r.origin != "proposed" for r in existing.rois)
            logger.error(
                "%s exists (%d ROIs, %d not proposed): not overwritten; pass --merge to add the proposed "
                "ROIs to it (every ROI a person drew is kept) or -o FILE for another file",
                out, len(existing.rois), drawn,
            )
            return 1
    kw: dict[str, float] = {}
    if args.band_height is not None:
        kw["height_mm"] = args.band_height
    if args.band_inset is not None:
        kw["inset_mm"] = args.band_inset
    settings = BandSettings(**kw)
    scanned = scan(study_dir, roles=dict(args.role) if args.role else None)
    found = select_study(scanned, args.study)
    study = load_study(found, t1=args.t1, t2=args.t2, stir=args.stir)
    prop = propose(study, settings=settings, anchor=args.anchor, author=args.author)
    ann = prop.annotations
    if args.shift:
        ann = relabel(ann, args.shift)
    merged, report = merge_proposed(existing, ann)
    write_annotations(merged, out)
    for w in prop.warnings:
        logger.warning("%s: %s", study.key, w)
    if args.json:
        doc = {
            "study": study.key,
            "output": str(out),
            "midline_slice": prop.midline_slice,
            "sacrum_found": prop.sacrum_found,
            "label_confidence": prop.label_confidence,
            "shift": args.shift,
            "bodies": [{"vertebra": b.name, "slice": b.slice_index, "confidence": b.confidence,
                        "centre_lps": [round(float(v), 2) for v in b.centre], "notes": b.notes}
                       for b in prop.bodies],
            "warnings": prop.warnings,
            "merge": {"added": report.added, "replaced": report.replaced, "kept_drawn": report.kept_drawn},
        }
        sys.stdout.write(json.dumps(doc, indent=1) + "\n")
        return 0
    names = [b.name for b in prop.bodies]
    lines = [f"Study {study.key}: {len(names)} vertebral bodies found ({names[0]}-{names[-1]}) on T1 "
             f"series {study.t1.series.label()}, midline slice {prop.midline_slice + 1}"]
    if args.shift:
        lines.append(f"labels shifted by {args.shift:+d}")
    for b in prop.bodies:
        lines.append(f"  {b.name:<4} slice {b.slice_index + 1:>2}  confidence {b.confidence:.2f}"
                     + (f"  ({'; '.join(b.notes)})" if b.notes else ""))
    lines.append(f"level confidence {prop.label_confidence:.2f}"
                 + ("" if prop.sacrum_found else " (no sacrum found: check the levels)"))
    for w in prop.warnings:
        lines.append(f"warning: {w}")
    lines.append(f"{report.summary().replace('derived', 'proposed')}; written to {out}")
    sys.stdout.write("\n".join(lines) + "\n")
    return 0
