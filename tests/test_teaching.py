"""Teaching cases (:mod:`modic.teaching`, ``modic teach``): author a key, grade a trainee's
attempt with deliberate mistakes, log it, summarise the log; the shipped cases; bad bundles.

The end-to-end flow runs the real command line in subprocesses on the shipped sample
study ``siemens_15T_type1_type2`` (L4 inferior Modic 1, L5 superior Modic 2). Nothing is
written into sample_data: every output goes to ``tmp_path``.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import pytest
from matplotlib.backend_bases import KeyEvent, MouseEvent
from pydicom import dcmread

from modic.annotations import ROI, Annotations, ImagePlane, Polygon, Rectangle, RoiLabel, read_annotations
from modic.criteria import ModicType
from modic.data import sample_annotations_path, sample_data_dir, sample_study_path
from modic.teaching import (
    DICE_MATCH,
    SHIPPED_CASES,
    TeachingFormatError,
    TeachingSession,
    TraineeAnswer,
    cohen_kappa,
    default_log_dir,
    feedback_figure,
    grade,
    kappa_interval,
    list_cases,
    load_case,
    log_attempt,
    read_answer,
    read_attempts,
    roi_dice,
    shape_disagreement,
    shipped_cases_dir,
    summary,
    type_credit,
    write_answer,
    write_teaching_cases,
)
from modic.teaching.log import CSV_FIELDS
from modic.teaching.sheet import AnswerSheet

matplotlib.use("Agg")

STUDY = "siemens_15T_type1_type2"
L4I, L5S = RoiLabel.parse("L4 inferior"), RoiLabel.parse("L5 superior")


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "modic", "teach", *args], capture_output=True, text=True, timeout=120, env=env
    )


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """An environment whose per-user folders are temporary (nothing lands in the real home)."""
    root = tmp_path_factory.mktemp("home")
    env = {k: v for k, v in os.environ.items() if k != "MODIC_TEACHING_LOG"}
    env.update(HOME=str(root), XDG_DATA_HOME=str(root / "data"), MPLBACKEND="Agg")
    return env


# ----------------------------------------------------------------------------------------
# grading rules, by hand
# ----------------------------------------------------------------------------------------
# answer -> key -> credit, written out from the table in docs/teaching.md
CREDITS = {
    "0": {"0": 1, "1": 0, "2": 0, "3": 0, "1/2": 0, "2/3": 0},
    "1": {"0": 0, "1": 1, "2": 0, "3": 0, "1/2": 0.5, "2/3": 0},
    "2": {"0": 0, "1": 0, "2": 1, "3": 0, "1/2": 0.5, "2/3": 0.5},
    "3": {"0": 0, "1": 0, "2": 0, "3": 1, "1/2": 0, "2/3": 0.5},
    "1/2": {"0": 0, "1": 0.5, "2": 0.5, "3": 0, "1/2": 1, "2/3": 1 / 3},
    "2/3": {"0": 0, "1": 0, "2": 0.5, "3": 0.5, "1/2": 1 / 3, "2/3": 1},
}


def test_type_credit_follows_the_documented_table() -> None:
    for answer, row in CREDITS.items():
        for key, credit in row.items():
            assert type_credit(answer, key) == pytest.approx(credit), (answer, key)


def _plane(sop: str = "1.2.3.1", x: float = 0.0, rows: int = 40, cols: int = 40) -> ImagePlane:
    """A sagittal image at LPS x = ``x`` mm, 1 mm pixels."""
    return ImagePlane("1.2.3", sop, 1, rows, cols, (x, -20.0, 20.0), (0, 1, 0, 0, 0, -1), (1.0, 1.0))


def test_dice_of_hand_computable_rois() -> None:
    key = ROI(L4I, Rectangle(10, 10, 18, 14), _plane())  # 8 x 4 pixels
    same = ROI(L4I, Rectangle(10, 10, 18, 14), _plane())
    assert roi_dice(same, key, max_distance_mm=2.0) == (1.0, "")
    shifted = ROI(L4I, Rectangle(14, 10, 22, 14), _plane())  # by half its width: overlap 4 x 4
    assert roi_dice(shifted, key, max_distance_mm=2.0) == (0.5, "")
    # the same rectangle drawn on another image 1 mm away (within half a slice): carried
    # over through patient coordinates, its pixels are the key's
    near = ROI(L4I, Rectangle(10, 10, 18, 14), _plane("1.2.3.2", x=1.0))
    assert roi_dice(near, key, max_distance_mm=2.0) == (1.0, "")
    # ... and on an image with 0.5 mm pixels: the rectangle covers the same tissue
    fine = ImagePlane("1.2.4", "1.2.4.1", 1, 80, 80, (0.0, -20.25, 19.75), (0, 1, 0, 0, 0, -1), (0.5, 0.5))
    assert roi_dice(ROI(L4I, Rectangle(20, 20, 36, 28), fine), key, max_distance_mm=2.0) == (1.0, "")
    # 3 mm away is another slice
    far = ROI(L4I, Rectangle(10, 10, 18, 14), _plane("1.2.3.3", x=3.0))
    dice, note = roi_dice(far, key, max_distance_mm=2.0)
    assert dice == 0.0 and "another slice" in note and "3.0 mm" in note


# ----------------------------------------------------------------------------------------
# the flow end to end: author -> answer with mistakes -> grade (CLI and API) -> log
# ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def authored(tmp_path_factory: pytest.TempPathFactory, home: dict[str, str]) -> Path:
    """A case authored with the real CLI from the sample study and its reader ROIs."""
    out = tmp_path_factory.mktemp("author") / "t1-vs-t2"
    r = run(
        "author",
        str(sample_study_path(STUDY)),
        "-o",
        str(out),
        "--annotations",
        str(sample_annotations_path(STUDY)),
        "--type",
        "L4 inferior=1",
        "--type",
        "L5s=2",
        "--extent",
        "L4i=B",
        "--normal-rest",
        "--title",
        "Modic 1 vs 2",
        "--difficulty",
        "beginner",
        "--tag",
        "type 1",
        "--history",
        "Low back pain.",
        env=home,
    )
    assert r.returncode == 0, r.stderr
    assert "Case t1-vs-t2 written" in r.stdout
    return out


def test_author_builds_a_self_contained_bundle(authored: Path) -> None:
    assert sorted(p.name for p in authored.iterdir()) == ["case.json", "key.json", "study"]
    doc = json.loads((authored / "case.json").read_text())
    assert doc["format"] == "modic-teaching-case" and doc["version"] == "1.1"
    assert (doc["id"], doc["title"], doc["difficulty"], doc["tags"]) == (
        "t1-vs-t2",
        "Modic 1 vs 2",
        "beginner",
        ["type 1"],
    )
    assert doc["study"] == {"path": "study"}
    assert doc["key"]["L4 inferior"] == {"type": "1", "extent": "B"}
    assert doc["key"]["L5 superior"] == {"type": "2"}
    assert len(doc["key"]) == 11 and sum(v["type"] == "0" for v in doc["key"].values()) == 9
    # the DICOM of the study is copied (not the junk beside it), the key is the reader's ROIs
    copied = sorted(p.relative_to(authored / "study") for p in (authored / "study").rglob("*") if p.is_file())
    source = sample_study_path(STUDY)
    assert copied == sorted(p.relative_to(source) for p in source.rglob("*") if p.is_file())
    assert (
        read_annotations(authored / "key.json").to_dict()
        == read_annotations(sample_annotations_path(STUDY)).to_dict()
    )
    case = load_case(authored)
    assert case.study_path == (authored / "study").resolve()
    assert str(case.changes()[0].label) == "L4 inferior"


def test_author_refuses_untyped_rois_and_existing_folders(
    authored: Path, tmp_path: Path, home: dict[str, str]
) -> None:
    args = [
        str(sample_study_path(STUDY)),
        "--annotations",
        str(sample_annotations_path(STUDY)),
        "--title",
        "T",
    ]
    r = run("author", *args, "-o", str(tmp_path / "c"), "--type", "L4i=1", env=home)
    assert r.returncode == 2 and "no --type for L1 superior" in r.stderr and "--normal-rest" in r.stderr
    assert not (tmp_path / "c").exists()
    r = run("author", *args, "-o", str(authored), "--normal-rest", env=home)
    assert r.returncode == 1 and "already exists" in r.stderr
    r = run("author", *args[:3], "-o", str(tmp_path / "d"), env=home)  # no --title
    assert r.returncode == 2 and "--title is required" in r.stderr
    r = run("author", args[0], "-o", str(tmp_path / "e"), env=home)  # interactive, but no terminal
    assert r.returncode == 2 and "run it in a terminal" in r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def _shift(roi: ROI, dx: float) -> ROI:
    assert isinstance(roi.shape, Polygon)
    return ROI(roi.label, Polygon(roi.shape.points + [dx, 0.0]), roi.image)


def _mask_dice(a: ROI, b: ROI) -> float:
    ma, mb = a.pixel_mask(), b.pixel_mask()
    return 2 * float((ma & mb).sum()) / float(ma.sum() + mb.sum())


@pytest.fixture(scope="module")
def answer_file(authored: Path) -> Path:
    """The trainee's answer: L4 inferior (Modic 1) answered 1/2 with an ROI shifted 5 pixels
    forward (Dice < 0.8), L5 superior exactly like the key, every other endplate 0, and L1
    superior left unanswered."""
    case = load_case(authored)
    key_l4, key_l5 = case.key_roi(L4I), case.key_roi(L5S)
    assert key_l4 is not None and key_l5 is not None
    rois = Annotations(
        [_shift(key_l4, 5.0), ROI(L5S, key_l5.shape, key_l5.image)]
        + [r for r in case.references() if r.label.vertebra in ("L4", "L5")],
        study_instance_uid=case.rois.study_instance_uid,
    )
    types = {str(label): "0" for label in case.key} | {"L4 inferior": "1/2", "L5 superior": "2"}
    del types["L1 superior"]
    answer = TraineeAnswer(rois, types=types, extents={"L4 inferior": "B"}, trainee="alice", case_id=case.id)
    return write_answer(answer, authored.parent / "alice-answer.json")


EXPECTED_SCORE = (9 + 0.5) / 11  # 11 endplates: 9 full credits, L4 inferior half, L1 superior missed


def _check_grade(d: dict[str, Any], dice_l4: float) -> None:
    rows = {e["endplate"]: e for e in d["endplates"]}
    assert list(rows)[:3] == ["L1 superior", "L1 inferior", "L2 superior"] and len(rows) == 11
    assert d["score"] == pytest.approx(EXPECTED_SCORE, abs=1e-4)
    assert rows["L4 inferior"]["credit"] == 0.5 and rows["L4 inferior"]["verdict"] == "half credit"
    assert rows["L4 inferior"]["dice"] == pytest.approx(dice_l4, abs=1e-4)
    assert rows["L4 inferior"]["roi_match"] is False
    assert rows["L5 superior"]["credit"] == 1.0 and rows["L5 superior"]["dice"] == 1.0
    assert rows["L5 superior"]["roi_match"] is True
    assert rows["L1 superior"]["answer"] is None and rows["L1 superior"]["verdict"] == "missed"
    assert rows["L1 superior"]["credit"] == 0.0
    assert all(rows[k]["credit"] == 1.0 for k in rows if k not in ("L1 superior", "L4 inferior"))
    assert (d["n_missed"], d["n_roi_compared"], d["n_roi_match"]) == (1, 2, 1)
    # the extent: the trainee's Udby grade against the key's, and what modic measured in the
    # key's ROI (the sample's change reaches 35 % of L4: grade B)
    assert rows["L4 inferior"]["key_extent"] == "B" and rows["L4 inferior"]["extent_agrees"] is True
    assert rows["L4 inferior"]["classifier_in_key_roi"]["extent"]["height_grade"] == "B"
    assert rows["L3 inferior"]["extent_agrees"] is None


def test_grade_a_saved_answer_on_the_command_line(
    authored: Path, answer_file: Path, tmp_path: Path, home: dict[str, str]
) -> None:
    case = load_case(authored)
    key_l4 = case.key_roi(L4I)
    assert key_l4 is not None
    dice_l4 = _mask_dice(_shift(key_l4, 5.0), key_l4)
    assert 0.3 < dice_l4 < DICE_MATCH
    log = tmp_path / "log"
    r = run("grade", str(authored), "--answer", str(answer_file), "--log-dir", str(log), "--json", env=home)
    assert r.returncode == 0, r.stderr
    _check_grade(json.loads(r.stdout), dice_l4)
    # the same as text: plain-language feedback
    r = run("grade", str(authored), "--answer", str(answer_file), "--log-dir", str(log), env=home)
    assert r.returncode == 0, r.stderr
    text = r.stdout
    assert "Score: 86% (9.5 of 11 endplates)" in text
    assert "L4 inferior: you said 1/2, the key says 1 (half credit): Modic 1 is oedema: dark on T1" in text
    # the classifier inside the key's ROI, as the Python API measures it
    key_result = grade(load_case(authored), read_answer(answer_file)).row(L4I).key_result
    assert key_result is not None
    assert key_result.explanation.startswith("T1 0.6") and key_result.explanation.endswith(
        "of L4 reference marrow: oedema pattern, Modic 1"
    )
    assert f"key's ROI: {key_result.explanation}" in text
    assert f"Dice {dice_l4:.2f} with" not in text and f"Dice {dice_l4:.2f} (a match needs 0.8)" in text
    assert "L5 superior: you said 2, the key says 2 (correct)" in text
    assert "L1 superior: not answered; the key says 0 (no credit)" in text
    # two attempts logged, nothing written to the case or the real home
    assert len(read_attempts(log)) == 2
    assert sorted(p.name for p in authored.iterdir()) == ["case.json", "key.json", "study"]
    assert not (Path(home["HOME"]) / "data").exists()


def test_grade_with_the_python_api_and_log(authored: Path, answer_file: Path, tmp_path: Path) -> None:
    case = load_case(authored)
    answer = read_answer(answer_file)
    g = grade(case, answer)
    key_l4 = case.key_roi(L4I)
    assert key_l4 is not None
    _check_grade(g.to_dict(), _mask_dice(_shift(key_l4, 5.0), key_l4))
    assert g.trainee == "alice" and g.missed == [RoiLabel.parse("L1 superior")]
    row = g.row("L4i")
    # the classifier inside the trainee's ROI and the expert's, side by side
    assert row.key_result is not None and row.key_result.modic_type is ModicType.TYPE1
    assert row.trainee_result is not None and row.trainee_result.reference_label == RoiLabel.parse("ref L4")
    assert row.trainee_result_note == ""  # the trainee drew their own reference marrow in L4
    # log: JSON Lines + CSV, one row per endplate, no patient identifiers
    log = tmp_path / "log"
    log_attempt(g, log)
    log_attempt(grade(case, answer, trainee="bob"), log)
    records = read_attempts(log)
    assert [r["trainee"] for r in records] == ["alice", "bob"]
    assert records[0]["case"] == "t1-vs-t2" and records[0]["score"] == pytest.approx(EXPECTED_SCORE, abs=1e-4)
    assert {e["endplate"]: e["answer"] for e in records[0]["endplates"]}["L4 inferior"] == "1/2"
    with (log / "attempts.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert tuple(rows[0]) == CSV_FIELDS and len(rows) == 22
    l4 = next(r for r in rows if r["trainee"] == "alice" and r["endplate"] == "L4 inferior")
    assert (l4["key"], l4["answer"], l4["credit"], l4["roi_match"]) == ("1", "1/2", "0.5", "False")
    ds = dcmread(next(p for p in (authored / "study").rglob("*") if p.is_file()), stop_before_pixels=True)
    for name in ("attempts.jsonl", "attempts.csv"):
        text = (log / name).read_text()
        for secret in (
            str(ds.PatientName),
            str(ds.PatientID),
            str(ds.StudyInstanceUID),
            str(ds.SOPInstanceUID),
        ):
            assert secret not in text, (name, secret)
    # the log never goes into the case folder
    with pytest.raises(ValueError, match="inside the case folder"):
        log_attempt(g, authored / "log")
    # an attempts.csv with other columns is refused, not mixed
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "attempts.csv").write_text("who,what\n")
    with pytest.raises(ValueError, match="columns"):
        log_attempt(g, bad)
    assert not (bad / "attempts.jsonl").exists()


def test_a_roi_drawn_on_another_series_is_compared_in_patient_space(authored: Path) -> None:
    case = load_case(authored)
    study = case.load_study()
    key = case.key_roi(L5S)
    assert key is not None
    # the trainee draws L5 superior on the T2 (another grid; its slice is 1.8 mm from the key's)
    k = int(study.t2.geometry.nearest_slice(np.asarray(key.image.position)[None, :])[0][0])
    t2_plane = ImagePlane.from_series(study.t2.series, k)
    on_t2 = ROI(L5S, Polygon(t2_plane.patient_to_pixel(key.patient_outline())), t2_plane)
    # ... and L4 inferior on the T1 two slices away
    k1 = int(study.t1.geometry.nearest_slice(np.asarray(key.image.position)[None, :])[0][0])
    key_l4 = case.key_roi(L4I)
    assert key_l4 is not None
    away = ROI(L4I, key_l4.shape, ImagePlane.from_series(study.t1.series, k1 + 2))
    answer = TraineeAnswer(Annotations([on_t2, away]), types={"L5 superior": "2", "L4 inferior": "1"})
    g = grade(case, answer, study)
    assert g.row(L5S).dice == pytest.approx(1.0)
    assert g.row(L4I).dice == 0.0 and "on another slice" in g.row(L4I).roi_note
    assert g.row(L5S).trainee_result_note == "you drew no reference marrow: measured against the key's"
    assert "you drew no reference marrow" in g.to_text()


def test_feedback_figure(authored: Path, answer_file: Path, tmp_path: Path) -> None:
    """Every sequence at the graded level, the trainee's and the key's outlines on each, and
    the voxel-type map (the answer 1/2 is a mixed type)."""
    g = grade(load_case(authored), read_answer(answer_file))
    fig = feedback_figure(g)
    png = tmp_path / "feedback.png"
    fig.savefig(png, dpi=60)
    assert png.stat().st_size > 10_000
    titles = [ax.get_title() for ax in fig.axes]
    # one level (L4/L5 holds both changes), T1, T2 and STIR side by side, then the voxel map
    assert [t.split(" · ")[:2] for t in titles] == [["L4/L5", "T1"], ["L4/L5", "T2"], ["L4/L5", "STIR"],
                                                   ["L4/L5", "voxel types in the key's ROI"]]  # fmt: skip
    first = {t.get_text() for t in fig.axes[0].texts}
    assert {"key L4 inf: 1 (B)", "key L5 sup: 2", "you L5 sup: 2 · Dice 1.00"} <= first
    assert f"you L4 inf: 1/2 · Dice {g.row(L4I).dice:.2f}" in first
    for ax in fig.axes[:3]:  # each sequence shows both outlines of both endplates: 2 key + 2 yours
        styles = [line.get_linestyle() for line in ax.lines]
        assert styles.count("-.") >= 2 and styles.count("-") >= 2
    heading = fig.subfigs[0]._suptitle.get_text()
    assert "L4 inferior: you 1/2, key 1 (B) (half credit), Dice" in heading
    (voxel_map,) = [im for im in fig.axes[3].images if im.get_gid() == "modic-voxel-types"]
    assert voxel_map.get_array().shape[-1] == 4


def test_voxel_type_map_agrees_with_the_classifier(authored: Path) -> None:
    """The map's voxel types are the classifier's: over the voxels it keeps, the share of each
    type is the result's fractions; the truth of the sample study is Modic 1 at L4 inferior."""
    from modic.teaching.feedback import voxel_type_map

    case = load_case(authored)
    g = grade(case, TraineeAnswer(types={"L4 inferior": "1"}))
    key = case.key_roi(L4I)
    assert key is not None and g.row(L4I).key_result is not None
    rr, cc, codes = voxel_type_map(g.study, key, case.references())
    assert rr.size == cc.size == codes.size == int(key.pixel_mask().sum())
    kept = codes[codes != 5]
    assert kept.size == rr.size - g.row(L4I).key_result.excluded_voxels
    share = {str(c): float(np.mean(kept == c)) for c in range(4)}
    assert share["1"] > 0.5
    for c in "0123":
        assert share[c] == pytest.approx(g.row(L4I).key_result.fractions[c], abs=0.02)


