"""modic.labelmap: ROIs derived from vertebra label maps written from the phantom's own truth
(tests/labelmaps.py) in each tool's convention and file format, checked against that truth."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from labelmaps import (
    Grid,
    TruthLabels,
    encode,
    in_body,
    ras_grid,
    spineps_semantic,
    truth_labels,
    volume_points,
    write_nifti,
    write_nrrd,
    write_seg,
    write_slicer_seg_nrrd,
)

import modic
from modic.annotations import (
    ROI,
    Annotations,
    ImagePlane,
    Rectangle,
    RoiLabel,
    read_annotations,
    rowcol_to_xy,
)
from modic.bands import BandSettings
from modic.labelmap import LabelMapError, merge_derived, read_labelmap, rois_from_labelmap
from modic.phantom import GroundTruth
from modic.phantom.truth import anatomy_of
from modic.study import LoadedStudy, load_study

pytest.importorskip("nibabel")
pytest.importorskip("nrrd")

SIEMENS = "siemens_15T_type1_type2"  # L4 inferior type 1, L5 superior type 2
GE = "ge_3T_type3_mixed12"  # L3 inferior type 3, S1 superior type 1/2
PHILIPS = "philips_15T_mixed23_enhanced"  # L4 inferior type 2/3; an enhanced multi-frame T1
# the label maps start at T12 (the sample studies' T1 cuts T11)
LUMBAR = ("T12", "L1", "L2", "L3", "L4", "L5")


class Case:
    def __init__(
        self, name: str, folder: Path, spacing: tuple[float, float, float] = (3.0, 1.0, 1.0)
    ) -> None:
        self.name = name
        self.truth = GroundTruth.from_json(modic.data.sample_truth_path(name))
        self.study: LoadedStudy = load_study(modic.data.sample_study_path(name))
        self.grid: Grid = ras_grid(self.truth, spacing)
        self.labels: TruthLabels = truth_labels(self.truth, self.grid.points(), self.grid.shape)
        self.folder = folder


@pytest.fixture(scope="module")
def siemens(tmp_path_factory: pytest.TempPathFactory) -> Case:
    return Case(SIEMENS, tmp_path_factory.mktemp("siemens"))


@pytest.fixture(scope="module")
def ge(tmp_path_factory: pytest.TempPathFactory) -> Case:
    # 1.5 mm in-plane, as TotalSegmentator resamples (its vertebrae_mr model works at 1.5 mm)
    return Case(GE, tmp_path_factory.mktemp("ge"), (3.0, 1.5, 1.5))


def pixel_points(roi: ROI) -> np.ndarray:
    """(N, 3) LPS centres of the ROI's pixels on its image."""
    rr, cc = np.nonzero(roi.pixel_mask())
    return roi.image.pixel_to_patient(rowcol_to_xy(np.stack([rr, cc], axis=1)))


def one(ann: Annotations, label: str) -> ROI:
    hits = [r for r in ann if str(r.label) == label]
    assert len(hits) == 1, f"{label}: {len(hits)} ROIs"
    return hits[0]


