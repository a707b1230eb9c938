"""The catalogue of broken and hostile inputs: each kind, the command it goes through, and
the exact message (and exit status) modic must give.

Every case runs the real command line in a subprocess (``python -m modic ...``) on a
small study written with pydicom (:func:`test_batch.write_annotated_study`) and copied
into the test's own folder, so nothing is shared between cases. A case passes when the
exit status is the one stated, the message is on stderr (or stdout, where stated) word
for word, and no Python traceback is printed. docs/hostile-inputs.md lists these kinds
together with those tested elsewhere (tests/test_dicomfolder.py, tests/test_annotations.py,
tests/test_batch.py...), with the test that covers each.

The tests run as root in CI: ``chmod`` does not stop root from writing, so an unwritable
place is made with a file in the way, a path under a regular file, ``/proc`` (no new
files there), a symbolic link to a device, or a file size limit (``RLIMIT_FSIZE``, which
makes writes fail with ``EFBIG`` as a full disk does with ``ENOSPC``).
"""

from __future__ import annotations

import codecs
import gzip
import json
import logging
import os
import resource
import shutil
import signal
import subprocess
import sys
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pydicom
import pytest
from dicomfactory import VENDORS, volume_pattern, write_series
from pydicom.data import get_testdata_file
from test_batch import write_annotated_study

from modic.batch import run_batch
from modic.teaching import TraineeAnswer, shipped_cases_dir, write_answer

OUTPUTS = ("results.csv", "results.jsonl", "errors.csv", "summary.json", "levels.csv", "studies.csv")


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One annotated study ``s1/`` with ``s1.modic.json`` beside it, written once."""
    root = tmp_path_factory.mktemp("hostile-base")
    write_annotated_study(root / "s1", "1", seed=1)
    return root


def copy_study(base: Path, dst: Path, name: str = "s1") -> Path:
    """A copy of the base study as ``dst/name`` with its annotation file; returns the study folder."""
    dst.mkdir(parents=True, exist_ok=True)
    shutil.copytree(base / "s1", dst / name)
    shutil.copy(base / "s1.modic.json", dst / f"{name}.modic.json")
    return dst / name


def limit_file_size(n_bytes: int) -> Callable[[], None]:
    """A ``preexec_fn`` that caps the size of any file the process writes (EFBIG beyond)."""

    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # fail the write, do not kill the process
        resource.setrlimit(resource.RLIMIT_FSIZE, (n_bytes, n_bytes))

    return apply


def modic_cmd(
    *args: object, env: dict[str, str | None] | None = None, preexec: Callable[[], None] | None = None
) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, "MPLBACKEND": "Agg"}
    for k, v in (env or {}).items():
        if v is None:
            environ.pop(k, None)
        else:
            environ[k] = v
    return subprocess.run(
        [sys.executable, "-m", "modic", *map(os.fspath, args)],
        capture_output=True,
        text=True,
        errors="surrogateescape",  # file names that are not UTF-8 are printed as they are
        timeout=120,
        env=environ,
        preexec_fn=preexec,
    )


def modic_main(args: list[object], capsys: pytest.CaptureFixture[str]) -> subprocess.CompletedProcess[str]:
    """The same command through :func:`modic.cli.main` in this process (no interpreter start:
    a tenth of the time); an exception that escapes fails the test with its traceback."""
    from modic.cli import main

    log = logging.getLogger("modic")
    saved = (log.handlers[:], log.level, log.propagate)
    capsys.readouterr()
    try:
        code = main([os.fspath(a) for a in args])
    except SystemExit as exc:  # argparse's usage errors
        code = int(exc.code or 0)
    finally:
        log.handlers[:], log.level, log.propagate = saved
    out, err = capsys.readouterr()
    return subprocess.CompletedProcess(args, code, out, err)


# ----------------------------------------------------------------------------------------
# the table: kind -> (set-up returning the command, exit status, exact message)
# ----------------------------------------------------------------------------------------
@dataclass
class Hostile:
    """One kind of hostile input.

    ``setup(base, tmp)`` builds the input under ``tmp`` and returns the arguments of the
    ``modic`` command plus the texts to expect, formatted with ``{tmp}``.
    """

    setup: Callable[[Path, Path], list[object]]
    status: int
    stderr: tuple[str, ...] = ()
    stdout: tuple[str, ...] = ()
    env: dict[str, str | None] = field(default_factory=dict)
    fsize: int | None = None  # RLIMIT_FSIZE in bytes
    subprocess: bool = False  # else through modic.cli.main in this process (env, fsize: a subprocess)


def _batch(base: Path, tmp: Path) -> list[object]:
    copy_study(base, tmp / "in")
    return ["batch", tmp / "in", "-o", tmp / "out", "--workers", "1"]


def _ann(edit: Callable[[bytes], bytes]) -> Callable[[Path, Path], list[object]]:
    """``modic classify`` on a study whose annotation file's bytes are edited."""

    def setup(base: Path, tmp: Path) -> list[object]:
        study = copy_study(base, tmp)
        ann = tmp / "s1.modic.json"
        ann.write_bytes(edit(ann.read_bytes()))
        return ["classify", study]

    return setup