def test_shape_disagreement_in_words() -> None:
    """On a sagittal plane of 1 mm pixels (image y towards the feet), an L4 inferior band
    5 mm tall and 30 mm long whose disc-side edge (the endplate) is at y = 35."""
    plane = ImagePlane("1.2", "1.2.3", 1, 64, 64, (0, 0, 0), (0, 1, 0, 0, 0, -1), (1.0, 1.0))
    band = ROI(L4I, Rectangle(10, 30, 40, 35), plane)

    def said(x0: float, y0: float, x1: float, y1: float, label: RoiLabel = L4I) -> str:
        return shape_disagreement(ROI(label, Rectangle(x0, y0, x1, y1), plane), band)

    assert said(10, 30, 40, 35) == ""  # the same band
    assert said(10, 21, 40, 35) == "your ROI is 14 mm tall; the expected band is 5 mm next to the endplate"
    assert said(10, 34, 40, 35) == "your ROI is 1 mm tall; the expected band is 5 mm"
    assert said(10, 24, 40, 29) == "its edge lies 6 mm from the endplate (the band starts at the endplate)"
    assert said(10, 33, 40, 38) == "it reaches 3 mm past the endplate, into the disc"
    assert said(10, 30, 20, 35) == "it covers 10 mm of the band's 30 mm along the endplate"
    assert said(20, 30, 50, 35) == "it is shifted 10 mm along the endplate from the band"
    # a superior endplate has its disc towards the head: the same band's endplate is at y = 30
    l5s = RoiLabel.parse("L5 superior")
    band = ROI(l5s, Rectangle(10, 30, 40, 35), plane)
    assert (
        said(10, 36, 40, 41, l5s) == "its edge lies 6 mm from the endplate (the band starts at the endplate)"
    )


