"""The ``modic`` command line, run for real in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pydicom
import pytest
from conftest import write_lumbar_study

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]


def run(*args: str, cwd=None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "modic", *args], capture_output=True, text=True, cwd=cwd, timeout=120
    )


def test_help_lists_commands():
    r = run("--help")
    assert r.returncode == 0
    assert "info" in r.stdout


def test_a_command_builds_only_its_own_options_with_the_help_of_the_whole_parser(monkeypatch):
    """``modic COMMAND`` gives only COMMAND its options (the others are listed with their
    help line): every help text is the one of the parser with every command complete."""
    from modic.cli import COMMAND_HELP, build_parser, command_of

    monkeypatch.setenv("COLUMNS", "100")  # the width of the help here and in the subprocesses
    full = build_parser()
    commands = full._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    assert list(commands) == list(COMMAND_HELP)
    assert run("--help").stdout == full.format_help()
    for name in COMMAND_HELP:
        r = run(name, "--help")
        assert r.returncode == 0 and r.stdout == commands[name].format_help(), name
    assert command_of(["-v", "-q", "batch", "info"]) == "batch"
    assert command_of(["--verbose", "bogus", "batch"]) is None and command_of(["-h"]) is None
    r = run("bogus")
    assert r.returncode == 2 and "invalid choice: 'bogus' (choose from 'info', 'classify'," in r.stderr


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
    assert "patient_name" not in st and "patient_id" not in st
    # the UIDs find the data again in a PACS or viewer: every series carries its own
    files = [p for p in tmp_path.rglob("*") if p.is_file() and pydicom.misc.is_dicom(p)]
    uids = {str(pydicom.dcmread(p, stop_before_pixels=True).SeriesInstanceUID) for p in files}
    assert {s["series_instance_uid"] for s in st["series"]} == uids
    assert st["study_instance_uid"].startswith("1.")


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


def _modic_argv(command: str) -> list[str]:
    """A modic command on the shipped sample data."""
    from modic.data import sample_data_dir, sample_study_path

    study = str(sample_study_path("siemens_15T_type1_type2"))
    return [sys.executable, "-m", "modic"] + {
        "info --json": ["info", str(sample_data_dir()), "--json"],  # 36 kB
        "info": ["info", str(sample_data_dir())],  # 10 kB
        "classify --json": ["classify", study, "--json"],  # 34 kB
        "classify": ["classify", study],  # 3 kB
        "teach list": ["teach", "list", str(sample_data_dir() / "teaching")],  # 0.4 kB
    }[command]


def _assert_ended_quietly(err: str, code: int) -> None:
    # no traceback from the command, nor from the interpreter's last flush of stdout
    # ("Exception ignored ... BrokenPipeError"); 141 = 128 + SIGPIPE, as a shell reports
    # for a Unix tool stopped by a closed pipe
    assert "Traceback" not in err and "BrokenPipeError" not in err and "Exception ignored" not in err, err
    assert code == 141, err


@pytest.mark.parametrize("command", ["info --json", "info", "classify --json", "classify", "teach list"])
def test_a_pipe_closed_before_output_ends_modic_quietly(command):
    # `modic info PATH --json | true`: the reader is gone before modic writes its first byte
    proc = subprocess.Popen(_modic_argv(command), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # modic is still importing numpy when this happens
    with proc.stderr:
        err = proc.stderr.read().decode()
    _assert_ended_quietly(err, proc.wait(timeout=120))


@pytest.mark.skipif(not hasattr(fcntl, "F_SETPIPE_SZ"), reason="resizing a pipe needs Linux")
def test_a_reader_that_stops_after_one_line_ends_modic_quietly():
    # `modic info PATH --json | head -1`, deterministic: in a pipe of one page (4 kB) the
    # 36 kB of JSON block modic until the reader has taken its line and closed the pipe
    read_fd, write_fd = os.pipe()
    fcntl.fcntl(write_fd, fcntl.F_SETPIPE_SZ, 4096)
    with os.fdopen(read_fd, "rb") as reader:
        proc = subprocess.Popen(_modic_argv("info --json"), stdout=write_fd, stderr=subprocess.PIPE)
        os.close(write_fd)
        first = reader.readline()
    assert proc.stderr is not None
    with proc.stderr:
        err = proc.stderr.read().decode()
    # json.dump writes in small pieces, so modic meets the closed pipe as an error. (Text
    # written in one large piece would not: there Python's buffered stdout reports a short
    # write instead, and modic ends normally with what the reader took.)
    _assert_ended_quietly(err, proc.wait(timeout=120))
    assert first == b"{\n"


def test_fifos_in_the_study_and_as_the_annotation_file_do_not_block(tmp_path):
    """`info`, `classify` and `batch` used to wait forever on a FIFO (no writer)."""
    study = tmp_path / "study"
    write_lumbar_study(study, "siemens")
    os.mkfifo(study / "pipe")
    r = run("info", str(study))
    assert r.returncode == 0, r.stderr
    ann = tmp_path / "study.modic.json"
    os.mkfifo(ann)
    r = run("classify", str(study))
    assert r.returncode != 0
    assert f"{ann}: is a FIFO (named pipe), not a regular file: not read" in r.stderr
    assert "Traceback" not in r.stderr
    r = run("batch", str(tmp_path), "-o", str(tmp_path.parent / (tmp_path.name + "-out")))
    assert "Traceback" not in r.stderr
    assert "is a FIFO (named pipe)" in (r.stdout + r.stderr + "".join(
        p.read_text() for p in (tmp_path.parent / (tmp_path.name + "-out")).glob("errors.csv")))


def test_info_on_a_fifo_itself_names_it_and_does_not_block(tmp_path):
    """`modic info PIPE` used to report "0 files" as if the path were an empty folder."""
    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)
    r = run("info", str(pipe))
    assert r.returncode == 1
    assert "in 1 files (1 skipped)" in r.stdout
    assert "a FIFO (named pipe): special files are never opened for reading: pipe" in r.stdout
    assert "Traceback" not in r.stderr
