"""Anatomical checks on ROIs (modic.anatomy), through check_rois, modic.classify and the CLI.

The misplaced ROIs are made from the sample's reader ROIs and checked against the phantom's
ground truth (which tissue lies under them), never against what modic computes.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import modic
from modic.anatomy import CONFIDENCE_CAP, check_rois
from modic.annotations import ROI, Annotations, Mask, Polygon, RoiLabel, read_annotations, write_annotations
from modic.phantom import GroundTruth, tissue_at
from modic.propose import propose

NAME = "siemens_15T_type1_type2"


@pytest.fixture(scope="module")
def study() -> modic.LoadedStudy:
    return modic.load_study(modic.data.sample_study_path(NAME))


@pytest.fixture(scope="module")
def truth_rois() -> Annotations:
    return read_annotations(modic.data.sample_annotations_path(NAME))


@pytest.fixture(scope="module")
def proposal(study: modic.LoadedStudy) -> object:
    return propose(study)


def tissue_map(roi: ROI) -> np.ndarray:
    """(rows, columns) phantom tissue names on an ROI's image."""
    im = roi.image
    rr, cc = np.mgrid[0 : im.rows, 0 : im.columns]
    xy = np.column_stack([cc.ravel() + 0.5, rr.ravel() + 0.5])
    truth = GroundTruth.from_json(modic.data.sample_truth_path(NAME))
    return tissue_at(truth, im.pixel_to_patient(xy)).reshape(im.rows, im.columns)


def marrow_of(names: np.ndarray, vertebra: str) -> np.ndarray:
    return (names == f"marrow_{vertebra}") | (
        np.char.startswith(names, "modic") & (np.char.find(names, f"_{vertebra}_") >= 0)
    )


def get(rois: Annotations, text: str) -> ROI:
    return next(r for r in rois if str(r.label) == text)


def l4_inferior_inside_l5(rois: Annotations) -> tuple[list[ROI], ROI]:
    """The sample's ROIs with 'L4 inferior' drawn 6 mm below L5 superior, inside L5 (the
    issue's case): the L4 inferior band moved by the distance between it and L5's band."""
    l4i, l5s = get(rois, "L4 inferior"), get(rois, "L5 superior")
    assert isinstance(l4i.shape, Polygon)
    shift = l5s.shape.outline(64).mean(axis=0) - l4i.shape.outline(64).mean(axis=0)
    shift += [0.0, 6.0 / l4i.image.pixel_spacing[0]]
    moved = dataclasses.replace(l4i, shape=Polygon(np.asarray(l4i.shape.points) + shift))
    # the ground truth: the moved ROI lies in L5's marrow, not L4's
    names = tissue_map(moved)[moved.pixel_mask()]
    assert marrow_of(names, "L5").mean() > 0.8 and not marrow_of(names, "L4").any()
    return [moved if r.id == l4i.id else r for r in rois], moved


def warnings_of(findings: list, roi: ROI) -> list:
    return [f for f in findings if f.roi_id == roi.id and f.severity == "warning"]


# ----------------------------------------------------------------------------------------
# no false alarms on correct annotations
# ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", modic.data.sample_study_names())
def test_the_sample_readers_rois_and_the_proposal_give_no_warning(name: str) -> None:
    study = modic.load_study(modic.data.sample_study_path(name))
    rois = read_annotations(modic.data.sample_annotations_path(name))
    p = propose(study)
    for findings in (check_rois(study, rois), check_rois(study, rois, vertebrae=p)):
        assert [f.message for f in findings if f.severity == "warning"] == []
    assert [f.message for f in check_rois(study, p.annotations, vertebrae=p) if f.severity == "warning"] == []


def test_a_reference_touching_a_band_is_only_a_note(study: modic.LoadedStudy) -> None:
    # the 3 T sample's L5 reference shares a fifth of its pixels with the L5 superior band
    name = "siemens_3T_rle_t2fs"
    rois = read_annotations(modic.data.sample_annotations_path(name))
    ref, band = get(rois, "L5 reference"), get(rois, "L5 superior")
    shared = (ref.pixel_mask() & band.pixel_mask()).sum() / ref.pixel_mask().sum()
    assert 0.1 < shared < 0.5  # on the same image: the overlap, counted without modic.anatomy
    findings = check_rois(None, rois)
    assert [(f.roi_id, f.problem, f.severity) for f in findings] == [(ref.id, "overlap", "note")]


