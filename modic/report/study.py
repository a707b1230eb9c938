"""The report of one study: from the loaded study, its ROIs and its results."""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from .. import __version__
from ..plot import _from_result, abnormal_levels, levels, offscreen, ratios, spine
from .content import summary_sentence
from .document import Report, ReportFigure, StudySection

if TYPE_CHECKING:  # pragma: no cover
    from ..annotations import ROI
    from ..results import ModicResults
    from ..study import LoadedStudy

__all__ = ["study_report", "study_section_from_study", "generated_now"]


def generated_now() -> str:
    """The time a report is made, UTC to the minute."""
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _format_date(d: str) -> str:
    return f"{d[:4]}-{d[4:6]}-{d[6:8]}" if len(d) == 8 and d.isdigit() else d


def _series_rows(study: LoadedStudy) -> list[list[str]]:
    out = []
    for role, vol in study.volumes.items():
        s = vol.series
        n, rows, cols = vol.shape
        sp = vol.spacing
        detail = (
            f"{n} slices of {rows} x {cols}, pixels {sp[1]:.2f} x {sp[2]:.2f} mm, slices {sp[0]:.1f} mm apart"
        )
        if s.manufacturer:
            detail += f"; {s.manufacturer}"
        sel = study.selections.get(role)
        why = sel.reason if sel is not None else ""
        name = {"T1": "T1", "T2": "T2", "STIR": "STIR (or fat-suppressed T2)"}.get(role.value, role.value)
        out.append([name, str(s.key), s.description or "-", detail, why])
    return out


def study_section_from_study(
    study: LoadedStudy,
    annotations: Iterable[ROI],
    results: ModicResults,
    *,
    errors: Sequence[tuple[ROI, str]] = (),
    show_patient: bool = False,
    images: bool = True,
) -> StudySection:
    """The section of a report about one study (figures made offscreen)."""
    from ..batch import describe_roi_error

    rois = list(annotations)
    rows = [_from_result(r) for r in results]
    st = study.study
    identity = []
    if show_patient:
        identity = [
            f"Patient: {st.patient_name or '-'}; patient ID: {st.patient_id or '-'}; "
            f"study date: {_format_date(st.date or '') or '-'}; "
            f"accession number: {st.accession_number or '-'}"
        ]
    figures = []
    with offscreen():
        if images:
            shown = abnormal_levels(results)
            caption = (
                "The slice of each series nearest the endplates of each level with a change or an "
                "indeterminate result; regions outlined and filled by type, normal marrow regions dashed."
                if shown
                else "No level with a Modic change or an indeterminate result."
            )
            figures.append(
                ReportFigure(
                    "images",
                    levels(study, rois, results),
                    "T1, T2 and STIR images with the regions of interest at each level with a finding",
                    caption,
                )
            )
        figures.append(
            ReportFigure(
                "spine",
                spine(results),
                "Diagram of the spine from T12 to S1 with each endplate coloured by its Modic type",
                "Each endplate read, coloured by type; bold vertebrae mark the imaging "
                "criterion of the FDA clearance (research information).",
            )
        )
        figures.append(
            ReportFigure(
                "ratios",
                ratios(results),
                "T1 signal ratio against fluid-sensitive signal ratio for each endplate",
                "Each endplate's signal relative to its normal marrow; shading shows the "
                "type the classifier gives a uniform region with those ratios.",
            )
        )
    other = [
        f"{role.value} series {vol.series.key}: {w}"
        for role, vol in study.volumes.items()
        for w in vol.warnings
    ]
    other += [f"not measured: {describe_roi_error(roi, msg)}" for roi, msg in errors]
    contrast = results.contrast.describe() if results.contrast is not None else ""
    try:
        cand = results.candidacy
    except (AttributeError, ValueError):
        cand = None
    return StudySection(
        key=study.key,
        description=st.description or "",
        identity=identity,
        summary=summary_sentence(rows),
        series=_series_rows(study),
        contrast=contrast,
        rows=rows,
        figures=figures,
        candidacy=cand,
        other_warnings=other,
    )


def study_report(
    study: LoadedStudy,
    annotations: Iterable[ROI],
    results: ModicResults,
    *,
    errors: Sequence[tuple[ROI, str]] = (),
    show_patient: bool = False,
    title: str | None = None,
) -> Report:
    """The report of one study.

    Parameters
    ----------
    study : LoadedStudy
    annotations : Annotations or iterable of ROI
    results : ModicResults
        From :func:`modic.classify` on ``study`` and ``annotations``.
    errors : sequence of (ROI, str)
        ROIs that could not be measured (the ``errors`` list of :func:`modic.classify`).
    show_patient : bool
        Show the patient name and ID, the study date and accession number (hidden by default:
        the study is named by its pseudonymous key and its description).
    title : str, optional

    Returns
    -------
    Report
        :func:`modic.report.render_html` / :func:`modic.report.write_report` turn it into a file.
    """
    s = study_section_from_study(study, annotations, results, errors=errors, show_patient=show_patient)
    meta = [f"Study {s.key}" + (f" ({s.description})" if s.description else "") + "."]
    return Report(
        title=title or "Modic changes of the lumbar endplates: research report",
        kind="study",
        version=__version__,
        generated=generated_now(),
        summary=s.summary,
        studies=[s],
        meta=meta,
    )