def check_against_truth(
    case: Case, ann: Annotations, vertebrae: tuple[str, ...], *, s1: bool, midline_tolerance: float = 0.6
) -> None:
    """The bands lie inset..inset+height under the true endplates (within a T1 pixel), the
    reference inside the body away from both endplates, the body over the true body."""
    anat = anatomy_of(case.truth)
    s = BandSettings()
    px = max(case.study.t1.geometry.pixel_spacing)
    spacing = case.study.t1.geometry.slice_spacing
    for name in vertebrae:
        v = anat.vertebra(name)
        for endplate in ("superior", "inferior"):
            roi = one(ann, f"{name} {endplate}")
            assert roi.origin == "derived" and roi.source
            q = v.to_local(pixel_points(roi))
            superior = endplate == "superior"
            surface = v.z_surface(q[:, 0], q[:, 1], superior)
            depth = (surface - q[:, 2]) if superior else (q[:, 2] - surface)
            assert depth.min() >= s.inset_mm - px and depth.min() <= s.inset_mm + px, (name, endplate)
            assert depth.max() <= s.inset_mm + s.height_mm + px, (name, endplate)
            assert in_body(v, q, inset=-1.0).all(), (name, endplate)
            # on the midline slice of the body
            assert abs(float(roi.image.distance_to_plane(v.center)[0])) <= midline_tolerance * spacing
        ref = one(ann, f"{name} reference")
        q = v.to_local(pixel_points(ref))
        assert in_body(v, q, inset=1.0).all()
        d_sup = v.z_surface(q[:, 0], q[:, 1], True) - q[:, 2]
        d_inf = q[:, 2] - v.z_surface(q[:, 0], q[:, 1], False)
        assert min(d_sup.min(), d_inf.min()) >= s.inset_mm + s.height_mm - px  # clear of the bands
        body = one(ann, f"{name} body")
        mask = body.pixel_mask()
        rr, cc = np.mgrid[0 : mask.shape[0], 0 : mask.shape[1]]
        pts = body.image.pixel_to_patient(rowcol_to_xy(np.stack([rr.ravel(), cc.ravel()], axis=1)))
        truly = in_body(v, v.to_local(pts)).reshape(mask.shape)
        assert (mask & truly).sum() >= 0.9 * truly.sum()
        assert (mask & ~truly).sum() <= 0.07 * mask.sum()
    if s1:
        v = anat.vertebra("S1")
        roi = one(ann, "S1 superior")
        q = v.to_local(pixel_points(roi))
        depth = v.z_surface(q[:, 0], q[:, 1], True) - q[:, 2]
        assert depth.min() >= s.inset_mm - px and depth.min() <= s.inset_mm + px
        assert depth.max() <= s.inset_mm + s.height_mm + px
        assert not [r for r in ann if str(r.label) in ("S1 body", "S1 reference")]


# ----------------------------------------------------------------------------------------
# each tool's convention and file format
# ----------------------------------------------------------------------------------------
def test_totalspineseg_nifti_ras(siemens: Case) -> None:
    path = write_nifti(
        siemens.folder / "tss_step2_output.nii.gz", encode(siemens.labels, "totalspineseg"), siemens.grid
    )
    ann = rois_from_labelmap(siemens.study, path, convention="totalspineseg")
    check_against_truth(siemens, ann, LUMBAR, s1=True)
    assert one(ann, "L4 inferior").source == "TotalSpineSeg tss_step2_output.nii.gz label 44"
    assert ann.study_instance_uid == siemens.truth.study_instance_uid
    labels = {str(r.label) for r in ann}
    assert {f"{v} {k}" for v in LUMBAR for k in ("superior", "inferior", "reference", "body")} | {
        "S1 superior"
    } == labels


def test_vertebrae_mr_nifti(siemens: Case) -> None:
    path = write_nifti(
        siemens.folder / "vertebrae_mr.nii.gz", encode(siemens.labels, "vertebrae_mr"), siemens.grid
    )
    ann = rois_from_labelmap(siemens.study, path, convention="vertebrae_mr")
    check_against_truth(siemens, ann, LUMBAR, s1=True)
    assert one(ann, "L4 body").source.startswith("TotalSegmentator vertebrae_mr vertebrae_mr.nii.gz label 3")


def test_total_mr_bodies_named_up_from_the_sacrum(siemens: Case) -> None:
    path = write_nifti(siemens.folder / "total_mr.nii.gz", encode(siemens.labels, "total_mr"), siemens.grid)
    ann = rois_from_labelmap(siemens.study, path, convention="totalsegmentator-total_mr")
    check_against_truth(siemens, ann, ("L1", "L2", "L3", "L4", "L5"), s1=True)