# ----------------------------------------------------------------------------------------
# misplaced, swapped, overlapping
# ----------------------------------------------------------------------------------------
def test_l4_inferior_inside_l5_is_warned_and_its_confidence_capped(study, truth_rois) -> None:
    rois, moved = l4_inferior_inside_l5(truth_rois)
    found = warnings_of(check_rois(study, rois), moved)
    assert found and all(f.message.startswith("L4 inferior") for f in found)
    assert {f.problem for f in found} >= {"order"}
    # the innocent neighbour is not blamed: another check (the L5 reference it overlaps) faults L4 inferior
    assert warnings_of(check_rois(study, rois), get(truth_rois, "L5 superior")) == []

    plain = modic.classify(study, rois, anatomy=False)
    checked = modic.classify(study, rois)
    before = next(r for r in plain if r.roi_id == moved.id)
    after = next(r for r in checked if r.roi_id == moved.id)
    assert before.confidence > CONFIDENCE_CAP  # confident without the checks (the issue)
    assert after.confidence == pytest.approx(CONFIDENCE_CAP)
    assert any(w.startswith("anatomy: L4 inferior") for w in after.warnings)
    assert any(w.startswith("confidence capped at 0.50") for w in after.warnings)
    assert "anatomy" in after.reason
    assert not any(w.startswith("anatomy") for w in before.warnings)
    # the other results are untouched
    for a, b in zip(plain, checked, strict=True):
        if a.roi_id not in (moved.id, get(truth_rois, "L5 reference").id) and b.reference_id not in (
            get(truth_rois, "L5 reference").id,
        ):
            assert a.confidence == b.confidence and a.warnings == b.warnings


def test_the_image_checks_find_it_without_the_neighbours(study, truth_rois, proposal) -> None:
    # only L4 inferior in L5 and the references of the other vertebrae: nothing else to compare
    rois, moved = l4_inferior_inside_l5(truth_rois)
    rest = [r for r in rois if r.label.kind == "reference" and r.label.vertebra != "L5"] + [moved]
    found = warnings_of(check_rois(study, rest, vertebrae=proposal), moved)
    assert {f.problem for f in found} & {"wrong_body", "wrong_end"}


def test_swapped_labels_are_flagged_on_both(truth_rois) -> None:
    a, b = get(truth_rois, "L3 inferior"), get(truth_rois, "L4 superior")
    swapped = [
        dataclasses.replace(r, label=b.label)
        if r.id == a.id
        else dataclasses.replace(r, label=a.label)
        if r.id == b.id
        else r
        for r in truth_rois
    ]
    findings = check_rois(None, swapped)
    assert {f.roi_id for f in findings if f.problem == "order"} == {a.id, b.id}
    assert all(f.severity == "warning" for f in findings)


def test_overlapping_endplate_rois_are_flagged(truth_rois) -> None:
    # a second band drawn over L4 inferior, on the T2 image at the same place, labelled L5 superior
    l4i = get(truth_rois, "L4 inferior")
    l5s = get(truth_rois, "L5 superior")
    copy = dataclasses.replace(l5s, shape=l4i.shape)  # same image and shape, another label
    rois = [copy if r.id == l5s.id else r for r in truth_rois]
    findings = check_rois(None, rois)
    overlap = {f.roi_id for f in findings if f.problem == "overlap"}
    assert overlap >= {l4i.id, copy.id}


def test_a_reference_at_the_endplate_of_its_body_outline(truth_rois) -> None:
    ref = get(truth_rois, "L4 reference")
    names = tissue_map(ref)
    body = ROI(RoiLabel.for_body("L4"), Mask.from_image_mask(marrow_of(names, "L4")), ref.image)
    assert check_rois(None, [*truth_rois, body]) == []  # the reader's reference is central
    rows = np.nonzero(marrow_of(names, "L4").any(axis=1))[0]
    top = rows.min()  # the body's highest row on this sagittal image (head is up)
    shift = (top + 2.5) - ref.pixel_mask().nonzero()[0].mean()
    moved = dataclasses.replace(ref, shape=Polygon(np.asarray(ref.shape.outline(32)) + [0.0, shift]))
    rois = [moved if r.id == ref.id else r for r in truth_rois] + [body]
    found = warnings_of(check_rois(None, rois), moved)
    assert "reference_place" in {f.problem for f in found} or "overlap" in {f.problem for f in found}


# ----------------------------------------------------------------------------------------
# the CLI
# ----------------------------------------------------------------------------------------
def test_the_cli_prints_the_anatomy_warning_and_the_capped_confidence(truth_rois, tmp_path: Path) -> None:
    rois, moved = l4_inferior_inside_l5(truth_rois)
    path = tmp_path / "moved.modic.json"
    write_annotations(Annotations(rois, study_instance_uid=truth_rois.study_instance_uid), path)
    cmd = [
        sys.executable,
        "-m",
        "modic",
        "classify",
        str(modic.data.sample_study_path(NAME)),
        "--annotations",
        str(path),
        "--json",
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    results = doc["results"] if isinstance(doc, dict) else doc
    row = next(r for r in results if r["roi_id"] == moved.id)
    assert row["confidence"] <= CONFIDENCE_CAP + 1e-9
    assert any(w.startswith("anatomy: L4 inferior") for w in row["warnings"])
    text = subprocess.run(cmd[:-1], capture_output=True, text=True, timeout=180)
    assert text.returncode == 0 and "anatomy: L4 inferior" in text.stdout