def _ann_doc(edit: Callable[[dict], None]) -> Callable[[Path, Path], list[object]]:
    def change(raw: bytes) -> bytes:
        doc = json.loads(raw)
        edit(doc)
        return json.dumps(doc).encode()

    return _ann(change)


def _rows_literal(text: str) -> Callable[[bytes], bytes]:
    def change(raw: bytes) -> bytes:
        doc = json.loads(raw)
        out = json.dumps(doc).replace('"rows": 64', f'"rows": {text}', 1)
        return out.encode()

    return change


def _off_slice(doc: dict) -> None:
    for roi in doc["rois"]:
        roi["image"]["sop_instance_uid"] = "1.2.3.999"
        roi["image"]["image_position_patient"] = [300.0, -20.0, 30.0]
        roi.pop("patient", None)


# -- outputs -----------------------------------------------------------------------------
def _outdir_is_file(base: Path, tmp: Path) -> list[object]:
    args = _batch(base, tmp)
    (tmp / "out").write_text("not a folder")
    return args


def _outdir_under_file(base: Path, tmp: Path) -> list[object]:
    copy_study(base, tmp / "in")
    (tmp / "file").write_text("x")
    return ["batch", tmp / "in", "-o", tmp / "file" / "out", "--workers", "1"]


def _outdir_is_root(base: Path, tmp: Path) -> list[object]:
    copy_study(base, tmp / "in")
    return ["batch", tmp / "in", "-o", tmp / "in", "--workers", "1"]


def _outdir_in_proc(base: Path, tmp: Path) -> list[object]:
    copy_study(base, tmp / "in")
    return ["batch", tmp / "in", "-o", "/proc/modic-hostile-out", "--workers", "1"]


def _shard_dir_is_file(base: Path, tmp: Path) -> list[object]:
    args = _batch(base, tmp)
    (tmp / "out").mkdir()
    (tmp / "out" / ".modic-batch").write_text("x")
    return args


def _first_run(base: Path, tmp: Path) -> tuple[list[object], Path]:
    args = _batch(base, tmp)
    assert run_batch(tmp / "in", tmp / "out", workers=1).ok  # in this process: the set-up, not the case
    (shard,) = (tmp / "out" / ".modic-batch").glob("*.json")
    return args, shard


def _tampered_shard(base: Path, tmp: Path) -> list[object]:
    args, shard = _first_run(base, tmp)
    doc = json.loads(shard.read_text())
    del doc["errors"]
    doc["records"] = "edited"
    shard.write_text(json.dumps(doc))
    return args


def _folder_shaped_shard(base: Path, tmp: Path) -> list[object]:
    args, shard = _first_run(base, tmp)
    shard.unlink()
    shard.mkdir()
    (shard / "inside").write_text("x")
    return args


def _batch_annotation_other_study(base: Path, tmp: Path) -> list[object]:
    copy_study(base, tmp / "in", "good")
    copy_study(base, tmp / "in", "other")
    ann = tmp / "in" / "other.modic.json"
    doc = json.loads(ann.read_text())
    doc["study"]["study_instance_uid"] = "1.2.3.4"
    ann.write_text(json.dumps(doc))
    return ["batch", tmp / "in", "-o", tmp / "out", "--workers", "1"]


def _batch_utf16_annotation(base: Path, tmp: Path) -> list[object]:
    copy_study(base, tmp / "in", "good")
    copy_study(base, tmp / "in", "bad")
    ann = tmp / "in" / "bad.modic.json"
    ann.write_bytes(ann.read_text().encode("utf-16"))
    return ["batch", tmp / "in", "-o", tmp / "out", "--workers", "1"]


