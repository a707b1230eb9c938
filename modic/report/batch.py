"""The report of a ``modic batch`` output folder: the cohort, then each study."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import Any

from .. import __version__
from ..errors import NoResultsError
from ..plot import (
    _candidacy_of,
    _read_table,
    _Row,
    confidence,
    offscreen,
    prevalence,
    ratio_distributions,
    ratios,
    spine,
    warnings_by_study,
)
from .content import summary_sentence, type_counts_text
from .document import Report, ReportFigure, StudySection
from .study import generated_now

__all__ = ["NoResultsError", "batch_report", "is_batch_output"]

_ROLE_NAMES = {"T1": "T1", "T2": "T2", "STIR": "STIR (or fat-suppressed T2)"}


def is_batch_output(path: str | os.PathLike[str]) -> bool:
    """Whether a folder looks like the output folder of ``modic batch``."""
    p = Path(path)
    return p.is_dir() and any((p / n).is_file() for n in ("results.csv", "results.jsonl", "summary.json"))


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise NoResultsError(f"{path}: cannot be read as JSON ({exc})") from None
    return data if isinstance(data, dict) else {}


def _errors(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        return []
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def _series_rows(rows: list[_Row]) -> list[list[str]]:
    """The series each sequence was measured on (the first endplate's, and any others seen)."""
    seen: dict[str, dict[str, str]] = {}
    for r in rows:
        for role, (key, desc, _slice) in r.series.items():
            seen.setdefault(role, {}).setdefault(key, desc)
    out = []
    for role in ("T1", "T2", "STIR"):
        for key, desc in seen.get(role, {}).items():
            out.append([_ROLE_NAMES[role], key, desc or "-", "-", "chosen by modic batch (see modic info)"])
    return out


def _contrast_words(c: dict[str, Any] | None) -> str:
    if not c:
        return ""
    parts = []
    fr = c.get("fat_ratio") or {}
    if fr:
        parts.append("fat " + ", ".join(f"{v:.2f}x on {k}" for k, v in fr.items()) + " of marrow")
        if c.get("fat_suppression"):
            parts[-1] += f" (fat suppression {c['fat_suppression']})"
    snr = c.get("marrow_snr") or {}
    if snr:
        parts.append("marrow SNR " + ", ".join(f"{k} {v:.0f}" for k, v in snr.items()))
    return "; ".join(parts)


def batch_report(
    outdir: str | os.PathLike[str], *, show_patient: bool = False, title: str | None = None
) -> Report:
    """The report of a ``modic batch`` output folder.

    Reads ``results.jsonl`` (else ``results.csv``), ``summary.json`` and ``errors.csv``.
    Studies are named by their pseudonymous key; patient names and IDs (present only when
    the batch ran with ``--include-identifiers``) are shown only with ``show_patient``.

    Raises
    ------
    NoResultsError
        If the folder holds no results table, or one without rows.
    """
    out = Path(outdir)
    if not out.is_dir():
        raise FileNotFoundError(f"{out}: no such folder")
    table = next((out / n for n in ("results.jsonl", "results.csv") if (out / n).is_file()), None)
    if table is None:
        raise NoResultsError(
            f"{out}: no results.csv or results.jsonl; give the output folder of 'modic batch ROOT -o OUTDIR' "
            "or a study folder"
        )
    rows = _read_table(table)
    errors = _errors(out / "errors.csv")
    if not rows:
        why = f" ({len(errors)} errors in errors.csv)" if errors else ""
        raise NoResultsError(f"{table}: no endplate results to report on{why}")
    summary = _read_json(out / "summary.json") if (out / "summary.json").is_file() else {}
    contrast = summary.get("contrast") or {}
    by_study: dict[str, list[_Row]] = {}
    for r in rows:
        by_study.setdefault(r.study, []).append(r)
    n_studies = len(by_study)
    failed = (summary.get("studies") or {}).get("failed", 0)
    with_change = sum(
        1 for rs in by_study.values() if any(r.modic_type not in ("0", "indeterminate") for r in rs)
    )
    text = (
        f"{n_studies} stud{'ies' if n_studies != 1 else 'y'} with results"
        + (f" ({failed} failed, listed below)" if failed else "")
        + f", {len(rows)} endplates: {type_counts_text(rows)}. "
        f"{with_change} of {n_studies} studies show at least one Modic change."
    )
    sections = []
    with offscreen():
        cohort = [
            ReportFigure(
                "prevalence",
                prevalence(rows),
                "Share of each Modic type at each disc level",
                "Modic types by disc level, head at the top (n = endplates read at the level).",
            ),
            ReportFigure(
                "distributions",
                ratio_distributions(rows),
                "Signal ratios of each Modic type on T1, T2 and STIR",
                "Each endplate's signal relative to its normal marrow, by type.",
            ),
            ReportFigure(
                "confidence",
                confidence(rows),
                "Histogram of the classifier's confidence by type",
                "Calibrated confidence of each type; below 90 % deserves a second look.",
            ),
            ReportFigure(
                "warnings",
                warnings_by_study(rows, errors=errors),
                "Studies with warnings, indeterminate endplates or errors",
                "Studies with something to look at.",
            ),
        ]
        for key, rs in by_study.items():
            try:
                cand = _candidacy_of(rs, rs)
            except ValueError:
                cand = None
            identity = []
            if show_patient:
                ex = rs[0].extra
                if ex:
                    identity = [
                        f"Patient: {ex.get('patient_name') or '-'}; "
                        f"patient ID: {ex.get('patient_id') or '-'}; "
                        f"folder: {ex.get('study_folder') or '-'}"
                    ]
                else:
                    identity = [
                        "Patient identifiers were not kept by this batch (run it with --include-identifiers)."
                    ]
            figs = [
                ReportFigure("spine", spine(rs, title=f"Study {key}"), f"Spine diagram of study {key}"),
                ReportFigure("ratios", ratios(rs), f"Signal ratios of the endplates of study {key}"),
            ]
            sections.append(
                StudySection(
                    key=key,
                    description="",
                    identity=identity,
                    summary=summary_sentence(rs),
                    series=_series_rows(rs),
                    contrast=_contrast_words(contrast.get(key)),
                    rows=rs,
                    figures=figs,
                    candidacy=cand,
                    other_warnings=[
                        f"not measured: {e.get('message', '')}" for e in errors if e.get("study") == key
                    ],
                )
            )
    error_rows = [[e.get("study", ""), e.get("stage", ""), e.get("message", "")] for e in errors]
    version = str(summary.get("modic_version") or __version__)
    meta = [
        f"Batch output folder {out.name}: {table.name}"
        + (", summary.json" if summary else "")
        + (", errors.csv" if errors else "")
        + "."
    ]
    if version != __version__:
        meta.append(f"The results were made by modic {version}; this report by modic {__version__}.")
    return Report(
        title=title or "Modic changes of the lumbar endplates: cohort research report",
        kind="batch",
        version=__version__,
        generated=generated_now(),
        summary=text,
        studies=sections,
        meta=meta,
        cohort_figures=cohort,
        errors=error_rows,
    )
