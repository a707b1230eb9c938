"""DICOM SR measurement reports: written from a classified sample study, checked with an
independent validator (dciodvfy, dicom3tools) and read back with pydicom and highdicom;
read back into annotations without loss; and ROIs read from SRs as OHIF and 3D Slicer
write them. The CLI (``modic export``, ``modic import``, ``modic batch --export``) runs in a
subprocess.

dicom-validator (pip) is not used here: it downloads the DICOM standard (docbook XML
from dicom.nema.org) on its first run, which neither the CI machine nor this one can
reach; dciodvfy carries its own tables.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest

import modic
from modic.annotations import ROI, Annotations, Ellipse, ImagePlane, Mask, Polygon, Rectangle, RoiLabel
from modic.errors import DicomFileError

hd = pytest.importorskip("highdicom")
from modic import sr as msr  # noqa: E402

NAME = "siemens_15T_type1_type2"
DCIODVFY = shutil.which("dciodvfy") or ("/usr/bin/dciodvfy" if os.path.exists("/usr/bin/dciodvfy") else None)
# SNOMED CT codes of the vertebrae, as the issue lists them (not read from modic.sr)
SCT_VERTEBRA = {
    "L1": "66794005",
    "L2": "14293000",
    "L3": "36470004",
    "L4": "11994002",
    "L5": "49668003",
    "S1": "54735007",
}
OHIF_ID = "Cornerstone3DTools@^0.1.0:PlanarFreehandROI"


def dciodvfy_errors(path: Path) -> list[str]:
    """The error lines dciodvfy prints for a file (warnings are not errors)."""
    if DCIODVFY is None:
        if os.environ.get("CI"):
            pytest.fail("dciodvfy (Debian package dicom3tools) is missing; .ci/run installs it")
        pytest.skip("dciodvfy (Debian package dicom3tools) is not installed")
    r = subprocess.run([DCIODVFY, str(path)], capture_output=True, text=True, timeout=120)
    lines = (r.stdout + r.stderr).splitlines()
    assert any(line.strip() for line in lines), "dciodvfy printed nothing"
    return [line for line in lines if line.startswith("Error")]


@pytest.fixture(scope="module")
def classified():
    study = modic.load_study(modic.data.sample_study_path(NAME))
    annotations = modic.read_annotations(modic.data.sample_annotations_path(NAME))
    results = modic.classify(study, annotations)
    return study, annotations, results


@pytest.fixture(scope="module")
def sr_file(classified, tmp_path_factory):
    study, annotations, results = classified
    return msr.write_sr(study, annotations, results, tmp_path_factory.mktemp("sr") / "report.dcm")


def _truth():
    return json.loads(modic.data.sample_truth_path(NAME).read_text())


def _groups(ds):
    imaging = [i for i in ds.ContentSequence if i.ConceptNameCodeSequence[0].CodeValue == "126010"]
    assert len(imaging) == 1
    return [g for g in imaging[0].ContentSequence if g.ConceptNameCodeSequence[0].CodeValue == "125007"]


def _items(group, code, scheme=None):
    return [
        i
        for i in group.ContentSequence
        if i.ConceptNameCodeSequence[0].CodeValue == code
        and (scheme is None or i.ConceptNameCodeSequence[0].CodingSchemeDesignator == scheme)
    ]


def _one(group, code, scheme=None):
    found = _items(group, code, scheme)
    assert len(found) == 1, (code, len(found))
    return found[0]


def _group_for(ds, label):
    for g in _groups(ds):
        if _one(g, "121106").TextValue == label:  # the Comment OHIF shows as the label
            return g
    raise AssertionError(f"no group labelled {label}")


# -- validation ---------------------------------------------------------------------------


def test_sr_has_no_dciodvfy_errors(sr_file):
    assert dciodvfy_errors(sr_file) == []


def test_sr_of_a_multiframe_source_has_no_dciodvfy_errors(tmp_path):
    name = "philips_15T_mixed23_enhanced"  # the T1 is one Enhanced MR object
    study = modic.load_study(modic.data.sample_study_path(name))
    annotations = modic.read_annotations(modic.data.sample_annotations_path(name))
    path = msr.write_sr(study, annotations, modic.classify(study, annotations), tmp_path / "sr.dcm")
    assert dciodvfy_errors(path) == []
    ds = pydicom.dcmread(path)
    region = _one(_groups(ds)[0], "111030")
    ref = region.ContentSequence[0].ReferencedSOPSequence[0]
    assert int(ref.ReferencedFrameNumber) == annotations.rois[0].image.frame_number
    assert msr.read_sr(path, study) == annotations


# -- structure, read with pydicom ------------------------------------------------------


def test_sr_is_a_tid1500_report_of_the_source_study(sr_file, classified):
    study, annotations, _ = classified
    ds = pydicom.dcmread(sr_file)
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.88.34"  # Comprehensive 3D SR
    assert ds.Modality == "SR"
    assert ds.ContentTemplateSequence[0].TemplateIdentifier == "1500"
    assert ds.ConceptNameCodeSequence[0].CodeValue == "126000"
    # patient and study modules copied from the source images, not invented
    src = pydicom.dcmread(study.t1.series.frames[0].path, stop_before_pixels=True)
    for kw in ("PatientName", "PatientID", "StudyInstanceUID", "StudyDate", "AccessionNumber"):
        assert ds.get(kw) == src.get(kw), kw
    schemes = {s.CodingSchemeDesignator: s for s in ds.CodingSchemeIdentificationSequence}
    assert "99MODIC" in schemes and schemes["99MODIC"].CodingSchemeName
    assert len(_groups(ds)) == len(annotations.rois)
    # Image Library with a group of images (OHIF's _getReferencedImagesList reads it)
    library = [i for i in ds.ContentSequence if i.ConceptNameCodeSequence[0].CodeValue == "111028"]
    assert len(library) == 1
    lib_groups = [i for i in library[0].ContentSequence if i.ConceptNameCodeSequence[0].CodeValue == "126200"]
    assert lib_groups and lib_groups[0].ContentSequence[0].ValueType == "IMAGE"
    # the series the ROIs were drawn on comes first in the evidence (3D Slicer reads it)
    evidence = ds.CurrentRequestedProcedureEvidenceSequence[0].ReferencedSeriesSequence
    assert evidence[0].SeriesInstanceUID == annotations.rois[0].image.series_instance_uid


def test_each_roi_is_a_closed_polygon_on_its_image_with_tracking_and_site(sr_file, classified):
    _, annotations, _ = classified
    ds = pydicom.dcmread(sr_file)
    uids = set()
    for roi, group in zip(annotations.rois, _groups(ds), strict=True):
        assert _one(group, "112039").TextValue == OHIF_ID
        uid = _one(group, "112040").UID
        assert uid.startswith("2.25.") and uid not in uids
        uids.add(uid)
        region = _one(group, "111030")
        assert region.ValueType == "SCOORD" and region.GraphicType == "POLYLINE"
        pts = np.asarray(region.GraphicData, dtype=float).reshape(-1, 2)
        assert np.array_equal(pts[0], pts[-1])  # closed: first point repeated
        assert np.allclose(pts[:-1], roi.shape.points, atol=1e-3)  # no half-pixel shift
        src = region.ContentSequence[0]
        assert src.RelationshipType == "SELECTED FROM"
        assert src.ReferencedSOPSequence[0].ReferencedSOPInstanceUID == roi.image.sop_instance_uid
        site = _one(group, "363698007", "SCT")
        assert site.ConceptCodeSequence[0].CodeValue == SCT_VERTEBRA[roi.label.vertebra]
        assert site.ConceptCodeSequence[0].CodingSchemeDesignator == "SCT"
        if roi.label.kind == "endplate":
            modifier = site.ContentSequence[0].ConceptCodeSequence[0].CodeMeaning
            assert modifier.lower() == str(roi.label.endplate)
        area = _one(group, "42798000", "SCT").MeasuredValueSequence[0]
        expected = roi.pixel_mask().sum() * np.prod(roi.image.pixel_spacing)
        assert float(area.NumericValue) == pytest.approx(expected, rel=0.15)  # polygon vs pixel area
        assert area.MeasurementUnitsCodeSequence[0].CodeValue == "mm2"


def test_first_num_holds_the_polygon_as_ohif_adapters_read_it(sr_file):
    """Cornerstone3D's MeasurementReport.getSpatialCoordinatesState takes the SCOORD inside
    the first NUM of a group (cornerstonejs/cornerstone3D
    packages/adapters/src/adapters/Cornerstone3D/MeasurementReport.ts)."""
    ds = pydicom.dcmread(sr_file)
    for group in _groups(ds):
        first = next(i for i in group.ContentSequence if i.ValueType == "NUM")
        scoord = [c for c in first.ContentSequence if c.ValueType == "SCOORD"]
        assert len(scoord) == 1 and scoord[0].RelationshipType == "INFERRED FROM"
        assert list(scoord[0].GraphicData) == list(_one(group, "111030").GraphicData)
        assert scoord[0].ContentSequence[0].ReferencedSOPSequence[0].ReferencedSOPInstanceUID


def test_endplate_group_holds_the_results(sr_file, classified):
    _, annotations, results = classified
    ds = pydicom.dcmread(sr_file)
    lesions = {(x["vertebra"], x["endplate"]): x["modic_type"] for x in _truth()["spec"]["lesions"]}
    by_label = {str(r.label): r for r in results}
    group = _group_for(ds, "L4 inferior")
    result = by_label["L4 inferior"]
    ratios = _items(group, "118586006", "SCT")
    assert len(ratios) == len(result.ratios)
    for item in ratios:
        value = item.MeasuredValueSequence[0]
        assert value.MeasurementUnitsCodeSequence[0].CodeValue == "{ratio}"
        assert value.MeasurementUnitsCodeSequence[0].CodingSchemeDesignator == "UCUM"
        method = [c for c in item.ContentSequence if c.ConceptNameCodeSequence[0].CodeValue == "370129005"]
        role = method[0].ConceptCodeSequence[0].CodeValue.split("-")[1]
        ratio = next(s for r, s in result.ratios.items() if r.value == role)
        assert float(value.NumericValue) == pytest.approx(ratio.ratio, rel=1e-6)
        props = {c.ConceptNameCodeSequence[0].CodeValue: c for c in item.ContentSequence}
        upper = float(props["371886008"].MeasuredValueSequence[0].NumericValue)
        lower = float(props["371885007"].MeasuredValueSequence[0].NumericValue)
        assert ratio.ratio + upper == pytest.approx(ratio.high, rel=1e-6)
        assert ratio.ratio - lower == pytest.approx(ratio.low, rel=1e-6)
        # measured on a slice of its own sequence's series
        src = [c for c in item.ContentSequence if c.RelationshipType == "INFERRED FROM"][0]
        assert src.ReferencedSOPSequence[0].ReferencedSOPInstanceUID
    modic_type = [i for i in _items(group, "MODICTYPE", "99MODIC") if i.ValueType == "CODE"][
        0
    ].ConceptCodeSequence[0]
    assert modic_type.CodingSchemeDesignator == "99MODIC"
    assert modic_type.CodeMeaning == f"Modic type {lesions[('L4', 'inferior')]}"
    assert _one(group, "REASON", "99MODIC").TextValue == result.reason
    voxels = _one(group, "VOXELS", "99MODIC").MeasuredValueSequence[0]
    assert int(float(voxels.NumericValue)) == max(u.n_voxels for u in result.series.values())
    # the reference it was compared with is linked by its group's Tracking UID
    ref_uid = _one(group, "REF-REGION-UID", "99MODIC").UID
    ref_group = next(g for g in _groups(ds) if _one(g, "112040").UID == ref_uid)
    assert _one(ref_group, "121106").TextValue == str(result.reference_label)
    finding = _one(ref_group, "121071").ConceptCodeSequence[0]
    assert finding.CodeValue == "REFERENCE"


def test_extent_is_in_the_report_when_measured(sr_file, classified):
    _, _, results = classified
    ds = pydicom.dcmread(sr_file)
    with_extent = [r for r in results if getattr(r, "extent", None) is not None]
    assert with_extent, "the sample study's changes should have an extent"
    for result in with_extent:
        group = _group_for(ds, str(result.label))
        height = _one(group, "EXT-HEIGHT", "99MODIC").MeasuredValueSequence[0]
        assert float(height.NumericValue) == pytest.approx(result.extent.height_mm, rel=1e-6)
        assert height.MeasurementUnitsCodeSequence[0].CodeValue == "mm"
        grade = _one(group, "UDBY-GRADE", "99MODIC").ConceptCodeSequence[0]
        assert grade.CodeMeaning == f"Udby grade {result.extent.height_grade}"
    no_change = next(r for r in results if r.modic_type.value == "0")
    assert _items(_group_for(ds, str(no_change.label)), "EXT-HEIGHT", "99MODIC") == []


# -- read with highdicom (the way 3D Slicer's QuantitativeReporting reads planar ROIs) --


def test_highdicom_reads_the_planar_groups(sr_file, classified):
    _, annotations, _ = classified
    sr = hd.sr.srread(sr_file)
    groups = sr.content.get_planar_roi_measurement_groups(
        reference_type=hd.sr.CodedConcept("111030", "DCM", "Image Region"),
        graphic_type=hd.sr.GraphicTypeValues.POLYLINE,
    )
    assert len(groups) == len(annotations.rois)
    g = groups[0]
    assert g.tracking_identifier == OHIF_ID
    assert g.finding_sites[0].value.value == SCT_VERTEBRA[annotations.rois[0].label.vertebra]
    assert g.roi.ContentSequence[0].referenced_sop_instance_uid == annotations.rois[0].image.sop_instance_uid


# -- round trips ----------------------------------------------------------------------------


def test_read_back_equals_the_annotations(sr_file, classified):
    study, annotations, _ = classified
    back = msr.read_sr(sr_file, study)
    assert back == annotations
    for a, b in zip(back.rois, annotations.rois, strict=True):
        assert np.max(np.abs(a.shape.points - b.shape.points)) < 1e-3


def test_read_back_from_a_scan_and_a_dataset(sr_file, classified):
    _, annotations, _ = classified
    scanned = modic.scan(modic.data.sample_study_path(NAME))
    assert msr.read_sr(pydicom.dcmread(sr_file), scanned) == annotations


def _planes(study, k=3):
    t1 = study.t1.series
    mid = len(t1.frames) // 2
    return [ImagePlane.from_series(t1, mid + i) for i in range(k)]


def test_every_shape_and_field_round_trips(classified, tmp_path):
    study = classified[0]
    p0, p1, _ = _planes(study)
    mask = np.zeros((6, 9), dtype=bool)
    mask[1:5, 2:8] = True
    mask[2, 3] = False
    rois = [
        ROI(RoiLabel.parse("L3 superior"), Rectangle(100.25, 120.5, 140.125, 131.0), p0, id="rect-1"),
        ROI(
            RoiLabel.parse("ref L3"), Ellipse(130.0, 150.0, 12.5, 7.25, 20.0), p0, author="Dr A", comment="c"
        ),
        ROI(
            RoiLabel.parse("L2 inferior"), Mask(70, 80, mask), p1, origin="derived", source="labels.nii.gz 21"
        ),
        ROI(RoiLabel.for_body("L3"), Polygon([[90.001, 100.0], [170.5, 101.25], [168.0, 160.999]]), p1),
        ROI(
            RoiLabel.for_fat("L3"), Polygon([[10.0, 10.0], [20.0, 10.0], [15.0, 20.0]]), p1, origin="proposed"
        ),
    ]
    annotations = Annotations(rois, study_instance_uid=study.study.study_uid, description="shapes")
    path = msr.write_sr(study, annotations, None, tmp_path / "shapes.dcm")
    assert dciodvfy_errors(path) == []
    assert msr.read_sr(path, study) == annotations


def _strip_private_records(path: Path, out: Path) -> Path:
    ds = pydicom.dcmread(path)
    for group in _groups(ds):
        group.ContentSequence = [
            i for i in group.ContentSequence if i.ConceptNameCodeSequence[0].CodeValue != "ROI-RECORD"
        ]
    ds.ContentSequence = [
        i for i in ds.ContentSequence if i.ConceptNameCodeSequence[0].CodeValue != "DOC-RECORD"
    ]
    ds.save_as(out)
    return out


def test_the_standard_content_alone_gives_the_rois(sr_file, classified, tmp_path):
    """Without modic's private records: labels from the coded finding and site, polygons
    from the SCOORD, ids from the UUID-derived tracking UIDs; marked as imported."""
    study, annotations, _ = classified
    back = msr.read_sr(_strip_private_records(sr_file, tmp_path / "plain.dcm"), study)
    assert [r.label for r in back.rois] == [r.label for r in annotations.rois]
    assert [r.id for r in back.rois] == [r.id for r in annotations.rois]
    assert [r.image for r in back.rois] == [r.image for r in annotations.rois]
    for a, b in zip(back.rois, annotations.rois, strict=True):
        assert np.max(np.abs(a.shape.points - b.shape.points)) < 1e-3
        assert a.origin == "imported" and "DICOM SR" in a.source
    assert back.study_instance_uid == annotations.study_instance_uid


# -- what Cornerstone3D (OHIF) makes of the SR ---------------------------------------------

OHIF_DIR = Path(__file__).parent / "ohif"


def _cornerstone_reader() -> str:
    """``node``, with Cornerstone3D's SR adapters installed in tests/ohif (``npm ci``)."""
    node = shutil.which("node")
    if node is None or not (OHIF_DIR / "node_modules" / "@cornerstonejs" / "adapters").is_dir():
        how = "npm ci --prefix tests/ohif (.ci/run does)"
        if os.environ.get("CI"):
            pytest.fail(f"Cornerstone3D's SR adapters are not installed: {how}")
        pytest.skip(f"node or Cornerstone3D's SR adapters missing: {how}")
    return node


