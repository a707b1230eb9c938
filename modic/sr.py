"""A study's ROIs and Modic results as a DICOM SR measurement report, and back.

:func:`write_sr` writes a Comprehensive 3D SR (TID 1500 "Imaging Measurement Report",
through highdicom) with one TID 1410 measurement group per ROI: the ROI as a closed
planar polygon (SCOORD ``POLYLINE``, image coordinates of the image it was drawn on),
its tracking identifier and UID, the finding site (the vertebra, SNOMED CT, with
"superior" / "inferior" as topographical modifier for an endplate), the area, the
signal intensity ratios with their 95 % intervals, the voxels measured, the extent of
the change, the Modic type as a coded qualitative evaluation and the reason as text. An
endplate group names the tracking UID of the reference group it was compared with.
:func:`read_sr` reads such a report back into :class:`~modic.annotations.Annotations`
without loss, and reads the planar polygon / freehand / rectangle / ellipse ROIs of the
measurement reports OHIF (Cornerstone3D adapters, dcmjs) and 3D Slicer (highdicom
planar annotations) write, so that ROIs drawn there can be classified.

The layout, every code and the private coding scheme ``99MODIC`` are described in
``docs/dicom-export.md``.

Conventions
-----------
* SCOORD graphic data are image coordinates ``(column, row)`` with the origin at the
  top-left corner of the top-left pixel (PS3.3 C.18.6.1.1), the convention of
  :mod:`modic.annotations`, so points are written as they are (no half-pixel shift).
  Cornerstone3D uses the same origin (``imageToWorldCoords``: "[0,0] being the top left
  corner of the top left pixel", cornerstonejs/cornerstone3D
  ``packages/core/src/utilities/imageToWorldCoords.ts``).
* Graphic data are 32-bit floats (FL); shape coordinates are kept to 1/1000 pixel, so a
  polygon reads back equal to what was written for coordinates below ~8000 pixels.
* The SR copies the patient and study modules (patient name, ID, birth date, sex, study
  date, accession number...) from the source images: a DICOM object of the study must
  carry them. Nothing is invented or removed. modic's other outputs stay without them.

Examples
--------
>>> import modic, modic.sr
>>> name = "siemens_15T_type1_type2"
>>> study = modic.load_study(modic.data.sample_study_path(name))
>>> rois = modic.read_annotations(modic.data.sample_annotations_path(name))
>>> import tempfile, pathlib; path = pathlib.Path(tempfile.mkdtemp()) / "sr.dcm"
>>> _ = modic.sr.write_sr(study, rois, modic.classify(study, rois), path)
>>> modic.sr.read_sr(path, study) == rois
True
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from . import __version__
from ._io import atomic_write_bytes
from .errors import DicomFileError, MissingDependencyError, SRExportError

if TYPE_CHECKING:  # pragma: no cover
    from pydicom.dataset import Dataset

    from .annotations import ROI, Annotations, ImagePlane, RoiLabel, Shape
    from .results import ModicResult, ModicResults
    from .series import Frame, ScanResult, Series, Study
    from .study import LoadedStudy

__all__ = [
    "MODIC_SCHEME",
    "OHIF_TRACKING_IDENTIFIER",
    "VERTEBRA_CODES",
    "MODIC_TYPE_CODES",
    "RDES300_VALUES",
    "SRExportError",
    "build_sr",
    "write_sr",
    "read_sr",
    "tracking_uid",
]

logger = logging.getLogger(__name__)

#: CodingSchemeDesignator of modic's private codes ("99" prefix: a private scheme, PS3.16
#: section 8.2); described in docs/dicom-export.md and in each SR's
#: CodingSchemeIdentificationSequence.
MODIC_SCHEME = "99MODIC"
_MODIC_SCHEME_NAME = "modic private codes"
_MODIC_SCHEME_VERSION = "1"
#: The tracking identifier of every measurement group: the form OHIF's Cornerstone3D SR
#: adapter for freehand ROIs reads (cornerstonejs/cornerstone3D
#: packages/adapters/src/adapters/Cornerstone3D/PlanarFreehandROI.ts:
#: ``${CORNERSTONE_3D_TAG}:${toolType}``, CORNERSTONE_3D_TAG = "Cornerstone3DTools@^0.1.0").
OHIF_TRACKING_IDENTIFIER = "Cornerstone3DTools@^0.1.0:PlanarFreehandROI"
_CORNERSTONE_PREFIX = "Cornerstone3DTools@"

#: SNOMED CT "Bone structure of ..." of each vertebra modic labels (codes as in pydicom's
#: DICOM concept dictionary; S1 as the sacrum).
VERTEBRA_CODES: dict[str, tuple[str, str]] = {
    "T11": ("12989004", "Bone structure of T11"),
    "T12": ("23215003", "Bone structure of T12"),
    "L1": ("66794005", "Bone structure of L1"),
    "L2": ("14293000", "Bone structure of L2"),
    "L3": ("36470004", "Bone structure of L3"),
    "L4": ("11994002", "Bone structure of L4"),
    "L5": ("49668003", "Bone structure of L5"),
    "S1": ("54735007", "Bone structure of sacrum"),
}
_VERTEBRA_BY_CODE = {code: v for v, (code, _) in VERTEBRA_CODES.items()}
_SUPERIOR = ("264217000", "SCT", "Superior")
_INFERIOR = ("261089000", "SCT", "Inferior")

#: Private codes (value, meaning) of the Modic types, by :class:`ModicType` value.
MODIC_TYPE_CODES: dict[str, tuple[str, str]] = {
    "0": ("MC0", "No Modic change"),
    "1": ("MC1", "Modic type 1"),
    "2": ("MC2", "Modic type 2"),
    "3": ("MC3", "Modic type 3"),
    "1/2": ("MC1-2", "Modic type 1/2"),
    "2/3": ("MC2-3", "Modic type 2/3"),
    "indeterminate": ("MCX", "Modic type indeterminate"),
}
#: The RadElement set RDES300 "Modic endplate changes" value each Modic type maps to, by
#: name (docs/dicom-export.md; the RDE element and value codes could not be looked up
#: offline and are not written into the SR).
RDES300_VALUES: dict[str, str] = {
    "0": "none (no Modic change)",
    "1": "Type 1",
    "2": "Type 2",
    "3": "Type 3",
    "1/2": "mixed Type 1/2",
    "2/3": "mixed Type 2/3",
    "indeterminate": "(no value: not typed)",
}

# private concepts (value, meaning); CodeValue is SH (<= 16 characters)
_C: dict[str, tuple[str, str]] = {
    "endplate": ("ENDPLATE", "Vertebral endplate marrow region"),
    "reference": ("REFERENCE", "Reference marrow region"),
    "body": ("VBODY", "Vertebral body outline"),
    "fat": ("FAT", "Fat region at vertebral level"),
    "modic_type": ("MODICTYPE", "Modic type"),
    "sir_T1": ("SIR-T1", "T1 signal intensity ratio to reference marrow"),
    "sir_T2": ("SIR-T2", "T2 signal intensity ratio to reference marrow"),
    "sir_STIR": ("SIR-STIR", "STIR signal intensity ratio to reference marrow"),
    "voxels": ("VOXELS", "Voxels measured"),
    "confidence": ("CONFIDENCE", "Confidence of Modic type"),
    "height": ("EXT-HEIGHT", "Height of change into vertebral body"),
    "body_height": ("BODY-HEIGHT", "Vertebral body height"),
    "height_fraction": ("EXT-HFRACTION", "Height of change as share of body height"),
    "length": ("EXT-LENGTH", "Length of change along endplate"),
    "endplate_length": ("EP-LENGTH", "Endplate length"),
    "length_fraction": ("EXT-LFRACTION", "Length of change as share of endplate length"),
    "height_grade": ("UDBY-GRADE", "Udby height grade"),
    "length_grade": ("NORDIC-LENGTH", "Nordic length grade"),
    "body_source": ("BODY-SOURCE", "Vertebral body height source"),
    "reason": ("REASON", "Reason for Modic type"),
    "reference_uid": ("REF-REGION-UID", "Tracking UID of reference region"),
    "roi_record": ("ROI-RECORD", "modic ROI record"),
    "document": ("DOC-RECORD", "modic annotation document record"),
}
_GRADE_CODES: dict[str, tuple[str, str]] = {
    "A": ("UDBY-A", "Udby grade A"),
    "B": ("UDBY-B", "Udby grade B"),
    "C": ("UDBY-C", "Udby grade C"),
    "small": ("LEN-SMALL", "Small"),
    "medium": ("LEN-MEDIUM", "Medium"),
    "large": ("LEN-LARGE", "Large"),
    "outline": ("BODY-OUTLINE", "Drawn vertebral body outline"),
    "estimated": ("BODY-ESTIMATED", "Estimated from the image"),
}
_KIND_BY_FINDING = {
    code: kind for kind, (code, _) in _C.items() if kind in ("endplate", "reference", "body", "fat")
}

# standard concepts used by name
_DCM_COMMENT = ("121106", "DCM", "Comment")
_DCM_FINDING = ("121071", "DCM", "Finding")
_DCM_IMAGING_MEASUREMENTS = ("126010", "DCM", "Imaging Measurements")
_DCM_MEASUREMENT_GROUP = ("125007", "DCM", "Measurement Group")
_DCM_TRACKING_ID = ("112039", "DCM", "Tracking Identifier")
_DCM_TRACKING_UID = ("112040", "DCM", "Tracking Unique Identifier")
_SCT_FINDING_SITE = ("363698007", "SCT", "Finding Site")
_SRT_FINDING_SITE = ("G-C0E3", "SRT", "Finding Site")
_SCT_TOPOGRAPHICAL_MODIFIER = ("106233006", "SCT", "Topographical modifier")
_SCT_RATIO = ("118586006", "SCT", "Ratio")
_SCT_AREA = ("42798000", "SCT", "Area")

_RECORD_VERSION = 1
_HEX_ID = re.compile(r"[0-9a-f]{32}")
#: Points written for the polygon of an ellipse (its exact form travels in the ROI record).
ELLIPSE_POINTS = 64


def _hd() -> Any:
    """highdicom, or an install hint naming the ``export`` extra."""
    try:
        import highdicom
    except ImportError:
        raise MissingDependencyError(
            'DICOM SR and SEG export and import need highdicom: pip install "modic[export]"', extra="export"
        ) from None
    return highdicom


def _code(value: str, scheme: str, meaning: str) -> Any:
    return _hd().sr.CodedConcept(value=value, scheme_designator=scheme, meaning=meaning)


def _modic(key: str) -> Any:
    value, meaning = _C[key]
    return _code(value, MODIC_SCHEME, meaning)


def _unit(code: str, meaning: str) -> Any:
    return _code(code, "UCUM", meaning)


# ----------------------------------------------------------------------------------------
# source images
# ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _SourceFrame:
    series: Series
    index: int  # 0-based slice of the series, along its normal
    frame: Frame

    @property
    def frame_number(self) -> int:
        return self.frame.frame_index + 1

    @property
    def multi_frame(self) -> bool:
        return self.frame.encoding.number_of_frames > 1


def _study_of(study: LoadedStudy | Study | ScanResult) -> list[Series]:
    """Every series of a loaded study, a scanned study or a whole scan."""
    from .series import ScanResult
    from .study import LoadedStudy

    if isinstance(study, ScanResult):
        return [s for st in study.studies for s in st.series]
    inner = study.study if isinstance(study, LoadedStudy) else study
    return list(inner.series)


def _frames_by_sop(series: Iterable[Series]) -> dict[tuple[str, int], _SourceFrame]:
    out: dict[tuple[str, int], _SourceFrame] = {}
    for s in series:
        for i, f in enumerate(s.frames):
            out[(f.sop_instance_uid, f.frame_index + 1)] = _SourceFrame(s, i, f)
    return out


def _header(path: Path, cache: dict[Path, Dataset]) -> Dataset:
    import pydicom

    if path not in cache:
        try:
            cache[path] = pydicom.dcmread(path, stop_before_pixels=True)
        except Exception as exc:  # noqa: BLE001 -- any read failure names the file
            raise DicomFileError(str(path), f"cannot read the source image header ({exc})") from None
    return cache[path]


def _library_entry(header: Dataset, sf: _SourceFrame) -> Dataset:
    """The dataset highdicom describes in the Image Library: the header itself, or for a
    multi-frame image a copy with the referenced frame's plane attributes at top level
    (highdicom's Image Library reads PixelSpacing etc. from the top level only)."""
    if not sf.multi_frame or "PixelSpacing" in header:
        return header
    from pydicom.dataset import Dataset

    entry = Dataset()
    entry.update(header)
    entry.PixelSpacing = [float(v) for v in sf.frame.pixel_spacing]
    entry.ImageOrientationPatient = [float(v) for v in sf.frame.orientation]
    entry.ImagePositionPatient = [float(v) for v in sf.frame.position]
    if sf.frame.slice_thickness is not None:
        entry.SliceThickness = float(sf.frame.slice_thickness)
    return entry


def tracking_uid(roi_id: str, study_instance_uid: str = "") -> str:
    """The Tracking Unique Identifier of an ROI in SR and SEG.

    A uuid4-hex ROI id (modic's default) becomes the UUID-derived UID ``2.25.<integer>``
    (PS3.5 B.2), which reads back to the same id; any other id gives a UID derived from
    the StudyInstanceUID and the id (pydicom ``generate_uid`` with these as entropy).

    Examples
    --------
    >>> tracking_uid("0" * 31 + "a")
    '2.25.10'
    """
    if _HEX_ID.fullmatch(roi_id):
        return f"2.25.{int(roi_id, 16)}"
    from pydicom.uid import generate_uid

    return str(generate_uid(entropy_srcs=[study_instance_uid, roi_id]))


def _id_from_tracking_uid(uid: str) -> str | None:
    if uid.startswith("2.25."):
        try:
            n = int(uid[5:])
        except ValueError:
            return None
        if 0 <= n < 2**128:
            return f"{n:032x}"
    return None


# ----------------------------------------------------------------------------------------
# writing
# ----------------------------------------------------------------------------------------
def _polyline(shape: Shape) -> NDArray[np.float64]:
    """The closed polygon written for a shape: (N + 1, 2) ``(x, y)``, first point repeated."""
    from .annotations import Ellipse, Polygon

    if isinstance(shape, Polygon):
        pts = np.asarray(shape.points, dtype=float)
    elif isinstance(shape, Ellipse):
        pts = shape.outline(ELLIPSE_POINTS)
    else:  # rectangle: its four corners; mask: its outline along pixel edges
        pts = shape.outline()
    pts = np.asarray(pts, dtype=float)
    if np.allclose(pts[0], pts[-1]) and len(pts) > 3:
        pts = pts[:-1]
    return np.vstack([pts, pts[:1]])


def _roi_record(roi: ROI) -> dict[str, Any]:
    """What the standard content cannot hold: the id, the exact shape of a non-polygon,
    author, times, tool version, comment, origin and source."""
    from .annotations import Polygon

    rec: dict[str, Any] = {
        "version": _RECORD_VERSION,
        "id": roi.id,
        "label": roi.label.to_dict(),
        "author": roi.author,
        "created": roi.created,
        "modified": roi.modified,
        "tool_version": roi.tool_version,
        "comment": roi.comment,
        "origin": roi.origin,
        "source": roi.source,
    }
    if not isinstance(roi.shape, Polygon):
        rec["shape"] = roi.shape.to_dict()
    return rec


def _document_record(annotations: Annotations) -> dict[str, Any]:
    return {
        "version": _RECORD_VERSION,
        "study_instance_uid": annotations.study_instance_uid,
        "frame_of_reference_uid": annotations.frame_of_reference_uid,
        "description": annotations.description,
        "created": annotations.created,
        "modified": annotations.modified,
        "tool": dict(annotations.tool),
    }


def _text(key: str, value: str) -> Any:
    hd = _hd()
    return hd.sr.TextContentItem(
        name=_modic(key), value=value, relationship_type=hd.sr.RelationshipTypeValues.CONTAINS
    )


def _num(
    name: Any,
    value: float,
    unit: Any,
    *,
    method: Any = None,
    low: float | None = None,
    high: float | None = None,
    images: Sequence[Any] | None = None,
) -> Any:
    hd = _hd()
    props = None
    if low is not None and high is not None and math.isfinite(low) and math.isfinite(high):
        props = hd.sr.MeasurementProperties(
            upper_measurement_uncertainty=max(float(high) - float(value), 0.0),
            lower_measurement_uncertainty=max(float(value) - float(low), 0.0),
        )
    return hd.sr.Measurement(
        name=name,
        value=float(value),
        unit=unit,
        method=method,
        properties=props,
        referenced_images=images or None,
    )


def _grade(key: str, value: str) -> Any:
    code, meaning = _GRADE_CODES[value]
    return _hd().sr.QualitativeEvaluation(name=_modic(key), value=_code(code, MODIC_SCHEME, meaning))


class _Writer:
    """Builds one SR: finds source images, collects evidence, makes the groups."""

    def __init__(self, study: LoadedStudy | Study | ScanResult) -> None:
        self.series = _study_of(study)
        self.frames = _frames_by_sop(self.series)
        self.by_key = {s.key: s for s in self.series}
        self.headers: dict[Path, Dataset] = {}
        self.evidence: dict[str, Dataset] = {}
        self.library: dict[str, Dataset] = {}

    def source(self, plane: ImagePlane, what: str) -> _SourceFrame:
        sf = self.frames.get((plane.sop_instance_uid, plane.frame_number))
        if sf is None:
            raise SRExportError(
                f"{what} was drawn on image {plane.sop_instance_uid} (frame {plane.frame_number}), "
                "which is not in the study given; export from the study the annotations were drawn on"
            )
        self._add_evidence(sf)
        return sf

    def _add_evidence(self, sf: _SourceFrame) -> None:
        if sf.frame.sop_instance_uid not in self.evidence:
            self.evidence[sf.frame.sop_instance_uid] = _header(sf.frame.path, self.headers)
            self.library[sf.frame.sop_instance_uid] = _library_entry(
                self.evidence[sf.frame.sop_instance_uid], sf
            )

    def image_ref(self, sf: _SourceFrame, kind: str = "region") -> Any:
        hd = _hd()
        cls = hd.sr.SourceImageForRegion if kind == "region" else hd.sr.SourceImageForMeasurement
        return cls(
            referenced_sop_class_uid=sf.series.sop_class_uid,
            referenced_sop_instance_uid=sf.frame.sop_instance_uid,
            referenced_frame_numbers=[sf.frame_number] if sf.multi_frame else None,
        )

    def measured_on(self, result: ModicResult, role: Any) -> list[Any]:
        used = result.series.get(role)
        series = None if used is None else self.by_key.get(used.series_key)
        if series is None or not 0 <= used.slice_index < len(series.frames):  # type: ignore[union-attr]
            return []
        sf = _SourceFrame(series, used.slice_index, series.frames[used.slice_index])  # type: ignore[union-attr]
        self._add_evidence(sf)
        return [self.image_ref(sf, "measurement")]

    def group(self, roi: ROI, result: ModicResult | None, uids: Mapping[str, str], study_uid: str) -> Any:
        hd = _hd()
        sr = hd.sr
        sf = self.source(roi.image, f"ROI {roi.label} ({roi.id})")
        points = _polyline(roi.shape).astype(np.float32)
        region = sr.ImageRegion(
            graphic_type=sr.GraphicTypeValues.POLYLINE,
            graphic_data=points,
            source_image=self.image_ref(sf),
        )
        label = roi.label
        code, meaning = VERTEBRA_CODES[label.vertebra]
        modifier = None
        if label.endplate is not None:
            modifier = _code(*(_SUPERIOR if str(label.endplate) == "superior" else _INFERIOR))
        site = sr.FindingSite(anatomic_location=_code(code, "SCT", meaning), topographical_modifier=modifier)
        # the first NUM carries the polygon too: OHIF's Cornerstone3D adapter reads the
        # SCOORD inside the first NUM of a group (MeasurementReport.getSpatialCoordinatesState)
        coords = sr.CoordinatesForMeasurement(
            graphic_type=sr.GraphicTypeValues.POLYLINE, graphic_data=points, source_image=self.image_ref(sf)
        )
        area_mm2 = roi.shape.area_px * roi.image.pixel_spacing[0] * roi.image.pixel_spacing[1]
        area = _num(_code(*_SCT_AREA), area_mm2, _unit("mm2", "square millimeter"))
        measurements = [area]
        evaluations = []
        if result is not None:
            measurements += self._result_measurements(result)
            mcode, mmeaning = MODIC_TYPE_CODES[result.modic_type.value]
            evaluations.append(
                sr.QualitativeEvaluation(
                    name=_modic("modic_type"), value=_code(mcode, MODIC_SCHEME, mmeaning)
                )
            )
            ext = getattr(result, "extent", None)
            if ext is not None:
                evaluations += [
                    _grade("height_grade", ext.height_grade),
                    _grade("length_grade", ext.length_grade),
                    _grade("body_source", ext.body_source),
                ]
        kind_code, kind_meaning = _C[label.kind]
        group = sr.PlanarROIMeasurementsAndQualitativeEvaluations(
            tracking_identifier=sr.TrackingIdentifier(uid=uids[roi.id], identifier=OHIF_TRACKING_IDENTIFIER),
            referenced_region=region,
            finding_type=_code(kind_code, MODIC_SCHEME, kind_meaning),
            finding_sites=[site],
            measurements=measurements,
            qualitative_evaluations=evaluations or None,
        )
        items = group[0].ContentSequence
        # highdicom keeps TID 1410 measurements free of coordinates (the group's region is
        # what they measure); the first NUM gets the polygon as INFERRED FROM all the same
        # (TID 300 row "INFERRED FROM SCOORD"), for OHIF's hydration of the ROI.
        first_num = next(i for i in items if i.ValueType == "NUM")
        if "ContentSequence" in first_num:
            first_num.ContentSequence.append(coords)
        else:
            first_num.ContentSequence = _hd().sr.ContentSequence([coords], is_root=False)
        # the label as OHIF shows it (Cornerstone3D LabelData writes a Comment TEXT item)
        items.append(
            sr.TextContentItem(
                name=_code(*_DCM_COMMENT),
                value=str(label),
                relationship_type=sr.RelationshipTypeValues.CONTAINS,
            )
        )
        if result is not None:
            if result.reason:
                items.append(_text("reason", result.reason))
            ref_uid = uids.get(result.reference_id)
            if ref_uid:
                items.append(
                    sr.UIDRefContentItem(
                        name=_modic("reference_uid"),
                        value=ref_uid,
                        relationship_type=sr.RelationshipTypeValues.CONTAINS,
                    )
                )
        items.append(_text("roi_record", json.dumps(_roi_record(roi), sort_keys=True, separators=(",", ":"))))
        return group

    def _result_measurements(self, result: ModicResult) -> list[Any]:
        from .sequence import Role

        out = []
        ratio = _unit("{ratio}", "ratio")
        for role in (Role.T1, Role.T2, Role.STIR):
            s = result.ratios.get(role)
            if s is None or not math.isfinite(s.ratio):
                continue
            out.append(
                _num(
                    _code(*_SCT_RATIO),
                    s.ratio,
                    ratio,
                    method=_modic(f"sir_{role.value}"),
                    low=s.low,
                    high=s.high,
                    images=self.measured_on(result, role),
                )
            )
        voxels = max((u.n_voxels for u in result.series.values()), default=0)
        out.append(_num(_modic("voxels"), voxels, _unit("{voxels}", "voxels")))
        if math.isfinite(result.confidence):
            out.append(_num(_modic("confidence"), result.confidence, _unit("1", "no units")))
        ext = getattr(result, "extent", None)
        if ext is not None:
            mm = _unit("mm", "millimeter")
            out += [
                _num(_modic("height"), ext.height_mm, mm),
                _num(_modic("body_height"), ext.body_height_mm, mm),
                _num(_modic("height_fraction"), ext.height_fraction, ratio),
                _num(_modic("length"), ext.length_mm, mm),
                _num(_modic("endplate_length"), ext.endplate_length_mm, mm),
                _num(_modic("length_fraction"), ext.length_fraction, ratio),
            ]
        return out


def build_sr(
    study: LoadedStudy | Study | ScanResult,
    annotations: Annotations,
    results: ModicResults | Iterable[ModicResult] | None = None,
    *,
    series_number: int = 9901,
    instance_number: int = 1,
    series_description: str = "modic Modic changes",
    series_instance_uid: str | None = None,
    sop_instance_uid: str | None = None,
) -> Any:
    """The measurement report of a study's ROIs and results, as a highdicom SR dataset.

    Parameters
    ----------
    study : LoadedStudy, Study or ScanResult
        The study the ROIs were drawn on (its series give the source images and the
        patient / study modules the SR copies).
    annotations : Annotations
        Every ROI becomes a measurement group, in order.
    results : ModicResults, optional
        :func:`modic.classify` results; each endplate ROI with a result gets its ratios,
        voxels, confidence, extent, Modic type and reason.
    series_number, instance_number, series_description : optional
    series_instance_uid, sop_instance_uid : str, optional
        Default: new UIDs.

    Returns
    -------
    highdicom.sr.Comprehensive3DSR

    Raises
    ------
    SRExportError
        When an ROI's image is not in ``study``.
    MissingDependencyError
        Without highdicom (the ``export`` extra).
    """
    hd = _hd()
    from pydicom.dataset import Dataset
    from pydicom.sr.codedict import codes
    from pydicom.uid import generate_uid

    if len(annotations.rois) == 0:
        raise SRExportError("the annotations hold no ROI: there is nothing to write into an SR")
    writer = _Writer(study)
    by_roi = {r.roi_id: r for r in (results or [])}
    study_uid = annotations.study_instance_uid
    uids = {roi.id: tracking_uid(roi.id, study_uid) for roi in annotations.rois}
    groups = [writer.group(roi, by_roi.get(roi.id), uids, study_uid) for roi in annotations.rois]
    observer = hd.sr.ObserverContext(
        observer_type=codes.DCM.Device,
        observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
            uid=str(generate_uid(entropy_srcs=["modic device observer"])),
            name="modic",
            manufacturer_name="modic developers",
            model_name=f"modic {__version__}",
        ),
    )
    report = hd.sr.MeasurementReport(
        observation_context=hd.sr.ObservationContext(observer_device_context=observer),
        procedure_reported=codes.SCT.ImagingProcedure,
        imaging_measurements=groups,
        title=codes.DCM.ImagingMeasurementReport,
        referenced_images=list(writer.library.values()),
    )
    report[0].ContentSequence.append(
        _text("document", json.dumps(_document_record(annotations), sort_keys=True, separators=(",", ":")))
    )
    sr = hd.sr.Comprehensive3DSR(
        evidence=list(writer.evidence.values()),
        content=report[0],
        series_instance_uid=series_instance_uid or str(generate_uid()),
        series_number=series_number,
        sop_instance_uid=sop_instance_uid or str(generate_uid()),
        instance_number=instance_number,
        manufacturer="modic developers",
        is_complete=True,
    )
    sr.SeriesDescription = series_description
    sr.ManufacturerModelName = "modic"
    sr.SoftwareVersions = __version__
    scheme = Dataset()
    scheme.CodingSchemeDesignator = MODIC_SCHEME
    scheme.CodingSchemeName = _MODIC_SCHEME_NAME
    scheme.CodingSchemeVersion = _MODIC_SCHEME_VERSION
    scheme.CodingSchemeResponsibleOrganization = "modic developers (docs/dicom-export.md)"
    sr.CodingSchemeIdentificationSequence = [scheme]
    return sr


