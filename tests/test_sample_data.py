"""The shipped sample data: the README's main job gets every annotated endplate right, and
the data regenerate from the documented command (on any CPU: not byte for byte)."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest
from reproducible import assert_json_close, assert_same_dicom

import modic
from modic.data import sample_data_dir, sample_study_names


def _truth_types(name: str) -> dict[tuple[str, str], str]:
    truth = json.loads(modic.data.sample_truth_path(name).read_text())
    canon = {"2/1": "1/2", "3/2": "2/3"}
    return {
        (e["vertebra"], e["endplate"]): canon.get(e["modic_type"], e["modic_type"])
        for e in truth["endplates"]
    }


def test_sample_data_is_complete():
    root = sample_data_dir()
    assert root == Path(__file__).resolve().parent.parent / "sample_data"
    for name in sample_study_names():
        assert (root / name).is_dir()
        assert (root / f"{name}.modic.json").is_file()
        assert (root / f"{name}.truth.json").is_file()
    size = sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
    assert size < 20e6


def test_readme_main_job_types_every_shipped_endplate_correctly(tmp_path):
    out = tmp_path / "out"
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "modic",
            "batch",
            str(sample_data_dir()),
            "-o",
            str(out),
            "--include-identifiers",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    assert "4 studies classified, 0 failed" in r.stdout
    with (out / "results.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 44  # 11 endplates (L1 superior .. S1 superior) in each of 4 studies
    by_study = {Path(row["study_folder"]).name for row in rows}
    assert by_study == set(sample_study_names())
    wrong = []
    for row in rows:
        expected = _truth_types(Path(row["study_folder"]).name)[(row["vertebra"], row["endplate"])]
        assert row["modic_type"].startswith("type "), row  # results format 2: "type 1", never a bare "1"
        got = row["modic_type"].removeprefix("type ")
        if got != expected:
            wrong.append(
                (
                    Path(row["study_folder"]).name,
                    row["vertebra"],
                    row["endplate"],
                    expected,
                    got,
                )
            )
            # a miss must not be confident, and must be one component of a mixed change,
            # never a normal or a type the change does not hold
            assert float(row["confidence"]) < 0.9, wrong[-1]
            assert got in expected.split("/") and "/" in expected, wrong[-1]
    # one known miss (docs/classifier.md): the 2/3 change of the Philips sample, whose
    # sclerotic part (19 % of the ROI after the partial-volume check) is just under the
    # calibrated mixed_fraction of 0.20, is called 2 at confidence 0.65
    assert wrong in ([], [("philips_15T_mixed23_enhanced", "L4", "inferior", "2/3", "2")])
    assert (out / "errors.csv").read_text().strip() == "study,annotation_file,stage,message"


def test_info_describes_the_sample_studies():
    r = subprocess.run(
        [sys.executable, "-m", "modic", "info", str(sample_data_dir()), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert len(d["studies"]) == 4
    for st in d["studies"]:
        reading = {role: sel["series"] for role, sel in st["reading"].items()}
        assert all(reading[role] is not None for role in ("T1", "T2", "STIR")), st["description"]
    # the annotation and truth JSON files beside the studies, the README, and the teaching
    # cases' case.json and key.json files and README (sample_data/teaching) are not DICOM
    assert d["skipped_summary"] == {"not DICOM": 16}


@pytest.mark.parametrize("name", sample_study_names())
def test_sample_study_regenerates_from_the_documented_command(tmp_path, name):
    """``python -m modic.data DEST --only NAME`` writes what is shipped, as far as it is
    reproducible on any CPU: the same files, the same DICOM headers (UIDs included: they
    derive from the seed), pixels within one stored unit, the README's text, and the ROIs
    and truth equal within rounding (``tests/reproducible.py`` says why not byte for byte:
    on another CPU a pixel may round the other way)."""
    r = subprocess.run(
        [sys.executable, "-m", "modic.data", str(tmp_path), "--only", name],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    shipped = sample_data_dir()
    files = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    expected = sorted(
        p.relative_to(shipped)
        for p in shipped.rglob("*")
        if p.is_file() and (p.name.startswith(f"{name}.") or p.relative_to(shipped).parts[0] == name)
    )
    assert files == [Path("README.md"), *expected]
    assert (tmp_path / "README.md").read_text() == (shipped / "README.md").read_text()
    n_dicom = 0
    for rel in expected:
        if rel.suffix == ".json":
            assert_json_close(
                json.loads((tmp_path / rel).read_text()), json.loads((shipped / rel).read_text()), str(rel)
            )
        else:
            assert_same_dicom(tmp_path / rel, shipped / rel, str(rel))
            n_dicom += 1
    assert n_dicom >= 40