def _geometry(study) -> dict[str, dict[str, object]]:
    out = {}
    for s in study.study.series:
        if s.geometry is None:
            continue
        for i, f in enumerate(s.frames):
            p = ImagePlane.from_series(s, i)
            out[f"{f.sop_instance_uid}:{f.frame_index + 1}"] = {
                "ipp": list(p.position),
                "iop": list(p.orientation),
                "spacing": list(p.pixel_spacing),
                "rows": p.rows,
                "columns": p.columns,
                "for": s.frame_of_reference_uid,
            }
    return out


@pytest.mark.parametrize("name", [NAME, "philips_15T_mixed23_enhanced"])
def test_cornerstone3d_adapters_load_every_roi(name, tmp_path):
    """The SR read by Cornerstone3D's own code, as OHIF hydrates an SR into editable tools
    (@cornerstonejs/adapters MeasurementReport.generateToolState, version pinned in
    tests/ohif/package.json): every group becomes a closed PlanarFreehandROI with the ROI's
    label, tracking UID and outline, at the same place in the patient as modic puts it."""
    node = _cornerstone_reader()
    study = modic.load_study(modic.data.sample_study_path(name))
    annotations = modic.read_annotations(modic.data.sample_annotations_path(name))
    path = msr.write_sr(study, annotations, modic.classify(study, annotations), tmp_path / "sr.dcm")
    geometry = tmp_path / "geometry.json"
    geometry.write_text(json.dumps(_geometry(study)))
    r = subprocess.run(
        [node, str(OHIF_DIR / "read_sr.mjs"), str(path), str(geometry)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=OHIF_DIR,
    )
    assert r.returncode == 0, r.stderr
    loaded = json.loads(r.stdout)
    assert len(loaded) == len(annotations.rois), r.stderr
    by_uid = {a["tracking_uid"]: a for a in loaded}
    for roi in annotations.rois:
        a = by_uid[msr.tracking_uid(roi.id)]
        assert a["tool"] == "PlanarFreehandROI"
        assert a["label"] == str(roi.label)
        assert a["imageId"] == f"modic:{roi.image.sop_instance_uid}:{roi.image.frame_number}"
        assert a["closed"] is True
        world = np.asarray(a["polyline"], dtype=float)
        expected = roi.image.pixel_to_patient(roi.shape.points)
        assert world.shape == expected.shape
        assert np.max(np.abs(world - expected)) < 1e-3  # mm: the same pixel origin


def test_rois_saved_by_cornerstone3d_are_read_and_classified(classified, tmp_path):
    """An SR written by Cornerstone3D's own writer, as OHIF saves measurements
    (@cornerstonejs/adapters MeasurementReport.generateReport, then dcmjs; tests/ohif/
    write_sr.mjs): freehand ROIs drawn on the L4 inferior endplate and in L4's marrow,
    labelled in free text, come back on the same images and are classified."""
    node = _cornerstone_reader()
    study, annotations, _ = classified
    mine = {str(r.label): r for r in annotations.rois}
    keywords = (
        "StudyInstanceUID SeriesInstanceUID SOPInstanceUID SOPClassUID PatientID PatientName "
        "PatientBirthDate PatientSex StudyDate StudyTime StudyID AccessionNumber "
        "ReferringPhysicianName FrameOfReferenceUID Modality SeriesNumber SeriesDescription"
    ).split()
    images, drawn = {}, []
    for label, text in (("L4 inferior", "L4 inferior"), ("L4 reference", "ref L4")):
        roi = mine[label]
        frame = next(f for f in study.t1.series.frames if f.sop_instance_uid == roi.image.sop_instance_uid)
        header = pydicom.dcmread(frame.path, stop_before_pixels=True)
        image_id = f"modic:{frame.sop_instance_uid}"
        p = roi.image
        images[image_id] = {
            "plane": {
                "ipp": list(p.position),
                "iop": list(p.orientation),
                "spacing": list(p.pixel_spacing),
                "rows": p.rows,
                "columns": p.columns,
            },
            "instance": {k: str(header.get(k, "")) for k in keywords},
        }
        drawn.append(
            {
                "tool": "PlanarFreehandROI",
                "imageId": image_id,
                "label": text,
                "points": p.pixel_to_patient(roi.shape.points).tolist(),  # world (patient) coordinates
                "closed": True,
            }
        )
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"images": images, "annotations": drawn}))
    path = tmp_path / "cornerstone.dcm"
    r = subprocess.run(
        [node, str(OHIF_DIR / "write_sr.mjs"), str(spec), str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=OHIF_DIR,
    )
    assert r.returncode == 0, r.stderr
    assert pydicom.dcmread(path).SOPClassUID == "1.2.840.10008.5.1.4.1.1.88.22"  # Enhanced SR
    back = msr.read_sr(path, study)
    assert sorted(str(r.label) for r in back.rois) == ["L4 inferior", "L4 reference"]
    for roi in back.rois:
        original = mine[str(roi.label)]
        assert roi.origin == "imported" and OHIF_ID in roi.source
        assert roi.image == original.image
        assert np.max(np.abs(roi.shape.points - original.shape.points)) < 1e-3
    results = modic.classify(study, back)
    lesion = next(x for x in _truth()["spec"]["lesions"] if x["vertebra"] == "L4")
    assert [x.modic_type.value for x in results] == [lesion["modic_type"]]


# -- SRs made by OHIF and 3D Slicer -------------------------------------------------------


def _code(value, scheme, meaning):
    c = pydicom.Dataset()
    c.CodeValue, c.CodingSchemeDesignator, c.CodeMeaning = value, scheme, meaning
    return [c]


def _item(rel, vt, code, **kw):
    i = pydicom.Dataset()
    i.RelationshipType, i.ValueType = rel, vt
    if code is not None:
        i.ConceptNameCodeSequence = _code(*code)
    for k, v in kw.items():
        setattr(i, k, v)
    return i


def _image_ref(plane, sop_class="1.2.840.10008.5.1.4.1.1.4"):
    ref = pydicom.Dataset()
    ref.ReferencedSOPClassUID = sop_class
    ref.ReferencedSOPInstanceUID = plane.sop_instance_uid
    return _item("SELECTED FROM", "IMAGE", None, ReferencedSOPSequence=[ref])


def _ohif_group(plane, points, label, closed=True, text_position=None, graphic_type="POLYLINE"):
    """One measurement group as Cornerstone3D's PlanarFreehandROI adapter and dcmjs write it:
    tracking identifier and UID (HAS OBS CONTEXT), a Perimeter NUM with the polyline as
    INFERRED FROM SCOORD (no concept name) SELECTED FROM the image, an Area NUM, the label
    as a Comment TEXT, and optionally the label position as a "99CS3D TextPosition" POINT.
    Reproduced from dcmjs-org/dcmjs src/utilities/TID300/Polyline.js,
    src/utilities/TID300/TID300Measurement.js, src/utilities/TID300/TID320ContentItem.js,
    src/utilities/TID1500/TID1501MeasurementGroup.js, and cornerstonejs/cornerstone3D
    packages/adapters/src/adapters/Cornerstone3D/PlanarFreehandROI.ts and LabelData.ts."""
    pts = np.asarray(points, dtype=float)
    if closed and graphic_type == "POLYLINE":
        pts = np.vstack([pts, pts[:1]])  # "repeat the first point at the end" (PlanarFreehandROI.ts)
    scoord = _item(
        "INFERRED FROM", "SCOORD", None, GraphicType=graphic_type, GraphicData=[float(v) for v in pts.ravel()]
    )
    scoord.ContentSequence = [_image_ref(plane)]
    perimeter = _item("CONTAINS", "NUM", ("131191004", "SCT", "Perimeter"))
    mv = pydicom.Dataset()
    mv.MeasurementUnitsCodeSequence = _code("mm", "UCUM", "mm")
    mv.NumericValue = "42.0"
    perimeter.MeasuredValueSequence = [mv]
    perimeter.ContentSequence = [scoord]
    area = _item("CONTAINS", "NUM", ("42798000", "SCT", "Area"))
    mv2 = pydicom.Dataset()
    mv2.MeasurementUnitsCodeSequence = _code("mm2", "UCUM", "mm2")
    mv2.NumericValue = "100.0"
    area.MeasuredValueSequence = [mv2]
    items = [
        _item("HAS OBS CONTEXT", "TEXT", ("112039", "DCM", "Tracking Identifier"), TextValue=OHIF_ID),
        _item(
            "HAS OBS CONTEXT",
            "UIDREF",
            ("112040", "DCM", "Tracking Unique Identifier"),
            UID=pydicom.uid.generate_uid(),
        ),
        perimeter,
        area,
        _item("CONTAINS", "TEXT", ("121106", "DCM", "Comment"), TextValue=label),
    ]
    if text_position is not None:
        pos = _item("CONTAINS", "SCOORD", ("TextPosition", "99CS3D", "Text Annotation Position"))
        pos.GraphicType, pos.GraphicData = "POINT", [float(v) for v in text_position]
        pos.ContentSequence = [_image_ref(plane)]
        items.append(pos)
    group = _item(
        "CONTAINS", "CONTAINER", ("125007", "DCM", "Measurement Group"), ContinuityOfContent="SEPARATE"
    )
    group.ContentSequence = items
    return group


def _ohif_sr(study, groups, path):
    """The document around the groups as dcmjs TID1500MeasurementReport.js builds it:
    language, person observer, procedure reported (99dcmjs), Image Library, Imaging
    Measurements; a Comprehensive 3D SR of the study."""
    src = pydicom.dcmread(study.t1.series.frames[0].path, stop_before_pixels=True)
    ds = pydicom.Dataset()
    for kw in (
        "PatientName",
        "PatientID",
        "PatientBirthDate",
        "PatientSex",
        "StudyInstanceUID",
        "StudyDate",
        "StudyTime",
        "StudyID",
        "AccessionNumber",
        "ReferringPhysicianName",
    ):
        setattr(ds, kw, src.get(kw, ""))
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.88.34"
    ds.SOPInstanceUID = pydicom.uid.generate_uid()
    ds.SeriesInstanceUID = pydicom.uid.generate_uid()
    ds.Modality, ds.SeriesNumber, ds.InstanceNumber = "SR", 4700, 1
    ds.ValueType = "CONTAINER"
    ds.ConceptNameCodeSequence = _code("126000", "DCM", "Imaging Measurement Report")
    ds.ContinuityOfContent, ds.CompletionFlag, ds.VerificationFlag = "SEPARATE", "COMPLETE", "UNVERIFIED"
    tpl = pydicom.Dataset()
    tpl.MappingResource, tpl.TemplateIdentifier = "DCMR", "1500"
    ds.ContentTemplateSequence = [tpl]
    imaging = _item(
        "CONTAINS", "CONTAINER", ("126010", "DCM", "Imaging Measurements"), ContinuityOfContent="SEPARATE"
    )
    imaging.ContentSequence = groups
    library = _item(
        "CONTAINS", "CONTAINER", ("111028", "DCM", "Image Library"), ContinuityOfContent="SEPARATE"
    )
    lib_group = _item(
        "CONTAINS", "CONTAINER", ("126200", "DCM", "Image Library Group"), ContinuityOfContent="SEPARATE"
    )
    lib_group.ContentSequence = []
    library.ContentSequence = [lib_group]
    proc = _item("HAS CONCEPT MOD", "CODE", ("121058", "DCM", "Procedure reported"))
    proc.ConceptCodeSequence = _code("1", "99dcmjs", "Unknown procedure")
    ds.ContentSequence = [
        _item(
            "HAS OBS CONTEXT",
            "PNAME",
            ("121008", "DCM", "Person Observer Name"),
            PersonName="unknown^unknown",
        ),
        proc,
        library,
        imaging,
    ]
    ds.file_meta = pydicom.dataset.FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
    ds.save_as(path, enforce_file_format=True)
    return path


def test_rois_drawn_in_ohif_are_read_and_classified(classified, tmp_path):
    study, annotations, _ = classified
    mine = {str(r.label): r for r in annotations.rois}
    # redraw the L4 inferior endplate and the L4 reference as an OHIF user would, on the
    # same images, labelled in free text; plus a length measurement (an open line)
    ep, ref = mine["L4 inferior"], mine["L4 reference"]
    groups = [
        _ohif_group(ep.image, ep.shape.points, "L4 inferior", text_position=(5.0, 5.0)),
        _ohif_group(ref.image, ref.shape.points, "ref L4"),
        _ohif_group(ep.image, [[10.0, 10.0], [40.0, 30.0]], "a length", closed=False),
    ]
    path = _ohif_sr(study, groups, tmp_path / "ohif.dcm")
    skipped: list[str] = []
    back = msr.read_sr(path, study, skipped=skipped)
    assert [str(r.label) for r in back.rois] == ["L4 inferior", "L4 reference"]
    assert len(skipped) == 1 and "group 3" in skipped[0]
    for roi, original in zip(back.rois, (ep, ref), strict=True):
        assert roi.origin == "imported" and "DICOM SR" in roi.source
        assert roi.image == original.image
        assert np.max(np.abs(roi.shape.points - original.shape.points)) < 1e-3
    results = modic.classify(study, back)
    assert len(results) == 1
    lesion = next(x for x in _truth()["spec"]["lesions"] if x["vertebra"] == "L4")
    assert results[0].modic_type.value == lesion["modic_type"]


def test_a_label_in_a_cornerstone_free_text_finding_site_is_read(classified, tmp_path):
    """Older Cornerstone adapters stored the label as a finding site coded
    (CORNERSTONEFREETEXT, CORNERSTONEJS, "<label>") instead of a Comment (cornerstonejs/
    cornerstone3D packages/adapters/src/adapters/Cornerstone3D/CodingScheme.js; LabelData.ts
    removes it when it writes the Comment)."""
    study, annotations, _ = classified
    roi = next(r for r in annotations.rois if str(r.label) == "L5 superior")
    group = _ohif_group(roi.image, roi.shape.points, "unused")
    group.ContentSequence = [i for i in group.ContentSequence if i.ValueType != "TEXT" or "112039" in str(i)]
    site = _item("CONTAINS", "CODE", ("363698007", "SCT", "Finding Site"))
    # 19 characters in an SH CodeValue (at most 16), as Cornerstone writes it: pydicom warns
    with pytest.warns(UserWarning, match="exceeds the maximum length of 16"):
        site.ConceptCodeSequence = _code("CORNERSTONEFREETEXT", "CORNERSTONEJS", "L5 sup")
        group.ContentSequence.append(site)
        back = msr.read_sr(_ohif_sr(study, [group], tmp_path / "old.dcm"), study)
    assert [r.label for r in back.rois] == [roi.label]


def test_ohif_ellipse_and_circle_rois_are_read(classified, tmp_path):
    """An ELLIPSE has the end points of its major axis, then those of its minor axis (PS3.3
    C.18.6.1.2; Cornerstone3D's EllipticalROI adapter writes one through dcmjs
    src/utilities/TID300/Ellipse.js); CircleROI writes a CIRCLE "ordered as [centerX, centerY,
    endX, endY]" (cornerstonejs/cornerstone3D packages/adapters/src/adapters/Cornerstone3D/
    CircleROI.ts, through dcmjs src/utilities/TID300/Circle.js)."""
    study, annotations, _ = classified
    plane = annotations.rois[0].image
    groups = [
        _ohif_group(
            plane, [[90, 100], [110, 100], [100, 95], [100, 105]], "L3 superior", graphic_type="ELLIPSE"
        ),
        _ohif_group(plane, [[140, 120], [140, 126]], "ref L3", graphic_type="CIRCLE"),
    ]
    back = msr.read_sr(_ohif_sr(study, groups, tmp_path / "ohif.dcm"), study)
    ellipse, circle = (r.shape for r in back.rois)
    assert (ellipse.cx, ellipse.cy, ellipse.rx, ellipse.ry) == (100, 100, 10, 5)
    assert ellipse.angle_deg % 180 == 0
    assert (circle.cx, circle.cy, circle.rx, circle.ry) == (140, 120, 6, 6)
    assert [str(r.label) for r in back.rois] == ["L3 superior", "L3 reference"]


def test_rois_of_a_slicer_planar_annotation_sr_are_read(classified, tmp_path):
    """3D Slicer's QuantitativeReporting reads planar annotations as highdicom TID 1410
    groups with an "Image Region" POLYLINE (QIICR/QuantitativeReporting
    DICOMPlugins/DICOMTID1500Plugin.py, checkIfSRContainsGeometry 'polyline2D'); such an
    SR, as highdicom writes it, with the vertebra as coded finding site and the endplate
    as topographical modifier and a free-text tracking identifier."""
    study, annotations, _ = classified
    roi = next(r for r in annotations.rois if str(r.label) == "L5 superior")
    sop_class = study.t1.series.sop_class_uid
    pts = np.vstack([roi.shape.points, roi.shape.points[:1]]).astype(np.float32)
    region = hd.sr.ImageRegion(
        graphic_type=hd.sr.GraphicTypeValues.POLYLINE,
        graphic_data=pts,
        source_image=hd.sr.SourceImageForRegion(sop_class, roi.image.sop_instance_uid),
    )
    site = hd.sr.FindingSite(
        anatomic_location=hd.sr.CodedConcept("49668003", "SCT", "L5 vertebra"),
        topographical_modifier=hd.sr.CodedConcept("264217000", "SCT", "Superior"),
    )
    group = hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(uid=hd.UID(), identifier="Lesion 1"),
        referenced_region=region,
        finding_type=hd.sr.CodedConcept("263654008", "SCT", "Abnormal"),
        finding_sites=[site],
    )
    evidence = [pydicom.dcmread(f.path, stop_before_pixels=True) for f in study.t1.series.frames]
    observer = hd.sr.ObserverContext(
        observer_type=hd.sr.CodedConcept("121006", "DCM", "Person"),
        observer_identifying_attributes=hd.sr.PersonObserverIdentifyingAttributes(name="Reader^Slicer"),
    )
    report = hd.sr.MeasurementReport(
        observation_context=hd.sr.ObservationContext(observer_person_context=observer),
        procedure_reported=hd.sr.CodedConcept("363679005", "SCT", "Imaging procedure"),
        imaging_measurements=[group],
    )
    sr = hd.sr.Comprehensive3DSR(
        evidence=evidence,
        content=report[0],
        series_instance_uid=hd.UID(),
        series_number=5,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer="3D Slicer",
    )
    path = tmp_path / "slicer.dcm"
    sr.save_as(path, enforce_file_format=True)
    back = msr.read_sr(path, study)
    assert len(back.rois) == 1
    got = back.rois[0]
    assert got.label == RoiLabel.for_endplate("L5", "superior")
    assert got.origin == "imported" and "Lesion 1" in got.source
    assert np.max(np.abs(got.shape.points - roi.shape.points)) < 1e-3


