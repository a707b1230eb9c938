"""A study's ROIs as DICOM Segmentation (SEG, BINARY) objects, one segment per ROI.

:func:`write_seg` writes, for each series the ROIs were drawn on, one SEG that
references that series (highdicom): segment *n* is the *n*-th ROI drawn on it, set on
the frame of the ROI's image, with the pixels whose centres lie inside the shape
(:meth:`modic.annotations.ROI.pixel_mask`). Each segment carries the ROI's label as
segment label, the same Tracking UID as the ROI's measurement group in the SR
(:func:`modic.sr.tracking_uid`) and the vertebra as anatomic region (SNOMED CT). Empty
frames are left out.

Like the SR, a SEG copies the patient and study modules of its source images (DICOM
requires them); see ``docs/dicom-export.md``.
"""

from __future__ import annotations

import logging
import os
from io import BytesIO
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from . import __version__
from ._io import atomic_write_bytes
from .sr import VERTEBRA_CODES, SRExportError, _frames_by_sop, _hd, _study_of, tracking_uid

if TYPE_CHECKING:  # pragma: no cover
    from pydicom.dataset import Dataset

    from .annotations import ROI, Annotations
    from .series import ScanResult, Series, Study
    from .study import LoadedStudy

__all__ = ["build_segs", "write_seg", "segment_codes"]

logger = logging.getLogger(__name__)


def segment_codes(roi: ROI) -> tuple[Any, Any, list[Any]]:
    """(category, type, anatomic regions) of an ROI's segment (SNOMED CT).

    Endplate and reference ROIs: Tissue / Bone marrow, in the vertebra; a body outline:
    Anatomical Structure / the vertebra; a fat region: Tissue / Adipose tissue, at the
    vertebra's level.
    """
    hd = _hd()
    c = hd.sr.CodedConcept
    code, meaning = VERTEBRA_CODES[roi.label.vertebra]
    vertebra = c(code, "SCT", meaning)
    tissue = c("85756007", "SCT", "Tissue")
    kind = roi.label.kind
    if kind == "body":
        return c("91723000", "SCT", "Anatomical Structure"), vertebra, [vertebra]
    if kind == "fat":
        return tissue, c("55603005", "SCT", "Adipose tissue"), [vertebra]
    return tissue, c("14016003", "SCT", "Bone marrow"), [vertebra]


def _description(roi: ROI, number: int, study_uid: str) -> Any:
    hd = _hd()
    category, kind, regions = segment_codes(roi)
    origin = roi.origin
    algorithm = None
    algorithm_type = hd.seg.SegmentAlgorithmTypeValues.MANUAL
    if origin in ("proposed", "derived"):
        from pydicom.sr.codedict import codes

        algorithm_type = hd.seg.SegmentAlgorithmTypeValues.SEMIAUTOMATIC
        algorithm = hd.AlgorithmIdentificationSequence(
            name="modic",
            family=codes.cid7162.MorphologicalOperations,
            version=__version__,
            source=roi.source or None,
        )
    return hd.seg.SegmentDescription(
        segment_number=number,
        segment_label=str(roi.label)[:64],
        segmented_property_category=category,
        segmented_property_type=kind,
        algorithm_type=algorithm_type,
        algorithm_identification=algorithm,
        tracking_uid=tracking_uid(roi.id, study_uid),
        tracking_id=str(roi.label),
        anatomic_regions=regions,
    )


def _full_dataset(path: Path, cache: dict[Path, Dataset]) -> Dataset:
    import pydicom

    if path not in cache:
        cache[path] = pydicom.dcmread(path)
    return cache[path]


def build_segs(
    study: LoadedStudy | Study | ScanResult,
    annotations: Annotations,
    *,
    series_number: int = 9902,
    series_description: str = "modic ROIs",
) -> list[tuple[Series, Any]]:
    """One highdicom Segmentation per series the ROIs were drawn on.

    Parameters
    ----------
    study : LoadedStudy, Study or ScanResult
        The study the ROIs were drawn on.
    annotations : Annotations
    series_number, series_description : optional
        Of the SEG series (each SEG gets its own SeriesInstanceUID).

    Returns
    -------
    list of (Series, highdicom.seg.Segmentation)
        In the order the series first appear among the ROIs.

    Raises
    ------
    SRExportError
        When an ROI's image is not in ``study``, or there is no ROI.
    """
    hd = _hd()
    from pydicom.uid import generate_uid

    if len(annotations.rois) == 0:
        raise SRExportError("the annotations hold no ROI: there is nothing to write into a SEG")
    frames = _frames_by_sop(_study_of(study))
    per_series: dict[str, list[tuple[ROI, Any]]] = {}
    for roi in annotations.rois:
        sf = frames.get((roi.image.sop_instance_uid, roi.image.frame_number))
        if sf is None:
            raise SRExportError(
                f"ROI {roi.label} ({roi.id}) was drawn on image {roi.image.sop_instance_uid} (frame "
                f"{roi.image.frame_number}), which is not in the study given"
            )
        per_series.setdefault(sf.series.series_uid, []).append((roi, sf))
    cache: dict[Path, Dataset] = {}
    out = []
    for k, items in enumerate(per_series.values()):
        series = items[0][1].series
        paths = list(dict.fromkeys(f.path for f in series.frames))
        sources = [_full_dataset(p, cache) for p in paths]
        multi = len(paths) == 1 and len(series.frames) > 1
        n_frames = len(series.frames) if multi else len(paths)
        rows, cols = items[0][0].image.rows, items[0][0].image.columns
        pixels = np.zeros((n_frames, rows, cols, len(items)), dtype=bool)
        index_of = {p: i for i, p in enumerate(paths)}
        descriptions = []
        for n, (roi, sf) in enumerate(items, start=1):
            i = sf.frame.frame_index if multi else index_of[sf.frame.path]
            pixels[i, :, :, n - 1] = roi.pixel_mask()
            descriptions.append(_description(roi, n, annotations.study_instance_uid))
        seg = hd.seg.Segmentation(
            source_images=sources,
            pixel_array=pixels,
            segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
            segment_descriptions=descriptions,
            series_instance_uid=str(generate_uid()),
            series_number=series_number + k,
            sop_instance_uid=str(generate_uid()),
            instance_number=1,
            manufacturer="modic developers",
            manufacturer_model_name="modic",
            software_versions=__version__,
            device_serial_number="0",
            content_label="MODIC_ROIS",
            content_description=f"{series_description}: ROIs drawn on {series.label()}"[:64],
        )
        seg.SeriesDescription = series_description
        out.append((series, seg))
    return out


def write_seg(
    study: LoadedStudy | Study | ScanResult,
    annotations: Annotations,
    path: str | os.PathLike[str],
    **kwargs: Any,
) -> list[Path]:
    """Write :func:`build_segs` atomically; returns the paths written.

    With ROIs on one series, the SEG is written to ``path``; with ROIs on several, one file
    per series, named ``<stem>-series<number><suffix>`` beside ``path``.
    """
    segs = build_segs(study, annotations, **kwargs)
    target = Path(path)
    written = []
    for series, seg in segs:
        p = target
        if len(segs) > 1:
            p = target.with_name(f"{target.stem}-series{series.number or series.key}{target.suffix}")
        buf = BytesIO()
        seg.save_as(buf, enforce_file_format=True)
        written.append(atomic_write_bytes(p, buf.getvalue()))
    return written
