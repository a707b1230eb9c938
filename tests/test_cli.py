"""The ``modic`` command line, run for real in a subprocess."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import write_lumbar_study


def run(*args: str, cwd=None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "modic", *args], capture_output=True, text=True, cwd=cwd, timeout=120
    )


def test_help_lists_commands():
    r = run("--help")
    assert r.returncode == 0
    assert "info" in r.stdout


def test_no_command_is_a_usage_error():
    r = run()
    assert r.returncode == 2


def test_unknown_option_is_a_usage_error(tmp_path):
    r = run("info", str(tmp_path), "--bogus")
    assert r.returncode == 2
    assert "unrecognized arguments" in r.stderr


def test_missing_path_is_a_usage_error(tmp_path):
    r = run("info", str(tmp_path / "nope"))
    assert r.returncode == 2
    assert "no such file or folder" in r.stderr


def test_info_text_on_a_mixed_partly_broken_export(tmp_path):
    root = tmp_path / "export"
    write_lumbar_study(root / "patient1", "ge")
    (root / "README").write_text("burned to CD by PACS")
    (root / "patient1" / "T1" / "IM3").write_bytes((root / "patient1" / "T1" / "IM3").read_bytes()[:-100])
    r = run("info", str(root))
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "1 study, 7 series in 36 files (2 skipped)" in out
    assert "SAG T1 FSE" in out and "SAG STIR" in out and "AX T2 FRFSE" in out
    assert "truncated file" in out and "not DICOM" in out
    assert "gap of" in out  # the truncated T1 slice leaves a gap
    # no patient identifiers unless asked
    assert "TEST^PATIENT" not in out and "TEST-0001" not in out
    r2 = run("info", str(root), "--include-identifiers")
    assert "TEST^PATIENT" in r2.stdout


def test_info_json(tmp_path):
    write_lumbar_study(tmp_path, "philips")
    r = run("info", str(tmp_path), "--json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    (st,) = d["studies"]
    by_key = {s["key"]: s for s in st["series"]}
    assert by_key["2"]["role"] == "T1" and by_key["2"]["plane"] == "sagittal"
    assert by_key["3"]["matrix"] == [40, 40] and by_key["3"]["slices"] == 8
    assert by_key["3"]["spacing_mm"] == [4.4, 0.8, 0.8]
    assert by_key["4"]["role"] == "STIR"
    assert by_key["4"]["inversion_time_ms"] == 165
    assert st["reading"]["T1"]["series"] == "2"
    assert st["reading"]["T2"]["series"] == "3"
    assert st["reading"]["STIR"]["series"] == "4"
    assert "patient_name" not in st


def test_info_role_override_and_choice(tmp_path):
    write_lumbar_study(tmp_path, "siemens")
    r = run("info", str(tmp_path), "--json", "--role", "4=T2", "--t2", "3")
    d = json.loads(r.stdout)
    (st,) = d["studies"]
    s4 = next(s for s in st["series"] if s["key"] == "4")
    assert s4["role"] == "T2" and "by the user" in s4["reasons"][0]
    assert st["reading"]["T2"]["series"] == "3"
    bad = run("info", str(tmp_path), "--role", "4=T7")
    assert bad.returncode == 2 and "unknown role" in bad.stderr


def test_info_on_folder_without_dicom_exits_1(tmp_path):
    (tmp_path / "a.txt").write_text("x")
    r = run("info", str(tmp_path))
    assert r.returncode == 1
    assert "no usable DICOM image series" in r.stderr


@pytest.mark.parametrize("args", [["info", "--json"], ["info"], ["classify"]])
def test_a_closed_pipe_ends_quietly(args):
    # `modic info PATH --json | head -1`: the reader goes away before modic has written;
    # like other Unix tools modic stops without a BrokenPipeError traceback
    from modic.data import sample_data_dir, sample_study_path

    path = sample_study_path("siemens_15T_type1_type2") if args[0] == "classify" else sample_data_dir()
    proc = subprocess.Popen(
        [sys.executable, "-m", "modic", args[0], str(path), *args[1:]],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # closed before the first write
    with proc.stderr:
        err = proc.stderr.read().decode()
    code = proc.wait(timeout=120)
    assert "Traceback" not in err and "BrokenPipeError" not in err, err
    assert code == 141