def _screenshot(target: Callable[[Path], Path]) -> Callable[[Path, Path], list[object]]:
    def setup(base: Path, tmp: Path) -> list[object]:
        study = copy_study(base, tmp / "in")
        return ["annotate", study, "--screenshot", target(tmp)]

    return setup


def _device_link(tmp: Path) -> Path:
    link = tmp / "full.png"
    os.symlink("/dev/full", link)  # a rename over the link would replace the link, not the device
    return link


def _file_in_the_way(tmp: Path) -> Path:
    (tmp / "file").write_text("x")
    return tmp / "file" / "shot.png"


# -- teaching ----------------------------------------------------------------------------
def _teach(log_dir: Callable[[Path], object] | None, *extra: str) -> Callable[[Path, Path], list[object]]:
    """``modic teach grade`` of a shipped case (linked to the sample study) with one answer."""

    def setup(base: Path, tmp: Path) -> list[object]:
        case = tmp / "case"
        shipped = min(p for p in shipped_cases_dir().iterdir() if (p / "case.json").is_file())
        shutil.copytree(shipped, case)
        doc = json.loads((case / "case.json").read_text())
        study = (shipped / doc["study"]["path"]).resolve()
        doc["study"]["path"] = os.path.relpath(study, case)
        (case / "case.json").write_text(json.dumps(doc))
        answer = write_answer(TraineeAnswer(types={"L4 inferior": "1"}, case_id=doc["id"]), tmp / "a.json")
        (tmp / "file").write_text("x")
        args: list[object] = ["teach", "grade", case, "--answer", answer, *extra]
        if log_dir is not None:
            args += ["--log-dir", log_dir(tmp)]
        return args

    return setup


def _log_is_folder_of_attempts(tmp: Path) -> Path:
    (tmp / "log" / "attempts.jsonl").mkdir(parents=True)
    return tmp / "log"


def _summary_of(log_dir: Callable[[Path], Path]) -> Callable[[Path, Path], list[object]]:
    def setup(base: Path, tmp: Path) -> list[object]:
        return ["teach", "summary", "--log-dir", log_dir(tmp)]

    return setup


def _log_not_utf8(tmp: Path) -> Path:
    (tmp / "log").mkdir()
    (tmp / "log" / "attempts.jsonl").write_bytes('{"trainee": "é"}\n'.encode("latin-1"))
    return tmp / "log"


def _a_file(tmp: Path) -> Path:
    (tmp / "file").write_text("x")
    return tmp / "file"


def _dangling_annotation(study: Path) -> None:
    ann = study.parent / "s1.modic.json"
    ann.unlink()
    os.symlink(study.parent / "gone.modic.json", ann)


def _dangling_link_in_study(base: Path, tmp: Path) -> Path:
    shutil.copytree(base / "s1" / "T1", tmp / "T1")
    os.symlink(tmp / "gone", tmp / "T1" / "dangling")
    return tmp / "T1"


# -- folders and files -------------------------------------------------------------------
def _info_on(make: Callable[[Path, Path], Path]) -> Callable[[Path, Path], list[object]]:
    def setup(base: Path, tmp: Path) -> list[object]:
        return ["info", make(base, tmp)]

    return setup


def _empty(base: Path, tmp: Path) -> Path:
    (tmp / "empty").mkdir()
    return tmp / "empty"


def _not_dicom(base: Path, tmp: Path) -> Path:
    d = tmp / "docs"
    d.mkdir()
    (d / "notes.txt").write_text("hello")
    (d / "photo.jpg").write_bytes(b"\xff\xd8\xff\xe0" + bytes(200))
    return d


def _t1_files(base: Path) -> list[Path]:
    return sorted((base / "s1" / "T1").iterdir())


def _zip(base: Path, tmp: Path) -> Path:
    d = tmp / "export"
    d.mkdir()
    with zipfile.ZipFile(d / "study.zip", "w") as zf:
        for f in _t1_files(base):
            zf.write(f, f.name)
    return d


def _zip_itself(base: Path, tmp: Path) -> Path:
    return _zip(base, tmp) / "study.zip"


def _gzip(base: Path, tmp: Path) -> Path:
    d = tmp / "export"
    d.mkdir()
    for f in _t1_files(base):
        (d / f"{f.name}.gz").write_bytes(gzip.compress(f.read_bytes()))
    return d