def write_sr(
    study: LoadedStudy | Study | ScanResult,
    annotations: Annotations,
    results: ModicResults | Iterable[ModicResult] | None,
    path: str | os.PathLike[str],
    **kwargs: Any,
) -> Path:
    """Write :func:`build_sr` to ``path`` atomically (parents created); returns the path.

    ``kwargs`` go to :func:`build_sr`. The file is a DICOM Part 10 file (explicit VR
    little endian) with the patient and study modules of the source images.
    """
    from io import BytesIO

    sr = build_sr(study, annotations, results, **kwargs)
    buf = BytesIO()
    sr.save_as(buf, enforce_file_format=True)
    return atomic_write_bytes(path, buf.getvalue())


# ----------------------------------------------------------------------------------------
# reading
# ----------------------------------------------------------------------------------------
def _concept(item: Dataset, attr: str = "ConceptNameCodeSequence") -> tuple[str, str, str] | None:
    seq = item.get(attr)
    if not seq:
        return None
    c = seq[0]
    return (
        str(c.get("CodeValue", "")),
        str(c.get("CodingSchemeDesignator", "")),
        str(c.get("CodeMeaning", "")),
    )


def _is(item: Dataset, code: tuple[str, str, str]) -> bool:
    c = _concept(item)
    return c is not None and c[0] == code[0] and c[1] == code[1]