def test_spineps_instance_and_semantic_nrrd_ras(siemens: Case) -> None:
    inst = write_nrrd(
        siemens.folder / "seg-vert.nrrd",
        encode(siemens.labels, "spineps"),
        siemens.grid,
        "right-anterior-superior",
    )
    sem = write_nrrd(
        siemens.folder / "seg-spine.nrrd",
        spineps_semantic(siemens.labels),
        siemens.grid,
        "right-anterior-superior",
    )
    ann = rois_from_labelmap(siemens.study, inst, convention="spineps", semantic=sem)
    check_against_truth(siemens, ann, LUMBAR, s1=True)
    assert "body from seg-spine.nrrd" in one(ann, "L3 superior").source
    # the instance mask alone: bodies separated from the arch geometrically
    ann = rois_from_labelmap(siemens.study, inst, convention="spineps")
    check_against_truth(siemens, ann, LUMBAR, s1=True)


def test_totalspineseg_nrrd_lps_with_flipped_axes(siemens: Case) -> None:
    # the same voxels stored with the first two axes reversed, in LPS space
    data = encode(siemens.labels, "totalspineseg").reshape(siemens.grid.shape)[::-1, ::-1, :]
    a = siemens.grid.affine_lps.copy()
    n = siemens.grid.shape
    a[:3, 3] = a[:3, 3] + a[:3, 0] * (n[0] - 1) + a[:3, 1] * (n[1] - 1)
    a[:3, 0], a[:3, 1] = -a[:3, 0], -a[:3, 1]
    path = write_nrrd(
        siemens.folder / "tss_lps.nrrd",
        np.ascontiguousarray(data).ravel(),
        Grid(a, n),
        "left-posterior-superior",
    )
    ann = rois_from_labelmap(siemens.study, path, convention="totalspineseg")
    check_against_truth(siemens, ann, LUMBAR, s1=True)


def test_slicer_seg_nrrd_by_segment_names(siemens: Case) -> None:
    # numbers of no tool (a person's own segmentation in 3D Slicer), named per segment
    own = {"T12": 7, "L1": 11, "L2": 12, "L3": 13, "L4": 14, "L5": 15, "sacrum": 20}
    data = np.zeros(siemens.labels.whole.shape, dtype=np.int64)
    for k, name in enumerate(siemens.labels.names, start=1):
        data[siemens.labels.whole == k] = own["sacrum" if name.startswith("S") else name]
    names = {v: ("Sacrum" if k == "sacrum" else f"{k} vertebra") for k, v in own.items()}
    path = write_slicer_seg_nrrd(siemens.folder / "Segmentation.seg.nrrd", data, siemens.grid, names)
    vol = read_labelmap(path)
    assert vol.names[14] == "L4 vertebra" and vol.array.ndim == 3
    ann = rois_from_labelmap(siemens.study, path)
    check_against_truth(siemens, ann, LUMBAR, s1=True)
    assert one(ann, "L4 body").source == "3D Slicer segmentation Segmentation.seg.nrrd label 14"


def test_body_only_labels(siemens: Case) -> None:
    path = write_nifti(
        siemens.folder / "bodies.nii.gz",
        encode(siemens.labels, "totalspineseg", body_only=True),
        siemens.grid,
    )
    ann = rois_from_labelmap(siemens.study, path, convention="totalspineseg", vertebrae=["L3", "L4"])
    check_against_truth(siemens, ann, ("L3", "L4"), s1=False)
    assert {r.label.vertebra for r in ann} == {"L3", "L4"}


@pytest.fixture(scope="module")
def t2_truth(siemens: Case) -> TruthLabels:
    t2 = siemens.study.t2
    assert t2 is not None
    return truth_labels(siemens.truth, volume_points(t2.geometry), t2.geometry.shape)


@pytest.fixture(scope="module")
def seg_on_t2(siemens: Case, t2_truth: TruthLabels) -> Path:
    pytest.importorskip("highdicom")
    assert siemens.study.t2 is not None
    return write_seg(siemens.folder / "seg.dcm", siemens.study.t2, t2_truth, "vertebrae_{name}")