def _dicomdir_only(base: Path, tmp: Path) -> Path:
    d = tmp / "cd"
    d.mkdir()
    shutil.copy(get_testdata_file("DICOMDIR"), d / "DICOMDIR")
    return d


def _long_name(base: Path, tmp: Path) -> Path:
    return tmp / ("x" * 300)


def _non_utf8_name(base: Path, tmp: Path) -> Path:
    d = tmp / "export"
    shutil.copytree(base / "s1" / "T1", d)
    (d / os.fsdecode(b"IM\xff\xfe.dcm")).write_bytes(b"junk")
    return d


def _series(base: Path, tmp: Path, edit: Callable[[list[Path]], None]) -> Path:
    d = tmp / "st"
    files = write_series(
        d / "T1", volume_pattern(5, 16, 16), origin=(8.0, -20.0, 30.0), header=VENDORS["siemens"]["T1"]
    )
    edit(files)
    return d


def _edit_files(files: list[Path], change: Callable[[pydicom.Dataset], None]) -> None:
    for p in files:
        ds = pydicom.dcmread(p)
        change(ds)
        ds.save_as(p)


def _mixed_matrix(base: Path, tmp: Path) -> Path:
    def edit(files: list[Path]) -> None:
        ds = pydicom.dcmread(files[0])
        write_series(
            files[0].parent,
            volume_pattern(2, 20, 16),
            origin=(28.0, -20.0, 30.0),
            header=VENDORS["siemens"]["T1"],
            study_uid=ds.StudyInstanceUID,
            series_uid=ds.SeriesInstanceUID,
            names=["BIG1", "BIG2"],
        )

    return _series(base, tmp, edit)


def _skewed_orientation(base: Path, tmp: Path) -> Path:
    return _series(
        base,
        tmp,
        lambda f: _edit_files(
            f[2:3], lambda ds: setattr(ds, "ImageOrientationPatient", [0, 1, 0, 0, 0.3, -0.95])
        ),
    )


def _mixed_orientation(base: Path, tmp: Path) -> Path:
    c, s = float(np.cos(0.3)), float(np.sin(0.3))
    tilted = [0.0, c, s, 0.0, s, -c]
    return _series(
        base, tmp, lambda f: _edit_files(f[3:], lambda ds: setattr(ds, "ImageOrientationPatient", tilted))
    )


def _no_position(base: Path, tmp: Path) -> Path:
    return _series(base, tmp, lambda f: _edit_files(f, lambda ds: delattr(ds, "ImagePositionPatient")))


def _classify_edited(edit: Callable[[Path], None]) -> Callable[[Path, Path], list[object]]:
    def setup(base: Path, tmp: Path) -> list[object]:
        study = copy_study(base, tmp)
        edit(study)
        return ["classify", study]

    return setup


def _one_slice_t1(study: Path) -> None:
    for p in sorted((study / "T1").iterdir()):
        if p.name != "IM3":  # the annotated slice stays
            p.unlink()


def _symlink_loop(study: Path) -> None:
    os.symlink("..", study / "T1" / "up")
    os.symlink(study, study / "T2" / "again")


def _non_square(base: Path, tmp: Path) -> Path:
    return _series(base, tmp, lambda f: _edit_files(f, lambda ds: setattr(ds, "PixelSpacing", [1.0, 0.5])))


ANN = "{tmp}/s1.modic.json"
NOT_A_FOLDER = "a part of this path is a file, not a folder"
IN_THE_WAY = "a file is in the way where a folder is needed"
TOO_LARGE = "the file is larger than the limit on file sizes (ulimit -f, or the file system's)"
LOG_HINT = "; choose another --log-dir (or set MODIC_TEACHING_LOG)"
ZIP = "not DICOM: a ZIP archive: unzip it first (modic reads no archive)"
NO_SERIES = "modic: ERROR: no usable DICOM image series found under {tmp}/"
ONE_OK = "1 study classified, 0 failed (1 computed, 0 up to date)"

