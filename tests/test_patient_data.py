"""No patient data in modic's outputs unless the user asks for it.

A sample study is given distinctive patient name, ID, birth date, accession number,
institution and physician names in every DICOM file; the default runs of every command
(``info``, ``classify``, ``batch``, ``report``, ``annotate --screenshot``) write their
outputs, and every byte of them -- text, JSON, CSV, HTML, the text and metadata of PDF and
PNG files (compressed streams opened), logs on stdout and stderr -- is searched for those
values. The DICOM SR / SEG that ``modic export`` writes are the exception by design: a
DICOM object must carry the patient module of its source images (docs/dicom-export.md).
"""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pydicom
import pytest

from modic.data import sample_annotations_path, sample_study_path

STUDY = "siemens_15T_type1_type2"
MARKERS = {
    "PatientName": "Quixote^Alonso^Maria",
    "PatientID": "PID-98765-XYZ",
    "PatientBirthDate": "19370412",
    "AccessionNumber": "ACC5551212",
    "InstitutionName": "St Elsewhere Spine Clinic",
    "ReferringPhysicianName": "Zhivago^Yuri",
    "OperatorsName": "Nightingale^Florence",
}
# How each value could appear in an output besides verbatim: a person name with spaces,
# a birth date formatted.
NEEDLES = sorted(
    {*MARKERS.values(), "Quixote", "Alonso Maria", "Zhivago", "Nightingale", "1937-04-12", "PID-98765"}
)


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "modic", *args], capture_output=True, text=True, timeout=600, cwd=cwd
    )


@pytest.fixture(scope="module")
def marked_study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of a sample study (and its annotations) with patient data in every file."""
    root = tmp_path_factory.mktemp("inputs")
    study = root / STUDY
    shutil.copytree(sample_study_path(STUDY), study)
    shutil.copy(sample_annotations_path(STUDY), root / f"{STUDY}.modic.json")
    for path in study.rglob("*"):
        if path.is_file():
            ds = pydicom.dcmread(path)
            for keyword, value in MARKERS.items():
                setattr(ds, keyword, value)
            ds.save_as(path)
    return study


def _pdf_texts(data: bytes) -> list[bytes]:
    """The PDF's bytes and every Flate stream in it, decompressed."""
    out = [data]
    for m in re.finditer(rb"stream\r?\n", data):
        start = m.end()
        end = data.find(b"endstream", start)
        if end < 0:
            continue
        try:
            out.append(zlib.decompress(data[start:end]))
        except zlib.error:
            pass
    return out


def _png_texts(data: bytes) -> list[bytes]:
    """The PNG's text chunks (tEXt, zTXt, iTXt, eXIf), decompressed where compressed."""
    out: list[bytes] = []
    i = 8
    while i + 8 <= len(data):
        (length,) = struct.unpack(">I", data[i : i + 4])
        kind = data[i + 4 : i + 8]
        body = data[i + 8 : i + 8 + length]
        if kind in (b"tEXt", b"iTXt", b"eXIf"):
            out.append(body)
        elif kind == b"zTXt":
            key, _, rest = body.partition(b"\x00")
            out.append(key + zlib.decompress(rest[1:]))
        i += 12 + length
    return out


def _leaks(path: Path) -> list[str]:
    data = path.read_bytes()
    if data.startswith(b"%PDF"):
        pieces = _pdf_texts(data)
    elif data.startswith(b"\x89PNG"):
        pieces = _png_texts(data)
    else:
        pieces = [data]
    found = []
    for piece in pieces:
        text = piece.decode("utf-8", "replace")
        spaced = text.replace("^", " ")
        for needle in NEEDLES:
            if needle in text or needle in spaced or needle.encode("utf-16-be").decode("latin-1") in text:
                found.append(f"{path.name}: {needle!r}")
    return found


def _leaks_in_folder(folder: Path) -> list[str]:
    found = []
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            found += _leaks(path)
    return found


def _leaks_in_text(name: str, text: str) -> list[str]:
    return [f"{name}: {n!r}" for n in NEEDLES if n in text or n in text.replace("^", " ")]


def test_default_outputs_carry_no_patient_data(marked_study: Path, tmp_path: Path) -> None:
    found: list[str] = []
    inputs = marked_study.parent

    r = run("info", str(marked_study))
    assert r.returncode == 0, r.stderr
    found += _leaks_in_text("info", r.stdout + r.stderr)
    r = run("info", str(marked_study), "--json")
    assert r.returncode == 0, r.stderr
    found += _leaks_in_text("info --json", r.stdout + r.stderr)

    for extra in ((), ("--json",)):
        r = run("classify", str(marked_study), *extra)
        assert r.returncode in (0, 1), r.stderr
        found += _leaks_in_text(f"classify {' '.join(extra)}", r.stdout + r.stderr)

    out = tmp_path / "batch"
    r = run("batch", str(inputs), "-o", str(out))
    assert r.returncode in (0, 1), r.stderr
    assert (out / "results.csv").is_file()
    found += _leaks_in_text("batch", r.stdout + r.stderr)

    reports = tmp_path / "reports"
    reports.mkdir()
    for source, name in ((marked_study, "study"), (out, "batch")):
        for suffix in ("html", "pdf"):
            r = run("report", str(source), "-o", str(reports / f"{name}.{suffix}"))
            assert r.returncode == 0, r.stderr
            found += _leaks_in_text(f"report {name}.{suffix}", r.stdout + r.stderr)
    assert (reports / "study.html").is_file() and (reports / "batch.pdf").is_file()

    shots = tmp_path / "shots"
    shots.mkdir()
    r = run("annotate", str(marked_study), "--screenshot", str(shots / "annotator.png"))
    assert r.returncode == 0, r.stderr
    found += _leaks_in_text("annotate", r.stdout + r.stderr)

    found += _leaks_in_folder(out) + _leaks_in_folder(reports) + _leaks_in_folder(shots)
    assert found == []


def test_the_search_finds_patient_data_when_the_user_asks_for_it(marked_study: Path) -> None:
    """The check above can fail: asked for, the identifiers are there and are found."""
    r = run("info", str(marked_study), "--include-identifiers")
    assert r.returncode == 0, r.stderr
    assert _leaks_in_text("info", r.stdout)