def test_label_map_seg_reads_as_the_binary_one(siemens: Case, t2_truth: TruthLabels, seg_on_t2: Path) -> None:
    # Label Map Segmentation Storage (one frame per plane, pixel values = segment numbers)
    assert siemens.study.t2 is not None
    path = write_seg(siemens.folder / "labelmap_seg.dcm", siemens.study.t2, t2_truth, "{name}", "LABELMAP")
    a, b = read_labelmap(seg_on_t2), read_labelmap(path)
    assert np.array_equal(a.array, b.array)
    assert b.names[4] == "L4"
    x = rois_from_labelmap(siemens.study, seg_on_t2)
    y = rois_from_labelmap(siemens.study, path)
    assert [str(r.label) for r in x] == [str(r.label) for r in y]
    assert all(np.array_equal(p.pixel_mask(), q.pixel_mask()) for p, q in zip(x, y, strict=True))


def test_dicom_seg_on_the_t2_grid_by_segment_names(siemens: Case, seg_on_t2: Path) -> None:
    vol = read_labelmap(seg_on_t2)
    assert vol.kind == "dicom-seg" and vol.names[4] == "vertebrae_L4"
    assert vol.frame_of_reference_uid == siemens.truth.frame_of_reference_uid
    ann = rois_from_labelmap(siemens.study, seg_on_t2)
    # the SEG's planes are the T2's, 4.4 mm apart: the midline may fall one T1 slice off
    check_against_truth(siemens, ann, ("L1", "L2", "L3", "L4", "L5"), s1=True, midline_tolerance=1.1)
    assert one(ann, "L4 reference").source == "DICOM SEG seg.dcm label 4"


def test_ras_and_lps_name_the_same_place(siemens: Case) -> None:
    # the same voxels as a NIfTI (RAS affine) and as an NRRD in LPS space: the same ROIs
    data = encode(siemens.labels, "totalspineseg")
    a = rois_from_labelmap(
        siemens.study,
        write_nifti(siemens.folder / "same.nii.gz", data, siemens.grid),
        convention="totalspineseg",
    )
    b = rois_from_labelmap(
        siemens.study,
        write_nrrd(siemens.folder / "same.nrrd", data, siemens.grid, "left-posterior-superior"),
        convention="totalspineseg",
    )
    assert [str(r.label) for r in a] == [str(r.label) for r in b]
    for x, y in zip(a, b, strict=True):
        assert x.image == y.image and np.array_equal(x.pixel_mask(), y.pixel_mask())
    # an LPS affine stored in a NIfTI as if it were RAS puts the labels mirrored in x and y:
    # whatever is derived then misses the true L4 body
    import nibabel as nib

    img = nib.Nifti1Image(data.reshape(siemens.grid.shape).astype(np.uint8), siemens.grid.affine_lps)
    path = siemens.folder / "lps_as_ras.nii.gz"
    nib.save(img, str(path))
    vol = read_labelmap(path)
    assert vol.affine is not None and np.allclose(vol.affine[:2, :], -siemens.grid.affine_lps[:2, :])
    try:
        wrong = rois_from_labelmap(siemens.study, path, convention="totalspineseg")
    except LabelMapError as e:
        assert "lps_as_ras.nii.gz" in str(e)
        return
    centre = anatomy_of(siemens.truth).vertebra("L4").center
    right = pixel_points(one(a, "L4 body")).mean(axis=0)
    assert np.linalg.norm(right - centre) < 3.0
    for roi in wrong.find("L4", kind="body"):
        assert np.linalg.norm(pixel_points(roi).mean(axis=0) - centre) > 10.0


# ----------------------------------------------------------------------------------------
# classifying with derived ROIs
# ----------------------------------------------------------------------------------------
def derived_types(case: Case, **kw: object) -> dict[tuple[str, str], str]:
    path = write_nifti(case.folder / "vm.nii.gz", encode(case.labels, "vertebrae_mr"), case.grid)
    ann = rois_from_labelmap(case.study, path, convention="vertebrae_mr", **kw)  # type: ignore[arg-type]
    return {
        (r.label.vertebra, r.label.endplate.value): r.to_record()["modic_type"]  # type: ignore[union-attr]
        for r in modic.classify(case.study, ann)
    }