def _children(item: Dataset) -> list[Dataset]:
    return list(item.get("ContentSequence", []))


@dataclass
class _Region:
    graphic_type: str
    points: NDArray[np.float64]  # (N, 2) x, y
    sop_instance_uid: str
    frame_number: int


def _scoord_region(item: Dataset) -> _Region | None:
    if item.get("ValueType") != "SCOORD":
        return None
    data = np.asarray([float(v) for v in item.get("GraphicData", [])], dtype=float).reshape(-1, 2)
    sop, frame = "", 1
    for child in _children(item):
        refs = child.get("ReferencedSOPSequence")
        if refs:
            ref = refs[0]
            sop = str(ref.get("ReferencedSOPInstanceUID", ""))
            frame = _first_int(ref.get("ReferencedFrameNumber"), 1)
    return _Region(str(item.get("GraphicType", "")), data, sop, frame)


def _first_int(value: Any, default: int) -> int:
    """The first number of a DICOM IS value (single or multi-valued), else ``default``."""
    if value is None or value == "":
        return default
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        return int(value[0]) if len(value) else default
    return int(value)


def _group_region(group: Dataset) -> _Region | None:
    """The ROI of a measurement group: a SCOORD at group level (TID 1410 "Image Region"),
    else the SCOORD a NUM is inferred from (TID 300, as dcmjs / Cornerstone write).

    Points are passed over: Cornerstone writes the position of a moved label as a group
    level POINT ("99CS3D TextPosition", cornerstonejs/cornerstone3D
    packages/adapters/src/adapters/Cornerstone3D/LabelData.ts).
    """
    items = _children(group)
    candidates = [r for r in (_scoord_region(i) for i in items) if r is not None]
    for item in items:
        if item.get("ValueType") == "NUM":
            candidates += [r for r in (_scoord_region(c) for c in _children(item)) if r is not None]
    regions = [r for r in candidates if r.graphic_type not in ("POINT", "MULTIPOINT")]
    return regions[0] if regions else (candidates[0] if candidates else None)


