"""``modic info``: what a folder holds, as a table or as JSON."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

from ..dicomfolder import scan
from ..errors import SeriesSelectionError
from ..sequence import Role
from ..series import ScanResult, Series, Study
from ..study import READING_ROLES, Selection, select_series

__all__ = ["run_info", "describe_scan"]

logger = logging.getLogger(__name__)


def _fmt(v: float | None, digits: int = 1) -> str:
    return "-" if v is None else f"{v:.{digits}f}".rstrip("0").rstrip(".")


def _series_dict(s: Series, include_identifiers: bool) -> dict[str, Any]:
    q = s.sequence
    n, r, c = s.shape
    spacing = None
    if s.geometry is not None:
        g = s.geometry
        spacing = [round(g.slice_spacing, 3), round(g.pixel_spacing[0], 4), round(g.pixel_spacing[1], 4)]
    d: dict[str, Any] = {
        "key": s.key,
        "number": s.number,
        "stack": s.stack,
        "description": s.description,
        "role": s.role.value,
        "plane": s.plane.value,
        "fat_suppressed": s.identity.fat_suppressed,
        "tilt_degrees": None if s.identity.tilt_degrees is None else round(s.identity.tilt_degrees, 1),
        "matrix": [r, c],
        "slices": n,
        "spacing_mm": spacing,
        "slice_thickness_mm": s.frames[0].slice_thickness,
        "repetition_time_ms": q.repetition_time,
        "echo_time_ms": q.echo_time,
        "inversion_time_ms": q.inversion_time,
        "field_strength_t": q.field_strength,
        "manufacturer": s.manufacturer,
        "transfer_syntaxes": sorted({f.encoding.transfer_syntax for f in s.frames}),
        "usable": s.usable,
        "reasons": list(s.identity.reasons),
        "warnings": list(s.warnings),
        "problems": list(s.problems),
        # UIDs name the data, not the patient (annotation files and DICOM SR carry them too):
        # always given, so that a series can be found again in a PACS or a viewer.
        "series_instance_uid": s.series_uid,
    }
    return d


def _selection_dict(sel: Selection) -> dict[str, Any]:
    return {
        "series": None if sel.series is None else sel.series.key,
        "reason": sel.reason,
        "candidates": [s.key for s in sel.candidates],
    }


def _selections(study: Study, choices: dict[Role, str | None]) -> dict[Role, Selection]:
    out = {}
    for role in READING_ROLES:
        try:
            out[role] = select_series(study, role, choices.get(role))
        except SeriesSelectionError as exc:
            out[role] = Selection(role, None, str(exc).splitlines()[0])
    return out


def describe_scan(
    result: ScanResult,
    *,
    include_identifiers: bool = False,
    choices: dict[Role, str | None] | None = None,
) -> dict[str, Any]:
    """A JSON-able description of a scan: studies, series, selections, skipped files.

    Patient name and ID, study date and accession number are left out unless
    ``include_identifiers`` is true; studies are named by their pseudonymous key. The
    Study and Series Instance UIDs are always given (they name the data, not the patient,
    and find it again in a PACS or viewer).
    """
    choices = choices or {}
    studies = []
    for st in result.studies:
        sd: dict[str, Any] = {
            "key": st.key,
            "study_instance_uid": st.study_uid,
            "description": st.description,
            "series": [_series_dict(s, include_identifiers) for s in st.series],
            "reading": {r.value: _selection_dict(sel) for r, sel in _selections(st, choices).items()},
        }
        if include_identifiers:
            sd.update(
                patient_name=st.patient_name,
                patient_id=st.patient_id,
                study_date=st.date,
                accession_number=st.accession_number,
            )
        studies.append(sd)
    return {
        "root": str(result.root),
        "files": result.n_files,
        "studies": studies,
        "skipped": [{"path": _rel(f.path, result.root), "reason": f.reason} for f in result.skipped],
        "skipped_summary": result.skipped_summary(),
    }


def _rel(path: Path, root: Path) -> str:
    try:
        return os.path.relpath(path, root)
    except ValueError:
        return str(path)


def _text(desc: dict[str, Any]) -> str:
    lines: list[str] = []
    n_series = sum(len(st["series"]) for st in desc["studies"])
    lines.append(
        f"{desc['root']}: {len(desc['studies'])} stud{'y' if len(desc['studies']) == 1 else 'ies'}, "
        f"{n_series} series in {desc['files']} files ({len(desc['skipped'])} skipped)"
    )
    for st in desc["studies"]:
        lines.append("")
        title = f"Study {st['key']}"
        if st.get("description"):
            title += f"  {st['description']!r}"
        if "patient_name" in st:
            title += f"  patient {st['patient_name']!r} id {st['patient_id']!r} date {st['study_date']}"
        lines.append(title)
        header = ("series", "role", "plane", "matrix", "slices", "spacing mm", "TR/TE/TI ms", "description")
        rows = []
        for s in st["series"]:
            sp = s["spacing_mm"]
            spacing = "-" if sp is None else f"{sp[0]:.2f} x {sp[1]:.2f} x {sp[2]:.2f}"
            role = s["role"] + (" FS" if s["fat_suppressed"] and s["role"] != "STIR" else "")
            rows.append(
                (
                    s["key"],
                    role,
                    s["plane"],
                    f"{s['matrix'][0]}x{s['matrix'][1]}",
                    str(s["slices"]),
                    spacing,
                    f"{_fmt(s['repetition_time_ms'])}/{_fmt(s['echo_time_ms'])}/{_fmt(s['inversion_time_ms'])}",
                    s["description"] or "(no description)",
                )
            )
        widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
        lines.append("  " + "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip())
        for r in rows:
            lines.append("  " + "  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip())
        lines.append("  why:")
        for s in st["series"]:
            lines.append(f"    {s['key']:>5} {s['role']}: " + "; ".join(s["reasons"]))
        notes = [(s["key"], w) for s in st["series"] for w in s["warnings"]]
        notes += [(s["key"], "NOT USABLE: " + p) for s in st["series"] for p in s["problems"]]
        if notes:
            lines.append("  warnings:")
            lines.extend(f"    {k:>5} {w}" for k, w in notes)
        lines.append("  Modic reading:")
        for role, sel in st["reading"].items():
            lines.append(f"    {role:<5} {sel['series'] or '-':>5}  {sel['reason']}")
    if desc["skipped"]:
        lines.append("")
        lines.append(f"Skipped {len(desc['skipped'])} file(s):")
        by_reason: dict[str, list[str]] = defaultdict(list)
        for f in desc["skipped"]:
            by_reason[f["reason"]].append(f["path"])
        for reason, paths in sorted(by_reason.items(), key=lambda kv: (-len(kv[1]), kv[0])):
            shown = ", ".join(paths[:4]) + (f", ... ({len(paths) - 4} more)" if len(paths) > 4 else "")
            lines.append(f"  {len(paths):>4}  {reason}: {shown}")
    return "\n".join(lines) + "\n"


def run_info(args: argparse.Namespace) -> int:
    """Run ``modic info``; returns the exit code."""
    roles = dict(args.role) if args.role else None
    result = scan(args.path, roles=roles)
    choices = {Role.T1: args.t1, Role.T2: args.t2, Role.STIR: args.stir}
    if args.study is not None:
        result.studies = [st for st in result.studies if args.study in (st.key, st.study_uid)]
        if not result.studies:
            logger.error("no study matches %r under %s", args.study, args.path)
            return 1
    desc = describe_scan(result, include_identifiers=args.include_identifiers, choices=choices)
    if args.json:
        json.dump(desc, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(_text(desc))
    usable = [s for s in result.all_series() if s.usable]
    if not usable:
        logger.error("no usable DICOM image series found under %s", args.path)
        return 1
    return 0
