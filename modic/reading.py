"""Read a study: classify every endplate ROI against reference marrow.

This is the data flow's last step before outputs::

    LoadedStudy + Annotations
      -> per endplate ROI: samples on T1 / T2 / STIR (modic.measure)
      -> reference ROI samples (same vertebra, else the nearest)
      -> Modic type with its numbers (modic.criteria)
      -> ModicResult (modic.results)
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from .annotations import ROI, VERTEBRAE, Annotations
from .criteria import DEFAULT_PARAMETERS, ClassifierParameters, classify_samples
from .errors import MeasurementError
from .measure import RegionSample, choose_reference, roi_points, sample_region
from .results import ModicResult, ModicResults, SeriesUsed
from .sequence import Role
from .study import LoadedStudy

__all__ = ["classify", "classify_roi"]

logger = logging.getLogger(__name__)


def _samples(roi: ROI, study: LoadedStudy) -> dict[Role, RegionSample]:
    pts = roi_points(roi)
    return {role: sample_region(roi, vol, points=pts) for role, vol in study.volumes.items()}


def classify_roi(
    study: LoadedStudy,
    roi: ROI,
    references: list[ROI],
    *,
    parameters: ClassifierParameters = DEFAULT_PARAMETERS,
    seed: int = 0,
) -> ModicResult:
    """Classify one endplate ROI.

    Parameters
    ----------
    study : LoadedStudy
    roi : ROI
        An endplate ROI (label kind ``endplate``).
    references : list of ROI
        The study's reference ROIs; the one of the same vertebra is used, else the nearest.
    parameters : ClassifierParameters
    seed : int
        Bootstrap seed.

    Raises
    ------
    MeasurementError
        If the ROI or its reference cannot be measured (outside a series, too few voxels,
        no reference).
    """
    if roi.label.kind != "endplate":
        raise MeasurementError(f"ROI {roi.label} ({roi.id}) is not an endplate ROI")
    ref, ref_warning = choose_reference(roi, references)
    region = _samples(roi, study)
    try:
        reference = _samples(ref, study)
    except MeasurementError as exc:
        raise MeasurementError(f"reference for {roi.label}: {exc}") from None
    try:
        decision = classify_samples(
            {r: s.values for r, s in region.items()},
            {r: s.values for r, s in reference.items()},
            parameters=parameters,
            seed=seed,
        )
    except MeasurementError as exc:
        raise MeasurementError(f"ROI {roi.label}: {exc}") from None
    warnings = ([ref_warning] if ref_warning else []) + list(decision.warnings)
    for role, s in region.items():
        g = study.volumes[role].geometry
        half_slab = (g.slice_thickness or g.slice_spacing) / 2
        if abs(s.distance_mm) > half_slab:
            warnings.append(
                f"{role.value} slice {s.slice_index + 1} is {abs(s.distance_mm):.1f} mm from the ROI, "
                f"beyond its half thickness ({half_slab:.1f} mm): the ROI falls in the gap between slices"
            )
    series = {
        role: SeriesUsed(
            role=role,
            series_key=s.series_key,
            series_description=study.volumes[role].series.description,
            slice_index=s.slice_index,
            distance_mm=s.distance_mm,
            n_voxels=s.n_voxels,
        )
        for role, s in region.items()
    }
    return ModicResult(
        roi_id=roi.id,
        label=roi.label,
        modic_type=decision.modic_type,
        confidence=decision.confidence,
        ratios=decision.ratios,
        fractions=decision.fractions,
        reference_label=ref.label,
        reference_id=ref.id,
        series=series,
        warnings=warnings,
        study_key=study.key,
    )


def classify(
    study: LoadedStudy,
    annotations: Annotations | Iterable[ROI],
    *,
    parameters: ClassifierParameters = DEFAULT_PARAMETERS,
    seed: int = 0,
    errors: list[tuple[ROI, str]] | None = None,
) -> ModicResults:
    """Classify every endplate ROI of a study.

    Parameters
    ----------
    study : LoadedStudy
        From :func:`modic.load_study`.
    annotations : Annotations or iterable of ROI
        Endplate ROIs and reference ROIs (from :func:`modic.read_annotations`).
    parameters : ClassifierParameters, optional
    seed : int
        Bootstrap seed (results are reproducible for a given seed).
    errors : list, optional
        When given, ROIs that cannot be measured are appended here as ``(roi, message)``
        and the others are still classified; otherwise the first such error is raised.

    Returns
    -------
    ModicResults
        One :class:`ModicResult` per endplate ROI, head to foot.

    Raises
    ------
    MeasurementError
        If there is no endplate ROI or no reference ROI, or (when ``errors`` is None) an
        ROI cannot be measured.

    Examples
    --------
    >>> import modic
    >>> name = "siemens_15T_type1_type2"
    >>> study = modic.load_study(modic.data.sample_study_path(name))
    >>> rois = modic.read_annotations(modic.data.sample_annotations_path(name))
    >>> results = modic.classify(study, rois)
    >>> [(str(r.label), r.modic_type.value) for r in results if r.modic_type.value != "0"]
    [('L4 inferior', '1'), ('L5 superior', '2')]
    """
    rois = list(annotations)
    endplates = [r for r in rois if r.label.kind == "endplate"]
    references = [r for r in rois if r.label.kind == "reference"]
    if not endplates:
        raise MeasurementError(f"study {study.key}: the annotations hold no endplate ROI")
    if not references:
        raise MeasurementError(
            f"study {study.key}: the annotations hold no reference ROI; mark normal marrow "
            "(label 'reference') in the vertebrae you read"
        )

    endplates.sort(key=lambda r: (VERTEBRAE.index(r.label.vertebra), r.label.endplate != "superior"))
    out = []
    for roi in endplates:
        try:
            out.append(classify_roi(study, roi, references, parameters=parameters, seed=seed))
        except MeasurementError as exc:
            if errors is None:
                raise
            logger.warning("%s", exc)
            errors.append((roi, str(exc)))
    return ModicResults(out)