def test_low_dice_is_explained_in_the_grade(authored: Path) -> None:
    case = load_case(authored)
    key = case.key_roi(L4I)
    assert key is not None
    rr, cc = np.nonzero(key.pixel_mask())
    tall = ROI(L4I, Rectangle(cc.min(), rr.min() - 20, cc.max() + 1, rr.max() + 1), key.image)
    g = grade(case, TraineeAnswer(Annotations([tall]), types={"L4 inferior": "1"}))
    row = g.row(L4I)
    assert row.dice is not None and row.dice < 0.5
    assert row.shape_note.startswith("your ROI is ") and "the expected band is" in row.shape_note
    assert f"why: {row.shape_note[:40]}" in " ".join(g.to_text(width=400).split())
    assert "shift+P (propose) draws such bands" in " ".join(g.to_text().split())
    assert g.to_dict()["endplates"][list(case.key).index(L4I)]["roi_shape"] == row.shape_note
    # a matching ROI gets no shape note
    same = grade(
        case, TraineeAnswer(Annotations([ROI(L4I, key.shape, key.image)]), types={"L4 inferior": "1"})
    )
    assert same.row(L4I).shape_note == "" and "Tip:" not in same.to_text()


# ----------------------------------------------------------------------------------------
# summary: kappa by hand
# ----------------------------------------------------------------------------------------
def _record(trainee: str, case: str, time: str, pairs: list[tuple[str | None, str]]) -> dict[str, Any]:
    endplates = [
        {
            "endplate": f"L{i + 1} inferior",
            "in_key": True,
            "key": key,
            "answer": answer,
            "credit": 0.0 if answer is None else type_credit(answer, key),
            "dice": None,
            "roi_match": None,
        }
        for i, (answer, key) in enumerate(pairs)
    ]
    score = sum(e["credit"] for e in endplates) / len(endplates)
    return {"attempt": f"{trainee}-{time}", "time": time, "trainee": trainee, "case": case, "score": score,
            "case_title": case.upper(), "endplates": endplates}  # fmt: skip