def _shape_from_region(region: _Region) -> Shape | None:
    """A modic shape from SCOORD graphic data, or None for points and open lines."""
    from .annotations import Ellipse, Polygon

    pts = np.round(region.points, 3) + 0.0
    gt = region.graphic_type
    if gt == "POLYLINE":
        if len(pts) > 3 and np.allclose(pts[0], pts[-1]):
            pts = pts[:-1]
        elif len(pts) < 3:
            return None  # a line, not a region
        return Polygon(pts) if len(pts) >= 3 else None
    if gt == "ELLIPSE" and len(pts) == 4:
        (a0, a1, b0, b1) = pts
        c = (a0 + a1) / 2
        rx = float(np.linalg.norm(a1 - a0) / 2)
        ry = float(np.linalg.norm(b1 - b0) / 2)
        angle = math.degrees(math.atan2(a1[1] - a0[1], a1[0] - a0[0]))
        return Ellipse(float(c[0]), float(c[1]), rx, ry, angle)
    if gt == "CIRCLE" and len(pts) == 2:
        r = float(np.linalg.norm(pts[1] - pts[0]))
        return Ellipse(float(pts[0][0]), float(pts[0][1]), r, r, 0.0)
    return None


def _label_from_group(items: Sequence[Dataset]) -> tuple[RoiLabel | None, str]:
    """The ROI label from coded finding type and site, else from free text."""
    from .annotations import RoiLabel

    kind = None
    vertebra = None
    endplate = None
    texts: list[str] = []
    for item in items:
        c = _concept(item)
        if c is None:
            continue
        if c[:2] == _DCM_FINDING[:2]:
            v = _concept(item, "ConceptCodeSequence")
            if v is not None:
                if v[1] == MODIC_SCHEME and v[0] in _KIND_BY_FINDING:
                    kind = _KIND_BY_FINDING[v[0]]
                texts.append(v[2])
        elif c[:2] in (_SCT_FINDING_SITE[:2], _SRT_FINDING_SITE[:2]):
            v = _concept(item, "ConceptCodeSequence")
            if v is None:
                continue
            if v[1] in ("SCT", "SRT") and v[0] in _VERTEBRA_BY_CODE:
                vertebra = _VERTEBRA_BY_CODE[v[0]]
                for child in _children(item):
                    m = _concept(child, "ConceptCodeSequence")
                    if _is(child, _SCT_TOPOGRAPHICAL_MODIFIER) and m is not None:
                        endplate = {"264217000": "superior", "261089000": "inferior"}.get(m[0], endplate)
            else:
                texts.append(v[2])
        elif c[:2] == _DCM_COMMENT[:2] and item.get("ValueType") == "TEXT":
            texts.insert(0, str(item.get("TextValue", "")))
        elif c[:2] == _DCM_TRACKING_ID[:2] and item.get("ValueType") == "TEXT":
            value = str(item.get("TextValue", ""))
            if not value.startswith(_CORNERSTONE_PREFIX):
                texts.append(value)
    if vertebra is not None:
        try:
            if kind is None:
                kind = "endplate" if endplate else None
            if kind is not None:
                return RoiLabel(kind, vertebra, endplate if kind == "endplate" else None), ""  # type: ignore[arg-type]
        except ValueError as exc:
            return None, str(exc)
    for t in texts:
        try:
            return RoiLabel.parse(t), ""
        except ValueError:
            continue
    what = f"texts {texts!r}" if texts else "no finding site or label text"
    return None, f"no modic ROI label (vertebra and endplate or 'ref') could be read: {what}"


