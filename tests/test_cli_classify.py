"""``modic classify``, run for real in a subprocess on DICOM written with pydicom."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import write_lumbar_study
from pydicom import dcmread
from test_batch import PATIENT_ID, PATIENT_NAME, off_image_roi, write_annotated_study

from modic.annotations import (
    ROI,
    Annotations,
    ImagePlane,
    Polygon,
    Rectangle,
    RoiLabel,
    annotation_path_for,
    read_annotations,
    write_annotations,
)
from modic.cli.classify import format_results
from modic.criteria import ModicType
from modic.data import sample_annotations_path, sample_study_path
from modic.reading import classify
from modic.results import ModicResults
from modic.study import load_study


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "modic", *args], capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def type1_study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("classify") / "case1"
    write_annotated_study(folder, "1", seed=1)
    return folder


def annotate_lumbar_study(root: Path) -> Path:
    """Annotations on slice 5 of the conftest study's T1 (x = 0 mm), whose T2 has another grid."""
    ds = dcmread(root / "T1" / "IM5", stop_before_pixels=True)
    plane = ImagePlane(
        str(ds.SeriesInstanceUID),
        str(ds.SOPInstanceUID),
        1,
        int(ds.Rows),
        int(ds.Columns),
        tuple(float(v) for v in ds.ImagePositionPatient),  # type: ignore[arg-type]
        tuple(float(v) for v in ds.ImageOrientationPatient),  # type: ignore[arg-type]
        (float(ds.PixelSpacing[0]), float(ds.PixelSpacing[1])),
    )
    rois = [
        ROI(RoiLabel.for_endplate("L3", "inferior"), Polygon([(4, 4), (24, 4), (24, 8), (4, 8)]), plane),
        ROI(RoiLabel.for_reference("L3"), Rectangle(4, 14, 24, 24), plane),
    ]
    ann = Annotations(rois, study_instance_uid=str(ds.StudyInstanceUID))
    return write_annotations(ann, annotation_path_for(root))


def test_classify_prints_a_table_per_endplate(type1_study: Path) -> None:
    r = run("classify", str(type1_study))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    header = next(line for line in lines if line.startswith("level"))
    for column in ("vertebra", "endplate", "type", "confidence", "T1 SIR (95% CI)", "T2 SIR (95% CI)"):
        assert column in header
    assert header.split()[-2:] == ["voxels", "reference"]
    i = next(k for k, line in enumerate(lines) if line.startswith("L4/L5  L4"))
    row = lines[i].split()
    assert row[:4] == ["L4/L5", "L4", "inferior", "1"]
    assert float(row[5]) < 0.7 and row[-3:] == ["192", "L4", "reference"]  # T1 SIR, voxels, reference
    assert lines[i + 1].strip().endswith("oedema pattern, Modic 1")  # the explanation beneath
    assert "1 type 0, 1 type 1" in lines[-1]
    contrast = next(line for line in lines if line.startswith("Measured contrast: "))
    assert "fat suppression" in contrast and "marrow SNR T1" in contrast
    assert PATIENT_NAME not in r.stdout and PATIENT_ID not in r.stdout
    r = run("classify", str(type1_study), "--include-identifiers")
    assert PATIENT_NAME in r.stdout and PATIENT_ID in r.stdout


def test_classify_json_agrees_with_the_python_api(tmp_path: Path) -> None:
    root = tmp_path / "study"
    write_lumbar_study(root, "ge")
    ann_path = annotate_lumbar_study(root)
    r = run("classify", str(root), "--json")
    assert r.returncode == 0, r.stderr
    (got,) = json.loads(r.stdout)
    (expected,) = classify(load_study(root), read_annotations(ann_path))
    want = expected.to_dict()
    assert got["study"] == want["study"] and got["label"] == "L3 inferior"
    assert got["modic_type"] == want["modic_type"]
    assert got["confidence"] == want["confidence"]
    assert got["ratios"] == json.loads(json.dumps(want["ratios"]))
    assert set(got["series"]) == {"T1", "T2", "STIR"} and got["series"]["T2"]["series"] == "3"
    assert PATIENT_NAME not in r.stdout


def test_missing_annotations_name_the_expected_file(tmp_path: Path) -> None:
    root = tmp_path / "study"
    write_lumbar_study(root)
    r = run("classify", str(root))
    assert r.returncode == 1
    assert str(annotation_path_for(root)) in r.stderr
    assert "--annotations" in r.stderr and r.stdout == ""
    elsewhere = tmp_path / "notes" / "mine.json"
    r = run("classify", str(root), "--annotations", str(elsewhere))
    assert r.returncode == 1 and str(elsewhere) in r.stderr
    assert run("classify", str(tmp_path / "nope")).returncode == 2