def test_summary_kappa_against_a_hand_computed_example(tmp_path: Path) -> None:
    assert cohen_kappa(["0", "0", "1", "2"], ["0", "0", "1", "1"]) == pytest.approx(0.6)
    assert cohen_kappa(["0", "0"], ["0", "0"]) is None and cohen_kappa([], []) is None
    log = [
        # ann, first attempts: (answer, key) pairs
        _record("ann", "c1", "2026-01-01T10:00:00Z", [("0", "0"), ("0", "0"), ("1", "1"), ("1/2", "1")]),
        _record("ann", "c2", "2026-01-01T11:00:00Z", [("0", "0"), ("2", "2"), ("0", "2"), (None, "3")]),
        # ann again at c1 after seeing the key: not in the kappa, in the mean score
        _record("ann", "c1", "2026-01-02T10:00:00Z", [("0", "0"), ("0", "0"), ("1", "1"), ("1", "1")]),
        _record("ben", "c1", "2026-01-01T12:00:00Z", [("0", "0"), ("1", "0"), ("2", "1"), ("1", "1")]),
    ]
    path = tmp_path / "attempts.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in log))
    s = summary(tmp_path)
    ann, ben = s.trainees
    # ann: answers 0 0 1 1/2 0 2 0 against keys 0 0 1 1 0 2 2 (the unanswered L4 left out):
    # p_o = 5/7; answer counts 0:4 1:1 1/2:1 2:1, key counts 0:3 1:2 2:2 -> p_e = (12 + 2 + 2)/49
    p_o, p_e = 5 / 7, 16 / 49
    assert ann.kappa == pytest.approx((p_o - p_e) / (1 - p_e)) == pytest.approx(19 / 33)
    assert (ann.attempts, ann.cases, ann.n_kappa, ann.n_missed) == (3, 2, 7, 1)
    assert ann.first_score == pytest.approx((3.5 / 4 + 2 / 4) / 2)
    assert ann.mean_score == pytest.approx((3.5 / 4 + 2 / 4 + 1) / 3)
    # 7 endplates with 4 changes: too few to compare with the expert range
    assert ann.versus_experts == "too few" and "too uncertain" in ann.warning
    assert ann.n_changes == 4 and ann.kappa_ci is not None
    # recall by key type over the first attempts, the unanswered type 3 included
    assert ann.recall == {"0": (3, 3), "1": (1, 2), "2": (1, 2), "3": (0, 1)}
    # ben: 0 1 2 1 against 0 0 1 1: p_o = 2/4, p_e = (1*2 + 2*2 + 1*0)/16
    assert ben.kappa == pytest.approx((0.5 - 6 / 16) / (1 - 6 / 16)) and ben.versus_experts == "too few"
    # the cases and endplates most often missed
    assert [c.case for c in s.cases] == ["c2", "c1"]
    top = s.endplates[0]
    assert (top.case, top.endplate, top.missed, top.graded) == ("c2", "L3 inferior", 1, 1)
    c1_l3 = next(e for e in s.endplates if (e.case, e.endplate) == ("c1", "L3 inferior"))
    assert (c1_l3.missed, c1_l3.graded, c1_l3.wrong_answers) == (1, 3, {"2": 1})
    text = s.to_text()
    assert "kappa 0.56-0.74 (Fayad 2009); 0.59 (Carrino 2009)" in text
    assert "0.58 [" in text and "(7, 4)" in text and "too few" in text
    assert (
        "Found, by the key's type (ann): normal: 3 of 3, type 1: 1 of 2, type 2: 1 of 2, type 3: 0 of 1"
        in text
    )
    assert "Warning: ann: kappa over 7 endplates with 4 Modic changes in the keys is too uncertain" in text
    assert summary(log).to_dict() == s.to_dict()


def test_kappa_interval_by_hand() -> None:
    """Fleiss, Cohen & Everitt (1969) in its (1 - kappa) form, computed by hand:
    A = 0 0 1 1, B = 0 0 1 0: p_o 3/4, p_e 1/2, kappa 1/2; row shares .5 .5, column .75 .25;
    sum_i p_ii [1 - (p_i. + p_.i)(1 - k)]^2 = .5 (1 - 1.25 * .5)^2 + .25 (1 - .75 * .5)^2
    = 0.16796875; (1 - k)^2 sum_{i!=j} p_ij (p_.i + p_j.)^2 = .25 * .25 (.25 + .5)^2 = 0.03515625;
    [k - p_e (1 - k)]^2 = 0.0625; var = (0.16796875 + 0.03515625 - 0.0625) / (4 * .25) = 0.140625."""
    se, lo, hi = kappa_interval(["0", "0", "1", "1"], ["0", "0", "1", "0"]) or (0, 0, 0)
    assert se == pytest.approx(0.375)
    assert lo == pytest.approx(0.5 - 1.96 * 0.375, abs=1e-3) and hi == 1.0  # clipped
    assert kappa_interval(["0", "0"], ["0", "0"]) is None
    # perfect agreement over several labels: no spread
    assert kappa_interval(["0", "1", "2"], ["0", "1", "2"]) == pytest.approx((0.0, 1.0, 1.0))


def test_summary_compares_with_experts_only_over_enough_endplates_and_changes(tmp_path: Path) -> None:
    # 40 endplates, 10 changes; 36 agree: the 4 disagreements are 1 <-> 2 swaps
    pairs = [("0", "0")] * 30 + [("1", "1")] * 3 + [("2", "2")] * 3 + [("2", "1"), ("1", "2")] * 2
    cases = [pairs[i : i + 10] for i in range(0, 40, 10)]
    log = [_record("eve", f"c{i}", f"2026-01-0{i + 1}T10:00:00Z", p) for i, p in enumerate(cases)]
    eve = summary(log).trainees[0]
    # p_o = 36/40; answers and keys both 0:30 1:5 2:5 -> p_e = (900 + 25 + 25)/1600
    p_o, p_e = 36 / 40, 950 / 1600
    assert eve.kappa == pytest.approx((p_o - p_e) / (1 - p_e))
    assert (eve.n_kappa, eve.n_changes, eve.too_few, eve.warning) == (40, 10, False, "")
    assert eve.versus_experts == "above"  # 0.75
    assert eve.recall == {"0": (30, 30), "1": (3, 5), "2": (3, 5)}
    lo, hi = eve.kappa_ci or (0, 0)
    assert lo < eve.kappa < hi and 0.1 < hi - lo < 0.6