@pytest.fixture(scope="module")
def philips(tmp_path_factory: pytest.TempPathFactory) -> Case:
    return Case(PHILIPS, tmp_path_factory.mktemp("philips"), (3.0, 1.5, 1.5))


@pytest.mark.parametrize("name", [SIEMENS, PHILIPS])
def test_classify_with_derived_rois_gives_the_true_types(name: str, request: pytest.FixtureRequest) -> None:
    case: Case = request.getfixturevalue("siemens" if name == SIEMENS else "philips")
    types = derived_types(case)
    changes = [e for e in case.truth.endplates if e.modic_type != "0"]
    assert changes
    for e in changes:
        assert types[(e.vertebra, e.endplate)] == f"type {e.modic_type}", (e.vertebra, e.endplate)
    normal = [(e.vertebra, e.endplate) for e in case.truth.endplates if e.modic_type == "0"]
    normal = [k for k in normal if k in types]
    assert len(normal) >= 10 and all(types[k] == "type 0" for k in normal)


def test_classify_with_derived_rois_finds_the_mixed_s1_change(ge: Case) -> None:
    # S1 superior is a layered 1/2 change: its type 1 layer lies against the endplate, so the
    # default 1-6 mm band reads type 1; a taller band reaches the type 2 layer. (L3 inferior, a
    # type 3 sclerosis 4 mm deep, is not typed from a band: docs/labelmaps.md, Limitations.)
    assert ge.truth.endplate("S1", "superior").modic_type == "1/2"
    types = derived_types(ge)
    assert types[("S1", "superior")] in ("type 1", "type 1/2")
    normal = [(e.vertebra, e.endplate) for e in ge.truth.endplates if e.modic_type == "0"]
    normal = [k for k in normal if k in types]
    assert len(normal) >= 10 and all(types[k] == "type 0" for k in normal)
    assert derived_types(ge, settings=BandSettings(height_mm=8.0))[("S1", "superior")] == "type 1/2"


# ----------------------------------------------------------------------------------------
# merging into an annotation file
# ----------------------------------------------------------------------------------------
def test_merge_keeps_drawn_rois(siemens: Case) -> None:
    path = write_nifti(siemens.folder / "m.nii.gz", encode(siemens.labels, "totalspineseg"), siemens.grid)
    derived = rois_from_labelmap(siemens.study, path, convention="totalspineseg")
    plane = ImagePlane.from_series(siemens.study.t1.series, 6)
    drawn = ROI(RoiLabel.for_endplate("L4", "inferior"), Rectangle(100, 100, 110, 104), plane, author="me")
    existing = Annotations([drawn], study_instance_uid=siemens.truth.study_instance_uid)
    merged, report = merge_derived(existing, derived)
    assert len(existing) == 1  # not modified
    l4i = [r for r in merged if str(r.label) == "L4 inferior"]
    assert l4i == [drawn] and l4i[0].origin == "drawn"
    assert report.kept_drawn == ["L4 inferior"]
    assert len(merged) == len(derived)  # every other derived ROI added
    # a second derivation keeps the earlier derived ROIs unless asked to replace them
    again = rois_from_labelmap(
        siemens.study, path, convention="totalspineseg", settings=BandSettings(height_mm=3.0)
    )
    kept, report = merge_derived(merged, again)
    assert [r.id for r in kept] == [r.id for r in merged] and not report.added
    replaced, report = merge_derived(merged, again, replace_derived=True)
    assert "L4 inferior" not in report.replaced and len(report.replaced) == len(derived) - 1
    assert one(replaced, "L4 inferior") is drawn
    assert one(replaced, "L4 superior").pixel_mask().sum() < one(merged, "L4 superior").pixel_mask().sum()
    # an ROI derived and then edited by hand counts as drawn
    edited = one(replaced, "L3 superior")
    edited.touch(by_hand=True)
    _, report = merge_derived(replaced, derived, replace_derived=True)
    assert "L3 superior" in report.kept_drawn