def test_annotations_from_another_file_and_series_choices(type1_study: Path, tmp_path: Path) -> None:
    moved = tmp_path / "ann.json"
    shutil.copy(annotation_path_for(type1_study), moved)
    r = run("classify", str(type1_study), "--annotations", str(moved), "--t1", "2", "--stir", "4", "--json")
    assert r.returncode == 0, r.stderr
    assert [d["modic_type"] for d in json.loads(r.stdout)] == ["type 1", "type 0"]  # results format 2
    r = run("classify", str(type1_study), "--t2", "99")
    assert r.returncode == 1
    assert "matches no series" in r.stderr


def test_unmeasurable_roi_is_listed_and_exits_1(tmp_path: Path) -> None:
    folder = tmp_path / "case"
    write_annotated_study(folder, "2", seed=4, extra_rois=(off_image_roi(),))
    r = run("classify", str(folder))
    assert r.returncode == 1
    assert "cannot measure: ROI L3 inferior (" in r.stderr
    assert "1 of 3 endplate ROIs could not be measured" in r.stderr
    assert any(line.startswith("L4/L5  L4        inferior  2") for line in r.stdout.splitlines())
    r = run("classify", str(folder), "--json")
    assert r.returncode == 1 and len(json.loads(r.stdout)) == 2


SAMPLE = "siemens_15T_type1_type2"


def test_classify_reports_the_study_contrast_once(tmp_path: Path) -> None:
    study, ann = sample_study_path(SAMPLE), sample_annotations_path(SAMPLE)
    results = classify(load_study(study), read_annotations(ann))
    assert results.contrast is not None
    r = run("classify", str(study), "--annotations", str(ann))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    contrast = [line for line in lines if "contrast:" in line]
    assert contrast == [f"Measured contrast: {results.contrast.describe()}"]  # once, in the title
    assert "(fat suppression good)" in contrast[0] and lines.index(contrast[0]) < 3
    # --json: every endplate carries it, as the Python API gives it
    r = run("classify", str(study), "--annotations", str(ann), "--json")
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)
    assert len(got) == len(results) and all(d["contrast"] == results.contrast.to_dict() for d in got)
    assert got[0]["contrast"]["fat_suppression"] == "good" and set(got[0]["contrast"]["marrow_snr"]) == {
        "T1",
        "T2",
        "STIR",
    }


def test_an_indeterminate_endplate_is_its_own_category(tmp_path: Path) -> None:
    """Real DICOM whose L4 inferior is dark on T2 but bright on STIR: oedema is bright on
    both, sclerosis dark on both, fat bright on T1: no Modic type fits."""
    folder = tmp_path / "case"
    write_annotated_study(folder, "indeterminate", seed=3)
    r = run("classify", str(folder))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    i = next(k for k, line in enumerate(lines) if line.startswith("L4/L5  L4"))
    assert lines[i].split()[:4] == ["L4/L5", "L4", "inferior", "indeterminate"]
    assert (
        "of L4 reference marrow: indeterminate, the region departs from the reference in a pattern"
        in (lines[i + 1])
    )
    assert lines[-1] == "2 endplates: 1 type 0, 1 indeterminate"
    r = run("classify", str(folder), "--json")
    (l4,) = [d for d in json.loads(r.stdout) if d["label"] == "L4 inferior"]
    assert l4["modic_type"] == "indeterminate" and l4["reason"].startswith("the region departs")


def test_format_results_counts_indeterminate_apart_from_changes_and_normal() -> None:
    import dataclasses

    study = load_study(sample_study_path(SAMPLE))
    results = classify(study, read_annotations(sample_annotations_path(SAMPLE)))
    counts = results.type_counts()
    why = "the sequences contradict each other: 70% of the voxels fit no Modic pattern"
    # the type-1 endplate made indeterminate: one change fewer, one indeterminate
    changed = [
        dataclasses.replace(r, modic_type=ModicType.INDETERMINATE, reason=why)
        if r.modic_type.value == "1"
        else r
        for r in results
    ]
    text = format_results(ModicResults(changed, contrast=results.contrast), study)
    assert "Measured contrast: fat " in text
    last = text.splitlines()[-1]
    assert last == f"{len(results)} endplates: {counts['0']} type 0, {counts['2']} type 2, 1 indeterminate"
    assert f"indeterminate, {why}" in text and "type indeterminate" not in text