# -- errors ---------------------------------------------------------------------------------


def test_reading_an_image_as_an_sr_names_the_file(classified):
    study = classified[0]
    path = study.t1.series.frames[0].path
    with pytest.raises(DicomFileError, match=str(path.name)):
        msr.read_sr(path, study)


def test_reading_without_the_study_says_why(sr_file):
    with pytest.raises(ValueError, match="needs the study"):
        msr.read_sr(sr_file)


def test_writing_rois_of_another_study_is_refused(classified, tmp_path):
    study, annotations, _ = classified
    other = modic.load_study(modic.data.sample_study_path("ge_3T_type3_mixed12"))
    with pytest.raises(msr.SRExportError, match="not in the study given"):
        msr.write_sr(other, annotations, None, tmp_path / "x.dcm")
    assert not (tmp_path / "x.dcm").exists()


def test_tracking_uid_round_trips_a_uuid_id():
    hex_id = "9f0c" * 8
    uid = msr.tracking_uid(hex_id)
    assert uid == f"2.25.{int(hex_id, 16)}" and len(uid) <= 64
    assert (
        msr.tracking_uid("rect-1", "1.2.3")
        == msr.tracking_uid("rect-1", "1.2.3")
        != msr.tracking_uid("x", "1.2.3")
    )


# -- the command line -----------------------------------------------------------------------


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "modic", *args], capture_output=True, text=True, timeout=300)


