"""``modic batch`` and :mod:`modic.batch`: many annotated studies, in parallel, resumably.

The studies are real DICOM written with pydicom (:mod:`dicomfactory`): a sagittal T1, T2
and STIR on one grid, Gaussian noise around normal-marrow signal, and a block of changed
signal under the L4 inferior endplate whose T1/T2/STIR pattern is that of a known Modic
type. The annotations are made with :mod:`modic.annotations`: two endplate polygons and
two reference rectangles on the middle T1 slice.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import pickle
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from dicomfactory import SAGITTAL, VENDORS, write_series
from pydicom import dcmread
from pydicom.uid import generate_uid

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
from modic.batch import (
    IDENTIFIER_FIELDS,
    SHARD_DIR,
    BatchProgress,
    OutputFolderError,
    find_jobs,
    run_batch,
    run_job,
)
from modic.cli.batch import ProgressBar
from modic.errors import MissingDependencyError
from modic.reading import classify
from modic.results import RECORD_FIELDS
from modic.series import pseudonym
from modic.study import load_study

PATIENT_NAME = "TEST^PATIENT"  # written by dicomfactory.base_dataset
PATIENT_ID = "TEST-0001"
OUTPUTS = ("results.csv", "results.jsonl", "errors.csv", "summary.json", "levels.csv", "studies.csv")

# T1, T2, STIR signal of the changed block relative to normal marrow, per Modic type
LESION = {"0": (1.0, 1.0, 1.0), "1": (0.6, 1.6, 1.8), "2": (1.5, 1.3, 0.5), "3": (0.5, 0.5, 0.5)}
# T1 iso, T2 dark, STIR bright: a pattern no Modic type has (the classifier's "indeterminate")
LESION["indeterminate"] = (1.0, 0.5, 1.8)
MARROW = (600.0, 400.0, 250.0)
SHAPE = (5, 64, 40)  # slices, rows, columns; 1 mm pixels, 4 mm slices


def write_annotated_study(
    folder: Path, modic_type: str = "1", *, seed: int = 0, extra_rois: tuple[ROI, ...] = ()
) -> str:
    """Write a three-series sagittal study into ``folder`` and its annotations beside it.

    Rows 8-15 x columns 8-31 of every slice hold the change of ``modic_type`` (marked
    "L4 inferior"); rows 36-43 are normal marrow ("L5 superior"); rows 22-33 and 46-57 are
    the L4 and L5 reference rectangles. Returns the StudyInstanceUID.
    """
    rng = np.random.default_rng(seed)
    study_uid = generate_uid(entropy_srcs=[str(folder), str(seed)])
    n, rows, cols = SHAPE
    t1_files: list[Path] = []
    for k, (role, number) in enumerate([("T1", 2), ("T2", 3), ("STIR", 4)]):
        vol = rng.normal(MARROW[k], 15.0, SHAPE)
        vol[:, 8:16, 8:32] *= LESION[modic_type][k]
        files = write_series(
            folder / role,
            np.clip(vol, 1, 4000).astype(np.uint16),
            origin=(8.0, -20.0, 30.0),
            orientation=SAGITTAL,
            pixel_spacing=(1.0, 1.0),
            slice_spacing=4.0,
            study_uid=study_uid,
            series_number=number,
            header=VENDORS["siemens"][role],
        )
        if role == "T1":
            t1_files = files
    ds = dcmread(t1_files[2], stop_before_pixels=True)
    plane = ImagePlane(
        str(ds.SeriesInstanceUID),
        str(ds.SOPInstanceUID),
        1,
        rows,
        cols,
        tuple(float(v) for v in ds.ImagePositionPatient),  # type: ignore[arg-type]
        tuple(float(v) for v in ds.ImageOrientationPatient),  # type: ignore[arg-type]
        (float(ds.PixelSpacing[0]), float(ds.PixelSpacing[1])),
        series_number=2,
        series_description=str(ds.SeriesDescription),
    )
    rois = [
        ROI(RoiLabel.for_endplate("L4", "inferior"), Polygon([(8, 8), (32, 8), (32, 16), (8, 16)]), plane),
        ROI(RoiLabel.for_reference("L4"), Rectangle(8, 22, 32, 34), plane),
        ROI(RoiLabel.for_endplate("L5", "superior"), Polygon([(8, 36), (32, 36), (32, 44), (8, 44)]), plane),
        ROI(RoiLabel.for_reference("L5"), Rectangle(8, 46, 32, 58), plane),
    ]
    rois += [ROI(r.label, r.shape, plane) for r in extra_rois]
    ann = Annotations(rois, study_instance_uid=study_uid, frame_of_reference_uid=str(ds.FrameOfReferenceUID))
    write_annotations(ann, annotation_path_for(folder))
    return study_uid


def off_image_roi() -> ROI:
    """An L3 inferior endplate ROI drawn entirely outside the image: it covers no pixel."""
    plane = ImagePlane("1.2.3", "1.2.3.4", 1, 8, 8, (0.0, 0.0, 0.0), SAGITTAL, (1.0, 1.0))
    return ROI(RoiLabel.for_endplate("L3", "inferior"), Rectangle(100, 100, 110, 110), plane)


# ---------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------
FOUR = {"site-a/case0": "0", "site-a/deep/case1": "1", "site-b/case2": "2", "case3": "3"}


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """Four annotated studies in nested folders; returns (root, {relative folder: uid})."""
    root = tmp_path_factory.mktemp("archive")
    uids = {rel: write_annotated_study(root / rel, t, seed=i) for i, (rel, t) in enumerate(FOUR.items())}
    return root, uids


@pytest.fixture(scope="module")
def six(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Six annotated studies for the resumption tests (copied by each test that edits)."""
    root = tmp_path_factory.mktemp("six")
    for i in range(6):
        write_annotated_study(root / f"g{i % 2}" / f"s{i}", "0123"[i % 4], seed=10 + i)
    return root