# fmt: off
CASES: dict[str, Hostile] = {
    # -- outputs ---------------------------------------------------------------------------
    "output-folder-is-a-file": Hostile(
        _outdir_is_file, 2, ("modic: ERROR: the output folder {tmp}/out is a file; choose a folder",)),
    "output-folder-under-a-file": Hostile(
        _outdir_under_file, 2,
        ("modic: ERROR: the output folder {tmp}/file/out lies under {tmp}/file, which is a file; "
         "choose a folder",)),
    "output-folder-is-the-input-folder": Hostile(
        _outdir_is_root, 2,
        ("modic: ERROR: the output folder {tmp}/in is the input folder; choose a separate one",)),
    "output-folder-cannot-be-created": Hostile(
        _outdir_in_proc, 2, ("modic: ERROR: /proc/modic-hostile-out: no such file or folder",)),
    "shard-folder-is-a-file": Hostile(
        _shard_dir_is_file, 1, (f"modic: ERROR: {{tmp}}/out/.modic-batch: {IN_THE_WAY}",)),
    "tampered-shard": Hostile(
        _tampered_shard, 0,
        ("not a result this modic wrote (fields missing or of the wrong type); recomputed",), (ONE_OK,)),
    "folder-shaped-shard": Hostile(_folder_shaped_shard, 0, (), (ONE_OK,)),
    "disk-full-batch": Hostile(_batch, 1, ("/out/.modic-batch/", f": cannot write: {TOO_LARGE}"), fsize=4096),
    "screenshot-to-a-device": Hostile(
        _screenshot(_device_link), 1,
        ("modic: ERROR: {tmp}/full.png: is a character device, not a regular file: not written",)),
    "screenshot-folder-is-a-file": Hostile(
        _screenshot(_file_in_the_way), 1, ("modic: ERROR: {tmp}/file: no such folder to write shot.png in",)),
    "screenshot-folder-not-writable": Hostile(
        _screenshot(lambda tmp: Path("/proc/modic-shot.png")), 1,
        ("modic: ERROR: /proc/modic-shot.png: cannot write the screenshot: no such file or folder",)),
    "screenshot-disk-full": Hostile(
        _screenshot(lambda tmp: tmp / "shot.png"), 1,
        (f"modic: ERROR: {{tmp}}/shot.png: cannot write the screenshot: {TOO_LARGE}",), fsize=2048),
    # -- teaching folders ------------------------------------------------------------------
    "teaching-log-under-a-file": Hostile(
        _teach(lambda tmp: tmp / "file" / "log"), 1,
        (f"modic: ERROR: {{tmp}}/file/log: cannot write the attempt log: {NOT_A_FOLDER}{LOG_HINT}",)),
    "teaching-log-folder-is-a-file": Hostile(
        _teach(lambda tmp: tmp / "file"), 1,
        (f"modic: ERROR: {{tmp}}/file: cannot write the attempt log: {IN_THE_WAY}{LOG_HINT}",)),
    "teaching-log-file-is-a-folder": Hostile(
        _teach(_log_is_folder_of_attempts), 1,
        ("modic: ERROR: {tmp}/log/attempts.jsonl: cannot write the attempt log: "
         f"is a folder, where a file is needed{LOG_HINT}",)),
    "teaching-log-folder-not-writable": Hostile(
        _teach(lambda tmp: "/proc/modic-teaching-log"), 1,
        ("modic: ERROR: /proc/modic-teaching-log: cannot write the attempt log: "
         f"no such file or folder{LOG_HINT}",)),
    "teaching-log-disk-full": Hostile(
        _teach(lambda tmp: tmp / "log"), 1,
        (f"modic: ERROR: {{tmp}}/log/attempts.jsonl: cannot write the attempt log: {TOO_LARGE}{LOG_HINT}",),
        fsize=200),
    "teaching-default-log-under-a-file-home": Hostile(
        _teach(None), 1,
        (f"modic: ERROR: {{tmp}}/file/.local/share/modic/teaching: cannot write the attempt log: "
         f"{NOT_A_FOLDER}{LOG_HINT}",),
        env={"HOME": "{tmp}/file", "XDG_DATA_HOME": None, "MODIC_TEACHING_LOG": None}),
    "teaching-figure-folder-is-a-file": Hostile(
        _teach(None, "--no-log", "--figure", "{tmp}/file/fig.png"), 1,
        (f"modic: ERROR: {{tmp}}/file: {IN_THE_WAY}",)),
    "teaching-summary-log-is-a-file": Hostile(
        _summary_of(_a_file), 1,
        ("modic: ERROR: {tmp}/file: is a file, not a folder: the attempt log is the folder that holds "
         "attempts.jsonl (--log-dir)",)),
    "teaching-log-not-utf-8": Hostile(
        _summary_of(_log_not_utf8), 1,
        ("modic: ERROR: {tmp}/log/attempts.jsonl: not UTF-8 text (bad byte at offset 13)",)),
    # -- annotations -----------------------------------------------------------------------
    "annotation-is-a-dangling-link": Hostile(
        _classify_edited(_dangling_annotation), 1,
        ("modic: ERROR: no annotations for {tmp}/s1: expected the default annotation file at "
         "{tmp}/s1.modic.json",)),
    "annotation-with-a-byte-order-mark": Hostile(_ann(lambda b: codecs.BOM_UTF8 + b), 0),
    "annotation-in-utf-16": Hostile(
        _ann(lambda b: b.decode().encode("utf-16")), 1,
        (f"modic: ERROR: {ANN}: not UTF-8 text (bad byte at offset 0)",)),
    "annotation-with-nan": Hostile(
        _ann(_rows_literal("NaN")), 1, (f"modic: ERROR: {ANN}: invalid JSON: NaN is not allowed in JSON",)),
    "annotation-with-infinity": Hostile(
        _ann(_rows_literal("-Infinity")), 1,
        (f"modic: ERROR: {ANN}: invalid JSON: -Infinity is not allowed in JSON",)),
    "annotation-with-a-duplicate-key": Hostile(
        _ann(_rows_literal('64, "rows": 65')), 1,
        (f"modic: ERROR: {ANN}: invalid JSON: the key 'rows' appears twice in one object",)),
    "annotation-empty-file": Hostile(
        _ann(lambda b: b""), 1, (f"modic: ERROR: {ANN}: invalid JSON at line 1, column 1: Expecting value",)),
    "annotation-is-a-json-array": Hostile(
        _ann(lambda b: b"[]"), 1, (f"modic: ERROR: {ANN}: (document): expected an object, got an array",)),
    "annotation-rois-of-the-wrong-type": Hostile(
        _ann_doc(lambda d: d.__setitem__("rois", {"a": 1})), 1,
        (f"modic: ERROR: {ANN}: rois: expected an array, got an object",)),
    "annotation-label-of-the-wrong-type": Hostile(
        _ann_doc(lambda d: d["rois"][0].__setitem__("label", 5)), 1,
        (f"modic: ERROR: {ANN}: rois[0].label: expected an object, got a number (5)",)),
    "annotation-of-another-study": Hostile(
        _ann_doc(lambda d: d["study"].__setitem__("study_instance_uid", "1.2.3.4")), 1,
        ("modic: ERROR: the annotations were drawn on study ",
         ", which is not under {tmp}/s1 (studies found: ")),
    "annotation-on-a-slice-that-does-not-exist": Hostile(
        _ann_doc(_off_slice), 1,
        (" mm from the nearest slice of T1 series 2 t1_tse_sag (allowed 2.0 mm, half the slice spacing); "
         "the region lies outside its slices",
         "modic: ERROR: 2 of 2 endplate ROIs could not be measured")),
    "batch-annotation-of-another-study-costs-one-study": Hostile(
        _batch_annotation_other_study, 1,
        ("failed other.modic.json stage=load: the annotations were drawn on study ",),
        ("1 study classified, 1 failed (2 computed, 0 up to date)",)),
    "batch-utf-16-annotation-costs-one-study": Hostile(
        _batch_utf16_annotation, 1,
        ("failed bad.modic.json stage=", "bad.modic.json: not UTF-8 text (bad byte at offset 0)"),
        ("1 study classified, 1 failed",)),
    # -- folders and files -----------------------------------------------------------------
    "empty-folder": Hostile(_info_on(_empty), 1, (NO_SERIES + "empty",)),
    "folder-of-non-dicom-files": Hostile(
        _info_on(_not_dicom), 1, (NO_SERIES + "docs",),
        ("2  not DICOM: no DICM marker and no DICOM header at the start: "
         "notes.txt, photo.jpg",)),
    "zip-file-in-the-folder": Hostile(_info_on(_zip), 1, (NO_SERIES + "export",), (f"1  {ZIP}: study.zip",)),
    "zip-file-as-the-path": Hostile(
        _info_on(_zip_itself), 1, (NO_SERIES + "export/study.zip",), (f"1  {ZIP}: study.zip",)),
    "gzip-compressed-dicom": Hostile(
        _info_on(_gzip), 1, (NO_SERIES + "export",),
        ("not DICOM: a gzip-compressed file: decompress it first (modic reads no archive): IM1.gz",)),
    "dicomdir-only": Hostile(
        _info_on(_dicomdir_only), 1, (NO_SERIES + "cd",),
        ("1  DICOMDIR: a directory index; the files it lists are scanned directly: "
         "DICOMDIR",)),
    "path-name-too-long": Hostile(
        _info_on(_long_name), 1,
        ("{tmp}/" + "x" * 300 + ": the path, or one of its names, is too long for the file system",)),
    "file-name-not-utf-8": Hostile(
        _info_on(_non_utf8_name), 0, (),
        ("1  not DICOM: no DICM marker and no DICOM header at the start: " + os.fsdecode(b"IM\xff\xfe.dcm"),),
        subprocess=True),
    "dangling-link-in-the-study": Hostile(
        _info_on(_dangling_link_in_study), 0, (),
        ("1  cannot read file: No such file or directory: dangling",)),
    "symlink-loop-in-the-study": Hostile(_classify_edited(_symlink_loop), 0),
    # -- DICOM series ----------------------------------------------------------------------
    "series-with-mixed-rows-and-columns": Hostile(_info_on(_mixed_matrix), 0, (), ("16x16   5", "20x16   2")),
    "orientation-not-orthonormal": Hostile(
        _info_on(_skewed_orientation), 0, (),
        ("1  invalid ImageOrientationPatient (0020,0037): not two orthogonal unit vectors "
         "(|row|=1.000, |col|=0.996, row.col=0.300): T1/IM3",)),
    "series-with-mixed-orientations": Hostile(
        _info_on(_mixed_orientation), 0, (), ("sagittal  16x16   3", "16x16   2")),
    "series-without-image-position": Hostile(
        _info_on(_no_position), 1, (NO_SERIES + "st",), ("5  missing ImagePositionPatient (0020,0032): ",)),
    "non-square-pixels": Hostile(_info_on(_non_square), 0, (), ("16x16   5       4.00 x 1.00 x 0.50",)),
    "one-slice-t1": Hostile(_classify_edited(_one_slice_t1), 0),
    # -- environment -----------------------------------------------------------------------
    "home-unset": Hostile(
        _classify_edited(lambda s: None), 0,
        env={"HOME": None, "MPLCONFIGDIR": None, "XDG_CACHE_HOME": None}),
    "home-is-a-file-matplotlib-cache-unwritable": Hostile(
        _screenshot(lambda tmp: tmp / "shot.png"), 0,
        ("Matplotlib created a temporary cache directory at ",),  # matplotlib's own warning
        ("{tmp}/shot.png",),
        env={"HOME": "{tmp}/in/s1/T1/IM1", "MPLCONFIGDIR": None, "XDG_CACHE_HOME": None,
             "XDG_CONFIG_HOME": None}),
    "c-locale-with-non-ascii-paths": Hostile(
        _classify_edited(lambda s: None), 0, env={"LANG": "C", "LC_ALL": "C", "PYTHONUTF8": None}),
}
# fmt: on