def test_summary_command(tmp_path: Path, home: dict[str, str]) -> None:
    r = run("summary", "--log-dir", str(tmp_path), env=home)
    assert r.returncode == 0 and "No attempts logged" in r.stdout
    (tmp_path / "attempts.jsonl").write_text(
        json.dumps(_record("ann", "c1", "2026-01-01T10:00:00Z", [("0", "0"), ("1", "1"), ("2", "1")])) + "\n"
    )
    r = run("summary", "--log-dir", str(tmp_path), "--json", env=home)
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["expert_kappa_range"] == [0.56, 0.74]
    assert d["trainees"][0]["kappa"] == pytest.approx(0.5)  # p_o 2/3, p_e (1 + 2)/9
    assert d["most_missed"][0]["endplate"] == "L3 inferior"


def test_default_log_dir_is_per_user(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("MODIC_TEACHING_LOG", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    if sys.platform.startswith("linux"):
        assert default_log_dir() == tmp_path / "modic" / "teaching"
    monkeypatch.setenv("MODIC_TEACHING_LOG", str(tmp_path / "x"))
    assert default_log_dir() == tmp_path / "x"


# ----------------------------------------------------------------------------------------
# the shipped cases
# ----------------------------------------------------------------------------------------
def test_shipped_cases_load_and_grade_against_themselves_with_full_marks() -> None:
    folder = shipped_cases_dir()
    assert folder == sample_data_dir() / "teaching"
    cases = list_cases(folder)
    assert tuple(c.id for c in cases) == SHIPPED_CASES
    assert [c.difficulty for c in cases] == ["beginner", "intermediate", "advanced"]
    changes = {c.id: [(str(k.label), k.modic_type.value, k.extent) for k in c.changes()] for c in cases}
    assert changes == {
        "case-01": [("L4 inferior", "1", "B"), ("L5 superior", "2", "A")],
        "case-02": [("L3 inferior", "3", "A"), ("S1 superior", "1/2", "C")],
        "case-03": [("L5 inferior", "1", "C"), ("S1 superior", "2", "B")],
    }
    for case in cases:
        assert case.title and case.history and case.discussion
        assert case.study_ref.startswith("../../")
        answer = TraineeAnswer(case.rois, types={label: k.modic_type for label, k in case.key.items()})
        g = grade(case, answer)
        assert g.score == 1.0, case.id
        assert all(r.dice == 1.0 for r in g.rows), case.id
        # the classifier agrees with the key inside the key's ROIs
        assert all(r.key_result is not None and r.key_result.modic_type is r.key_type for r in g.rows), (
            case.id
        )


def test_shipped_cases_regenerate_byte_for_byte(tmp_path: Path) -> None:
    first, second = tmp_path / "a" / "teaching", tmp_path / "b" / "teaching"
    write_teaching_cases(first)
    write_teaching_cases(second)
    shipped = sample_data_dir() / "teaching"
    files = sorted(p.relative_to(first) for p in first.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(shipped) for p in shipped.rglob("*") if p.is_file())
    assert len(files) == 7  # case.json and key.json of three cases, and a README
    for rel in files:
        assert (first / rel).read_bytes() == (second / rel).read_bytes() == (shipped / rel).read_bytes(), rel
    with pytest.raises(FileExistsError):
        write_teaching_cases(first)
    (first / "case-01" / "case.json").write_text("{}")
    write_teaching_cases(first, overwrite=True)
    assert (first / "case-01" / "case.json").read_bytes() == (shipped / "case-01" / "case.json").read_bytes()


def _spoilers() -> list[str]:
    """The titles and tags of the shipped cases: what a trainee must not see before submitting."""
    cases = list_cases(shipped_cases_dir())
    assert len(cases) == 3
    return [c.title for c in cases] + [t for c in cases for t in _telling_tags(c)]


def _telling_tags(case: Any) -> list[str]:
    """The tags that tell the answer (types, levels); "3 T" is also in the history."""
    return [t for t in case.tags if not re.fullmatch(r"[\d.]+ T", t)]


def test_list_command_shows_no_titles_or_tags_before_an_attempt(tmp_path: Path, home: dict[str, str]) -> None:
    log = tmp_path / "log"
    r = run("list", str(shipped_cases_dir()), "--trainee", "fay", "--log-dir", str(log), env=home)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0] == " 1. case-01  (beginner, 11 endplates)"
    for spoiler in _spoilers():
        assert spoiler not in r.stdout, spoiler
    assert "Titles and tags are shown after your first submitted attempt" in r.stderr
    r = run("list", str(shipped_cases_dir()), "--trainee", "fay", "--log-dir", str(log), "--json", env=home)
    doc = json.loads(r.stdout)
    assert [c["revealed"] for c in doc["cases"]] == [False] * 3
    assert all("title" not in c and "tags" not in c for c in doc["cases"])
    # fay submits case-01: its title and tags (only its own) are shown from then on
    case = load_case(shipped_cases_dir() / "case-01")
    log_attempt(grade(case, TraineeAnswer(types={"L4 inferior": "1"}), trainee="fay"), log)
    r = run("list", str(shipped_cases_dir()), "--trainee", "fay", "--log-dir", str(log), env=home)
    lines = r.stdout.splitlines()
    assert lines[0].startswith(" 1. case-01  Modic 1 vs 2 across one disc: the T1 decides  (beginner")
    assert "best score" in lines[0] and "[type 1, type 2" in lines[0]
    others = "\n".join(lines[1:])
    for spoiler in _spoilers()[1:3]:
        assert spoiler not in others
    # another trainee still sees none; the teacher's --reveal shows all
    r = run("list", str(shipped_cases_dir()), "--trainee", "gus", "--log-dir", str(log), env=home)
    assert "Modic 1 vs 2" not in r.stdout
    r = run("list", str(shipped_cases_dir()), "--reveal", "--log-dir", str(log), "--json", env=home)
    assert [c["title"] for c in json.loads(r.stdout)["cases"]] == _spoilers()[:3]


def test_shipped_case_ids_give_nothing_away() -> None:
    """The id is shown before the read (list, run, the draft's file name in the annotator):
    no word of it may be a word of the title, a telling tag or the discussion. (The ids up to
    2026-12, "t1-decides", "sclerosis-and-mixed", "fat-saturated-t2", each failed this.)"""
    for case in list_cases(shipped_cases_dir()):
        told = " ".join([case.title, *_telling_tags(case), case.discussion]).lower()
        words = set(re.findall(r"[a-z0-9]+", told))
        assert not set(re.findall(r"[a-z0-9]+", case.id)) & words, case.id
        assert set(re.findall(r"[a-z0-9]+", case.former_ids[0])) & words, case.former_ids  # the check bites


def _old_record(case: Any, trainee: str, old_id: str) -> dict[str, Any]:
    """An attempt record as a modic before the rename logged it: the case under ``old_id``."""
    from modic.teaching.log import attempt_record

    types = {str(label): k.modic_type.value for label, k in case.key.items()}
    record = attempt_record(grade(case, TraineeAnswer(types=types), trainee=trainee))
    record["case"] = old_id
    return record


def test_an_old_log_under_the_former_ids_still_counts(tmp_path: Path, home: dict[str, str]) -> None:
    """A trainee's log written before the shipped cases were renamed: its attempts reveal the
    case in the listing, give its best score, and count in the summary under the new id;
    the log file itself is not touched."""
    case = load_case(shipped_cases_dir() / "case-02")
    assert case.former_ids == ("sclerosis-and-mixed",)
    log = tmp_path / "log"
    log.mkdir()
    jsonl = log / "attempts.jsonl"
    jsonl.write_text(json.dumps(_old_record(case, "fay", "sclerosis-and-mixed")) + "\n")
    before = jsonl.read_bytes()
    r = run("list", str(shipped_cases_dir()), "--trainee", "fay", "--log-dir", str(log), env=home)
    assert r.returncode == 0, r.stderr
    line = r.stdout.splitlines()[1]
    assert line.startswith(f" 2. case-02  {case.title}  (intermediate") and "best score 100%" in line
    assert "sclerosis" not in r.stdout.splitlines()[0] + r.stdout.splitlines()[2]
    assert read_attempts(log)[0]["case"] == "case-02"
    log_attempt(grade(case, TraineeAnswer(types={"L3 inferior": "3"}), trainee="fay"), log)
    s = summary(log)
    assert [(c.case, c.attempts) for c in s.cases] == [("case-02", 2)]
    assert s.trainees[0].cases == 1  # one case, not two: the first attempt is the old one
    assert s.trainees[0].first_score == 1.0
    assert jsonl.read_bytes().startswith(before)  # appended to, never rewritten
    # records passed in directly are read the same way; an explicit map replaces the default
    assert summary([_old_record(case, "gus", "sclerosis-and-mixed")]).cases[0].case == "case-02"
    assert summary([_old_record(case, "gus", "sclerosis-and-mixed")], renamed={}).cases[0].case == (
        "sclerosis-and-mixed"
    )


def test_an_answer_and_run_under_a_former_id_find_the_case(tmp_path: Path, home: dict[str, str]) -> None:
    case = load_case(shipped_cases_dir() / "case-01")
    g = grade(case, TraineeAnswer(types={"L4 inferior": "1"}, case_id="t1-decides"))
    assert g.case is case and g.to_dict()["case"] == "case-01"
    r = run(
        "run",
        str(shipped_cases_dir()),
        "--case",
        "t1-decides",
        "--trainee",
        "dan",
        "--log-dir",
        str(tmp_path),
        env=home,
    )
    assert r.returncode == 1 and "Case case-01 (beginner, 11 endplates)" in r.stdout, r.stderr


def test_a_draft_under_a_former_id_is_resumed(tmp_path: Path) -> None:
    """A draft autosaved before the rename (``drafts/TRAINEE/OLD.rois.json`` and
    ``OLD.types.json``) is renamed to the case's id and resumed, its content unchanged."""
    case = load_case(shipped_cases_dir() / "case-01")
    log = tmp_path / "log"
    folder = log / "drafts" / "hana"
    folder.mkdir(parents=True)
    key_l4 = case.key_roi(L4I)
    assert key_l4 is not None
    from modic.annotations import write_annotations

    old_rois, old_types = folder / "t1-decides.rois.json", folder / "t1-decides.types.json"
    write_annotations(Annotations(rois=[ROI(L4I, key_l4.shape, key_l4.image)]), old_rois)
    old_types.write_text(json.dumps({"L4 inferior": "1"}))
    types_bytes = old_types.read_bytes()
    session = TeachingSession(case, "hana", log).start()
    rois_path, types_path = session.draft_paths
    assert rois_path.name == "case-01.rois.json" and not old_rois.exists() and not old_types.exists()
    assert types_path.read_bytes() == types_bytes
    assert session.sheet is not None and session.sheet.types == {L4I: ModicType.TYPE1}
    assert session.annotator is not None and len(session.annotator.annotations) == 1
    assert session.resumed.startswith("Resumed your draft of ")
    session.close()


def test_former_ids_clash_and_stale_shipped_folders(tmp_path: Path) -> None:
    """Two cases may not share an id or a former id; writing the shipped cases removes a
    folder an older modic wrote under a former id, and keeps anything else."""
    out = tmp_path / "teaching"
    write_teaching_cases(out)
    for case_file in out.glob("*/case.json"):  # the studies, linked as in sample_data
        study = json.loads(case_file.read_text())["study"]["path"]
        (tmp_path / Path(study).name).symlink_to(sample_study_path(Path(study).name))
    stale, kept = out / "t1-decides", out / "sclerosis-and-mixed"
    shutil.copytree(out / "case-01", stale)
    _edit(stale, "case.json", lambda d: (d.update(id="t1-decides", version="1.0"), d.pop("former_ids")))
    with pytest.raises(TeachingFormatError, match="case id 't1-decides' is also used by"):
        list_cases(out)
    shutil.copytree(out / "case-02", kept)
    _edit(kept, "case.json", lambda d: (d.update(id="sclerosis-and-mixed"), d.pop("former_ids")))
    (kept / "notes.txt").write_text("my notes")
    write_teaching_cases(out, overwrite=True)
    assert not stale.exists() and (kept / "notes.txt").read_text() == "my notes"


def test_the_answer_sheet_shows_no_spoiler_before_submitting() -> None:
    """The sheet's texts, read back from the figure on Agg: no title or tag before Submit,
    both after; the instructions say where the annotator is."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    case = load_case(shipped_cases_dir() / "case-02")
    closed: list[AnswerSheet] = []
    sheet = AnswerSheet(case, where="notebook", on_close=closed.append, notice="Resumed your draft")
    FigureCanvasAgg(sheet.figure)
    sheet.figure.canvas.draw()
    before = "\n".join(sheet.texts())
    assert case.title not in before
    prose = "\n".join(t.get_text() for t in sheet.figure.texts)  # header, history, instructions
    # the table's column heads are "type 1" ...: tags are looked for in the prose
    for tag in _telling_tags(case):
        assert tag not in prose, tag
    assert "Blind read: an intermediate case, 11 endplates" in before
    assert "Above, in the annotator: draw an ROI" in before and "In the annotator window" not in before
    assert "Resumed your draft" in before and "Close" in sheet.texts()
    sheet.reveal(grade(case, TraineeAnswer(types={"L3 inferior": "3"})))
    after = "\n".join(sheet.texts())
    assert case.title in after and all(tag in after for tag in case.tags)
    assert "Done" in sheet.texts() and "Resumed your draft" not in after
    _press(sheet.figure, sheet.close_button_ax)
    assert closed == [sheet]
    with pytest.raises(ValueError, match="where must be one of"):
        AnswerSheet(case, where="elsewhere")


# ----------------------------------------------------------------------------------------
# bad bundles and answers: errors name the file and the field
# ----------------------------------------------------------------------------------------
@pytest.fixture
def linked_case(tmp_path: Path) -> Path:
    """A copy of a shipped case's files whose study link points at the sample study."""
    folder = tmp_path / "case"
    shutil.copytree(shipped_cases_dir() / "case-01", folder)
    doc = json.loads((folder / "case.json").read_text())
    doc["study"]["path"] = os.path.relpath(sample_study_path(STUDY), folder)
    (folder / "case.json").write_text(json.dumps(doc))
    assert load_case(folder).id == "case-01"
    return folder


def _edit(folder: Path, name: str, change: Any) -> None:
    doc = json.loads((folder / name).read_text())
    change(doc)
    (folder / name).write_text(json.dumps(doc))


BAD_CASES = [
    (
        "case.json",
        lambda d: d["key"]["L4 inferior"].update(type="4"),
        "key['L4 inferior'].type: unknown Modic type '4'",
    ),
    (
        "case.json",
        lambda d: d["key"]["L1 superior"].update(extent="B"),
        "key['L1 superior'].extent: an extent needs",
    ),
    (
        "case.json",
        lambda d: d["key"]["L4 inferior"].update(extent="D"),
        "key['L4 inferior'].extent: expected a Udby",
    ),
    ("case.json", lambda d: d.pop("title"), "case.json: title: required field is missing"),
    ("case.json", lambda d: d.update(difficulty="hard"), "case.json: difficulty: expected one of beginner"),
    (
        "case.json",
        lambda d: d.update(format="modic-annotations"),
        "case.json: format: expected 'modic-teaching-case'",
    ),
    ("case.json", lambda d: d.update(version="2.0"), "case.json: version: version '2.0' is not supported"),
    ("case.json", lambda d: d.update(colour="red"), "case.json: colour: unknown field"),
    (
        "case.json",
        lambda d: d["study"].update(path="../nowhere"),
        "case.json: study.path: no study folder at",
    ),
    (
        "case.json",
        lambda d: d["key"].update({"L4 ref": {"type": "0"}}),
        "key['L4 ref']: 'L4 reference' is not an endplate",
    ),
    (
        "case.json",
        lambda d: d["key"].pop("L3 inferior"),
        "case.json: key: key.json: rois[8] is an ROI of L3 inferior",
    ),
    ("case.json", lambda d: d.update(id="Bad Id"), "case.json: id: a case id is"),
    ("case.json", lambda d: d.update(former_ids="t1-decides"), "case.json: former_ids: expected an array"),
    ("case.json", lambda d: d.update(former_ids=["case-01"]), "former_ids[0]: expected an earlier id"),
    ("case.json", lambda d: d.update(former_ids=["Old Id"]), "former_ids[0]: expected an earlier id"),
    (
        "key.json",
        lambda d: d["rois"][0]["shape"].update(points=[[1, 1], [2, 2]]),
        "key.json: rois[0].shape.points",
    ),
    (
        "key.json",
        lambda d: d["rois"].append(dict(d["rois"][0], id="x")),
        "key.json: rois[17].label: a second ROI for L1",
    ),
]


@pytest.mark.parametrize(("name", "change", "message"), BAD_CASES)
def test_bad_bundles_name_the_file_and_the_field(
    linked_case: Path, name: str, change: Any, message: str
) -> None:
    _edit(linked_case, name, change)
    with pytest.raises(TeachingFormatError) as info:
        load_case(linked_case)
    assert message in str(info.value)
    assert str(linked_case / name) in str(info.value)


def test_broken_json_and_missing_files(linked_case: Path, home: dict[str, str]) -> None:
    (linked_case / "case.json").write_text('{"format": "modic-teaching-case",\n "version": }')
    with pytest.raises(TeachingFormatError, match=r"case\.json: invalid JSON at line 2, column 13"):
        load_case(linked_case)
    r = run("grade", str(linked_case), "--answer", str(linked_case / "x.json"), "--no-log", env=home)
    assert r.returncode == 1 and "case.json: invalid JSON at line 2" in r.stderr
    (linked_case / "key.json").unlink()
    (linked_case / "case.json").unlink()
    with pytest.raises(FileNotFoundError, match="case.json: no such file"):
        load_case(linked_case)
    errors: list[tuple[Path, str]] = []
    assert list_cases(linked_case.parent, errors=errors) == [] and errors == []


def test_bad_answers_name_the_file_and_the_field(tmp_path: Path) -> None:
    case = load_case(shipped_cases_dir() / "case-01")
    good = TraineeAnswer(types={"L4 inferior": "1"}, case_id="case-01").to_dict()
    bad = {
        "types": ({**good, "types": {"L4 inferior": "4"}}, "types['L4 inferior']: unknown Modic type '4'"),
        "label": ({**good, "types": {"L9 inferior": "1"}}, "types['L9 inferior']: cannot read 'L9 inferior'"),
        "extent": ({**good, "extents": {"L4i": "E"}}, "extents['L4i']: expected a Udby grade"),
        "format": ({**good, "format": "x"}, "format: expected 'modic-teaching-answer'"),
        "rois": (
            {**good, "annotations": {**good["annotations"], "rois": [{"id": "a"}]}},
            "annotations.rois[0].label: required field is missing",
        ),
    }
    for what, (doc, message) in bad.items():
        path = tmp_path / f"{what}.json"
        path.write_text(json.dumps(doc))
        with pytest.raises(TeachingFormatError) as info:
            read_answer(path)
        assert str(info.value).startswith(f"{path}: ") and message in str(info.value), what
    other = TraineeAnswer(types={"L4 inferior": "1"}, case_id="case-02")
    with pytest.raises(TeachingFormatError, match="case: the answer is for case 'case-02'"):
        grade(case, other)
    # an answer may keep its ROIs in the annotation file the annotator saved, beside it
    ann = tmp_path / "rois.modic-draft.json"
    shutil.copy(shipped_cases_dir() / "case-01" / "key.json", ann)
    (tmp_path / "by-path.json").write_text(json.dumps({**good, "annotations": ann.name}))
    assert len(read_answer(tmp_path / "by-path.json").annotations) == 17


# ----------------------------------------------------------------------------------------
# the answer sheet, driven with real events on Agg
# ----------------------------------------------------------------------------------------
def _click(sheet: AnswerSheet, label: str, modic_type: str) -> None:
    x, y = sheet.ax.transData.transform(sheet.cell_centre(label, modic_type))
    canvas = sheet.figure.canvas
    canvas.callbacks.process("button_press_event", MouseEvent("button_press_event", canvas, x, y, button=1))


def test_answer_sheet_clicks_keys_submit_and_reveal() -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    case = load_case(shipped_cases_dir() / "case-01")
    submitted: list[dict[RoiLabel, ModicType]] = []
    sheet = AnswerSheet(case, types={"L1 superior": "0"}, on_submit=lambda s: submitted.append(dict(s.types)))
    FigureCanvasAgg(sheet.figure)
    _click(sheet, "L4 inferior", "1/2")
    _click(sheet, "L5 superior", "2")
    _click(sheet, "L5 superior", "2")  # a second click clears
    assert {str(k): v.value for k, v in sheet.types.items()} == {"L1 superior": "0", "L4 inferior": "1/2"}
    canvas = sheet.figure.canvas
    canvas.callbacks.process("key_press_event", KeyEvent("key_press_event", canvas, "down"))
    canvas.callbacks.process("key_press_event", KeyEvent("key_press_event", canvas, "3"))
    # the keys act on the current row: the last one clicked (L5 superior), then one down
    assert sheet.types[RoiLabel.parse("L5 inferior")] is ModicType.TYPE3
    with pytest.raises(ValueError, match="not on the answer sheet"):
        sheet.set_type("T12 superior", "1")
    sheet.submit()
    assert len(submitted) == 1 and len(submitted[0]) == 3
    g = grade(case, TraineeAnswer(types=sheet.types))
    sheet.reveal(g)
    assert sheet.button.label.get_text() == f"Score {g.score:.0%}"
    with pytest.raises(ValueError, match="submitted"):
        sheet.set_type("L4i", "1")
    texts = {t.get_text() for t in sheet.ax.texts}
    assert {"key", "credit", "Dice", "0.5"} <= texts


# ----------------------------------------------------------------------------------------
# the notebook session around the annotator, driven on Agg (no window)
# ----------------------------------------------------------------------------------------
def _press(fig: Any, ax: Any) -> None:
    canvas = fig.canvas
    bbox = ax.get_window_extent()
    x, y = (bbox.x0 + bbox.x1) / 2, (bbox.y0 + bbox.y1) / 2
    for name in ("button_press_event", "button_release_event"):
        canvas.callbacks.process(name, MouseEvent(name, canvas, x, y, button=1))


def _press_button(sheet: AnswerSheet) -> None:
    _press(sheet.figure, sheet.button_ax)


def test_teaching_session_start_draw_commit_submit_feedback(tmp_path: Path) -> None:
    case = load_case(shipped_cases_dir() / "case-01")
    log = tmp_path / "log"
    graded: list[Any] = []
    session = TeachingSession(case, "carol", log, on_submit=graded.append).start()
    ann, sheet = session.annotator, session.sheet
    assert ann is not None and sheet is not None
    assert ann.show_results is False  # trainee mode: no classifier results while reading
    key_l4 = case.key_roi(L4I)
    assert key_l4 is not None
    ann.add_roi(ROI(L4I, key_l4.shape, key_l4.image))  # drawn exactly where the expert drew
    _click(sheet, "L4 inferior", "1")
    rois_draft, types_draft = session.draft_paths
    assert rois_draft.parent == log / "drafts" / "carol"
    assert len(read_annotations(rois_draft)) == 1
    assert json.loads(types_draft.read_text()) == {"L4 inferior": "1"}
    assert session.resumed == ""  # nothing to resume the first time
    # an interrupted attempt resumes from the drafts, and says so on the sheet
    again = TeachingSession(case, "carol", log, study=session.study).start()
    assert again.sheet is not None and again.sheet.types == sheet.types
    assert again.annotator is not None and len(again.annotator.annotations) == 1
    assert re.fullmatch(r"Resumed your draft of \d{4}-\d\d-\d\d \d\d:\d\d UTC: 1 ROI, 1 type", again.resumed)
    assert again.resumed in again.sheet.texts()
    # no title, tag or case id in the sheet's texts before submitting (the id names the change here)
    assert case.title not in "\n".join(again.sheet.texts())
    for tag in _telling_tags(case):
        assert tag not in "\n".join(t.get_text() for t in again.sheet.figure.texts)
    _press(again.sheet.figure, again.sheet.close_button_ax)  # Close: the draft is kept
    assert rois_draft.exists() and types_draft.exists()
    for label in case.key:
        if label not in sheet.types:
            session.set_type(str(label), "0")
    session.set_type("L5 superior", "2")
    _press_button(sheet)  # Submit
    g = session.grade
    assert g is not None and graded == [g] and g.trainee == "carol"
    assert g.score == 1.0 and g.row(L4I).dice == 1.0
    # the key is revealed: overlaid on the annotator, results shown, on the sheet
    assert ann.show_results is True and len(ann.overlay_results) == 1
    assert sheet.submitted and sheet.button.label.get_text() == "Score 100%"
    assert session.feedback is not None
    session.feedback.savefig(tmp_path / "feedback.png", dpi=50)
    assert [r["trainee"] for r in read_attempts(log)] == ["carol"]
    assert not rois_draft.exists() and not types_draft.exists()
    assert session.submit() is g  # once
    session.close()
    with pytest.raises(ValueError, match="inside the case folder"):
        TeachingSession(load_case_copy(tmp_path), "carol", tmp_path / "copy" / "log")


def load_case_copy(tmp_path: Path) -> Any:
    folder = tmp_path / "copy"
    shutil.copytree(shipped_cases_dir() / "case-01", folder)
    _edit(
        folder,
        "case.json",
        lambda d: d["study"].update(path=os.path.relpath(sample_study_path(STUDY), folder)),
    )
    return load_case(folder)


def test_run_command_without_a_window(tmp_path: Path, home: dict[str, str]) -> None:
    cases = str(shipped_cases_dir())
    r = run("run", cases, "--trainee", "dan", "--log-dir", str(tmp_path), env=home)
    assert r.returncode == 2 and "case-01" in r.stdout and "choose a case with --case" in r.stderr
    r = run("run", cases, "--case", "case-01", "--trainee", "dan", "--log-dir", str(tmp_path), env=home)
    assert r.returncode == 1, r.stderr
    assert "History: 48-year-old" in r.stdout and "Not submitted" in r.stdout
    assert "Case case-01 (beginner, 11 endplates)" in r.stdout
    for spoiler in _spoilers():  # neither in the listing nor before the read
        assert spoiler not in r.stdout, spoiler
    r = run("run", cases, "--case", "case-01", "--log-dir", str(Path(cases) / "log"), env=home)
    assert r.returncode == 1 and "inside the case folder" in r.stderr
    assert not (Path(cases) / "log").exists()


REAL_TYPES = "choose one of 0, 1, 2, 3, 1/2, 2/3"


@pytest.mark.parametrize(
    "value", ["indeterminate", "Indeterminate", " type indeterminate", ModicType.INDETERMINATE]
)
def test_indeterminate_is_never_an_answer_or_a_key(value: object) -> None:
    from modic.teaching.case import parse_modic_type

    with pytest.raises(TeachingFormatError) as info:
        parse_modic_type(value, "answer")
    message = str(info.value)
    assert message.startswith("answer: 'indeterminate' is the classifier's") and message.endswith(REAL_TYPES)


def test_indeterminate_is_refused_in_answer_files_keys_and_the_sheet(
    linked_case: Path, tmp_path: Path
) -> None:
    case = load_case(linked_case)
    good = TraineeAnswer(types={"L4 inferior": "1"}, case_id=case.id).to_dict()
    path = tmp_path / "answer.json"
    path.write_text(json.dumps({**good, "types": {"L4 inferior": "indeterminate"}}))
    with pytest.raises(TeachingFormatError) as info:
        read_answer(path)
    assert str(info.value).startswith(f"{path}: types['L4 inferior']: 'indeterminate' is the classifier's")
    assert str(info.value).endswith(REAL_TYPES)
    _edit(linked_case, "case.json", lambda d: d["key"]["L4 inferior"].update(type="indeterminate"))
    with pytest.raises(TeachingFormatError) as info:
        load_case(linked_case)
    assert "case.json: key['L4 inferior'].type: 'indeterminate' is the classifier's" in str(info.value)
    sheet = AnswerSheet(case)
    with pytest.raises(TeachingFormatError, match="not a reading"):
        sheet.set_type("L4 inferior", "indeterminate")
    assert ModicType.INDETERMINATE not in sheet.types.values()


def test_an_indeterminate_classifier_result_is_shown_with_its_reason(
    authored: Path, answer_file: Path, tmp_path: Path
) -> None:
    """The classifier's own call inside the key's or the trainee's ROI may be indeterminate:
    the grade, its JSON, its text, the feedback figure and the revealed sheet show it."""
    import dataclasses

    case = load_case(authored)
    g = grade(case, read_answer(answer_file))
    why = "the sequences contradict each other: 55% of the voxels fit no Modic pattern, more than the 35%"
    row = g.row(L4I)
    assert row.key_result is not None and row.trainee_result is not None
    row.key_result = dataclasses.replace(row.key_result, modic_type=ModicType.INDETERMINATE, reason=why)
    row.trainee_result = dataclasses.replace(
        row.trainee_result, modic_type=ModicType.INDETERMINATE, reason=why
    )
    # the grade itself is the key's and the answer's, not the classifier's
    assert (row.credit, row.verdict) == (0.5, "half credit")
    d = {e["endplate"]: e for e in g.to_dict()["endplates"]}["L4 inferior"]
    for side in ("classifier_in_key_roi", "classifier_in_your_roi"):
        assert d[side]["modic_type"] == "indeterminate" and d[side]["reason"] == why
        assert d[side]["explanation"].endswith(f"of L4 reference marrow: indeterminate, {why}")
    json.dumps(d)
    text = g.to_text(width=400)
    assert f"key's ROI: {row.key_result.explanation} (classifier confidence" in text
    assert f"your ROI: {row.trainee_result.explanation} (classifier confidence" in text
    fig = feedback_figure(g)
    png = tmp_path / "feedback-indeterminate.png"
    fig.savefig(png, dpi=60)
    assert png.stat().st_size > 10_000
    sheet = AnswerSheet(case, types=g.answer.types)
    sheet.reveal(g)
    assert {"key", "credit", "Dice", "0.5"} <= {t.get_text() for t in sheet.ax.texts}
