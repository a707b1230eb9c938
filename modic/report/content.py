"""What a report says, in plain words: findings, tables, warnings, the criterion, the method.

Shared by the study report (:mod:`modic.report.study`) and the batch report
(:mod:`modic.report.batch`). Works on the endplate rows of :mod:`modic.plot` (from
:class:`~modic.results.ModicResult`, results.jsonl or results.csv alike).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from ..annotator.colors import MODIC_COLORS
from ..plot import ALL_LEVELS, TYPE_ORDER, _Row
from .html import bullet_list, esc, paragraphs, section, table

__all__ = [
    "finding_words",
    "summary_sentence",
    "results_table",
    "warnings_section",
    "candidacy_section",
    "method_section",
    "sort_rows",
]

_WORDS = {
    "0": "No Modic change (normal marrow)",
    "1": "Modic type 1: oedema pattern",
    "2": "Modic type 2: fatty marrow pattern",
    "3": "Modic type 3: sclerosis pattern",
    "1/2": "Mixed Modic type 1/2: oedema and fat side by side",
    "2/3": "Mixed Modic type 2/3: fat and sclerosis side by side",
    "indeterminate": "Cannot be typed",
}
_CALL_WORDS = {"hypo": "darker", "iso": "similar", "hyper": "brighter"}
#: Confidence below this is flagged "look again" (docs/classifier.md: 98 % of calls at or
#: above 0.9 were right on the held-out phantom cohort).
LOOK_AGAIN_BELOW = 0.9


def sort_rows(rows: Sequence[_Row]) -> list[_Row]:
    """Head to foot: by level, then superior before inferior... as read on a sagittal image."""
    order = {lv: i for i, lv in enumerate(ALL_LEVELS)}

    def key(r: _Row) -> tuple[int, int]:
        return (order.get(r.level, len(order)), 0 if r.endplate == "inferior" else 1)

    return sorted(rows, key=key)


def finding_words(r: _Row) -> str:
    """The type in words; for ``indeterminate`` with the reason."""
    words = _WORDS.get(r.modic_type, f"Modic {r.modic_type}")
    if r.modic_type == "indeterminate" and r.reason:
        words += f": {r.reason}"
    return words


def _confidence_words(c: float | None) -> str:
    if c is None:
        return "-"
    band = "high" if c >= LOOK_AGAIN_BELOW else ("moderate" if c >= 0.7 else "low")
    text = f"{c:.0%} ({band})"
    return text + ", look again" if c < LOOK_AGAIN_BELOW else text


def _signal_words(r: _Row) -> str:
    parts = []
    for role in ("T1", "T2", "STIR"):
        if role in r.sir:
            v, lo, hi = r.sir[role]
            call = _CALL_WORDS.get(r.calls.get(role, ""), "")
            parts.append(f"{role} {v:.2f}x" + (f" ({call})" if call else "") + f" [{lo:.2f}-{hi:.2f}]")
    return "; ".join(parts) if parts else "-"


def _extent_words(r: _Row) -> str:
    e = r.extent
    if not e or not e.get("height_grade"):
        return "-"
    out = f"grade {e['height_grade']}"
    hf = e.get("height_fraction")
    if hf is not None:
        out += f" ({float(hf):.0%} of body height)"
    if e.get("length_grade"):
        lf = e.get("length_fraction")
        out += f"; {e['length_grade']}" + (f" ({float(lf):.0%} of endplate length)" if lf is not None else "")
    if e.get("body_source") == "estimated":
        out += "; body height estimated"
    return out


def _swatch(t: str) -> str:
    if t == "indeterminate":
        return '<span class="swatch striped"></span>'
    return f'<span class="swatch" style="background:{esc(MODIC_COLORS.get(t, "#FFFFFF"))}"></span>'


def results_table(rows: Sequence[_Row], *, table_id: str = "") -> str:
    """One line per endplate, head to foot, in plain words."""
    rows = sort_rows(rows)
    headers = [
        "Level",
        "Endplate",
        "Finding",
        "Confidence",
        "Extent",
        "Signal compared with normal marrow (95 % interval)",
        "Notes",
    ]
    body, classes = [], []
    for r in rows:
        endplate = f"{r.vertebra} {r.endplate}".strip()
        body.append(
            [
                esc(r.level or "-"),
                esc(endplate),
                _swatch(r.modic_type) + esc(finding_words(r)),
                esc(_confidence_words(r.confidence)),
                esc(_extent_words(r)),
                esc(_signal_words(r)),
                esc("; ".join(r.warnings) or "-"),
            ]
        )
        classes.append(
            "indeterminate" if r.modic_type == "indeterminate" else ("change" if r.modic_type != "0" else "")
        )
    return table(headers, body, row_classes=classes, raw_columns=range(len(headers)), table_id=table_id)


def summary_sentence(rows: Sequence[_Row]) -> str:
    """What was found, in one or two sentences."""
    rows = sort_rows(rows)
    n = len(rows)
    if not n:
        return "No endplate was measured."
    levels = [r.level for r in rows if r.level]
    span = f" from {levels[0]} to {levels[-1]}" if levels else ""
    changes = [r for r in rows if r.modic_type not in ("0", "indeterminate")]
    indet = [r for r in rows if r.modic_type == "indeterminate"]
    head = f"{n} endplate{'s' if n != 1 else ''} measured{span}. "
    if changes:
        found = "; ".join(f"{r.vertebra} {r.endplate} ({r.level}): {_WORDS[r.modic_type]}" for r in changes)
        head += f"{len(changes)} with a Modic change: {found}."
    else:
        head += "No Modic change was found."
    normal = sum(1 for r in rows if r.modic_type == "0")
    head += f" {normal} without change."
    if indet:
        head += (
            f" {len(indet)} could not be typed ({', '.join(f'{r.vertebra} {r.endplate}' for r in indet)})."
        )
    low = [r for r in rows if r.confidence is not None and r.confidence < LOOK_AGAIN_BELOW]
    if low:
        head += (
            f" {len(low)} result{'s' if len(low) != 1 else ''} with confidence below {LOOK_AGAIN_BELOW:.0%}."
        )
    return head


def type_counts_text(rows: Sequence[_Row]) -> str:
    c = Counter(r.modic_type for r in rows)
    return ", ".join(
        f"{c[t]} indeterminate" if t == "indeterminate" else f"{c[t]} type {t}" for t in TYPE_ORDER if c[t]
    )


def warnings_section(
    rows: Sequence[_Row], other: Sequence[str] = (), *, section_id: str = "warnings", level: int = 2
) -> str:
    """Every warning: per endplate, then those of the study (series, ROIs not measured)."""
    items = [f"{r.vertebra} {r.endplate}: {w}" for r in sort_rows(rows) for w in r.warnings]
    items += [
        f"{r.vertebra} {r.endplate}: indeterminate, {r.reason}"
        for r in rows
        if r.modic_type == "indeterminate" and r.reason
    ]
    items += list(other)
    body = bullet_list(items, cls="warnings") if items else paragraphs("No warnings.")
    return section("Warnings", body, section_id=section_id, level=level)


def candidacy_section(cand: Any, *, section_id: str = "candidacy", level: int = 2) -> str:
    """The FDA-clearance imaging criterion as research information, with its source."""
    if cand is None:
        return ""
    body = paragraphs(
        "This is research information about a regulatory criterion, not advice and not a treatment "
        "recommendation.",
        cand.text,
        cls="research",
    )
    return section(
        "Basivertebral nerve ablation: imaging criterion (research information)",
        body,
        section_id=section_id,
        level=level,
    )


def method_section(*, level: int = 2) -> str:
    """How the numbers were made, and how to read them."""
    rows = [
        ["1", "darker", "brighter", "brighter", "oedema, inflammation"],
        ["2", "brighter", "similar or brighter", "darker", "fat"],
        ["3", "darker", "darker", "darker", "sclerosis"],
        ["1/2, 2/3", "mixed", "mixed", "mixed", "two tissues side by side"],
    ]
    body = paragraphs(
        "A reader outlined each endplate region (the marrow next to an endplate) and a region of normal "
        "marrow in the middle of the vertebral body. For every endplate, modic compared its signal with "
        "the normal marrow on the sagittal T1, T2 and STIR (or fat-suppressed T2) series, voxel by voxel, "
        "at the same positions in the patient. The signal ratio is the median of the endplate region over "
        "the median of the normal marrow: 1 means the same, below 1 darker, above 1 brighter; the interval "
        "is a 95 % bootstrap interval.",
        "The Modic type follows the pattern across the sequences (Modic 1988; mixed types after Fayad 2009). "
        "'Cannot be typed' (indeterminate) means the sequences contradict every Modic pattern; the reason is "
        "given. The confidence is a calibrated probability that the type is right, measured on synthetic "
        "studies with known changes; below 90 % the images deserve a second look. Extent: Udby et al. 2022 "
        "height grades A (< 25 % of the vertebral body height), B (25-50 %), C (> 50 %), and the share of "
        "the endplate length (small < 25 %, medium 25-50 %, large >= 50 %).",
    )
    body += table(["Modic type", "T1", "T2", "STIR", "tissue"], rows)
    return section("How to read this report", body, section_id="method", level=level)