def test_cli_export_writes_valid_sr_and_seg(tmp_path, classified):
    study, annotations, _ = classified
    out = tmp_path / "out"
    r = run("export", str(modic.data.sample_study_path(NAME)), "-o", str(out), "--sr", "--seg")
    assert r.returncode == 0, r.stderr
    files = sorted(out.iterdir())
    assert [p.name.split("-", 1)[1] for p in files] == ["seg.dcm", "sr.dcm"]
    assert [str(p) for p in files] == sorted(r.stdout.split())
    for p in files:
        assert dciodvfy_errors(p) == []
    sr_path = next(p for p in files if p.name.endswith("-sr.dcm"))
    assert msr.read_sr(sr_path, study) == annotations
    # a second run does not replace what exists
    again = run("export", str(modic.data.sample_study_path(NAME)), "-o", str(out), "--sr")
    assert again.returncode == 2 and "--force" in again.stderr


def test_cli_export_usage_errors(tmp_path):
    study_dir = modic.data.sample_study_path(NAME)
    r = run("export", str(study_dir), "-o", str(tmp_path))
    assert r.returncode == 2 and "--sr" in r.stderr
    copy = tmp_path / "case"
    shutil.copytree(study_dir, copy)
    r = run("export", str(copy), "-o", str(copy / "out"), "--sr")
    assert r.returncode == 2 and "never writes into input" in r.stderr
    assert not (copy / "out").exists()