def test_derived_rois_round_trip_through_the_file(siemens: Case, tmp_path: Path) -> None:
    path = write_nifti(siemens.folder / "rt.nii.gz", encode(siemens.labels, "totalspineseg"), siemens.grid)
    ann = rois_from_labelmap(siemens.study, path, convention="totalspineseg", vertebrae=["L4"])
    out = modic.write_annotations(ann, tmp_path / "x.modic.json")
    back = read_annotations(out)
    assert [(str(r.label), r.origin, r.source) for r in back] == [
        (str(r.label), r.origin, r.source) for r in ann
    ]
    for a, b in zip(ann, back, strict=True):
        assert np.array_equal(a.pixel_mask(), b.pixel_mask())


# ----------------------------------------------------------------------------------------
# bad input: clear errors naming the file
# ----------------------------------------------------------------------------------------
def test_unknown_and_missing_convention(siemens: Case) -> None:
    path = write_nifti(siemens.folder / "u.nii.gz", encode(siemens.labels, "totalspineseg"), siemens.grid)
    with pytest.raises(LabelMapError, match=r"u\.nii\.gz: unknown label convention 'nnunet'.*totalspineseg"):
        rois_from_labelmap(siemens.study, path, convention="nnunet")
    with pytest.raises(LabelMapError, match=r"u\.nii\.gz: say which tool made it"):
        rois_from_labelmap(siemens.study, path)
    # TotalSpineSeg's numbers read as SPINEPS's: no vertebra of that convention
    with pytest.raises(LabelMapError, match=r"u\.nii\.gz: holds no vertebra label of the SPINEPS convention"):
        rois_from_labelmap(siemens.study, path, convention="spineps")


def test_empty_and_4d_label_maps(siemens: Case) -> None:
    import nibabel as nib

    empty = write_nifti(
        siemens.folder / "empty.nii.gz",
        np.zeros(int(np.prod(siemens.grid.shape)), dtype=np.int64),
        siemens.grid,
    )
    with pytest.raises(LabelMapError, match=r"empty\.nii\.gz: holds no vertebra label.*every voxel is 0"):
        rois_from_labelmap(siemens.study, empty, convention="totalspineseg")
    ras = np.diag([-1.0, -1.0, 1.0, 1.0]) @ siemens.grid.affine_lps
    four = siemens.folder / "four.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((*siemens.grid.shape, 2), dtype=np.uint8), ras), str(four))
    with pytest.raises(LabelMapError, match=r"four\.nii\.gz: is 4-D"):
        rois_from_labelmap(siemens.study, four, convention="totalspineseg")
    floats = siemens.folder / "floats.nii.gz"
    nib.save(nib.Nifti1Image(np.full(siemens.grid.shape, 0.5, dtype=np.float32), ras), str(floats))
    with pytest.raises(LabelMapError, match=r"floats\.nii\.gz: holds non-integer values"):
        read_labelmap(floats)
    junk = siemens.folder / "junk.bin"
    junk.write_bytes(b"not a label map")
    with pytest.raises(LabelMapError, match=r"junk\.bin: is neither NIfTI"):
        read_labelmap(junk)
    with pytest.raises(FileNotFoundError, match="nowhere.nii.gz"):
        read_labelmap(siemens.folder / "nowhere.nii.gz")


def test_label_map_not_overlapping_the_study(siemens: Case) -> None:
    a = siemens.grid.affine_lps.copy()
    a[2, 3] += 600.0  # 60 cm towards the head
    path = write_nifti(
        siemens.folder / "far.nii.gz", encode(siemens.labels, "totalspineseg"), Grid(a, siemens.grid.shape)
    )
    with pytest.raises(LabelMapError, match=r"far\.nii\.gz: does not overlap the study's T1.*covers LPS"):
        rois_from_labelmap(siemens.study, path, convention="totalspineseg")


