"""The shipped sample data: the README's main job gets every annotated endplate right, and
the data regenerate byte for byte from the documented command."""

from __future__ import annotations

import csv
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest

import modic
from modic.data import sample_data_dir, sample_study_names

PIXEL_DATA = 0x7FE00010


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
        if row["modic_type"] != expected:
            wrong.append((row["study_folder"], row["vertebra"], row["endplate"], expected, row["modic_type"]))
    assert wrong == []
    assert (out / "errors.csv").read_text().strip() == "study,stage,message"


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


def _close(a: object, b: object, where: str, tol: float) -> None:
    """Parsed JSON equal, numbers within ``tol`` (absolute and relative)."""
    if isinstance(a, dict) and isinstance(b, dict):
        assert a.keys() == b.keys(), where
        for k in a:
            _close(a[k], b[k], f"{where}.{k}", tol)
    elif isinstance(a, list) and isinstance(b, list):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _close(x, y, f"{where}[{i}]", tol)
    elif isinstance(a, float) or isinstance(b, float):
        assert isinstance(a, (int, float)) and isinstance(b, (int, float)), where
        assert math.isclose(a, b, rel_tol=tol, abs_tol=tol), f"{where}: {a} != {b}"
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


@pytest.mark.parametrize("name", ["siemens_15T_type1_type2"])
def test_sample_study_regenerates_from_the_documented_command(tmp_path, name):
    """What must be reproducible on any CPU: the same files, the same DICOM headers, pixels
    within one stored unit, the same ROIs and truth within rounding.

    Floating-point results of the generator (exp, sin, sums in SIMD order) differ by CPU
    (AVX-512 against AVX2), so the files cannot be compared byte for byte: a pixel rounded
    the other way moves by one stored unit, and a JPEG 2000 / RLE series then differs in
    its bytes while decoding to the same image within that unit."""
    modic.data.write_sample_data(tmp_path, names=[name])
    shipped = sample_data_dir()
    files = sorted(
        p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file() and p.name != "README.md"
    )
    expected = sorted(
        p.relative_to(shipped)
        for p in shipped.rglob("*")
        if p.is_file() and (p.name.startswith(name) or name in p.parts[len(shipped.parts) :][:1])
    )
    assert files == expected
    n_dicom = 0
    for rel in files:
        new, old = tmp_path / rel, shipped / rel
        if rel.suffix == ".json":
            # ROI vertices and truth geometry are computed in floating point: equal to well
            # under a thousandth of a pixel or millimetre
            _close(json.loads(new.read_text()), json.loads(old.read_text()), str(rel), 1e-6)
            continue
        a, b = pydicom.dcmread(new), pydicom.dcmread(old)
        n_dicom += 1
        assert a.file_meta.TransferSyntaxUID == b.file_meta.TransferSyntaxUID, rel
        tags_a = {e.tag for e in a if e.tag != PIXEL_DATA}
        tags_b = {e.tag for e in b if e.tag != PIXEL_DATA}
        assert tags_a == tags_b, rel
        for tag in sorted(tags_a):
            assert a[tag].value == b[tag].value, f"{rel} {a[tag].name}"
        pa, pb = a.pixel_array.astype(np.int64), b.pixel_array.astype(np.int64)
        assert pa.shape == pb.shape, rel
        assert int(np.abs(pa - pb).max()) <= 1, f"{rel}: pixels differ by more than one stored unit"
    assert n_dicom > 50