def _fill(text: str, tmp: Path) -> str:
    return text.replace("{tmp}", os.fspath(tmp))


@pytest.mark.parametrize("kind", list(CASES))
def test_hostile_input_gets_its_message(
    kind: str, base: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    case = CASES[kind]
    tmp = tmp_path / ("ßtüdy-é" if kind == "c-locale-with-non-ascii-paths" else "w")
    tmp.mkdir()
    args = [_fill(a, tmp) if isinstance(a, str) else a for a in case.setup(base, tmp)]
    env = {k: None if v is None else _fill(v, tmp) for k, v in case.env.items()}
    if case.subprocess or case.env or case.fsize is not None:
        r = modic_cmd(*args, env=env, preexec=None if case.fsize is None else limit_file_size(case.fsize))
    else:
        r = modic_main(args, capsys)
    assert "Traceback" not in r.stderr, r.stderr
    assert r.returncode == case.status, r.stderr
    for text in case.stderr:
        assert _fill(text, tmp) in r.stderr
    for text in case.stdout:
        assert _fill(text, tmp) in r.stdout, r.stdout
    if not case.stderr and case.status == 0:
        # accepted quietly: no warning, no foreign noise
        assert [line for line in r.stderr.splitlines() if not line.startswith("modic: INFO: ")] == [], (
            r.stderr
        )


# ----------------------------------------------------------------------------------------
# kinds that need more than one run
# ----------------------------------------------------------------------------------------
def test_a_full_disk_leaves_the_outputs_of_the_last_run_as_they_were(base: Path, tmp_path: Path) -> None:
    """Disk full while a batch writes: one line saying so; the outputs of the run before are
    untouched (atomic writes: no half-written file under a final name)."""
    args = _batch(base, tmp_path)
    assert run_batch(tmp_path / "in", tmp_path / "out", workers=1).ok
    before = {n: (tmp_path / "out" / n).read_bytes() for n in OUTPUTS}
    r = modic_cmd(*args, "--force", preexec=limit_file_size(4096))
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert TOO_LARGE in r.stderr
    assert {n: (tmp_path / "out" / n).read_bytes() for n in OUTPUTS} == before
    # the next run, with room, completes and removes the temporary files the full disk left
    assert run_batch(tmp_path / "in", tmp_path / "out", workers=1).ok
    assert [p.name for p in (tmp_path / "out").rglob("*.tmp")] == []


def test_non_ascii_names_under_the_c_locale_without_utf8_mode_give_the_same_outputs(
    base: Path, tmp_path: Path
) -> None:
    """``PYTHONUTF8=0 LC_ALL=C``: Python holds every non-ASCII file name as surrogates. A
    batch over a study folder named ``stüdy-é`` ended with "'utf-8' codec can't encode
    characters"; with a header index every study failed at "load"; the HTML report of an
    output folder named ``out-é`` failed the same way. Now they run, and write the bytes a
    UTF-8 locale writes."""
    root = tmp_path / "ßin"
    copy_study(base, root, "stüdy-é")
    c_locale = {"LANG": "C", "LC_ALL": "C", "PYTHONUTF8": "0"}
    outs = {}
    for name, env in (("c", c_locale), ("utf8", {"LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "PYTHONUTF8": "1"})):
        out = tmp_path / f"out-é-{name}"
        r = modic_cmd("batch", root, "-o", out, "--header-index", out / "index.sqlite", env=env)
        assert r.returncode == 0, r.stderr
        assert "Traceback" not in r.stderr and "codec" not in r.stderr, r.stderr
        assert "classified, 0 failed" in r.stdout, r.stdout
        r = modic_cmd("report", out, "-o", out / "rapport-é.html", env=env)
        assert r.returncode == 0, r.stderr
        outs[name] = {p.relative_to(out): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}
    shared = [p for p in outs["c"] if p.suffix in (".csv", ".jsonl", ".json")]
    assert {Path("results.csv"), Path("errors.csv")} <= set(shared)
    for p in shared:
        if p.name != "summary.json":  # it holds the elapsed time
            assert outs["c"][p] == outs["utf8"][p], p
    assert "Batch output folder out-é-c".encode() in outs["c"][Path("rapport-é.html")]


def test_ctrl_c_during_a_batch_is_one_line_exit_130_and_resumable(
    base: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # interrupted as soon as it reports its first study: 15 more are still to come (polling
    # the output folder instead raced the run on a loaded machine, and lost once the
    # classifier got faster)
    root = tmp_path / "in"
    copy_study(base, root, "s00")
    for i in range(1, 16):
        write_annotated_study(root / f"s{i:02d}", "0", seed=100 + i)
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [sys.executable, "-m", "modic", "batch", root, "-o", out, "--workers", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # as from a terminal: a test run started in the background (nohup, `&`) ignores
        # SIGINT, and a child inherits that, so Ctrl-C would never reach it
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    assert proc.stderr is not None
    head = []
    for line in proc.stderr:  # ends early only if the run does
        head.append(line)
        if "study 1/16 " in line:
            break
    proc.send_signal(signal.SIGINT)
    _, rest = proc.communicate(timeout=60)
    err = "".join(head) + rest
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert err.rstrip().endswith("modic: ERROR: interrupted")
    r = modic_main(["batch", root, "-o", out, "--workers", "1"], capsys)
    assert r.returncode == 0, r.stderr
    assert "16 studies classified, 0 failed" in r.stdout
    assert " up to date)" in r.stdout and "(16 computed" not in r.stdout  # the finished ones are kept