def test_cli_import_writes_annotations_to_classify(tmp_path, sr_file, classified):
    _, annotations, _ = classified
    target = tmp_path / "imported.modic.json"
    r = run("import", str(sr_file), str(modic.data.sample_study_path(NAME)), "-o", str(target))
    assert r.returncode == 0, r.stderr
    assert modic.read_annotations(target) == annotations
    again = run("import", str(sr_file), str(modic.data.sample_study_path(NAME)), "-o", str(target))
    assert again.returncode == 2 and "exists" in again.stderr


def test_cli_batch_exports_into_the_output_folder(tmp_path):
    root = tmp_path / "in"
    root.mkdir()
    shutil.copytree(modic.data.sample_study_path(NAME), root / NAME)
    shutil.copy(modic.data.sample_annotations_path(NAME), root / f"{NAME}.modic.json")
    before = sorted(p.relative_to(root) for p in root.rglob("*"))
    out = tmp_path / "out"
    r = run("batch", str(root), "-o", str(out), "--workers", "1", "--export", "sr,seg")
    assert r.returncode == 0, r.stderr
    assert sorted(p.relative_to(root) for p in root.rglob("*")) == before  # nothing written into the input
    studies = sorted((out / "dicom").iterdir())
    assert len(studies) == 1
    assert sorted(p.name for p in studies[0].iterdir()) == ["seg.dcm", "sr.dcm"]
    for p in studies[0].iterdir():
        assert dciodvfy_errors(p) == []
    rows = (out / "errors.csv").read_text().splitlines()
    assert rows == ["study,annotation_file,stage,message"]
    bad = run("batch", str(root), "-o", str(out), "--export", "rtstruct")
    assert bad.returncode == 2 and "sr,seg" in bad.stderr