def _text_value(items: Sequence[Dataset], key: str) -> str | None:
    value, _ = _C[key]
    for item in items:
        c = _concept(item)
        if c is not None and c[0] == value and c[1] == MODIC_SCHEME and item.get("ValueType") == "TEXT":
            return str(item.get("TextValue", ""))
    return None


def _uid_value(items: Sequence[Dataset], code: tuple[str, str, str]) -> str | None:
    for item in items:
        if _is(item, code) and item.get("ValueType") == "UIDREF":
            return str(item.get("UID", ""))
    return None


def _tracking_identifier(items: Sequence[Dataset]) -> str:
    for item in items:
        if _is(item, _DCM_TRACKING_ID) and item.get("ValueType") == "TEXT":
            return str(item.get("TextValue", ""))
    return ""


def _measurement_groups(ds: Dataset) -> list[Dataset]:
    out = []
    for item in ds.get("ContentSequence", []):
        if _is(item, _DCM_IMAGING_MEASUREMENTS):
            out += [g for g in _children(item) if _is(g, _DCM_MEASUREMENT_GROUP)]
    return out


def _planes_of(study: LoadedStudy | Study | ScanResult | None) -> dict[tuple[str, int], ImagePlane]:
    from .annotations import ImagePlane

    if study is None:
        return {}
    out = {}
    for key, sf in _frames_by_sop(_study_of(study)).items():
        if sf.series.geometry is not None:
            out[key] = ImagePlane.from_series(sf.series, sf.index)
    return out