def copy_tree(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "modic", *args], capture_output=True, text=True, timeout=timeout
    )


def start(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "modic", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def read_csv(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))))


def tree_digest(root: Path) -> dict[str, tuple[str, int]]:
    """sha256 and mtime_ns of every file under a folder."""
    return {
        p.relative_to(root).as_posix(): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def outputs(outdir: Path) -> dict[str, bytes]:
    return {name: (outdir / name).read_bytes() for name in OUTPUTS}


def all_output_text(outdir: Path) -> str:
    """Every file batch wrote, shards included."""
    return "\n".join(p.read_text(encoding="utf-8") for p in sorted(outdir.rglob("*")) if p.is_file())


def leftovers(outdir: Path) -> list[str]:
    return [p.name for p in outdir.rglob("*.tmp")]


LINE_OK = re.compile(r"^modic: INFO: study (\d+)/(\d+) ok ([0-9a-f]{10}) endplates=(\d+)$", re.M)
LINE_FAILED = re.compile(r"^modic: WARNING: study (\d+)/(\d+) failed (\S+) stage=(\w+): (.*)$", re.M)


# ---------------------------------------------------------------------------------------
# finding the jobs
# ---------------------------------------------------------------------------------------
def test_find_jobs_pairs_annotation_files_with_sibling_folders(tmp_path: Path) -> None:
    root = tmp_path / "root"
    for rel in ("b/case7", "a/x/case1", "case0"):
        (root / rel).mkdir(parents=True)
        (root / f"{rel}.modic.json").write_text("{}")
    (root / "lonely.modic.json").write_text("{}")  # no folder beside it
    (root / "unannotated").mkdir()  # no annotation file: not a job
    (root / "out" / "old").mkdir(parents=True)
    (root / "out" / "old.modic.json").write_text("{}")  # inside OUTDIR: not searched
    jobs = find_jobs(root, outdir=root / "out")
    assert [j.relpath for j in jobs] == [
        "a/x/case1.modic.json",
        "b/case7.modic.json",
        "case0.modic.json",
        "lonely.modic.json",
    ]
    assert jobs[1].study_dir == (root / "b" / "case7").resolve()
    assert jobs[1].study_relpath == "b/case7"
    assert not jobs[3].study_dir.exists()
    assert len({j.shard_name for j in jobs}) == 4
    assert len(find_jobs(root)) == 5  # without OUTDIR everything is searched
    with pytest.raises(FileNotFoundError):
        find_jobs(tmp_path / "nope")


def test_outdir_inside_a_study_folder_is_refused(archive: tuple[Path, dict[str, str]]) -> None:
    root, _ = archive
    before = tree_digest(root)
    with pytest.raises(OutputFolderError, match="inside the study folder"):
        run_batch(root, root / "case3" / "out", workers=1)
    r = run("batch", str(root), "-o", str(root / "site-a" / "case0" / "T1" / "out"))
    assert r.returncode == 2, r.stderr
    assert "never writes into input folders" in r.stderr
    r = run("batch", str(root), "-o", str(root))
    assert r.returncode == 2 and "is the input folder" in r.stderr
    assert tree_digest(root) == before


def test_run_job_returns_plain_picklable_data(archive: tuple[Path, dict[str, str]]) -> None:
    root, uids = archive
    pickle.dumps(run_job)
    ann = root / "case3.modic.json"
    out = run_job(str(ann), str(root / "case3"), str(root), "case3.modic.json")
    assert out == json.loads(json.dumps(out))
    assert pickle.loads(pickle.dumps(out)) == out
    assert out["ok"] and out["study"] == pseudonym(uids["case3"]) and out["errors"] == []
    assert [r["modic_type"] for r in out["records"]] == ["type 3", "type 0"]
    assert list(out["records"][0]) == list(RECORD_FIELDS)
    # the study's measured contrast, once per study, as the Python API gives it
    want = classify(load_study(root / "case3"), read_annotations(ann)).contrast
    assert want is not None and out["contrast"] == want.to_dict()


# ---------------------------------------------------------------------------------------
# the command on good and bad studies
# ---------------------------------------------------------------------------------------
def test_batch_of_four_nested_studies_in_two_workers(
    archive: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    root, uids = archive
    before = tree_digest(root)
    out = tmp_path / "out"
    r = run("batch", str(root), "-o", str(out), "--workers", "2")
    assert r.returncode == 0, r.stderr
    assert tree_digest(root) == before  # inputs untouched

    rows = read_csv(out / "results.csv")
    assert list(rows[0]) == list(RECORD_FIELDS)
    # sorted by annotation path: case3, site-a/case0, site-a/deep/case1, site-b/case2
    order = ["case3", "site-a/case0", "site-a/deep/case1", "site-b/case2"]
    assert [r["study"] for r in rows] == [pseudonym(uids[rel]) for rel in order for _ in range(2)]
    assert [(r["vertebra"], r["endplate"]) for r in rows[:2]] == [("L4", "inferior"), ("L5", "superior")]
    assert [r["modic_type"] for r in rows[::2]] == [f"type {FOUR[rel]}" for rel in order]
    assert all(r["modic_type"] == "type 0" for r in rows[1::2])
    assert read_csv(out / "errors.csv") == []
    assert (out / "errors.csv").read_text() == "study,annotation_file,stage,message\n"

    lines = [json.loads(s) for s in (out / "results.jsonl").read_text().splitlines()]
    assert [(d["study"], d["roi_id"]) for d in lines] == [(r["study"], r["roi_id"]) for r in rows]
    assert lines[2]["ratios"]["T1"]["sir"] == pytest.approx(float(rows[2]["t1_sir"]), abs=1e-4)

    summary = json.loads((out / "summary.json").read_text())
    assert summary["studies"] == {"total": 4, "ok": 4, "failed": 0}
    assert summary["type_counts"] == {
        "type 0": 5,
        "type 1": 1,
        "type 2": 1,
        "type 3": 1,
        "type 1/2": 0,
        "type 2/3": 0,
        "indeterminate": 0,
    }
    # each study's own contrast, by its pseudonymous key, as its endplates carry it
    assert set(summary["contrast"]) == {pseudonym(u) for u in uids.values()}
    assert all(summary["contrast"][d["study"]] == d["contrast"] for d in lines)
    assert all(
        c["fat_suppression"] in ("good", "partial", "poor", None) for c in summary["contrast"].values()
    )
    assert all(set(c["marrow_snr"]) == {"T1", "T2", "STIR"} for c in summary["contrast"].values())
    assert "time" not in json.dumps(summary) and str(tmp_path) not in json.dumps(summary)

    # one parseable line per study on stderr (not a terminal), the report on stdout
    found = LINE_OK.findall(r.stderr)
    assert sorted(int(m[0]) for m in found) == [1, 2, 3, 4]
    assert {m[2] for m in found} == {pseudonym(u) for u in uids.values()}
    assert "4 studies classified, 0 failed" in r.stdout
    assert (
        "type 0: 5, type 1: 1, type 2: 1, type 3: 1, type 1/2: 0, type 2/3: 0, indeterminate: 0" in r.stdout
    )
    assert str(out / "results.csv") in r.stdout

    # pseudonymous unless asked, shards included; no temporary files left
    text = all_output_text(out)
    assert PATIENT_NAME not in text and PATIENT_ID not in text
    assert not any(uid in text for uid in uids.values())
    assert "site-a" not in text
    assert leftovers(out) == []
    assert len(list((out / SHARD_DIR).glob("*.json"))) == 4


def test_failed_studies_become_error_rows_and_the_others_complete(
    archive: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    root = copy_tree(archive[0], tmp_path / "root")
    uids = archive[1]
    for f in (root / "site-b" / "case2").rglob("*"):  # garbage instead of DICOM
        if f.is_file():
            f.write_bytes(b"\x00garbage" * 10)
    shutil.copy(root / "case3.modic.json", root / "site-a" / "ghost.modic.json")  # no ghost/ folder
    bad_roi = write_annotated_study(root / "zz" / "case9", "1", seed=9, extra_rois=(off_image_roi(),))
    out = root / "results"  # OUTDIR inside ROOT is fine: it is not searched
    r = run("batch", str(root), "-o", str(out), "--workers", "2")
    assert r.returncode == 1, r.stderr

    errors = read_csv(out / "errors.csv")
    by_stage = {e["stage"]: e for e in errors}
    assert sorted(by_stage) == ["find", "load", "roi"]
    # the study key from the annotation file's StudyInstanceUID, though its images are garbage
    assert by_stage["load"]["study"] == pseudonym(uids["site-b/case2"])
    assert by_stage["load"]["annotation_file"] == "site-b/case2.modic.json"
    assert "no DICOM images found under site-b/case2" in by_stage["load"]["message"]
    assert by_stage["find"]["study"] == "-"
    assert by_stage["find"]["annotation_file"] == "site-a/ghost.modic.json"
    assert "no study folder site-a/ghost/" in by_stage["find"]["message"]
    assert by_stage["roi"]["study"] == pseudonym(bad_roi)
    assert "L3 inferior" in by_stage["roi"]["message"]
    assert str(root) not in (out / "errors.csv").read_text()  # paths relative to ROOT

    rows = read_csv(out / "results.csv")
    studies = [r["study"] for r in rows]
    assert pseudonym(uids["site-b/case2"]) not in studies
    assert studies.count(pseudonym(bad_roi)) == 2  # its measurable ROIs are classified
    for rel in ("case3", "site-a/case0", "site-a/deep/case1"):
        assert studies.count(pseudonym(uids[rel])) == 2

    summary = json.loads((out / "summary.json").read_text())
    assert summary["studies"] == {"total": 6, "ok": 4, "failed": 2}
    assert summary["errors"] == {"find": 1, "load": 1, "roi": 1}
    failed = {m[2]: m[3] for m in LINE_FAILED.findall(r.stderr)}
    assert failed == {"site-a/ghost.modic.json": "find", "site-b/case2.modic.json": "load"}
    assert "roi_errors=1" in r.stderr
    assert "4 studies classified, 2 failed, 1 ROI not measurable" in r.stdout


def test_no_annotation_files_is_said_and_exits_1(tmp_path: Path) -> None:
    (tmp_path / "root" / "study").mkdir(parents=True)
    r = run("batch", str(tmp_path / "root"), "-o", str(tmp_path / "out"))
    assert r.returncode == 1
    assert "no annotation files" in r.stderr and "modic batch --help" in r.stderr


def test_batch_help_documents_the_layout() -> None:
    r = run("batch", "--help")
    assert r.returncode == 0
    text = " ".join(r.stdout.split())
    assert "NAME.modic.json" in text and "sibling folder NAME/" in text
    assert "--dask ADDRESS" in text and "--workers N" in text
    assert run("batch", "root").returncode == 2  # -o is required
    assert run("batch", "root", "-o", "out", "--workers", "0").returncode == 2


# ---------------------------------------------------------------------------------------
# identifiers
# ---------------------------------------------------------------------------------------
def test_identifiers_only_when_asked(archive: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    root, uids = archive
    out = tmp_path / "out"
    r = run("batch", str(root), "-o", str(out), "--workers", "1", "--include-identifiers")
    assert r.returncode == 0, r.stderr
    rows = read_csv(out / "results.csv")
    assert list(rows[0]) == list(RECORD_FIELDS) + list(IDENTIFIER_FIELDS)
    first = rows[0]
    assert first["study_folder"] == "case3"
    assert first["patient_name"] == PATIENT_NAME and first["patient_id"] == PATIENT_ID
    assert first["study_instance_uid"] == uids["case3"]
    line = json.loads((out / "results.jsonl").read_text().splitlines()[0])
    assert line["patient_id"] == PATIENT_ID and line["study_folder"] == "case3"
    # the same OUTDIR without the option: every study is recomputed and the identifiers go
    r = run("batch", str(root), "-o", str(out), "--workers", "1")
    assert r.returncode == 0 and "4 to compute" in r.stderr
    text = all_output_text(out)
    assert PATIENT_NAME not in text and PATIENT_ID not in text


# ---------------------------------------------------------------------------------------
# resuming
# ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def six_uninterrupted(six: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, float]:
    """The OUTDIR of an uninterrupted batch of :func:`six` (2 workers), and its seconds."""
    reference = tmp_path_factory.mktemp("uninterrupted") / "out"
    t0 = time.monotonic()
    assert run("batch", str(six), "-o", str(reference), "--workers", "2").returncode == 0
    return reference, time.monotonic() - t0


def test_killed_run_resumed_gives_the_same_bytes(
    six: Path, six_uninterrupted: tuple[Path, float], tmp_path: Path
) -> None:
    reference = six_uninterrupted[0]  # the bytes do not depend on the number of workers

    out = tmp_path / "out"
    shards = out / SHARD_DIR
    proc = start("batch", str(six), "-o", str(out), "--workers", "1")
    deadline = time.monotonic() + 60
    while not (shards.is_dir() and any(shards.glob("*.json"))):
        assert proc.poll() is None, "the run ended before its first shard was seen"
        assert time.monotonic() < deadline
        time.sleep(0.002)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    done = len(list(shards.glob("*.json")))
    assert 1 <= done < 6
    assert not (out / "results.csv").exists()  # final files are only written at the end
    for shard in shards.glob("*.json"):  # complete, or not there at all
        json.loads(shard.read_text())

    r = run("batch", str(six), "-o", str(out), "--workers", "1")
    assert r.returncode == 0, r.stderr
    assert f"{6 - done} to compute, {done} up to date" in r.stderr
    assert outputs(out) == outputs(reference)
    assert leftovers(out) == []


def final_files(outdir: Path) -> dict[str, bytes]:
    """Every file under a final name (not a ``*.tmp`` temporary file), shards included."""
    return {
        p.relative_to(outdir).as_posix(): p.read_bytes()
        for p in sorted(outdir.rglob("*"))
        if p.is_file() and not p.name.endswith(".tmp")
    }


def test_killed_at_seeded_random_moments_and_resumed_gives_the_same_bytes(
    six: Path, six_uninterrupted: tuple[Path, float], tmp_path: Path
) -> None:
    """SIGKILL (the CLI and its workers) at moments drawn from a fixed seed: after k new
    shards, after t ms, as the first output file appears; after each kill every file under
    a final name is whole (the bytes of the uninterrupted run's file), and the resumed run
    ends with the uninterrupted run's bytes, every file of OUTDIR."""
    reference, duration = six_uninterrupted
    expected = final_files(reference)
    shard_files = [k for k in expected if k.startswith(SHARD_DIR) and k.endswith(".json")]
    assert len(shard_files) == 6  # and outputs.manifest

    rng = np.random.default_rng(20261203)
    out = tmp_path / "out"
    shards = out / SHARD_DIR
    moments = [("shards", int(rng.integers(1, 3))), ("ms", float(rng.uniform(0.1, 0.6)) * duration * 1000)]
    moments += [
        ("shards", int(rng.integers(1, 3))),
        ("output", 0.0),
        ("ms", float(rng.uniform(0.0, 0.3)) * 1000),
    ]
    hits = []
    for kind, amount in moments:
        before = len(list(shards.glob("*.json"))) if shards.is_dir() else 0
        proc = subprocess.Popen(
            [sys.executable, "-m", "modic", "batch", str(six), "-o", str(out), "--workers", "2"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: the workers are killed with it
        )
        started = time.monotonic()
        while proc.poll() is None and time.monotonic() - started < 60:
            if kind == "ms" and time.monotonic() - started >= amount / 1000:
                break
            if kind == "shards" and shards.is_dir() and len(list(shards.glob("*.json"))) >= before + amount:
                break
            if kind == "output" and any((out / name).exists() for name in OUTPUTS):
                break
            time.sleep(0.001)
        alive = proc.poll() is None
        if alive:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        hits.append((kind, alive))
        for name, data in final_files(out).items():  # present only whole, never half-written
            assert data == expected.get(name), f"after the kill at {kind} {amount:.0f}: {name} is not whole"
    assert sum(alive for _, alive in hits) >= 3, hits  # most kills hit a running batch

    r = run("batch", str(six), "-o", str(out), "--workers", "2")
    assert r.returncode == 0, r.stderr
    assert final_files(out) == expected
    assert leftovers(out) == []


def test_rerun_skips_force_recomputes_edit_recomputes_one(six: Path, tmp_path: Path) -> None:
    root = copy_tree(six, tmp_path / "root")
    out = tmp_path / "out"
    assert run("batch", str(root), "-o", str(out), "--workers", "2").returncode == 0
    first = tree_digest(out)

    r = run("batch", str(root), "-o", str(out), "--workers", "2")
    assert r.returncode == 0
    assert "all 6 studies up to date" in r.stderr and not LINE_OK.search(r.stderr)
    assert tree_digest(out) == first  # nothing rewritten, not even touched

    r = run("batch", str(root), "-o", str(out), "--workers", "1", "--force")
    assert r.returncode == 0 and "6 to compute" in r.stderr
    assert len(LINE_OK.findall(r.stderr)) == 6
    forced = tree_digest(out)
    assert forced == first  # recomputed to the same bytes (identical files are not rewritten)

    # move the L5 superior ROI of one study onto the L4 change: only that study is redone
    path = root / "g1" / "s3.modic.json"
    ann = read_annotations(path)
    (l5,) = ann.find("L5", "superior")
    l5.shape = Polygon([(8, 9), (32, 9), (32, 15), (8, 15)])
    write_annotations(ann, path)
    r = run("batch", str(root), "-o", str(out), "--workers", "2")
    assert r.returncode == 0, r.stderr
    assert "1 to compute, 5 up to date" in r.stderr
    (line,) = LINE_OK.findall(r.stderr)
    assert line[0:2] == ("1", "1")
    edited = tree_digest(out)
    changed = {k for k in edited if edited[k] != forced[k]}
    assert {k for k in changed if k.startswith(SHARD_DIR)} == {
        f"{SHARD_DIR}/{hashlib.sha256(b'g1/s3.modic.json').hexdigest()}.json",
        f"{SHARD_DIR}/outputs.manifest",  # what the outputs were made from
    }
    rows = [r for r in read_csv(out / "results.csv") if r["study"] == line[2]]
    assert [r["modic_type"] for r in rows] == ["type 3", "type 3"]  # s3 holds a type-3 change


def test_indeterminate_endplates_are_counted_apart_and_contrast_survives_a_resume(tmp_path: Path) -> None:
    root = tmp_path / "root"
    uids = {
        "a/odd": write_annotated_study(root / "a" / "odd", "indeterminate", seed=3),
        "b/oedema": write_annotated_study(root / "b" / "oedema", "1", seed=4),
    }
    out = tmp_path / "out"
    r = run("batch", str(root), "-o", str(out), "--workers", "1")
    assert r.returncode == 0, r.stderr
    rows = read_csv(out / "results.csv")
    odd = next(r for r in rows if r["study"] == pseudonym(uids["a/odd"]) and r["endplate"] == "inferior")
    assert odd["modic_type"] == "indeterminate" and odd["reason"].startswith("the region departs from")
    assert "indeterminate, the region departs" in odd["explanation"]
    summary = json.loads((out / "summary.json").read_text())
    # neither a change nor normal: its own category
    assert summary["type_counts"] == {
        "type 0": 2,
        "type 1": 1,
        "type 2": 0,
        "type 3": 0,
        "type 1/2": 0,
        "type 2/3": 0,
        "indeterminate": 1,
    }
    assert (
        "4 endplates: type 0: 2, type 1: 1, type 2: 0, type 3: 0, type 1/2: 0, type 2/3: 0, indeterminate: 1"
        in (r.stdout)
    )
    assert set(summary["contrast"]) == {pseudonym(u) for u in uids.values()}
    api = classify(load_study(root / "a" / "odd"), read_annotations(root / "a" / "odd.modic.json")).contrast
    assert api is not None and summary["contrast"][pseudonym(uids["a/odd"])] == api.to_dict()
    first = outputs(out)

    # a rerun takes the contrast from the shards: the same bytes
    r = run("batch", str(root), "-o", str(out), "--workers", "1")
    assert r.returncode == 0 and "all 2 studies up to date" in r.stderr
    assert outputs(out) == first
    # a shard written before shards carried the contrast (format 1) is recomputed, not trusted
    shard = out / SHARD_DIR / f"{hashlib.sha256(b'a/odd.modic.json').hexdigest()}.json"
    old = json.loads(shard.read_text())
    del old["contrast"]
    shard.write_text(json.dumps({**old, "format": 1}))
    r = run("batch", str(root), "-o", str(out), "--workers", "1")
    assert r.returncode == 0 and "1 to compute, 1 up to date" in r.stderr
    assert outputs(out) == first and json.loads(shard.read_text())["contrast"] == api.to_dict()


# ---------------------------------------------------------------------------------------
# the Python API and Dask
# ---------------------------------------------------------------------------------------
def test_run_batch_api_reports_progress(archive: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    root, _ = archive
    seen: list[BatchProgress] = []
    summary = run_batch(root, tmp_path / "out", workers=1, progress=seen.append)
    assert (summary.n_ok, summary.n_failed, summary.n_computed, summary.n_up_to_date) == (4, 0, 4, 0)
    assert summary.type_counts == {"0": 5, "1": 1, "2": 1, "3": 1, "1/2": 0, "2/3": 0, "indeterminate": 0}
    assert summary.ok and summary.n_endplates == 8
    assert summary.contrast == json.loads(summary.paths["summary"].read_text())["contrast"]
    assert len(summary.contrast) == 4
    assert summary.paths["results"] == (tmp_path / "out" / "results.csv").resolve()
    assert [p.done for p in seen] == [1, 2, 3, 4] and all(p.total == 4 and p.ok for p in seen)
    assert seen[0].line().startswith("study 1/4 ok ")
    again = run_batch(root, tmp_path / "out", workers=1, progress=seen.append)
    assert (again.n_computed, again.n_up_to_date, len(seen)) == (0, 4, 4)
    with pytest.raises(ValueError, match="workers"):
        run_batch(root, tmp_path / "out", workers=0)


def test_dask_local_cluster_gives_the_same_results(
    archive: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    pytest.importorskip("distributed")
    root, _ = archive
    r1 = run("batch", str(root), "-o", str(tmp_path / "one"), "--workers", "1")
    assert r1.returncode == 0, r1.stderr
    rd = run("batch", str(root), "-o", str(tmp_path / "dask"), "--dask", "local", "--workers", "2")
    assert rd.returncode == 0, rd.stderr
    assert outputs(tmp_path / "dask") == outputs(tmp_path / "one")


def test_errors_csv_and_results_csv_join_on_the_study_key(tmp_path: Path) -> None:
    """A study whose T1 files are broken fails at load; its error row still carries its key
    (from the annotation file's StudyInstanceUID) and the annotation file's path."""
    root = tmp_path / "in"
    good = write_annotated_study(root / "good", "1", seed=5)
    bad = write_annotated_study(root / "bad", "2", seed=6)
    for path in sorted((root / "bad" / "T1").iterdir()):
        ds = dcmread(path)
        ds.RescaleSlope = 0
        ds.save_as(path)
    (root / "unreadable.modic.json").write_text("{", encoding="utf-8")
    (root / "unreadable").mkdir()
    run("batch", str(root), "-o", str(tmp_path / "out"), "--workers", "1")
    errors = {e["annotation_file"]: e for e in read_csv(tmp_path / "out" / "errors.csv")}
    assert set(errors) == {"bad.modic.json", "unreadable.modic.json"}
    assert errors["bad.modic.json"]["study"] == pseudonym(bad) and errors["bad.modic.json"]["stage"] == "load"
    assert "file(s) of this study could not be used" in errors["bad.modic.json"]["message"]
    assert "invalid RescaleSlope 0" in errors["bad.modic.json"]["message"]
    assert errors["unreadable.modic.json"]["study"] == "-"
    assert {r["study"] for r in read_csv(tmp_path / "out" / "results.csv")} == {pseudonym(good)}


def test_a_study_exported_twice_is_counted_once_and_reported(tmp_path: Path) -> None:
    root = tmp_path / "in"
    uid = write_annotated_study(root / "export1" / "case", "1", seed=3)
    shutil.copytree(root / "export1", root / "export2")  # the same study again, annotations too
    write_annotated_study(root / "other", "2", seed=4)
    r = run("batch", str(root), "-o", str(tmp_path / "out"), "--workers", "1")
    assert r.returncode == 1, r.stderr
    out = tmp_path / "out"
    rows = read_csv(out / "results.csv")
    assert sorted({row["study"] for row in rows}) == sorted({pseudonym(uid), rows[-1]["study"]})
    assert len([row for row in rows if row["study"] == pseudonym(uid)]) == 2  # its two endplates, once
    assert len({row["roi_id"] for row in rows}) == len(rows)
    (error,) = read_csv(out / "errors.csv")
    assert error["stage"] == "duplicate" and error["study"] == pseudonym(uid)
    assert error["message"] == (
        f"export2/case.modic.json: the same study (StudyInstanceUID, key {pseudonym(uid)}) as "
        "export1/case.modic.json: a second copy of it, counted once (remove one copy, or give the copies "
        "their own UIDs if they differ)"
    )
    summary = json.loads((out / "summary.json").read_text())
    assert summary["studies"] == {"total": 3, "ok": 2, "failed": 1}
    assert summary["errors"] == {"duplicate": 1}
    assert "export2/case.modic.json: the same study" in r.stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def dask_scheduler() -> Iterator[str]:
    """A real Dask scheduler and one worker process on 127.0.0.1, as on a cluster."""
    pytest.importorskip("distributed")
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    scheduler = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "distributed.cli.dask_scheduler",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-dashboard",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "distributed.cli.dask_worker",
            address,
            "--nworkers",
            "1",
            "--nthreads",
            "1",
            "--no-dashboard",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        from distributed import Client

        deadline = time.monotonic() + 60
        while True:
            try:
                with Client(address, timeout=5) as client:
                    if client.scheduler_info()["workers"]:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, "the Dask scheduler and worker did not start within 60 s"
            time.sleep(0.5)
        yield address
    finally:
        for proc in (worker, scheduler):
            proc.terminate()
        for proc in (worker, scheduler):
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()


def test_a_real_dask_scheduler_gives_the_same_bytes_as_the_process_pool(
    archive: tuple[Path, dict[str, str]], tmp_path: Path, dask_scheduler: str
) -> None:
    root, _ = archive
    r1 = run("batch", str(root), "-o", str(tmp_path / "pool"), "--workers", "2")
    assert r1.returncode == 0, r1.stderr
    rd = run("-v", "batch", str(root), "-o", str(tmp_path / "dask"), "--dask", dask_scheduler)
    assert rd.returncode == 0, rd.stderr
    assert outputs(tmp_path / "dask") == outputs(tmp_path / "pool")
    assert f"Dask scheduler {dask_scheduler}: 1 worker(s)" in rd.stderr


def test_an_unreachable_dask_scheduler_is_one_clear_line_within_seconds(
    archive: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    pytest.importorskip("distributed")
    address = f"tcp://127.0.0.1:{_free_port()}"  # nothing listens there
    start_time = time.monotonic()
    r = run("batch", str(archive[0]), "-o", str(tmp_path / "out"), "--dask", address)
    elapsed = time.monotonic() - start_time
    assert r.returncode == 1
    assert "Traceback" not in r.stderr
    lines = [line for line in r.stderr.splitlines() if line.strip() and not line.startswith("modic: INFO:")]
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith(f"modic: ERROR: cannot reach the Dask scheduler at {address} within 5 s (")
    assert elapsed < 30
    r = run("batch", str(archive[0]), "-o", str(tmp_path / "out"), "--dask", "10.0.0.5:8786")
    assert r.returncode == 1 and "is not a scheduler address: give tcp://HOST:PORT" in r.stderr


def test_progress_bar_redraws_one_line_with_rate_and_time_left_and_keeps_whole_failures() -> None:
    stream = io.StringIO()
    now = [100.0]
    bar = ProgressBar(stream, width=10, clock=lambda: now[0])
    now[0] = 130.0  # 30 s for the first study: 2.0/min, 3 left -> 1:30 left
    bar(BatchProgress(1, 4, "a.modic.json", "0123456789", True, endplates=2))
    now[0] = 160.0
    bar(BatchProgress(2, 4, "b.modic.json", None, False, stage="load", message="no DICOM\nmore detail"))
    now[0] = 220.0
    bar(BatchProgress(4, 4, "c.modic.json", "abcdefabcd", True, endplates=2))
    bar.close()
    text = stream.getvalue()
    assert "\r\033[Kmodic: [##--------] 1/4 studies, 2.0/min, 1:30 left, 0:30 elapsed" in text
    # the whole failure message, above the bar, continuation indented
    assert "modic: WARNING: study 2/4 failed b.modic.json stage=load: no DICOM\n    more detail\n" in text
    assert "\r\033[Kmodic: [#####-----] 2/4 studies, 1 failed, 2.0/min, 1:00 left, 1:00 elapsed" in text
    assert text.endswith("\r\033[Kmodic: [##########] 4/4 studies, 1 failed, 2.0/min, 2:00 elapsed\n")
    assert text.count("\n") == 3  # the failure's two lines and the end of the bar


def test_dask_missing_gives_an_install_hint(
    archive: tuple[Path, dict[str, str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "dask", None)
    monkeypatch.setitem(sys.modules, "dask.distributed", None)
    with pytest.raises(MissingDependencyError, match=r"modic\[dask\]"):
        run_batch(archive[0], tmp_path / "out", dask_address="local")
    assert not (tmp_path / "out").exists()


def test_cli_imports_stay_light() -> None:
    heavy = "('numpy', 'pydicom', 'modic.batch')"
    code = f"import sys, modic.cli; print(sorted(m for m in {heavy} if m in sys.modules))"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.stdout.strip() == "[]", r.stdout + r.stderr


def test_a_rerun_with_nothing_changed_parses_no_shard_and_an_edited_output_is_rebuilt(
    six: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The outputs manifest: a rerun over unchanged studies, shards and outputs keeps the
    outputs as they are without reading a shard; an output that was edited or removed, or
    a shard that changed, makes the run assemble again (with the same bytes as before)."""
    import modic.batch as batch

    out = tmp_path / "out"
    first = run_batch(six, out, workers=1)
    before = tree_digest(out)
    reads: list[Path] = []
    real = batch._read_shard
    monkeypatch.setattr(batch, "_read_shard", lambda p: reads.append(p) or real(p))
    again = run_batch(six, out, workers=1)
    assert reads == []
    assert tree_digest(out) == before  # bytes and modification times
    assert (again.n_ok, again.n_failed, again.type_counts) == (first.n_ok, first.n_failed, first.type_counts)
    assert (again.n_computed, again.n_up_to_date) == (0, 6)
    assert again.paths == first.paths
    # an edited output: assembled again from the shards, nothing recomputed
    results = out / "results.csv"
    good = results.read_bytes()
    results.write_bytes(good.replace(b"type 0", b"type 2", 1))
    fixed = run_batch(six, out, workers=1)
    shards = {p.name for p in (out / SHARD_DIR).glob("*.json")}
    assert len(shards) == 6 and {p.name for p in reads} == shards and fixed.n_computed == 0
    assert results.read_bytes() == good
    # a removed output, likewise
    reads.clear()
    (out / "levels.csv").unlink()
    run_batch(six, out, workers=1)
    assert {p.name for p in reads} == shards and (out / "levels.csv").is_file()
    assert {k: v[0] for k, v in tree_digest(out).items()} == {k: v[0] for k, v in before.items()}


# ---------------------------------------------------------------------------------------
# reruns: one walk of ROOT, what invalidates a study, the outputs manifest's seal
# ---------------------------------------------------------------------------------------
def listing_of(folder: Path) -> list[tuple[str, int, int]]:
    """(path relative to ``folder``, size, mtime_ns) of every file under it, symlinks followed:
    what a study's fingerprint lists, walked here on its own."""
    out = []
    for dirpath, _dirs, files in os.walk(folder, followlinks=True):
        for name in files:
            path = Path(dirpath, name)
            if path.exists():
                st = path.stat()
                out.append((path.relative_to(folder).as_posix(), st.st_size, st.st_mtime_ns))
    return sorted(out)


def test_one_walk_of_root_lists_each_study_folder_as_a_walk_of_its_own(tmp_path: Path) -> None:
    """The walk that finds the annotation files also lists every study folder's files (its
    fingerprint); a study folder that is, or holds, a symlink to a folder is left to a walk
    of its own, which follows it."""
    from modic.batch import _walk_root

    root = tmp_path / "root"
    (root / "a" / "x" / "deep").mkdir(parents=True)
    (root / "a" / "x" / "deep" / "f1").write_bytes(b"1")
    (root / "a" / "f2").write_bytes(b"22")
    (root / "a" / "inner").mkdir()
    (root / "a" / "inner" / "f3").write_bytes(b"333")
    (root / "a" / "inner.modic.json").write_text("{}")  # a study folder inside a study folder
    (root / "a" / "to-f2").symlink_to(root / "a" / "f2")
    (root / "a" / "dangling").symlink_to(root / "nowhere")
    (root / "a.modic.json").write_text("{}")
    (root / "elsewhere").mkdir()
    (root / "elsewhere" / "f4").write_bytes(b"4444")
    (root / "b").mkdir()
    (root / "b" / "linked").symlink_to(root / "elsewhere")
    (root / "b.modic.json").write_text("{}")
    (root / "c").symlink_to(root / "elsewhere")
    (root / "c.modic.json").write_text("{}")
    (root / "d.modic.json").write_text("{}")  # no study folder

    tree = _walk_root(root)
    assert [j.relpath for j in tree.jobs] == [j.relpath for j in find_jobs(root)]
    assert [j.relpath for j in tree.jobs] == [
        "a.modic.json",
        "a/inner.modic.json",
        "b.modic.json",
        "c.modic.json",
        "d.modic.json",
    ]
    a = tree.listing(root / "a")
    assert a == listing_of(root / "a")
    assert [p for p, _, _ in a] == ["f2", "inner.modic.json", "inner/f3", "to-f2", "x/deep/f1"]
    assert tree.listing(root / "a" / "inner") == listing_of(root / "a" / "inner")
    assert tree.listing(root / "b") is None and tree.listing(root / "c") is None
    assert tree.listing(root / "d") is None


def test_a_rerun_recomputes_the_studies_whose_files_changed_and_only_those(six: Path, tmp_path: Path) -> None:
    """A DICOM file rewritten, a file added, a file removed, a file changed behind a
    symlinked folder inside a study and inside a study folder that is a symlink: each
    study is computed again; the untouched one is not."""
    root = copy_tree(six, tmp_path / "root")
    store = tmp_path / "store"
    store.mkdir()
    # s3's STIR folder and the whole of s4 live elsewhere, behind symlinks
    shutil.move(root / "g1" / "s3" / "STIR", store / "STIR")
    (root / "g1" / "s3" / "STIR").symlink_to(store / "STIR")
    shutil.move(root / "g0" / "s4", store / "s4")
    (root / "g0" / "s4").symlink_to(store / "s4")
    (root / "g0" / "s2" / "notes.txt").write_text("read later\n")
    out = tmp_path / "out"
    first = run("batch", str(root), "-o", str(out), "--workers", "1")
    assert first.returncode == 0, first.stderr
    assert len(LINE_OK.findall(first.stderr)) == 6

    def key(study: str) -> str:
        uid = read_annotations(root / f"{study}.modic.json").study_instance_uid
        assert uid is not None
        return pseudonym(uid)

    t1 = sorted((root / "g0" / "s0" / "T1").iterdir())[1]
    ds = dcmread(t1)
    pixels = ds.pixel_array.copy()
    pixels[0, 0] += 1
    ds.PixelData = pixels.tobytes()
    ds.save_as(t1)  # rewritten: same size, another modification time
    (root / "g1" / "s1" / "T2" / "notes.txt").write_text("added\n")
    (root / "g0" / "s2" / "notes.txt").unlink()
    stir = sorted((store / "STIR").iterdir())[0]
    os.utime(stir, ns=(stir.stat().st_atime_ns, stir.stat().st_mtime_ns + 1_000_000_000))  # touched
    (store / "s4" / "T2" / "notes.txt").write_text("added\n")

    r = run("batch", str(root), "-o", str(out), "--workers", "1")
    assert r.returncode == 0, r.stderr
    assert "5 to compute, 1 up to date" in r.stderr
    computed = {m[2] for m in LINE_OK.findall(r.stderr)}
    assert computed == {key(s) for s in ("g0/s0", "g1/s1", "g0/s2", "g1/s3", "g0/s4")}
    r = run("batch", str(root), "-o", str(out), "--workers", "1")
    assert r.returncode == 0 and "all 6 studies up to date" in r.stderr
    # the summary of a rerun with nothing to do is the summary of the run that computed it
    assert r.stdout.splitlines()[1:] == first.stdout.splitlines()[1:]


def test_a_rerun_with_nothing_changed_reads_no_output_and_sees_edits_that_keep_size_and_time(
    six: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The manifest's modification time seals the outputs and shards: a rerun with nothing
    changed hashes none of them (and fingerprints no study: the manifest's digest of the
    inputs is theirs), and an output or shard edited with its size and modification time
    put back is still seen (its status change time moved on)."""
    import modic.batch as batch

    out = tmp_path / "out"
    run_batch(six, out, workers=1)
    hashed: list[Path] = []
    reads: list[Path] = []
    fingerprinted: list[str] = []
    real_digest, real_read, real_fingerprint = batch._file_digest, batch._read_shard, batch.input_fingerprint
    monkeypatch.setattr(batch, "_file_digest", lambda p: hashed.append(p) or real_digest(p))
    monkeypatch.setattr(batch, "_read_shard", lambda p: reads.append(p) or real_read(p))
    monkeypatch.setattr(
        batch, "input_fingerprint", lambda j, *a: fingerprinted.append(j.relpath) or real_fingerprint(j, *a)
    )
    before = tree_digest(out)
    again = run_batch(six, out, workers=1)
    assert (hashed, reads, fingerprinted) == ([], [], []) and again.n_up_to_date == 6
    assert tree_digest(out) == before

    def edit_in_place(path: Path, old: bytes, new: bytes) -> None:
        st = path.stat()
        data = path.read_bytes()
        assert len(old) == len(new) and old in data
        path.write_bytes(data.replace(old, new, 1))
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # size and mtime as they were

    results = out / "results.csv"
    good = results.read_bytes()
    edit_in_place(results, b"type 0", b"type 2")
    run_batch(six, out, workers=1)
    shards = set((out / SHARD_DIR).glob("*.json"))
    assert results in hashed and set(reads) == shards  # assembled again from the shards
    assert results.read_bytes() == good
    hashed.clear()
    reads.clear()
    run_batch(six, out, workers=1)
    assert (hashed, reads) == ([], [])  # sealed again by the run that assembled

    shard = sorted((out / SHARD_DIR).glob("*.json"))[0]
    edit_in_place(shard, b'\n "study"', b'\n\t"study"')  # the same JSON, other bytes
    run_batch(six, out, workers=1)
    assert set(reads) == shards and {k: v[0] for k, v in tree_digest(out).items() if k.endswith(".csv")} == {
        k: v[0] for k, v in before.items() if k.endswith(".csv")
    }


def test_a_rerun_imports_no_numpy_nor_the_other_commands() -> None:
    """A rerun with nothing to do, as the command line runs it (``-X importtime`` lists
    every module imported): no numpy, no pydicom, no classifier, no other command's module."""
    root = Path(__file__).resolve().parent.parent / "sample_data"
    with tempfile.TemporaryDirectory() as tmp:
        assert run("batch", str(root), "-o", tmp, timeout=300).returncode == 0
        cmd = [sys.executable, "-X", "importtime", "-m", "modic", "-q", "batch", str(root), "-o", tmp]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    imported = {line.rsplit("|", 1)[-1].strip() for line in r.stderr.splitlines() if "|" in line}
    assert "modic.batch" in imported
    heavy = {"numpy", "pydicom", "modic.criteria", "modic.results", "modic.cli.annotate", "modic.cli.teach"}
    assert imported & heavy == set()