def test_seg_in_another_frame_of_reference(siemens: Case, seg_on_t2: Path) -> None:
    from pydicom import dcmread

    ds = dcmread(seg_on_t2)
    ds.FrameOfReferenceUID = "1.2.3.4.5.6.7"
    other = siemens.folder / "other_for.dcm"
    ds.save_as(other)
    with pytest.raises(LabelMapError, match=r"other_for\.dcm: is in frame of reference 1\.2\.3\.4\.5\.6\.7"):
        rois_from_labelmap(siemens.study, other)


# ----------------------------------------------------------------------------------------
# the command line
# ----------------------------------------------------------------------------------------
def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "modic", *args], capture_output=True, text=True, timeout=180)


def test_cli_classify_with_labels(siemens: Case, tmp_path: Path) -> None:
    study = tmp_path / "case"
    shutil.copytree(modic.data.sample_study_path(SIEMENS), study)  # no annotation file beside it
    labels = write_nifti(tmp_path / "seg.nii.gz", encode(siemens.labels, "totalspineseg"), siemens.grid)
    out = tmp_path / "derived.modic.json"
    p = run(
        "classify",
        str(study),
        "--labels",
        str(labels),
        "--labels-convention",
        "totalspineseg",
        "--save-annotations",
        str(out),
        "--json",
    )
    assert p.returncode == 0, p.stderr
    import json

    rows = {(r["vertebra"], r["endplate"]): r["modic_type"] for r in json.loads(p.stdout)}
    assert rows[("L4", "inferior")] == "type 1" and rows[("L5", "superior")] == "type 2"
    saved = read_annotations(out)
    assert {r.origin for r in saved} == {"derived"} and len(saved.bodies()) == len(LUMBAR)
    assert not (study.parent / "case.modic.json").exists()
    # never into the DICOM folder
    p = run(
        "classify",
        str(study),
        "--labels",
        str(labels),
        "--labels-convention",
        "totalspineseg",
        "--save-annotations",
        str(study / "x.modic.json"),
    )
    assert p.returncode == 1 and "never writes into a DICOM folder" in p.stderr
    assert not (study / "x.modic.json").exists()
    # an unknown convention is a usage error naming the choices
    p = run("classify", str(study), "--labels", str(labels), "--labels-convention", "nnunet")
    assert p.returncode == 2 and "totalspineseg" in p.stderr
    # the wrong convention: one clear line naming the file
    p = run("classify", str(study), "--labels", str(labels), "--labels-convention", "spineps")
    assert p.returncode == 1 and "seg.nii.gz: holds no vertebra label of the SPINEPS convention" in p.stderr
    assert "Traceback" not in p.stderr


def test_cli_annotate_with_labels_keeps_drawn_rois(siemens: Case, tmp_path: Path) -> None:
    study = tmp_path / "case"
    shutil.copytree(modic.data.sample_study_path(SIEMENS), study)
    drawn_file = tmp_path / "case.modic.json"
    shutil.copy(modic.data.sample_annotations_path(SIEMENS), drawn_file)
    before = read_annotations(drawn_file)
    labels = write_nifti(tmp_path / "seg.nii.gz", encode(siemens.labels, "totalspineseg"), siemens.grid)
    shot = tmp_path / "shot.png"
    p = run(
        "annotate",
        str(study),
        "--labels",
        str(labels),
        "--labels-convention",
        "totalspineseg",
        "--screenshot",
        str(shot),
    )
    assert p.returncode == 0, p.stderr
    assert shot.stat().st_size > 10_000
    assert read_annotations(drawn_file).to_dict() == before.to_dict()  # a screenshot writes nothing
    # without a display no window opens, and nothing is written either
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "modic",
            "annotate",
            str(study),
            "--labels",
            str(labels),
            "--labels-convention",
            "totalspineseg",
        ],
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
    )
    assert p.returncode == 2 and "no display" in p.stderr
    assert read_annotations(drawn_file).to_dict() == before.to_dict()
