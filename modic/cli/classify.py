"""``modic classify``: the Modic type of every annotated endplate of one study."""

from __future__ import annotations

import argparse
import logging
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from ..annotations import ROI, annotation_path_for, read_annotations, write_annotations
from ..batch import describe_roi_error, study_for_annotations
from ..dicomfolder import scan
from ..reading import classify
from ..sequence import Role
from ..study import LoadedStudy, load_study, select_study
from .labels import check_outside, derived_annotations

if TYPE_CHECKING:  # pragma: no cover
    from ..results import ModicResult, ModicResults

__all__ = ["run_classify", "format_results"]

logger = logging.getLogger(__name__)

_ROLES = (Role.T1, Role.T2, Role.STIR)
_HEADER = (
    ("level", "vertebra", "endplate", "type", "confidence")
    + tuple(f"{r.value} SIR (95% CI)" for r in _ROLES)
    + ("extent", "voxels", "reference")
)


def _sir(result: ModicResult, role: Role) -> str:
    s = result.ratios.get(role)
    return "-" if s is None else f"{s.ratio:.2f} ({s.low:.2f}-{s.high:.2f})"


def _extent(result: ModicResult) -> str:
    """``"C 64% large"``: Udby height grade and share, length grade (modic.extent)."""
    e = result.extent
    return "-" if e is None else f"{e.height_grade} {e.height_fraction:.0%} {e.length_grade}"


def _row(result: ModicResult) -> tuple[str, ...]:
    rec = result.to_record()
    return (
        rec["level"] or "-",
        rec["vertebra"],
        rec["endplate"] or "-",
        result.modic_type.value,
        f"{result.confidence:.2f}",
        *(_sir(result, r) for r in _ROLES),
        _extent(result),
        str(rec["voxels"]),
        rec["reference"],
    )


def _title(study: LoadedStudy, include_identifiers: bool) -> list[str]:
    st = study.study
    title = f"Study {st.key}"
    if st.description:
        title += f"  {st.description!r}"
    if include_identifiers:
        title += f"  patient {st.patient_name!r} id {st.patient_id!r} uid {st.study_uid}"
    series = "; ".join(f"{r.value} {v.series.label()}" for r, v in study.volumes.items())
    return [title, f"Series: {series}"]


def format_results(results: ModicResults, study: LoadedStudy, *, include_identifiers: bool = False) -> str:
    """A readable table of a study's results: one row per endplate, then its explanation
    and warnings indented beneath it.

    Each row gives the change's extent (Udby height grade, its share of the body height,
    and the length grade along the endplate; :mod:`modic.extent`); the last lines say
    which levels meet the imaging criterion of the FDA clearance of basivertebral nerve
    ablation (research information with its source, :mod:`modic.candidacy`).

    The title gives the study's measured contrast (fat on every sequence, how well STIR
    suppresses it, marrow SNR: :meth:`modic.contrast.StudyContrast.describe`); the last line
    counts the endplates per type, indeterminate ones on their own (neither a change nor
    normal).

    Parameters
    ----------
    results : ModicResults
    study : LoadedStudy
        The study the results are of (for the title).
    include_identifiers : bool
        Show patient name and ID and the StudyInstanceUID in the title.

    Returns
    -------
    str
    """
    lines = _title(study, include_identifiers)
    if results.contrast is not None:
        lines.append(f"Measured contrast: {results.contrast.describe()}")
    lines.append("")
    rows = [_row(r) for r in results]
    widths = [max([len(h), *(len(row[i]) for row in rows)]) for i, h in enumerate(_HEADER)]
    indent = " " * (widths[0] + 2)
    lines.append("  ".join(h.ljust(w) for h, w in zip(_HEADER, widths, strict=True)).rstrip())
    for result, row in zip(results, rows, strict=True):
        lines.append("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())
        lines.append(indent + result.explanation)
        lines.extend(f"{indent}warning: {w}" for w in result.warnings)
    counts = results.type_counts()
    summary = ", ".join(
        f"{counts[t]} indeterminate" if t == "indeterminate" else f"{counts[t]} type {t}"
        for t in sorted(counts, key=_type_order)
    )
    if any(r.extent is not None for r in results):
        lines.append("")
        lines.append(
            "extent: Udby height grade (A < 25 %, B 25-50 %, C > 50 % of the body height) and share, "
            "length along the endplate (small < 25 %, medium 25-50 %, large >= 50 %)"
        )
    if len(results) and len({r.study_key for r in results}) == 1:
        lines.append("")
        lines.append(textwrap.fill(results.candidacy.text, width=100))
    lines.append("")
    lines.append(f"{len(results)} endplate{'s' if len(results) != 1 else ''}: {summary or 'none'}")
    return "\n".join(lines) + "\n"


def _type_order(t: str) -> tuple[int, str]:
    return (len(t), t)  # 0..3, then 1/2, 2/3, then indeterminate (the longest)


@contextmanager
def _quiet(name: str) -> Iterator[None]:
    """Silence one logger's warnings (their content is reported otherwise)."""
    log = logging.getLogger(name)
    level = log.level
    log.setLevel(max(logging.ERROR, level))
    try:
        yield
    finally:
        log.setLevel(level)


def run_classify(args: argparse.Namespace) -> int:
    """Run ``modic classify``; returns the exit code."""
    study_dir = Path(args.study_dir)
    if not study_dir.exists():
        raise FileNotFoundError(f"{study_dir}: no such file or folder")
    ann_path = Path(args.annotations) if args.annotations else annotation_path_for(study_dir)
    labels = getattr(args, "labels", None)
    if not ann_path.exists() and not labels:
        how = "the file given with --annotations" if args.annotations else "the default annotation file"
        logger.error(
            "no annotations for %s: expected %s at %s; draw the endplate and reference ROIs first, "
            "or name the file with --annotations FILE",
            study_dir,
            how,
            ann_path,
        )
        return 1
    annotations = read_annotations(ann_path) if ann_path.exists() else None
    roles = dict(args.role) if args.role else None
    scanned = scan(study_dir, roles=roles)
    found = (
        study_for_annotations(scanned, annotations, args.study)
        if annotations is not None
        else select_study(scanned, args.study)
    )
    study = load_study(found, t1=args.t1, t2=args.t2, stir=args.stir)
    save = getattr(args, "save_annotations", None)
    if save:
        check_outside(Path(save), study_dir)
    merged = derived_annotations(args, study, annotations)
    if merged is not None:
        annotations = merged
        if save:
            write_annotations(annotations, save)
            logger.info("annotations with the derived ROIs written to %s", save)
    elif save:
        raise ValueError("--save-annotations goes with --labels FILE")
    assert annotations is not None
    errors: list[tuple[ROI, str]] = []
    with _quiet("modic.reading"):
        results = classify(study, annotations, errors=errors)
    if args.json:
        sys.stdout.write(results.to_json())
    elif getattr(args, "csv", False):
        sys.stdout.write(results.to_csv())
    else:
        sys.stdout.write(format_results(results, study, include_identifiers=args.include_identifiers))
    for roi, message in errors:
        logger.error("cannot measure: %s", describe_roi_error(roi, message))
    if errors:
        n = len(errors) + len(results)
        logger.error("%d of %d endplate ROIs could not be measured", len(errors), n)
        return 1
    return 0