def read_sr(
    source: str | os.PathLike[str] | Dataset,
    study: LoadedStudy | Study | ScanResult | None = None,
    *,
    skipped: list[str] | None = None,
) -> Annotations:
    """The ROIs of a DICOM SR measurement report (TID 1500) as modic annotations.

    Reads modic's own reports (:func:`write_sr`) without loss, and the planar ROIs of
    reports written by OHIF (Cornerstone3D ``PlanarFreehandROI``, ``RectangleROI``,
    ``EllipticalROI``, ``CircleROI``; SCOORD inside the first NUM of a group) and by 3D
    Slicer / highdicom (TID 1410 planar groups with an "Image Region"). Imported ROIs of
    other programs get ``origin="imported"`` and a ``source`` naming the SR and group.

    Parameters
    ----------
    source : path-like or pydicom Dataset
    study : LoadedStudy, Study or ScanResult
        The study the SR refers to: it gives each referenced image's geometry (an SR
        holds only 2-D image coordinates). Required.
    skipped : list, optional
        Receives one line per measurement group that is not an ROI modic can use (a
        point, a line, a volumetric group, an unknown image, no label), with the reason.

    Returns
    -------
    Annotations

    Raises
    ------
    DicomFileError
        If the file is not a DICOM SR measurement report (TID 1500).
    ValueError
        If ``study`` is not given.
    """
    import pydicom
    from pydicom.dataset import Dataset

    from .annotations import ROI, Annotations, RoiLabel, shape_from_dict
    from .errors import AnnotationFormatError

    if isinstance(source, Dataset):
        ds, name = source, "<dataset>"
    else:
        name = os.fspath(source)
        try:
            ds = pydicom.dcmread(name)
        except Exception as exc:  # noqa: BLE001
            raise DicomFileError(name, f"not a readable DICOM file ({exc})") from None
    if study is None:
        raise ValueError(
            f"{name}: reading ROIs from an SR needs the study it refers to (for each image's "
            "geometry): read_sr(path, modic.load_study(folder)) or a modic.scan(folder) result"
        )
    if ds.get("Modality") != "SR" or not _is(ds, ("126000", "DCM", "")):
        raise DicomFileError(
            name,
            "not a DICOM SR measurement report (TID 1500, document title 126000 "
            f"'Imaging Measurement Report'); Modality {ds.get('Modality', '?')!r}",
        )
    planes = _planes_of(study)
    sop = str(ds.get("SOPInstanceUID", ""))
    notes = skipped if skipped is not None else []
    rois: list[ROI] = []
    doc: dict[str, Any] = {}
    text = _text_value(list(ds.get("ContentSequence", [])), "document")
    if text:
        try:
            doc = json.loads(text)
        except ValueError:
            logger.warning("%s: the modic document record is not JSON; ignored", name)
    seen: set[str] = set()
    for n, group in enumerate(_measurement_groups(ds), start=1):
        items = _children(group)
        where = f"measurement group {n}"
        region = _group_region(group)
        if region is None:
            notes.append(f"{where}: no planar region (SCOORD); not an ROI modic can use")
            continue
        plane = planes.get((region.sop_instance_uid, region.frame_number))
        if plane is None:
            notes.append(
                f"{where}: its image {region.sop_instance_uid} (frame {region.frame_number}) "
                "is not in the study given"
            )
            continue
        shape = _shape_from_region(region)
        if shape is None:
            notes.append(f"{where}: a {region.graphic_type} with {len(region.points)} points is not a region")
            continue
        record: dict[str, Any] = {}
        rec_text = _text_value(items, "roi_record")
        if rec_text:
            try:
                record = json.loads(rec_text)
            except ValueError:
                logger.warning("%s: %s: the modic ROI record is not JSON; ignored", name, where)
        label, problem = _label_from_group(items)
        if record.get("label"):
            try:
                label = RoiLabel.from_dict(record["label"])
            except (ValueError, AttributeError, TypeError):
                pass
        if label is None:
            notes.append(f"{where}: {problem}")
            continue
        if "shape" in record:
            try:
                exact = shape_from_dict(record["shape"])
                if _same_outline(exact, shape):
                    shape = exact
                else:
                    logger.warning(
                        "%s: %s: the polygon was edited after modic wrote it; the SR's polygon is used",
                        name,
                        where,
                    )
            except (AnnotationFormatError, ValueError, TypeError) as exc:
                logger.warning(
                    "%s: %s: ROI record shape unreadable (%s); the SR's polygon is used", name, where, exc
                )
        uid = _uid_value(items, _DCM_TRACKING_UID) or ""
        tracking = _tracking_identifier(items)
        roi_id = record.get("id") or _id_from_tracking_uid(uid) or uuid.uuid4().hex
        if roi_id in seen:
            roi_id = uuid.uuid4().hex
        seen.add(roi_id)
        kwargs: dict[str, Any] = {"id": roi_id}
        if record:
            for key in ("author", "created", "modified", "tool_version", "comment", "origin", "source"):
                if key in record:
                    kwargs[key] = record[key]
        else:
            src = f"DICOM SR {sop}, {where}"
            if tracking:
                src += f" ({tracking})"
            kwargs.update(origin="imported", source=src)
        try:
            rois.append(ROI(label, shape, plane, **kwargs))
        except AnnotationFormatError as exc:
            notes.append(f"{where}: {exc}")
    for line in notes:
        logger.info("%s: skipped %s", name, line)
    frame_of_reference = doc.get("frame_of_reference_uid")
    if frame_of_reference is None:
        frame_of_reference = next(
            (
                s.frame_of_reference_uid
                for s in _study_of(study)
                if rois and s.series_uid == rois[0].image.series_instance_uid
            ),
            "",
        )
    out = Annotations(
        rois,
        study_instance_uid=str(doc.get("study_instance_uid") or ds.get("StudyInstanceUID", "")),
        frame_of_reference_uid=str(frame_of_reference or ""),
        description=str(doc.get("description", "")),
    )
    for key in ("created", "modified"):
        if doc.get(key):
            setattr(out, key, doc[key])
    if isinstance(doc.get("tool"), dict):
        out.tool = {str(k): str(v) for k, v in doc["tool"].items()}
    return out


def _same_outline(exact: Shape, polygon: Shape, tolerance_px: float = 0.01) -> bool:
    """True when the polygon in the SR is what modic writes for ``exact``."""
    from .annotations import Polygon

    if not isinstance(polygon, Polygon):
        return False
    written = _polyline(exact)[:-1]
    got = np.asarray(polygon.points, dtype=float)
    return written.shape == got.shape and bool(np.all(np.abs(written - got) <= tolerance_px))
