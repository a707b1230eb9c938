"""DICOM SEG of the ROIs: validated by dciodvfy (dicom3tools), and read back with pydicom
(frame by frame, from the functional groups, not with modic's or highdicom's reader) and
highdicom: one segment per ROI, its frame equal to :meth:`ROI.pixel_mask` on the image
the ROI was drawn on, the source series referenced."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
from test_sr import SCT_VERTEBRA, dciodvfy_errors

import modic
from modic.annotations import ROI, Annotations, ImagePlane, Rectangle, RoiLabel

hd = pytest.importorskip("highdicom")
from modic import seg as mseg  # noqa: E402
from modic import sr as msr  # noqa: E402


def _load(name):
    study = modic.load_study(modic.data.sample_study_path(name))
    annotations = modic.read_annotations(modic.data.sample_annotations_path(name))
    return study, annotations


def _frames_by_segment(ds):
    """{segment number: [(source SOP instance UID, source frame number, frame pixels)]}."""
    pixels = ds.pixel_array
    if pixels.ndim == 2:
        pixels = pixels[None]
    out: dict[int, list[tuple[str, int, np.ndarray]]] = {}
    shared = ds.SharedFunctionalGroupsSequence[0]
    for i, fg in enumerate(ds.PerFrameFunctionalGroupsSequence):
        ident = fg if "SegmentIdentificationSequence" in fg else shared  # one segment: shared
        n = int(ident.SegmentIdentificationSequence[0].ReferencedSegmentNumber)
        src = fg.DerivationImageSequence[0].SourceImageSequence[0]
        frame = int(src.get("ReferencedFrameNumber", 1) or 1)
        out.setdefault(n, []).append((src.ReferencedSOPInstanceUID, frame, pixels[i].astype(bool)))
    return out


@pytest.mark.parametrize("name", ["siemens_15T_type1_type2", "philips_15T_mixed23_enhanced"])
def test_seg_segments_match_the_roi_masks(name, tmp_path):
    study, annotations = _load(name)
    paths = mseg.write_seg(study, annotations, tmp_path / "rois.dcm")
    assert paths == [tmp_path / "rois.dcm"]  # every ROI is on the T1
    assert dciodvfy_errors(paths[0]) == []
    ds = pydicom.dcmread(paths[0])
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.66.4"
    assert ds.SegmentationType == "BINARY"
    assert ds.ReferencedSeriesSequence[0].SeriesInstanceUID == annotations.rois[0].image.series_instance_uid
    assert ds.PatientID == pydicom.dcmread(study.t1.series.frames[0].path, stop_before_pixels=True).PatientID
    assert len(ds.SegmentSequence) == len(annotations.rois)
    frames = _frames_by_segment(ds)
    for n, roi in enumerate(annotations.rois, start=1):
        segment = ds.SegmentSequence[n - 1]
        assert int(segment.SegmentNumber) == n
        assert segment.SegmentLabel == str(roi.label)
        assert segment.TrackingUID == msr.tracking_uid(roi.id)  # the same as in the SR
        region = segment.AnatomicRegionSequence[0]
        assert region.CodeValue == SCT_VERTEBRA[roi.label.vertebra]
        assert len(frames[n]) == 1  # the ROI's own image only
        sop, frame, mask = frames[n][0]
        assert (sop, frame) == (roi.image.sop_instance_uid, roi.image.frame_number)
        assert np.array_equal(mask, roi.pixel_mask())


def test_highdicom_reads_the_seg(tmp_path):
    study, annotations = _load("siemens_15T_type1_type2")
    path = mseg.write_seg(study, annotations, tmp_path / "rois.dcm")[0]
    seg = hd.seg.segread(path)
    roi = annotations.rois[3]
    pixels = seg.get_pixels_by_source_instance(
        source_sop_instance_uids=[roi.image.sop_instance_uid], segment_numbers=[4]
    )
    assert np.array_equal(pixels[0, :, :, 0].astype(bool), roi.pixel_mask())
    assert seg.get_segment_numbers(tracking_uid=msr.tracking_uid(roi.id)) == [4]


def test_rois_on_two_series_give_two_segs(tmp_path):
    study, annotations = _load("siemens_15T_type1_type2")
    t2 = study.t2.series
    plane = ImagePlane.from_series(t2, len(t2.frames) // 2)
    on_t2 = ROI(RoiLabel.parse("L4 inferior"), Rectangle(100.0, 100.0, 120.0, 110.0), plane)
    both = Annotations([*annotations.rois[:2], on_t2], study_instance_uid=annotations.study_instance_uid)
    paths = mseg.write_seg(study, both, tmp_path / "rois.dcm")
    assert len(paths) == 2 and all(p.parent == tmp_path for p in paths)
    series = {}
    for p in paths:
        assert dciodvfy_errors(p) == []
        ds = pydicom.dcmread(p)
        series[ds.ReferencedSeriesSequence[0].SeriesInstanceUID] = len(ds.SegmentSequence)
    assert series == {annotations.rois[0].image.series_instance_uid: 2, t2.series_uid: 1}
    ds = pydicom.dcmread(next(p for p in paths if str(t2.number) in p.name))
    ((_, _, mask),) = _frames_by_segment(ds)[1]
    assert np.array_equal(mask, on_t2.pixel_mask())
    assert mask.sum() == 20 * 10


def test_seg_of_rois_of_another_study_is_refused(tmp_path):
    _, annotations = _load("siemens_15T_type1_type2")
    other = modic.load_study(modic.data.sample_study_path("ge_3T_type3_mixed12"))
    with pytest.raises(msr.SRExportError, match="not in the study given"):
        mseg.write_seg(other, annotations, tmp_path / "x.dcm")
    assert list(tmp_path.iterdir()) == []
