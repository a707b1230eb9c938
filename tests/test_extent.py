"""Extent of Modic changes (modic.extent) and the FDA-clearance criterion on real phantom DICOM.

One phantom study (written as DICOM, read back with modic.load_study) holds changes of
known extent: a tall type 1 at L4 inferior (60 % of the body height: Udby grade C), a thin
type 2 at L1 inferior (15 %: grade A) and a type 2 at S1 superior (38 %: grade B). The
ROIs are 5 mm bands along the endplate, as readers draw them, so the change reaches
further into the body than the ROI.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from modic.annotations import ROI, Annotations, Mask, RoiLabel, write_annotations
from modic.batch import run_batch
from modic.contrast import measure_contrast
from modic.extent import Extent, height_grade, length_grade, measure_extent
from modic.phantom import GroundTruth, LesionSpec, default_study_spec, small_series, tissue_at, write_study
from modic.phantom.reader import ReaderStyle, reader_annotations
from modic.reading import ReferenceModel, classify, prepare_region
from modic.results import ModicResults
from modic.study import LoadedStudy, load_study

LESIONS = {
    ("L4", "inferior"): ("1", 0.60, "C"),
    ("L1", "inferior"): ("2", 0.15, "A"),
    ("S1", "superior"): ("2", 0.38, "B"),
}


class Case:
    def __init__(self, root: Path, truth: GroundTruth, study: LoadedStudy, rois: Annotations) -> None:
        self.root, self.truth, self.study, self.rois = root, truth, study, rois
        self.results = classify(study, rois)

    def result(self, vertebra: str, endplate: str):  # noqa: ANN201
        return next(r for r in self.results if str(r.label) == f"{vertebra} {endplate}")

    def roi(self, vertebra: str, endplate: str) -> ROI:
        return next(r for r in self.rois if str(r.label) == f"{vertebra} {endplate}")


@pytest.fixture(scope="module")
def case(tmp_path_factory: pytest.TempPathFactory) -> Case:
    root = tmp_path_factory.mktemp("extent") / "study"
    spec = default_study_spec(
        7,
        series=small_series(),
        lesions=[
            LesionSpec("L4", "inferior", "1", height_fraction=0.60, width_fraction=0.7, depth_fraction=0.8),
            LesionSpec("L1", "inferior", "2", height_fraction=0.15, width_fraction=0.6, depth_fraction=0.5),
            LesionSpec("S1", "superior", "2", height_fraction=0.38, width_fraction=0.7, depth_fraction=0.7),
        ],
    )
    truth = write_study(spec, root)
    study = load_study(root / "dicom")
    style = ReaderStyle(normal="band", change="band", inset_px=(1, 1), height_mm=(5.0, 5.0), seed=7)
    rois = reader_annotations(truth, study, style=style)
    write_annotations(rois, root / "dicom.modic.json")
    return Case(root, truth, study, rois)


def test_grades_follow_udby_and_the_nordic_consensus() -> None:
    # Udby 2022: A < 25 %, B 25-50 %, C > 50 %; Nordic: small < 25, medium 25-50, large >= 50 %
    assert [height_grade(f) for f in (0.0, 0.249, 0.25, 0.5, 0.501, 1.0)] == ["A", "A", "B", "B", "C", "C"]
    grades = ["small", "medium", "medium", "large", "large"]
    assert [length_grade(f) for f in (0.1, 0.25, 0.499, 0.5, 1.0)] == grades
    with pytest.raises(ValueError, match="height fraction"):
        height_grade(float("nan"))
    with pytest.raises(ValueError, match="height_grade"):
        Extent(10, 20, 0.5, "D", 10, 30, 0.3, "medium", "estimated")  # type: ignore[arg-type]


def test_phantom_changes_get_their_true_udby_grade(case: Case) -> None:
    for (vertebra, endplate), (modic_type, _, grade) in LESIONS.items():
        r = case.result(vertebra, endplate)
        assert r.modic_type.value == modic_type, (vertebra, endplate)
        assert r.extent is not None, r.warnings
        assert r.extent.height_grade == grade, (vertebra, endplate, r.extent)
        assert r.extent.body_source == "estimated"
        truth = case.truth.endplate(vertebra, endplate).lesion
        assert truth is not None
        # measured on one 4 mm slice: within 0.1 of the change's true greatest height share
        assert abs(r.extent.height_fraction - truth.measured_height_fraction) < 0.1, (vertebra, r.extent)
        # the body's local height where the change is deepest, against the phantom's
        assert abs(r.extent.body_height_mm - truth.geometry["local_body_height_mm"]) < 3.0


def test_the_tall_change_reaches_beyond_its_band_roi(case: Case) -> None:
    ext = case.result("L4", "inferior").extent
    assert ext is not None
    # the band is 5 mm tall, one pixel (1.5 mm) in from the endplate; the change ~14 mm
    assert ext.height_mm > 2 * (5.0 + 1.5)
    # its length along the endplate: 80 % of the body's depth at its centre; on a slice
    # beside the centre a little less, so at least "large" (>= 50 %)
    assert ext.length_grade == "large"
    assert 0.0 < ext.length_mm <= ext.endplate_length_mm
    depth = case.truth.vertebra("L4").depth
    assert abs(ext.endplate_length_mm - depth) < 0.2 * depth


def test_normal_endplates_have_no_extent(case: Case) -> None:
    for r in case.results:
        if r.modic_type.value == "0":
            assert r.extent is None
            assert not any("extent" in w for w in r.warnings)


def test_extent_columns_and_json(case: Case) -> None:
    rec = case.result("L4", "inferior").to_record()
    assert rec["extent_grade"] == "C"
    assert rec["body_source"] == "estimated"
    assert rec["extent_height_fraction"] > 0.5 and rec["extent_length_grade"] == "large"
    assert rec["body_height_mm"] > 15 and rec["extent_slice"] >= 0
    normal = next(r for r in case.results if r.modic_type.value == "0").to_record()
    assert normal["extent_grade"] == "" and normal["extent_height_fraction"] is None
    d = case.result("L1", "inferior").to_dict()["extent"]
    assert d["height_grade"] == "A"
    assert Extent.from_dict(json.loads(json.dumps(d))).height_grade == "A"
    header = case.results.to_csv().splitlines()[0].split(",")
    for col in ("extent_height_fraction", "extent_grade", "extent_length_fraction", "extent_length_grade",
                "body_height_mm", "body_source"):
        assert col in header


def _body_roi(case: Case, vertebra: str, plane_of: ROI) -> ROI:
    """The body's outline on the ROI's T1 slice, from the phantom's tissue map: its marrow
    and changes (an outline drawn along the inner edge of the cortex)."""
    im = plane_of.image
    rr, cc = np.mgrid[0 : im.rows, 0 : im.columns]
    xy = np.column_stack([cc.ravel() + 0.5, rr.ravel() + 0.5])
    names = tissue_at(case.truth, im.pixel_to_patient(xy)).reshape(im.rows, im.columns)
    body = (names == f"marrow_{vertebra}") | (
        np.char.startswith(names, "modic") & (np.char.find(names, f"_{vertebra}_") >= 0)
    )
    return ROI(RoiLabel.for_body(vertebra), Mask.from_image_mask(body), im)


def test_a_drawn_body_outline_gives_heights_close_to_the_estimated_body(case: Case) -> None:
    roi = case.roi("L4", "inferior")
    body = _body_roi(case, "L4", roi)
    rois = Annotations([*case.rois, body], study_instance_uid=case.rois.study_instance_uid)
    r = next(x for x in classify(case.study, rois) if x.roi_id == roi.id)
    estimated = case.result("L4", "inferior").extent
    assert r.extent is not None and estimated is not None
    assert r.extent.body_source == "outline"
    assert abs(r.extent.body_height_mm - estimated.body_height_mm) < 2.5  # < 2 pixels
    local = case.truth.endplate("L4", "inferior").lesion.geometry["local_body_height_mm"]  # type: ignore[union-attr]
    assert abs(r.extent.body_height_mm - local) < 3.0
    assert abs(r.extent.height_mm - estimated.height_mm) < 2.5
    assert r.extent.height_grade == "C"


def test_extent_is_not_made_up_when_it_cannot_be_measured(case: Case) -> None:
    refs = [r for r in case.rois if r.label.kind == "reference"]
    roi = case.roi("L4", "inferior")
    prep = prepare_region(
        case.study, roi, refs, contrast=measure_contrast(case.study, refs),
        reference_model=ReferenceModel.fit(case.study, refs),
    )
    g = case.study.t1.geometry
    whole = np.ones((g.rows, g.columns), dtype=bool)  # a "body" that fills the image
    ext, why = measure_extent(case.study, prep, "1", body=whole)
    assert ext is None and why is not None and "edge" in why
    assert measure_extent(case.study, prep, "0") == (None, None)
    assert measure_extent(case.study, prep, "indeterminate") == (None, None)
    # a body outline that misses the slice
    ext, why = measure_extent(case.study, prep, "1", body=np.zeros((g.rows, g.columns), dtype=bool))
    assert ext is None and why is not None and "does not cross" in why


def test_candidacy_lists_the_levels_and_bodies_of_the_criterion(case: Case) -> None:
    c = case.results.candidacy
    # type 1 at L4/L5 and type 2 at S1 superior (= L5/S1) count; type 2 at L1/L2 does not
    assert c.levels == ("L4/L5", "L5/S1")
    assert c.vertebrae == ("L4", "L5", "S1")
    assert c.findings["L5/S1"] == ["S1 superior: Modic 2"]
    assert c.meets_imaging_criterion and c.levels_not_read == ()
    for needed in ("K153272", "K190504", "Intracept", "not a treatment recommendation", "6 months"):
        assert needed in c.text


def test_candidacy_of_a_reading_without_s1(case: Case) -> None:
    upper = ModicResults([r for r in case.results if r.label.vertebra != "S1"])
    c = upper.candidacy
    assert c.levels == ("L4/L5",)
    assert c.vertebrae == ("L4", "L5")
    assert "L5/S1" in c.levels_read  # read through L5 inferior, normal


def test_classify_cli_prints_extent_and_candidacy(case: Case) -> None:
    r = subprocess.run(
        [sys.executable, "-m", "modic", "classify", str(case.root / "dicom")],
        capture_output=True, text=True, timeout=300,
    )
    assert r.returncode == 0, r.stderr
    header = next(line for line in r.stdout.splitlines() if line.startswith("level"))
    assert "extent" in header.split()
    row = next(line for line in r.stdout.splitlines() if line.startswith("L4/L5   L4"))
    assert " C " in row and "large" in row
    text = " ".join(r.stdout.split())
    met = "met at L4/L5 (L4 inferior: Modic 1); L5/S1 (S1 superior: Modic 2): vertebral bodies L4, L5, S1"
    assert met in text
    assert "not a treatment recommendation" in text


def test_batch_summary_holds_each_studys_candidacy(case: Case, tmp_path: Path) -> None:
    summary = run_batch(case.root, tmp_path / "out", workers=1)
    assert summary.n_ok == 1
    data = json.loads((tmp_path / "out" / "summary.json").read_text())
    (entry,) = data["candidacy"].values()
    assert entry["levels"] == ["L4/L5", "L5/S1"] and entry["vertebrae"] == ["L4", "L5", "S1"]
    assert "K153272" in entry["source"] and "not a treatment recommendation" in entry["disclaimer"]
    rows = (tmp_path / "out" / "results.csv").read_text().splitlines()
    assert "extent_grade" in rows[0].split(",")
